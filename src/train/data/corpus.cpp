// train/data/corpus: TokenizerCorpus. Every question phrasing filled with
// every value it can take, every answer word and catalogue name, every
// caption phrase, plus whole captions of real samples so the tokenizer also
// sees how caption phrases are joined ("A ...", ", a ...", " and a ...").
#include <string>
#include <vector>

#include "train/data/questions.h"
#include "train/data/sample_spec.h"
#include "train/data/vocab.h"

namespace bitlens::train {

std::vector<std::string> TokenizerCorpus(const DataOptions& options) {
  using namespace data;
  std::vector<std::string> corpus;
  for (const QuestionForm& form : QuestionForms()) {
    const int shapes = form.uses_shape || form.uses_shapes ? kNumShapes : 1;
    const int colors = form.uses_color ? kNumColors : 1;
    const int cells = form.uses_pos ? kNumCells : 1;
    for (std::string_view phrasing : form.phrasings) {
      for (int s = 0; s < shapes; ++s) {
        for (int c = 0; c < colors; ++c) {
          for (int p = 0; p < cells; ++p) corpus.push_back(FillTemplate(phrasing, s, c, p));
        }
      }
    }
  }
  // Short answers.
  for (std::string_view w : {"yes", "no"}) corpus.emplace_back(w);
  for (int n = 0; n <= kMaxObjects; ++n) corpus.emplace_back(CountWord(n));
  for (int i = 0; i < kNumShapes; ++i) corpus.emplace_back(ShapeName(i));
  for (int i = 0; i < kNumColors; ++i) corpus.emplace_back(ColorName(i));
  for (int i = 0; i < kNumSizes; ++i) corpus.emplace_back(SizeName(i));
  for (int i = 0; i < kNumPatterns; ++i) corpus.emplace_back(PatternName(i));
  for (int i = 0; i < kNumCells; ++i) corpus.emplace_back(CellName(i));
  for (int i = 0; i < kNumItemTypes; ++i) corpus.emplace_back(ItemTypeName(i));
  for (int c = 0; c < kNumColors; ++c) {
    for (int p = 0; p < kNumPatterns; ++p) {
      for (int t = 0; t < kNumItemTypes; ++t) corpus.push_back(CatalogName(c, p, t));
    }
  }
  // Every caption phrase (each is also a one-object caption when capitalised).
  for (int cell = 0; cell < kNumCells; ++cell) {
    for (int shape = 0; shape < kNumShapes; ++shape) {
      for (int color = 0; color < kNumColors; ++color) {
        for (int size = 0; size < kNumSizes; ++size) {
          ObjectSpec o;
          o.cell = cell, o.shape = shape, o.color = color, o.size = size;
          corpus.push_back(ObjectPhrase(o));
        }
      }
    }
  }
  // Captions of training samples with 1..4 objects, for the joining words.
  DataOptions o = options;
  o.catalog_fraction = 0.0;
  for (int64_t i = 0, captions = 0; captions < 400 && i < 100'000; ++i) {
    const SampleSpec spec = GenerateSampleSpec(o, Split::kTrain, i);
    if (spec.kind != QuestionKind::kCaption) continue;
    corpus.push_back(spec.answer);
    ++captions;
  }
  return corpus;
}

}  // namespace bitlens::train
