// bitlens bench: memory bandwidth, quantized kernels (--kernels) and a model
// end to end (--model), printed as a table and optionally written as JSON.
#include <cstdio>
#include <fstream>
#include <iterator>
#include <memory>

#include "bench/bench.h"
#include "commands.h"

namespace bitlens::cli {
namespace {

struct BenchArgs {
  bench::BenchOptions options;
  int64_t array_mib = 0;
  std::string json_path;
};

// The invocation as typed (arguments joined by spaces), for the report.
std::string CommandLine() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  std::string raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  for (char& ch : raw) ch = ch == '\0' ? ' ' : ch;
  while (!raw.empty() && raw.back() == ' ') raw.pop_back();
  return raw;
}

Status RunBenchCommand(BenchArgs& a) {
  if (a.array_mib < 0) return InvalidArgument("--array-mib must be >= 1 (or 0 for the default)");
  a.options.array_bytes = a.array_mib << 20;
  BL_ASSIGN_OR_RETURN(bench::BenchReport report, bench::RunBench(a.options, [](const std::string& line) {
                        std::fprintf(stderr, "bench: %s\n", line.c_str());
                        std::fflush(stderr);
                      }));
  std::fputs(bench::FormatBenchText(report).c_str(), stdout);
  std::fflush(stdout);
  if (!a.json_path.empty()) {
    BL_TRY(bench::WriteBenchJson(report, a.json_path));
    std::fprintf(stderr, "bench: wrote %s\n", a.json_path.c_str());
  }
  return Status::Ok();
}

}  // namespace

void AddBenchCommand(CLI::App& app, Status* result) {
  auto a = std::make_shared<BenchArgs>();
  bench::BenchOptions& o = a->options;
  auto* cmd = app.add_subcommand("bench", "Measure memory bandwidth, quantized kernels and end-to-end model speed");
  cmd->add_option("--threads", o.threads, "Threads for the multi-thread figures; 0 = all cores (1 thread is always measured)")
      ->capture_default_str();
  cmd->add_option("--reps", o.repetitions, "Bandwidth passes; the best is reported")->capture_default_str();
  cmd->add_option("--array-mib", a->array_mib, "MiB per triad array; 0 = max(4 x last-level cache, 64 MiB)")
      ->capture_default_str();
  cmd->add_flag("--kernels", o.kernels, "Benchmark GEMV/GEMM per weight format");
  cmd->add_option("--formats", o.formats, "With --kernels: formats a,b (default: every format of the table)");
  cmd->add_option("--shapes", o.shapes, "With --kernels: weight shapes NxK")->capture_default_str();
  cmd->add_option("--batch", o.batch, "With --kernels: activation rows m (1 = decode GEMV)")->capture_default_str();
  cmd->add_option("--min-time", o.kernel_min_seconds, "With --kernels: seconds of calls per case")->capture_default_str();
  cmd->add_option("--model", o.model_dir, "Checkpoint directory (float or quantized) or .blz file to run end to end");
  cmd->add_option("--prompt-tokens", o.prompt_tokens, "With --model: prompt length for prefill")->capture_default_str();
  cmd->add_option("--decode-tokens", o.decode_tokens, "With --model: greedy decode steps timed")->capture_default_str();
  cmd->add_option("--activations", o.activations, "Quantized matmuls: a16 (f32 activations) or a8 (int8 activations)")
      ->capture_default_str();
  cmd->add_flag("--profile", o.profile, "With --model: time each op class of a decode step (where the step's time goes)");
  cmd->add_option("--json", a->json_path, "Also write the report with the machine description as JSON to FILE");
  cmd->callback([a, result] {
    a->options.command_line = CommandLine();
    *result = RunBenchCommand(*a);
  });
}

}  // namespace bitlens::cli
