// train/data/vqa_data: the synthetic vision-language data the reference VLM
// is trained and evaluated on, generated deterministically from a seed:
// rendered scenes of objects with questions, short answers and a caption,
// plus catalogue items (type, colour, pattern) for the shopping agent.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "vision/image.h"

namespace bitlens::train {

enum class Split { kTrain, kValidation, kTest };
std::string_view SplitName(Split split);                        // "train", "validation", "test"
std::optional<Split> SplitFromName(std::string_view name);      // the inverse; nullopt when unknown

// What a sample asks; eval reports accuracy per kind.
enum class QuestionKind {
  kColor,        // "What color is the circle?" -> "red"
  kShape,        // "What shape is the blue object?" -> "square"
  kCount,        // "How many triangles are there?" -> "two"
  kPosition,     // "Where is the green star?" -> "top left"
  kYesNo,        // "Is there a red square?" -> "yes"
  kAttributeAt,  // "What color is the object in the bottom right?" -> "yellow"
  kCaption,      // "Describe the image." -> one sentence
  kCatalog,      // catalogue item: "What is this item?" -> "blue striped shirt"
};
std::string_view QuestionKindName(QuestionKind kind);  // "color", "shape", ... (stable: JSON and reports)
std::optional<QuestionKind> QuestionKindFromName(std::string_view name);  // the inverse
inline constexpr int kNumQuestionKinds = 8;

struct VqaSample {
  Image image;           // RGB, DataOptions::image_size square
  std::string question;  // the user turn, without chat template or image placeholder
  std::string answer;    // the expected assistant reply (short answer, or the caption)
  QuestionKind kind = QuestionKind::kColor;
};

inline constexpr int kMinImageSize = 16;    // MakeSample clamps image_size into this range;
inline constexpr int kMaxImageSize = 1024;  // WriteSplit and the CLI refuse sizes outside it

struct DataOptions {
  int image_size = 64;
  uint64_t seed = 1;
  double catalog_fraction = 0.15;  // share of samples from the catalogue domain
};

// Sample `index` of `split`: the same (options, split, index) always gives the
// same sample on every machine; the three splits never share a scene.
VqaSample MakeSample(const DataOptions& options, Split split, int64_t index);

// Every word, answer and caption the generator can produce, for training the
// tokenizer (train/bpe) so no text of any split is out of vocabulary.
std::vector<std::string> TokenizerCorpus(const DataOptions& options);

// Writes samples [0, count) of a split as PNG files plus a JSONL file in the
// calibration format of `bitlens quantize --calib` ({"image", "prompt",
// "answer"} + "kind"), atomically, into dir/<split>.jsonl and dir/<split>/.
Status WriteSplit(const DataOptions& options, Split split, int64_t count, const std::string& dir);

// The same with progress reports (samples written so far, in blocks) and a
// cancellation flag checked between blocks: Cancelled, nothing left behind.
struct WriteSplitHooks {
  std::function<void(int64_t done, int64_t total)> on_progress;
  const std::atomic<bool>* cancel = nullptr;
};
Status WriteSplit(const DataOptions& options, Split split, int64_t count, const std::string& dir,
                  const WriteSplitHooks& hooks);

}  // namespace bitlens::train
