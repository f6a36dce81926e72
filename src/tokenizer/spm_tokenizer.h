// tokenizer/spm_tokenizer: SentencePiece tokenizer.model through
// libsentencepiece. Added tokens declared by the checkpoint's configs
// ("<image>", "<|user|>") are cut out first; the SentencePiece control
// symbols (<s>, </s>) are never matched in text, as in SentencePiece itself.
#pragma once

#include <memory>
#include <string>

#include <sentencepiece_processor.h>

#include "tokenizer/added_tokens.h"
#include "tokenizer/tokenizer.h"

namespace bitlens {

class SpmTokenizer : public Tokenizer {
 public:
  static Result<std::unique_ptr<SpmTokenizer>> Load(const std::string& path, AddedVocabulary added);

  std::vector<int32_t> Encode(std::string_view text, bool add_bos) const override;
  std::string Decode(const std::vector<int32_t>& ids) const override;
  std::string DecodeBytes(std::span<const int32_t> ids) const override;
  int32_t vocab_size() const override;
  std::optional<int32_t> TokenId(std::string_view token) const override;

  // SentencePiece's own BOS/EOS ids (-1 when the model has none).
  int32_t spm_bos_id() const { return sp_.bos_id(); }
  int32_t spm_eos_id() const { return sp_.eos_id(); }

 private:
  std::string DecodeImpl(std::span<const int32_t> ids, bool raw) const;
  // Bytes of a run of ordinary pieces; `first` strips the dummy-prefix space.
  std::string DecodeRunRaw(std::span<const int32_t> ids, bool first) const;

  sentencepiece::SentencePieceProcessor sp_;
  AddedVocabulary added_;
};

}  // namespace bitlens
