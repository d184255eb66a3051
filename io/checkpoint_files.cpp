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
namespace {

// The file name `latest` holds ("step_100.h5"), or "" when there is none.
std::string read_latest(const std::string& dir) {
  std::ifstream in(dir + "/latest");
  std::string name;
  if (!in || !std::getline(in, name)) return "";
  while (!name.empty() && (name.back() == '\r' || name.back() == ' ')) name.pop_back();
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
      *why = "not a loom checkpoint";
      return std::nullopt;
    }
    return f.attr_i64("step");
  } catch (const Error& e) {
    *why = e.what();
    return std::nullopt;
  }
}

// Rank 0: the path to resume from, or "".
std::string choose_resume(const std::string& dir, const SaveRequest* expected) {
  const std::string latest = read_latest(dir);
  std::set<std::string> tried;
  auto valid = [&](const std::string& name) {
    tried.insert(name);
    try {
      CheckpointReader r;
      r.open(dir + "/" + name);
      if (const std::string missing = expected ? r.missing_datasets(*expected) : ""; !missing.empty()) {
        log::warn("ckpt", "skipping damaged checkpoint: " + dir + "/" + name + " lacks dataset(s) this run's " +
                              "model saves: " + missing);
        return false;
      }
      return true;
    } catch (const Error& e) {
      log::warn("ckpt", "skipping damaged checkpoint: " + std::string(e.what()));
      return false;
    }
  };
  if (!latest.empty()) {
    if (access((dir + "/" + latest).c_str(), F_OK) != 0)
      log::warn("ckpt", dir + "/latest names " + latest + ", which does not exist; looking for older checkpoints");
    else if (valid(latest))
      return dir + "/" + latest;
  }
  std::vector<std::pair<int64_t, std::string>> by_step;
  for (const auto& name : list_checkpoints(dir)) {
    if (tried.count(name)) continue;
    std::string why;
    if (auto step = peek_step(dir + "/" + name, &why)) by_step.emplace_back(*step, name);
    else log::warn("ckpt", "skipping unreadable checkpoint " + dir + "/" + name + ": " + why);
  }
  std::sort(by_step.begin(), by_step.end(), std::greater<>());
  for (const auto& [step, name] : by_step)
    if (valid(name)) return dir + "/" + name;
  return "";
}

}  // namespace

std::string find_resume_checkpoint(Communicator& comm, const std::string& dir, const SaveRequest* expected) {
  std::string choice;
  if (comm.rank() == 0) choice = choose_resume(dir, expected);
  int64_t len = static_cast<int64_t>(choice.size());
  comm.broadcast(Tensor::of(&len, 1), 0);
  choice.resize(static_cast<size_t>(len));
  if (len > 0) comm.broadcast(Tensor::of(reinterpret_cast<uint8_t*>(choice.data()), len), 0);
  if (comm.rank() == 0)
    log::info("ckpt", choice.empty() ? "no checkpoint to resume from in " + dir : "resuming from " + choice);
  return choice;
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
