#include <atomic>
#include <cmath>
#include <vector>

#include <gtest/gtest.h>

#include "base/f16.h"
#include "base/status.h"
#include "base/thread_pool.h"

namespace bitlens {
namespace {

Result<int> Half(int x) {
  if (x % 2) return InvalidArgument("odd");
  return x / 2;
}

Result<int> Quarter(int x) {
  BL_ASSIGN_OR_RETURN(int h, Half(x));
  BL_ASSIGN_OR_RETURN(int q, Half(h));
  return q;
}

TEST(Status, PropagatesErrorsAndExitCodes) {
  EXPECT_EQ(*Quarter(8), 2);
  auto r = Quarter(6);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "odd");
  EXPECT_EQ(r.status().ExitCode(), 2);
  EXPECT_EQ(Internal("x").ExitCode(), 1);
  EXPECT_EQ(NotFound("f").WithContext("a.json").message(), "a.json: f");
}

TEST(F16, ConvertsExactlyLikeIeeeRoundToNearestEven) {
  // Every f16 bit pattern survives f16 -> f32 -> f16.
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = F16ToF32(static_cast<uint16_t>(h));
    if (std::isnan(f)) continue;
    ASSERT_EQ(F32ToF16(f), h) << "pattern " << h;
  }
  EXPECT_EQ(F32ToF16(65520.f), 0x7c00);           // rounds to +inf
  EXPECT_EQ(F32ToF16(1.0f + 1.0f / 2048), 0x3c00);  // tie rounds to even
  EXPECT_EQ(F32ToF16(5.9604645e-08f), 0x0001);    // smallest subnormal
}

TEST(Bf16, RoundsToNearestEven) {
  EXPECT_EQ(F32ToBf16(1.0f), 0x3f80);
  EXPECT_EQ(Bf16ToF32(0x3f80), 1.0f);
  // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties to even (1.0).
  EXPECT_EQ(F32ToBf16(1.0f + 1.0f / 256), 0x3f80);
  EXPECT_EQ(F32ToBf16(1.0f + 3.0f / 256), 0x3f82);
  EXPECT_TRUE(std::isnan(Bf16ToF32(F32ToBf16(NAN))));
}

TEST(ThreadPool, CoversRangeExactlyOnceForEveryThreadCount) {
  for (size_t threads : {1, 2, 3}) {
    SetNumThreads(threads);
    for (size_t n : {0, 1, 7, 64, 1001}) {
      std::vector<std::atomic<int>> hits(n);
      ParallelFor(n, 4, [&](size_t b, size_t e, size_t) {
        for (size_t i = b; i < e; ++i) hits[i]++;
      });
      for (size_t i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 1) << "n=" << n << " i=" << i;
    }
  }
  SetNumThreads(0);
}

TEST(ThreadPool, ResizingAfterAJobDoesNotReplayIt) {
  // New workers must not mistake the finished job for a fresh one.
  SetNumThreads(2);
  std::atomic<int> calls{0};
  ParallelFor(8, 1, [&](size_t, size_t, size_t) { calls++; });
  const int after_first = calls.load();
  EXPECT_EQ(after_first, 2);
  SetNumThreads(3);
  SetNumThreads(2);
  EXPECT_EQ(calls.load(), after_first);
  ParallelFor(8, 1, [&](size_t, size_t, size_t) { calls++; });
  EXPECT_EQ(calls.load(), after_first + 2);
  SetNumThreads(0);
}

}  // namespace
}  // namespace bitlens
