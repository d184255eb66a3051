#include "launch/run/session.h"

#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include "core/buffer.h"
#include "core/device.h"
#include "core/kernels.h"
#include "core/log.h"
#include "core/version.h"
#include "dist/mpi_communicator.h"
#include "dist/backend_info.h"
#include "io/h5.h"

namespace loom {
namespace {

log::Level parse_level(const std::string& name) {
  if (name == "debug") return log::Level::kDebug;
  if (name == "warn") return log::Level::kWarn;
  if (name == "error") return log::Level::kError;
  return log::Level::kInfo;
}

// Writes `text` to `path` through a temporary file and a rename, so a reader never sees
// half a file.
void write_file_atomically(const std::string& path, const std::string& text) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    out.flush();
    if (!out) throw IoError("cannot write " + tmp + ": " + std::strerror(errno));
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) throw IoError("cannot rename " + tmp + " to " + path + ": " + ec.message());
}

// Note [One run per directory]: a training run started without --resume in a directory
// that holds an earlier run's checkpoints or metrics would mix the two: the old
// checkpoints count toward checkpoint.keep_last, so retention deletes the new run's
// checkpoints as soon as they are written, `--resume auto` later picks whichever is
// newest, and metrics.jsonl gets a second series starting again at step 0. So such a
// start is refused (rank 0 looks, every rank throws the same error) and the message says
// what to do. The data stages' files (vocabulary, co-occurrence, token shards) are not an
// earlier run: they are reused while up to date.
std::string earlier_run_in(const std::string& run_dir, const Config& config) {
  namespace fs = std::filesystem;
  std::string found;
  const fs::path dir(config.checkpoint.dir);
  const fs::path ckpt = dir.is_absolute() ? dir : fs::path(run_dir) / dir;
  std::error_code ec;
  for (fs::directory_iterator it(ckpt, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name == "latest" || name.ends_with(".h5")) {
      found = "checkpoints in " + ckpt.string();
      break;
    }
  }
  const fs::path metrics = fs::path(run_dir) / "metrics.jsonl";
  if (fs::exists(metrics, ec) && fs::file_size(metrics, ec) > 0 && !ec)
    found += (found.empty() ? "" : " and ") + metrics.string();
  return found;
}

void refuse_earlier_run(MpiCommunicator& comm, const std::string& run_dir, const Config& config) {
  std::string found = comm.rank() == 0 ? earlier_run_in(run_dir, config) : "";
  int64_t len = static_cast<int64_t>(found.size());
  comm.broadcast(Tensor::of(&len, 1), 0);
  if (len == 0) return;
  found.resize(static_cast<size_t>(len));
  comm.broadcast(Tensor::of(reinterpret_cast<uint8_t*>(found.data()), len), 0);
  throw ConfigError("run directory " + run_dir + " holds an earlier run (" + found +
                    "); a new run there would mix with it. Continue it with --resume auto, start the "
                    "new run in another directory (--set run.dir=...), or remove those files first");
}

// Note [Missing inputs, all at once]
// The commands that read a corpus check every input file the config names before anything
// exists (MPI, the run directory, token shards): one message lists all that are missing and
// says against what relative paths were resolved (Note [Paths in a config]), instead of
// failing on the first file after the run directory was made.
void check_inputs(const SessionOptions& options, const Config& config) {
  static const char* const kReadsCorpus[] = {"train", "vocab", "cooccur", "tokenize", "tokenizer train"};
  bool reads_corpus = false;
  for (const char* c : kReadsCorpus) reads_corpus = reads_corpus || options.command == c;
  if (!reads_corpus || !options.config_text.empty()) return;
  const std::vector<std::string> missing = missing_config_inputs(config, true);
  if (missing.empty()) return;
  // A corpus named twice or not at all is a config error (exit 2), not a missing file.
  for (const std::string& m : missing)
    if (m.starts_with("corpus.paths is empty") || m.starts_with("corpus.synthetic = true and")) throw ConfigError(m);
  std::string text = std::to_string(missing.size()) + (missing.size() == 1 ? " input" : " inputs") +
                     " of the config missing; nothing was started or created:";
  for (const std::string& m : missing) text += "\n  " + m;
  std::error_code ec;
  const std::string cwd = std::filesystem::current_path(ec).string();
  if (!options.config_path.empty())
    text += "\nRelative paths in " + options.config_path + " are resolved against its directory (" +
            std::filesystem::absolute(options.config_path, ec).parent_path().lexically_normal().string() +
            "), those given with --set against the current directory (" + cwd + ").";
  else
    text += "\nRelative paths given with --set are resolved against the current directory (" + cwd + ").";
  text += " The README's section Data says what each example's files are and where to get them.";
  throw IoError(text);
}

}  // namespace

int end_with_error(const std::string& command, const std::string& message, int exit_code) {
  if (MpiCommunicator::world_initialized() && MpiCommunicator::world().size() > 1) {
    MpiCommunicator& world = MpiCommunicator::world();
    // Note [An error every rank reaches]: when all ranks end with it, print it once and end
    // normally. Not after a deadline or a lost peer: a rank may be gone, waiting is useless.
    if (exit_code != kExitWatchdog && exit_code != kExitPeerLost) {
      const auto wait = std::min<std::chrono::milliseconds>(std::chrono::seconds(5), world.default_timeout() / 2);
      if (std::optional<int> agreed = world.end_together(command, message, exit_code, wait)) return *agreed;
    }
    world.abort(message, exit_code);
  }
  if (!MpiCommunicator::world_initialized() && RunEnv::detect().announced_rank != 0) return exit_code;
  log::error(command, message);
  return exit_code;
}

Config load_config_for_cli(const std::string& path, const std::vector<std::string>& overrides) {
  return load_config(path, overrides);
}

Session::Session(const SessionOptions& options) {
  env_ = RunEnv::detect();
  log::set_rank(env_.announced_rank, env_.announced_size);   // until MPI says
  config_ = options.config_text.empty()
                ? load_config(options.config_path, options.overrides)
                : load_config_text(options.config_text, options.config_origin, options.overrides);
  check_inputs(options, config_);   // before MPI, the run directory or any stage
  log::set_level(parse_level(config_.run.log_level));
  log::set_all_ranks(config_.run.log_all_ranks);
  set_huge_pages(config_.run.hugepages);   // before any parameter buffer is allocated
  int threads = config_.run.threads > 0 ? static_cast<int>(config_.run.threads) : env_.threads;
  env_.threads = threads > 0 ? threads : 1;
  set_kernel_threads(env_.threads);   // OpenMP and BLAS: run.threads per rank

  if (std::string why = env_.launch_problem(); !why.empty()) throw CommError(why);
  comm_ = &MpiCommunicator::init_world();
  comm_->set_default_timeout(std::chrono::milliseconds(
      static_cast<int64_t>(config_.comm.timeout_s * 1000.0)));
  if (!options.create_run_dir) return;

  run_dir_ = expand_run_dir(config_.run.dir, config_.run.name, env_.job_id);
  if (options.command == "train" && config_.checkpoint.resume.empty())
    refuse_earlier_run(*comm_, run_dir_, config_);   // Note [One run per directory]
  if (comm_->rank() == 0) {
    std::error_code ec;
    std::filesystem::create_directories(run_dir_, ec);
    if (ec) throw IoError("cannot create run directory " + run_dir_ + ": " + ec.message());
    std::string resolved = config_to_toml(config_);
    write_file_atomically(run_dir_ + "/config.toml", resolved);
    log::info("config", "run directory " + run_dir_ + "; resolved config (also in " + run_dir_ +
                            "/config.toml):\n" + resolved);
  }
}

Session::~Session() { MpiCommunicator::shutdown_world(); }

std::string describe_gpus() {
  const int n = cuda_device_count();
  if (n == 0)
    return std::string("GPUs           no GPU") +
           (kWithCuda ? " (CUDA build; no device visible to rank 0)\n" : " (built without CUDA)\n");
  std::ostringstream out;
  out << "GPUs           " << n << " visible to rank 0\n";
  for (int i = 0; i < n; ++i) {
    const CudaDeviceInfo d = cuda_device_info(i);
    char line[256];
    std::snprintf(line, sizeof line, "  cuda:%-2d %s, %.1f GiB, compute capability %d.%d, %s\n", i, d.name.c_str(),
                  double(d.total_memory) / double(1 << 30), d.cc_major, d.cc_minor, d.uuid.c_str());
    out << line;
  }
  return out.str();
}

std::string describe_environment(MpiCommunicator& comm, const RunEnv& env) {
  // Each rank contributes one fixed-size record: "host|local|pid|threads|cores|gpu".
  constexpr int kRecord = 256;
  std::array<char, kRecord> mine{};
  std::string gpu = env.gpu >= 0 ? "cuda:" + std::to_string(env.gpu) + " " + cuda_device_name(env.gpu)
                                 : std::string("-");
  std::snprintf(mine.data(), kRecord, "%s|%d/%d|%d|%d|%s|%s", comm.host_name().c_str(), env.local_rank,
                env.local_size, static_cast<int>(getpid()), env.threads, env.affinity.c_str(), gpu.c_str());
  std::vector<char> all(static_cast<size_t>(kRecord) * static_cast<size_t>(comm.size()));
  comm.allgather(Tensor(mine.data(), {kRecord}, DType::kU8),
                 Tensor(all.data(), {kRecord * comm.size()}, DType::kU8));
  if (comm.rank() != 0) return {};

  std::ostringstream out;
  out << "loom " << kVersion << " (commit " << kGitCommit << ", " << kBuildType << ", CUDA "
      << (kWithCuda ? "on" : "off") << ")\n";
  out << "launcher       " << launcher_name(env.launcher);
  if (!env.job_id.empty()) out << " (SLURM job " << env.job_id << ", restart " << env.restart_count << ")";
  std::vector<std::string> hosts;   // distinct, in order of first rank: the node index
  for (int r = 0; r < comm.size(); ++r)
    if (std::find(hosts.begin(), hosts.end(), comm.host_of(r)) == hosts.end()) hosts.push_back(comm.host_of(r));
  out << "\nworld size     " << comm.size() << " on " << hosts.size() << " node(s)\n";
  out << "threads        " << env.threads << " per rank";
  if (env.cpus_per_task > 0) out << " (SLURM_CPUS_PER_TASK=" << env.cpus_per_task << ")";
  out << "\nbinding        " << (env.cpu_bind.empty() ? "as the launcher left it" : "launcher asked for " + env.cpu_bind)
      << "; cores = the CPUs each rank may run on (sched_getaffinity)\n";
  out << "visible GPUs   CUDA_VISIBLE_DEVICES=" << env.visible_gpus << ", " << cuda_device_count()
      << " device(s) seen by rank 0";
  if (!env.gpus_per_task.empty()) out << ", SLURM_GPUS_PER_TASK=" << env.gpus_per_task;
  out << "\nrank  host                 node  local  pid      threads  cores       gpu\n";
  for (int r = 0; r < comm.size(); ++r) {
    std::string rec(all.data() + static_cast<size_t>(r) * kRecord);
    std::array<std::string, 6> f;
    std::istringstream ss(rec);
    for (auto& field : f) std::getline(ss, field, '|');
    auto node = std::find(hosts.begin(), hosts.end(), comm.host_of(r)) - hosts.begin();
    char line[640];
    std::snprintf(line, sizeof line, "%-5d %-20s %-5d %-6s %-8s %-8s %-11s %s\n", r, f[0].c_str(),
                  static_cast<int>(node), f[1].c_str(), f[2].c_str(), f[3].c_str(), f[4].c_str(), f[5].c_str());
    out << line;
  }
  out << "MPI            " << MpiCommunicator::library_version() << "\n";
  out << "HDF5           " << hdf5_version() << "\n";
  out << "NCCL           " << nccl_version() << "\n";
  out << "CUDA runtime   " << cuda_runtime_version() << ", driver " << cuda_driver_version() << "\n";
  out << describe_gpus();
  return out.str();
}

}  // namespace loom
