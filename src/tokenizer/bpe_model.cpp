// tokenizer/bpe_model: see bpe_model.h. The merge loop follows the order HF
// tokenizers defines (Word::merge_all): pop the lowest (rank, position) pair,
// skip it when its symbols changed since it was queued, merge, queue the two
// new neighbour pairs.
#include "tokenizer/bpe_model.h"

#include <cstdio>
#include <queue>

#include "tokenizer/utf8.h"

namespace bitlens {
namespace {

// Ids above this are rejected: a hostile file must not make us allocate a
// table of billions of entries.
constexpr int64_t kMaxId = 1 << 24;

struct QueuedMerge {
  int32_t rank;
  int32_t pos;
  int32_t result_id;
  bool operator>(const QueuedMerge& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
};

struct Symbol {
  int32_t id;
  int32_t prev;
  int32_t next;
  bool alive;
};

}  // namespace

Result<BpeModel> BpeModel::Build(std::vector<std::pair<std::string, int32_t>> vocab,
                                 const std::vector<std::pair<std::string, std::string>>& merges,
                                 Options options, const std::string& where) {
  BpeModel m;
  m.options_ = std::move(options);
  int64_t limit = 0;
  for (const auto& [token, id] : vocab) {
    if (id < 0 || id >= kMaxId) {
      return InvalidArgument(where + ".vocab: token '" + token + "' has id " + std::to_string(id) +
                             ", outside 0.." + std::to_string(kMaxId - 1));
    }
    limit = std::max<int64_t>(limit, int64_t{id} + 1);
  }
  m.id_to_token_.resize(static_cast<size_t>(limit));
  m.has_token_.assign(static_cast<size_t>(limit), false);
  for (auto& [token, id] : vocab) {
    if (m.has_token_[id]) {
      return InvalidArgument(where + ".vocab: tokens '" + m.id_to_token_[id] + "' and '" + token + "' share id " +
                             std::to_string(id));
    }
    m.id_to_token_[id] = std::move(token);
    m.has_token_[id] = true;
  }
  size_t capacity = 16;
  while (capacity < vocab.size() * 2) capacity *= 2;
  m.token_slots_.assign(capacity, TokenSlot{0, -1});
  const bool plain_chars = m.options_.continuing_subword_prefix.empty() && m.options_.end_of_word_suffix.empty();
  if (plain_chars) m.bmp_char_ids_.assign(0x10000, -1);
  for (int32_t id = 0; id < static_cast<int32_t>(limit); ++id) {
    if (!m.has_token_[id]) continue;
    m.InsertToken(id);
    const std::string& token = m.id_to_token_[id];
    if (plain_chars) {
      const size_t n = utf8::ValidSequenceLength(token, 0);
      if (n != 0 && n == token.size()) {
        const uint32_t cp = utf8::DecodeAt(token, 0, n);
        if (cp < 0x10000) {
          m.bmp_char_ids_[cp] = id;
        } else {
          m.astral_char_ids_[cp] = id;
        }
      }
    }
  }
  m.byte_ids_.fill(-1);
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    m.byte_ids_[b] = m.FindToken(name);
  }
  if (m.options_.unk_token) {
    m.unk_id_ = m.FindToken(*m.options_.unk_token);
    if (m.unk_id_ < 0) {
      return InvalidArgument(where + ".unk_token: '" + *m.options_.unk_token + "' is not in the vocab");
    }
  }
  const size_t prefix_len = m.options_.continuing_subword_prefix.size();
  size_t merge_capacity = 16;
  while (merge_capacity < merges.size() * 2) merge_capacity *= 2;
  m.merge_slots_.assign(merge_capacity, MergeSlot{kNoPair, 0, 0});
  std::string merged;
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const std::string& a = merges[rank].first;
    const std::string& b = merges[rank].second;
    auto at = [&] { return where + ".merges[" + std::to_string(rank) + "] ('" + a + " " + b + "')"; };
    const int32_t ia = m.FindToken(a);
    if (ia < 0) return InvalidArgument(at() + ": token '" + a + "' is not in the vocab");
    const int32_t ib = m.FindToken(b);
    if (ib < 0) return InvalidArgument(at() + ": token '" + b + "' is not in the vocab");
    merged.assign(a);
    if (prefix_len != 0 && b.compare(0, prefix_len, m.options_.continuing_subword_prefix) == 0) {
      merged.append(b, prefix_len, std::string::npos);
    } else {
      merged += b;
    }
    const int32_t ir = m.FindToken(merged);
    if (ir < 0) return InvalidArgument(at() + ": the merged token '" + merged + "' is not in the vocab");
    // A later duplicate of a pair replaces the earlier one, as in HF.
    m.InsertMerge(PairKey(ia, ib), static_cast<int32_t>(rank), ir);
  }
  return m;
}

namespace {

uint32_t HashToken(std::string_view s) {
  // FNV-1a: short keys, cheap, and good enough with the power-of-two mask
  // after a final avalanche.
  uint32_t h = 2166136261u;
  for (char c : s) h = (h ^ static_cast<uint8_t>(c)) * 16777619u;
  h ^= h >> 15;
  h *= 0x2c1b3c6dU;
  h ^= h >> 12;
  return h;
}

size_t HashPair(uint64_t pair) {
  // splitmix64 finalizer
  pair ^= pair >> 30;
  pair *= 0xbf58476d1ce4e5b9ULL;
  pair ^= pair >> 27;
  pair *= 0x94d049bb133111ebULL;
  pair ^= pair >> 31;
  return static_cast<size_t>(pair);
}

}  // namespace

int32_t BpeModel::FindToken(std::string_view token) const {
  if (token_slots_.empty()) return -1;
  const uint32_t h = HashToken(token);
  const size_t mask = token_slots_.size() - 1;
  for (size_t i = h & mask;; i = (i + 1) & mask) {
    const TokenSlot& slot = token_slots_[i];
    if (slot.id < 0) return -1;
    if (slot.hash == h && id_to_token_[slot.id] == token) return slot.id;
  }
}

void BpeModel::InsertToken(int32_t id) {
  const uint32_t h = HashToken(id_to_token_[id]);
  const size_t mask = token_slots_.size() - 1;
  size_t i = h & mask;
  while (token_slots_[i].id >= 0) i = (i + 1) & mask;
  token_slots_[i] = TokenSlot{h, id};
}

const BpeModel::MergeSlot* BpeModel::FindMerge(int32_t a, int32_t b) const {
  if (merge_count_ == 0) return nullptr;
  const uint64_t pair = PairKey(a, b);
  const size_t mask = merge_slots_.size() - 1;
  for (size_t i = HashPair(pair) & mask;; i = (i + 1) & mask) {
    const MergeSlot& slot = merge_slots_[i];
    if (slot.pair == pair) return &slot;
    if (slot.pair == kNoPair) return nullptr;
  }
}

void BpeModel::InsertMerge(uint64_t pair, int32_t rank, int32_t result_id) {
  const size_t mask = merge_slots_.size() - 1;
  size_t i = HashPair(pair) & mask;
  while (merge_slots_[i].pair != kNoPair && merge_slots_[i].pair != pair) i = (i + 1) & mask;
  if (merge_slots_[i].pair == kNoPair) ++merge_count_;
  merge_slots_[i] = MergeSlot{pair, rank, result_id};
}

std::optional<int32_t> BpeModel::TokenToId(std::string_view token) const {
  const int32_t id = FindToken(token);
  if (id < 0) return std::nullopt;
  return id;
}

const std::string* BpeModel::IdToToken(int32_t id) const {
  if (id < 0 || id >= id_limit() || !has_token_[id]) return nullptr;
  return &id_to_token_[id];
}

int32_t BpeModel::SymbolId(std::string_view ch, bool first, bool last) const {
  const Options& o = options_;
  if (o.continuing_subword_prefix.empty() && o.end_of_word_suffix.empty()) {
    const uint32_t cp = utf8::DecodeAt(ch, 0, ch.size());
    if (cp < 0x10000) return bmp_char_ids_[cp];
    auto it = astral_char_ids_.find(cp);
    return it == astral_char_ids_.end() ? -1 : it->second;
  }
  std::string s;
  if (!first) s = o.continuing_subword_prefix;
  s.append(ch);
  if (last) s += o.end_of_word_suffix;
  return FindToken(s);
}

void BpeModel::EncodeWord(std::string_view word, std::vector<int32_t>* ids) const {
  if (word.empty()) return;
  if (options_.ignore_merges) {
    if (const int32_t id = FindToken(word); id >= 0) {
      ids->push_back(id);
      return;
    }
  }
  // Initial split into characters (or byte tokens / unk).
  std::vector<Symbol> symbols;
  symbols.reserve(word.size());
  bool prev_unk = false;
  for (size_t i = 0; i < word.size();) {
    size_t n = utf8::ValidSequenceLength(word, i);
    if (n == 0) n = 1;  // callers pass valid UTF-8; never loop forever on bad bytes
    const std::string_view ch = word.substr(i, n);
    const int32_t id = SymbolId(ch, i == 0, i + n == word.size());
    i += n;
    if (id >= 0) {
      symbols.push_back({id, 0, 0, true});
      prev_unk = false;
      continue;
    }
    if (options_.byte_fallback) {
      bool all = true;
      for (char c : ch) all = all && byte_ids_[static_cast<uint8_t>(c)] >= 0;
      if (all) {
        for (char c : ch) symbols.push_back({byte_ids_[static_cast<uint8_t>(c)], 0, 0, true});
        prev_unk = false;
        continue;
      }
    }
    if (unk_id_ >= 0) {
      if (!(options_.fuse_unk && prev_unk)) symbols.push_back({unk_id_, 0, 0, true});
      prev_unk = true;
    }
    // Without an unk token the character is dropped, as HF does.
  }
  const int32_t count = static_cast<int32_t>(symbols.size());
  for (int32_t i = 0; i < count; ++i) {
    symbols[i].prev = i - 1;
    symbols[i].next = (i + 1 < count) ? i + 1 : -1;
  }
  if (count > 1 && merge_count_ != 0) {
    std::priority_queue<QueuedMerge, std::vector<QueuedMerge>, std::greater<QueuedMerge>> queue;
    auto enqueue = [&](int32_t pos) {
      const int32_t next = symbols[pos].next;
      if (next < 0) return;
      if (const MergeSlot* m = FindMerge(symbols[pos].id, symbols[next].id)) queue.push({m->rank, pos, m->result_id});
    };
    for (int32_t i = 0; i + 1 < count; ++i) enqueue(i);
    while (!queue.empty()) {
      const QueuedMerge top = queue.top();
      queue.pop();
      Symbol& left = symbols[top.pos];
      if (!left.alive || left.next < 0) continue;
      Symbol& right = symbols[left.next];
      const MergeSlot* m = FindMerge(left.id, right.id);
      if (m == nullptr || m->result_id != top.result_id) continue;  // stale entry
      left.id = top.result_id;
      right.alive = false;
      left.next = right.next;
      if (right.next >= 0) symbols[right.next].prev = top.pos;
      if (left.prev >= 0) enqueue(left.prev);
      enqueue(top.pos);
    }
  }
  for (int32_t i = 0; i >= 0 && i < count; i = symbols[i].next) ids->push_back(symbols[i].id);
}

}  // namespace bitlens
