// tokenizer/bpe_tokenizer: the HF tokenizers pipeline with a BPE model:
// added tokens -> normalizer -> pre-tokenizer -> BPE -> ids, and ids ->
// decoder -> text. Built from tokenizer.json (tokenizer_json.cpp) or from a
// vocab.json + merges.txt pair (vocab_merges.cpp).
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "tokenizer/added_tokens.h"
#include "tokenizer/bpe_model.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/token_decoder.h"
#include "tokenizer/tokenizer.h"

namespace bitlens {

class BpeTokenizer : public Tokenizer {
 public:
  struct Parts {
    std::unique_ptr<Normalizer> normalizer;      // may be null
    std::unique_ptr<PreTokenizer> pre_tokenizer;  // may be null
    BpeModel model;
    AddedVocabulary added;
    std::unique_ptr<TokenDecoder> decoder;  // null: tokens joined by spaces
    // The special token TemplateProcessing puts first (the BOS), if any.
    std::optional<int32_t> template_bos;
  };

  explicit BpeTokenizer(Parts parts) : parts_(std::move(parts)) {}

  // Parses the text of a tokenizer.json; `file` names it in messages.
  static Result<std::unique_ptr<BpeTokenizer>> FromTokenizerJson(const std::string& text, const std::string& file);
  // Reads vocab.json + merges.txt in `dir`; tokenizer_config.json (if given,
  // already parsed, else null) chooses the split regex and adds tokens.
  static Result<std::unique_ptr<BpeTokenizer>> FromVocabMerges(const std::string& dir,
                                                               const json_fields::Json& tokenizer_config);

  std::vector<int32_t> Encode(std::string_view text, bool add_bos) const override;
  std::string Decode(const std::vector<int32_t>& ids) const override;
  std::string DecodeBytes(std::span<const int32_t> ids) const override;
  int32_t vocab_size() const override;
  std::optional<int32_t> TokenId(std::string_view token) const override;

  const Parts& parts() const { return parts_; }

 private:
  void EncodePlain(std::string text, size_t origin_zero, std::vector<int32_t>* ids) const;
  std::string DecodeImpl(std::span<const int32_t> ids, bool raw) const;
  // Bytes at the start of `normalized` (the normalized first segment of
  // `input`) that come from the input's first character.
  size_t FirstCharacterSpan(std::string_view input, std::string_view normalized) const;

  Parts parts_;
};

}  // namespace bitlens
