// train/data/vqa_data: MakeSample. A sample's random stream is seeded from
// (seed, split, index) alone, so any sample can be made without the ones
// before it; its question kind is drawn first, then scenes are drawn until
// one supports the question and belongs to the requested split.
#include "train/data/vqa_data.h"

#include <algorithm>
#include <cmath>

#include "train/data/questions.h"
#include "train/data/rng.h"
#include "train/data/sample_spec.h"

namespace bitlens::train {

std::string_view QuestionKindName(QuestionKind kind) {
  switch (kind) {
    case QuestionKind::kColor: return "color";
    case QuestionKind::kShape: return "shape";
    case QuestionKind::kCount: return "count";
    case QuestionKind::kPosition: return "position";
    case QuestionKind::kYesNo: return "yes_no";
    case QuestionKind::kAttributeAt: return "attribute_at";
    case QuestionKind::kCaption: return "caption";
    case QuestionKind::kCatalog: return "catalog";
  }
  return "unknown";
}

std::optional<QuestionKind> QuestionKindFromName(std::string_view name) {
  for (int k = 0; k < kNumQuestionKinds; ++k) {
    if (QuestionKindName(static_cast<QuestionKind>(k)) == name) return static_cast<QuestionKind>(k);
  }
  return std::nullopt;
}

std::string_view SplitName(Split split) {
  switch (split) {
    case Split::kTrain: return "train";
    case Split::kValidation: return "validation";
    case Split::kTest: return "test";
  }
  return "unknown";
}

std::optional<Split> SplitFromName(std::string_view name) {
  for (Split s : {Split::kTrain, Split::kValidation, Split::kTest}) {
    if (SplitName(s) == name) return s;
  }
  return std::nullopt;
}

namespace data {

namespace {

constexpr int kNumSceneKinds = 7;  // every QuestionKind except kCatalog, in enum order

uint64_t SampleSeed(uint64_t seed, Split split, int64_t index) {
  const uint64_t s = Mix64(Mix64(seed) + 0x9e3779b97f4a7c15ull * (static_cast<uint64_t>(split) + 1));
  return Mix64(s ^ Mix64(static_cast<uint64_t>(index)));
}

}  // namespace

SampleSpec GenerateSampleSpec(const DataOptions& options, Split split, int64_t index) {
  Rng rng(SampleSeed(options.seed, split, index));
  // The catalogue share in parts per million; integer so no machine rounds differently.
  const double fraction = std::clamp(options.catalog_fraction, 0.0, 1.0);
  const int catalog_ppm = static_cast<int>(std::llround(fraction * 1e6));
  const QuestionKind kind = rng.Uniform(1'000'000) < catalog_ppm
                                ? QuestionKind::kCatalog
                                : static_cast<QuestionKind>(rng.Uniform(kNumSceneKinds));
  SampleSpec spec;
  // Terminates with probability 1: the rarest acceptance (test split, 10 %
  // of descriptions, times a kind's own rejections) is still a few per cent.
  for (;;) {
    if (!DrawQuestion(kind, rng, &spec)) continue;
    if (SplitOfDescription(CanonicalDescription(spec)) != split) continue;
    return spec;
  }
}

}  // namespace data

VqaSample MakeSample(const DataOptions& options, Split split, int64_t index) {
  const data::SampleSpec spec = data::GenerateSampleSpec(options, split, index);
  VqaSample sample;
  sample.image = data::RenderSampleImage(spec, std::clamp(options.image_size, kMinImageSize, kMaxImageSize));
  sample.question = spec.question;
  sample.answer = spec.answer;
  sample.kind = spec.kind;
  return sample;
}

}  // namespace bitlens::train
