// tokenizer/normalizer: HF normalizers applied to each piece of text between
// added tokens, before pre-tokenization: Prepend, Replace, Sequence (the
// SentencePiece-converted "Llama-style" tokenizer.json uses these), plus
// Lowercase, Strip and NFC/NFD/NFKC/NFKD (through ICU).
#pragma once

#include <memory>
#include <string>

#include "base/status.h"
#include "tokenizer/json_fields.h"

namespace bitlens {

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  virtual void Apply(std::string* text) const = 0;
};

// The normalizer described by `j` (an object with "type"); `where` is the
// field path for messages.
Result<std::unique_ptr<Normalizer>> ParseNormalizer(const json_fields::Json& j, const std::string& where);

// A Unicode normalization form by name ("NFC", "NFD", "NFKC", "NFKD").
Result<std::unique_ptr<Normalizer>> MakeUnicodeNormalizer(const std::string& form);

}  // namespace bitlens
