#pragma once
// Checkpoints in DESIGN.md's layout, one HDF5 file per checkpoint:
//
//   /  attrs: format="loom-checkpoint", format_version=1, loom_version, model_kind, step,
//             epoch, tokens_seen, world_size, created_utc, config (TOML text)
//   /model/<name>             float32 parameter (dots in names stay in the dataset name)
//   /optimizer/<name>/<slot>  float32 optimizer state (a group per parameter)
//   /state/<name>             uint64 (world_size, n): row r is rank r's words
//   /vocab/tokens, /vocab/counts   vlen UTF-8 strings and int64 counts
//
// Every dataset carries a "crc32" attribute: zlib CRC-32 of its logical array (row-major,
// little-endian elements; for /vocab/tokens the UTF-8 bytes of each token followed by a
// NUL). Readers verify it before handing the data out, and refuse a damaged file with an
// error that names the file and the dataset path.
//
// Note [Write modes]
// In both modes rank 0 first writes the layout serially with HDF5 (attributes, groups,
// datasets with their crc32, /vocab) into NAME.h5.tmp, whose space is reserved before
// HDF5 opens it, so a full disk fails cleanly and HDF5 never holds a failing write; the
// bulk data then goes to the datasets' file offsets (Note [Layout, then bulk data] in
// checkpoint_write.cpp, Note [Reserved files] in h5.h).
// kGathered: rank 0 writes all the data (pwrite); other ranks only contribute their
//   /state rows (allgatherv). Works on every file system.
// kParallel: MPI-IO over the communicator's ranks (Communicator::mpi_comm(), so a group
//   split from the world writes over that group); each rank writes a disjoint block of rows of
//   every /model and /optimizer dataset (they are replicated) and its own /state row, and
//   checksums what it writes (combined in rank order).
// kAuto picks kParallel when (a) there is more than one rank, (b) the communicator has an
//   MPI communicator over its ranks (MpiCommunicator, NcclCommunicator), and (c) every rank sees the checkpoint directory on a parallel file system
//   (Lustre, GPFS, BeeGFS), where several writers add bandwidth. A local file system
//   (ext2/3/4, xfs, btrfs, tmpfs, ...) is one device that a single streaming writer
//   already fills (MPI-IO from 2 ranks was slower there), and NFS, CIFS, FUSE and anything
//   unrecognised do not take MPI-IO writes safely: all give kGathered. kParallel can
//   still be asked for on a local file system shared by every rank. The decision is computed from allgathered
//   facts, so every rank takes the same branch. Both modes give the same datasets,
//   attributes and checksums; h5py reads both.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace loom {

class Communicator;
class ParamStore;

inline constexpr const char* kCheckpointFormat = "loom-checkpoint";
inline constexpr int kCheckpointFormatVersion = 1;

struct CheckpointMeta {
  std::string model_kind;
  int64_t step = 0;
  int64_t epoch = 0;
  int64_t tokens_seen = 0;
  int world_size = 1;          // save_checkpoint stores comm.size()
  std::string config_toml;
  std::string loom_version;    // save_checkpoint fills kVersion when empty
  std::string created_utc;     // save_checkpoint fills "YYYY-MM-DDTHH:MM:SSZ" when empty
  int format_version = kCheckpointFormatVersion;
};

// One optimizer state tensor: float32 in host or device memory, shape as the optimizer
// keeps it (Note [Staging device data] in io/checkpoint_stage.h).
struct OptimizerSlot {
  std::string param;   // "h.0.attn.c_attn.weight"
  std::string slot;    // "gradsq", "m", "v"
  Tensor value;
};

// This rank's words of one per-rank state; every rank passes the same names and lengths.
struct RankState {
  std::string name;    // "rng", "data"
  std::vector<uint64_t> mine;
};

struct VocabView {
  const std::vector<std::string>* tokens = nullptr;
  const std::vector<int64_t>* counts = nullptr;   // same length as tokens
};

// What to save. params and slots may live in host or device memory (device data is staged
// through a bounded host buffer; the file is the same). Every rank passes the same
// parameter and slot names and shapes (checked); only rank 0's meta and vocab are written.
struct SaveRequest {
  CheckpointMeta meta;
  const ParamStore* params = nullptr;
  std::vector<OptimizerSlot> slots;
  std::vector<RankState> state;
  std::optional<VocabView> vocab;
};

// The step file was written whole, but `latest` could not be rewritten to name it
// (Note [A latest that cannot be written] in checkpoint_write.cpp): the run has the
// checkpoint, --resume auto does not take it yet. what() says both.
class CheckpointNotLatest : public IoError {
 public:
  using IoError::IoError;
};

enum class WriteMode { kAuto, kGathered, kParallel };   // Note [Write modes]
const char* write_mode_name(WriteMode mode);

// Collective: writes DIR/NAME.h5 crash-safely (NAME.h5.tmp, fsync, rename, fsync DIR, then
// DIR/latest via latest.tmp, fsync, rename, fsync DIR) and returns its path. A failure on
// any rank removes the tmp file, leaves the previous checkpoint and `latest` untouched and
// throws IoError (the first failing rank's message, naming the path and the OS error) on
// EVERY rank. `used` (optional) receives the mode actually used. When only `latest` cannot
// be rewritten, the step file stays whole and the error is CheckpointNotLatest.
std::string save_checkpoint(Communicator& comm, const std::string& dir, const std::string& name,
                            const SaveRequest& req, WriteMode mode = WriteMode::kAuto,
                            WriteMode* used = nullptr);

// One dataset of an open checkpoint, as the reader found it.
struct DatasetInfo {
  std::string path;              // "/model/W"
  std::string dtype;             // "float32", "uint64", "int64", "string", or what it is
  std::vector<int64_t> shape;
  uint64_t bytes = 0;            // logical size
  uint32_t stored_crc = 0;
  uint32_t computed_crc = 0;
  std::string problem;           // empty when fine
};

// A shape as the root attribute "datasets" writes it: "1000x50", "scalar" for no
// dimensions (Note [The file lists its datasets] in checkpoint_write.cpp).
std::string checkpoint_shape_text(const std::vector<int64_t>& dims);

// Serial reader (any rank may open its own). open() checks the format, version and root
// attributes, the layout, every dataset's dtype, shape and size in the file, and every
// checksum (streaming, with a bounded scratch buffer), that every dataset the file's
// root attribute "datasets" lists is there with that shape, and throws DataError (damage) or
// IoError (cannot read) naming the file and dataset. The read_* calls verify the checksum
// of what they read again before returning. One thread at a time: a reader keeps one
// staging buffer for device reads (allocated at the first, freed with the reader).
class CheckpointReader {
 public:
  CheckpointReader();
  ~CheckpointReader();
  CheckpointReader(CheckpointReader&&) noexcept;
  CheckpointReader& operator=(CheckpointReader&&) noexcept;

  void open(const std::string& path);
  const std::string& path() const;
  const CheckpointMeta& meta() const;

  bool has_model(const std::string& name) const;
  std::vector<std::string> model_names() const;
  // Every parameter of `params` must be in /model with the same shape; otherwise throws
  // DataError listing every missing or differing parameter. params may live on any device
  // (read and verified on the host through a bounded staging buffer, then copied up).
  void read_model_into(ParamStore& params) const;
  bool has_slot(const std::string& param, const std::string& slot) const;
  void read_slot(const std::string& param, const std::string& slot, Tensor out) const;   // f32, any device
  // /state/NAME as world_size x n words, row-major.
  std::vector<uint64_t> read_state(const std::string& name, int64_t* n_per_rank = nullptr) const;
  bool has_vocab() const;
  void read_vocab(std::vector<std::string>* tokens, std::vector<int64_t>* counts) const;
  const std::vector<DatasetInfo>& list_datasets() const;
  // The /model, /optimizer and /state datasets that `expected` (what this run's model
  // would save) has and the file lacks, comma-separated; "" when none is missing.
  std::string missing_datasets(const SaveRequest& expected) const;
  // The /model and /optimizer datasets of `expected` that the file holds with another
  // shape, "/model/W: file has (5, 3), this run's model expects (6, 3)", "; "-separated; ""
  // when every one present agrees (missing ones are missing_datasets' to say).
  std::string differing_shapes(const SaveRequest& expected) const;

 private:
  friend std::string inspect_checkpoint(const std::string& path, bool* ok);
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Why an HDF5 file whose root attribute format holds `format` (nullopt: it has none) is not
// a loom checkpoint: the readers' words for a wrong format.
std::string checkpoint_format_problem(const std::optional<std::string>& format);

// Collective: the newest valid checkpoint in DIR. Rank 0 follows `latest`, then falls back
// to the other *.h5 files by descending step, skipping damaged ones with a warning naming
// the file and the damage, and broadcasts its choice. Returns "" when DIR holds no
// checkpoint (no *.h5 file, no `latest`); throws DataError on every rank when it holds some
// and none can be used (Note [All checkpoints damaged] in checkpoint_files.cpp).
// With `expected` (the model's SaveRequest; read on rank 0) a checkpoint that lacks a
// dataset the model saves, or holds a /model or /optimizer dataset with another shape than
// the model's, is skipped like a damaged one, unless `another_model` (rank 0; optional)
// says why the checkpoint records another model than this run's (its config's shape keys,
// its vocabulary): then it is taken, for the caller to refuse by that reason (Note
// [Another shape: damage or another model] in checkpoint_files.cpp).
using AnotherModel = std::function<std::string(const CheckpointReader& checkpoint)>;
std::string find_resume_checkpoint(Communicator& comm, const std::string& dir,
                                   const SaveRequest* expected = nullptr, const AnotherModel& another_model = {});

// What DIR/latest holds (a file name, "step_100.h5"), or "" when there is no `latest`.
std::string read_latest_text(const std::string& dir);

// Rank 0 only (not a collective): keeps the keep_last newest checkpoints by step, every
// checkpoint whose step is a multiple of keep_every_steps (when > 0), and the one `latest`
// names; deletes the other *.h5 files. Files it cannot read are left alone (warning).
void apply_retention(const std::string& dir, int keep_last, int64_t keep_every_steps);

// For `loom inspect`: metadata, config and every dataset with shape, size and checksum
// status. *ok is false on any damage (the text says what); never throws for a damaged file.
std::string inspect_checkpoint(const std::string& path, bool* ok);

}  // namespace loom
