// bench/qmatmul_bench: quantized GEMV (decode) and GEMM (prefill) per weight
// format. Reports GB/s of packed weights streamed (the closing table of
// kernels_bench.cpp sets it against the STREAM triad at the same thread
// count), GFLOP/s, and the speed-up over the scalar reference row loop.
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstdio>
#include <map>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include <benchmark/benchmark.h>

#include "base/thread_pool.h"
#include "kernels/qmatmul.h"
#include "kernels/qmatmul_a8.h"
#include "quant/formats.h"
#include "quant/rtn.h"

namespace bitlens {
namespace {

using quant::FormatInfo;

const FormatInfo& FormatAt(int64_t index) { return quant::AllFormats()[static_cast<size_t>(index)]; }

// Packed [n, k] weights of a format (RTN min-max of N(0, 0.02) values), kept
// across repetitions.
const std::vector<uint8_t>& PackedWeights(int64_t format, int64_t n, int64_t k) {
  static std::map<std::tuple<int64_t, int64_t, int64_t>, std::vector<uint8_t>> cache;
  auto key = std::make_tuple(format, n, k);
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  const FormatInfo& f = FormatAt(format);
  std::mt19937 rng(42);
  std::normal_distribution<float> dist(0.0f, 0.02f);
  std::vector<float> w(static_cast<size_t>(n * k));
  for (float& v : w) v = dist(rng);
  std::vector<uint8_t> packed(static_cast<size_t>(n) * quant::RowBytes(f, k));
  if (!quant::QuantizeRowsRef(f, w.data(), n, k, quant::RangeSearch::kMinMax, packed).ok()) std::abort();
  return cache.emplace(key, std::move(packed)).first->second;
}

std::vector<float> RandomX(size_t n) {
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// The row loop QMatMul ran before the SIMD kernels: the table's scalar
// vec_dot_ref per output, rows split over the pool.
void ReferenceRowLoop(const float* x, int64_t m, const FormatInfo& f, const uint8_t* w, int64_t n, int64_t k,
                      float* y) {
  const size_t row_bytes = quant::RowBytes(f, k);
  auto rows = [&](size_t begin, size_t end, size_t) {
    for (int64_t r = 0; r < m; ++r) {
      for (size_t o = begin; o < end; ++o) y[r * n + static_cast<int64_t>(o)] = f.vec_dot_ref(f, w + o * row_bytes, x + r * k, k);
    }
  };
  ParallelFor(static_cast<size_t>(n), 16, rows);
}

// Seconds per call of fn, over at least 0.3 s.
template <class Fn>
double SecondsPerCall(const Fn& fn) {
  using Clock = std::chrono::steady_clock;
  fn();  // warm up
  const auto start = Clock::now();
  int64_t calls = 0;
  double elapsed = 0.0;
  do {
    fn();
    ++calls;
    elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  } while (elapsed < 0.3);
  return elapsed / static_cast<double>(calls);
}

// y[m, n] = x[m, k] · W[n, k]^T for one format. args: format index, m, n, k, threads.
void BM_QMatMul(benchmark::State& state) {
  const FormatInfo& f = FormatAt(state.range(0));
  const int64_t m = state.range(1), n = state.range(2), k = state.range(3);
  SetNumThreads(static_cast<size_t>(state.range(4)));
  const std::vector<uint8_t>& w = PackedWeights(state.range(0), n, k);
  const std::vector<float> x = RandomX(static_cast<size_t>(m * k));
  std::vector<float> y(static_cast<size_t>(m * n));
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  int64_t calls = 0;
  for (auto _ : state) {
    kernels::QMatMul(x.data(), m, f, w.data(), n, k, nullptr, y.data());
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
    ++calls;
  }
  const double fast = std::chrono::duration<double>(Clock::now() - start).count() / static_cast<double>(calls);
  const double ref = SecondsPerCall([&] {
    ReferenceRowLoop(x.data(), m, f, w.data(), n, k, y.data());
    benchmark::DoNotOptimize(y.data());
  });
  const double bytes = static_cast<double>(w.size());
  // Weight bandwidth only means something for decode (prefill reuses each
  // weight over m rows); the closing triad table lists the GEMV runs.
  if (m == 1) state.counters["GB/s"] = benchmark::Counter(bytes / 1e9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["GFLOP/s"] =
      benchmark::Counter(2.0 * m * n * k / 1e9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["x_ref"] = ref / fast;
  state.SetLabel(std::string(f.name) + (m == 1 ? " gemv " : " gemm m" + std::to_string(m) + " ") +
                 std::to_string(n) + "x" + std::to_string(k) + " t" + std::to_string(state.range(4)));
}

// Every format of the table at the decode shapes (3072x3072 is L3-resident
// for 2-bit formats; 8192x3072 streams from DRAM for all but the smallest),
// and a 64-token prefill.
void QMatMulArgs(benchmark::internal::Benchmark* b) {
  const int64_t formats = static_cast<int64_t>(quant::AllFormats().size());
  for (int64_t threads : {1, 2}) {
    for (int64_t f = 0; f < formats; ++f) {
      b->Args({f, 1, 3072, 3072, threads});
      b->Args({f, 1, 8192, 3072, threads});
    }
  }
  for (int64_t threads : {1, 2}) {
    for (int64_t f = 0; f < formats; ++f) b->Args({f, 64, 3072, 3072, threads});
  }
}

BENCHMARK(BM_QMatMul)->Apply(QMatMulArgs)->UseRealTime()->Unit(benchmark::kMicrosecond);

// Decode through QMatMul under a16 and a8 (the AVX-512 VNNI kernel where the
// CPU has it) with the weights streamed from DRAM as decode streams them: the
// packed matrix is copied until the copies exceed 160 MiB (5 × a 32 MiB L3)
// and the calls cycle through the copies. args: format index, a8 (0/1), m, n,
// k, threads, streamed (0: one copy, L3-resident for the 2-bit formats, which
// shows the kernel's arithmetic limit). Counters: GB/s of packed weights and
// G weights/s.
void BM_QDecodeStreamed(benchmark::State& state) {
  const FormatInfo& f = FormatAt(state.range(0));
  const bool a8 = state.range(1) != 0;
  const int64_t m = state.range(2), n = state.range(3), k = state.range(4);
  if (a8 && !kernels::A8Supports(f, k)) {
    state.SkipWithError((std::string(f.name) + " has no a8 path").c_str());
    return;
  }
  SetNumThreads(static_cast<size_t>(state.range(5)));
  const std::vector<uint8_t>& w = PackedWeights(state.range(0), n, k);
  const bool streamed = state.range(6) != 0;
  const size_t copies = streamed ? std::max<size_t>(2, (160u << 20) / w.size() + 1) : 1;
  static std::vector<uint8_t> pool;
  pool.resize(copies * w.size());
  for (size_t c = 0; c < copies; ++c) std::copy(w.begin(), w.end(), pool.begin() + static_cast<std::ptrdiff_t>(c * w.size()));
  const std::vector<float> x = RandomX(static_cast<size_t>(m * k));
  std::vector<float> y(static_cast<size_t>(m * n));
  const kernels::QActivations before = kernels::GetQActivations();
  kernels::SetQActivations(a8 ? kernels::QActivations::kInt8 : kernels::QActivations::kF32);
  size_t c = 0;
  for (auto _ : state) {
    kernels::QMatMul(x.data(), m, f, pool.data() + c * w.size(), n, k, nullptr, y.data());
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
    c = (c + 1) % copies;
  }
  kernels::SetQActivations(before);
  state.counters["GB/s"] = benchmark::Counter(static_cast<double>(w.size()) / 1e9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["Gw/s"] = benchmark::Counter(static_cast<double>(n * k) / 1e9, benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(std::string(f.name) + (a8 ? " a8" : " a16") + " m" + std::to_string(m) + " " + std::to_string(n) + "x" +
                 std::to_string(k) + " t" + std::to_string(state.range(5)));
}

// The 2-bit formats of the VNNI kernel and w4g32, decode (m = 1) and small m.
void QDecodeStreamedArgs(benchmark::internal::Benchmark* b) {
  for (const char* name : {"w2g64", "w2g32dq", "w2g128", "w2sg64", "w2g64dq", "w4g32"}) {
    Result<const FormatInfo*> f = quant::FindFormat(name);
    if (!f.ok()) continue;
    const int64_t fi = *f - quant::AllFormats().data();
    for (int64_t threads : {1, 2}) {
      for (int64_t a8 : {0, 1}) {
        for (int64_t m : {1, 4}) {
          b->Args({fi, a8, m, 8192, 3072, threads, 1});
          b->Args({fi, a8, m, 3072, 8192, threads, 1});
          b->Args({fi, a8, m, 3072, 3072, threads, 0});
        }
      }
    }
  }
}

BENCHMARK(BM_QDecodeStreamed)->Apply(QDecodeStreamedArgs)->UseRealTime()->MeasureProcessCPUTime()->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace bitlens
