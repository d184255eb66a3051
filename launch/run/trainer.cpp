#include "launch/run/trainer.h"

#include <cmath>
#include <filesystem>

#include "core/fault.h"
#include "core/log.h"
#include "core/measure.h"
#include "core/param_store.h"
#include "dist/communicator.h"
#include "launch/config/config.h"
#include "models/model.h"

namespace loom {
namespace {

WriteMode parse_write_mode(const std::string& mode) {
  if (mode == "gathered") return WriteMode::kGathered;
  if (mode == "parallel") return WriteMode::kParallel;
  return WriteMode::kAuto;
}

// The shape keys whose value differs between the checkpoint's config and this run's. Both
// are read by the config loader itself, so a key is compared as a value ("dim = 100" and
// "dim = 1_00" agree) and a stored config this loom cannot read is refused by name.
std::string differing_shape_keys(const Model& model, const std::string& path, const std::string& stored,
                                 const std::string& now) {
  Config then_config;
  try {
    then_config = load_config_text(stored, path + " (its stored config)", {});
  } catch (const ConfigError& e) {
    throw ConfigError("cannot resume from " + path + ": its stored config does not load: " + e.what());
  }
  const Config now_config = load_config_text(now, "this run's config", {});
  std::string diff;
  for (const std::string& key : model.shape_keys()) {
    const std::string a = config_value_text(then_config, key), b = config_value_text(now_config, key);
    if (a != b) diff += "\n  " + key + ": checkpoint " + a + ", now " + b;
  }
  return diff;
}

std::string checkpoint_name(int64_t steps_done) {
  char name[32];
  std::snprintf(name, sizeof name, "step_%08lld", static_cast<long long>(steps_done));
  return name;
}

}  // namespace

TrainerOptions trainer_options(const Config& config, const std::string& run_dir) {
  TrainerOptions o;
  const CheckpointSection& c = config.checkpoint;
  std::filesystem::path dir(c.dir);
  o.checkpoint_dir = dir.is_absolute() || run_dir.empty() ? c.dir : (std::filesystem::path(run_dir) / dir).string();
  o.every_steps = c.every_steps;
  o.every_minutes = c.every_minutes;
  o.at_end = c.at_end;
  o.keep_last = static_cast<int>(c.keep_last);
  o.keep_every_steps = c.keep_every_steps;
  o.write_mode = parse_write_mode(c.write_mode);
  o.stop_on_write_error = c.on_error == "stop";
  o.resume = c.resume;
  o.config_toml = config_to_toml(config);
  o.monitor.run_dir = run_dir;
  o.monitor.progress_interval_s = config.progress.interval_s;
  o.monitor.bar = config.progress.bar == "on"    ? MonitorOptions::Bar::kOn
                  : config.progress.bar == "off" ? MonitorOptions::Bar::kOff
                                                 : MonitorOptions::Bar::kAuto;
  o.monitor.metrics_every = config.progress.metrics_every;
  o.monitor.status_port = static_cast<int>(config.status.port);
  o.monitor.status_bind = config.status.bind;
  return o;
}

Trainer::Trainer(Communicator& comm, Model& model, TrainerOptions options)
    : comm_(comm), model_(model), options_(std::move(options)),
      last_save_time_(std::chrono::steady_clock::now()) {}

void Trainer::resume_if_asked() {
  if (options_.resume.empty()) return;
  std::string path = options_.resume;
  if (path == "auto") {
    // What this model saves: a checkpoint lacking any of it, or holding it with another
    // shape, is skipped like a damaged one, unless it records another model (kind, shape
    // keys, vocabulary size), which is refused below naming what differs (Note [Another
    // shape: damage or another model]).
    const SaveRequest expected = save_request(0);
    const AnotherModel another_model = [&](const CheckpointReader& r) -> std::string {
      if (r.meta().model_kind != model_.kind()) return "model_kind " + r.meta().model_kind;
      if (expected.vocab && r.has_vocab()) {
        for (const DatasetInfo& d : r.list_datasets())
          if (d.path == "/vocab/tokens" && !d.shape.empty() &&
              d.shape[0] != static_cast<int64_t>(expected.vocab->tokens->size()))
            return "a vocabulary of " + std::to_string(d.shape[0]) + " tokens";
      }
      try {
        return differing_shape_keys(model_, r.path(), r.meta().config_toml, options_.config_toml);
      } catch (const ConfigError& e) {
        return e.what();
      }
    };
    path = options_.checkpoint_dir.empty()
               ? ""
               : find_resume_checkpoint(comm_, options_.checkpoint_dir, &expected, another_model);
    if (path.empty()) {
      log::info("train", "--resume auto: no checkpoint in " + options_.checkpoint_dir + "; starting fresh");
      return;
    }
  }
  CheckpointReader reader;
  reader.open(path);
  const CheckpointMeta& meta = reader.meta();
  if (meta.model_kind != model_.kind())
    throw DataError("cannot resume from " + path + ": it holds a " + meta.model_kind + " model, this run trains " +
                    std::string(model_.kind()));
  std::string diff = differing_shape_keys(model_, path, meta.config_toml, options_.config_toml);
  if (!diff.empty())
    throw ConfigError("cannot resume from " + path + ": the model's shape differs from the checkpoint's:" + diff +
                      "\n(epochs, schedule length, checkpoint cadence and world size may change on resume)");
  fault::resume_pause(path);   // Note [Fault injection points]
  reader.read_model_into(model_.params());
  model_.restore(reader, meta.step);
  resumed_mid_epoch_ = model_.epoch_step() != 0;
  start_step_ = meta.step;
  last_checkpoint_ = path;
  log::info("train", "resumed from " + path + " after step " + std::to_string(meta.step) + " (written by " +
                         std::to_string(meta.world_size) + " rank(s), now " + std::to_string(comm_.size()) + ")");
}

SaveRequest Trainer::save_request(int64_t steps_done) const {
  SaveRequest req;
  req.meta.model_kind = std::string(model_.kind());
  req.meta.step = steps_done;
  req.meta.epoch = model_.steps_per_epoch() > 0 ? steps_done / model_.steps_per_epoch() : 0;
  req.meta.tokens_seen = model_.tokens_seen();
  req.meta.config_toml = options_.config_toml;
  req.params = &model_.params();
  req.slots = model_.optimizer_slots();
  req.state = model_.rank_state();
  req.vocab = model_.vocab();
  return req;
}

bool Trainer::save(int64_t steps_done, const char* why) {
  if (options_.checkpoint_dir.empty()) return true;
  if (const std::string bad = non_finite_parameter(); !bad.empty())
    throw DataError("training diverged: parameter " + bad + " is not a finite number after step " +
                    std::to_string(steps_done) + "; the checkpoint due there (" + why +
                    ") is not written. Lower the learning rate or check the data");
  const SaveRequest req = save_request(steps_done);
  auto t0 = std::chrono::steady_clock::now();
  try {
    if (comm_.rank() == 0) std::filesystem::create_directories(options_.checkpoint_dir);
    last_checkpoint_ = save_checkpoint(comm_, options_.checkpoint_dir, checkpoint_name(steps_done), req,
                                       options_.write_mode);
  } catch (const CheckpointNotLatest& e) {
    // The step file is whole; only `latest` still names an older one. The writer's text says
    // which file each --resume takes; what is left to say is that training stopped (or goes on).
    if (options_.stop_on_write_error)
      throw IoError(std::string(e.what()) + "; training stopped after step " + std::to_string(steps_done) +
                    " (checkpoint.on_error = stop). Make room in " + options_.checkpoint_dir +
                    " (free space, quota, permissions) before resuming");
    log::warn("checkpoint", std::string(e.what()) + " (checkpoint.on_error = continue: training goes on)");
    return false;
  } catch (const IoError& e) {
    // Note [A failed checkpoint write says what to do]: the writer's error names the file
    // and the OS error ("cannot reserve N bytes for DIR/step_S.h5.tmp: No space left on
    // device"); what a user needs next is what is still good and how to go on from it.
    if (options_.stop_on_write_error)
      throw IoError(std::string(e.what()) + "; training stopped after step " + std::to_string(steps_done) +
                    " without this checkpoint (checkpoint.on_error = stop), " +
                    (last_checkpoint_.empty() ? std::string("and no checkpoint was written before")
                                              : "the newest complete checkpoint is " + last_checkpoint_) +
                    ". Make room in " + options_.checkpoint_dir + " (free space, quota, permissions; a lower "
                    "checkpoint.keep_last keeps fewer files), or copy its checkpoints to a disk with room and set "
                    "checkpoint.dir there; then run again with --resume auto (checkpoint.on_error = continue trains "
                    "on without the checkpoints that fail)");
    log::warn("checkpoint", std::string(e.what()) + " (checkpoint.on_error = continue: training goes on)");
    return false;
  }
  last_save_time_ = std::chrono::steady_clock::now();
  double seconds = std::chrono::duration<double>(last_save_time_ - t0).count();
  log::info("checkpoint", std::string("wrote ") + last_checkpoint_ + " after step " + std::to_string(steps_done) +
                              " (" + why + ", " + std::to_string(seconds).substr(0, 5) + " s)");
  if (comm_.rank() == 0) apply_retention(options_.checkpoint_dir, options_.keep_last, options_.keep_every_steps);
  return true;
}

// Note [A diverged run stops]: a loss that turns NaN or inf (a learning rate far too
// large, a corrupt input) never recovers, and every step after it only spends time and
// overwrites good checkpoints with broken ones. Every rank sees every rank's loss of the
// step (the monitor's allgather), so all of them throw here at the same step, before the
// checkpoint triggers: the newest checkpoint on disk is the last one written before.
// save() also refuses parameters that are not finite, for the step whose update broke
// them before any loss showed it.
void Trainer::stop_if_diverged(const RunMonitor& monitor, int64_t step) const {
  const int rank = monitor.non_finite_loss_rank();
  if (rank < 0) return;
  throw DataError("training diverged: the loss of rank " + std::to_string(rank) + " at step " +
                  std::to_string(step) + " is not a finite number; stopped without a checkpoint of " +
                  "this state (" + (last_checkpoint_.empty() ? std::string("no checkpoint was written before")
                                                             : "the newest is " + last_checkpoint_) +
                  "). Lower the learning rate (e.g. glove.eta, word2vec.alpha, gpt.lr) or check the data");
}

// The first parameter holding a value that is not finite, or "" (host parameters only:
// device parameters would need a copy, and their loss is checked every step anyway).
std::string Trainer::non_finite_parameter() const {
  const ParamStore& params = model_.params();
  if (!params.device().is_cpu() || params.dtype() != DType::kF32) return {};
  for (int i = 0; i < params.size(); ++i) {
    const Tensor t = params.value(i);
    const float* v = static_cast<const float*>(t.data());
    for (int64_t k = 0; k < t.numel(); ++k)
      if (!std::isfinite(v[k])) return params.entry(i).name + " element " + std::to_string(k);
  }
  return {};
}

bool Trainer::minutes_due() {
  if (options_.every_minutes <= 0 || options_.checkpoint_dir.empty()) return false;
  int32_t due = 0;
  if (comm_.rank() == 0) {
    double minutes = std::chrono::duration<double>(std::chrono::steady_clock::now() - last_save_time_).count() / 60;
    due = minutes >= options_.every_minutes ? 1 : 0;
  }
  comm_.broadcast(Tensor::of(&due, 1), 0);   // rank 0's clock decides for everyone
  return due != 0;
}

void Trainer::end_epoch(bool unfinished) {
  double sums[2] = {epoch_loss_sum_, epoch_examples_};
  comm_.allreduce(Tensor::of(sums, 2), ReduceOp::kSum);
  epoch_loss_sum_ = epoch_examples_ = 0;
  EpochRecord record;
  record.epoch = unfinished ? model_.epoch() + 1 : model_.epoch();
  record.loss = sums[1] > 0 ? sums[0] / sums[1] : 0.0;
  record.partial = resumed_mid_epoch_ || unfinished;
  resumed_mid_epoch_ = false;
  if (epoch_hook_) epoch_hook_(record);
  const int64_t per_epoch = std::max<int64_t>(1, model_.steps_per_epoch());
  const int64_t epochs = (model_.total_steps() + per_epoch - 1) / per_epoch;
  log::info(model_.kind(), "epoch " + std::to_string(record.epoch) + "/" + std::to_string(epochs) + ": loss " +
                               fixed(record.loss, 5) +
                               (unfinished ? " (the run ended inside this epoch: its steps so far)"
                                : record.partial ? " (steps since the resume)" : "") +
                               record.note);
  epochs_.push_back(std::move(record));
}

int Trainer::run() {
  resume_if_asked();
  tokens_at_start_ = model_.tokens_seen();   // after a resume: what the earlier runs saw
  const int64_t total = model_.total_steps();
  options_.monitor.total_steps = total;
  options_.monitor.unit = std::string(model_.item_unit());
  RunMonitor monitor(comm_, options_.monitor);
  if (!last_checkpoint_.empty()) monitor.set_last_checkpoint(last_checkpoint_, start_step_, /*written=*/false);
  // Host parameters reduce over the job's own communicator (a test may hand the Trainer
  // one that is not the world); device parameters over the device's (NCCL).
  const Device device = model_.params().device();
  Communicator& device_comm = device.is_cpu() ? comm_ : comm_for(device);
  int stop = 0;              // a stop request waiting for a step the model can save at
  bool steps_due = false;    // likewise an every_steps checkpoint
  for (int64_t step = start_step_; step < total; ++step) {
    comm_.set_step(step);
    auto t0 = std::chrono::steady_clock::now();
    const int64_t epoch_before = model_.epoch();
    StepStats stats = model_.train_step(StepContext{step, &comm_, device, &device_comm});
    epoch_loss_sum_ += stats.loss_sum;
    epoch_examples_ += static_cast<double>(stats.examples);
    if (model_.epoch() != epoch_before) end_epoch();
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    double loss = stats.examples > 0 ? stats.loss_sum / double(stats.examples) : 0.0;
    const int signal = monitor.end_step(
        StepReport{step, loss, seconds, stats.items, double(stats.examples), model_.epoch(), stats.lr});
    if (stop == 0) stop = signal;
    stop_if_diverged(monitor, step);
    int64_t done = step + 1;
    steps_due = steps_due || (options_.every_steps > 0 && done % options_.every_steps == 0 && done < total);
    // The same answer on every rank (a function of the step), so the collectives below match.
    if (!model_.checkpoint_ready(done)) continue;
    if (stop != 0) {
      log::info_all("train", "stop requested (signal " + std::to_string(stop) + "): all ranks stopped after step " +
                                 std::to_string(done) + " (steps done)");
      save(done, "stop request");
      monitor.set_last_checkpoint(last_checkpoint_, done);
      monitor.finish();
      return 128 + stop;
    }
    const bool by_steps = steps_due;
    steps_due = false;
    if ((by_steps || minutes_due()) && save(done, by_steps ? "every_steps" : "every_minutes"))
      monitor.set_last_checkpoint(last_checkpoint_, done);
  }
  // A run that ends inside an epoch (a transformer trained for a number of steps) reports
  // the loss of that epoch's steps so far; every rank takes this branch alike.
  if (start_step_ < total && model_.epoch_step() > 0) end_epoch(/*unfinished=*/true);
  if (options_.at_end && start_step_ < total) save(total, "end of training");
  monitor.finish();
  return 0;
}

}  // namespace loom
