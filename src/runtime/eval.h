// runtime/eval: `bitlens eval` as a library call — runs a model (float or
// quantized) over question/answer items (synthetic VQA samples or a JSONL
// file) through the Session, and measures exact-match accuracy per question
// kind, answer-token perplexity, and KL / top-1 agreement with a reference.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "model/model.h"
#include "runtime/session.h"
#include "train/data/vqa_data.h"
#include "vision/image.h"

namespace bitlens {

// One question with its expected answer. The image is either held or read
// from `image_path` when the item is evaluated (JSONL files stay on disk).
struct EvalItem {
  std::string question;  // the user turn, without chat template or image placeholder
  std::string answer;    // the expected assistant reply
  std::string kind;      // QuestionKindName ("color", "caption", ...) or the JSONL's "kind"; "other" if none
  std::optional<Image> image;
  std::string image_path;
};

// Samples [0, count) of `split` from the synthetic generator (train/data).
Result<std::vector<EvalItem>> SyntheticEvalItems(const train::DataOptions& data, train::Split split, int64_t count);

// A JSONL file in the calibration format of `bitlens quantize --calib`
// ({"image", "prompt", "answer"}) plus an optional "kind"; every line needs an
// answer. At most `count` items when count > 0.
Result<std::vector<EvalItem>> ReadEvalJsonl(const std::string& path, int64_t count = 0);

// "test" | "validation" | "train".
Result<train::Split> ParseSplit(const std::string& name);

struct EvalOptions {
  SessionOptions session;
  // Greedy decoding stops at EOS or after this many new tokens.
  int64_t max_new_tokens = 64;  // a four-object caption is about 40
  // Called after every item with the running report.
  std::function<void(int64_t done, int64_t total, const struct EvalReport&)> on_progress;
};

// Sums over the items of one kind (or over all items).
struct EvalStats {
  int64_t count = 0;
  int64_t correct = 0;
  double nll_sum = 0;         // teacher-forced NLL of the answer tokens and the closing EOS, nats
  int64_t answer_tokens = 0;  // tokens in nll_sum
  double kl_sum = 0;          // KL(reference || model) summed over the answer positions
  int64_t agree = 0;          // answer positions whose argmax matches the reference's
  int64_t compared = 0;       // answer positions compared with the reference

  double accuracy() const;
  double perplexity() const;      // exp(nll_sum / answer_tokens)
  double kl() const;              // mean per answer position
  double top1_agreement() const;
  void Add(const EvalStats& o);
};

struct EvalPrediction {
  std::string kind, question, answer, prediction;
  bool correct = false;
};

struct EvalReport {
  std::string model, reference;  // directories; reference empty without one
  std::map<std::string, EvalStats> kinds;
  EvalStats answers;  // every kind except "caption": the headline accuracy
  EvalStats all;      // every item
  std::vector<EvalPrediction> predictions;  // in item order
  double seconds = 0;

  bool has_reference() const { return !reference.empty(); }
  // Perplexity of the caption tokens (NaN without caption items).
  double caption_perplexity() const;
};

// Runs every item: the prompt is built as `bitlens run` builds it (chat
// template in auto mode, image placeholder expanded), the answer is decoded
// greedily and compared after NormalizeAnswer, and the expected answer plus
// EOS is scored teacher-forced. With `reference` (same vocabulary), both
// models see the same ids and the answer positions' next-token
// distributions are compared.
Result<EvalReport> Evaluate(const Model& model, const Model* reference, const std::vector<EvalItem>& items,
                            const EvalOptions& options);

// The table `bitlens eval` prints: one row per kind, then "answers" and "all".
std::string FormatEvalTable(const EvalReport& report);
// The report as JSON (metrics, per-kind rows, and every prediction).
std::string EvalReportJson(const EvalReport& report);

}  // namespace bitlens
