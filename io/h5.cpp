#include "io/h5.h"

#include <fcntl.h>
#include <hdf5.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string_view>
#include <utility>
#include <vector>

#include "core/error.h"
#include "core/log.h"
#include "dist/mpi_handle.h"

namespace loom {

std::string hdf5_version() {
  unsigned major = 0, minor = 0, release = 0;
  H5get_libversion(&major, &minor, &release);
  std::string v = std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(release);
#ifdef H5_HAVE_PARALLEL
  v += " (parallel)";
#endif
  return v;
}

namespace h5 {
namespace {

struct StackEntry {
  std::string func, desc;
};

herr_t collect_error(unsigned, const H5E_error2_t* err, void* client) {
  static_cast<std::vector<StackEntry>*>(client)->push_back(
      {err->func_name ? err->func_name : "?", err->desc ? err->desc : ""});
  return 0;
}

// The current HDF5 error stack, innermost first; clears it.
std::vector<StackEntry> error_stack() {
  std::vector<StackEntry> stack;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, collect_error, &stack);
  H5Eclear2(H5E_DEFAULT);
  return stack;
}

// What the failed call was doing, in words, from the HDF5 function it names.
std::string action_of(std::string_view expr) {
  static constexpr std::pair<std::string_view, std::string_view> kActions[] = {
      {"H5Fopen", "cannot open the file"},          {"H5Fcreate", "cannot create the file"},
      {"H5Fflush", "cannot flush the file"},        {"H5Dread", "cannot read the dataset"},
      {"H5Dwrite", "cannot write the dataset"},     {"H5Dopen", "cannot open the dataset"},
      {"H5Dcreate", "cannot create the dataset"},   {"H5Gopen", "cannot open the group"},
      {"H5Gcreate", "cannot create the group"},     {"H5Literate", "cannot list the group"},
      {"H5Lexists", "cannot look up a link"},       {"H5Aread", "cannot read the attribute"},
      {"H5Awrite", "cannot write the attribute"},   {"H5Aopen", "cannot open the attribute"},
      {"H5Acreate", "cannot create the attribute"}, {"H5Aexists", "cannot look up the attribute"},
      {"H5Adelete", "cannot delete the attribute"}, {"H5Dget", "cannot read the dataset's layout"},
      {"H5Aget", "cannot read the attribute's type"},
  };
  for (const auto& [prefix, action] : kActions) {
    if (expr.starts_with(prefix)) return std::string(action);
  }
  const std::string_view func = expr.substr(0, expr.find('('));
  return "HDF5's " + std::string(func) + " failed";
}

// Why, in a sentence: the cause a user can act on, found in HDF5's stack (its innermost
// entries say the most), else the innermost description.
std::string reason_of(const std::vector<StackEntry>& stack) {
  for (const StackEntry& e : stack) {   // the system's own error (no such file, no space, ...)
    const size_t at = e.desc.find("error message = '");
    if (at == std::string::npos) continue;
    const size_t begin = at + 17, end = e.desc.find('\'', begin);
    if (end != std::string::npos) return e.desc.substr(begin, end - begin);
  }
  for (const StackEntry& e : stack) {
    if (!e.desc.starts_with("truncated file")) continue;
    // "truncated file: eof = 102400, sblock->base_addr = 0, stored_eof = 204800"
    const size_t eof = e.desc.find("eof = "), stored = e.desc.find("stored_eof = ");
    if (eof != std::string::npos && stored != std::string::npos) {
      return "the file is truncated: " + e.desc.substr(eof + 6, e.desc.find(',', eof) - eof - 6) + " of its " +
             e.desc.substr(stored + 13) + " bytes are there";
    }
    return "the file is truncated";
  }
  for (const StackEntry& e : stack) {
    if (e.desc.find("file signature not found") != std::string::npos)
      return "it is not an HDF5 file (no HDF5 signature: empty, overwritten or of another format)";
  }
  for (const StackEntry& e : stack) {
    if (e.desc.find("checksum") != std::string::npos)
      return "the file is damaged: a checksum of HDF5's own metadata does not match";
  }
  if (stack.empty()) return "HDF5 gave no reason";
  return "the file is damaged or unreadable (HDF5: " + stack.front().desc + ")";
}

// Note [HDF5 errors in a sentence]
// HDF5's automatic error printing is off (init_library), so its "HDF5-DIAG" stack never
// reaches the terminal, and a failed call is an IoError that says where (the file, and the
// group or dataset), what loom was doing and why, in words: "run/step_9.h5 (opening): cannot
// open the file: the file is truncated: 102400 of its 204800 bytes are there". The call,
// loom's source line and HDF5's whole stack go to a debug line (run.log_level = "debug")
// for whoever debugs loom itself.
[[noreturn]] void fail(const char* expr, const char* file, int line, const std::string& where) {
  const std::vector<StackEntry> stack = error_stack();
  std::string internals;
  for (const StackEntry& e : stack) internals += (internals.empty() ? "" : " <- ") + e.func + ": " + e.desc;
  log::debug("hdf5", where + ": " + expr + " failed at " + file + ":" + std::to_string(line) + " [" + internals + "]");
  throw IoError(where + ": " + action_of(expr) + ": " + reason_of(stack));
}

}  // namespace

// Checks an HDF5 return (negative = failure); evaluates to the value otherwise.
#define LOOM_H5_CHECK(expr, where)                                             \
  ([&]() {                                                                     \
    auto loom_h5_r = (expr);                                                   \
    if (loom_h5_r < 0) [[unlikely]]                                            \
      ::loom::h5::fail(#expr, __FILE__, __LINE__, (where));                    \
    return loom_h5_r;                                                          \
  }())

void init_library() {
  static std::once_flag once;
  std::call_once(once, [] {
    setenv("HDF5_USE_FILE_LOCKING", "FALSE", /*overwrite=*/0);   // Note [File locking]
    H5open();
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  });
}

const char* elem_type_name(ElemType type) {
  switch (type) {
    case ElemType::kF32: return "float32";
    case ElemType::kI64: return "int64";
    case ElemType::kU64: return "uint64";
    case ElemType::kString: return "string";
    case ElemType::kF64: return "float64";
  }
  return "?";
}

size_t elem_type_size(ElemType type) {
  switch (type) {
    case ElemType::kF32: return 4;
    case ElemType::kI64:
    case ElemType::kU64:
    case ElemType::kF64: return 8;
    case ElemType::kString: return 0;
  }
  return 0;
}

namespace {

hid_t file_type(ElemType type) {
  switch (type) {
    case ElemType::kF32: return H5T_IEEE_F32LE;
    case ElemType::kI64: return H5T_STD_I64LE;
    case ElemType::kU64: return H5T_STD_U64LE;
    case ElemType::kF64: return H5T_IEEE_F64LE;
    case ElemType::kString: break;
  }
  return -1;
}

hid_t mem_type(ElemType type) {
  switch (type) {
    case ElemType::kF32: return H5T_NATIVE_FLOAT;
    case ElemType::kI64: return H5T_NATIVE_INT64;
    case ElemType::kU64: return H5T_NATIVE_UINT64;
    case ElemType::kF64: return H5T_NATIVE_DOUBLE;
    case ElemType::kString: break;
  }
  return -1;
}

// A variable-length UTF-8 string type (caller owns the handle).
Handle vlen_string_type(const std::string& where) {
  Handle t(LOOM_H5_CHECK(H5Tcopy(H5T_C_S1), where), Kind::kDatatype);
  LOOM_H5_CHECK(H5Tset_size(t.id(), H5T_VARIABLE), where);
  LOOM_H5_CHECK(H5Tset_cset(t.id(), H5T_CSET_UTF8), where);
  return t;
}

std::optional<ElemType> classify(hid_t type) {
  if (H5Tget_class(type) == H5T_STRING) {
    return H5Tis_variable_str(type) > 0 ? std::optional(ElemType::kString) : std::nullopt;
  }
  for (ElemType t : {ElemType::kF32, ElemType::kI64, ElemType::kU64, ElemType::kF64})
    if (H5Tequal(type, file_type(t)) > 0) return t;
  return std::nullopt;
}

Handle transfer_list(Driver driver, const std::string& where) {
  Handle dxpl(LOOM_H5_CHECK(H5Pcreate(H5P_DATASET_XFER), where), Kind::kPropertyList);
  if (driver == Driver::kMpio)
    LOOM_H5_CHECK(H5Pset_dxpl_mpio(dxpl.id(), H5FD_MPIO_COLLECTIVE), where);
  return dxpl;
}

}  // namespace

// ---- Handle --------------------------------------------------------------------------

static herr_t close_id(hid_t id, Kind kind) {
  switch (kind) {
    case Kind::kFile: return H5Fclose(id);
    case Kind::kGroup: return H5Gclose(id);
    case Kind::kDataset: return H5Dclose(id);
    case Kind::kDataspace: return H5Sclose(id);
    case Kind::kAttribute: return H5Aclose(id);
    case Kind::kPropertyList: return H5Pclose(id);
    case Kind::kDatatype: return H5Tclose(id);
  }
  return -1;
}

Handle::~Handle() {
  if (id_ >= 0 && close_id(id_, kind_) < 0) {
    log::warn("h5", "closing an HDF5 object failed: " + reason_of(error_stack()));
  }
}

Handle::Handle(Handle&& other) noexcept : id_(other.id_), kind_(other.kind_) { other.id_ = -1; }

Handle& Handle::operator=(Handle&& other) noexcept {
  if (this != &other) {
    if (id_ >= 0) close_id(id_, kind_);
    id_ = other.id_;
    kind_ = other.kind_;
    other.id_ = -1;
  }
  return *this;
}

void Handle::close() {
  if (id_ < 0) return;
  hid_t id = id_;
  id_ = -1;
  LOOM_H5_CHECK(close_id(id, kind_), "closing an HDF5 object");
}

// ---- Object: attributes ----------------------------------------------------------------

std::string Object::where() const {
  return file_ + (is_dataset_ ? " dataset " : " group ") + path_;
}

std::string Object::child_path(const std::string& name) const {
  return path_ == "/" ? "/" + name : path_ + "/" + name;
}

bool Object::has_attr(const std::string& name) const {
  return LOOM_H5_CHECK(H5Aexists(handle_.id(), name.c_str()), where()) > 0;
}

namespace {
void write_scalar_attr(hid_t loc, const std::string& name, hid_t ftype, hid_t mtype,
                       const void* value, const std::string& where) {
  const std::string w = where + " attribute " + name;
  if (H5Aexists(loc, name.c_str()) > 0) LOOM_H5_CHECK(H5Adelete(loc, name.c_str()), w);
  Handle space(LOOM_H5_CHECK(H5Screate(H5S_SCALAR), w), Kind::kDataspace);
  Handle attr(LOOM_H5_CHECK(H5Acreate2(loc, name.c_str(), ftype, space.id(), H5P_DEFAULT, H5P_DEFAULT), w),
              Kind::kAttribute);
  LOOM_H5_CHECK(H5Awrite(attr.id(), mtype, value), w);
  attr.close();
}

Handle open_attr(hid_t loc, const std::string& name, H5T_class_t want, const std::string& where) {
  const std::string w = where + " attribute " + name;
  if (H5Aexists(loc, name.c_str()) <= 0) throw IoError(w + ": attribute is missing");
  Handle attr(LOOM_H5_CHECK(H5Aopen(loc, name.c_str(), H5P_DEFAULT), w), Kind::kAttribute);
  Handle type(LOOM_H5_CHECK(H5Aget_type(attr.id()), w), Kind::kDatatype);
  if (H5Tget_class(type.id()) != want) throw IoError(w + ": attribute has the wrong type");
  return attr;
}
}  // namespace

void Object::set_attr(const std::string& name, int64_t value) {
  write_scalar_attr(handle_.id(), name, H5T_STD_I64LE, H5T_NATIVE_INT64, &value, where());
}

void Object::set_attr_u32(const std::string& name, uint32_t value) {
  write_scalar_attr(handle_.id(), name, H5T_STD_U32LE, H5T_NATIVE_UINT32, &value, where());
}

void Object::set_attr(const std::string& name, const std::string& value) {
  Handle type = vlen_string_type(where());
  const char* p = value.c_str();
  write_scalar_attr(handle_.id(), name, type.id(), type.id(), &p, where());
}

int64_t Object::attr_i64(const std::string& name) const {
  Handle attr = open_attr(handle_.id(), name, H5T_INTEGER, where());
  int64_t v = 0;
  LOOM_H5_CHECK(H5Aread(attr.id(), H5T_NATIVE_INT64, &v), where() + " attribute " + name);
  return v;
}

uint32_t Object::attr_u32(const std::string& name) const {
  Handle attr = open_attr(handle_.id(), name, H5T_INTEGER, where());
  uint32_t v = 0;
  LOOM_H5_CHECK(H5Aread(attr.id(), H5T_NATIVE_UINT32, &v), where() + " attribute " + name);
  return v;
}

std::string Object::attr_string(const std::string& name) const {
  const std::string w = where() + " attribute " + name;
  Handle attr = open_attr(handle_.id(), name, H5T_STRING, where());
  Handle space(LOOM_H5_CHECK(H5Aget_space(attr.id()), w), Kind::kDataspace);
  if (H5Sget_simple_extent_npoints(space.id()) != 1) throw IoError(w + ": not a scalar string");
  Handle file_type(LOOM_H5_CHECK(H5Aget_type(attr.id()), w), Kind::kDatatype);
  if (LOOM_H5_CHECK(H5Tis_variable_str(file_type.id()), w) == 0) {
    // A fixed-length string (vocab.h5 and the co-occurrence files of format_version 1 have
    // them): read as the file holds it; HDF5 does not convert fixed to variable length.
    std::string out(H5Tget_size(file_type.id()), '\0');
    LOOM_H5_CHECK(H5Aread(attr.id(), file_type.id(), out.data()), w);
    out.resize(std::min(out.size(), out.find('\0')));
    return out;
  }
  Handle type = vlen_string_type(w);
  char* p = nullptr;
  LOOM_H5_CHECK(H5Aread(attr.id(), type.id(), &p), w);
  std::string out = p ? p : "";
  H5free_memory(p);
  return out;
}

// ---- Group -----------------------------------------------------------------------------

bool Group::has(const std::string& name) const {
  return LOOM_H5_CHECK(H5Lexists(handle_.id(), name.c_str(), H5P_DEFAULT), where()) > 0;
}

namespace {
herr_t collect_child(hid_t group, const char* name, const H5L_info_t*, void* client) {
  H5O_info_t info;
  Group::Child child{name, false, false};
  if (H5Oget_info_by_name2(group, name, &info, H5O_INFO_BASIC, H5P_DEFAULT) >= 0) {
    child.is_group = info.type == H5O_TYPE_GROUP;
    child.is_dataset = info.type == H5O_TYPE_DATASET;
  }
  static_cast<std::vector<Group::Child>*>(client)->push_back(std::move(child));
  return 0;
}
}  // namespace

std::vector<Group::Child> Group::children() const {
  std::vector<Child> out;
  LOOM_H5_CHECK(H5Literate(handle_.id(), H5_INDEX_NAME, H5_ITER_INC, nullptr, collect_child, &out),
                where());
  return out;
}

Group Group::create_group(const std::string& name) {
  const std::string p = child_path(name);
  hid_t id = LOOM_H5_CHECK(H5Gcreate2(handle_.id(), name.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                           file_ + " group " + p);
  return Group(Handle(id, Kind::kGroup), file_, p, driver_);
}

Group Group::open_group(const std::string& name) const {
  const std::string p = child_path(name);
  if (!has(name)) throw IoError(file_ + " group " + p + ": group is missing");
  hid_t id = LOOM_H5_CHECK(H5Gopen2(handle_.id(), name.c_str(), H5P_DEFAULT), file_ + " group " + p);
  return Group(Handle(id, Kind::kGroup), file_, p, driver_);
}

Dataset Group::create_dataset(const std::string& name, ElemType type, const std::vector<int64_t>& dims) {
  const std::string w = file_ + " dataset " + child_path(name);
  std::vector<hsize_t> hdims(dims.begin(), dims.end());
  Handle space(LOOM_H5_CHECK(H5Screate_simple(static_cast<int>(hdims.size()), hdims.data(), nullptr), w),
               Kind::kDataspace);
  Handle dcpl(LOOM_H5_CHECK(H5Pcreate(H5P_DATASET_CREATE), w), Kind::kPropertyList);
  LOOM_H5_CHECK(H5Pset_layout(dcpl.id(), H5D_CONTIGUOUS), w);
  LOOM_H5_CHECK(H5Pset_alloc_time(dcpl.id(), H5D_ALLOC_TIME_EARLY), w);
  if (type != ElemType::kString)   // VL types need a fill value; numeric data is all written
    LOOM_H5_CHECK(H5Pset_fill_time(dcpl.id(), H5D_FILL_TIME_NEVER), w);
  Handle string_type;
  hid_t ftype = file_type(type);
  if (type == ElemType::kString) {
    string_type = vlen_string_type(w);
    ftype = string_type.id();
  }
  hid_t id = LOOM_H5_CHECK(H5Dcreate2(handle_.id(), name.c_str(), ftype, space.id(), H5P_DEFAULT,
                                      dcpl.id(), H5P_DEFAULT), w);
  return Dataset(Handle(id, Kind::kDataset), file_, child_path(name), driver_);
}

Dataset Group::open_dataset(const std::string& name) const {
  const std::string p = child_path(name);
  if (!has(name)) throw IoError(file_ + " dataset " + p + ": dataset is missing");
  hid_t id = LOOM_H5_CHECK(H5Dopen2(handle_.id(), name.c_str(), H5P_DEFAULT), file_ + " dataset " + p);
  return Dataset(Handle(id, Kind::kDataset), file_, p, driver_);
}

// ---- File ------------------------------------------------------------------------------

File File::create(const std::string& path) {
  init_library();
  const std::string w = path + " (creating)";
  Handle fapl(LOOM_H5_CHECK(H5Pcreate(H5P_FILE_ACCESS), w), Kind::kPropertyList);
  LOOM_H5_CHECK(H5Pset_fapl_sec2(fapl.id()), w);
  hid_t id = LOOM_H5_CHECK(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.id()), w);
  return File(Handle(id, Kind::kFile), path, "/", Driver::kSerial);
}

File File::create_mpio(const std::string& path, const Communicator& comm) {
  init_library();
  const std::string w = path + " (creating for MPI-IO)";
  const MpiCommHandle ranks = comm.mpi_comm();
  if (!ranks)
    throw IoError(w + ": the " + std::string(comm.backend()) +
                  " communicator has no MPI communicator over its ranks; write the file serially");
  Handle fapl(LOOM_H5_CHECK(H5Pcreate(H5P_FILE_ACCESS), w), Kind::kPropertyList);
  LOOM_H5_CHECK(H5Pset_fapl_mpio(fapl.id(), mpi_comm_of(ranks), MPI_INFO_NULL), w);   // HDF5 keeps a duplicate
  LOOM_H5_CHECK(H5Pset_all_coll_metadata_ops(fapl.id(), true), w);
  LOOM_H5_CHECK(H5Pset_coll_metadata_write(fapl.id(), true), w);
  hid_t id = LOOM_H5_CHECK(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.id()), w);
  return File(Handle(id, Kind::kFile), path, "/", Driver::kMpio);
}

File File::open(const std::string& path, bool writable) {
  init_library();
  const std::string w = path + " (opening)";
  Handle fapl(LOOM_H5_CHECK(H5Pcreate(H5P_FILE_ACCESS), w), Kind::kPropertyList);
  LOOM_H5_CHECK(H5Pset_fapl_sec2(fapl.id()), w);
  hid_t id = LOOM_H5_CHECK(H5Fopen(path.c_str(), writable ? H5F_ACC_RDWR : H5F_ACC_RDONLY, fapl.id()), w);
  return File(Handle(id, Kind::kFile), path, "/", Driver::kSerial);
}

namespace {

[[noreturn]] void throw_os(const std::string& what, const std::string& path, int err) {
  throw IoError(what + " " + path + ": " + std::strerror(err) + " (errno " + std::to_string(err) + ")");
}

// The bytes of a new, empty HDF5 file, built in memory (core driver, no backing store):
// nothing touches the disk. Same creation properties as File::create.
std::vector<char> empty_file_image(const std::string& path) {
  const std::string w = path + " (building an empty HDF5 image in memory)";
  Handle fapl(LOOM_H5_CHECK(H5Pcreate(H5P_FILE_ACCESS), w), Kind::kPropertyList);
  LOOM_H5_CHECK(H5Pset_fapl_core(fapl.id(), 64 * 1024, /*backing_store=*/false), w);
  const std::string name = path + ".in-memory-image";   // never created: no backing store
  Handle file(LOOM_H5_CHECK(H5Fcreate(name.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.id()), w), Kind::kFile);
  // 1.10.8's H5Fget_file_image does not flush the metadata cache itself.
  LOOM_H5_CHECK(H5Fflush(file.id(), H5F_SCOPE_GLOBAL), w);
  ssize_t n = LOOM_H5_CHECK(H5Fget_file_image(file.id(), nullptr, 0), w);
  std::vector<char> image(static_cast<size_t>(n));
  LOOM_H5_CHECK(H5Fget_file_image(file.id(), image.data(), image.size()), w);
  file.close();
  return image;
}

// posix_fallocate(fd, 0, bytes), or throws naming `path` and the OS error.
void fallocate_or_throw(int fd, uint64_t bytes, const std::string& path) {
  if (bytes == 0) return;
  int err = posix_fallocate(fd, 0, static_cast<off_t>(bytes));
  if (err != 0) throw_os("cannot reserve " + std::to_string(bytes) + " bytes for", path, err);
}

// The sec2 driver's file descriptor of an open file.
int vfd_descriptor(hid_t file, const std::string& where) {
  void* handle = nullptr;
  LOOM_H5_CHECK(H5Fget_vfd_handle(file, H5P_DEFAULT, &handle), where);
  LOOM_ASSERT(handle != nullptr, "H5Fget_vfd_handle gave no handle");
  return *static_cast<int*>(handle);
}

}  // namespace

File File::create_reserved(const std::string& path, uint64_t reserve_bytes) {
  init_library();
  std::vector<char> image = empty_file_image(path);
  reserve_bytes = std::max<uint64_t>(reserve_bytes, image.size());
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw_os("cannot create", path, errno);
  int err = posix_fallocate(fd, 0, static_cast<off_t>(reserve_bytes));
  std::string what = "cannot reserve " + std::to_string(reserve_bytes) + " bytes for";
  if (err == 0) {   // the image lands in reserved blocks: it cannot fail for lack of space
    ssize_t n = ::pwrite(fd, image.data(), image.size(), 0);
    err = n < 0 ? errno : (static_cast<size_t>(n) != image.size() ? EIO : 0);
    what = "cannot write the HDF5 superblock to";
  }
  if (::close(fd) != 0 && err == 0) err = errno;
  if (err != 0) {
    ::unlink(path.c_str());
    throw_os(what, path, err);
  }
  return File::open(path, /*writable=*/true);
}

uint64_t File::eoa() const {
  haddr_t a = 0;
  LOOM_H5_CHECK(H5Fget_eoa(handle_.id(), &a), file_ + " (end of allocation)");
  return static_cast<uint64_t>(a);
}

void File::reserve(uint64_t bytes) {
  LOOM_ASSERT(driver_ == Driver::kSerial, "File::reserve needs a serial (sec2) file");
  fallocate_or_throw(vfd_descriptor(handle_.id(), file_), bytes, file_);
}

void File::abandon() noexcept {
  if (!handle_.valid()) return;
  hid_t id = handle_.release();
  void* handle = nullptr;
  if (driver_ == Driver::kSerial && H5Fget_vfd_handle(id, H5P_DEFAULT, &handle) >= 0 && handle) {
    int memory = memfd_create("loom-h5-abandoned", MFD_CLOEXEC);
    if (memory >= 0) {
      ::dup2(memory, *static_cast<int*>(handle));   // HDF5's pending writes now go to memory
      ::close(memory);
    }
  }
  if (H5Fclose(id) < 0) log::warn("h5", file_ + ": closing an abandoned file failed: " + reason_of(error_stack()));
}

void File::flush() { LOOM_H5_CHECK(H5Fflush(handle_.id(), H5F_SCOPE_GLOBAL), file_ + " (flushing)"); }

void File::close() { handle_.close(); }

// ---- Dataset ---------------------------------------------------------------------------

Dataset::Dataset(Handle handle, std::string file, std::string path, Driver driver)
    : Object(std::move(handle), std::move(file), std::move(path), driver) {
  is_dataset_ = true;
  Handle space(LOOM_H5_CHECK(H5Dget_space(handle_.id()), where()), Kind::kDataspace);
  int rank = LOOM_H5_CHECK(H5Sget_simple_extent_ndims(space.id()), where());
  std::vector<hsize_t> hdims(static_cast<size_t>(rank));
  LOOM_H5_CHECK(H5Sget_simple_extent_dims(space.id(), hdims.data(), nullptr), where());
  dims_.assign(hdims.begin(), hdims.end());
  for (size_t i = 1; i < dims_.size(); ++i) row_elems_ *= dims_[i];
  Handle type(LOOM_H5_CHECK(H5Dget_type(handle_.id()), where()), Kind::kDatatype);
  type_ = classify(type.id());
}

int64_t Dataset::numel() const {
  int64_t n = 1;
  for (int64_t d : dims_) n *= d;
  return n;
}

std::string Dataset::type_name() const {
  if (type_) return elem_type_name(*type_);
  Handle type(LOOM_H5_CHECK(H5Dget_type(handle_.id()), where()), Kind::kDatatype);
  const char* cls = "other";
  switch (H5Tget_class(type.id())) {
    case H5T_INTEGER: cls = "integer"; break;
    case H5T_FLOAT: cls = "float"; break;
    case H5T_STRING: cls = "fixed-length string"; break;
    default: break;
  }
  return std::string(cls) + " of " + std::to_string(H5Tget_size(type.id())) + " bytes";
}

uint64_t Dataset::storage_bytes() const { return H5Dget_storage_size(handle_.id()); }

std::optional<uint64_t> Dataset::file_offset() const {
  haddr_t a = H5Dget_offset(handle_.id());
  if (a == HADDR_UNDEF) return std::nullopt;
  return static_cast<uint64_t>(a);
}

namespace {
// File and memory dataspaces selecting rows [begin, begin + count).
std::pair<Handle, Handle> row_spaces(hid_t dset, const std::vector<int64_t>& dims, int64_t begin,
                                     int64_t count, int64_t row_elems, const std::string& w) {
  Handle fspace(LOOM_H5_CHECK(H5Dget_space(dset), w), Kind::kDataspace);
  hsize_t mcount = static_cast<hsize_t>(count * row_elems);
  Handle mspace(LOOM_H5_CHECK(H5Screate_simple(1, &mcount, nullptr), w), Kind::kDataspace);
  if (count == 0) {
    LOOM_H5_CHECK(H5Sselect_none(fspace.id()), w);
    LOOM_H5_CHECK(H5Sselect_none(mspace.id()), w);
  } else if (!dims.empty()) {
    std::vector<hsize_t> start(dims.size(), 0), cnt(dims.begin(), dims.end());
    start[0] = static_cast<hsize_t>(begin);
    cnt[0] = static_cast<hsize_t>(count);
    LOOM_H5_CHECK(H5Sselect_hyperslab(fspace.id(), H5S_SELECT_SET, start.data(), nullptr, cnt.data(), nullptr), w);
  }
  return {std::move(fspace), std::move(mspace)};
}
}  // namespace

void Dataset::write_rows(int64_t row_begin, int64_t row_count, const void* data) {
  LOOM_ASSERT(type_ && *type_ != ElemType::kString, "write_rows needs a numeric dataset");
  auto [fspace, mspace] = row_spaces(handle_.id(), dims_, row_begin, row_count, row_elems_, where());
  Handle dxpl = transfer_list(driver_, where());
  LOOM_H5_CHECK(H5Dwrite(handle_.id(), mem_type(*type_), mspace.id(), fspace.id(), dxpl.id(), data), where());
}

void Dataset::read_rows(int64_t row_begin, int64_t row_count, void* data) const {
  LOOM_ASSERT(type_ && *type_ != ElemType::kString, "read_rows needs a numeric dataset");
  auto [fspace, mspace] = row_spaces(handle_.id(), dims_, row_begin, row_count, row_elems_, where());
  Handle dxpl = transfer_list(driver_, where());
  LOOM_H5_CHECK(H5Dread(handle_.id(), mem_type(*type_), mspace.id(), fspace.id(), dxpl.id(), data), where());
}

namespace {
// Selects elements [begin, begin + count) of the row-major array of shape `dims` in `space`
// as a union of at most 2 * rank hyperslabs: each a run along one dimension of whole blocks
// of the dimensions after it (a partial row, whole rows, a partial row, recursively). HDF5
// transfers a selection in row-major order, so the memory side is a flat run of `count`.
void select_flat_range(hid_t space, const std::vector<int64_t>& dims, int64_t begin, int64_t count,
                       const std::string& w) {
  const size_t rank = dims.size();
  std::vector<int64_t> stride(rank, 1);   // (rank) elements per step of dimension k
  for (size_t k = rank - 1; k > 0; --k) stride[k - 1] = stride[k] * dims[k];
  const int64_t end = begin + count;
  bool first = true;
  for (int64_t at = begin; at < end; first = false) {
    size_t k = 0;   // the outermost dimension a run from `at` can step along
    while (at % stride[k] != 0 || stride[k] > end - at) ++k;   // stops at k = rank - 1 (stride 1)
    const int64_t index = at / stride[k] % dims[k];
    const int64_t run = std::min((end - at) / stride[k], dims[k] - index);
    std::vector<hsize_t> start(rank, 0), extent(rank, 1);   // (rank)
    for (size_t j = 0; j < rank; ++j) {
      if (j < k) start[j] = static_cast<hsize_t>(at / stride[j] % dims[j]);
      if (j == k) start[j] = static_cast<hsize_t>(index), extent[j] = static_cast<hsize_t>(run);
      if (j > k) extent[j] = static_cast<hsize_t>(dims[j]);
    }
    LOOM_H5_CHECK(H5Sselect_hyperslab(space, first ? H5S_SELECT_SET : H5S_SELECT_OR, start.data(), nullptr,
                                      extent.data(), nullptr), w);
    at += run * stride[k];
  }
}
}  // namespace

void Dataset::read_elements(int64_t begin, int64_t count, void* data) const {
  LOOM_ASSERT(type_ && *type_ != ElemType::kString, "read_elements needs a numeric dataset");
  LOOM_ASSERT(driver_ == Driver::kSerial, "read_elements needs a serial file");
  LOOM_ASSERT(begin >= 0 && count >= 0 && begin + count <= numel(), "read_elements: range outside the dataset");
  Handle fspace(LOOM_H5_CHECK(H5Dget_space(handle_.id()), where()), Kind::kDataspace);
  hsize_t mcount = static_cast<hsize_t>(count);
  Handle mspace(LOOM_H5_CHECK(H5Screate_simple(1, &mcount, nullptr), where()), Kind::kDataspace);
  if (count == 0) {
    LOOM_H5_CHECK(H5Sselect_none(fspace.id()), where());
    LOOM_H5_CHECK(H5Sselect_none(mspace.id()), where());
  } else if (!dims_.empty()) {
    select_flat_range(fspace.id(), dims_, begin, count, where());
  }
  LOOM_H5_CHECK(H5Dread(handle_.id(), mem_type(*type_), mspace.id(), fspace.id(), H5P_DEFAULT, data), where());
}

void Dataset::write_strings(const std::vector<std::string>& values) {
  LOOM_ASSERT(type_ == ElemType::kString, "write_strings needs a string dataset");
  LOOM_CHECK(static_cast<int64_t>(values.size()) == numel(), IoError, where() + ": string count mismatch");
  std::vector<const char*> ptrs(values.size());
  std::transform(values.begin(), values.end(), ptrs.begin(), [](const std::string& s) { return s.c_str(); });
  Handle type = vlen_string_type(where());
  LOOM_H5_CHECK(H5Dwrite(handle_.id(), type.id(), H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()), where());
}

std::vector<std::string> Dataset::read_strings() const {
  LOOM_ASSERT(type_ == ElemType::kString, "read_strings needs a string dataset");
  std::vector<char*> ptrs(static_cast<size_t>(numel()), nullptr);
  Handle type = vlen_string_type(where());
  LOOM_H5_CHECK(H5Dread(handle_.id(), type.id(), H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()), where());
  std::vector<std::string> out;
  out.reserve(ptrs.size());
  for (char* p : ptrs) {
    out.emplace_back(p ? p : "");
    H5free_memory(p);
  }
  return out;
}

}  // namespace h5
}  // namespace loom
