#include <gtest/gtest.h>

#include <cstdint>

#include "core/buffer.h"
#include "core/tensor.h"

namespace loom {

TEST(Shape, NumelAndEquality) {
  Shape s{2, 3, 4};
  EXPECT_EQ(s.rank(), 3);
  EXPECT_EQ(s.numel(), 24);
  EXPECT_EQ(s, (Shape{2, 3, 4}));
  EXPECT_FALSE(s == (Shape{2, 12}));
  EXPECT_EQ(Shape{}.numel(), 1);           // a scalar
  EXPECT_EQ((Shape{5, 0}).numel(), 0);
  EXPECT_EQ(s.str(), "(2, 3, 4)");
  EXPECT_EQ(Shape{7}.str(), "(7,)");
}

TEST(Buffer, AlignedZeroedAndMovable) {
  Buffer b(1000);
  ASSERT_NE(b.data(), nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(b.data()) % Buffer::kAlignment, 0u);
  const auto* bytes = static_cast<const unsigned char*>(b.data());
  for (size_t i = 0; i < b.size(); ++i) ASSERT_EQ(bytes[i], 0) << "byte " << i;
  void* p = b.data();
  Buffer moved(std::move(b));
  EXPECT_EQ(moved.data(), p);
  EXPECT_EQ(b.data(), nullptr);
  EXPECT_EQ(b.size(), 0u);
}

// Note [Huge pages for parameters]: large host buffers start on a 2 MiB boundary (so that
// huge pages can back them) and are still zeroed; small ones keep the plain alignment.
// With huge pages off (run.hugepages = false) a large buffer is zeroed and plainly aligned.
TEST(Buffer, LargeBuffersAreHugePageAligned) {
  ASSERT_TRUE(huge_pages()) << "on by default";
  for (bool on : {true, false}) {
    set_huge_pages(on);
    Buffer big(size_t{6} << 20, Device::cpu());
    if (on) {
      EXPECT_EQ(reinterpret_cast<uintptr_t>(big.data()) % (size_t{2} << 20), 0u);
    }
    EXPECT_EQ(reinterpret_cast<uintptr_t>(big.data()) % Buffer::kAlignment, 0u);
    const auto* p = static_cast<const unsigned char*>(big.data());
    for (size_t i = 0; i < big.size(); i += 4093) ASSERT_EQ(p[i], 0) << i << ", huge pages " << on;
    EXPECT_EQ(p[big.size() - 1], 0);
    Buffer small(4096, Device::cpu());
    EXPECT_EQ(reinterpret_cast<uintptr_t>(small.data()) % Buffer::kAlignment, 0u);
  }
  set_huge_pages(true);
}

TEST(Buffer, CudaMemoryWithoutGpuIsAnError) {
  if (cuda_available()) GTEST_SKIP() << "a GPU is present";
  EXPECT_THROW(Buffer(64, Device::cuda(0)), Error);
}

TEST(Tensor, ViewsAndSlices) {
  Buffer b(12 * sizeof(float));
  Tensor t = b.as(DType::kF32);
  ASSERT_EQ(t.numel(), 12);
  for (int i = 0; i < 12; ++i) t.f32()[i] = static_cast<float>(i);
  Tensor m = t.view({3, 4});
  EXPECT_EQ(m.shape(), (Shape{3, 4}));
  Tensor s = t.slice(5, 4);
  EXPECT_EQ(s.numel(), 4);
  EXPECT_EQ(s.f32()[0], 5.0f);
  EXPECT_EQ(s.f32()[3], 8.0f);
  EXPECT_EQ(s.nbytes(), 16u);
  EXPECT_DEATH(t.i32(), "dtype mismatch");
  EXPECT_DEATH(t.slice(10, 3), "slice out of range");
}

}  // namespace loom
