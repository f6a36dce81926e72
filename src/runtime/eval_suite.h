// runtime/eval_suite: `bitlens eval-suite` as a library call — quantizes a
// vision-language model with every method and format of the results table,
// evaluates each checkpoint against the full-precision model, does the same
// for the stories260K text model, and renders docs/results.md from it.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "base/status.h"
#include "bench/machine.h"
#include "quant/pipeline_plan.h"
#include "train/data/vqa_data.h"

namespace bitlens {

// One format assignment of the table ("w2g32", "w2g64", "mixed", "t1"): the
// format per component, as `bitlens quantize --vision/--projector/...` takes it.
struct SuiteConfig {
  std::string name;
  quant::PlanOptions plan;
};

// The configurations, in table order. Embeddings and an untied LM head stay
// at w4g32 (the quantize default) in every one; they are not what is compared.
//   w2g32   vision, projector, decoder w2g32
//   w2g64   vision, projector, decoder w2g64
//   mixed   vision w4g32, projector w8, decoder w2g32
//   t1      vision, projector, decoder t1 (ternary)
const std::vector<SuiteConfig>& SuiteConfigs();
// "vision w2g32, projector w2g32, decoder w2g32, embed w4g32, lm-head w4g32".
std::string DescribeConfig(const SuiteConfig& config);

// Methods of the tables, in row order after the full-precision row.
// The VLM table: rtn, hqq, gptq, qat; the stories260K table: rtn, hqq, gptq.
const std::vector<std::string>& VlmSuiteMethods();
const std::vector<std::string>& StoriesSuiteMethods();
// Configurations of the stories260K table (a text model: w2g32, w2g64, t1).
const std::vector<std::string>& StoriesSuiteConfigs();

// Size of a written checkpoint, read back from its files.
struct CheckpointSize {
  uint64_t file_bytes = 0;    // every *.safetensors file, headers included
  uint64_t tensor_bytes = 0;  // the tensors' data
  int64_t params = 0;         // logical parameters (a packed [n, k] weight counts n·k)
  double bpw() const { return params > 0 ? 8.0 * static_cast<double>(tensor_bytes) / params : 0.0; }
  double megabytes() const { return static_cast<double>(file_bytes) / 1e6; }
};
Result<CheckpointSize> MeasureCheckpoint(const std::string& dir);

// Agreement of a model with the full-precision one.
struct SuiteMetrics {
  double accuracy = 0;       // exact match over the answer kinds (captions excluded); VLM only
  std::map<std::string, double> kind_accuracy;  // per question kind; VLM only
  double caption_perplexity = 0;                // NaN without captions; VLM only
  double kl = 0;             // mean KL(full precision || model) per compared position, nats
  double top1 = 0;           // share of compared positions with the same argmax
  int64_t compared = 0;      // positions compared
};

struct SuiteRow {
  std::string method;        // "fp" or a method name
  std::string config;        // "" for fp, else a SuiteConfig name
  std::string checkpoint;    // directory evaluated (under the work directory for quantized rows)
  CheckpointSize size;
  double method_seconds = 0; // wall time of quantization (calibration included; QAT: its GPTQ start too); fp: none
  SuiteMetrics metrics;
  std::vector<std::string> commands;  // the equivalent bitlens commands ($WORK = the work directory)
};

struct SuiteTable {
  std::string title;
  std::string model;                 // as given on the command line
  bool vlm = false;                  // accuracy columns present
  std::vector<std::string> kinds;    // question kinds present, in QuestionKind order
  std::vector<SuiteRow> rows;        // fp, then method × configuration in table order
  int64_t eval_items = 0;            // VLM: test samples evaluated; stories: prompts
  int64_t continuation_tokens = 0;   // stories: greedy tokens generated per prompt (at most)
  std::vector<std::string> prompts;  // stories: the fixed prompts
  int64_t calib_samples = 0;
  std::string calib_source;          // the JSONL path, or "N synthetic train samples"
};

struct EvalSuiteReport {
  bench::MachineInfo machine;
  std::string command_line;
  bool quick = false;
  int threads = 0;
  train::DataOptions data;
  int64_t qat_steps = 0, qat_batch = 0, qat_synthetic = 0;  // how the QAT rows trained
  SuiteTable vlm;
  bool has_stories = false;
  SuiteTable stories;
  double seconds = 0;
};

struct EvalSuiteOptions {
  std::string model_dir;          // full-precision VLM checkpoint
  std::string stories_dir;        // holds stories260K.bin and tok512.bin; empty: no stories table
  std::string calib_path;         // JSONL ({"image", "prompt", "answer"}) for gptq and QAT (QAT needs image and answer)
  int64_t synthetic_calib = 0;    // else this many synthetic train samples; 0: 128 (quick: 4)
  bool quick = false;             // few samples and steps: for tests, not for figures
  int64_t qat_steps = 0;          // QAT optimizer steps; 0: 200 (quick: 2)
  int64_t qat_synthetic = -1;     // synthetic samples QAT adds to the calibration lines; -1: 1024 (quick: 0)
  std::string work_dir;           // intermediate checkpoints; empty: a temporary directory removed after
  train::DataOptions data;        // seed, image size, catalogue share of the evaluation and calibration samples
  int64_t eval_count = 0;         // test samples; 0: 1000 (quick: 8)
  int64_t max_new_tokens = 64;    // greedy answer length cap (as bitlens eval)
  int threads = 0;                // recorded in the document (the caller sets the pool)
  std::string command_line;       // recorded in the document
  std::function<void(const std::string&)> on_progress;  // one line per step
};

// Runs every row. Any row that fails fails the whole suite (no partial tables).
Result<EvalSuiteReport> RunEvalSuite(const EvalSuiteOptions& options);

// The generated part of docs/results.md (deterministic given the report:
// rows in table order, fixed precision).
std::string ResultsMarkdown(const EvalSuiteReport& report);
// The report as JSON, every figure at full precision.
std::string ResultsJson(const EvalSuiteReport& report);

// The line separating the hand-written header of docs/results.md from the
// generated part.
extern const char* const kResultsMarker;
// Writes `path` atomically (path.tmp, then rename): the hand-written text
// above kResultsMarker of an existing file is kept (a default paragraph for a
// new file), the generated part replaced. An existing file without the marker
// is an InvalidArgument (it would be lost).
Status WriteResultsMarkdown(const std::string& path, const EvalSuiteReport& report);
// The hand-written text WriteResultsMarkdown would keep for `path` (checked
// before a long run, so a wrong -o fails at once).
Result<std::string> ResultsHeader(const std::string& path);
// Writes `text` to `path` through path.tmp and a rename.
Status WriteFileAtomically(const std::string& path, const std::string& text);

}  // namespace bitlens
