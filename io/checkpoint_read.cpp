// CheckpointReader and inspect_checkpoint: verify the layout, dtypes, shapes, sizes and
// checksums of a checkpoint before any of its data is handed out.
#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <map>

#include "core/error.h"
#include "core/param_store.h"
#include "io/checkpoint.h"
#include "io/checkpoint_stage.h"
#include "io/checksum.h"
#include "io/h5.h"

namespace loom {
namespace {

constexpr uint64_t kScratchBytes = uint64_t{8} << 20;   // verification reads in 8 MiB pieces

std::string shape_str(const std::vector<int64_t>& dims) {
  std::string s = "(";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + (dims.size() == 1 ? ",)" : ")");
}

std::string hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08" PRIx32, v);
  return buf;
}

uint64_t logical_bytes(const h5::Dataset& ds) {
  return ds.type() ? static_cast<uint64_t>(ds.numel()) * h5::elem_type_size(*ds.type()) : 0;
}

// CRC of a numeric dataset's logical array, read in pieces of at most kScratchBytes (a
// piece need not hold whole rows, so one huge row does not grow the scratch buffer).
uint32_t stream_crc(const h5::Dataset& ds) {
  const int64_t numel = ds.numel();
  if (numel == 0 || !ds.type()) return 0;
  const uint64_t elem = h5::elem_type_size(*ds.type());
  const int64_t step = std::max<int64_t>(1, static_cast<int64_t>(kScratchBytes / elem));
  std::vector<uint64_t> scratch((static_cast<uint64_t>(std::min(step, numel)) * elem + 7) / 8);
  uint32_t crc = 0;
  for (int64_t at = 0; at < numel; at += step) {
    const int64_t n = std::min(step, numel - at);
    ds.read_elements(at, n, scratch.data());
    crc = crc32_update(crc, scratch.data(), static_cast<uint64_t>(n) * elem);
  }
  return crc;
}

}  // namespace

std::string checkpoint_format_problem(const std::optional<std::string>& format) {
  const std::string want = std::string("\"") + kCheckpointFormat + "\"";
  return "not a loom checkpoint (root attribute format is " + (format ? "\"" + *format + "\"" : "missing") +
         ", a loom checkpoint's is " + want + ")";
}

std::string checkpoint_shape_text(const std::vector<int64_t>& dims) {
  if (dims.empty()) return "scalar";
  std::string s;
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? "x" : "") + std::to_string(dims[i]);
  return s;
}

struct CheckpointReader::Impl {
  std::string path;
  CheckpointMeta meta;
  std::optional<h5::File> file;
  std::vector<DatasetInfo> infos;
  std::map<std::string, size_t> index;   // dataset path -> infos
  // Device reads go through it (Note [Staging device data]); made by open(), its buffer is
  // allocated at the first staged piece and kept while the reader lives.
  mutable std::optional<ckpt::Stager> stager;

  [[noreturn]] void damaged(const std::string& what) const { throw DataError("checkpoint " + path + ": " + what); }
  void read_meta();
  void scan();                                    // fills infos (problems recorded, not thrown)
  void check_dataset(const h5::Dataset& ds, h5::ElemType want, const std::string& shape_problem);
  void check_listing(const std::string& listing);   // Note [The file lists its datasets]
  void check_slot_shapes();                         // Note [A slot has its parameter's shape]
  const DatasetInfo& info(const std::string& dataset_path) const;
  h5::Dataset open_at(const std::string& dataset_path) const;
  // Reads the dataset into dst (memory on `device`) and verifies its checksum.
  void read_verified(const std::string& dataset_path, void* dst, Device device) const;
  // Through the staging buffer, piece by piece; returns the CRC of what was read.
  uint32_t read_staged(const h5::Dataset& ds, void* dst, Device device) const;
};

void CheckpointReader::Impl::read_meta() {
  h5::File& f = *file;
  if (!f.has_attr("format") || f.attr_string("format") != kCheckpointFormat)
    damaged(checkpoint_format_problem(f.has_attr("format") ? std::optional(f.attr_string("format")) : std::nullopt));
  meta.format_version = static_cast<int>(f.attr_i64("format_version"));
  if (meta.format_version != kCheckpointFormatVersion)
    damaged("unsupported format_version " + std::to_string(meta.format_version) + " (this loom reads " +
            std::to_string(kCheckpointFormatVersion) + ")");
  for (const char* a : {"loom_version", "model_kind", "step", "epoch", "tokens_seen", "world_size",
                        "created_utc", "config"})
    if (!f.has_attr(a)) damaged("root attribute " + std::string(a) + " is missing");
  meta.loom_version = f.attr_string("loom_version");
  meta.model_kind = f.attr_string("model_kind");
  meta.step = f.attr_i64("step");
  meta.epoch = f.attr_i64("epoch");
  meta.tokens_seen = f.attr_i64("tokens_seen");
  meta.world_size = static_cast<int>(f.attr_i64("world_size"));
  meta.created_utc = f.attr_string("created_utc");
  meta.config_toml = f.attr_string("config");
  if (meta.world_size < 1) damaged("root attribute world_size is " + std::to_string(meta.world_size));
}

void CheckpointReader::Impl::check_dataset(const h5::Dataset& ds, h5::ElemType want,
                                           const std::string& shape_problem) {
  DatasetInfo d;
  d.path = ds.path();
  d.dtype = ds.type_name();
  d.shape = ds.dims();
  d.bytes = logical_bytes(ds);
  if (ds.type() != want) {
    d.problem = std::string("dtype is ") + d.dtype + ", expected " + h5::elem_type_name(want);
  } else if (!shape_problem.empty()) {
    d.problem = shape_problem;
  } else if (!ds.has_attr("crc32")) {
    d.problem = "checksum attribute crc32 is missing";
  } else if (want != h5::ElemType::kString && ds.storage_bytes() != d.bytes) {
    d.problem = "holds " + std::to_string(ds.storage_bytes()) + " bytes in the file, expected " +
                std::to_string(d.bytes) + " (truncated?)";
  } else {
    try {
      d.stored_crc = ds.attr_u32("crc32");
      d.computed_crc = want == h5::ElemType::kString ? crc32_of_strings(ds.read_strings()) : stream_crc(ds);
      if (d.computed_crc != d.stored_crc)
        d.problem = "checksum mismatch (stored crc32 " + hex32(d.stored_crc) + ", data gives " +
                    hex32(d.computed_crc) + "): the data is damaged";
    } catch (const IoError& e) {
      d.problem = std::string("unreadable: ") + e.what();
    }
  }
  index[d.path] = infos.size();
  infos.push_back(std::move(d));
}

void CheckpointReader::Impl::scan() {
  h5::File& f = *file;
  if (!f.has("model")) damaged("group /model is missing");
  auto expect_datasets = [&](const h5::Group& g) {
    for (const auto& c : g.children())
      if (!c.is_dataset) damaged(g.path() + "/" + c.name + " is not a dataset");
  };
  h5::Group model = f.open_group("model");
  expect_datasets(model);
  for (const auto& c : model.children()) {
    h5::Dataset ds = model.open_dataset(c.name);
    check_dataset(ds, h5::ElemType::kF32, ds.dims().size() > 4 ? "more than 4 dimensions" : "");
  }
  if (f.has("optimizer")) {
    h5::Group opt = f.open_group("optimizer");
    for (const auto& p : opt.children()) {
      if (!p.is_group) damaged("/optimizer/" + p.name + " is not a group");
      h5::Group g = opt.open_group(p.name);
      expect_datasets(g);
      for (const auto& c : g.children()) check_dataset(g.open_dataset(c.name), h5::ElemType::kF32, "");
    }
  }
  if (f.has("state")) {
    h5::Group st = f.open_group("state");
    expect_datasets(st);
    for (const auto& c : st.children()) {
      h5::Dataset ds = st.open_dataset(c.name);
      bool ok = ds.dims().size() == 2 && ds.dims()[0] == meta.world_size;
      check_dataset(ds, h5::ElemType::kU64, ok ? "" : "shape " + shape_str(ds.dims()) +
                    " is not (world_size=" + std::to_string(meta.world_size) + ", n)");
    }
  }
  if (f.has("vocab")) {
    h5::Group v = f.open_group("vocab");
    h5::Dataset tokens = v.open_dataset("tokens");
    h5::Dataset counts = v.open_dataset("counts");
    bool ok = tokens.dims().size() == 1 && counts.dims() == tokens.dims();
    std::string problem = ok ? "" : "shape " + shape_str(counts.dims()) + " does not match /vocab/tokens " +
                                    shape_str(tokens.dims());
    check_dataset(tokens, h5::ElemType::kString, tokens.dims().size() == 1 ? "" : "not 1-D");
    check_dataset(counts, h5::ElemType::kI64, problem);
  }
  if (f.has_attr("datasets")) {
    std::string listing = f.attr_string("datasets");
    for (int piece = 1; f.has_attr("datasets." + std::to_string(piece)); ++piece)
      listing += f.attr_string("datasets." + std::to_string(piece));
    check_listing(listing);
  }
  check_slot_shapes();
}

// Note [A slot has its parameter's shape]
// /optimizer/<name>/<slot> is element-wise state of /model/<name> (AdaGrad's gradsq, Adam's
// m and v: DESIGN.md), so it has that parameter's shape. A file where one differs was
// changed after it was written (a dataset rewritten, with h5py say, its checksum and the
// listing with it): the file's own datasets say so without the model that wrote it, so
// `loom inspect` reports the slot and open() refuses the file. A parameter rewritten
// together with its slots is consistent in itself; only the model that reads it can tell
// (CheckpointReader::differing_shapes, used when resuming).
void CheckpointReader::Impl::check_slot_shapes() {
  for (DatasetInfo& d : infos) {
    if (d.path.rfind("/optimizer/", 0) != 0 || !d.problem.empty()) continue;
    const size_t slash = d.path.rfind('/');
    const std::string param = "/model/" + d.path.substr(11, slash - 11);
    auto it = index.find(param);
    if (it == index.end() || !infos[it->second].problem.empty() || infos[it->second].shape == d.shape) continue;
    d.problem = "shape " + shape_str(d.shape) + ", but its parameter " + param + " has " +
                shape_str(infos[it->second].shape) + " (an optimizer slot has its parameter's shape)";
  }
}

// Every dataset the writer listed must still be there with the listed shape; a missing
// one is recorded as a dataset with a problem, so inspect lists it and open() refuses.
void CheckpointReader::Impl::check_listing(const std::string& listing) {
  size_t start = 0;
  while (start < listing.size()) {
    size_t end = listing.find('\n', start);
    if (end == std::string::npos) end = listing.size();
    const std::string line = listing.substr(start, end - start);
    start = end + 1;
    const size_t space = line.rfind(' ');
    if (line.empty()) continue;
    if (space == std::string::npos) damaged("root attribute datasets has a line without a shape: '" + line + "'");
    const std::string listed = line.substr(0, space), shape = line.substr(space + 1);
    auto it = index.find(listed);
    if (it == index.end()) {
      DatasetInfo d;
      d.path = listed;
      d.dtype = "-";
      d.problem = "missing (the file's root attribute datasets lists it with shape " + shape + ")";
      index[listed] = infos.size();
      infos.push_back(std::move(d));
    } else if (DatasetInfo& d = infos[it->second]; checkpoint_shape_text(d.shape) != shape && d.problem.empty()) {
      d.problem = "shape " + checkpoint_shape_text(d.shape) + ", but the file's root attribute datasets lists " + shape;
    }
  }
}

const DatasetInfo& CheckpointReader::Impl::info(const std::string& dataset_path) const {
  auto it = index.find(dataset_path);
  if (it == index.end()) damaged("dataset " + dataset_path + " is missing");
  return infos[it->second];
}

h5::Dataset CheckpointReader::Impl::open_at(const std::string& dataset_path) const {
  size_t slash = dataset_path.rfind('/');
  std::string group = dataset_path.substr(1, slash - 1), name = dataset_path.substr(slash + 1);
  size_t inner = group.find('/');
  if (inner == std::string::npos) return file->open_group(group).open_dataset(name);
  return file->open_group(group.substr(0, inner)).open_group(group.substr(inner + 1)).open_dataset(name);
}

uint32_t CheckpointReader::Impl::read_staged(const h5::Dataset& ds, void* dst, Device device) const {
  const uint64_t elem = h5::elem_type_size(*ds.type());
  const int64_t step = std::max<int64_t>(1, static_cast<int64_t>(stager->chunk() / elem));   // elements per piece
  uint32_t crc = 0;
  for (int64_t at = 0; at < ds.numel(); at += step) {
    const int64_t n = std::min(step, ds.numel() - at);
    const uint64_t bytes = static_cast<uint64_t>(n) * elem;
    void* host = stager->host(device);
    ds.read_elements(at, n, host);
    const uint32_t part = crc32_of(host, bytes);
    crc = at == 0 ? part : crc32_combine_parts(crc, part, bytes);
    stager->up(static_cast<uint8_t*>(dst) + static_cast<uint64_t>(at) * elem, device, bytes);
  }
  return crc;
}

void CheckpointReader::Impl::read_verified(const std::string& dataset_path, void* dst, Device device) const {
  const DatasetInfo& d = info(dataset_path);
  h5::Dataset ds = open_at(dataset_path);
  uint32_t crc = 0;
  if (stager->stages(device)) {
    crc = read_staged(ds, dst, device);
  } else {
    ds.read_rows(0, ds.dims().empty() ? 1 : ds.dims()[0], dst);
    crc = crc32_of(dst, d.bytes);
  }
  if (crc != d.stored_crc)
    damaged("dataset " + dataset_path + ": checksum mismatch on read (stored crc32 " + hex32(d.stored_crc) +
            ", data gives " + hex32(crc) + "): the file changed or is damaged");
}

CheckpointReader::CheckpointReader() : impl_(std::make_unique<Impl>()) {}
CheckpointReader::~CheckpointReader() = default;
CheckpointReader::CheckpointReader(CheckpointReader&&) noexcept = default;
CheckpointReader& CheckpointReader::operator=(CheckpointReader&&) noexcept = default;

void CheckpointReader::open(const std::string& path) {
  impl_ = std::make_unique<Impl>();
  impl_->path = path;
  impl_->file.emplace(h5::File::open(path, false));
  impl_->read_meta();
  impl_->scan();
  for (const auto& d : impl_->infos)
    if (!d.problem.empty()) impl_->damaged("dataset " + d.path + ": " + d.problem);
  uint64_t largest = 0;
  for (const auto& d : impl_->infos) largest = std::max(largest, d.bytes);
  impl_->stager.emplace(largest);
}

const std::string& CheckpointReader::path() const { return impl_->path; }
const CheckpointMeta& CheckpointReader::meta() const { return impl_->meta; }
const std::vector<DatasetInfo>& CheckpointReader::list_datasets() const { return impl_->infos; }

bool CheckpointReader::has_model(const std::string& name) const { return impl_->index.count("/model/" + name) > 0; }

std::vector<std::string> CheckpointReader::model_names() const {
  std::vector<std::string> out;
  for (const auto& d : impl_->infos)
    if (d.path.rfind("/model/", 0) == 0) out.push_back(d.path.substr(7));
  return out;
}

void CheckpointReader::read_model_into(ParamStore& params) const {
  LOOM_CHECK(params.finalized(), DataError, "checkpoint " + impl_->path + ": read_model_into needs a finalized ParamStore");
  std::string problems;
  for (const auto& e : params.entries()) {
    auto it = impl_->index.find("/model/" + e.name);
    std::vector<int64_t> want;
    for (int i = 0; i < e.shape.rank(); ++i) want.push_back(e.shape[i]);
    if (it == impl_->index.end())
      problems += "\n  /model/" + e.name + ": missing (model expects " + shape_str(want) + ")";
    else if (impl_->infos[it->second].shape != want)
      problems += "\n  /model/" + e.name + ": file has " + shape_str(impl_->infos[it->second].shape) +
                  ", model expects " + shape_str(want);
  }
  if (!problems.empty()) impl_->damaged("parameters do not match the model:" + problems);
  for (int i = 0; i < params.size(); ++i)
    impl_->read_verified("/model/" + params.entry(i).name, params.value(i).data(), params.device());
}

std::string CheckpointReader::missing_datasets(const SaveRequest& expected) const {
  std::vector<std::string> paths;
  if (expected.params != nullptr)
    for (const auto& e : expected.params->entries()) paths.push_back("/model/" + e.name);
  for (const auto& s : expected.slots) paths.push_back("/optimizer/" + s.param + "/" + s.slot);
  for (const auto& st : expected.state) paths.push_back("/state/" + st.name);
  if (expected.vocab) paths.insert(paths.end(), {"/vocab/tokens", "/vocab/counts"});
  std::string out;
  for (const auto& p : paths)
    if (impl_->index.count(p) == 0) out += (out.empty() ? "" : ", ") + p;
  return out;
}

std::string CheckpointReader::differing_shapes(const SaveRequest& expected) const {
  std::vector<std::pair<std::string, Shape>> want;
  if (expected.params != nullptr)
    for (const auto& e : expected.params->entries()) want.emplace_back("/model/" + e.name, e.shape);
  for (const auto& s : expected.slots) want.emplace_back("/optimizer/" + s.param + "/" + s.slot, s.value.shape());
  std::string out;
  for (const auto& [p, shape] : want) {
    auto it = impl_->index.find(p);
    if (it == impl_->index.end()) continue;
    std::vector<int64_t> dims;
    for (int i = 0; i < shape.rank(); ++i) dims.push_back(shape[i]);
    if (impl_->infos[it->second].shape != dims)
      out += (out.empty() ? "" : "; ") + p + ": file has " + shape_str(impl_->infos[it->second].shape) +
             ", this run's model expects " + shape_str(dims);
  }
  return out;
}

bool CheckpointReader::has_slot(const std::string& param, const std::string& slot) const {
  return impl_->index.count("/optimizer/" + param + "/" + slot) > 0;
}

void CheckpointReader::read_slot(const std::string& param, const std::string& slot, Tensor out) const {
  const std::string p = "/optimizer/" + param + "/" + slot;
  const DatasetInfo& d = impl_->info(p);
  std::vector<int64_t> want;
  for (int i = 0; i < out.shape().rank(); ++i) want.push_back(out.shape()[i]);
  LOOM_CHECK(out.dtype() == DType::kF32, DataError,
             "checkpoint " + impl_->path + " dataset " + p + ": read_slot needs a float32 tensor, not " +
                 dtype_name(out.dtype()));
  if (d.shape != want)
    impl_->damaged("dataset " + p + ": file has " + shape_str(d.shape) + ", optimizer expects " + shape_str(want));
  impl_->read_verified(p, out.data(), out.device());
}

std::vector<uint64_t> CheckpointReader::read_state(const std::string& name, int64_t* n_per_rank) const {
  const std::string p = "/state/" + name;
  const DatasetInfo& d = impl_->info(p);
  std::vector<uint64_t> out(static_cast<size_t>(d.shape[0] * d.shape[1]));
  impl_->read_verified(p, out.data(), Device::cpu());
  if (n_per_rank) *n_per_rank = d.shape[1];
  return out;
}

bool CheckpointReader::has_vocab() const { return impl_->index.count("/vocab/tokens") > 0; }

void CheckpointReader::read_vocab(std::vector<std::string>* tokens, std::vector<int64_t>* counts) const {
  const DatasetInfo& t = impl_->info("/vocab/tokens");
  std::vector<std::string> tok = impl_->open_at("/vocab/tokens").read_strings();
  if (crc32_of_strings(tok) != t.stored_crc) impl_->damaged("dataset /vocab/tokens: checksum mismatch on read");
  counts->assign(tok.size(), 0);
  impl_->read_verified("/vocab/counts", counts->data(), Device::cpu());
  *tokens = std::move(tok);
}

std::string inspect_checkpoint(const std::string& path, bool* ok) {
  CheckpointReader::Impl impl;
  impl.path = path;
  std::string out = "checkpoint " + path + "\n";
  *ok = false;
  try {
    impl.file.emplace(h5::File::open(path, false));
    impl.read_meta();
    const CheckpointMeta& m = impl.meta;
    out += "  format " + std::string(kCheckpointFormat) + " v" + std::to_string(m.format_version) +
           ", loom " + m.loom_version + ", created " + m.created_utc + "\n  model_kind " + m.model_kind +
           ", step " + std::to_string(m.step) + ", epoch " + std::to_string(m.epoch) + ", tokens_seen " +
           std::to_string(m.tokens_seen) + ", world_size " + std::to_string(m.world_size) + "\n  config:\n";
    size_t start = 0;
    while (start < m.config_toml.size()) {
      size_t end = m.config_toml.find('\n', start);
      if (end == std::string::npos) end = m.config_toml.size();
      out += "    " + m.config_toml.substr(start, end - start) + "\n";
      start = end + 1;
    }
    impl.scan();
  } catch (const Error& e) {
    return out + "  DAMAGED: " + e.what() + "\n";
  }
  size_t bad = 0;
  out += "  datasets:\n";
  for (const auto& d : impl.infos) {
    out += "    " + d.path + "  " + d.dtype + " " + shape_str(d.shape) + "  " + std::to_string(d.bytes) +
           " B  crc32 " + hex32(d.stored_crc) + "  " + (d.problem.empty() ? "ok" : "DAMAGED: " + d.problem) + "\n";
    bad += d.problem.empty() ? 0 : 1;
  }
  *ok = bad == 0;
  out += bad == 0 ? "  status: OK\n" : "  status: DAMAGED (" + std::to_string(bad) + " datasets)\n";
  return out;
}

}  // namespace loom
