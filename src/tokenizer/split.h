// tokenizer/split: HF's string patterns ({"String": ..} or {"Regex": ..}) and
// the split behaviours (Removed, Isolated, MergedWithPrevious,
// MergedWithNext, Contiguous) that Split, Digits and ByteLevel build on.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"
#include "tokenizer/json_fields.h"
#include "tokenizer/regex.h"

namespace bitlens {

using Span = std::pair<size_t, size_t>;  // [begin, end) byte offsets

// A literal string or a compiled regex.
class Pattern {
 public:
  static Pattern Literal(std::string s);
  static Pattern FromRegex(std::shared_ptr<const Regex> regex);
  // {"String": "..."} or {"Regex": "..."} at `where`.
  static Result<Pattern> Parse(const json_fields::Json& j, const std::string& where);

  // Non-overlapping non-empty matches, left to right.
  std::vector<Span> FindAll(std::string_view text) const;
  // `text` with every match replaced by `content`.
  std::string ReplaceAll(std::string_view text, std::string_view content) const;

 private:
  std::string literal_;
  std::shared_ptr<const Regex> regex_;
};

enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

Result<SplitBehavior> ParseSplitBehavior(const json_fields::Json& j, const std::string& where);

// Splits [0, size) given the `matches` (the delimiters, or with `invert` the
// parts to keep) as HF's NormalizedString::split does. Empty pieces are dropped.
std::vector<Span> SplitByMatches(size_t size, const std::vector<Span>& matches, SplitBehavior behavior, bool invert);

}  // namespace bitlens
