// train/data/sample_spec: what a synthetic sample is before it is drawn: the
// scene (objects on a 3x3 grid) or catalogue item, the question and answer,
// and the canonical description that decides which split a scene belongs to.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "train/data/rng.h"
#include "train/data/vqa_data.h"

namespace bitlens::train::data {

inline constexpr int kJitterSteps = 8;  // jitter is stored in [-8, 8] eighths of the size's maximum

struct ObjectSpec {
  int shape = 0;
  int color = 0;
  int size = 0;     // Size
  int pattern = 0;  // Pattern
  int cell = 0;     // 0..8, row-major from the top left; one object per cell
  int jitter_x = 0;
  int jitter_y = 0;
};

struct Backdrop {
  int tone = 0;               // BackgroundRgb index
  bool textured = false;      // light per-pixel noise and a faint gradient
  uint64_t texture_seed = 0;  // drives the noise (drawing only; not part of the scene)
};

struct SceneSpec {
  std::vector<ObjectSpec> objects;  // sorted by cell
  Backdrop backdrop;
};

struct CatalogItemSpec {
  int type = 0;
  int color = 0;
  int pattern = 0;
  int placement = 0;  // 0..8: the item's offset from the image centre on a coarse 3x3 grid
  int scale = 0;      // 0 smaller, 1 larger
  Backdrop backdrop;
};

struct SampleSpec {
  QuestionKind kind = QuestionKind::kColor;
  bool is_catalog = false;
  SceneSpec scene;       // when !is_catalog
  CatalogItemSpec item;  // when is_catalog
  std::string question;
  std::string answer;
};

// Everything a question or caption could refer to, in a fixed order: two
// samples show "the same scene" exactly when these strings are equal (jitter,
// background and texture are deliberately left out, so near-duplicates count
// as the same scene too).
std::string CanonicalDescription(const SceneSpec& scene);
std::string CanonicalDescription(const CatalogItemSpec& item);
// The split a canonical description belongs to: 80 % train, 10 % validation,
// 10 % test, by a hash of the text alone (independent of the seed).
Split SplitOfDescription(const std::string& description);
std::string CanonicalDescription(const SampleSpec& spec);

// Random draws used by the question generators.
Backdrop SampleBackdrop(Rng& rng);
// `count` objects in distinct cells with uniform attributes, sorted by cell.
SceneSpec SampleScene(Rng& rng, int count);
CatalogItemSpec SampleCatalogItem(Rng& rng);

// The sample without its image (cheap: used for splits, the corpus and tests).
SampleSpec GenerateSampleSpec(const DataOptions& options, Split split, int64_t index);
// Draws the sample's image at `image_size` pixels square.
Image RenderSampleImage(const SampleSpec& spec, int image_size);

}  // namespace bitlens::train::data
