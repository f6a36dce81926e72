// bench/kernels_bench: kernel throughput measured against this machine's own
// memory bandwidth. GEMV (decode) reports the GB/s of weights streamed; a
// STREAM-style triad measures what the memory system delivers; the summary
// prints their ratio. Prefill GEMM reports GFLOP/s beside OpenBLAS sgemm.
#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "base/f16.h"
#include "base/thread_pool.h"
#include "kernels/ops.h"

namespace bitlens {
namespace {

using kernels::WeightView;

std::vector<float> RandomFloats(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

// Weights [n, k] in dtype; kept alive across benchmark repetitions.
struct BenchWeights {
  std::vector<float> f32;
  std::vector<uint16_t> half;
  WeightView view;
};

const BenchWeights& Weights(DType dtype, int64_t n, int64_t k) {
  static std::map<std::tuple<int, int64_t, int64_t>, BenchWeights> cache;
  auto key = std::make_tuple(static_cast<int>(dtype), n, k);
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  BenchWeights w;
  std::vector<float> values = RandomFloats(static_cast<size_t>(n * k), 42);
  if (dtype == DType::kF32) {
    w.f32 = std::move(values);
    w.view = WeightView{dtype, w.f32.data(), n, k};
  } else {
    w.half.resize(values.size());
    for (size_t i = 0; i < values.size(); ++i)
      w.half[i] = dtype == DType::kBF16 ? F32ToBf16(values[i]) : F32ToF16(values[i]);
    w.view = WeightView{dtype, w.half.data(), n, k};
  }
  return cache.emplace(key, std::move(w)).first->second;
}

void SetThreads(benchmark::State& state, int arg_index) {
  SetNumThreads(static_cast<size_t>(state.range(arg_index)));
}

// Decode GEMV: y[1, n] = x[1, k] · w[n, k]^T. args: dtype, n, k, threads.
void BM_Gemv(benchmark::State& state) {
  const auto dtype = static_cast<DType>(state.range(0));
  const int64_t n = state.range(1), k = state.range(2);
  SetThreads(state, 3);
  const BenchWeights& w = Weights(dtype, n, k);
  const std::vector<float> x = RandomFloats(static_cast<size_t>(k), 1);
  std::vector<float> y(static_cast<size_t>(n));
  for (auto _ : state) {
    kernels::MatMul(x.data(), 1, w.view, nullptr, y.data());
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  const double weight_bytes = static_cast<double>(n * k * DTypeSize(dtype));
  state.counters["GB/s"] = benchmark::Counter(weight_bytes / 1e9, benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(std::string(DTypeName(dtype)) + " " + std::to_string(n) + "x" + std::to_string(k) + " t" +
                 std::to_string(state.range(3)));
}

// STREAM triad a = b + s * c over three arrays of 2^24 floats (64 MiB each,
// twice the L3), split over the pool like the kernels. Counts 3 arrays of
// traffic per pass, as STREAM does (write-allocate traffic is not counted).
void BM_Triad(benchmark::State& state) {
  SetThreads(state, 0);
  const size_t n = size_t{1} << 24;
  static std::vector<float> a(n, 0.0f), b(n, 1.0f), c(n, 2.0f);
  const float s = 3.0f;
  auto pass = [&](size_t begin, size_t end, size_t) {
    float* __restrict pa = a.data();
    const float* __restrict pb = b.data();
    const float* __restrict pc = c.data();
    for (size_t i = begin; i < end; ++i) pa[i] = pb[i] + s * pc[i];
  };
  for (auto _ : state) {
    ParallelFor(n, 4096, pass);
    benchmark::ClobberMemory();
  }
  state.counters["GB/s"] =
      benchmark::Counter(3.0 * n * sizeof(float) / 1e9, benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel("triad t" + std::to_string(state.range(0)));
}

// Prefill GEMM: y[m, n] = x[m, k] · w[n, k]^T. args: dtype, m, n, k, threads.
void BM_MatMulPrefill(benchmark::State& state) {
  const auto dtype = static_cast<DType>(state.range(0));
  const int64_t m = state.range(1), n = state.range(2), k = state.range(3);
  SetThreads(state, 4);
  const BenchWeights& w = Weights(dtype, n, k);
  const std::vector<float> x = RandomFloats(static_cast<size_t>(m * k), 2);
  std::vector<float> y(static_cast<size_t>(m * n));
  for (auto _ : state) {
    kernels::MatMul(x.data(), m, w.view, nullptr, y.data());
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["GFLOP/s"] =
      benchmark::Counter(2.0 * m * n * k / 1e9, benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(std::string(DTypeName(dtype)) + " m" + std::to_string(m) + " " + std::to_string(n) + "x" +
                 std::to_string(k) + " t" + std::to_string(state.range(4)));
}

// The same f32 GEMM through OpenBLAS (its own threads, OPENBLAS_NUM_THREADS).
void BM_SgemmPrefill(benchmark::State& state) {
  const int64_t m = state.range(0), n = state.range(1), k = state.range(2);
  const BenchWeights& w = Weights(DType::kF32, n, k);
  const std::vector<float> x = RandomFloats(static_cast<size_t>(m * k), 2);
  std::vector<float> y(static_cast<size_t>(m * n));
  for (auto _ : state) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(m), static_cast<int>(n),
                static_cast<int>(k), 1.0f, x.data(), static_cast<int>(k), w.f32.data(), static_cast<int>(k), 0.0f,
                y.data(), static_cast<int>(n));
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["GFLOP/s"] =
      benchmark::Counter(2.0 * m * n * k / 1e9, benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel("openblas F32 m" + std::to_string(m) + " " + std::to_string(n) + "x" + std::to_string(k));
}

// Attention: args n_q, n_kv, n_heads, n_kv_heads, head_dim, causal, threads.
// FLOPs count q·k and p·v over visible keys (2 * 2 * head_dim per pair).
void BM_Attention(benchmark::State& state) {
  const int64_t n_q = state.range(0), n_kv = state.range(1), n_heads = state.range(2), n_kv_heads = state.range(3),
                head_dim = state.range(4);
  const bool causal = state.range(5) != 0;
  SetThreads(state, 6);
  const auto q = RandomFloats(static_cast<size_t>(n_q * n_heads * head_dim), 3);
  const auto k = RandomFloats(static_cast<size_t>(n_kv * n_kv_heads * head_dim), 4);
  const auto v = RandomFloats(static_cast<size_t>(n_kv * n_kv_heads * head_dim), 5);
  std::vector<float> out(q.size()), scratch(NumThreads() * static_cast<size_t>(n_kv));
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  for (auto _ : state) {
    kernels::Attention(q.data(), n_q, n_heads, k.data(), v.data(), n_kv, n_kv_heads, head_dim, n_kv - n_q, causal,
                       scale, scratch.data(), out.data());
    benchmark::DoNotOptimize(out.data());
  }
  double pairs = 0;  // visible (query, key) pairs per head
  for (int64_t i = 0; i < n_q; ++i) pairs += causal ? static_cast<double>(n_kv - n_q + i + 1) : n_kv;
  state.counters["GFLOP/s"] = benchmark::Counter(4.0 * head_dim * n_heads * pairs / 1e9,
                                                 benchmark::Counter::kIsIterationInvariantRate);
  char label[96];
  std::snprintf(label, sizeof(label), "q%lld kv%lld h%lld/%lld d%lld%s t%lld", static_cast<long long>(n_q),
                static_cast<long long>(n_kv), static_cast<long long>(n_heads), static_cast<long long>(n_kv_heads),
                static_cast<long long>(head_dim), causal ? " causal" : "", static_cast<long long>(state.range(6)));
  state.SetLabel(label);
}

constexpr int64_t kF32 = static_cast<int64_t>(DType::kF32);
constexpr int64_t kF16 = static_cast<int64_t>(DType::kF16);
constexpr int64_t kBF16 = static_cast<int64_t>(DType::kBF16);

BENCHMARK(BM_Triad)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Gemv)
    ->ArgsProduct({{kBF16, kF32, kF16}, {3072, 8192}, {3072}, {1, 2}})
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_MatMulPrefill)
    ->ArgsProduct({{kF32, kBF16}, {64}, {3072}, {3072}, {1, 2}})
    ->Args({kF32, 577, 4096, 1024, 1})  // ViT-L fc1 over 577 tokens
    ->Args({kF32, 577, 1024, 4096, 1})  // ViT-L fc2
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Attention)
    ->Args({577, 577, 16, 16, 64, 0, 1})     // ViT-L/14 at 336 px, one layer
    ->Args({577, 577, 16, 16, 64, 0, 2})
    ->Args({1, 1024, 32, 8, 128, 1, 1})      // decode, GQA, 1k context
    ->Args({1, 1024, 32, 8, 128, 1, 2})
    ->Args({128, 128, 32, 8, 128, 1, 2})     // causal prefill of a prompt
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_SgemmPrefill)->Args({64, 3072, 3072})->Args({577, 4096, 1024})->Args({577, 1024, 4096})->UseRealTime()->Unit(benchmark::kMillisecond);

// Console output plus a closing table: each GEMV's GB/s over the triad's GB/s
// at the same thread count (the fraction of the machine's bandwidth used).
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& run : runs) {
      if (run.run_type != Run::RT_Iteration) continue;
      auto it = run.counters.find("GB/s");
      if (it == run.counters.end()) continue;
      // Rate by the benchmark thread's CPU time: for one thread, the speed
      // while actually running, robust to other processes taking the cores.
      const double cpu_rate = run.cpu_accumulated_time > 0
                                  ? it->second.value * run.real_accumulated_time / run.cpu_accumulated_time
                                  : 0.0;
      const Rates rates{it->second.value, cpu_rate};
      if (run.report_label.rfind("triad", 0) == 0) {
        triad_[run.report_label.substr(6)] = rates;
      } else {
        gemv_.emplace_back(run.report_label, rates);
      }
    }
  }
  void Finalize() override {
    ConsoleReporter::Finalize();
    std::printf(
        "\nGEMV weight bandwidth vs STREAM triad (same thread count). wall: by real time;\n"
        "cpu: by the calling thread's CPU time (meaningful for t1 only; robust to a busy machine)\n");
    std::printf("  %-20s %12s %12s %7s   %12s %12s %7s\n", "", "GEMV wall", "triad wall", "ratio", "GEMV cpu",
                "triad cpu", "ratio");
    for (const auto& [label, gemv] : gemv_) {
      const std::string threads = label.substr(label.rfind(' ') + 1);
      const Rates triad = triad_.count(threads) ? triad_[threads] : Rates{};
      std::printf("  %-20s %7.2f GB/s %7.2f GB/s %7.2f   %7.2f GB/s %7.2f GB/s %7.2f\n", label.c_str(), gemv.wall,
                  triad.wall, triad.wall > 0 ? gemv.wall / triad.wall : 0.0, gemv.cpu, triad.cpu,
                  triad.cpu > 0 ? gemv.cpu / triad.cpu : 0.0);
    }
  }

 private:
  struct Rates {
    double wall = 0.0, cpu = 0.0;  // GB/s
  };
  std::map<std::string, Rates> triad_;
  std::vector<std::pair<std::string, Rates>> gemv_;
};

}  // namespace
}  // namespace bitlens

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  bitlens::RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  return 0;
}
