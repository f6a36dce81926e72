// bench/qmatmul_lut_bench: decode GEMV over packed weights by three kernels —
// f32 activations (W·A16, QMatMul's default), int8 integer dots (W·A8,
// QMatMulA8Dots) and the lookup-table kernel (QMatMulLut) — on the decode
// shapes 3072×3072 and 8192×3072. Reports GB/s of packed weights; never fails.
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
#include "kernels/qmatmul_lut.h"
#include "quant/formats.h"
#include "quant/rtn.h"

namespace bitlens {
namespace {

enum Path { kA16 = 0, kA8 = 1, kLut = 2 };
const char* PathName(int p) { return p == kA16 ? "a16" : p == kA8 ? "a8" : "lut"; }

const std::vector<std::string>& BenchFormats() {
  static const std::vector<std::string> names = {"w2g32", "w2g64", "w2g128", "w2sg64", "w2g32dq", "w2g64dq", "t1", "w4g32", "w3g64", "w8"};
  return names;
}

// Packed [n, k] weights per (format, n, k), quantized once (RTN min-max).
const std::vector<uint8_t>& Packed(const quant::FormatInfo& f, int64_t n, int64_t k) {
  static std::map<std::tuple<std::string, int64_t, int64_t>, std::vector<uint8_t>> cache;
  auto key = std::make_tuple(std::string(f.name), n, k);
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  std::mt19937 rng(42);
  std::normal_distribution<float> nd(0.0f, 0.02f);
  std::vector<float> w(static_cast<size_t>(n * k));
  for (float& v : w) v = nd(rng);
  std::vector<uint8_t> packed(static_cast<size_t>(n) * quant::RowBytes(f, k));
  (void)quant::QuantizeRowsRef(f, w.data(), n, k, quant::RangeSearch::kMinMax, packed);
  return cache.emplace(key, std::move(packed)).first->second;
}

// args: format index, path, n, k, threads
void BM_QGemv(benchmark::State& state) {
  const std::string& name = BenchFormats()[static_cast<size_t>(state.range(0))];
  const int path = static_cast<int>(state.range(1));
  const int64_t n = state.range(2), k = state.range(3);
  Result<const quant::FormatInfo*> f = quant::FindFormat(name);
  if (!f.ok()) {
    state.SkipWithError(("format " + name + " is not in the table").c_str());
    return;
  }
  if ((path == kA8 && !kernels::A8Supports(**f, k)) || (path == kLut && !kernels::LutSupports(**f, k))) {
    state.SkipWithError((name + " has no " + PathName(path) + " path").c_str());
    return;
  }
  SetNumThreads(static_cast<size_t>(state.range(4)));
  const std::vector<uint8_t>& w = Packed(**f, n, k);
  std::mt19937 rng(1);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(k)), y(static_cast<size_t>(n));
  for (float& v : x) v = nd(rng);
  for (auto _ : state) {
    if (path == kA16) {
      kernels::QMatMul(x.data(), 1, **f, w.data(), n, k, nullptr, y.data());
    } else if (path == kA8) {
      kernels::QMatMulA8Dots(x.data(), 1, **f, w.data(), n, k, nullptr, y.data());
    } else {
      kernels::QMatMulLut(x.data(), 1, **f, w.data(), n, k, nullptr, y.data());
    }
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.counters["GB/s"] = benchmark::Counter(static_cast<double>(w.size()) / 1e9,
                                              benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(name + " " + PathName(path) + " " + std::to_string(n) + "x" + std::to_string(k) + " t" +
                 std::to_string(state.range(4)));
}

void QGemvArgs(benchmark::internal::Benchmark* b) {
  for (int64_t fi = 0; fi < static_cast<int64_t>(BenchFormats().size()); ++fi) {
    for (int64_t path : {kA16, kA8, kLut}) {
      for (auto [n, k] : {std::pair<int64_t, int64_t>{3072, 3072}, {8192, 3072}}) {
        for (int64_t t : {1, 2}) b->Args({fi, path, n, k, t});
      }
    }
  }
}

BENCHMARK(BM_QGemv)->Apply(QGemvArgs)->UseRealTime()->Unit(benchmark::kMicrosecond);

// Prefill GEMM, m = 64 rows of x: args format index, path (a16 or a8), threads.
void BM_QGemmPrefill(benchmark::State& state) {
  const std::string& name = BenchFormats()[static_cast<size_t>(state.range(0))];
  const int path = static_cast<int>(state.range(1));
  const int64_t m = 64, n = 3072, k = 3072;
  Result<const quant::FormatInfo*> f = quant::FindFormat(name);
  if (!f.ok()) {
    state.SkipWithError(("format " + name + " is not in the table").c_str());
    return;
  }
  SetNumThreads(static_cast<size_t>(state.range(2)));
  const std::vector<uint8_t>& w = Packed(**f, n, k);
  std::mt19937 rng(1);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(m * k)), y(static_cast<size_t>(m * n));
  for (float& v : x) v = nd(rng);
  for (auto _ : state) {
    if (path == kA16) {
      kernels::QMatMul(x.data(), m, **f, w.data(), n, k, nullptr, y.data());
    } else {
      kernels::QMatMulA8Dots(x.data(), m, **f, w.data(), n, k, nullptr, y.data());
    }
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * m * n * k / 1e9, benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(name + " " + PathName(path) + " m=64 3072x3072 t" + std::to_string(state.range(2)));
}
BENCHMARK(BM_QGemmPrefill)
    ->ArgsProduct({{1, 4}, {kA16, kA8}, {1}})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace bitlens

BENCHMARK_MAIN();
