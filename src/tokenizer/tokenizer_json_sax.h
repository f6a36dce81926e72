// tokenizer/tokenizer_json_sax: a streaming reader of tokenizer.json. A DOM of
// a 200k-token file costs most of a second; this reader builds the DOM for
// everything except model.vocab and model.merges, which it collects straight
// into flat vectors (the bulk of the file).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "base/status.h"
#include "tokenizer/json_fields.h"

namespace bitlens {

struct TokenizerJsonContents {
  json_fields::Json root;  // with model.vocab / model.merges left empty
  bool has_vocab = false;
  std::vector<std::pair<std::string, int32_t>> vocab;
  bool has_merges = false;
  std::vector<std::pair<std::string, std::string>> merges;
};

// Parses `text`; errors name `file` and the field ("model.vocab['a']").
Result<TokenizerJsonContents> ReadTokenizerJson(const std::string& text, const std::string& file);

// A vocab.json: one object of token -> id, read without a DOM.
Result<std::vector<std::pair<std::string, int32_t>>> ReadVocabJson(const std::string& text, const std::string& file);

}  // namespace bitlens
