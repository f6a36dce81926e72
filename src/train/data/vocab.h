// train/data/vocab: the closed vocabulary of the synthetic data: shapes,
// colours (with their RGB), sizes, fill patterns, grid positions, count words
// and catalogue item types. Every word a sample can contain comes from here.
#pragma once

#include <cstdint>
#include <string_view>

namespace bitlens::train::data {

struct Rgb {
  uint8_t r = 0, g = 0, b = 0;
  bool operator==(const Rgb&) const = default;
};

inline constexpr int kNumShapes = 6;
inline constexpr int kNumColors = 8;
inline constexpr int kNumSizes = 2;
inline constexpr int kNumPatterns = 4;
inline constexpr int kNumCells = 9;       // 3x3 grid, row-major from the top left
inline constexpr int kMaxObjects = 4;
inline constexpr int kNumItemTypes = 7;
inline constexpr int kNumBackgrounds = 4;

enum Pattern { kSolid = 0, kStriped = 1, kDotted = 2, kCheckered = 3 };
enum Size { kSmall = 0, kLarge = 1 };

std::string_view ShapeName(int shape);        // "circle"
std::string_view ShapePlural(int shape);      // "circles"
std::string_view ColorName(int color);        // "red"
Rgb ColorRgb(int color);                      // the exact pixel value of a solid fill
Rgb ColorShade(int color);                    // the second colour of a patterned fill
std::string_view SizeName(int size);          // "small", "large"
std::string_view PatternName(int pattern);    // "solid", "striped", ...
std::string_view CellName(int cell);          // "top left", ..., "center", ...
std::string_view CountWord(int n);            // 0..4 -> "zero".."four"
std::string_view ItemTypeName(int type);      // "shirt", "mug", ...
Rgb BackgroundRgb(int background);            // neutral mid tones, far from every colour

}  // namespace bitlens::train::data
