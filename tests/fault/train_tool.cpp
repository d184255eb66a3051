// train_tool: runs the Trainer on RegressionModel (tests/support/regression_model.h) as
// `loom train` runs a model: Session, config + --set, checkpoints, resume, signals.
//   train_tool [--dim N] [--batch N] [--steps N] [--seed N] [--ready-every N] [--set section.key=value]...
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "dist/mpi_communicator.h"
#include "launch/config/config.h"
#include "launch/run/session.h"
#include "launch/run/signals.h"
#include "launch/run/trainer.h"
#include "tests/support/regression_model.h"

// The regression model's config section, registered as a model kind's would be (Note
// [Model sections]): the Trainer compares regression.dim, its shape key, on resume.
#define LOOM_CONFIG_REGRESSION(X_BOOL, X_INT, X_REAL, X_STR, X_ENUM, X_LIST) \
  X_INT(dim, 1024, ConfigRange::at_least(1), "features of the test regression model")
namespace loom {
LOOM_MODEL_SECTION(regression, RegressionSection, LOOM_CONFIG_REGRESSION)
LOOM_REGISTER_MODEL_SECTION(RegressionSection, LOOM_CONFIG_REGRESSION, "the fault tests' regression model");
}  // namespace loom

int main(int argc, char** argv) {
  loom::test::RegressionOptions model_options;
  loom::SessionOptions session_options;
  session_options.command = "train";
  // The regression model reads no corpus, but a training session names one (Note [Missing
  // inputs, all at once]): the planted corpus, never built.
  session_options.overrides.push_back("corpus.synthetic=true");
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--dim") session_options.overrides.push_back("regression.dim=" + value);
    else if (flag == "--batch") model_options.batch = std::atoll(value.c_str());
    else if (flag == "--steps") model_options.steps = std::atoll(value.c_str());
    else if (flag == "--seed") model_options.seed = std::strtoull(value.c_str(), nullptr, 10);
    else if (flag == "--ready-every") model_options.ready_every = std::atoll(value.c_str());
    else if (flag == "--set") session_options.overrides.push_back(value);
    else if (flag == "--resume") session_options.overrides.push_back("checkpoint.resume=" + value);
    else return 2;
  }
  std::unique_ptr<loom::Session> session;
  try {
    session = std::make_unique<loom::Session>(session_options);
    loom::install_stop_handlers();
    model_options.dim = session->config().models.get<loom::RegressionSection>().dim;
    loom::test::RegressionModel model(model_options, session->comm());
    loom::TrainerOptions options = loom::trainer_options(session->config(), session->run_dir());
    loom::Trainer trainer(session->comm(), model, options);
    return trainer.run();
  } catch (const loom::Error& e) {
    return loom::end_with_error("train", e.what(), e.exit_code());
  }
}
