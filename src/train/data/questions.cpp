// train/data/questions: question forms, phrasings and the per-kind
// generators. Every question has exactly one correct short answer: objects
// are named only by attributes that single them out, places only when a cell
// holds one object, and yes/no and count answers are balanced by drawing the
// answer first and the scene to match it.
#include "train/data/questions.h"

#include <algorithm>
#include <array>
#include <cctype>

#include "train/data/vocab.h"

namespace bitlens::train::data {
namespace {

enum Form {
  kColorOfShape,
  kShapeOfColor,
  kCountShape,
  kCountColor,
  kCountObjects,
  kWhereIs,
  kYesExists,
  kYesShapeAt,
  kYesShapeIn,
  kYesColorAt,
  kYesOccupied,
  kYesEmpty,
  kColorAt,
  kShapeAt,
  kPatternAt,
  kSizeAt,
  kDescribe,
  kItemName,
  kItemColor,
  kItemType,
  kItemPattern,
  kNumForms
};

std::vector<QuestionForm> BuildForms() {
  std::vector<QuestionForm> f(kNumForms);
  using K = QuestionKind;
  f[kColorOfShape] = {K::kColor, {"What color is the {shape}?", "What is the color of the {shape}?",
                                  "Which color does the {shape} have?"}};
  f[kShapeOfColor] = {K::kShape, {"What shape is the {color} object?", "What is the shape of the {color} object?",
                                  "Which shape is {color}?"}};
  f[kCountShape] = {K::kCount, {"How many {shapes} are there?", "How many {shapes} are in the image?",
                                "Count the {shapes}."}};
  f[kCountColor] = {K::kCount, {"How many {color} objects are there?", "How many {color} objects are in the image?",
                                "Count the {color} objects."}};
  f[kCountObjects] = {K::kCount, {"How many objects are there?", "How many objects are in the image?",
                                  "Count the objects."}};
  f[kWhereIs] = {K::kPosition, {"Where is the {color} {shape}?", "In which part of the image is the {color} {shape}?",
                                "Where is the {color} {shape} located?"}};
  f[kYesExists] = {K::kYesNo, {"Is there {a} {color} {shape}?", "Is there {a} {color} {shape} in the image?",
                               "Does the image contain {a} {color} {shape}?"}};
  f[kYesShapeAt] = {K::kYesNo, {"Is the object in the {pos} {a} {shape}?"}};
  f[kYesShapeIn] = {K::kYesNo, {"Is there {a} {shape} in the {pos}?"}};
  f[kYesColorAt] = {K::kYesNo, {"Is the object in the {pos} {color}?"}};
  f[kYesOccupied] = {K::kYesNo, {"Is there an object in the {pos}?"}};
  f[kYesEmpty] = {K::kYesNo, {"Is the {pos} of the image empty?"}};
  f[kColorAt] = {K::kAttributeAt, {"What color is the object in the {pos}?",
                                   "Which color does the object in the {pos} have?"}};
  f[kShapeAt] = {K::kAttributeAt, {"What shape is the object in the {pos}?", "Which shape is in the {pos}?"}};
  f[kPatternAt] = {K::kAttributeAt, {"What pattern does the object in the {pos} have?",
                                     "How is the object in the {pos} filled?"}};
  f[kSizeAt] = {K::kAttributeAt, {"What size is the object in the {pos}?", "Is the object in the {pos} small or large?"}};
  f[kDescribe] = {K::kCaption, {"Describe the image.", "Write a caption for the image.", "What does the image show?"}};
  f[kItemName] = {K::kCatalog, {"What is this item?", "Describe this product.", "What product is shown?"}};
  f[kItemColor] = {K::kCatalog, {"What color is this item?", "What color is the product?"}};
  f[kItemType] = {K::kCatalog, {"What type of item is this?", "What kind of product is this?"}};
  f[kItemPattern] = {K::kCatalog, {"What pattern does this item have?", "What is the pattern of the product?"}};
  for (QuestionForm& form : f) {
    for (std::string_view p : form.phrasings) {
      form.uses_shape |= p.find("{shape}") != std::string_view::npos;
      form.uses_shapes |= p.find("{shapes}") != std::string_view::npos;
      form.uses_color |= p.find("{color}") != std::string_view::npos;
      form.uses_pos |= p.find("{pos}") != std::string_view::npos;
    }
  }
  return f;
}

void ReplaceAll(std::string& s, std::string_view from, std::string_view to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) {
    s.replace(at, from.size(), to);
  }
}

// Asks phrasing `form` (a random one of its phrasings) with the given values.
std::string Ask(Rng& rng, Form form, int shape = -1, int color = -1, int cell = -1) {
  const auto& phrasings = QuestionForms()[form].phrasings;
  return FillTemplate(phrasings[rng.Uniform(static_cast<int>(phrasings.size()))], shape, color, cell);
}

int CountIf(const SceneSpec& s, auto pred) {
  return static_cast<int>(std::count_if(s.objects.begin(), s.objects.end(), pred));
}

const ObjectSpec* ObjectAt(const SceneSpec& s, int cell) {
  for (const ObjectSpec& o : s.objects) {
    if (o.cell == cell) return &o;
  }
  return nullptr;
}

int RandomEmptyCell(Rng& rng, const SceneSpec& s) {
  for (;;) {  // at most 4 of 9 cells are taken
    const int cell = rng.Uniform(kNumCells);
    if (!ObjectAt(s, cell)) return cell;
  }
}

// A value in [0, n) other than `avoid`.
int Other(Rng& rng, int n, int avoid) {
  const int v = rng.Uniform(n - 1);
  return v >= avoid ? v + 1 : v;
}

std::string_view YesNo(bool yes) { return yes ? "yes" : "no"; }

bool DrawColor(Rng& rng, SampleSpec* spec) {  // "What color is the star?": the star is the only star
  spec->scene = SampleScene(rng, rng.Range(1, kMaxObjects));
  const SceneSpec& s = spec->scene;
  std::vector<const ObjectSpec*> unique;
  for (const ObjectSpec& o : s.objects) {
    if (CountIf(s, [&](const ObjectSpec& x) { return x.shape == o.shape; }) == 1) unique.push_back(&o);
  }
  if (unique.empty()) return false;
  const ObjectSpec& t = *unique[rng.Uniform(static_cast<int>(unique.size()))];
  spec->question = Ask(rng, kColorOfShape, t.shape);
  spec->answer = ColorName(t.color);
  return true;
}

bool DrawShape(Rng& rng, SampleSpec* spec) {  // "What shape is the red object?": only one red object
  spec->scene = SampleScene(rng, rng.Range(1, kMaxObjects));
  const SceneSpec& s = spec->scene;
  std::vector<const ObjectSpec*> unique;
  for (const ObjectSpec& o : s.objects) {
    if (CountIf(s, [&](const ObjectSpec& x) { return x.color == o.color; }) == 1) unique.push_back(&o);
  }
  if (unique.empty()) return false;
  const ObjectSpec& t = *unique[rng.Uniform(static_cast<int>(unique.size()))];
  spec->question = Ask(rng, kShapeOfColor, -1, t.color);
  spec->answer = ShapeName(t.shape);
  return true;
}

// The answer (0..4) is drawn first, uniformly, then a scene with that many
// matching objects among 1..4, so "zero" is as common as "four".
bool DrawCount(Rng& rng, SampleSpec* spec) {
  const int which = rng.Uniform(5);  // 2/5 by shape, 2/5 by colour, 1/5 all objects
  if (which == 4) {
    const int n = rng.Range(1, kMaxObjects);
    spec->scene = SampleScene(rng, n);
    spec->question = Ask(rng, kCountObjects);
    spec->answer = CountWord(n);
    return true;
  }
  const bool by_shape = which < 2;
  const int k = rng.Range(0, kMaxObjects);
  const int n = rng.Range(std::max(1, k), kMaxObjects);
  spec->scene = SampleScene(rng, n);
  const int target = rng.Uniform(by_shape ? kNumShapes : kNumColors);
  // A random k of the n objects get the target, the others anything else.
  std::array<int, kMaxObjects> order = {0, 1, 2, 3};
  for (int i = 0; i < n; ++i) std::swap(order[i], order[i + rng.Uniform(n - i)]);
  for (int i = 0; i < n; ++i) {
    ObjectSpec& o = spec->scene.objects[order[i]];
    int& attr = by_shape ? o.shape : o.color;
    attr = i < k ? target : Other(rng, by_shape ? kNumShapes : kNumColors, target);
  }
  spec->question = by_shape ? Ask(rng, kCountShape, target) : Ask(rng, kCountColor, -1, target);
  spec->answer = CountWord(k);
  return true;
}

bool DrawPosition(Rng& rng, SampleSpec* spec) {  // "Where is the red star?": one red star
  spec->scene = SampleScene(rng, rng.Range(1, kMaxObjects));
  const SceneSpec& s = spec->scene;
  std::vector<const ObjectSpec*> unique;
  for (const ObjectSpec& o : s.objects) {
    if (CountIf(s, [&](const ObjectSpec& x) { return x.color == o.color && x.shape == o.shape; }) == 1) {
      unique.push_back(&o);
    }
  }
  if (unique.empty()) return false;
  const ObjectSpec& t = *unique[rng.Uniform(static_cast<int>(unique.size()))];
  spec->question = Ask(rng, kWhereIs, t.shape, t.color);
  spec->answer = CellName(t.cell);
  return true;
}

bool DrawYesNo(Rng& rng, SampleSpec* spec) {
  spec->scene = SampleScene(rng, rng.Range(1, kMaxObjects));
  const SceneSpec& s = spec->scene;
  const bool yes = rng.Chance(1, 2);
  const ObjectSpec& some = s.objects[rng.Uniform(static_cast<int>(s.objects.size()))];
  const int form = rng.Uniform(6);
  if (form <= 1) {  // colour and shape together; a "no" is often a near miss
    int shape = some.shape, color = some.color;
    if (!yes) {
      const int miss = rng.Uniform(3);
      if (miss == 0) shape = Other(rng, kNumShapes, shape);
      if (miss == 1) color = Other(rng, kNumColors, color);
      if (miss == 2) shape = rng.Uniform(kNumShapes), color = rng.Uniform(kNumColors);
      if (CountIf(s, [&](const ObjectSpec& x) { return x.shape == shape && x.color == color; }) > 0) return false;
    }
    spec->question = Ask(rng, kYesExists, shape, color);
  } else if (form == 2) {
    const int shape = yes ? some.shape : Other(rng, kNumShapes, some.shape);
    spec->question = Ask(rng, kYesShapeAt, shape, -1, some.cell);
  } else if (form == 3) {  // "Is there a star in the top left?": the cell may be empty
    const bool empty_cell = !yes && rng.Chance(1, 2);
    const int cell = empty_cell ? RandomEmptyCell(rng, s) : some.cell;
    const int shape = yes ? some.shape : empty_cell ? rng.Uniform(kNumShapes) : Other(rng, kNumShapes, some.shape);
    spec->question = Ask(rng, kYesShapeIn, shape, -1, cell);
  } else if (form == 4) {
    const int color = yes ? some.color : Other(rng, kNumColors, some.color);
    spec->question = Ask(rng, kYesColorAt, -1, color, some.cell);
  } else {
    const bool ask_empty = rng.Chance(1, 2);
    const bool occupied = ask_empty ? !yes : yes;
    const int cell = occupied ? some.cell : RandomEmptyCell(rng, s);
    spec->question = Ask(rng, ask_empty ? kYesEmpty : kYesOccupied, -1, -1, cell);
  }
  spec->answer = YesNo(yes);
  return true;
}

bool DrawAttributeAt(Rng& rng, SampleSpec* spec) {
  spec->scene = SampleScene(rng, rng.Range(1, kMaxObjects));
  const SceneSpec& s = spec->scene;
  const ObjectSpec& t = s.objects[rng.Uniform(static_cast<int>(s.objects.size()))];
  switch (rng.Uniform(4)) {
    case 0:
      spec->question = Ask(rng, kColorAt, -1, -1, t.cell);
      spec->answer = ColorName(t.color);
      break;
    case 1:
      spec->question = Ask(rng, kShapeAt, -1, -1, t.cell);
      spec->answer = ShapeName(t.shape);
      break;
    case 2:
      spec->question = Ask(rng, kPatternAt, -1, -1, t.cell);
      spec->answer = PatternName(t.pattern);
      break;
    default:
      spec->question = Ask(rng, kSizeAt, -1, -1, t.cell);
      spec->answer = SizeName(t.size);
      break;
  }
  return true;
}

bool DrawCaption(Rng& rng, SampleSpec* spec) {
  spec->scene = SampleScene(rng, rng.Range(1, kMaxObjects));
  spec->question = Ask(rng, kDescribe);
  spec->answer = Caption(spec->scene);
  return true;
}

bool DrawCatalog(Rng& rng, SampleSpec* spec) {
  spec->is_catalog = true;
  spec->item = SampleCatalogItem(rng);
  const CatalogItemSpec& it = spec->item;
  switch (rng.Uniform(5)) {  // the full name twice as often as each attribute
    case 0:
    case 1:
      spec->question = Ask(rng, kItemName);
      spec->answer = CatalogName(it.color, it.pattern, it.type);
      break;
    case 2:
      spec->question = Ask(rng, kItemColor);
      spec->answer = ColorName(it.color);
      break;
    case 3:
      spec->question = Ask(rng, kItemType);
      spec->answer = ItemTypeName(it.type);
      break;
    default:
      spec->question = Ask(rng, kItemPattern);
      spec->answer = PatternName(it.pattern);
      break;
  }
  return true;
}

}  // namespace

const std::vector<QuestionForm>& QuestionForms() {
  static const std::vector<QuestionForm> forms = BuildForms();
  return forms;
}

std::string FillTemplate(std::string_view phrasing, int shape, int color, int cell) {
  std::string s(phrasing);
  if (shape >= 0) {
    ReplaceAll(s, "{shapes}", ShapePlural(shape));
    ReplaceAll(s, "{shape}", ShapeName(shape));
  }
  if (color >= 0) ReplaceAll(s, "{color}", ColorName(color));
  if (cell >= 0) ReplaceAll(s, "{pos}", CellName(cell));
  for (size_t at = s.find("{a} "); at != std::string::npos; at = s.find("{a} ")) {
    const char next = at + 4 < s.size() ? s[at + 4] : 'x';
    s.replace(at, 3, std::string_view("aeiou").find(next) != std::string_view::npos ? "an" : "a");
  }
  return s;
}

std::string ObjectPhrase(const ObjectSpec& o) {
  std::string s = "a ";
  s += SizeName(o.size);
  s += " ";
  s += ColorName(o.color);
  s += " ";
  s += ShapeName(o.shape);
  s += " in the ";
  s += CellName(o.cell);
  return s;
}

std::string Caption(const SceneSpec& scene) {
  std::string s;
  const size_t n = scene.objects.size();
  for (size_t i = 0; i < n; ++i) {
    if (i > 0) s += i + 1 == n ? " and " : ", ";
    s += ObjectPhrase(scene.objects[i]);
  }
  if (!s.empty()) s[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(s[0])));
  return s + ".";
}

std::string CatalogName(int color, int pattern, int type) {
  std::string s(ColorName(color));
  if (pattern != kSolid) {
    s += " ";
    s += PatternName(pattern);
  }
  s += " ";
  s += ItemTypeName(type);
  return s;
}

bool DrawQuestion(QuestionKind kind, Rng& rng, SampleSpec* spec) {
  *spec = SampleSpec{};
  spec->kind = kind;
  switch (kind) {
    case QuestionKind::kColor: return DrawColor(rng, spec);
    case QuestionKind::kShape: return DrawShape(rng, spec);
    case QuestionKind::kCount: return DrawCount(rng, spec);
    case QuestionKind::kPosition: return DrawPosition(rng, spec);
    case QuestionKind::kYesNo: return DrawYesNo(rng, spec);
    case QuestionKind::kAttributeAt: return DrawAttributeAt(rng, spec);
    case QuestionKind::kCaption: return DrawCaption(rng, spec);
    case QuestionKind::kCatalog: return DrawCatalog(rng, spec);
  }
  return false;
}

}  // namespace bitlens::train::data
