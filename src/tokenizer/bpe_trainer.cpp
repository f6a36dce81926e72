// tokenizer/bpe_trainer: see bpe_trainer.h. Counts the corpus' pre-tokenized
// words once, then merges the most frequent adjacent pair repeatedly, keeping
// pair counts up to date only in the words a merge touches.
#include "tokenizer/bpe_trainer.h"

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include <nlohmann/json.hpp>

#include "tokenizer/byte_level.h"
#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/utf8.h"

namespace bitlens {
namespace {

using Pair = std::pair<int32_t, int32_t>;

uint64_t PairKey(Pair p) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(p.first)) << 32) | static_cast<uint32_t>(p.second);
}
Pair KeyPair(uint64_t key) { return {static_cast<int32_t>(key >> 32), static_cast<int32_t>(key & 0xffffffffu)}; }

struct Word {
  std::vector<int32_t> symbols;  // token ids; starts as one id per byte
  int64_t frequency = 0;
};

Status CheckOptions(const std::vector<std::string>& corpus, const BpeTrainOptions& options) {
  const int min_vocab = 256 + static_cast<int>(options.special_tokens.size());
  if (options.vocab_size < min_vocab) {
    return InvalidArgument("bpe training: vocab_size " + std::to_string(options.vocab_size) +
                           " is smaller than the 256 byte tokens plus " +
                           std::to_string(options.special_tokens.size()) + " special tokens (" +
                           std::to_string(min_vocab) + ")");
  }
  if (options.min_frequency < 1) {
    return InvalidArgument("bpe training: min_frequency must be at least 1, got " +
                           std::to_string(options.min_frequency));
  }
  bool any_text = false;
  for (const auto& line : corpus) any_text = any_text || !line.empty();
  if (!any_text) return InvalidArgument("bpe training: the corpus is empty (no non-empty line)");
  std::unordered_set<std::string> seen;
  for (const auto& s : options.special_tokens) {
    if (s.empty()) return InvalidArgument("bpe training: a special token is empty");
    if (!utf8::IsValid(s)) return InvalidArgument("bpe training: special token '" + s + "' is not valid UTF-8");
    if (!seen.insert(s).second) return InvalidArgument("bpe training: special token '" + s + "' is listed twice");
  }
  return Status::Ok();
}

// The pieces of `line` between occurrences of the special tokens: a special
// token always encodes as itself, so its text must not shape the merges.
std::vector<std::string_view> CutSpecialTokens(std::string_view line, const std::vector<std::string>& specials) {
  std::vector<std::string_view> pieces;
  size_t start = 0;
  size_t pos = 0;
  while (pos < line.size()) {
    // Longest special token starting at pos (as the added-token matcher does).
    size_t match = 0;
    for (const auto& s : specials) {
      if (s.size() > match && line.compare(pos, s.size(), s) == 0) match = s.size();
    }
    if (match == 0) {
      ++pos;
      continue;
    }
    if (pos > start) pieces.push_back(line.substr(start, pos - start));
    pos += match;
    start = pos;
  }
  if (start < line.size()) pieces.push_back(line.substr(start));
  return pieces;
}

class Trainer {
 public:
  explicit Trainer(const BpeTrainOptions& options) : options_(options) {
    for (int b = 0; b < 256; ++b) {
      tokens_.push_back(std::string(1, static_cast<char>(b)));
      token_ids_.emplace(tokens_.back(), b);
    }
  }

  // Splits the corpus like the ByteLevel pre-tokenizer (GPT-2 regex, then the
  // byte spelling) and counts the distinct words.
  Status CountWords(const std::vector<std::string>& corpus) {
    BL_ASSIGN_OR_RETURN(auto pre, MakeByteLevelPreTokenizer(/*add_prefix_space=*/false, /*use_regex=*/true));
    std::unordered_map<std::string, int64_t> counts;
    for (const auto& raw : corpus) {
      // Invalid bytes would become U+FFFD at encode time too (the tokenizer
      // sanitizes its input), so train on the same text.
      const std::string line = utf8::Sanitize(raw);
      for (std::string_view piece : CutSpecialTokens(line, options_.special_tokens)) {
        std::vector<PreToken> words{{std::string(piece), 0}};
        pre->Apply(&words);
        for (auto& w : words) {
          // Back from the byte spelling to raw bytes: symbols are byte ids.
          auto bytes = byte_level::Decode(w.text);
          if (!bytes) return Internal("bpe training: pre-tokenizer produced a word without byte spelling");
          ++counts[*bytes];
        }
      }
    }
    // Sorted so the word order (and so every later step) is independent of
    // the hash map's iteration order.
    std::vector<std::pair<std::string, int64_t>> sorted(counts.begin(), counts.end());
    std::sort(sorted.begin(), sorted.end());
    for (const auto& [bytes, freq] : sorted) {
      Word w;
      w.frequency = freq;
      for (char c : bytes) w.symbols.push_back(static_cast<uint8_t>(c));
      words_.push_back(std::move(w));
    }
    return Status::Ok();
  }

  // Merges until the vocabulary (bytes + merges + specials) is full or no
  // pair is frequent enough.
  void Merge() {
    for (size_t i = 0; i < words_.size(); ++i) AddWordPairs(static_cast<int32_t>(i), +1);
    FlushChanges();
    const size_t max_tokens = static_cast<size_t>(options_.vocab_size) - options_.special_tokens.size();
    while (tokens_.size() < max_tokens && !queue_.empty()) {
      const QueueEntry best = *queue_.begin();
      if (best.count < options_.min_frequency) break;
      const Pair pair = KeyPair(best.pair);
      // Two merges can spell the same bytes ("ab"+"c", "a"+"bc"): they share
      // one id, so every token string stays unique.
      std::string merged = tokens_[pair.first] + tokens_[pair.second];
      auto [it, is_new] = token_ids_.emplace(merged, static_cast<int32_t>(tokens_.size()));
      const int32_t new_id = it->second;
      if (is_new) tokens_.push_back(std::move(merged));
      merges_.push_back(pair);
      // Copy: AddWordPairs below inserts into where_ (possibly this entry).
      const std::vector<int32_t> word_ids(where_[best.pair].begin(), where_[best.pair].end());
      for (int32_t w : word_ids) {
        if (!Contains(words_[w].symbols, pair)) continue;
        AddWordPairs(w, -1);
        ApplyMerge(&words_[w].symbols, pair, new_id);
        AddWordPairs(w, +1);
      }
      where_.erase(best.pair);
      FlushChanges();
    }
  }

  // The tokenizer.json text.
  Result<std::string> ToJson() const {
    using Json = nlohmann::ordered_json;
    Json vocab = Json::object();
    std::unordered_set<std::string> spellings;
    for (size_t id = 0; id < tokens_.size(); ++id) {
      std::string spelled = byte_level::Encode(tokens_[id]);
      spellings.insert(spelled);
      vocab[spelled] = static_cast<int64_t>(id);
    }
    Json added = Json::array();
    for (size_t i = 0; i < options_.special_tokens.size(); ++i) {
      const std::string& s = options_.special_tokens[i];
      if (spellings.count(s) != 0) {
        return InvalidArgument("bpe training: special token '" + s + "' is also a byte or merged token");
      }
      const int64_t id = static_cast<int64_t>(tokens_.size() + i);
      // In the model vocabulary too, so every loader gives it this id.
      vocab[s] = id;
      Json t = Json::object();
      t["id"] = id;
      t["content"] = s;
      t["single_word"] = false;
      t["lstrip"] = false;
      t["rstrip"] = false;
      t["normalized"] = false;
      t["special"] = true;
      added.push_back(std::move(t));
    }
    Json merges = Json::array();
    for (const Pair& m : merges_) {
      merges.push_back(Json::array({byte_level::Encode(tokens_[m.first]), byte_level::Encode(tokens_[m.second])}));
    }
    Json byte_level_step = Json::object();
    byte_level_step["type"] = "ByteLevel";
    byte_level_step["add_prefix_space"] = false;
    byte_level_step["trim_offsets"] = true;
    byte_level_step["use_regex"] = true;

    Json model = Json::object();
    model["type"] = "BPE";
    model["dropout"] = nullptr;
    model["unk_token"] = nullptr;
    model["continuing_subword_prefix"] = nullptr;
    model["end_of_word_suffix"] = nullptr;
    model["fuse_unk"] = false;
    model["byte_fallback"] = false;
    model["ignore_merges"] = false;
    model["vocab"] = std::move(vocab);
    model["merges"] = std::move(merges);

    Json root = Json::object();
    root["version"] = "1.0";
    root["truncation"] = nullptr;
    root["padding"] = nullptr;
    root["added_tokens"] = std::move(added);
    root["normalizer"] = nullptr;
    root["pre_tokenizer"] = byte_level_step;
    root["post_processor"] = nullptr;
    root["decoder"] = byte_level_step;
    root["model"] = std::move(model);
    // Every string is valid UTF-8 (byte spellings, checked special tokens),
    // so dump cannot throw.
    return root.dump(1) + "\n";
  }

 private:
  // Queue order: higher count first; ties by the pair's bytes (left token,
  // then right token, as unsigned bytes).
  struct QueueEntry {
    int64_t count;
    uint64_t pair;
  };
  struct QueueOrder {
    const std::vector<std::string>* tokens;
    bool operator()(const QueueEntry& a, const QueueEntry& b) const {
      if (a.count != b.count) return a.count > b.count;
      const Pair pa = KeyPair(a.pair);
      const Pair pb = KeyPair(b.pair);
      const int left = (*tokens)[pa.first].compare((*tokens)[pb.first]);
      if (left != 0) return left < 0;
      return (*tokens)[pa.second] < (*tokens)[pb.second];
    }
  };

  static bool Contains(const std::vector<int32_t>& s, Pair p) {
    for (size_t i = 0; i + 1 < s.size(); ++i) {
      if (s[i] == p.first && s[i + 1] == p.second) return true;
    }
    return false;
  }

  // Replaces non-overlapping occurrences of `p`, leftmost first (as the BPE
  // model applies a merge at encode time).
  static void ApplyMerge(std::vector<int32_t>* s, Pair p, int32_t id) {
    std::vector<int32_t> out;
    out.reserve(s->size());
    for (size_t i = 0; i < s->size(); ++i) {
      if (i + 1 < s->size() && (*s)[i] == p.first && (*s)[i + 1] == p.second) {
        out.push_back(id);
        ++i;
      } else {
        out.push_back((*s)[i]);
      }
    }
    *s = std::move(out);
  }

  // Adds (sign +1) or removes (-1) the word's adjacent pairs, weighted by its
  // frequency, into the pending count changes.
  void AddWordPairs(int32_t w, int sign) {
    const Word& word = words_[w];
    for (size_t i = 0; i + 1 < word.symbols.size(); ++i) {
      const uint64_t key = PairKey({word.symbols[i], word.symbols[i + 1]});
      changes_[key] += sign * word.frequency;
      if (sign > 0) where_[key].insert(w);
    }
  }

  // Applies the pending changes to the counts and the ordered queue.
  void FlushChanges() {
    for (const auto& [key, delta] : changes_) {
      if (delta == 0) continue;
      int64_t& count = counts_[key];
      if (count > 0) queue_.erase(QueueEntry{count, key});
      count += delta;
      if (count > 0) {
        queue_.insert(QueueEntry{count, key});
      } else {
        counts_.erase(key);
      }
    }
    changes_.clear();
  }

  const BpeTrainOptions& options_;
  std::vector<std::string> tokens_;  // raw bytes of each token, by id
  std::unordered_map<std::string, int32_t> token_ids_;
  std::vector<Pair> merges_;         // in rank order
  std::vector<Word> words_;
  std::unordered_map<uint64_t, int64_t> counts_;
  std::unordered_map<uint64_t, int64_t> changes_;
  // Words that contained the pair at some point (may be stale: checked).
  std::unordered_map<uint64_t, std::set<int32_t>> where_;
  std::set<QueueEntry, QueueOrder> queue_{QueueOrder{&tokens_}};
};

}  // namespace

Result<std::string> TrainByteLevelBpe(const std::vector<std::string>& corpus, const BpeTrainOptions& options) {
  BL_TRY(CheckOptions(corpus, options));
  Trainer trainer(options);
  BL_TRY(trainer.CountWords(corpus));
  trainer.Merge();
  return trainer.ToJson();
}

}  // namespace bitlens
