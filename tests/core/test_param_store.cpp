#include <gtest/gtest.h>

#include "core/param_store.h"

namespace loom {

TEST(ParamStore, PacksInDeclarationOrderWithAlignment) {
  ParamStore ps;
  EXPECT_EQ(ps.declare("W", {10, 3}), 0);
  EXPECT_EQ(ps.declare("b", {10}), 1);
  EXPECT_EQ(ps.declare("W_ctx", {10, 3}), 2);
  ps.finalize();
  ASSERT_EQ(ps.size(), 3);
  EXPECT_EQ(ps.entry(0).offset, 0);
  EXPECT_EQ(ps.entry(1).offset, 32);   // 30 floats rounded up to 16-float (64-byte) lines
  EXPECT_EQ(ps.entry(2).offset, 48);
  EXPECT_EQ(ps.total_elements(), 80);
  EXPECT_EQ(ps.parameter_count(), 70);
  for (int i = 0; i < ps.size(); ++i) {
    auto addr = reinterpret_cast<uintptr_t>(ps.value(i).data());
    EXPECT_EQ(addr % 64, 0u) << ps.entry(i).name;
  }
}

TEST(ParamStore, ValuesAndGradsAreTwinViews) {
  ParamStore ps;
  ps.declare("a", {2, 2});
  ps.declare("c", {3});
  ps.finalize();
  Tensor c = ps.value("c");
  EXPECT_EQ(c.shape(), (Shape{3}));
  c.f32()[2] = 7.0f;
  ps.grad("c").f32()[2] = -1.0f;
  EXPECT_EQ(ps.values().f32()[ps.entry(1).offset + 2], 7.0f);
  EXPECT_EQ(ps.grads().f32()[ps.entry(1).offset + 2], -1.0f);
  ps.zero_grads();
  EXPECT_EQ(ps.grad("c").f32()[2], 0.0f);
  EXPECT_EQ(ps.value("c").f32()[2], 7.0f);
}

TEST(ParamStore, Errors) {
  ParamStore ps;
  ps.declare("x", {1});
  EXPECT_THROW(ps.declare("x", {2}), Error);
  ps.finalize();
  EXPECT_EQ(ps.find("nope"), -1);
  try {
    ps.value("nope");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'nope'"), std::string::npos) << e.what();
  }
  EXPECT_DEATH(ps.declare("y", {1}), "after finalize");
}


TEST(ParamStore, PackedRunReadsAsOneTensor) {
  // Three (3, 3) matrices with no padding between them: one (9, 3) view; the parameter
  // after the run starts on a 64-byte boundary again.
  ParamStore ps;
  ps.declare("pre", {5});
  const int q = ps.declare("q", {3, 3});
  ps.declare_packed("k", {3, 3});
  ps.declare_packed("v", {3, 3});
  const int after = ps.declare("after", {2});
  ps.finalize(Device::cpu(), DType::kF64);
  EXPECT_EQ(ps.entry(q + 1).offset, ps.entry(q).offset + 9);
  EXPECT_EQ(ps.entry(q + 2).offset, ps.entry(q).offset + 18);
  EXPECT_EQ(ps.entry(after).offset % 16, 0);
  EXPECT_GE(ps.entry(after).offset, ps.entry(q).offset + 27);
  ps.value("k").f64()[4] = 2.5;
  ps.grad("v").f64()[8] = -1.5;
  Tensor all = ps.packed_value(q, 3, {9, 3}), dall = ps.packed_grad(q, 3, {9, 3});
  EXPECT_EQ(all.shape(), (Shape{9, 3}));
  EXPECT_EQ(all.f64()[9 + 4], 2.5);
  EXPECT_EQ(dall.f64()[18 + 8], -1.5);
  EXPECT_EQ(ps.parameter_count(), 5 + 27 + 2);
  EXPECT_DEATH(ps.packed_value(0, 2, {5 + 9}), "padding");
}

}  // namespace loom
