// bench/bandwidth: STREAM triad and a read-only sum, best of N passes.
#include "bench/bandwidth.h"

#include <algorithm>
#include <chrono>
#include <memory>
#include <new>
#include <vector>

#include "base/thread_pool.h"
#include "bench/machine.h"

namespace bitlens::bench {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

struct AlignedFree {
  void operator()(float* p) const { ::operator delete[](p, std::align_val_t{64}); }
};
using AlignedFloats = std::unique_ptr<float[], AlignedFree>;

AlignedFloats AllocateFloats(size_t n) {
  return AlignedFloats(static_cast<float*>(::operator new[](n * sizeof(float), std::align_val_t{64})));
}

// Chunks of 16 KiB keep the static split balanced and cache-line aligned.
constexpr size_t kGrain = 4096;

}  // namespace

int64_t DefaultArrayBytes(int64_t llc_bytes) { return std::max<int64_t>(4 * llc_bytes, int64_t{64} << 20); }

Result<BandwidthResult> MeasureBandwidth(const BandwidthOptions& options) {
  if (options.threads < 1) return InvalidArgument("bandwidth: threads must be >= 1");
  if (options.repetitions < 1) return InvalidArgument("bandwidth: repetitions must be >= 1");
  const int64_t array_bytes = options.array_bytes > 0 ? options.array_bytes : DefaultArrayBytes(LastLevelCacheBytes());
  if (array_bytes < (int64_t{1} << 20)) return InvalidArgument("bandwidth: arrays must be at least 1 MiB");
  const size_t n = static_cast<size_t>(array_bytes) / sizeof(float);

  const size_t previous_threads = NumThreads();
  SetNumThreads(static_cast<size_t>(options.threads));
  AlignedFloats a = AllocateFloats(n), b = AllocateFloats(n), c = AllocateFloats(n);
  float* pa = a.get();
  float* pb = b.get();
  float* pc = c.get();
  // First touch with the same split as the timed passes (page placement).
  auto init = [&](size_t begin, size_t end, size_t) {
    for (size_t i = begin; i < end; ++i) {
      pa[i] = 0.0f;
      pb[i] = 1.0f;
      pc[i] = 2.0f;
    }
  };
  ParallelFor(n, kGrain, init);

  const float s = 3.0f;
  auto triad = [&](size_t begin, size_t end, size_t) {
    float* __restrict x = pa;
    const float* __restrict y = pb;
    const float* __restrict z = pc;
    for (size_t i = begin; i < end; ++i) x[i] = y[i] + s * z[i];
  };
  // Integer sums vectorize without reassociating floats; one partial per worker.
  std::vector<uint64_t> partial(NumThreads() * 8, 0);
  auto read = [&](size_t begin, size_t end, size_t worker) {
    const uint32_t* __restrict y = reinterpret_cast<const uint32_t*>(pb);
    const uint32_t* __restrict z = reinterpret_cast<const uint32_t*>(pc);
    uint64_t sum = 0;
    for (size_t i = begin; i < end; ++i) sum += y[i] + static_cast<uint64_t>(z[i]);
    partial[worker * 8] += sum;
  };

  std::vector<double> triad_s, read_s;
  for (int64_t r = 0; r < options.repetitions; ++r) {
    auto t0 = Clock::now();
    ParallelFor(n, kGrain, triad);
    auto t1 = Clock::now();
    ParallelFor(n, kGrain, read);
    auto t2 = Clock::now();
    triad_s.push_back(Seconds(t0, t1));
    read_s.push_back(Seconds(t1, t2));
  }
  uint64_t checksum = 0;
  for (uint64_t p : partial) checksum += p;
  SetNumThreads(previous_threads);
  if (checksum == 0 || pa[n / 2] != 7.0f) return Internal("bandwidth: the triad produced wrong values");

  BandwidthResult out;
  out.threads = options.threads;
  out.array_bytes = static_cast<int64_t>(n * sizeof(float));
  out.repetitions = options.repetitions;
  const double triad_bytes = 3.0 * static_cast<double>(n * sizeof(float));
  const double read_bytes = 2.0 * static_cast<double>(n * sizeof(float));
  std::vector<double> sorted = triad_s;
  std::sort(sorted.begin(), sorted.end());
  out.triad_gb_per_s = triad_bytes / sorted.front() / 1e9;
  out.triad_median_gb_per_s = triad_bytes / sorted[sorted.size() / 2] / 1e9;
  out.read_gb_per_s = read_bytes / *std::min_element(read_s.begin(), read_s.end()) / 1e9;
  out.load_average_1min = LoadAverage1Min();
  return out;
}

}  // namespace bitlens::bench
