// save_checkpoint: the collective writer. See Note [Write modes] in checkpoint.h, and
// Notes [Agreeing on failure] and [Layout, then bulk data] below.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <functional>
#include <map>

#include "core/error.h"
#include "core/fault.h"
#include "core/log.h"
#include "core/param_store.h"
#include "core/version.h"
#include "dist/communicator.h"
#include "io/checkpoint.h"
#include "io/checkpoint_bulk.h"
#include "io/checkpoint_stage.h"
#include "io/checksum.h"
#include "io/h5.h"

namespace loom {

const char* write_mode_name(WriteMode mode) {
  switch (mode) {
    case WriteMode::kAuto: return "auto";
    case WriteMode::kGathered: return "gathered";
    case WriteMode::kParallel: return "parallel";
  }
  return "?";
}

namespace {

// ---- file system helpers (rank 0) -------------------------------------------------------

[[noreturn]] void throw_errno(const std::string& what, const std::string& path, int err) {
  throw IoError(what + " " + path + ": " + std::strerror(err) + " (errno " + std::to_string(err) + ")");
}

void fsync_path(const std::string& path, bool directory) {
  int fd = ::open(path.c_str(), O_RDONLY | (directory ? O_DIRECTORY : 0));
  if (fd < 0) throw_errno("cannot open for fsync", path, errno);
  if (::fsync(fd) != 0) {
    int err = errno;
    ::close(fd);
    throw_errno("fsync failed on", path, err);
  }
  ::close(fd);
}

void rename_path(const std::string& from, const std::string& to) {
  if (std::rename(from.c_str(), to.c_str()) != 0) throw_errno("cannot rename " + from + " to", to, errno);
}

// DIR/latest := text, atomically (latest.tmp, fsync, rename, fsync DIR).
void write_latest(const std::string& dir, const std::string& text) {
  const std::string tmp = dir + "/latest.tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) throw_errno("cannot create", tmp, errno);
  ssize_t n = ::write(fd, text.data(), text.size());
  int err = n < 0 ? errno : (static_cast<size_t>(n) != text.size() ? ENOSPC : 0);
  if (err == 0 && ::fsync(fd) != 0) err = errno;
  ::close(fd);
  if (err != 0) {
    ::unlink(tmp.c_str());
    throw_errno("cannot write", tmp, err);
  }
  fault::checkpoint_pause("latest-rename", text.substr(0, text.find('\n')));
  rename_path(tmp, dir + "/latest");
  fsync_path(dir, true);
}

std::string utc_now() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// ---- Note [Agreeing on failure] -----------------------------------------------------------
// Every phase runs under try/catch on every rank, then all ranks agree: the lowest failing
// rank broadcasts its message and every rank throws it. So no rank continues alone into
// the next step's collectives, and every rank reports the same cause.
enum class FailureKind : int64_t { kIo, kData, kNotLatest };   // IoError, DataError, CheckpointNotLatest

struct Failure {
  bool failed = false;
  FailureKind kind = FailureKind::kIo;
  std::string message;
};

Failure run_guarded(const std::function<void()>& body) {
  Failure f;
  try {
    body();
  } catch (const DataError& e) {
    f = {true, FailureKind::kData, e.what()};
  } catch (const CheckpointNotLatest& e) {
    f = {true, FailureKind::kNotLatest, e.what()};
  } catch (const std::exception& e) {
    f = {true, FailureKind::kIo, e.what()};
  }
  return f;
}

void agree(Communicator& comm, const Failure& mine, const std::function<void()>& cleanup = {}) {
  int64_t first = mine.failed ? comm.rank() : INT64_MAX;
  CollectiveOptions quiet;   // the others wait here while rank 0 writes: leave it the cores
  quiet.op = ReduceOp::kMin;
  quiet.idle_wait = true;
  comm.allreduce(Tensor::of(&first, 1), quiet);
  if (first == INT64_MAX) return;
  int64_t header[2] = {static_cast<int64_t>(mine.message.size()), static_cast<int64_t>(mine.kind)};
  comm.broadcast(Tensor::of(header, 2), static_cast<int>(first));
  std::string text(static_cast<size_t>(header[0]), '\0');
  if (comm.rank() == first) text = mine.message;
  if (!text.empty())
    comm.broadcast(Tensor::of(reinterpret_cast<uint8_t*>(text.data()), header[0]), static_cast<int>(first));
  if (cleanup) cleanup();
  // The same text on every rank, so that the error is printed once (Note [An error every
  // rank reaches] in dist/mpi_communicator.h prints a rank's own text when it differs).
  if (first != 0) text += " (found by rank " + std::to_string(first) + ")";
  if (header[1] == static_cast<int64_t>(FailureKind::kData)) throw DataError(text);
  if (header[1] == static_cast<int64_t>(FailureKind::kNotLatest)) throw CheckpointNotLatest(text);
  throw IoError(text);
}

// ---- what to write ------------------------------------------------------------------------

// One dataset of the plan. Replicated data (model, optimizer) is split by rows in parallel
// mode; /state rows belong to their rank.
struct Item {
  std::string group;                 // "/model", "/optimizer/<param>", "/state"
  std::string name;
  h5::ElemType type = h5::ElemType::kF32;
  std::vector<int64_t> dims;
  const void* full = nullptr;        // the whole array (replicated data; gathered state)
  const void* row_of_rank = nullptr; // /state: this rank's row
  Device device = Device::cpu();     // where full and row_of_rank live (Note [Staging device data])
  std::string path() const { return group + "/" + name; }
  int64_t rows() const { return dims.empty() ? 1 : dims[0]; }
  uint64_t row_bytes() const {
    uint64_t n = h5::elem_type_size(type);
    for (size_t i = 1; i < dims.size(); ++i) n *= static_cast<uint64_t>(dims[i]);
    return n;
  }
};

void check_name(const std::string& name, const std::string& what) {
  bool bad = name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos;
  LOOM_CHECK(!bad, DataError, "checkpoint: " + what + " name '" + name + "' is empty, '.', '..' or contains '/'");
}

std::vector<int64_t> dims_of(const Shape& s) {
  std::vector<int64_t> d;
  for (int i = 0; i < s.rank(); ++i) d.push_back(s[i]);
  return d;
}

std::vector<Item> plan_items(const SaveRequest& req, int world_size,
                             const std::vector<std::vector<uint64_t>>& gathered_state) {
  LOOM_CHECK(req.params != nullptr && req.params->finalized(), DataError,
             "checkpoint: SaveRequest.params must be a finalized ParamStore");
  std::vector<Item> items;
  for (int i = 0; i < req.params->size(); ++i) {
    const auto& e = req.params->entry(i);
    check_name(e.name, "parameter");
    items.push_back({"/model", e.name, h5::ElemType::kF32, dims_of(e.shape), req.params->value(i).data(), nullptr,
                     req.params->device()});
  }
  for (const auto& s : req.slots) {
    check_name(s.param, "optimizer parameter");
    check_name(s.slot, "optimizer slot");
    LOOM_CHECK(s.value.dtype() == DType::kF32, DataError,
               "checkpoint: optimizer slot " + s.param + "/" + s.slot + " must be a float32 tensor, not " +
                   dtype_name(s.value.dtype()));
    items.push_back({"/optimizer/" + s.param, s.slot, h5::ElemType::kF32, dims_of(s.value.shape()), s.value.data(),
                     nullptr, s.value.device()});
  }
  for (size_t i = 0; i < req.state.size(); ++i) {
    const auto& st = req.state[i];
    check_name(st.name, "state");
    const void* full = gathered_state.empty() ? nullptr : gathered_state[i].data();
    items.push_back({"/state", st.name, h5::ElemType::kU64,
                     {world_size, static_cast<int64_t>(st.mine.size())}, full, st.mine.data()});
  }
  return items;
}

// FNV-1a over the plan's names and shapes: every rank must describe the same file.
int64_t plan_hash(const std::vector<Item>& items) {
  uint64_t h = 1469598103934665603ull;
  auto mix = [&h](const void* p, size_t n) {
    for (size_t i = 0; i < n; ++i) h = (h ^ static_cast<const uint8_t*>(p)[i]) * 1099511628211ull;
  };
  for (const auto& it : items) {
    std::string p = it.path();
    mix(p.data(), p.size() + 1);
    mix(it.dims.data(), it.dims.size() * sizeof(int64_t));
  }
  return static_cast<int64_t>(h);
}

// Every rank's request describes the same datasets (max(h) == min(h) across ranks).
void check_same_plan(Communicator& comm, int64_t hash) {
  int64_t v[2] = {hash, ~hash};
  comm.allreduce(Tensor::of(v, 2), ReduceOp::kMax);
  LOOM_CHECK(v[0] == ~v[1], DataError,
             "checkpoint: ranks passed different parameters, optimizer slots or state lengths");
}

// ---- choosing the mode --------------------------------------------------------------------

// 0: not usable for MPI-IO; 1: local (usable when every rank is on one host); 2: parallel FS.
int64_t fs_class(const std::string& dir) {
  struct statfs s{};
  if (statfs(dir.c_str(), &s) != 0) return 0;
  switch (static_cast<uint64_t>(s.f_type)) {
    case 0xEF53:              // ext2/3/4
    case 0x58465342:          // xfs
    case 0x9123683E:          // btrfs
    case 0x01021994:          // tmpfs
    case 0x2FC12FC1:          // zfs
    case 0x794C7630:          // overlayfs
      return 1;
    case 0x0BD00BD0:          // Lustre
    case 0x47504653:          // GPFS
    case 0x19830326:          // BeeGFS
      return 2;
    default:                  // NFS (0x6969), CIFS/SMB, FUSE, unknown
      return 0;
  }
}

int64_t host_hash() {
  char name[256] = {};
  gethostname(name, sizeof name - 1);
  uint64_t h = 1469598103934665603ull;
  for (const char* p = name; *p; ++p) h = (h ^ static_cast<uint8_t>(*p)) * 1099511628211ull;
  return static_cast<int64_t>(h >> 1);
}

WriteMode choose_mode(Communicator& comm, const std::string& dir, WriteMode asked) {
  const int size = comm.size();
  int64_t facts[3] = {fs_class(dir), host_hash(), comm.mpi_comm() ? 1 : 0};
  std::vector<int64_t> all(static_cast<size_t>(3 * size));
  comm.allgather(Tensor::of(facts, 3), Tensor::of(all.data(), 3 * size));
  bool mpi_ok = true, same_host = true;
  int64_t worst_fs = 2;
  for (int r = 0; r < size; ++r) {
    worst_fs = std::min(worst_fs, all[3 * r]);
    same_host = same_host && all[3 * r + 1] == all[1];
    mpi_ok = mpi_ok && all[3 * r + 2] == 1;
  }
  if (asked == WriteMode::kParallel) {
    LOOM_CHECK(mpi_ok, IoError, "checkpoint " + dir + ": parallel write mode needs MPI-IO, and this communicator (" +
                                    std::string(comm.backend()) + ") has no MPI communicator over its ranks; "
                                    "use checkpoint.write_mode = auto or gathered");
    LOOM_CHECK(worst_fs != 1 || same_host, IoError,
               "checkpoint " + dir + ": parallel write mode on a local file system needs every rank on one host "
               "(ranks on several hosts see different disks); use checkpoint.write_mode = auto or gathered");
    return WriteMode::kParallel;
  }
  if (asked == WriteMode::kGathered) return WriteMode::kGathered;
  // A local disk is one device: one writer streams to it at least as fast as several
  // (measured, README "Measured figures": 1 GB at 2 ranks, gathered 0.91 x a plain write,
  // MPI-IO 0.75 x), so kAuto takes MPI-IO only where the file system is a parallel one.
  return size > 1 && mpi_ok && worst_fs == 2 ? WriteMode::kParallel : WriteMode::kGathered;
}

// ---- Note [Layout, then bulk data] --------------------------------------------------------
// HDF5 writes only the layout: root attributes, groups, every dataset (contiguous, space
// allocated at creation, never filled) with its crc32 attribute, and /vocab. Rank 0 does
// that serially into a file whose space is reserved first, for an upper bound of the whole
// file (Note [Reserved files] in io/h5.h): a full disk or a file size limit fails the
// reservation, as loom's own error, before HDF5 holds the file, and no HDF5 write can meet
// one afterwards. So the checksums are computed before the layout, from memory: rank 0
// over whole arrays (gathered), or each rank over its slab, combined in rank order
// (parallel). Rank 0 closes the file and broadcasts the datasets' offsets; then the data
// goes to those offsets, into the reserved blocks, by plain pwrite from rank 0 (gathered)
// or by MPI-IO from every rank (parallel: each its disjoint rows of /model and /optimizer
// and its own /state row). This is the file HDF5 itself would write, byte for byte in the
// data, and the readers (loom, h5py, h5dump) see no difference.

// Rows [begin, begin + count) of an item that this rank writes (and checksums) in
// parallel mode; the whole item in gathered mode (rank 0).
struct Slab {
  int64_t begin = 0;
  int64_t count = 0;
  const void* src = nullptr;         // on the item's device
  uint64_t bytes(const Item& it) const { return static_cast<uint64_t>(count) * it.row_bytes(); }
};

Slab slab_of(const Item& it, bool parallel, int rank, int size) {
  if (!parallel) return {0, it.rows(), it.full};
  if (it.row_of_rank) return {rank, 1, it.row_of_rank};
  const int64_t begin = it.rows() * rank / size;
  const int64_t count = it.rows() * (rank + 1) / size - begin;
  return {begin, count, static_cast<const uint8_t*>(it.full) + static_cast<uint64_t>(begin) * it.row_bytes()};
}

uint64_t item_bytes(const Item& it) { return static_cast<uint64_t>(it.rows()) * it.row_bytes(); }

std::map<std::string, h5::Group> create_groups(h5::File& file, const std::vector<Item>& items) {
  std::map<std::string, h5::Group> groups;
  groups.emplace("/model", file.create_group("model"));
  groups.emplace("/optimizer", file.create_group("optimizer"));
  groups.emplace("/state", file.create_group("state"));
  for (const auto& it : items) {
    if (groups.count(it.group)) continue;
    std::string param = it.group.substr(std::string("/optimizer/").size());
    groups.emplace(it.group, groups.at("/optimizer").create_group(param));
  }
  return groups;
}

// In parallel mode each rank has one CRC per item for its slab; they are combined in rank
// order (= file order, since rank r's rows follow rank r-1's). Every rank gets the result.
std::vector<uint32_t> combine_crcs(Communicator& comm, const std::vector<Item>& items,
                                   const std::vector<uint32_t>& mine) {
  const int size = comm.size();
  const int64_t n = static_cast<int64_t>(items.size());
  std::vector<int64_t> local(mine.begin(), mine.end()), all(static_cast<size_t>(n * size));
  if (n > 0) comm.allgather(Tensor::of(local.data(), n), Tensor::of(all.data(), n * size));
  std::vector<uint32_t> out(items.size());
  for (int64_t i = 0; i < n; ++i) {
    const Item& it = items[static_cast<size_t>(i)];
    uint32_t crc = 0;
    for (int r = 0; r < size; ++r) {
      const uint64_t bytes = slab_of(it, true, r, size).bytes(it);
      auto part = static_cast<uint32_t>(all[static_cast<size_t>(r * n + i)]);
      crc = r == 0 ? part : crc32_combine_parts(crc, part, bytes);
    }
    out[static_cast<size_t>(i)] = crc;
  }
  return out;
}

// Not collective: the crc32 of this rank's slab of every item (parallel), of every item's
// whole array (gathered, rank 0), or nothing (gathered, other ranks). Over host bytes:
// device data is staged (Note [Staging device data]), which may throw.
std::vector<uint32_t> local_crcs(const std::vector<Item>& items, bool parallel, int rank, int size,
                                 ckpt::Stager& stager) {
  std::vector<uint32_t> crcs;
  if (!parallel && rank != 0) return crcs;
  for (const auto& it : items) {
    Slab s = slab_of(it, parallel, rank, size);
    crcs.push_back(stager.crc(s.src, it.device, s.bytes(it)));
  }
  return crcs;
}

// An upper bound of the final file size: the data, /vocab (strings in HDF5's global heap:
// a 16-byte header and 8-byte alignment per string, 16-byte references, collection
// headers) and the metadata (object headers, symbol tables, B-trees, attributes), each
// estimated generously. write_layout() re-checks against the real end of allocation.
// The fixed part covers the superblock, the root group and HDF5's metadata aggregation
// blocks; per dataset an object header with its attributes and a symbol-table entry come
// to well under a kilobyte, so 8 KiB is generous. (The fixed part was 1 MiB and the close
// margin another: a 1.24 MB checkpoint reserved 2.50 MB, and a disk with room for the
// file reported it full.)
uint64_t reserve_bound(const std::vector<Item>& items, const CheckpointMeta& meta,
                       const std::optional<VocabView>& vocab) {
  uint64_t bytes = uint64_t{256} << 10;
  for (const auto& it : items) bytes += item_bytes(it) + 8192 + 4 * it.path().size();
  bytes += 2 * (meta.config_toml.size() + meta.model_kind.size() + meta.loom_version.size()) + 65536;
  if (vocab) {
    uint64_t text = 0;
    for (const auto& t : *vocab->tokens) text += t.size() + 1;
    const uint64_t n = vocab->tokens->size();
    bytes += 2 * (text + 48 * n) + 8 * n + 65536;
  }
  return bytes;
}

void write_root_attributes(h5::File& file, const CheckpointMeta& meta) {
  file.set_attr("format", std::string(kCheckpointFormat));
  file.set_attr("format_version", static_cast<int64_t>(meta.format_version));
  file.set_attr("loom_version", meta.loom_version);
  file.set_attr("model_kind", meta.model_kind);
  file.set_attr("step", meta.step);
  file.set_attr("epoch", meta.epoch);
  file.set_attr("tokens_seen", meta.tokens_seen);
  file.set_attr("world_size", static_cast<int64_t>(meta.world_size));
  file.set_attr("created_utc", meta.created_utc);
  file.set_attr("config", meta.config_toml);
}

// Note [The file lists its datasets]: the root attribute "datasets" (continued in
// "datasets.1", "datasets.2", ... past 60,000 bytes) holds one line
// "PATH SHAPE" (shape as "d0xd1", "scalar" for rank 0) per dataset the writer created, so
// a reader can tell a dataset deleted after the write (h5py's `del`, a tool that repacked
// the file) from one the model never had: every dataset listed must be there with that
// shape. Files without the attribute (written before it) are checked as before.
std::string dataset_listing(const std::vector<Item>& items, const std::optional<VocabView>& vocab) {
  std::string out;
  for (const Item& it : items) out += it.path() + " " + checkpoint_shape_text(it.dims) + "\n";
  if (vocab) {
    const std::string n = std::to_string(vocab->tokens->size());
    out += "/vocab/tokens " + n + "\n/vocab/counts " + n + "\n";
  }
  return out;
}

// An attribute in an object header holds at most 64 KiB, and a model of many layers lists
// more: the listing goes in pieces of whole lines, "datasets", "datasets.1", ...
void write_dataset_listing(h5::File& file, const std::string& listing) {
  constexpr size_t kPiece = 60000;
  size_t start = 0;
  for (int piece = 0; start < listing.size() || piece == 0; ++piece) {
    size_t end = listing.size();
    if (end - start > kPiece) {
      const size_t nl = listing.rfind('\n', start + kPiece);
      end = nl != std::string::npos && nl >= start ? nl + 1 : start + kPiece;
    }
    file.set_attr(piece == 0 ? std::string("datasets") : "datasets." + std::to_string(piece),
                  listing.substr(start, end - start));
    start = end;
  }
}

void write_vocab(h5::File& file, const VocabView& vocab) {
  const auto& tokens = *vocab.tokens;
  const auto& counts = *vocab.counts;
  h5::Group v = file.create_group("vocab");
  const int64_t n = static_cast<int64_t>(tokens.size());
  h5::Dataset t = v.create_dataset("tokens", h5::ElemType::kString, {n});
  t.write_strings(tokens);
  t.set_attr_u32("crc32", crc32_of_strings(tokens));
  h5::Dataset c = v.create_dataset("counts", h5::ElemType::kI64, {n});
  c.write_rows(0, n, counts.data());
  c.set_attr_u32("crc32", crc32_update(0, counts.data(), counts.size() * sizeof(int64_t)));
}

// Rank 0, serial: the whole file but the bulk data of the items (Note [Layout, then bulk
// data]); returns each item's data offset in the file (-1 for an empty item).
std::vector<int64_t> write_layout(const std::string& path, const std::vector<Item>& items,
                                  const std::vector<uint32_t>& crcs, const CheckpointMeta& meta,
                                  const std::optional<VocabView>& vocab) {
  if (vocab)
    LOOM_CHECK(vocab->tokens->size() == vocab->counts->size(), DataError, "checkpoint " + path +
               ": /vocab tokens and counts differ in length (" + std::to_string(vocab->tokens->size()) +
               " vs " + std::to_string(vocab->counts->size()) + ")");
  // What close may still place: HDF5 allocates file space when an object is created, so
  // close only writes below the end of allocation (and may trim the aggregators' slack).
  constexpr uint64_t kCloseMargin = uint64_t{64} << 10;
  const uint64_t reserved = reserve_bound(items, meta, vocab);
  h5::File file = h5::File::create_reserved(path, reserved);
  std::vector<int64_t> offsets;
  try {
    auto groups = create_groups(file, items);
    for (size_t i = 0; i < items.size(); ++i) {
      const Item& it = items[i];
      h5::Dataset ds = groups.at(it.group).create_dataset(it.name, it.type, it.dims);
      ds.set_attr_u32("crc32", crcs[i]);
      std::optional<uint64_t> off = ds.file_offset();
      LOOM_CHECK(off.has_value() || item_bytes(it) == 0, IoError,
                 ds.where() + ": HDF5 allocated no contiguous storage for the data");
      offsets.push_back(off ? static_cast<int64_t>(*off) : -1);
    }
    write_root_attributes(file, meta);
    write_dataset_listing(file, dataset_listing(items, vocab));
    if (vocab) write_vocab(file, *vocab);
    groups.clear();
    const uint64_t eoa = file.eoa();
    if (eoa + kCloseMargin > reserved) {
      log::warn("ckpt", path + ": the layout reached " + std::to_string(eoa) + " bytes, beyond the " +
                            std::to_string(reserved) + " reserved; reserving more");
      file.reserve(eoa + kCloseMargin);
    }
    file.close();
  } catch (...) {
    file.abandon();
    throw;
  }
  return offsets;
}

// The pieces of the file this rank writes: everything (gathered, rank 0) or its slabs.
std::vector<ckpt::BulkPiece> bulk_pieces(const std::vector<Item>& items, const std::vector<int64_t>& offsets,
                                         bool parallel, int rank, int size) {
  std::vector<ckpt::BulkPiece> pieces;
  for (size_t i = 0; i < items.size(); ++i) {
    Slab s = slab_of(items[i], parallel, rank, size);
    const uint64_t bytes = s.bytes(items[i]);
    if (bytes == 0) continue;
    LOOM_ASSERT(offsets[i] >= 0, "a non-empty dataset has no file offset");
    const uint64_t at = static_cast<uint64_t>(offsets[i]) + static_cast<uint64_t>(s.begin) * items[i].row_bytes();
    pieces.push_back({at, s.src, bytes, items[i].device});
  }
  return pieces;
}

std::vector<std::vector<uint64_t>> gather_state(Communicator& comm, const SaveRequest& req) {
  std::vector<std::vector<uint64_t>> out;
  for (const auto& st : req.state) {
    const int64_t n = static_cast<int64_t>(st.mine.size());
    out.emplace_back(static_cast<size_t>(n * comm.size()));
    if (n == 0) continue;
    // int64 on the wire: the same bits, and every backend reduces/gathers int64.
    Tensor mine(const_cast<uint64_t*>(st.mine.data()), {n}, DType::kI64);
    comm.allgather(mine, Tensor(out.back().data(), {n * comm.size()}, DType::kI64));
  }
  return out;
}

}  // namespace

std::string save_checkpoint(Communicator& comm, const std::string& dir, const std::string& name,
                            const SaveRequest& req, WriteMode mode, WriteMode* used) {
  h5::init_library();
  using Clock = std::chrono::steady_clock;
  const auto t_start = Clock::now();
  auto secs = [](Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); };
  const int rank = comm.rank(), size = comm.size();
  const std::string final_path = dir + "/" + name + ".h5";
  const std::string tmp_path = final_path + ".tmp";
  auto remove_tmp = [&] { if (rank == 0) ::unlink(tmp_path.c_str()); };

  // Phase 0: validate the request (same plan everywhere), make DIR, choose the mode.
  std::vector<Item> items;
  int64_t hash = 0;
  agree(comm, run_guarded([&] {
    check_name(name, "checkpoint");
    items = plan_items(req, size, {});
    hash = plan_hash(items);
    if (rank == 0 && ::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST)
      throw_errno("cannot create checkpoint directory", dir, errno);
  }));
  check_same_plan(comm, hash);
  comm.barrier();   // DIR exists for every rank
  const WriteMode chosen = choose_mode(comm, dir, mode);
  if (used) *used = chosen;
  const bool parallel = chosen == WriteMode::kParallel;

  CheckpointMeta meta = req.meta;
  meta.world_size = size;
  if (meta.loom_version.empty()) meta.loom_version = kVersion;
  if (meta.created_utc.empty()) meta.created_utc = utc_now();

  // Phase 1: the checksums, from memory (Note [Layout, then bulk data]). Gathered: rank 0
  // also holds every rank's /state row.
  std::vector<std::vector<uint64_t>> gathered;
  if (!parallel) gathered = gather_state(comm, req);
  if (!parallel && rank == 0) items = plan_items(req, size, gathered);
  uint64_t largest = 0;
  for (const auto& it : items) largest = std::max(largest, item_bytes(it));
  ckpt::Stager stager(largest);   // this save's one staging buffer, allocated at first use
  std::vector<uint32_t> crcs;
  agree(comm, run_guarded([&] { crcs = local_crcs(items, parallel, rank, size, stager); }));
  if (parallel) crcs = combine_crcs(comm, items, crcs);
  const auto t_crc = Clock::now();

  // Phase 2: rank 0 writes the layout into the reserved tmp file and shares the offsets.
  std::vector<int64_t> offsets(items.size(), -1);
  agree(comm, run_guarded([&] {
    if (rank == 0) offsets = write_layout(tmp_path, items, crcs, meta, req.vocab);
  }), remove_tmp);
  if (!offsets.empty()) comm.broadcast(Tensor::of(offsets.data(), static_cast<int64_t>(offsets.size())), 0);
  const auto t_layout = Clock::now();

  // Phase 3: the bulk data, into the reserved blocks, then fsync (every writer).
  std::string bulk_error;
  Failure f3 = run_guarded([&] {
    if (rank == 0) fault::checkpoint_pause("data", final_path);
    if (parallel) {
      bulk_error = ckpt::write_pieces_mpiio(comm, tmp_path, bulk_pieces(items, offsets, true, rank, size), stager);
    } else if (rank == 0) {
      ckpt::write_pieces_posix(tmp_path, bulk_pieces(items, offsets, false, 0, 1), stager);
    }
  });
  if (!f3.failed && !bulk_error.empty()) f3 = {true, FailureKind::kIo, bulk_error};
  agree(comm, f3, remove_tmp);
  const auto t_data = Clock::now();

  // Phase 4: rank 0 makes it durable and visible: fsync, rename, fsync DIR, latest.
  agree(comm, run_guarded([&] {
    if (rank != 0) return;
    // Fault injection points (Note [Fault injection points] in core/fault.h): no-ops unless
    // a kill test asks for a pause.
    fault::checkpoint_pause("fsync", final_path);
    fsync_path(tmp_path, false);
    fault::checkpoint_pause("rename", final_path);
    rename_path(tmp_path, final_path);
    fault::checkpoint_pause("dirsync", final_path);
    fsync_path(dir, true);
    fault::checkpoint_pause("latest", final_path);
    // Note [A latest that cannot be written]
    // `latest` is what makes a checkpoint the one --resume auto takes (it is followed
    // before any step order: after a --resume PATH from an older step, older branches'
    // higher steps stay on disk). When it cannot be rewritten (a disk that filled up in
    // between: write_latest leaves no latest.tmp), the step file is whole and stays, but it
    // is not the run's newest checkpoint until `latest` says so: the error says both, and
    // how to resume from either.
    try {
      write_latest(dir, name + ".h5\n");
    } catch (const IoError& e) {
      const std::string previous = read_latest_text(dir);
      throw CheckpointNotLatest(std::string(e.what()) + "; " + final_path + " was written whole, but " + dir + "/latest " +
                    (previous.empty() ? std::string("was not written (--resume auto takes the newest whole checkpoint by step)")
                                      : "still names " + previous + ", so --resume auto resumes from that") +
                    " (--resume " + final_path + " resumes from step " + std::to_string(meta.step) + ")");
    }
  }), remove_tmp);
  const auto t_end = Clock::now();
  char times[160];
  std::snprintf(times, sizeof times, "%.2f s: checksums %.2f, layout %.2f, data %.2f, durable %.2f", secs(t_start, t_end),
                secs(t_start, t_crc), secs(t_crc, t_layout), secs(t_layout, t_data), secs(t_data, t_end));
  log::info("ckpt", "saved " + final_path + " (step " + std::to_string(meta.step) + ", " +
                        write_mode_name(chosen) + ", " + times + ")");
  return final_path;
}

}  // namespace loom
