// bench/kernel_bench: random weights quantized once with the reference
// quantizer, copied until the copies outgrow the cache, then timed calls.
#include "bench/kernel_bench.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <sstream>

#include "base/thread_pool.h"
#include "bench/machine.h"
#include "kernels/ops.h"

namespace bitlens::bench {
namespace {

using Clock = std::chrono::steady_clock;

std::vector<std::string> SplitComma(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

bool ParseInt(const std::string& s, int64_t* out) {
  if (s.empty() || s.size() > 12) return false;
  int64_t v = 0;
  for (char ch : s) {
    if (ch < '0' || ch > '9') return false;
    v = v * 10 + (ch - '0');
  }
  *out = v;
  return true;
}

// Deterministic uniform values in [-0.05, 0.05): enough for timing, cheap to make.
void FillRandom(float* out, size_t n, uint64_t seed) {
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
  for (size_t i = 0; i < n; ++i) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    out[i] = (static_cast<float>(s >> 40) / static_cast<float>(1 << 24) - 0.5f) * 0.1f;
  }
}

// The runtime reads f16/bf16 checkpoints through the float MatMul path
// (WeightView.dtype, no format); every other format goes through QMatMul.
kernels::WeightView ViewFor(const quant::FormatInfo& f, const void* data, int64_t n, int64_t k) {
  kernels::WeightView w;
  w.data = data;
  w.n = n;
  w.k = k;
  if (std::strcmp(f.name, "bf16") == 0) {
    w.dtype = DType::kBF16;
  } else if (std::strcmp(f.name, "f16") == 0) {
    w.dtype = DType::kF16;
  } else {
    w.dtype = DType::kU8;
    w.format = &f;
  }
  return w;
}

}  // namespace

Result<std::vector<KernelShape>> ParseShapes(const std::string& text) {
  std::vector<KernelShape> shapes;
  for (const std::string& item : SplitComma(text)) {
    const size_t x = item.find('x');
    KernelShape s;
    if (x == std::string::npos || !ParseInt(item.substr(0, x), &s.n) || !ParseInt(item.substr(x + 1), &s.k) ||
        s.n <= 0 || s.k <= 0) {
      return InvalidArgument("--shapes: '" + item + "' is not NxK with positive N and K (e.g. 3072x3072)");
    }
    shapes.push_back(s);
  }
  if (shapes.empty()) return InvalidArgument("--shapes: no shape given (e.g. 3072x3072,8192x3072)");
  return shapes;
}

Result<std::vector<const quant::FormatInfo*>> ParseFormats(const std::string& text) {
  std::vector<const quant::FormatInfo*> out;
  if (text.empty()) {
    for (const quant::FormatInfo& f : quant::AllFormats()) out.push_back(&f);
    return out;
  }
  for (const std::string& name : SplitComma(text)) {
    auto f = quant::FindFormat(name);
    if (!f.ok()) return InvalidArgument("--formats: " + f.status().message());
    out.push_back(*f);
  }
  if (out.empty()) return InvalidArgument("--formats: no format given");
  return out;
}

Result<std::vector<int64_t>> ParsePositiveList(const std::string& text, const std::string& flag) {
  std::vector<int64_t> out;
  for (const std::string& item : SplitComma(text)) {
    int64_t v = 0;
    if (!ParseInt(item, &v) || v <= 0) return InvalidArgument(flag + ": '" + item + "' is not a positive integer");
    out.push_back(v);
  }
  if (out.empty()) return InvalidArgument(flag + ": no value given");
  return out;
}

Result<KernelResult> RunKernelCase(const KernelCase& c, const KernelBenchOptions& options) {
  if (c.format == nullptr) return InvalidArgument("kernel case without a format");
  const quant::FormatInfo& f = *c.format;
  const int64_t n = c.shape.n, k = c.shape.k, m = c.m;
  if (n <= 0 || k <= 0 || m <= 0 || c.threads <= 0) return InvalidArgument("kernel case: n, k, m and threads must be positive");
  BL_TRY(quant::CheckRowLength(f, k));
  const size_t row_bytes = quant::RowBytes(f, k);
  const size_t matrix_bytes = row_bytes * static_cast<size_t>(n);

  // Quantize one matrix, then copy it until the copies outgrow the cache.
  std::vector<uint8_t> packed(matrix_bytes);
  {
    std::vector<float> row(static_cast<size_t>(k));
    for (int64_t r = 0; r < n; ++r) {
      FillRandom(row.data(), row.size(), static_cast<uint64_t>(r));
      f.quantize_row_ref(f, row.data(), k, quant::RangeSearch::kMinMax, packed.data() + r * row_bytes);
    }
  }
  const int64_t stream_bytes =
      options.stream_bytes > 0 ? options.stream_bytes : std::max<int64_t>(4 * LastLevelCacheBytes(), int64_t{64} << 20);
  const int64_t copies =
      std::clamp<int64_t>((stream_bytes + static_cast<int64_t>(matrix_bytes) - 1) / static_cast<int64_t>(matrix_bytes), 1, 64);
  // 64-byte aligned storage for the copies, each starting on a cache line.
  const size_t stride = (matrix_bytes + 63) / 64 * 64;
  std::vector<uint8_t> storage(stride * static_cast<size_t>(copies) + 64);
  uint8_t* base = storage.data() + (64 - reinterpret_cast<uintptr_t>(storage.data()) % 64) % 64;
  for (int64_t i = 0; i < copies; ++i) std::memcpy(base + i * stride, packed.data(), matrix_bytes);
  packed.clear();
  packed.shrink_to_fit();

  std::vector<float> x(static_cast<size_t>(m * k)), y(static_cast<size_t>(m * n));
  FillRandom(x.data(), x.size(), 7);

  const size_t previous_threads = NumThreads();
  SetNumThreads(static_cast<size_t>(c.threads));
  // One untimed GEMV over every copy (page faults, first touch; m = 1 keeps
  // this cheap when a slow GEMM is measured), then one call of the case itself.
  for (int64_t i = 0; i < copies; ++i) kernels::MatMul(x.data(), 1, ViewFor(f, base + i * stride, n, k), nullptr, y.data());
  kernels::MatMul(x.data(), m, ViewFor(f, base, n, k), nullptr, y.data());
  std::vector<double> times;
  const auto start = Clock::now();
  for (int64_t call = 0;; ++call) {
    const kernels::WeightView w = ViewFor(f, base + (call % copies) * stride, n, k);
    const auto t0 = Clock::now();
    kernels::MatMul(x.data(), m, w, nullptr, y.data());
    const auto t1 = Clock::now();
    times.push_back(std::chrono::duration<double>(t1 - t0).count());
    const double elapsed = std::chrono::duration<double>(t1 - start).count();
    if (static_cast<int64_t>(times.size()) >= options.min_calls && elapsed >= options.min_seconds) break;
  }
  SetNumThreads(previous_threads);

  KernelResult r;
  r.format = f.name;
  r.n = n;
  r.k = k;
  r.m = m;
  r.threads = c.threads;
  r.weight_bytes = static_cast<int64_t>(matrix_bytes);
  r.copies = copies;
  r.calls = static_cast<int64_t>(times.size());
  std::sort(times.begin(), times.end());
  r.best_s = times.front();
  r.median_s = times[times.size() / 2];
  r.gb_per_s = static_cast<double>(matrix_bytes) / r.best_s / 1e9;
  r.gflop_per_s = 2.0 * static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k) / r.best_s / 1e9;
  return r;
}

}  // namespace bitlens::bench
