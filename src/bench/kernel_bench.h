// bench/kernel_bench: GEMV (decode, m = 1) and GEMM (prefill, m > 1) over
// packed weights of each quant format, timed through kernels::MatMul as the
// runtime calls it, with the weights streamed from DRAM (several copies,
// together larger than the last-level cache, are cycled).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "base/status.h"
#include "quant/formats.h"

namespace bitlens::bench {

struct KernelShape {
  int64_t n = 0;  // output rows
  int64_t k = 0;  // inputs
};

struct KernelCase {
  const quant::FormatInfo* format = nullptr;
  KernelShape shape;
  int64_t m = 1;        // activation rows (1 = decode GEMV)
  int64_t threads = 1;
};

struct KernelResult {
  std::string format;
  int64_t n = 0, k = 0, m = 0, threads = 0;
  int64_t weight_bytes = 0;  // packed bytes of one [n, k] matrix (what one call streams)
  int64_t copies = 0;        // matrices cycled so the weights come from DRAM
  int64_t calls = 0;         // timed calls
  double best_s = 0;         // fastest call
  double median_s = 0;
  double gb_per_s = 0;       // weight_bytes / best_s
  double gflop_per_s = 0;    // 2·m·n·k / best_s
  double bandwidth_ratio = 0;  // gb_per_s / triad GB/s at the same thread count (0 if unknown)
};

struct KernelBenchOptions {
  double min_seconds = 0.3;  // per case: keep calling until this much time has passed
  int64_t min_calls = 3;
  int64_t stream_bytes = 0;  // total bytes of the cycled copies; 0 = 4 × LLC (at least 64 MiB)
};

// Shapes "NxK" (e.g. "3072x3072,8192x3072"); InvalidArgument naming the bad item.
Result<std::vector<KernelShape>> ParseShapes(const std::string& text);
// Formats by name ("w2g64,bf16"), or every format of the table for "".
Result<std::vector<const quant::FormatInfo*>> ParseFormats(const std::string& text);
// Comma-separated positive integers ("1,64").
Result<std::vector<int64_t>> ParsePositiveList(const std::string& text, const std::string& flag);

// Runs one case. InvalidArgument when the format cannot hold rows of k.
Result<KernelResult> RunKernelCase(const KernelCase& c, const KernelBenchOptions& options);

}  // namespace bitlens::bench
