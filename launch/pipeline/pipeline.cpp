// `loom train` through the model registry; see pipeline.h.
#include "launch/pipeline/pipeline.h"

#include <memory>

#include "core/log.h"
#include "core/measure.h"
#include "dist/mpi_communicator.h"
#include "launch/config/config.h"
#include "launch/pipeline/model_registry.h"
#include "launch/pipeline/pipeline_data.h"
#include "launch/pipeline/run_report.h"
#include "launch/run/session.h"
#include "launch/run/train_device.h"
#include "launch/run/trainer.h"
#include "models/model.h"

namespace loom {

int run_train_pipeline(Session& session) {
  const auto t_start = SteadyClock::now();
  const Config& config = session.config();
  MpiCommunicator& comm = session.comm();
  const ModelKind& kind = find_model_kind(config.train.model);
  // Up before the data stages, so that /status answers (and names the stage) from the start.
  RunStatus status(comm.rank(), display_options(config));
  std::unique_ptr<ModelRecipe> recipe = kind.make(session);
  RunReport report;
  PipelineContext ctx{session, report};
  if (!recipe->trains_on_gpu()) require_cpu_training(config, kind.name);
  std::unique_ptr<Model> model = recipe->build(ctx);

  const auto t_train = SteadyClock::now();
  TrainerOptions options = trainer_options(config, session.run_dir());
  options.monitor.server = status.server();
  Trainer trainer(comm, *model, std::move(options));
  // Note [Evaluating during training]: rank 0 alone evaluates at the epochs eval.every_epochs
  // names; the other ranks wait for it in the next collective, so keep it off for timing.
  const int64_t every = config.eval.every_epochs;
  trainer.on_epoch_end([&](EpochRecord& record) {
    if (comm.rank() != 0 || every <= 0 || record.epoch % every != 0) return;
    Evaluation e = recipe->evaluate(*model, false);
    record.note = e.note;
    record.metrics = e.metrics;
  });
  const int rc = trainer.run();
  report.set_train_seconds(seconds_since(t_train));
  if (report.items_name().empty()) report.set_items_name(std::string(model->item_unit()));
  // Only what this run trained: after a resume tokens_seen() also counts the earlier runs'
  // items, which divided by this run's seconds gave a rate hundreds of times too high.
  report.set_items(model->tokens_seen() - trainer.tokens_at_start());
  if (rc != 0) return rc;   // stopped by a signal: the checkpoint is written; resume later

  report.gather_peak_rss(comm);
  recipe->gather_report(ctx, *model);
  if (comm.rank() == 0) {
    status.set_stage("export");
    const auto t_export = SteadyClock::now();
    const std::vector<std::string> files = recipe->write_exports(*model);
    report.set_export_seconds(seconds_since(t_export));
    status.set_stage("eval");
    const auto t_eval = SteadyClock::now();
    const Evaluation final_eval = recipe->evaluate(*model, true);
    report.set_eval_seconds(seconds_since(t_eval));
    report.write_json(session.run_dir(), trainer.epochs(), files, final_eval.json, comm.size());
    report.log_summary(kind.name, trainer.epochs(), comm.size(), seconds_since(t_start));
    log::info(kind.name, "evaluation written to " + session.run_dir() + "/eval.json");
  }
  comm.barrier();   // rank 0's export/evaluation failure still reaches every rank (abort)
  return 0;
}

int run_vocab_command(Session& session) {
  RunStatus status(session.comm().rank(), display_options(session.config()));
  CorpusPlan corpus = prepare_corpus(session.comm(), session.config(), session.run_dir());
  StageTime time;
  Vocab vocab = vocab_stage(session.comm(), session.config(), corpus, session.run_dir(), session.env().threads, &time);
  log::info("vocab", std::to_string(vocab.size()) + " words in " + session.run_dir() + "/vocab.txt (" +
                         fixed(time.seconds, 2) + " s)");
  return 0;
}

}  // namespace loom
