// The checkpoint directory: `latest`, resuming from the newest valid file, retention.
#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <set>

#include "core/error.h"
#include "core/log.h"
#include "dist/communicator.h"
#include "io/checkpoint.h"
#include "io/h5.h"

namespace loom {

std::string read_latest_text(const std::string& dir) {
  std::ifstream in(dir + "/latest");
  std::string name;
  if (!in || !std::getline(in, name)) return "";
  while (!name.empty() && (name.back() == '\r' || name.back() == ' ')) name.pop_back();
  return name;
}

namespace {

// The file name `latest` holds, or "" when there is none or it is not a name in DIR.
std::string read_latest(const std::string& dir) {
  const std::string name = read_latest_text(dir);
  return name.find('/') == std::string::npos ? name : "";
}

// Every *.h5 file in DIR (never *.h5.tmp: a tmp file is an unfinished write).
std::vector<std::string> list_checkpoints(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = opendir(dir.c_str());
  if (!d) return out;
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n.size() > 3 && n.compare(n.size() - 3, 3, ".h5") == 0) out.push_back(n);
  }
  closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

// The step stored in a checkpoint, read without verifying the data; nullopt if unreadable.
std::optional<int64_t> peek_step(const std::string& path, std::string* why) {
  try {
    h5::File f = h5::File::open(path, false);
    if (!f.has_attr("format") || f.attr_string("format") != kCheckpointFormat) {
      *why = "checkpoint " + path + ": " +
             checkpoint_format_problem(f.has_attr("format") ? std::optional(f.attr_string("format")) : std::nullopt);
      return std::nullopt;
    }
    return f.attr_i64("step");
  } catch (const Error& e) {
    *why = e.what();
    return std::nullopt;
  }
}

// Rank 0's choice: the path to resume from, or "" with `refusal` saying why when DIR holds
// checkpoints none of which can be used (Note [All checkpoints damaged]).
struct ResumeChoice {
  std::string path;
  std::string refusal;
};

// Rank 0: follows `latest`, then the other *.h5 files by descending step; every file it
// cannot use gets a warning naming it and its damage.
ResumeChoice choose_resume(const std::string& dir, const SaveRequest* expected, const AnotherModel& another_model) {
  const std::string latest_text = read_latest_text(dir), latest = read_latest(dir);
  std::set<std::string> tried;
  auto valid = [&](const std::string& name) {
    tried.insert(name);
    const std::string path = dir + "/" + name;
    try {
      CheckpointReader r;
      r.open(path);
      if (expected == nullptr) return true;
      const std::string missing = r.missing_datasets(*expected), differing = r.differing_shapes(*expected);
      if (missing.empty() && differing.empty()) return true;
      // Note [Another shape: damage or another model]
      // A checkpoint whose datasets are not the ones this run's model has (another shape, or
      // missing) was either written for another model (dim = 64, now 32; another corpus and
      // so another vocabulary) or changed after it was written (a dataset rewritten with
      // h5py: checksum and listing agree with the new data, so open() finds nothing wrong).
      // The first is the user's change, which the trainer refuses naming the config keys or
      // the parameters; skipping the file would hide that behind "none of them usable". The
      // file's own record (its config, its vocabulary) tells them apart: a record of this
      // run's model with other datasets is damage, and the file is skipped like any other
      // damaged one, naming the datasets and both shapes, and an older one is taken.
      if (another_model && !another_model(r).empty()) return true;
      log::warn("ckpt", "skipping damaged checkpoint: " + path + " records this run's model (config, vocabulary) " +
                            "but does not hold its datasets: " +
                            (missing.empty() ? "" : "missing " + missing + (differing.empty() ? "" : "; ")) +
                            differing);
      return false;
    } catch (const Error& e) {
      log::warn("ckpt", "skipping damaged checkpoint: " + std::string(e.what()));
      return false;
    }
  };
  if (!latest_text.empty() && latest.empty())
    log::warn("ckpt", dir + "/latest holds '" + latest_text + "', which is not a file name in " + dir +
                          "; looking for the newest checkpoint");
  if (!latest.empty()) {
    if (access((dir + "/" + latest).c_str(), F_OK) != 0)
      log::warn("ckpt", dir + "/latest names " + latest + ", which does not exist; looking for older checkpoints");
    else if (valid(latest))
      return {dir + "/" + latest, ""};
  }
  const std::vector<std::string> files = list_checkpoints(dir);
  std::vector<std::pair<int64_t, std::string>> by_step;
  for (const auto& name : files) {
    if (tried.count(name)) continue;
    std::string why;
    if (auto step = peek_step(dir + "/" + name, &why)) by_step.emplace_back(*step, name);
    else log::warn("ckpt", "skipping damaged checkpoint: " + why);
  }
  std::sort(by_step.begin(), by_step.end(), std::greater<>());
  for (const auto& [step, name] : by_step)
    if (valid(name)) return {dir + "/" + name, ""};
  if (files.empty() && latest_text.empty()) return {};
  // Note [All checkpoints damaged]
  // A directory whose checkpoints are all damaged (or whose `latest` names a file that is
  // gone) held a run. Starting fresh there, as for an empty directory, would lose that run
  // without a word and mix a new one with its files: its damaged checkpoints would count
  // toward keep_last and be overwritten step by step, metrics.jsonl would restart at step
  // 1. So --resume auto refuses, and the user says what to do: resume from a file they
  // trust, or move the directory away, after which --resume auto starts fresh and says so.
  const std::string what = files.empty() ? "no checkpoint file but a `latest` naming " + latest_text
                                         : std::to_string(files.size()) + " checkpoint file(s), none of them usable";
  return {"", "--resume auto: " + dir + " holds " + what + " (the warnings above name each file's damage); " +
                  "training was not started, as a fresh start would silently replace that run. Resume from a " +
                  "checkpoint you trust with --resume PATH, or move " + dir + " away to start the run again " +
                  "from step 0"};
}

}  // namespace

std::string find_resume_checkpoint(Communicator& comm, const std::string& dir, const SaveRequest* expected,
                                   const AnotherModel& another_model) {
  ResumeChoice choice;
  if (comm.rank() == 0) choice = choose_resume(dir, expected, another_model);
  // Rank 0's choice or refusal, so that every rank resumes from the same file or throws the
  // same error (Note [An error every rank reaches] prints it once).
  std::string& text = choice.refusal.empty() ? choice.path : choice.refusal;
  int64_t head[2] = {choice.refusal.empty() ? 0 : 1, static_cast<int64_t>(text.size())};
  comm.broadcast(Tensor::of(head, 2), 0);
  std::string received = comm.rank() == 0 ? text : std::string(static_cast<size_t>(head[1]), '\0');
  if (head[1] > 0) comm.broadcast(Tensor::of(reinterpret_cast<uint8_t*>(received.data()), head[1]), 0);
  if (head[0] != 0) throw DataError(received);
  if (comm.rank() == 0)
    log::info("ckpt", received.empty() ? "no checkpoint to resume from in " + dir : "resuming from " + received);
  return received;
}

void apply_retention(const std::string& dir, int keep_last, int64_t keep_every_steps) {
  const std::string latest = read_latest(dir);
  std::vector<std::pair<int64_t, std::string>> by_step;
  for (const auto& name : list_checkpoints(dir)) {
    std::string why;
    if (auto step = peek_step(dir + "/" + name, &why)) by_step.emplace_back(*step, name);
    else log::warn("ckpt", "retention leaves " + dir + "/" + name + " alone: " + why);
  }
  std::sort(by_step.begin(), by_step.end(), std::greater<>());
  for (size_t i = 0; i < by_step.size(); ++i) {
    const auto& [step, name] = by_step[i];
    bool keep = static_cast<int64_t>(i) < keep_last || name == latest ||
                (keep_every_steps > 0 && step % keep_every_steps == 0);
    if (keep) continue;
    const std::string path = dir + "/" + name;
    if (::unlink(path.c_str()) != 0) log::warn("ckpt", "retention could not delete " + path);
    else log::info("ckpt", "retention deleted " + path + " (step " + std::to_string(step) + ")");
  }
}

}  // namespace loom
