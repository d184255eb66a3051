#pragma once
// RunReport: what `loom train` reports for every model kind, written once - the phase
// times (each data stage, training, export, evaluation), the rate, peak memory per rank,
// the epoch history, and what the kind adds (its evaluation, per-rank figures). Rank 0
// writes it to RUN_DIR/eval.json and logs a two-line summary.
//
// eval.json:
//   epochs        [{epoch, loss, partial, <metric>...}]     (Trainer::epochs())
//   final_loss    the last epoch's loss
//   exports       the files written after training
//   world_size, threads
//   seconds       {<stage>, <stage>_reused, ..., train, export, eval, <per-rank lists>}
//   <items>       what the rate counts over the training ("updates", "words")
//   peak_rss_gb   per rank
//   ...           the kind's final Evaluation::json (analogy, similarity, arch, ...)
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "launch/run/trainer.h"

namespace loom {

class Communicator;

class RunReport {
 public:
  // A data stage: its seconds and whether its result was reused from the run directory.
  void add_stage(const std::string& name, double seconds, bool reused);
  // What the training rate counts ("updates", "words": a kind may name it; the pipeline
  // uses the model's item_unit() otherwise) and how many of them this run did.
  void set_items_name(std::string name) { items_name_ = std::move(name); }
  const std::string& items_name() const { return items_name_; }
  void set_items(int64_t count) { items_ = count; }
  void set_threads(int threads) { threads_ = threads; }
  void set_train_seconds(double s) { train_s_ = s; }
  void set_export_seconds(double s) { export_s_ = s; }
  void set_eval_seconds(double s) { eval_s_ = s; }
  // Collective: one figure per rank, reported under seconds.<name> and, when `label` is
  // not empty, in the summary ("waiting for the other ranks 0.12, 0.30 s").
  void gather_per_rank(Communicator& comm, const std::string& name, double mine, const std::string& label);
  // Collective: every rank's peak resident set.
  void gather_peak_rss(Communicator& comm);

  // Rank 0: RUN_DIR/eval.json (tmp + rename), `evaluation_json` (an object or "") merged in.
  void write_json(const std::string& run_dir, const std::vector<EpochRecord>& epochs,
                  const std::vector<std::string>& exports, const std::string& evaluation_json,
                  int world) const;
  // Rank 0: "pipeline: vocab 1.20 s, ..., total 9.80 s" and "final loss ...; rate ...".
  void log_summary(const std::string& kind, const std::vector<EpochRecord>& epochs, int world,
                   double total_s) const;

 private:
  struct Stage {
    std::string name;
    double seconds = 0;
    bool reused = false;
  };
  struct PerRank {
    std::string name, label;
    std::vector<double> values;   // (world,)
  };
  std::vector<Stage> stages_;
  std::vector<PerRank> per_rank_;
  std::string items_name_;
  int64_t items_ = 0;
  int threads_ = 1;
  double train_s_ = 0, export_s_ = 0, eval_s_ = 0;
  std::vector<double> rss_gb_;    // (world,)
};

}  // namespace loom
