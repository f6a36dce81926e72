// bitlens eval: accuracy per question kind, answer perplexity and (with
// --reference) KL / top-1 agreement of a model on synthetic VQA samples or a
// JSONL file. Progress on stderr, the table on stdout, JSON with --json.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <memory>
#include <optional>

#include "base/thread_pool.h"
#include "commands.h"
#include "kernels/qmatmul_a8.h"
#include "model/model.h"
#include "runtime/eval.h"

namespace bitlens::cli {

namespace {

struct EvalArgs {
  std::string model_dir;
  std::string reference_dir;
  std::string split = "test";
  std::string data;
  std::string json_out;
  std::optional<int64_t> count;  // default: 500 synthetic samples, every line of --data
  uint64_t seed = 1;
  int image_size = 64;
  double catalog_fraction = train::DataOptions{}.catalog_fraction;
  int64_t max_new_tokens = EvalOptions{}.max_new_tokens;
  int64_t max_context = 4096;
  size_t threads = 0;
  std::string activations = "a16";
};

Status Eval(const EvalArgs& a) {
  if (a.count && *a.count <= 0) return InvalidArgument("--count must be positive, got " + std::to_string(*a.count));
  if (!(a.catalog_fraction >= 0 && a.catalog_fraction <= 1)) {
    return InvalidArgument("--catalog-fraction must be in [0, 1], got " + std::to_string(a.catalog_fraction));
  }
  if (a.image_size <= 0) return InvalidArgument("--image-size must be positive, got " + std::to_string(a.image_size));
  SetNumThreads(a.threads);
  kernels::QActivations activations = kernels::QActivations::kF32;
  kernels::ParseQActivations(a.activations, &activations);  // CLI11 already checked the spelling
  kernels::SetQActivations(activations);

  std::vector<EvalItem> items;
  if (!a.data.empty()) {
    BL_ASSIGN_OR_RETURN(items, ReadEvalJsonl(a.data, a.count.value_or(0)));
  } else {
    BL_ASSIGN_OR_RETURN(train::Split split, ParseSplit(a.split));
    train::DataOptions data;
    data.seed = a.seed;
    data.image_size = a.image_size;
    data.catalog_fraction = a.catalog_fraction;
    BL_ASSIGN_OR_RETURN(items, SyntheticEvalItems(data, split, a.count.value_or(500)));
  }
  BL_ASSIGN_OR_RETURN(std::unique_ptr<Model> model, LoadModel(a.model_dir));
  std::unique_ptr<Model> reference;
  if (!a.reference_dir.empty()) {
    BL_ASSIGN_OR_RETURN(reference, LoadModel(a.reference_dir));
  }

  EvalOptions options;
  options.session.max_context = a.max_context;
  options.max_new_tokens = a.max_new_tokens;
  const bool tty = isatty(fileno(stderr)) != 0;
  options.on_progress = [tty](int64_t done, int64_t total, const EvalReport& r) {
    // A live line on a terminal; every tenth of the way in a log.
    const int64_t step = std::max<int64_t>(1, total / 10);
    if (!tty && done % step != 0 && done != total) return;
    std::fprintf(stderr, "%seval %lld/%lld  accuracy %.4f  %.1f s%s", tty ? "\r" : "", static_cast<long long>(done),
                 static_cast<long long>(total), r.answers.count > 0 ? r.answers.accuracy() : r.all.accuracy(),
                 r.seconds, tty && done != total ? "" : "\n");
    std::fflush(stderr);
  };
  BL_ASSIGN_OR_RETURN(EvalReport report, Evaluate(*model, reference.get(), items, options));
  std::fputs(FormatEvalTable(report).c_str(), stdout);
  std::fflush(stdout);
  if (!a.json_out.empty()) {
    std::ofstream out(a.json_out, std::ios::binary | std::ios::trunc);
    if (!out) return IoError(a.json_out + ": cannot open for writing");
    out << EvalReportJson(report);
    out.close();
    if (!out) return IoError(a.json_out + ": write failed");
  }
  return Status::Ok();
}

}  // namespace

void AddEvalCommand(CLI::App& app, Status* result) {
  auto a = std::make_shared<EvalArgs>();
  auto* cmd = app.add_subcommand("eval", "Measure a model's answer accuracy, perplexity and agreement with a reference");
  cmd->add_option("--model", a->model_dir, "Model directory (float or quantized checkpoint) or a .blz file from bitlens export")->required();
  auto* split = cmd->add_option("--split", a->split, "Synthetic data split: test (default), validation or train")
                    ->check(CLI::IsMember({"test", "validation", "train"}));
  cmd->add_option("--data", a->data, "JSONL file in the calibration format with answers (and \"kind\")")
      ->excludes(split);
  cmd->add_option("--count", a->count, "Samples to evaluate (synthetic: default 500; --data: at most, default all)");
  cmd->add_option("--reference", a->reference_dir, "Full-precision model for KL divergence and top-1 agreement");
  cmd->add_option("--json", a->json_out, "Write the report (with every prediction) as JSON to this file");
  cmd->add_option("--seed", a->seed, "Seed of the synthetic data (as used for training)");
  cmd->add_option("--image-size", a->image_size, "Side of the synthetic images in pixels");
  cmd->add_option("--catalog-fraction", a->catalog_fraction, "Share of catalogue-item samples (as used for training)");
  cmd->add_option("--max-new-tokens", a->max_new_tokens, "Greedy decoding stops after this many tokens (or at EOS)");
  cmd->add_option("--max-context", a->max_context, "Context positions at most (KV cache size)");
  cmd->add_option("--threads", a->threads, "Worker threads; 0 = all cores");
  cmd->add_option("--activations", a->activations, "Activations for quantized weights: a16 (default), a8 or a8lut")
      ->check(CLI::IsMember({"a16", "a8", "a8lut"}));
  cmd->callback([a, result] { *result = Eval(*a); });
}

}  // namespace bitlens::cli
