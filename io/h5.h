#pragma once
// RAII handles over HDF5 with checked calls. hdf5.h stays in io/h5.cpp: an HDF5 id (hid_t)
// is carried here as an opaque int64_t inside h5::Handle and never handed to callers.
//
// Every HDF5 call in h5.cpp goes through LOOM_H5_CHECK, which throws loom::IoError with
// the expression, file:line, the HDF5 error stack and what was being done (file path and
// object path, e.g. "ckpt.h5 dataset /model/W").
//
// Note [File locking]
// HDF5 1.10 takes flock() locks on files it opens with the serial drivers. flock fails
// (or hangs) on NFS and Lustre, and 1.10.8 has no H5Pset_file_locking. The documented
// switch is the environment variable HDF5_USE_FILE_LOCKING=FALSE, which the library reads
// when it opens a file, so init_library() sets it (without overriding a value the user
// set) before loom opens any file. Exclusion comes from loom's protocol instead: writers
// write NAME.h5.tmp and rename it; readers only open renamed files (DESIGN.md).
//
// Note [Reserved files]
// HDF5 1.10.8 cannot close a file whose flush failed: the failed close leaves the file in
// the library's open list and the process may crash later, at library shutdown
// (H5F__close_cb). So a writer must never let HDF5 write where the disk may refuse it.
// File::create_reserved() gets there without trusting HDF5's error paths: it builds an
// empty HDF5 file in memory (core driver, no backing store), creates PATH itself, reserves
// `reserve_bytes` with posix_fallocate (ENOSPC, EFBIG, EDQUOT surface here, as loom's own
// IoError, before HDF5 has the file), writes the empty image into the reserved blocks and
// only then opens PATH with the sec2 driver, without truncation. Every address HDF5 later
// allocates lies below its end-of-allocation (EOA); while EOA stays below the reservation
// every HDF5 write, the metadata flushed at close included, lands in blocks that are
// already the file's. At close HDF5 truncates the file to EOA: blocks below it stay.
// reserve() extends the reservation (a writer calls it with eoa() plus a margin before
// close, so the guarantee never rests on an estimate), and abandon() is the last resort
// when it cannot: it points HDF5's descriptor at an anonymous memory file, so the close
// that HDF5 insists on cannot fail; the caller then deletes PATH.
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace loom {

class Communicator;

// "1.10.8 (parallel)" for the linked library.
std::string hdf5_version();

namespace h5 {

// Once per process, before any file is opened: file locking off (Note [File locking]) and
// HDF5's automatic error printing off (errors are reported through IoError instead).
void init_library();

enum class Kind : uint8_t { kFile, kGroup, kDataset, kDataspace, kAttribute, kPropertyList, kDatatype };

// Owns one HDF5 id and closes it with the call that matches its kind. Move-only.
class Handle {
 public:
  Handle() = default;
  Handle(int64_t id, Kind kind) : id_(id), kind_(kind) {}
  ~Handle();
  Handle(Handle&& other) noexcept;
  Handle& operator=(Handle&& other) noexcept;
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  int64_t id() const { return id_; }
  bool valid() const { return id_ >= 0; }
  // Closes now and reports a failure (the destructor only logs one).
  void close();
  // Gives up ownership without closing.
  int64_t release() {
    int64_t id = id_;
    id_ = -1;
    return id;
  }

 private:
  int64_t id_ = -1;
  Kind kind_ = Kind::kFile;
};

// Element types loom stores. File types: IEEE f32 LE, std i64/u64 LE, vlen UTF-8 string.
enum class ElemType : uint8_t { kF32, kI64, kU64, kString, kF64 };
const char* elem_type_name(ElemType type);  // "float32", "int64", "uint64", "string", "float64"
size_t elem_type_size(ElemType type);       // bytes in memory (string: 0)

// How a file is opened: serial sec2 driver, or MPI-IO over a Communicator's ranks
// (Communicator::mpi_comm()) with collective metadata (every rank makes every metadata
// call with the same arguments).
enum class Driver : uint8_t { kSerial, kMpio };

class Dataset;
class Group;

// Something with attributes: the file (root group), a group or a dataset.
class Object {
 public:
  const std::string& file_path() const { return file_; }
  const std::string& path() const { return path_; }   // "/", "/model/W"
  std::string where() const;                           // "FILE dataset PATH" for messages

  bool has_attr(const std::string& name) const;
  void set_attr(const std::string& name, int64_t value);
  void set_attr(const std::string& name, const std::string& value);  // scalar vlen UTF-8
  void set_attr_u32(const std::string& name, uint32_t value);
  // Throw IoError naming the attribute if it is missing or of another type class.
  int64_t attr_i64(const std::string& name) const;
  uint32_t attr_u32(const std::string& name) const;
  std::string attr_string(const std::string& name) const;

 protected:
  Object(Handle handle, std::string file, std::string path, Driver driver)
      : handle_(std::move(handle)), file_(std::move(file)), path_(std::move(path)), driver_(driver) {}
  std::string child_path(const std::string& name) const;
  Handle handle_;
  std::string file_;
  std::string path_;
  Driver driver_;
  bool is_dataset_ = false;
};

class Group : public Object {
 public:
  struct Child { std::string name; bool is_group = false; bool is_dataset = false; };
  bool has(const std::string& name) const;           // a direct child link
  std::vector<Child> children() const;               // in name order
  Group create_group(const std::string& name);
  Group open_group(const std::string& name) const;
  // Contiguous layout, no fill (every byte is written by the caller).
  Dataset create_dataset(const std::string& name, ElemType type, const std::vector<int64_t>& dims);
  Dataset open_dataset(const std::string& name) const;

 protected:
  using Object::Object;
};

class File : public Group {
 public:
  // Creates (truncating) `path` with the serial driver.
  static File create(const std::string& path);
  // Collective over comm's ranks: creates (truncating) `path` for MPI-IO over
  // comm.mpi_comm(); throws IoError when comm has no MPI communicator.
  static File create_mpio(const std::string& path, const Communicator& comm);
  static File open(const std::string& path, bool writable);   // serial
  // Serial: creates PATH holding `reserve_bytes` reserved bytes and opens it for writing
  // (Note [Reserved files]). Throws IoError naming PATH and the OS error; PATH is removed
  // again when the reservation fails.
  static File create_reserved(const std::string& path, uint64_t reserve_bytes);
  // End of allocation: every byte HDF5 has placed or will write at close lies below it.
  uint64_t eoa() const;
  // Serial files: the first `bytes` bytes of the file are allocated on disk (posix_fallocate).
  void reserve(uint64_t bytes);
  // Serial files: closes without letting anything pending reach PATH (Note [Reserved files]).
  // Never throws; for failure paths only. PATH's content is then undefined: delete it.
  void abandon() noexcept;
  void flush();
  void close();

 private:
  using Group::Group;
};

class Dataset : public Object {
 public:
  const std::vector<int64_t>& dims() const { return dims_; }
  int64_t numel() const;
  // The element type, or nullopt for a type loom does not store (see type_name()).
  std::optional<ElemType> type() const { return type_; }
  std::string type_name() const;                    // "float32", or HDF5's class and size
  uint64_t storage_bytes() const;                   // bytes allocated in the file
  std::optional<uint64_t> file_offset() const;      // of the data (contiguous layout)

  // Rows [row_begin, row_begin + row_count) of the first dimension; `data` is row-major of
  // `type()`. In an MPI-IO file the call is collective (ranks may pass row_count 0).
  void write_rows(int64_t row_begin, int64_t row_count, const void* data);
  void read_rows(int64_t row_begin, int64_t row_count, void* data) const;
  // Elements [begin, begin + count) of the flattened (row-major) array, in any shape: a
  // piece need not hold whole rows. Serial files only.
  void read_elements(int64_t begin, int64_t count, void* data) const;
  void write_strings(const std::vector<std::string>& values);   // 1-D string dataset
  std::vector<std::string> read_strings() const;

 private:
  friend class Group;
  Dataset(Handle handle, std::string file, std::string path, Driver driver);
  std::vector<int64_t> dims_;
  std::optional<ElemType> type_;
  int64_t row_elems_ = 1;   // elements per row of the first dimension
};

}  // namespace h5
}  // namespace loom
