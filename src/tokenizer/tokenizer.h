// tokenizer/tokenizer: text <-> token ids for every supported checkpoint:
// byte-level BPE from tokenizer.json, SentencePiece tokenizer.model, and
// vocab.json + merges.txt pairs. The runtime and CLI use only this interface.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"

namespace bitlens {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // Loads from a model directory: tokenizer.json, else tokenizer.model, else
  // vocab.json + merges.txt (a tokenizer.json whose model type bitlens does
  // not support, e.g. Unigram, yields to a tokenizer.model beside it).
  // tokenizer_config.json / special_tokens_map.json (when present) give BOS
  // and whether BOS is added by default; EOS also collects config.json's and
  // generation_config.json's eos_token_id. `model_dir` may also name a
  // tokenizer.json or .model file directly. See docs/tokenizers.md.
  // A loaded tokenizer is immutable: Encode / Decode may run concurrently.
  static Result<std::unique_ptr<Tokenizer>> Load(const std::string& model_dir);

  // Token ids of `text`. Added/special tokens written in the text (e.g.
  // "<image>", "<|user|>") map to their ids. Adds BOS first when add_bos.
  virtual std::vector<int32_t> Encode(std::string_view text, bool add_bos) const = 0;
  // The text of `ids` (special tokens rendered as written).
  virtual std::string Decode(const std::vector<int32_t>& ids) const = 0;
  // Like Decode, but bytes that do not form valid UTF-8 (a character cut
  // across byte-fallback or byte-level tokens) are returned as they are
  // instead of as U+FFFD. StreamingDecoder builds on it.
  virtual std::string DecodeBytes(std::span<const int32_t> ids) const {
    return Decode(std::vector<int32_t>(ids.begin(), ids.end()));
  }

  virtual int32_t vocab_size() const = 0;
  // Id of a token written exactly as in the vocabulary, e.g. "<|end|>".
  virtual std::optional<int32_t> TokenId(std::string_view token) const = 0;

  std::optional<int32_t> bos_id() const { return bos_id_; }
  const std::vector<int32_t>& eos_ids() const { return eos_ids_; }
  bool add_bos_by_default() const { return add_bos_by_default_; }

  // Set by Load from the checkpoint's configs; exposed for tools and tests
  // that build a tokenizer for a synthetic checkpoint.
  void SetSpecialTokens(std::optional<int32_t> bos_id, std::vector<int32_t> eos_ids, bool add_bos_by_default) {
    bos_id_ = bos_id;
    eos_ids_ = std::move(eos_ids);
    add_bos_by_default_ = add_bos_by_default;
  }

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
  // Only a window of recent ids is kept: decoding ids_[0..] again on every
  // Push stays cheap, and the first id gives the decoder its context (e.g.
  // SentencePiece strips the leading space of the first token only).
  std::vector<int32_t> ids_;
  // Bytes of DecodeBytes(ids_) already returned.
  size_t emitted_bytes_ = 0;
};

}  // namespace bitlens
