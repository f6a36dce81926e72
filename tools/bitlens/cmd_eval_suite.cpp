// bitlens eval-suite: quantizes a model with every method and format of the
// results table, evaluates each against full precision (and stories260K), and
// writes docs/results.md. Progress on stderr; all the work is runtime/eval_suite.
#include <cstdio>
#include <memory>

#include "base/thread_pool.h"
#include "commands.h"
#include "runtime/eval_suite.h"

namespace bitlens::cli {
namespace {

struct EvalSuiteFlags {
  EvalSuiteOptions options;
  std::string output;
  std::string json;
};

std::string CommandLine(const EvalSuiteFlags& f) {
  const EvalSuiteOptions& o = f.options;
  std::string c = "bitlens eval-suite --model " + o.model_dir;
  if (!o.stories_dir.empty()) c += " --stories " + o.stories_dir;
  if (!o.calib_path.empty()) c += " --calib " + o.calib_path;
  if (o.synthetic_calib > 0) c += " --synthetic " + std::to_string(o.synthetic_calib);
  if (o.quick) c += " --quick";
  if (o.qat_steps > 0) c += " --qat-steps " + std::to_string(o.qat_steps);
  if (o.qat_synthetic >= 0) c += " --qat-synthetic " + std::to_string(o.qat_synthetic);
  if (o.eval_count > 0) c += " --count " + std::to_string(o.eval_count);
  char fraction[32];
  std::snprintf(fraction, sizeof(fraction), "%g", o.data.catalog_fraction);
  c += " --seed " + std::to_string(o.data.seed) + " --image-size " + std::to_string(o.data.image_size) +
       " --catalog-fraction " + fraction;
  if (o.max_new_tokens != EvalSuiteOptions{}.max_new_tokens) c += " --max-new-tokens " + std::to_string(o.max_new_tokens);
  if (o.threads > 0) c += " --threads " + std::to_string(o.threads);
  c += " -o " + f.output;
  if (!f.json.empty()) c += " --json " + f.json;
  return c;
}

Status RunEvalSuiteCommand(EvalSuiteFlags& f) {
  if (f.options.threads < 0) return InvalidArgument("--threads must be 0 (all cores) or positive");
  // A wrong -o (an unrelated file) fails now, not after the whole run.
  BL_TRY(ResultsHeader(f.output).status());
  SetNumThreads(static_cast<size_t>(f.options.threads));
  f.options.command_line = CommandLine(f);
  f.options.on_progress = [](const std::string& line) {
    std::fprintf(stderr, "eval-suite: %s\n", line.c_str());
    std::fflush(stderr);
  };
  BL_ASSIGN_OR_RETURN(EvalSuiteReport report, RunEvalSuite(f.options));
  BL_TRY(WriteResultsMarkdown(f.output, report));
  if (!f.json.empty()) BL_TRY(WriteFileAtomically(f.json, ResultsJson(report)));
  std::printf("wrote %s%s (%zu + %zu rows, %.1f s)\n", f.output.c_str(), f.json.empty() ? "" : (" and " + f.json).c_str(),
              report.vlm.rows.size(), report.has_stories ? report.stories.rows.size() : size_t{0}, report.seconds);
  return Status::Ok();
}

}  // namespace

void AddEvalSuiteCommand(CLI::App& app, Status* result) {
  auto f = std::make_shared<EvalSuiteFlags>();
  EvalSuiteOptions& o = f->options;
  auto* cmd = app.add_subcommand("eval-suite", "Quantize with every method and format, evaluate, write docs/results.md");
  cmd->add_option("--model", o.model_dir, "full-precision vision-language checkpoint (e.g. models/ref-vlm)")->required();
  cmd->add_option("--stories", o.stories_dir, "directory with stories260K.bin and tok512.bin (adds the text-model table)");
  auto* calib = cmd->add_option("--calib", o.calib_path, "calibration JSONL for GPTQ and QAT");
  cmd->add_option("--synthetic", o.synthetic_calib, "calibrate on this many synthetic train samples instead (default 128)")
      ->check(CLI::PositiveNumber)
      ->excludes(calib);
  cmd->add_flag("--quick", o.quick, "a few samples and steps (checks the pipeline; figures are not meaningful)");
  cmd->add_option("--qat-steps", o.qat_steps, "QAT optimizer steps per row (default 200, --quick 2)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--qat-synthetic", o.qat_synthetic,
                  "synthetic train samples QAT adds to the calibration lines (default 1024, --quick 0)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--count", o.eval_count, "test samples evaluated (default 1000, --quick 8)")->check(CLI::PositiveNumber);
  cmd->add_option("--seed", o.data.seed, "seed of the synthetic data (as used for training)")->capture_default_str();
  cmd->add_option("--image-size", o.data.image_size, "side of the synthetic images in pixels")
      ->check(CLI::Range(16, 1024))
      ->capture_default_str();
  cmd->add_option("--catalog-fraction", o.data.catalog_fraction, "share of catalogue-item samples (as used for training)")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  cmd->add_option("--max-new-tokens", o.max_new_tokens, "greedy answers stop after this many tokens (or at EOS)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--threads", o.threads, "worker threads (0 = all cores)");
  cmd->add_option("-o,--output", f->output, "the markdown file (its hand-written header is kept)")->required();
  cmd->add_option("--json", f->json, "also write every figure as JSON here");
  cmd->add_option("--work", o.work_dir, "keep intermediate checkpoints here (default: a temporary directory, removed)");
  cmd->callback([f, result] { *result = RunEvalSuiteCommand(*f); });
}

}  // namespace bitlens::cli
