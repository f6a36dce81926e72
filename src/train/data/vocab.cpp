// train/data/vocab: word tables and the palette. The palette keeps every
// colour far from the others and from the neutral backgrounds (which stay in
// 150..210 grey), so colour questions are answerable from a single pixel.
#include "train/data/vocab.h"

namespace bitlens::train::data {
namespace {

constexpr std::string_view kShapes[kNumShapes] = {"circle", "square", "triangle", "star", "cross", "ring"};
constexpr std::string_view kShapePlurals[kNumShapes] = {"circles", "squares", "triangles",
                                                        "stars",   "crosses", "rings"};
constexpr std::string_view kColors[kNumColors] = {"red", "green", "blue", "yellow", "purple", "orange", "white", "black"};
constexpr Rgb kColorRgb[kNumColors] = {{220, 30, 30},  {30, 165, 50},  {35, 75, 225},  {245, 215, 30},
                                       {140, 50, 190}, {245, 130, 20}, {250, 250, 250}, {20, 20, 20}};
// Patterned fills alternate the colour with a darker shade of it (black with
// a dark grey), so the object keeps its hue and its silhouette.
constexpr Rgb kColorShade[kNumColors] = {{120, 15, 15}, {15, 85, 25},  {15, 35, 120},  {140, 115, 10},
                                         {70, 20, 100}, {140, 70, 10}, {120, 120, 130}, {95, 95, 95}};
constexpr std::string_view kSizes[kNumSizes] = {"small", "large"};
constexpr std::string_view kPatterns[kNumPatterns] = {"solid", "striped", "dotted", "checkered"};
constexpr std::string_view kCells[kNumCells] = {"top left",    "top middle", "top right",
                                                "middle left", "center",     "middle right",
                                                "bottom left", "bottom middle", "bottom right"};
constexpr std::string_view kCounts[kMaxObjects + 1] = {"zero", "one", "two", "three", "four"};
constexpr std::string_view kItemTypes[kNumItemTypes] = {"shirt", "mug", "bag", "hat", "shoe", "bottle", "lamp"};
constexpr Rgb kBackgrounds[kNumBackgrounds] = {{172, 172, 172}, {190, 182, 164}, {164, 172, 186}, {180, 186, 170}};

}  // namespace

std::string_view ShapeName(int shape) { return kShapes[shape]; }
std::string_view ShapePlural(int shape) { return kShapePlurals[shape]; }
std::string_view ColorName(int color) { return kColors[color]; }
Rgb ColorRgb(int color) { return kColorRgb[color]; }
Rgb ColorShade(int color) { return kColorShade[color]; }
std::string_view SizeName(int size) { return kSizes[size]; }
std::string_view PatternName(int pattern) { return kPatterns[pattern]; }
std::string_view CellName(int cell) { return kCells[cell]; }
std::string_view CountWord(int n) { return kCounts[n]; }
std::string_view ItemTypeName(int type) { return kItemTypes[type]; }
Rgb BackgroundRgb(int background) { return kBackgrounds[background]; }

}  // namespace bitlens::train::data
