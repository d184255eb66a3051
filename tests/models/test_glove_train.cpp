// GloVe end to end at world sizes 1, 2 and 3: the planted corpus goes through io/'s vocab
// and co-occurrence, GloVe trains on every rank's partition, and the planted analogies
// are answered. Also: determinism with one thread, and exact resume from a checkpoint.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "io/checkpoint.h"
#include "tests/models/glove_fixture.h"

namespace loom::test {
namespace {

// Copies of the packed parameters and accumulators.
struct Snapshot {
  std::vector<float> values, gradsq;
};

Snapshot snapshot(Glove& g) {
  Tensor v = g.params().values(), s = g.gradsq();
  return {std::vector<float>(v.f32(), v.f32() + v.numel()), std::vector<float>(s.f32(), s.f32() + s.numel())};
}

void run_steps(Glove& g, int64_t from, int64_t to) {
  for (int64_t s = from; s < to; ++s) g.train_step(StepContext{s, &world()});
}

void expect_identical(const Snapshot& a, const Snapshot& b) {
  ASSERT_EQ(a.values.size(), b.values.size());
  for (size_t i = 0; i < a.values.size(); ++i)
    ASSERT_EQ(std::memcmp(&a.values[i], &b.values[i], 4), 0)
        << "rank " << world().rank() << " value " << i << ": " << a.values[i] << " vs " << b.values[i];
  for (size_t i = 0; i < a.gradsq.size(); ++i)
    ASSERT_EQ(std::memcmp(&a.gradsq[i], &b.gradsq[i], 4), 0)
        << "rank " << world().rank() << " gradsq " << i << ": " << a.gradsq[i] << " vs " << b.gradsq[i];
}

TEST(GloveTrain, PlantedAnalogies) {
  TrainOutcome out = train_planted(planted_options());
  if (world().rank() == 0)
    std::printf("world %d: final loss %.5f, planted analogy accuracy %.4f, %.2f s\n", world().size(),
                out.last_epoch_loss, out.accuracy, out.seconds);
  EXPECT_GE(out.accuracy, 0.9) << "world " << world().size();
}

// Hogwild: two threads per rank race on shared rows; the result depends on timing, the
// quality must not.
TEST(GloveTrain, HogwildThreadsLearnToo) {
  GloveOptions o = planted_options();
  o.threads = 2;
  TrainOutcome out = train_planted(o);
  EXPECT_GE(out.accuracy, 0.9) << "world " << world().size();
}

TEST(GloveTrain, OutputVectors) {
  const PlantedData& d = planted_data();
  GloveOptions o = planted_options();
  o.epochs = 1;
  for (GloveOutput output : {GloveOutput::kSum, GloveOutput::kW, GloveOutput::kConcat}) {
    o.output = output;
    std::unique_ptr<Glove> g = make_glove(o, world(), d.vocab, d.entries);
    const int64_t V = d.vocab.size(), D = o.dim;
    const std::vector<float> out = g->output_vectors();
    ASSERT_EQ(static_cast<int64_t>(out.size()), V * g->output_dim()) << glove_output_name(output);
    const float* W = g->params().value("W").f32();
    const float* C = g->params().value("W_ctx").f32();
    const int64_t i = V - 1, k = D - 1;   // last word, last component
    const float w = W[i * D + k], c = C[i * D + k];
    if (output == GloveOutput::kSum) {
      EXPECT_EQ(out[static_cast<size_t>(i * D + k)], w + c);
    } else if (output == GloveOutput::kW) {
      EXPECT_EQ(out[static_cast<size_t>(i * D + k)], w);
    } else {
      EXPECT_EQ(out[static_cast<size_t>(i * 2 * D + k)], w);
      EXPECT_EQ(out[static_cast<size_t>(i * 2 * D + D + k)], c);
    }
  }
  EXPECT_EQ(parse_glove_output("concat"), GloveOutput::kConcat);
  EXPECT_THROW(parse_glove_sync("allreduce"), ConfigError);
}

TEST(GloveTrain, ChunkOrderIsAFreshPermutationEachEpoch) {
  for (int64_t n : {int64_t{0}, int64_t{5}, int64_t{4096}, int64_t{10 * 4096}, int64_t{10 * 4096 + 7}}) {
    const int64_t chunks = (n + 4095) / 4096;
    std::vector<int64_t> first = glove_chunk_order(n, 4096, 1234, 0, 0);
    ASSERT_EQ(static_cast<int64_t>(first.size()), chunks) << n;
    std::vector<int64_t> sorted = first;
    std::sort(sorted.begin(), sorted.end());
    for (int64_t q = 0; q < chunks; ++q) EXPECT_EQ(sorted[static_cast<size_t>(q)], q) << n;
    if (n % 4096 != 0) {
      EXPECT_EQ(first.back(), chunks - 1) << "the partial chunk must stay last";
    }
    EXPECT_EQ(glove_chunk_order(n, 4096, 1234, 0, 0), first) << "deterministic";
    if (n / 4096 >= 10) {
      EXPECT_NE(glove_chunk_order(n, 4096, 1234, 0, 1), first) << "epoch 1 repeats epoch 0";
      EXPECT_NE(glove_chunk_order(n, 4096, 1234, 1, 0), first) << "rank 1 repeats rank 0";
    }
  }
}

// Every epoch trains every non-zero of every rank exactly once, whatever the schedule.
TEST(GloveTrain, EveryEpochCountsEveryNonZero) {
  const PlantedData& d = planted_data();
  int64_t total = static_cast<int64_t>(d.entries.size());
  world().allreduce(Tensor::of(&total, 1), ReduceOp::kSum);
  for (bool reshuffle : {true, false}) {
    for (int64_t step_nnz : {int64_t{1000}, int64_t{1} << 24}) {
      GloveOptions o = planted_options();
      o.epochs = 2;
      o.reshuffle = reshuffle;
      o.step_nnz = step_nnz;
      std::unique_ptr<Glove> g = make_glove(o, world(), d.vocab, d.entries);
      run_steps(*g, 0, g->steps_per_epoch());
      EXPECT_EQ(g->tokens_seen(), total) << "reshuffle " << reshuffle << " step_nnz " << step_nnz;
      run_steps(*g, g->steps_per_epoch(), g->total_steps());
      EXPECT_EQ(g->tokens_seen(), 2 * total);
    }
  }
}

// The float32 trainer on a tiny matrix (V 7, D 5, 30 non-zeros, 4 epochs, one thread, the
// fixed order) against the same training written out in double precision from the same
// initial parameters: GloVe's weighted least squares, AdaGrad with eta-scaled, clipped
// steps and accumulators from 1 (Note [GloVe AdaGrad]). Every epoch's loss and every
// final parameter must agree to float rounding. One rank: the reference follows one
// rank's visiting order.
TEST(GloveTrain, TinyMatrixMatchesADoublePrecisionReference) {
  if (world().size() != 1) GTEST_SKIP() << "the double-precision reference follows one rank's order";
  const int V = 7;
  Vocab vocab({"a", "b", "c", "d", "e", "f", "g"}, {70, 60, 50, 40, 30, 20, 10});
  std::vector<CooccurEntry> entries;
  std::mt19937_64 gen(5);
  for (int i = 0; i < 30; ++i)
    entries.push_back({static_cast<int32_t>(gen() % V), static_cast<int32_t>(gen() % V),
                       0.5 + static_cast<double>(gen() % 4000) / 100.0});   // x in [0.5, 40.5): f < 1 and = 1
  GloveOptions o;
  o.dim = 5;
  o.x_max = 10;
  o.epochs = 4;
  o.threads = 1;
  o.reshuffle = false;
  o.step_nnz = 7;   // several steps per epoch
  std::unique_ptr<Glove> g = make_glove(o, world(), vocab, entries);
  const int64_t D = o.dim;

  // The double reference starts from the model's initial floats (W, W_ctx, b, b_ctx).
  ParamStore& ps = g->params();
  auto take = [&](int e) {
    Tensor t = ps.value(e);
    return std::vector<double>(t.f32(), t.f32() + t.numel());
  };
  std::vector<double> W = take(0), C = take(1), b = take(2), bc = take(3);
  std::vector<double> gW(W.size(), 1.0), gC(C.size(), 1.0), gb(b.size(), 1.0), gbc(bc.size(), 1.0);
  const double eta = o.eta, clip = o.grad_clip;
  std::vector<double> ref_loss;
  for (int64_t epoch = 0; epoch < o.epochs; ++epoch) {
    double loss = 0;
    for (const CooccurEntry& e : entries) {
      double* w = &W[static_cast<size_t>(e.row * D)];
      double* c = &C[static_cast<size_t>(e.col * D)];
      double f = std::min(1.0, std::pow(e.value / o.x_max, o.alpha));
      double diff = b[static_cast<size_t>(e.row)] + bc[static_cast<size_t>(e.col)] - std::log(e.value);
      for (int64_t k = 0; k < D; ++k) diff += w[k] * c[k];
      loss += 0.5 * f * diff * diff;
      const double fdiff = f * diff;
      for (int64_t k = 0; k < D; ++k) {
        double uw = std::clamp(eta * fdiff * c[k], -clip, clip), uc = std::clamp(eta * fdiff * w[k], -clip, clip);
        double& sw = gW[static_cast<size_t>(e.row * D + k)];
        double& sc = gC[static_cast<size_t>(e.col * D + k)];
        w[k] -= uw / std::sqrt(sw);
        c[k] -= uc / std::sqrt(sc);
        sw += uw * uw;
        sc += uc * uc;
      }
      const double ub = eta * fdiff;
      b[static_cast<size_t>(e.row)] -= ub / std::sqrt(gb[static_cast<size_t>(e.row)]);
      bc[static_cast<size_t>(e.col)] -= ub / std::sqrt(gbc[static_cast<size_t>(e.col)]);
      gb[static_cast<size_t>(e.row)] += ub * ub;
      gbc[static_cast<size_t>(e.col)] += ub * ub;
    }
    ref_loss.push_back(loss);
  }

  for (int64_t epoch = 0; epoch < o.epochs; ++epoch) {
    double loss = 0;
    for (int64_t s = 0; s < g->steps_per_epoch(); ++s)
      loss += g->train_step(StepContext{epoch * g->steps_per_epoch() + s, &world()}).loss_sum;
    EXPECT_NEAR(loss, ref_loss[static_cast<size_t>(epoch)], 1e-5 * ref_loss[static_cast<size_t>(epoch)])
        << "epoch " << epoch;
  }
  EXPECT_LT(ref_loss.back(), 0.8 * ref_loss.front()) << "the tiny problem must actually train";
  const std::vector<double>* want[] = {&W, &C, &b, &bc};
  for (int e = 0; e < 4; ++e) {
    Tensor t = ps.value(e);
    for (int64_t i = 0; i < t.numel(); ++i)
      EXPECT_NEAR(t.f32()[i], (*want[e])[static_cast<size_t>(i)], 2e-6) << ps.entry(e).name << "[" << i << "]";
  }
  const float* gsq = g->gradsq().f32();
  const std::vector<double>* want_gsq[] = {&gW, &gC, &gb, &gbc};
  for (int e = 0; e < 4; ++e)
    for (size_t i = 0; i < want_gsq[e]->size(); ++i)
      EXPECT_NEAR(gsq[ps.entry(e).offset + static_cast<int64_t>(i)], (*want_gsq[e])[i], 1e-5 * (*want_gsq[e])[i])
          << "accumulator of " << ps.entry(e).name << "[" << i << "]";
}

TEST(GloveTrain, ReplicasStayEqual) {
  const PlantedData& d = planted_data();
  GloveOptions o = planted_options();
  o.epochs = 2;
  std::unique_ptr<Glove> g = make_glove(o, world(), d.vocab, d.entries);
  run_steps(*g, 0, g->total_steps());
  Snapshot mine = snapshot(*g);
  std::vector<float> root = mine.values;
  world().broadcast(Tensor::of(root.data(), static_cast<int64_t>(root.size())), 0);
  EXPECT_EQ(std::memcmp(root.data(), mine.values.data(), root.size() * 4), 0) << "rank " << world().rank();
  EXPECT_EQ(g->epoch(), 2);
}

TEST(GloveTrain, OneThreadIsDeterministic) {
  const PlantedData& d = planted_data();
  GloveOptions o = planted_options();
  o.epochs = 2;
  std::unique_ptr<Glove> a = make_glove(o, world(), d.vocab, d.entries);
  std::unique_ptr<Glove> b = make_glove(o, world(), d.vocab, d.entries);
  run_steps(*a, 0, a->total_steps());
  run_steps(*b, 0, b->total_steps());
  expect_identical(snapshot(*a), snapshot(*b));
  EXPECT_EQ(a->tokens_seen(), b->tokens_seen());
}

TEST(GloveTrain, ResumeIsBitExact) {
  const PlantedData& d = planted_data();
  GloveOptions o = planted_options();
  o.epochs = 3;
  static TempDir tmp;
  char dir[512] = {};
  std::snprintf(dir, sizeof(dir), "%s", tmp.path().c_str());
  world().broadcast(Tensor::of(reinterpret_cast<uint8_t*>(dir), sizeof(dir)), 0);

  std::unique_ptr<Glove> a = make_glove(o, world(), d.vocab, d.entries);
  const int64_t k = a->steps_per_epoch() + 1;   // mid-epoch
  ASSERT_LT(k, a->total_steps());
  run_steps(*a, 0, k);
  SaveRequest req;
  req.meta.model_kind = "glove";
  req.meta.step = k;
  req.meta.epoch = a->epoch();
  req.meta.tokens_seen = a->tokens_seen();
  req.params = &a->params();
  req.slots = a->optimizer_slots();
  req.state = a->rank_state();
  req.vocab = a->vocab();
  const std::string path = save_checkpoint(world(), dir, "glove_k", req);
  run_steps(*a, k, a->total_steps());

  std::unique_ptr<Glove> b = make_glove(o, world(), d.vocab, d.entries);
  CheckpointReader reader;
  reader.open(path);
  reader.read_model_into(b->params());
  b->restore(reader, k);
  EXPECT_EQ(b->total_steps(), a->total_steps());
  EXPECT_EQ(b->tokens_seen(), req.meta.tokens_seen);
  run_steps(*b, k, b->total_steps());
  expect_identical(snapshot(*a), snapshot(*b));
  EXPECT_EQ(a->tokens_seen(), b->tokens_seen());
}

// A checkpoint whose cursor does not fit this run (another world size, or here another
// step_nnz): the run continues in the same epoch at the same fraction of it and ends after
// complete epochs.
TEST(GloveTrain, ResumeRemapsCursor) {
  const PlantedData& d = planted_data();
  GloveOptions o = planted_options();
  o.epochs = 3;
  static TempDir tmp;
  char dir[512] = {};
  std::snprintf(dir, sizeof(dir), "%s", tmp.path().c_str());
  world().broadcast(Tensor::of(reinterpret_cast<uint8_t*>(dir), sizeof(dir)), 0);
  std::unique_ptr<Glove> a = make_glove(o, world(), d.vocab, d.entries);
  const int64_t S = a->steps_per_epoch();
  ASSERT_GE(S, 2);
  const int64_t k = S + S / 2;   // epoch 1, half way
  run_steps(*a, 0, k);
  SaveRequest req;
  req.meta.model_kind = "glove";
  req.meta.step = k;
  req.meta.tokens_seen = a->tokens_seen();
  req.params = &a->params();
  req.slots = a->optimizer_slots();
  req.state = a->rank_state();
  const std::string path = save_checkpoint(world(), dir, "glove_remap", req);

  o.step_nnz /= 2;   // about twice as many steps per epoch
  std::unique_ptr<Glove> b = make_glove(o, world(), d.vocab, d.entries);
  const int64_t S2 = b->steps_per_epoch();
  CheckpointReader reader;
  reader.open(path);
  reader.read_model_into(b->params());
  b->restore(reader, k);
  EXPECT_EQ(b->epoch(), 1);
  EXPECT_EQ(b->total_steps(), k + (o.epochs * S2 - (S2 + (S / 2) * S2 / S)));
  run_steps(*b, k, b->total_steps());
  EXPECT_EQ(b->epoch(), o.epochs);
}

// Not a check: the measurement behind Note [GloVe synchronisation]. Runs only with
// LOOM_GLOVE_MEASURE=1 (use a Release build); on the planted corpus, or on
// LOOM_GLOVE_CORPUS with LOOM_GLOVE_QUESTIONS (min_count 5, window 10, D 100);
// LOOM_GLOVE_MEASURE_EPOCHS overrides the 25 epochs (the Note used 5 for the corpus).
TEST(GloveTrain, MeasureSyncSchemes) {
  if (std::getenv("LOOM_GLOVE_MEASURE") == nullptr) GTEST_SKIP() << "set LOOM_GLOVE_MEASURE=1 to measure";
  PlantedData real;
  const char* corpus = std::getenv("LOOM_GLOVE_CORPUS");
  if (corpus != nullptr) {
    real.corpus = corpus;
    const char* questions = std::getenv("LOOM_GLOVE_QUESTIONS");
    ASSERT_NE(questions, nullptr) << "LOOM_GLOVE_CORPUS needs LOOM_GLOVE_QUESTIONS";
    real.questions = questions;
    build_matrix(&real, 5, 10, true);
  }
  const PlantedData& d = corpus != nullptr ? real : planted_data();
  std::vector<int64_t> periods{1024, 4096, 16384, int64_t{1} << 20};
  if (corpus != nullptr) periods = {int64_t{1} << 18, int64_t{1} << 20, int64_t{1} << 24};
  const char* epochs_env = std::getenv("LOOM_GLOVE_MEASURE_EPOCHS");
  const int64_t epochs = epochs_env != nullptr ? std::atoi(epochs_env) : 25;
  for (GloveSync sync : {GloveSync::kStratified, GloveSync::kDelta, GloveSync::kAverage}) {
    for (int64_t step_nnz : periods) {
      GloveOptions o = planted_options();
      o.sync = sync;
      o.step_nnz = step_nnz;
      o.epochs = epochs;
      if (corpus != nullptr) o.dim = 100;
      TrainOutcome out = train_on(d, o);
      if (world().rank() == 0)
        std::printf("MEASURE world=%d sync=%s step_nnz=%lld loss=%.5f accuracy=%.4f seconds=%.3f nnz/s=%.3gM\n",
                    world().size(), glove_sync_name(sync), static_cast<long long>(step_nnz),
                    out.last_epoch_loss, out.accuracy, out.seconds, out.nnz_per_s * 1e-6);
      if (world().size() == 1) break;   // no sync at world size 1
    }
    if (world().size() == 1) break;
  }
  // The cost of one sync at the wiki17m benchmark's size (V 71,290, D 100): a model with
  // no data, so a step is the sync alone.
  std::vector<std::string> tokens;
  for (int i = 0; i < 71290; ++i) tokens.push_back(std::to_string(i).insert(0, 1, 'w'));
  const Vocab big(tokens, std::vector<int64_t>(tokens.size(), 1));
  for (GloveSync sync : {GloveSync::kStratified, GloveSync::kDelta, GloveSync::kAverage}) {
    GloveOptions o = planted_options();
    o.sync = sync;
    o.dim = 100;
    o.epochs = 10;
    std::unique_ptr<Glove> g = make_glove(o, world(), big, {});
    world().barrier();
    const auto start = std::chrono::steady_clock::now();
    run_steps(*g, 0, g->total_steps());
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (world().rank() == 0)
      std::printf("MEASURE world=%d sync=%s V=71290 D=100: %.1f ms per sync\n", world().size(),
                  glove_sync_name(sync), 1e3 * seconds / static_cast<double>(g->total_steps()));
  }
}

}  // namespace
}  // namespace loom::test
