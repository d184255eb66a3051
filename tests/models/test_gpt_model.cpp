// Gpt (models/gpt/gpt.h) as a single process on synthetic windows: gradient accumulation
// over micro-batches equals one pass over the whole batch, the data cursor follows the
// step, training lowers the loss on a learnable stream, and the held-out evaluation is the
// mean token loss.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <vector>

#include "core/rng.h"
#include "models/gpt/gpt.h"
#include "tests/support/solo_communicator.h"

namespace loom {
namespace {

// Windows of a periodic stream (period 5 over a vocabulary of 7): learnable from context.
class PeriodicWindows final : public WindowSource {
 public:
  PeriodicWindows(int64_t seq_len, int64_t windows) : T_(seq_len), W_(windows) {}
  int64_t windows_per_epoch() const override { return W_; }
  int64_t seq_len() const override { return T_; }
  void window(int64_t index, int32_t* out) const override {
    const int64_t start = (index * 7919) % 97;   // a fixed scramble of starting points
    for (int64_t t = 0; t <= T_; ++t) out[t] = int32_t((start + t) % 5 + (start % 2) * 2);
  }

 private:
  int64_t T_, W_;
};

GptOptions tiny_options() {
  GptOptions o;
  o.shape.n_layer = 2;
  o.shape.n_head = 2;
  o.shape.d_model = 16;
  o.shape.n_positions = 12;
  o.shape.vocab_size = 7;
  o.seq_len = 12;
  o.batch_size = 6;
  o.steps = 40;
  o.lr = 3e-3;
  o.lr_min = 3e-4;
  o.warmup_steps = 5;
  o.eval_every = 0;
  o.eval_batches = 2;
  o.seed = 5;
  return o;
}

std::vector<float> values(Gpt& m) {
  Tensor v = m.params().values();
  return std::vector<float>(v.f32(), v.f32() + v.numel());
}

StepStats step(Gpt& m, test::SoloCommunicator& comm, int64_t s) {
  return m.train_step(StepContext{s, &comm, Device::cpu(), &comm});
}

TEST(Gpt, MicroBatchesAccumulateToTheWholeBatch) {
  PeriodicWindows train(12, 200);
  test::SoloCommunicator comm;
  GptOptions whole = tiny_options();
  Gpt a(whole, comm, &train, nullptr);
  GptOptions micro = whole;
  micro.micro_batch = 4;   // 4 + 2: uneven micro-batches
  Gpt b(micro, comm, &train, nullptr);
  EXPECT_EQ(b.net().micro_batch(), 4);
  for (int64_t s = 0; s < 5; ++s) {
    const StepStats sa = step(a, comm, s), sb = step(b, comm, s);
    EXPECT_EQ(sa.examples, sb.examples);
    EXPECT_NEAR(sa.loss_sum, sb.loss_sum, 1e-5 * sa.loss_sum) << "step " << s;
  }
  const std::vector<float> va = values(a), vb = values(b);
  double worst = 0.0;
  for (size_t i = 0; i < va.size(); ++i) worst = std::max(worst, double(std::abs(va[i] - vb[i])));
  EXPECT_LT(worst, 2e-5) << "summation order only";
  EXPECT_EQ(a.tokens_seen(), 5 * 6 * 12);
}

TEST(Gpt, TrainingLowersTheLossAndTheHeldOutLossIsTheMeanTokenLoss) {
  PeriodicWindows train(12, 200), heldout(12, 30);
  test::SoloCommunicator comm;
  Gpt m(tiny_options(), comm, &train, &heldout);
  const GptEval before = m.evaluate_heldout(comm, 12);
  EXPECT_NEAR(before.loss, std::log(7.0), 0.3) << "an untrained model is near uniform";
  double first = 0, last = 0;
  for (int64_t s = 0; s < 40; ++s) {
    const StepStats st = step(m, comm, s);
    const double loss = st.loss_sum / double(st.examples);
    if (s == 0) first = loss;
    last = loss;
  }
  EXPECT_LT(last, first - 0.5);
  ASSERT_EQ(m.evaluations().size(), 1u) << "the last step evaluates";
  EXPECT_EQ(m.evaluations()[0].step, 40);
  EXPECT_LT(m.evaluations()[0].loss, before.loss - 0.5);
  EXPECT_EQ(m.evaluations()[0].windows, 12);   // eval_batches 2 x batch_size 6
  // The same evaluation again: deterministic.
  EXPECT_DOUBLE_EQ(m.evaluate_heldout(comm, 12).loss, m.evaluations()[0].loss);
}

TEST(Gpt, EpochsFollowTheGlobalWindowCount) {
  PeriodicWindows train(12, 15);   // 15 windows: an epoch is 2.5 steps of 6
  test::SoloCommunicator comm;
  GptOptions o = tiny_options();
  Gpt m(o, comm, &train, nullptr);
  EXPECT_EQ(m.steps_per_epoch(), 3);
  step(m, comm, 0);
  step(m, comm, 1);
  EXPECT_EQ(m.epoch(), 0);
  step(m, comm, 2);   // windows 12..17: crosses into epoch 1
  EXPECT_EQ(m.epoch(), 1);
  EXPECT_EQ(m.epoch_step(), 0);
  std::vector<RankState> state = m.rank_state();
  ASSERT_EQ(state.size(), 2u);
  EXPECT_EQ(state[0].name, "data");
  EXPECT_EQ(state[0].mine[0], 18u);   // windows consumed: the global cursor
  EXPECT_EQ(state[0].mine[1], 3u);    // optimizer steps
  EXPECT_EQ(state[1].name, "heldout");
  EXPECT_EQ(state[1].mine, std::vector<uint64_t>{0});   // no evaluation yet
}

}  // namespace
}  // namespace loom
