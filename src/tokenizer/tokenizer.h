// tokenizer/tokenizer: text <-> token ids for every supported checkpoint:
// byte-level BPE from tokenizer.json, SentencePiece tokenizer.model, and
// vocab.json + merges.txt pairs. The runtime and CLI use only this interface.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace bitlens {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // Loads from a model directory: tokenizer.json, else tokenizer.model, else
  // vocab.json + merges.txt; tokenizer_config.json / special_tokens_map.json
  // (when present) give BOS/EOS and whether BOS is added by default.
  static Result<std::unique_ptr<Tokenizer>> Load(const std::string& model_dir);

  // Token ids of `text`. Added/special tokens written in the text (e.g.
  // "<image>", "<|user|>") map to their ids. Adds BOS first when add_bos.
  virtual std::vector<int32_t> Encode(std::string_view text, bool add_bos) const = 0;
  // The text of `ids` (special tokens rendered as written).
  virtual std::string Decode(const std::vector<int32_t>& ids) const = 0;

  virtual int32_t vocab_size() const = 0;
  // Id of a token written exactly as in the vocabulary, e.g. "<|end|>".
  virtual std::optional<int32_t> TokenId(std::string_view token) const = 0;

  std::optional<int32_t> bos_id() const { return bos_id_; }
  const std::vector<int32_t>& eos_ids() const { return eos_ids_; }
  bool add_bos_by_default() const { return add_bos_by_default_; }

 protected:
  std::optional<int32_t> bos_id_;
  std::vector<int32_t> eos_ids_;
  bool add_bos_by_default_ = false;
};

// Turns a stream of ids into text that only ever contains whole UTF-8
// characters: bytes of a partial character are held until it completes.
class StreamingDecoder {
 public:
  explicit StreamingDecoder(const Tokenizer& tokenizer) : tokenizer_(tokenizer) {}
  // Text made printable by `id` (may be empty).
  std::string Push(int32_t id);
  // Whatever is still held (invalid trailing bytes become U+FFFD).
  std::string Flush();

 private:
  const Tokenizer& tokenizer_;
  std::vector<int32_t> ids_;
  size_t emitted_bytes_ = 0;
};

}  // namespace bitlens
