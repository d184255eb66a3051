// HDF5 output of the vocabulary and of co-occurrence partitions, and GloVe's binary export.
// hdf5.h stays here; every HDF5 call is checked and its failure names file and object.
//
// Note [Cooccur file format]
// cooccur.part-<r>-of-<W>.h5, one per rank (no collective I/O needed, any file system):
//   /            attrs format="loom-cooccur", format_version=1, partition, num_partitions,
//                window, symmetric (0/1), seed, nnz_total, vocab_size
//   /cooccur     compound {row int32, col int32, value float64}, (nnz of this partition),
//                0-based ids, rows with row % num_partitions == partition, shuffled
//   /vocab/tokens, /vocab/counts   the vocabulary (vlen UTF-8 strings, int64)
#include <fcntl.h>
#include <hdf5.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "core/error.h"
#include "core/tensor.h"
#include "dist/communicator.h"
#include "io/checksum.h"
#include "io/cooccur.h"
#include "io/cooccur_write.h"
#include "io/h5.h"
#include "io/vocab.h"

namespace loom {
namespace {

class H5Id {   // closes with H5Oclose / H5Fclose / H5Sclose / H5Tclose / H5Aclose by kind
 public:
  H5Id(hid_t id, herr_t (*close)(hid_t), const std::string& what) : id_(id), close_(close) {
    if (id < 0) throw IoError("HDF5 failed: " + what);
  }
  ~H5Id() { close_(id_); }
  H5Id(const H5Id&) = delete;
  H5Id& operator=(const H5Id&) = delete;
  operator hid_t() const { return id_; }

 private:
  hid_t id_;
  herr_t (*close_)(hid_t);
};

void check(herr_t rc, const std::string& what) {
  if (rc < 0) throw IoError("HDF5 failed: " + what);
}

void attr_i64(hid_t obj, const char* name, int64_t v, const std::string& file) {
  H5Id space(H5Screate(H5S_SCALAR), H5Sclose, "dataspace in " + file);
  H5Id a(H5Acreate2(obj, name, H5T_STD_I64LE, space, H5P_DEFAULT, H5P_DEFAULT), H5Aclose,
         file + " attribute " + name);
  check(H5Awrite(a, H5T_NATIVE_INT64, &v), file + " attribute " + name);
}

void attr_u32(hid_t obj, const char* name, uint32_t v, const std::string& file) {
  H5Id space(H5Screate(H5S_SCALAR), H5Sclose, "dataspace in " + file);
  H5Id a(H5Acreate2(obj, name, H5T_STD_U32LE, space, H5P_DEFAULT, H5P_DEFAULT), H5Aclose,
         file + " attribute " + name);
  check(H5Awrite(a, H5T_NATIVE_UINT32, &v), file + " attribute " + name);
}

// A scalar variable-length UTF-8 string, as the checkpoints' attributes (h5py reads a str).
void attr_str(hid_t obj, const char* name, const std::string& v, const std::string& file) {
  H5Id type(H5Tcopy(H5T_C_S1), H5Tclose, "string type");
  check(H5Tset_size(type, H5T_VARIABLE), "string size");
  check(H5Tset_cset(type, H5T_CSET_UTF8), "string cset");
  H5Id space(H5Screate(H5S_SCALAR), H5Sclose, "dataspace in " + file);
  H5Id a(H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT), H5Aclose,
         file + " attribute " + name);
  const char* text = v.c_str();
  check(H5Awrite(a, type, &text), file + " attribute " + name);
}

hid_t entry_type(bool file_type) {
  hid_t t = H5Tcreate(H5T_COMPOUND, sizeof(CooccurEntry));
  check(H5Tinsert(t, "row", offsetof(CooccurEntry, row), file_type ? H5T_STD_I32LE : H5T_NATIVE_INT32), "row");
  check(H5Tinsert(t, "col", offsetof(CooccurEntry, col), file_type ? H5T_STD_I32LE : H5T_NATIVE_INT32), "col");
  check(H5Tinsert(t, "value", offsetof(CooccurEntry, value), file_type ? H5T_IEEE_F64LE : H5T_NATIVE_DOUBLE), "value");
  return t;
}

void write_vocab_group(hid_t file, const Vocab& vocab, const std::string& path) {
  H5Id group(H5Gcreate2(file, "vocab", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose, path + " group /vocab");
  hsize_t n = static_cast<hsize_t>(vocab.size());
  H5Id space(H5Screate_simple(1, &n, nullptr), H5Sclose, path + " /vocab dataspace");
  H5Id str(H5Tcopy(H5T_C_S1), H5Tclose, "string type");
  check(H5Tset_size(str, H5T_VARIABLE), "vlen string");
  check(H5Tset_cset(str, H5T_CSET_UTF8), "string cset");
  std::vector<const char*> ptrs;
  for (const auto& t : vocab.tokens()) ptrs.push_back(t.c_str());
  H5Id tokens(H5Dcreate2(group, "tokens", str, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Dclose,
              path + " dataset /vocab/tokens");
  if (n) check(H5Dwrite(tokens, str, H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()), path + " dataset /vocab/tokens");
  // The checkpoints' convention (Note [CRC of string datasets] in io/checksum.h).
  attr_u32(tokens, "crc32", crc32_of_strings(vocab.tokens()), path);
  H5Id counts(H5Dcreate2(group, "counts", H5T_STD_I64LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
              H5Dclose, path + " dataset /vocab/counts");
  if (n) check(H5Dwrite(counts, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, vocab.counts().data()),
               path + " dataset /vocab/counts");
  attr_u32(counts, "crc32", crc32_update(0, vocab.counts().data(), vocab.counts().size() * sizeof(int64_t)), path);
}

hid_t create_file(const std::string& tmp) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  return H5Fcreate(tmp.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
}

void rename_into_place(const std::string& tmp, const std::string& path) {
  if (std::rename(tmp.c_str(), path.c_str()) != 0)
    throw IoError("cannot rename " + tmp + " to " + path + ": " + std::strerror(errno));
}

}  // namespace

void write_vocab_h5(const Vocab& vocab, const std::string& path) {
  std::string tmp = path + ".tmp";
  {
    H5Id file(create_file(tmp), H5Fclose, "cannot create " + tmp + " (check the directory)");
    attr_str(file, "format", "loom-vocab", tmp);
    attr_i64(file, "format_version", kVocabH5Version, tmp);
    write_vocab_group(file, vocab, tmp);
  }
  rename_into_place(tmp, path);
}

Vocab read_vocab_h5(const std::string& path, bool* verified) {
  h5::File file = h5::File::open(path, false);
  const std::string format = file.has_attr("format") ? file.attr_string("format") : "";
  LOOM_CHECK(format == "loom-vocab", DataError,
             path + ": not a loom vocabulary (attribute format is '" + format + "', expected 'loom-vocab')");
  const int64_t version = file.attr_i64("format_version");
  LOOM_CHECK(version == 1 || version == kVocabH5Version, DataError,
             path + ": format_version " + std::to_string(version) + ", this loom reads 1 and " +
                 std::to_string(kVocabH5Version) + " (a newer loom wrote it?)");
  const h5::Group group = file.open_group("vocab");
  const h5::Dataset tokens_ds = group.open_dataset("tokens"), counts_ds = group.open_dataset("counts");
  std::vector<std::string> tokens = tokens_ds.read_strings();
  LOOM_CHECK(counts_ds.dims().size() == 1 && counts_ds.dims()[0] == static_cast<int64_t>(tokens.size()), DataError,
             counts_ds.where() + ": " + std::to_string(counts_ds.numel()) + " counts for " +
                 std::to_string(tokens.size()) + " tokens");
  std::vector<int64_t> counts(tokens.size());
  if (!counts.empty()) counts_ds.read_rows(0, static_cast<int64_t>(counts.size()), counts.data());
  if (version >= 2) {
    // Note [vocab.h5]: the same checks as a checkpoint's /vocab.
    LOOM_CHECK(tokens_ds.has_attr("crc32") && counts_ds.has_attr("crc32"), DataError,
               path + ": format_version 2 without a crc32 attribute on /vocab/tokens or /vocab/counts (damaged)");
    LOOM_CHECK(crc32_of_strings(tokens) == tokens_ds.attr_u32("crc32"), DataError,
               tokens_ds.where() + ": checksum mismatch (the file is damaged; delete it and run again to rebuild it)");
    LOOM_CHECK(crc32_update(0, counts.data(), counts.size() * sizeof(int64_t)) == counts_ds.attr_u32("crc32"),
               DataError,
               counts_ds.where() + ": checksum mismatch (the file is damaged; delete it and run again to rebuild it)");
  }
  if (verified != nullptr) *verified = version >= 2;
  return Vocab(std::move(tokens), std::move(counts));
}

void cooccur::write_cooccur_h5_behind(const std::string& path, const CooccurResult& result, const Vocab& vocab,
                                      const CooccurOptions& options, const std::function<size_t(size_t)>& wait_final) {
  std::string tmp = path + ".tmp";
  {
    H5Id file(create_file(tmp), H5Fclose, "cannot create " + tmp + " (check the output directory)");
    attr_str(file, "format", "loom-cooccur", tmp);
    attr_i64(file, "format_version", 1, tmp);
    attr_i64(file, "partition", result.partition, tmp);
    attr_i64(file, "num_partitions", result.num_partitions, tmp);
    attr_i64(file, "window", options.window, tmp);
    attr_i64(file, "symmetric", options.symmetric ? 1 : 0, tmp);
    attr_i64(file, "seed", static_cast<int64_t>(options.seed), tmp);
    attr_i64(file, "nnz_total", result.stats.nnz, tmp);
    attr_i64(file, "vocab_size", vocab.size(), tmp);
    hsize_t n = result.entries.size();
    H5Id space(H5Screate_simple(1, &n, nullptr), H5Sclose, tmp + " /cooccur dataspace");
    H5Id ftype(entry_type(true), H5Tclose, "compound type");
    H5Id mtype(entry_type(false), H5Tclose, "compound type");
    H5Id ds(H5Dcreate2(file, "cooccur", ftype, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Dclose,
            tmp + " dataset /cooccur");
    for (size_t hi = result.entries.size(); hi > 0;) {
      size_t lo = wait_final(hi);
      hsize_t start = lo, count = hi - lo;
      check(H5Sselect_hyperslab(space, H5S_SELECT_SET, &start, nullptr, &count, nullptr), tmp + " /cooccur selection");
      H5Id mem(H5Screate_simple(1, &count, nullptr), H5Sclose, tmp + " /cooccur memory space");
      check(H5Dwrite(ds, mtype, mem, space, H5P_DEFAULT, result.entries.data() + lo),
            tmp + " dataset /cooccur (disk full?)");
      hi = lo;
    }
    write_vocab_group(file, vocab, tmp);
    check(H5Fflush(file, H5F_SCOPE_GLOBAL), "flush " + tmp);
  }
  rename_into_place(tmp, path);
}

void write_cooccur_h5(const std::string& path, const CooccurResult& result, const Vocab& vocab,
                      const CooccurOptions& options) {
  cooccur::write_cooccur_h5_behind(path, result, vocab, options, [](size_t) { return size_t{0}; });
}

std::vector<CooccurEntry> read_cooccur_h5(const std::string& path) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  H5Id file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose, "cannot open " + path);
  H5Id ds(H5Dopen2(file, "cooccur", H5P_DEFAULT), H5Dclose, path + " dataset /cooccur is missing");
  H5Id space(H5Dget_space(ds), H5Sclose, path + " dataset /cooccur dataspace");
  hsize_t n = 0;
  if (H5Sget_simple_extent_ndims(space) != 1)
    throw DataError(path + " dataset /cooccur is not 1-D");
  H5Sget_simple_extent_dims(space, &n, nullptr);
  std::vector<CooccurEntry> out(n);
  H5Id mtype(entry_type(false), H5Tclose, "compound type");
  if (n) check(H5Dread(ds, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()), path + " dataset /cooccur");
  return out;
}

void export_glove_cooccurrence(Communicator& comm, const CooccurResult& result, const std::string& path) {
  int64_t mine = static_cast<int64_t>(result.entries.size());
  std::vector<int64_t> counts(static_cast<size_t>(comm.size()));
  comm.allgather(Tensor::of(&mine, 1), Tensor::of(counts.data(), comm.size()));
  int64_t before = 0;
  for (int r = 0; r < comm.rank(); ++r) before += counts[static_cast<size_t>(r)];
  if (comm.rank() == 0) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) throw IoError("cannot create " + path + ": " + std::strerror(errno));
    ::close(fd);
  }
  comm.barrier();
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) throw IoError("cannot open " + path + " for writing: " + std::strerror(errno));
  constexpr size_t kBlock = 1 << 16;
  std::vector<CooccurEntry> block(kBlock);
  off_t offset = static_cast<off_t>(before) * static_cast<off_t>(sizeof(CooccurEntry));
  for (size_t i = 0; i < result.entries.size(); i += kBlock) {
    size_t n = std::min(kBlock, result.entries.size() - i);
    for (size_t j = 0; j < n; ++j) {
      const CooccurEntry& e = result.entries[i + j];
      block[j] = {e.row + 1, e.col + 1, e.value};   // GloVe's ids are 1-based
    }
    size_t bytes = n * sizeof(CooccurEntry);
    if (::pwrite(fd, block.data(), bytes, offset) != static_cast<ssize_t>(bytes)) {
      ::close(fd);
      throw IoError("write failed for " + path + ": " + std::strerror(errno) + " (disk full?)");
    }
    offset += static_cast<off_t>(bytes);
  }
  ::close(fd);
  comm.barrier();
}

}  // namespace loom
