// train/data/scene_sampling: random scenes and catalogue items, their
// canonical descriptions, and the split each description belongs to.
#include <algorithm>
#include <initializer_list>
#include <string>

#include "train/data/sample_spec.h"
#include "train/data/vocab.h"

namespace bitlens::train::data {

namespace {

// "prefix;a,b,c" (appends only: GCC 12 warns falsely on "x" + std::to_string).
void AppendFields(std::string& s, std::initializer_list<int> fields) {
  char sep = ';';
  for (int v : fields) {
    s += sep;
    s += std::to_string(v);
    sep = ',';
  }
}

}  // namespace

std::string CanonicalDescription(const SceneSpec& scene) {
  std::string s = "scene";
  for (const ObjectSpec& o : scene.objects) AppendFields(s, {o.cell, o.shape, o.color, o.size, o.pattern});
  return s;
}

std::string CanonicalDescription(const CatalogItemSpec& item) {
  std::string s = "item";
  AppendFields(s, {item.type, item.color, item.pattern, item.placement, item.scale});
  return s;
}

std::string CanonicalDescription(const SampleSpec& spec) {
  return spec.is_catalog ? CanonicalDescription(spec.item) : CanonicalDescription(spec.scene);
}

Split SplitOfDescription(const std::string& description) {
  const uint64_t bucket = HashText(description) % 100;
  if (bucket < 80) return Split::kTrain;
  if (bucket < 90) return Split::kValidation;
  return Split::kTest;
}

Backdrop SampleBackdrop(Rng& rng) {
  Backdrop b;
  b.tone = rng.Uniform(kNumBackgrounds);
  b.textured = rng.Chance(1, 2);
  b.texture_seed = rng.Next();
  return b;
}

SceneSpec SampleScene(Rng& rng, int count) {
  SceneSpec scene;
  scene.backdrop = SampleBackdrop(rng);
  int cells[kNumCells];
  for (int i = 0; i < kNumCells; ++i) cells[i] = i;
  for (int i = 0; i < count; ++i) {  // partial Fisher-Yates: `count` distinct cells
    std::swap(cells[i], cells[i + rng.Uniform(kNumCells - i)]);
    ObjectSpec o;
    o.cell = cells[i];
    o.shape = rng.Uniform(kNumShapes);
    o.color = rng.Uniform(kNumColors);
    o.size = rng.Uniform(kNumSizes);
    o.pattern = rng.Uniform(kNumPatterns);
    o.jitter_x = rng.Range(-kJitterSteps, kJitterSteps);
    o.jitter_y = rng.Range(-kJitterSteps, kJitterSteps);
    scene.objects.push_back(o);
  }
  std::sort(scene.objects.begin(), scene.objects.end(),
            [](const ObjectSpec& a, const ObjectSpec& b) { return a.cell < b.cell; });
  return scene;
}

CatalogItemSpec SampleCatalogItem(Rng& rng) {
  CatalogItemSpec item;
  item.backdrop = SampleBackdrop(rng);
  item.type = rng.Uniform(kNumItemTypes);
  item.color = rng.Uniform(kNumColors);
  item.pattern = rng.Uniform(kNumPatterns);
  item.placement = rng.Uniform(9);
  item.scale = rng.Uniform(2);
  return item;
}

}  // namespace bitlens::train::data
