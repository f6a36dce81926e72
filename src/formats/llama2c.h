// formats/llama2c: reads Andrej Karpathy's llama2.c checkpoints and
// tokenizers and writes them as a Hugging Face Llama checkpoint directory.
//
// Checkpoint (legacy "version 0" export, little-endian):
//   int32 dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len
//     (vocab_size < 0: the classifier is not shared with the embedding)
//   f32 token_embedding [vocab, dim]
//   f32 rms_att [L, dim]; wq [L, dim, dim]; wk [L, kv_dim, dim]; wv [L, kv_dim, dim]; wo [L, dim, dim]
//   f32 rms_ffn [L, dim]; w1 [L, hidden, dim]; w2 [L, dim, hidden]; w3 [L, hidden, dim]
//   f32 rms_final [dim]; freq_cis_real [seq_len, head_size/2]; freq_cis_imag [seq_len, head_size/2]
//   f32 wcls [vocab, dim]   (only when not shared)
//   kv_dim = dim * n_kv_heads / n_heads; matrices are [out, in] row-major.
// Tokenizer (.bin): int32 max_token_length, then per token: f32 score,
//   int32 length, bytes (SentencePiece pieces with U+2581 written as ' ',
//   BOS/EOS written as "\n<s>\n" / "\n</s>\n").
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"

namespace bitlens {

struct Llama2cConfig {
  int32_t dim = 0;
  int32_t hidden_dim = 0;
  int32_t n_layers = 0;
  int32_t n_heads = 0;
  int32_t n_kv_heads = 0;
  int32_t vocab_size = 0;  // absolute value
  int32_t seq_len = 0;
  bool shared_classifier = true;

  int64_t head_size() const { return dim / n_heads; }
  int64_t kv_dim() const { return head_size() * n_kv_heads; }
  // File size the header implies, in bytes.
  int64_t ExpectedBytes() const;
};

// Parses and validates the header of a checkpoint image of `size` bytes.
Result<Llama2cConfig> ParseLlama2cHeader(const uint8_t* data, size_t size, const std::string& source);

struct Llama2cVocab {
  int32_t max_token_length = 0;
  std::vector<std::string> pieces;  // SentencePiece spelling restored ('▁', "<s>", "</s>")
  std::vector<float> scores;
};

// Reads a tokenizer .bin holding exactly `vocab_size` tokens.
Result<Llama2cVocab> ReadLlama2cTokenizer(const std::string& path, int32_t vocab_size);

// HF BPE merges of a SentencePiece BPE vocabulary: every split of a piece
// into two pieces of the vocabulary, ranked by the merged piece's score
// (highest first), as transformers' SentencePiece conversion does.
std::vector<std::pair<std::string, std::string>> SentencePieceMerges(const Llama2cVocab& vocab);

// Writes `out_dir` (config.json, model.safetensors, tokenizer.json,
// tokenizer_config.json, generation_config.json) atomically: everything goes
// to a temporary sibling directory that is renamed at the end. q/k rows are
// permuted from llama2.c's interleaved rotary pairs to HF's rotate_half order.
Status ConvertLlama2c(const std::string& checkpoint_path, const std::string& tokenizer_path, const std::string& out_dir);

}  // namespace bitlens
