// tokenizer/bpe_trainer: trains a byte-level BPE tokenizer (GPT-2 style byte
// alphabet and pre-tokenizer) on a text corpus and writes it as a Hugging
// Face tokenizer.json that both tokenizer/ and HF `tokenizers` load.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"

namespace bitlens {

struct BpeTrainOptions {
  int vocab_size = 1024;  // 256 byte tokens + merges + special tokens
  int min_frequency = 2;  // a pair seen fewer times is never merged
  // Added as special tokens after the merges, in this order (ids follow).
  std::vector<std::string> special_tokens = {"<s>", "</s>", "<unk>", "<pad>", "<image>"};
};

// The tokenizer.json text. Deterministic: ties between equally frequent pairs
// break by the pair's byte order.
Result<std::string> TrainByteLevelBpe(const std::vector<std::string>& corpus, const BpeTrainOptions& options);

}  // namespace bitlens
