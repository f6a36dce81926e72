// model/synth_tokenizer: the small byte-level BPE tokenizer that `bitlens
// synth` writes beside random weights: 256 byte tokens, merges learned from a
// built-in English text, and the family's special tokens at their real ids,
// as HF tokenizers' tokenizer.json plus transformers' tokenizer_config.json.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"
#include "model/presets.h"

namespace bitlens {

// GPT-2's reversible byte -> printable code point map, as UTF-8 ("Ġ" for ' ').
std::string ByteLevelSymbol(uint8_t byte);

struct ByteLevelBpe {
  std::vector<std::string> tokens;  // 256 byte symbols (in byte order), then merged tokens
  std::vector<std::pair<std::string, std::string>> merges;  // in priority order
};

// Learns merges on `corpus` (split like GPT-2's pre-tokenizer, ASCII only)
// until `num_new_tokens` merged tokens exist. Deterministic: ties go to the
// lexicographically smallest pair. Fails if the corpus runs out of pairs.
Result<ByteLevelBpe> LearnByteLevelBpe(std::string_view corpus, int num_new_tokens);

// The built-in training text.
std::string_view SynthTokenizerCorpus();

// tokenizer.json text. Every id (bytes, merges, specials) must be unique and
// below `vocab_size` (the model's embedding rows).
Result<std::string> SynthTokenizerJson(const SynthTokenizerSpec& spec, int64_t vocab_size);
std::string SynthTokenizerConfigJson(const SynthTokenizerSpec& spec, int64_t model_max_length);

}  // namespace bitlens
