// tokenizer/added_tokens_config: reads the `added_tokens_decoder` object of
// tokenizer_config.json ({"<id>": {"content": ..., "special": ..., ...}})
// into an AddedVocabulary, for the loaders that do not get their added
// tokens from tokenizer.json (tokenizer.model, vocab.json + merges.txt).
#pragma once

#include <string>

#include "base/status.h"
#include "tokenizer/added_tokens.h"
#include "tokenizer/json_fields.h"

namespace bitlens {

// `decoder` is the added_tokens_decoder value (null is allowed: nothing to
// add). `where` names it in errors. With read_normalized, each token's
// "normalized" flag is read (default: not special, as HF does); without it,
// tokens are matched in the raw text whatever the flag says, as transformers'
// SentencePiece tokenizers do.
Status AddTokensFromDecoderConfig(const json_fields::Json& decoder, const std::string& where, bool read_normalized,
                                  AddedVocabulary* added);

}  // namespace bitlens
