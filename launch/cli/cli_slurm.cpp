// `loom slurm CONFIG ...`: prints a ready sbatch script that trains CONFIG as a preemptible,
// self-requeueing SLURM job (the scripts in examples/slurm/ are its output).
//
// Note [Job script]
// - Launch: `srun --mpi=pmix` (Debian's Open MPI speaks PMIx only; pmi2/none cannot start
//   MPI, see RunEnv::launch_problem).
// - Warning: `#SBATCH --signal=USR1@W` without `B:` makes slurmstepd send SIGUSR1 to every
//   task of the srun step W seconds before the time limit (measured on a test cluster:
//   delivered within 0.3 s by `scancel --signal=USR1`). The ranks agree on the stop, write a
//   checkpoint and exit 138. A USR1 that reaches only the batch shell (`scancel
//   --batch`/`--full`, a `B:` signal) is forwarded to srun, which passes it to the tasks.
//   A TERM that reaches only the shell goes to the tasks through `scancel --signal=TERM JOB`
//   (the job's steps, not the shell), never through srun: srun answers its own SIGTERM with
//   "forcing job termination", a SIGKILL to every task (measured with SLURM 22.05: the
//   ranks died with no stop checkpoint, status 137). SLURM's own TERM (plain scancel,
//   preemption, the time limit) reaches the tasks directly; the trap then forwards nothing,
//   since the job is no longer RUNNING and scancel would retry on it (a job in transition)
//   until KillWait's SIGKILL ended the shell before it could report or decide anything.
// - Requeue: on 138 (USR1) or 143 (TERM) the script runs `scontrol requeue` while SLURM
//   still has the job RUNNING; the job keeps its id, so `run.dir` with {job} is the same
//   directory and `--resume auto` continues from the stop checkpoint. SLURM 22.05 accepts
//   the requeue of a job it is cancelling (measured: after a plain `scancel` the job ran
//   again), so the script asks first: a job that is CANCELLED (scancel), TIMEOUT, or being
//   requeued by SLURM itself (PreemptMode=REQUEUE) is left to SLURM. Any other status (a
//   crash, a bad config) is not requeued: no loops.
// - Binary: the script runs the loom that wrote it (the absolute path of /proc/self/exe),
//   not `loom` from PATH, which a build tree does not provide; `--loom` or LOOM in the
//   submitting environment choose another. The script checks it before srun and exits 127
//   (the shell's "command not found") with a message naming it: the job is not requeued,
//   and the status cannot be mistaken for loom's own 2 (a bad config).
//
// Note [What loom slurm refuses, and what it warns about]
// It refuses what would make a broken job: a --job-name sbatch would split or that would
// make odd log file names (%x in --output), a --time SLURM does not read, a --warning at
// or beyond --time (SIGUSR1 at once: the job would checkpoint and requeue itself in a
// loop), and a config (with --set) that does not load. It warns when --time leaves less
// than 2 minutes above --warning (SLURM sends the warning up to 60 s early: measured with
// --time 1:00 --warning 27, 8 s into the job). It warns, on stderr, when the
// resources do not fit the config: GPUs for a model that trains on the CPU (or with
// run.device = cpu), run.device = cuda without GPUs or with --ntasks-per-node unlike
// --gpus-per-node (one rank per GPU), and --cpus-per-task unlike the threads per rank the
// config pins.
#include <unistd.h>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <regex>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "core/log.h"
#include "launch/cli/cli.h"
#include "launch/config/config.h"

namespace loom {
namespace {

struct SlurmOptions {
  std::string config;
  std::vector<std::string> set;   // --set, checked here and passed on to `loom train`
  int nodes = 1;
  int ntasks_per_node = 1;
  int gpus_per_node = 0;
  int cpus_per_task = 0;
  std::string time = "01:00:00";
  std::string partition;
  std::string account;
  std::string job_name;           // default: loom-RUN.NAME
  int warning_s = 120;
  std::string loom;               // default: this binary (Note [Job script])
  std::string command = "train";
};

// `text` as one shell word: 'text', with each ' written '\''.
std::string shell_quote(const std::string& text) {
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// The absolute path of the running loom, or "" when /proc cannot say.
std::string this_binary() {
  std::error_code ec;
  const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string() : exe.string();
}

// Characters SLURM and file names take without quoting: the job name is an #SBATCH
// directive (parsed by sbatch, not by the shell) and %x in --output.
bool plain_name(const std::string& s, bool comma_list = false) {
  static const std::regex form(R"(^[A-Za-z0-9._+-]+$)");
  static const std::regex list_form(R"(^[A-Za-z0-9._+-]+(,[A-Za-z0-9._+-]+)*$)");
  return std::regex_match(s, comma_list ? list_form : form);
}

// `s` with every character plain_name refuses replaced by '-'.
std::string plain_form(const std::string& s) {
  std::string out;
  for (char c : s) out += std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '+' || c == '-' ? c : '-';
  return out.empty() ? "loom" : out;
}

std::string slurm_script(const SlurmOptions& o, const std::string& name, const std::string& run_dir) {
  std::string s = "#!/bin/bash\n";
  s += "# loom: " + o.command + " " + o.config + " as a preemptible SLURM job that requeues itself.\n";
  s += "# Generated by `loom slurm`; see README \"Running on a cluster\". Submit: sbatch THIS_FILE\n";
  s += "#SBATCH --job-name=" + name + "\n";
  s += "#SBATCH --nodes=" + std::to_string(o.nodes) + "\n";
  s += "#SBATCH --ntasks-per-node=" + std::to_string(o.ntasks_per_node) + "\n";
  if (o.cpus_per_task > 0) s += "#SBATCH --cpus-per-task=" + std::to_string(o.cpus_per_task) + "\n";
  if (o.gpus_per_node > 0) s += "#SBATCH --gpus-per-node=" + std::to_string(o.gpus_per_node) + "\n";
  s += "#SBATCH --time=" + o.time + "\n";
  if (!o.partition.empty()) s += "#SBATCH --partition=" + o.partition + "\n";
  if (!o.account.empty()) s += "#SBATCH --account=" + o.account + "\n";
  s += "#SBATCH --signal=USR1@" + std::to_string(o.warning_s) +
       "   # SIGUSR1 to every rank before the time limit\n";
  s += "#SBATCH --requeue\n#SBATCH --open-mode=append      # one log across requeues\n";
  s += "#SBATCH --output=%x-%j.out\n";
  std::string sets;
  for (const std::string& a : o.set) sets += " --set " + shell_quote(a);
  s += R"SH(set -u
# Overridable from the environment at submission (sbatch exports it).
LOOM=${LOOM:-)SH" + shell_quote(o.loom) + R"SH(}
CONFIG=${LOOM_CONFIG:-)SH" + shell_quote(o.config) + R"SH(}
RUN_DIR=${LOOM_RUN_DIR:-)SH" + shell_quote(run_dir) + R"SH(}      # loom expands {job}: the job id, kept by a requeue
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-${SLURM_CPUS_PER_TASK:-1}}

# The binary must be there on the node (a path, or a name on PATH); 127 is not requeued.
if ! command -v "$LOOM" >/dev/null 2>&1 || { [[ "$LOOM" == */* ]] && [ ! -x "$LOOM" ]; }; then
  echo "[job ${SLURM_JOB_ID:-?}] error: the loom binary '$LOOM' does not exist or is not executable on $(hostname)." \
       "Submit with LOOM=/path/to/loom in the environment, or write the script again with loom slurm --loom PATH." >&2
  exit 127
fi

echo "[job $SLURM_JOB_ID] start $(date -u +%FT%TZ), restart ${SLURM_RESTART_COUNT:-0}, nodes $SLURM_JOB_NODELIST"
job_state() {   # SLURM's state of this job (RUNNING, COMPLETING, CANCELLED ...), empty if unknown
  local s; s=$(scontrol show job "$SLURM_JOB_ID" 2>/dev/null | grep -o 'JobState=[A-Z_]*'); echo "${s#JobState=}"
}
# A signal that reaches only this shell (scancel --batch/--full, --signal=B:...) is passed
# on to every rank: USR1 through srun, which forwards it; TERM through scancel to the job's
# steps, because srun answers a SIGTERM by killing the ranks (SIGKILL: no checkpoint). When
# SLURM ends or requeues the job (scancel, time limit, preemption) the ranks get its TERM
# themselves and the job is no longer RUNNING (scancel would wait on it for minutes).
trap 'kill -USR1 "$pid" 2>/dev/null' USR1
trap '[ "$(job_state)" = RUNNING ] && timeout 10 scancel --signal=TERM "$SLURM_JOB_ID" 2>/dev/null' TERM
launched=$(mktemp)                               # eval.json newer than this: loom finished
srun --mpi=pmix --cpu-bind=cores "$LOOM" )SH" + o.command + R"SH( "$CONFIG" --resume auto)SH" + sets + R"SH( --set "run.dir=$RUN_DIR" &
pid=$!
rc=0
while :; do
  wait "$pid"; rc=$?
  kill -0 "$pid" 2>/dev/null && continue         # a trapped signal woke `wait`: srun runs on
  wait "$pid" 2>/dev/null; late=$?               # srun ended as the signal came: its status
  [ "$late" -ne 127 ] && rc=$late
  break
done
# srun can return 0 when its tasks never started ("task 0 launch failed"): a loom train
# that finished has written RUN_DIR/eval.json since this launch ({name} matched as *).
if [ "$rc" -eq 0 ]; then
  pattern=${RUN_DIR//\{job\}/$SLURM_JOB_ID}; pattern=${pattern//\{name\}/*}
  finished=$(IFS=; shopt -s nullglob; for f in $pattern/eval.json; do [ "$f" -nt "$launched" ] && echo yes; done)
  if [ -z "$finished" ]; then
    echo "[job $SLURM_JOB_ID] error: srun returned 0, but loom did not finish: no $pattern/eval.json was written" \
         "since the launch (srun's messages above say why its tasks did not run). Not requeued." >&2
    rc=1
  fi
fi
rm -f "$launched"
echo "[job $SLURM_JOB_ID] loom exited with status $rc at $(date -u +%FT%TZ)"
case $rc in
  138|143)   # stopped on SIGUSR1/SIGTERM after writing a checkpoint: run again, resume,
    # unless SLURM is ending the job (scancel, the time limit) or requeues it itself
    # (preemption): then the job is no longer RUNNING, and a requeue would undo a scancel.
    state=$(job_state)
    if [ -n "$state" ] && [ "$state" != RUNNING ]; then
      echo "[job $SLURM_JOB_ID] not requeued by this script: SLURM has the job $state"
    elif scontrol requeue "$SLURM_JOB_ID"; then
      echo "[job $SLURM_JOB_ID] requeued; the next run resumes from the checkpoint"
    fi ;;
esac
exit "$rc"
)SH";
  return s;
}

// SLURM's time forms in seconds: MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS; nullopt
// for anything else.
std::optional<long long> slurm_time_seconds(const std::string& t) {
  static const std::regex with_days(R"(^(\d+)-(\d+)(?::(\d+))?(?::(\d+))?$)");
  static const std::regex without(R"(^(\d+)(?::(\d+))?(?::(\d+))?$)");
  std::smatch m;
  auto num = [](const std::ssub_match& g) { return g.matched ? std::stoll(g.str()) : 0LL; };
  try {
    if (std::regex_match(t, m, with_days))
      return ((num(m[1]) * 24 + num(m[2])) * 60 + num(m[3])) * 60 + num(m[4]);
    if (std::regex_match(t, m, without)) {
      if (m[3].matched) return (num(m[1]) * 60 + num(m[2])) * 60 + num(m[3]);   // HH:MM:SS
      return num(m[1]) * 60 + num(m[2]);                                          // MM[:SS]
    }
  } catch (const std::out_of_range&) {
  }
  return std::nullopt;
}

// The threads per rank the config pins for its model and the key that pins them: the
// kind's own `threads` key (glove.threads, word2vec.threads) when set, else run.threads;
// 0 when it takes what SLURM gives (OMP_NUM_THREADS from --cpus-per-task).
std::pair<long long, std::string> pinned_threads(const Config& config) {
  const std::string kind_key = config.train.model + ".threads";
  long long threads = 0;
  try {
    threads = std::stoll(config_value_text(config, kind_key));
  } catch (const Error&) {   // the kind has no threads key of its own
  }
  if (threads > 0) return {threads, kind_key};
  return {config.run.threads, "run.threads"};
}

// Mismatches between what the job asks SLURM for and what the config will use.
std::vector<std::string> resource_warnings(const SlurmOptions& o, const Config& config) {
  std::vector<std::string> out;
  // GPT and BERT train on GPUs with run.device = "cuda" (one rank per GPU, Note [One GPU
  // per rank] in dist/gpu_select.h); the embedding kinds train on the CPU only.
  const bool gpu_kind = config.train.model == "gpt" || config.train.model == "bert";
  const bool on_gpu = config.run.device == "cuda";
  if (o.gpus_per_node > 0 && !gpu_kind)
    out.push_back("--gpus-per-node " + std::to_string(o.gpus_per_node) + " asks for GPUs, but train.model = " +
                  config.train.model + " trains on the CPU in this loom: they would sit idle (leave --gpus-per-node "
                  "out, and give the ranks cores with --cpus-per-task)");
  else if (o.gpus_per_node > 0 && !on_gpu)
    out.push_back("--gpus-per-node " + std::to_string(o.gpus_per_node) + " asks for GPUs, but run.device = \"" +
                  config.run.device + "\": " + config.train.model +
                  " would train on the CPU and the GPUs sit idle (--set run.device=cuda to use them)");
  if (on_gpu && o.gpus_per_node == 0)
    out.push_back("run.device = \"cuda\" but the job asks for no GPU: add --gpus-per-node N (one rank per GPU: "
                  "--ntasks-per-node N)");
  if (on_gpu && o.gpus_per_node > 0 && o.ntasks_per_node != o.gpus_per_node)
    out.push_back("--ntasks-per-node " + std::to_string(o.ntasks_per_node) + " with --gpus-per-node " +
                  std::to_string(o.gpus_per_node) + ": each rank drives one GPU, so " +
                  (o.ntasks_per_node > o.gpus_per_node ? "loom refuses two ranks on one GPU at start-up"
                                                       : "GPUs would sit idle") +
                  " (use --ntasks-per-node " + std::to_string(o.gpus_per_node) + ")");
  const auto [threads, key] = pinned_threads(config);
  if (threads > 0 && o.cpus_per_task > 0 && threads != o.cpus_per_task)
    out.push_back("--cpus-per-task " + std::to_string(o.cpus_per_task) + " but the config pins " + key + " = " +
                  std::to_string(threads) + " threads per rank: " +
                  (threads < o.cpus_per_task ? "cores would sit idle" : "threads would share cores") + " (use --cpus-per-task " +
                  std::to_string(threads) + ", or --set " + key + "=0 to use what SLURM gives)");
  if (threads > 1 && o.cpus_per_task == 0)
    out.push_back("the config pins " + key + " = " + std::to_string(threads) +
                  " threads per rank, but without --cpus-per-task SLURM may give each rank one core: add "
                  "--cpus-per-task " + std::to_string(threads));
  return out;
}

}  // namespace

void register_slurm_command(CLI::App& app, CommandAction& chosen) {
  static SlurmOptions o;
  CLI::App* cmd = add_command(
      app, "slurm", "print an sbatch script that trains CONFIG as a preemptible, self-requeueing job",
      "  Prints to stdout a job script that runs `loom train CONFIG --resume auto` with\n"
      "  `srun --mpi=pmix` on the resources given. The script asks SLURM for SIGUSR1\n"
      "  --warning seconds before the time limit (every rank then stops after the same step,\n"
      "  writes a checkpoint and exits 138), and requeues itself when loom exits 138 or 143;\n"
      "  the requeued job keeps its id, so its run directory (run.dir=runs/{name}-{job}) is the\n"
      "  same and it resumes from that checkpoint. A crash is not requeued. LOOM, LOOM_CONFIG\n"
      "  and LOOM_RUN_DIR in the submitting environment override the binary, the config and\n"
      "  the run directory; --set overrides are checked with CONFIG and passed on to the job.\n"
      "  The job runs this loom binary (its absolute path) unless --loom or LOOM says\n"
      "  otherwise, and exits 127 with a message when that binary is not on the node. Refused:\n"
      "  a --job-name, --partition or --account with spaces or quotes, a --time SLURM does\n"
      "  not read, a --warning at or beyond --time. Warned about (stderr): a --time less than\n"
      "  2 minutes above --warning (SLURM may send the warning up to 60 s early), GPUs for a\n"
      "  model that trains on the CPU, run.device = cuda without GPUs or with ranks per node\n"
      "  unlike GPUs per node, --cpus-per-task unlike the threads per rank the config pins.\n",
      "  loom slurm examples/glove.toml --nodes 2 --ntasks-per-node 4 --time 04:00:00 > glove.sbatch\n"
      "  loom slurm examples/gpt.toml --nodes 4 --ntasks-per-node 8 --cpus-per-task 2 \\\n"
      "      --time 1-00:00:00 --partition cpu --account myproj | sbatch\n"
      "  loom slurm examples/gpt-gpu.toml --nodes 2 --ntasks-per-node 8 --gpus-per-node 8 \\\n"
      "      --cpus-per-task 4 --time 1-00:00:00 --partition gpu | sbatch\n"
      "  (GPT and BERT have a GPU path, run.device = \"cuda\", one rank per GPU; it is built\n"
      "  but has not yet run on a GPU: see the README, Training on GPUs.)\n");
  cmd->add_option("config", o.config, "the run's config (TOML)")->required()->check(CLI::ExistingFile);
  cmd->add_option("--set", o.set, "override one config key: checked now, passed on to `loom train` (repeatable)")
      ->type_name("KEY=VALUE")
      ->take_all();
  cmd->add_option("--nodes", o.nodes, "nodes (default 1)")->check(CLI::PositiveNumber);
  cmd->add_option("--ntasks-per-node", o.ntasks_per_node, "ranks per node (default 1)")->check(CLI::PositiveNumber);
  cmd->add_option("--gpus-per-node", o.gpus_per_node, "GPUs per node; 0 = a CPU job (default 0)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--cpus-per-task", o.cpus_per_task, "cores per rank; 0 = SLURM's default")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--time", o.time, "time limit, HH:MM:SS or D-HH:MM:SS (default 01:00:00)");
  cmd->add_option("--partition", o.partition, "partition (-p)");
  cmd->add_option("--account", o.account, "account (-A)");
  cmd->add_option("--job-name", o.job_name, "job name: letters, digits, . _ + - (default loom-RUN.NAME)");
  cmd->add_option("--warning", o.warning_s, "seconds before the time limit to send SIGUSR1 (default 120)")
      ->check(CLI::Range(1, 86400));
  cmd->add_option("--loom", o.loom, "the loom binary the job runs (default: this one, by absolute path)");
  cmd->callback([&chosen] {
    chosen = [] {
      const std::optional<long long> limit = slurm_time_seconds(o.time);
      if (!limit || *limit <= 0) {
        log::error("slurm", "--time '" + o.time + "' is not a SLURM time limit (MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM:SS)");
        return kExitUsage;
      }
      if (o.warning_s >= *limit) {
        log::error("slurm", "--warning " + std::to_string(o.warning_s) + " s is at or beyond --time " + o.time + " (" +
                                std::to_string(*limit) + " s): SLURM would signal the job at once and it would "
                                "checkpoint and requeue itself in a loop. Give a --warning well below the time limit "
                                "(SLURM may send it up to 60 s early), or a longer --time");
        return kExitUsage;
      }
      for (const auto& [flag, value] : {std::pair<const char*, const std::string&>{"--job-name", o.job_name},
                                        {"--partition", o.partition}, {"--account", o.account}}) {
        const bool list = std::string(flag) == "--partition";   // partitions may be a list: a,b
        if (value.empty() || plain_name(value, list)) continue;
        log::error("slurm", std::string(flag) + " '" + value + "' holds characters an #SBATCH line or a log file "
                                "name cannot take as they are (spaces, quotes, /, ...): use letters, digits, . _ + -, "
                                "e.g. " + flag + " " + plain_form(value));
        return kExitUsage;
      }
      try {
        Config config = load_config_for_cli(o.config, o.set);
        for (const std::string& w : resource_warnings(o, config)) log::warn("slurm", w);
        // Note [Warning timing]: slurmctld checks time limits every 30 s and sends the
        // warning at the first check within W + 30 s of the limit, so up to 60 s early.
        if (*limit - o.warning_s < 60 + 60)
          log::warn("slurm", "--time " + o.time + " leaves " + std::to_string(*limit - o.warning_s) +
                                 " s before the --warning " + std::to_string(o.warning_s) +
                                 " s; SLURM checks time limits every 30 s and may send the warning up to 60 s "
                                 "early, so a run may stop and requeue itself after as little as " +
                                 std::to_string(std::max(0LL, *limit - o.warning_s - 60)) +
                                 " s of work. A longer --time makes fewer restarts");
        SlurmOptions out = o;
        if (out.loom.empty()) out.loom = this_binary();
        if (out.loom.empty()) {
          log::error("slurm", "cannot tell where this loom is (/proc/self/exe is unreadable): give --loom PATH");
          return kExitUsage;
        }
        // run.dir given with --set becomes the script's RUN_DIR default (the script sets it last).
        std::string run_dir = "runs/{name}-{job}";
        out.set.clear();
        for (const std::string& a : o.set) {
          if (a.rfind("run.dir=", 0) == 0) run_dir = a.substr(8);
          else out.set.push_back(a);
        }
        const std::string name = o.job_name.empty() ? "loom-" + plain_form(config.run.name) : o.job_name;
        std::fputs(slurm_script(out, name, run_dir).c_str(), stdout);
        return 0;
      } catch (const Error& e) {
        log::error("slurm", e.what());
        return e.exit_code();
      }
    };
  });
}

}  // namespace loom
