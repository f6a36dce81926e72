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

// Whether QatWith can run (bitlens qat is in this build).
bool QatBuilt();

// Quantization-aware training of `source` into `out` under `plan`, distilled
// from `source` on `calib`. Unsupported until the build has bitlens qat.
Result<double> QatWith(const quant::PlanOptions& plan, const std::string& source, const std::string& out,
                       const Calibration& calib, bool quick);

// "bitlens quantize --model M -o OUT --method X [--calib C] --vision ... --lm-head ...".
std::string QuantizeCommand(const std::string& method, const quant::PlanOptions& plan, const std::string& source,
                            const std::string& out, const std::string& calib_path);
std::string QatCommand(const quant::PlanOptions& plan, const std::string& source, const std::string& out,
                       const std::string& calib_path, bool quick);

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
