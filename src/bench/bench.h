// bench/bench: what `bitlens bench` runs — memory bandwidth (1 and N threads),
// optionally the quantized kernels per format and shape, optionally a model
// end to end — collected in one BenchReport, printed as a table or JSON.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "bench/bandwidth.h"
#include "bench/decode_profile.h"
#include "bench/kernel_bench.h"
#include "bench/machine.h"
#include "bench/model_bench.h"

namespace bitlens::bench {

struct BenchOptions {
  int64_t threads = 0;            // N for the multi-thread figures; 0 = all hardware threads
  int64_t array_bytes = 0;        // triad bytes per array; 0 = max(4 × LLC, 64 MiB)
  int64_t repetitions = 20;       // triad passes (best kept)
  bool kernels = false;
  std::string formats;            // "" = every format of quant::AllFormats()
  std::string shapes = "3072x3072,8192x3072";
  std::string batch = "1,64";     // activation rows m: 1 = decode GEMV, 64 = prefill GEMM
  double kernel_min_seconds = 0.3;
  std::string model_dir;          // "" = no end-to-end run
  int64_t prompt_tokens = 128;
  int64_t decode_tokens = 32;
  std::string activations = "a16";  // QMatMul activations: a16 (W2A16, f32 in registers) or a8 (W2A8)
  bool profile = false;           // with a model: time each op class of a decode step
  std::string command_line;       // recorded in the report
};

struct BenchReport {
  std::string started_utc;  // ISO 8601
  std::string command_line;
  std::string activations;  // "a16" or "a8", for every quantized matmul of the run
  MachineInfo machine;
  std::vector<BandwidthResult> bandwidth;  // one per thread count, ascending
  std::vector<KernelResult> kernels;
  std::optional<ModelBenchResult> model;
  std::optional<DecodeProfile> profile;
};

// Checks every option before any measurement (InvalidArgument / NotFound
// naming the flag), then runs. `progress` gets one line per step (may be null).
Result<BenchReport> RunBench(const BenchOptions& options, const std::function<void(const std::string&)>& progress);

// The human table (stdout of `bitlens bench`).
std::string FormatBenchText(const BenchReport& report);
// The machine-readable report; keys are listed in docs/benchmarks.md.
std::string FormatBenchJson(const BenchReport& report);
// Writes FormatBenchJson to `path` via a temporary file renamed into place.
Status WriteBenchJson(const BenchReport& report, const std::string& path);

}  // namespace bitlens::bench
