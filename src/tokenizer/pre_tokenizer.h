// tokenizer/pre_tokenizer: HF pre-tokenizers, which cut normalized text into
// the words the BPE model sees: Split (regex or string), ByteLevel (GPT-2
// regex and byte spelling), Digits, Metaspace, Whitespace(Split), Punctuation
// and Sequence.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "tokenizer/json_fields.h"

namespace bitlens {

// One piece of text. `origin_zero` counts the leading bytes of `text` that
// come from the first character of the original input (HF: the piece's
// original offset is 0). It is more than one character when a normalizer
// expanded that character (NFKC "⒑" -> "10.") or prepended to it.
// Metaspace's prepend_scheme "first" needs it.
struct PreToken {
  std::string text;
  size_t origin_zero = 0;
};

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Replaces each piece by its sub-pieces.
  virtual void Apply(std::vector<PreToken>* pieces) const = 0;
};

Result<std::unique_ptr<PreTokenizer>> ParsePreTokenizer(const json_fields::Json& j, const std::string& where);

// The GPT-2 split regex, which the ByteLevel pre-tokenizer uses with use_regex.
extern const char kGpt2SplitRegex[];
// Qwen2's split regex (vocab.json + merges.txt checkpoints of Qwen2 / Qwen2-VL).
extern const char kQwen2SplitRegex[];

// ByteLevel(add_prefix_space, use_regex), for vocab.json + merges.txt loading.
Result<std::unique_ptr<PreTokenizer>> MakeByteLevelPreTokenizer(bool add_prefix_space, bool use_regex);
// Split(regex, Isolated) followed by ByteLevel without its own regex.
Result<std::unique_ptr<PreTokenizer>> MakeRegexByteLevelPreTokenizer(const std::string& regex);

}  // namespace bitlens
