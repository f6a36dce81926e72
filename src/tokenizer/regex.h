// tokenizer/regex: a compiled PCRE2 pattern (UTF + UCP, JIT when available)
// that lists the matches of a pre-tokenizer regex in valid UTF-8 text. HF
// tokenizers uses Oniguruma; the pre-tokenizer patterns in use are written in
// the common subset (\p{..}, (?i:..), lookahead) that both engines agree on.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"

namespace bitlens {

class Regex {
 public:
  // Compiles `pattern`; the error names the pattern offset PCRE2 rejected.
  static Result<std::shared_ptr<const Regex>> Compile(std::string_view pattern);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Non-empty, non-overlapping matches in `text` (which must be valid UTF-8)
  // as [begin, end) byte offsets, left to right.
  std::vector<std::pair<size_t, size_t>> FindAll(std::string_view text) const;

  const std::string& pattern() const { return pattern_; }

 private:
  Regex() = default;
  void* code_ = nullptr;  // pcre2_code_8*
  bool jit_ = false;
  std::string pattern_;
};

}  // namespace bitlens
