// train/data/questions: the question templates (a few phrasings per form, so
// the model must read the question) and the generators that draw a scene fit
// for a question kind and ask one unambiguous question about it.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "train/data/rng.h"
#include "train/data/sample_spec.h"

namespace bitlens::train::data {

// One kind of question with its phrasings. Placeholders: {shape}, {shapes},
// {color}, {pos}, and {a} (the article "a"/"an" for the word after it).
struct QuestionForm {
  QuestionKind kind;
  std::vector<std::string_view> phrasings;
  bool uses_shape = false, uses_shapes = false, uses_color = false, uses_pos = false;
};
// Indexed by the Form enum of questions.cpp; the corpus enumerates them all.
const std::vector<QuestionForm>& QuestionForms();

// Replaces the placeholders (values < 0 are left unused) and resolves {a}.
std::string FillTemplate(std::string_view phrasing, int shape, int color, int cell);

// "A large red circle in the top left, a small blue square in the center and
// a large green star in the bottom right." Objects in cell order. Fills are
// left to the attribute questions: every extra word per object makes an
// exactly matching caption of four objects harder to produce.
std::string Caption(const SceneSpec& scene);
// "a small blue square in the center".
std::string ObjectPhrase(const ObjectSpec& object);
// "blue striped shirt", "red mug" (solid fills are not named).
std::string CatalogName(int color, int pattern, int type);

// Draws a scene (or catalogue item) for `kind` and one question about it into
// *spec; false when the drawn scene cannot support the question unambiguously
// (the caller draws again).
bool DrawQuestion(QuestionKind kind, Rng& rng, SampleSpec* spec);

}  // namespace bitlens::train::data
