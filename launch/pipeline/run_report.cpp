// RunReport; see run_report.h.
#include "launch/pipeline/run_report.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "core/log.h"
#include "core/measure.h"
#include "dist/communicator.h"

namespace loom {
namespace {

std::vector<double> gather_one(Communicator& comm, double mine) {
  std::vector<double> all(static_cast<size_t>(comm.size()), 0.0);
  comm.allgather(Tensor::of(&mine, 1), Tensor::of(all.data(), comm.size()));
  return all;
}

std::string joined(const std::vector<double>& values, int digits) {
  std::string out;
  for (double v : values) out += (out.empty() ? "" : ", ") + fixed(v, digits);
  return out;
}

// "4.80 M" or "912.3 k": per-second rates in the unit a reader expects.
std::string rate_text(double per_second) {
  return per_second >= 1e6 ? fixed(per_second / 1e6, 2) + " M" : fixed(per_second / 1e3, 1) + " k";
}

}  // namespace

void RunReport::add_stage(const std::string& name, double seconds, bool reused) {
  stages_.push_back({name, seconds, reused});
}

void RunReport::gather_per_rank(Communicator& comm, const std::string& name, double mine, const std::string& label) {
  per_rank_.push_back({name, label, gather_one(comm, mine)});
}

void RunReport::gather_peak_rss(Communicator& comm) { rss_gb_ = gather_one(comm, peak_rss_gb()); }

void RunReport::write_json(const std::string& run_dir, const std::vector<EpochRecord>& epochs,
                           const std::vector<std::string>& exports, const std::string& evaluation_json,
                           int world) const {
  nlohmann::json j = evaluation_json.empty() ? nlohmann::json::object() : nlohmann::json::parse(evaluation_json);
  nlohmann::json records = nlohmann::json::array();
  for (const EpochRecord& e : epochs) {
    nlohmann::json rec = {{"epoch", e.epoch}, {"loss", e.loss}, {"partial", e.partial}};
    for (const auto& [name, value] : e.metrics) rec[name] = value;
    records.push_back(rec);
  }
  j["epochs"] = records;
  if (!epochs.empty()) j["final_loss"] = epochs.back().loss;
  j["exports"] = exports;
  j["world_size"] = world;
  j["threads"] = threads_;
  nlohmann::json seconds = nlohmann::json::object();
  for (const Stage& s : stages_) {
    seconds[s.name] = s.seconds;
    seconds[s.name + "_reused"] = s.reused;
  }
  seconds["train"] = train_s_;
  seconds["export"] = export_s_;
  seconds["eval"] = eval_s_;
  for (const PerRank& p : per_rank_) seconds[p.name] = p.values;
  j["seconds"] = seconds;
  j[items_name_] = items_;
  j["peak_rss_gb"] = rss_gb_;
  const std::string path = run_dir + "/eval.json";
  std::ofstream out(path + ".tmp", std::ios::trunc);
  out << j.dump(2) << "\n";
  out.close();
  LOOM_CHECK(static_cast<bool>(out), IoError, "cannot write " + path + ".tmp");
  std::filesystem::rename(path + ".tmp", path);
}

void RunReport::log_summary(const std::string& kind, const std::vector<EpochRecord>& epochs, int world,
                            double total_s) const {
  std::string phases;
  for (const Stage& s : stages_) phases += s.name + " " + fixed(s.seconds, 2) + " s" + (s.reused ? " (reused)" : "") + ", ";
  log::info(kind, "pipeline: " + phases + "training " + fixed(train_s_, 2) + " s, export " + fixed(export_s_, 2) +
                      " s, evaluation " + fixed(eval_s_, 2) + " s, total " + fixed(total_s, 2) + " s");
  const double rate = train_s_ > 0 ? static_cast<double>(items_) / train_s_ : 0;
  const int cores = std::max(1, world * threads_);
  std::string line = "final loss " + (epochs.empty() ? std::string("n/a") : fixed(epochs.back().loss, 5)) + "; " +
                     rate_text(rate) + " " + items_name_ + "/s in training (" + rate_text(rate / cores) +
                     " per core, " + std::to_string(world) + " rank(s) x " + std::to_string(threads_) +
                     " thread(s)); peak RSS per rank " + joined(rss_gb_, 2) + " GB";
  std::string per_rank;
  for (const PerRank& p : per_rank_)
    if (!p.label.empty()) per_rank += (per_rank.empty() ? "" : ", ") + p.label + " " + joined(p.values, 2) + " s";
  if (world > 1 && !per_rank.empty()) line += "; per rank: " + per_rank;
  log::info(kind, line);
}

}  // namespace loom
