// train/trainer: `bitlens train` — trains the byte-level BPE tokenizer and
// the LLaVA-layout VLM of a recipe on the synthetic VQA data, with gradient
// accumulation, clipping, warmup + cosine AdamW, periodic validation, a
// resumable state, and an atomically written Hugging Face checkpoint folder.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "base/status.h"
#include "train/examples.h"
#include "train/recipe.h"
#include "train/vlm.h"

namespace bitlens::train {

struct TrainOptions {
  Recipe recipe;
  std::string recipe_json;  // the recipe's text, copied into the output and the state
  std::string output_dir;
  std::string state_path;   // default: <output_dir>.state
  bool resume = false;      // continue from state_path (same recipe), bit-identically
  bool force = false;       // replace an existing output_dir
  int threads = -1;         // overrides the recipe's thread count when >= 0
  // > 0: stop after this many optimizer steps in total, saving the state
  // (as Ctrl-C does); a later --resume continues. For tests and time slices.
  int64_t stop_after_step = 0;
  const std::atomic<bool>* cancel = nullptr;  // set (SIGINT) to save the state and stop after the current step
  bool progress = true;                       // progress bar on stderr
  bool save_state_on_finish = false;          // keep the final state file (default: removed once the output is written)
};

// Exact-match accuracy and loss of the answers of one split.
struct EvalSummary {
  std::string split;
  int64_t samples = 0;
  int64_t correct = 0;
  double loss = 0;  // mean cross-entropy per answer token (nats)
  struct Kind {
    int64_t samples = 0, correct = 0;
  };
  std::map<std::string, Kind> per_kind;  // QuestionKindName -> counts
  double accuracy() const { return samples ? static_cast<double>(correct) / samples : 0.0; }
  std::string ToJson() const;  // one JSON object
};

struct TrainResult {
  bool finished = false;  // false: stopped early, state saved at state_path
  int64_t step = 0;       // optimizer steps done
  std::vector<double> losses;  // per step of this run (mean CE per answer token)
  EvalSummary validation;  // last validation run (empty when none ran)
  EvalSummary test;        // final test evaluation (finished runs)
  std::string output_dir;
  std::string state_path;
  double seconds = 0;  // training wall time, resumed runs included
};

Result<TrainResult> Train(const TrainOptions& options);

// Exact match = the greedy (argmax) prediction at every answer position and
// at </s> equals the answer, computed with one teacher-forced forward per
// sample. This is the same decision greedy decoding makes: if every argmax
// matches, greedy decoding emits exactly " answer</s>"; at the first
// mismatch it diverges.
// `kinds` (recipe data.kinds) restricts the samples to those question kinds.
Result<EvalSummary> EvaluateSplit(TrainableVlm& model, const ExampleContext& context, const DataOptions& data,
                                  Split split, int64_t count, const std::vector<QuestionKind>& kinds = {});

// Sample `index` of a split, or with `kinds` non-empty the first of indices
// index, index + 2^40, index + 2·2^40, ... whose question is of one of those
// kinds (still a pure function of its arguments; no index of the plain split is reused).
VqaSample DrawSample(const DataOptions& data, const std::vector<QuestionKind>& kinds, Split split, int64_t index);

}  // namespace bitlens::train
