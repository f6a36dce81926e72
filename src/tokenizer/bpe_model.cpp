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
  m.vocab_.reserve(vocab.size());
  const bool plain_chars = m.options_.continuing_subword_prefix.empty() && m.options_.end_of_word_suffix.empty();
  for (int32_t id = 0; id < static_cast<int32_t>(limit); ++id) {
    if (!m.has_token_[id]) continue;
    const std::string& token = m.id_to_token_[id];
    m.vocab_[token] = id;
    if (plain_chars) {
      const size_t n = utf8::ValidSequenceLength(token, 0);
      if (n != 0 && n == token.size()) m.char_ids_[utf8::DecodeAt(token, 0, n)] = id;
    }
  }
  m.byte_ids_.fill(-1);
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    if (auto it = m.vocab_.find(std::string_view(name)); it != m.vocab_.end()) m.byte_ids_[b] = it->second;
  }
  if (m.options_.unk_token) {
    auto it = m.vocab_.find(*m.options_.unk_token);
    if (it == m.vocab_.end()) {
      return InvalidArgument(where + ".unk_token: '" + *m.options_.unk_token + "' is not in the vocab");
    }
    m.unk_id_ = it->second;
  }
  const size_t prefix_len = m.options_.continuing_subword_prefix.size();
  m.merges_.reserve(merges.size());
  std::string merged;
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const std::string& a = merges[rank].first;
    const std::string& b = merges[rank].second;
    auto at = [&] { return where + ".merges[" + std::to_string(rank) + "] ('" + a + " " + b + "')"; };
    auto ia = m.vocab_.find(a);
    if (ia == m.vocab_.end()) return InvalidArgument(at() + ": token '" + a + "' is not in the vocab");
    auto ib = m.vocab_.find(b);
    if (ib == m.vocab_.end()) return InvalidArgument(at() + ": token '" + b + "' is not in the vocab");
    merged.assign(a);
    if (prefix_len != 0 && b.compare(0, prefix_len, m.options_.continuing_subword_prefix) == 0) {
      merged.append(b, prefix_len, std::string::npos);
    } else {
      merged += b;
    }
    auto ir = m.vocab_.find(merged);
    if (ir == m.vocab_.end()) return InvalidArgument(at() + ": the merged token '" + merged + "' is not in the vocab");
    // A later duplicate of a pair replaces the earlier one, as in HF.
    m.merges_[PairKey(ia->second, ib->second)] = MergeRule{static_cast<int32_t>(rank), ir->second};
  }
  return m;
}

std::optional<int32_t> BpeModel::TokenToId(std::string_view token) const {
  auto it = vocab_.find(token);
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

const std::string* BpeModel::IdToToken(int32_t id) const {
  if (id < 0 || id >= id_limit() || !has_token_[id]) return nullptr;
  return &id_to_token_[id];
}

int32_t BpeModel::SymbolId(std::string_view ch, bool first, bool last) const {
  const Options& o = options_;
  if (o.continuing_subword_prefix.empty() && o.end_of_word_suffix.empty()) {
    auto it = char_ids_.find(utf8::DecodeAt(ch, 0, ch.size()));
    return it == char_ids_.end() ? -1 : it->second;
  }
  std::string s;
  if (!first) s = o.continuing_subword_prefix;
  s.append(ch);
  if (last) s += o.end_of_word_suffix;
  auto it = vocab_.find(s);
  return it == vocab_.end() ? -1 : it->second;
}

void BpeModel::EncodeWord(std::string_view word, std::vector<int32_t>* ids) const {
  if (word.empty()) return;
  if (options_.ignore_merges) {
    if (auto it = vocab_.find(word); it != vocab_.end()) {
      ids->push_back(it->second);
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
  if (count > 1 && !merges_.empty()) {
    std::priority_queue<QueuedMerge, std::vector<QueuedMerge>, std::greater<QueuedMerge>> queue;
    auto enqueue = [&](int32_t pos) {
      const int32_t next = symbols[pos].next;
      if (next < 0) return;
      auto it = merges_.find(PairKey(symbols[pos].id, symbols[next].id));
      if (it != merges_.end()) queue.push({it->second.rank, pos, it->second.result_id});
    };
    for (int32_t i = 0; i + 1 < count; ++i) enqueue(i);
    while (!queue.empty()) {
      const QueuedMerge top = queue.top();
      queue.pop();
      Symbol& left = symbols[top.pos];
      if (!left.alive || left.next < 0) continue;
      Symbol& right = symbols[left.next];
      auto it = merges_.find(PairKey(left.id, right.id));
      if (it == merges_.end() || it->second.result_id != top.result_id) continue;  // stale entry
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
