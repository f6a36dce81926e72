// tokenizer/token_decoder: HF decoders, which turn the token strings of ids
// back into text: ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace,
// Sequence. They work on raw bytes; the tokenizer makes the final text valid
// UTF-8 (or, for streaming, holds back a cut character).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "tokenizer/json_fields.h"

namespace bitlens {

class TokenDecoder {
 public:
  virtual ~TokenDecoder() = default;
  // Rewrites the token list in place (HF's decode_chain). With `raw`, byte
  // sequences that are not valid UTF-8 are kept as bytes instead of being
  // replaced by U+FFFD, so a character cut across tokens can be completed.
  virtual void Apply(std::vector<std::string>* tokens, bool raw) const = 0;
};

Result<std::unique_ptr<TokenDecoder>> ParseTokenDecoder(const json_fields::Json& j, const std::string& where);

// The ByteLevel decoder (for vocab.json + merges.txt loading).
std::unique_ptr<TokenDecoder> MakeByteLevelDecoder();

}  // namespace bitlens
