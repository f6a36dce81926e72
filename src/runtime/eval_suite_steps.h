// runtime/eval_suite_steps: the pieces RunEvalSuite is made of — one
// quantization run (calibration-free, calibrated or QAT) timed, the
// stories260K table, and the equivalent command lines shown in the document.
// Private to src/runtime/eval_suite*.cpp.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "base/status.h"
#include "quant/calib_jsonl.h"
#include "quant/calib_runner.h"
#include "runtime/eval_suite.h"

namespace bitlens::suite {

using Progress = std::function<void(const std::string&)>;

// Calibration data shared by the calibrated methods.
struct Calibration {
  std::vector<quant::CalibSample> samples;
  quant::CalibOptions options;
  std::string path;  // the JSONL as written in the commands ("$WORK/..." for synthesized files)
  std::string file;  // the JSONL on disk
};

// Quantizes `source` into `out` (replaced if present) with method "rtn",
// "hqq" or "gptq" (gptq uses `calib`) under `plan`; returns the wall time in
// seconds of the whole method (calibration included).
Result<double> QuantizeWith(const std::string& method, const quant::PlanOptions& plan, const std::string& source,
                            const std::string& out, const Calibration& calib);

// How the QAT rows train (resolved from EvalSuiteOptions).
struct QatSettings {
  int64_t steps = 200;
  int64_t batch = 4;
  int64_t synthetic = 1024;   // synthetic train samples added to the calibration lines
  int64_t eval_samples = 16;  // held-out samples of bitlens qat's own before/after KL
  uint64_t seed = 1;
  int threads = 0;
};
QatSettings ResolveQatSettings(const EvalSuiteOptions& options);

// Quantization-aware training (end to end, distilled from `source`) of
// `source` into `out` under `plan`, starting from the grids of `init_from`
// (the GPTQ checkpoint of the same configuration), on `calib` plus synthetic
// samples; returns the wall time of the training in seconds.
Result<double> QatWith(const quant::PlanOptions& plan, const std::string& source, const std::string& init_from,
                       const std::string& out, const Calibration& calib, const QatSettings& settings,
                       const Progress& progress);

// "bitlens quantize --model M -o OUT --method X [--calib C] --vision ... --lm-head ...".
std::string QuantizeCommand(const std::string& method, const quant::PlanOptions& plan, const std::string& source,
                            const std::string& out, const std::string& calib_path);
std::string QatCommand(const quant::PlanOptions& plan, const std::string& source, const std::string& init_from,
                       const std::string& out, const std::string& calib_path, const QatSettings& settings);

// The stories260K table: converts the llama2.c checkpoint into `work`,
// calibrates on the fixed prompts (with the full-precision greedy
// continuations), quantizes with StoriesSuiteMethods × StoriesSuiteConfigs and
// compares next-token distributions with the full-precision model over every
// position of prompt + continuation.
Result<SuiteTable> RunStoriesTable(const EvalSuiteOptions& options, const std::string& work, const Progress& progress);

// The configuration named `name` of SuiteConfigs, or null.
const SuiteConfig* FindSuiteConfig(const std::string& name);

// The fixed prompts of the stories260K table.
const std::vector<std::string>& StoriesPrompts();

// Seconds since `start` on the steady clock.
double SecondsSince(std::chrono::steady_clock::time_point start);

}  // namespace bitlens::suite
