// tokenizer/bpe_model: the BPE model of HF tokenizers: a vocabulary, ranked
// merges, and the word -> ids algorithm (lowest-rank pair first, leftmost on
// ties, O(n log n) with a heap over a linked list of symbols), with byte
// fallback (<0xXX> tokens), unknown-token fusing and ignore_merges.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/status.h"

namespace bitlens {

class BpeModel {
 public:
  struct Options {
    std::optional<std::string> unk_token;
    bool fuse_unk = false;
    bool byte_fallback = false;
    bool ignore_merges = false;
    std::string continuing_subword_prefix;
    std::string end_of_word_suffix;
  };

  BpeModel() = default;

  // `vocab` pairs token -> id; `merges` lists pairs in rank order. `where`
  // names the source for messages (e.g. "tokenizer.json: model").
  // Fails when an id is negative or huge, a merge names a token missing from
  // the vocab, or a merge result is not in the vocab.
  static Result<BpeModel> Build(std::vector<std::pair<std::string, int32_t>> vocab,
                                const std::vector<std::pair<std::string, std::string>>& merges,
                                Options options, const std::string& where);

  // Appends the ids of one pre-tokenized word (valid UTF-8).
  void EncodeWord(std::string_view word, std::vector<int32_t>* ids) const;

  std::optional<int32_t> TokenToId(std::string_view token) const;
  // The token string of `id`, or nullptr when no token has that id.
  const std::string* IdToToken(int32_t id) const;
  // One past the largest id in the vocabulary.
  int32_t id_limit() const { return static_cast<int32_t>(id_to_token_.size()); }

 private:
  // Open-addressing tables (linear probing, power-of-two sizes): a 200k-token
  // vocabulary builds and probes several times faster than with node-based maps.
  struct TokenSlot {
    uint32_t hash;
    int32_t id;  // -1: empty
  };
  struct MergeSlot {
    uint64_t pair;  // kNoPair: empty
    int32_t rank;
    int32_t result_id;
  };
  static constexpr uint64_t kNoPair = ~uint64_t{0};

  static uint64_t PairKey(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  int32_t FindToken(std::string_view token) const;
  void InsertToken(int32_t id);
  const MergeSlot* FindMerge(int32_t a, int32_t b) const;
  void InsertMerge(uint64_t pair, int32_t rank, int32_t result_id);
  // Id of one symbol of the initial split (a character, with the subword
  // prefix/suffix applied as the position requires), or -1.
  int32_t SymbolId(std::string_view ch, bool first, bool last) const;

  std::vector<std::string> id_to_token_;
  std::vector<bool> has_token_;
  std::vector<TokenSlot> token_slots_;
  std::vector<MergeSlot> merge_slots_;
  size_t merge_count_ = 0;
  // Single code point tokens, the common case for the first split: a direct
  // table for the Basic Multilingual Plane, a map above it.
  std::vector<int32_t> bmp_char_ids_;
  std::unordered_map<uint32_t, int32_t> astral_char_ids_;
  std::array<int32_t, 256> byte_ids_{};  // id of "<0xXX>" or -1
  int32_t unk_id_ = -1;
  Options options_;
};

}  // namespace bitlens
