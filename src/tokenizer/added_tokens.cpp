// tokenizer/added_tokens: see added_tokens.h.
#include "tokenizer/added_tokens.h"

#include <algorithm>

#include "tokenizer/utf8.h"

namespace bitlens {
namespace {

// Unicode White_Space (Rust's char::is_whitespace), which lstrip/rstrip eat.
bool IsWhitespace(uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F ||
         cp == 0x3000;
}

// Code point ending at byte `end` (exclusive) and its start.
uint32_t CodePointBefore(std::string_view s, size_t end, size_t* start) {
  size_t i = end - 1;
  while (i > 0 && (static_cast<uint8_t>(s[i]) & 0xC0) == 0x80) --i;
  *start = i;
  const size_t n = utf8::ValidSequenceLength(s, i);
  return n == 0 ? 0xFFFD : utf8::DecodeAt(s, i, n);
}

uint32_t CodePointAt(std::string_view s, size_t i, size_t* len) {
  const size_t n = utf8::ValidSequenceLength(s, i);
  *len = n == 0 ? 1 : n;
  return n == 0 ? 0xFFFD : utf8::DecodeAt(s, i, n);
}

// single_word: the match must not touch a word character on either side.
bool IsWordChar(uint32_t cp) {
  return (cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') || cp == '_' || cp >= 0x80;
}

}  // namespace

void AddedVocabulary::Add(AddedToken token) {
  if (token.content.empty()) return;  // an empty token would match everywhere
  if (auto it = by_content_.find(token.content); it != by_content_.end()) {
    // Same content, same bucket position: only the id and options change.
    AddedToken& old = tokens_[it->second];
    by_id_.erase(old.id);
    old = std::move(token);
    by_id_[old.id] = it->second;
    has_normalized_ = std::any_of(tokens_.begin(), tokens_.end(), [](const AddedToken& t) { return t.normalized; });
    return;
  }
  const size_t index = tokens_.size();
  by_content_[token.content] = index;
  by_id_[token.id] = index;
  has_normalized_ = has_normalized_ || token.normalized;
  const size_t length = token.content.size();
  auto& bucket = by_first_byte_[static_cast<uint8_t>(token.content[0])];
  tokens_.push_back(std::move(token));
  // Longest first; equal lengths keep their order (binary search, so many
  // thousands of added tokens still load quickly).
  auto pos = std::upper_bound(bucket.begin(), bucket.end(), length,
                              [&](size_t len, size_t other) { return len > tokens_[other].content.size(); });
  bucket.insert(pos, index);
}

const AddedToken* AddedVocabulary::FindById(int32_t id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &tokens_[it->second];
}

const AddedToken* AddedVocabulary::FindByContent(std::string_view content) const {
  auto it = by_content_.find(std::string(content));
  return it == by_content_.end() ? nullptr : &tokens_[it->second];
}

std::vector<AddedVocabulary::Segment> AddedVocabulary::Split(std::string_view text, bool normalized) const {
  std::vector<Segment> out;
  size_t text_start = 0;  // start of the pending plain-text segment
  size_t i = 0;
  while (i < text.size()) {
    const AddedToken* found = nullptr;
    for (size_t index : by_first_byte_[static_cast<uint8_t>(text[i])]) {
      const AddedToken& t = tokens_[index];
      if (t.normalized != normalized || text.compare(i, t.content.size(), t.content) != 0) continue;
      if (t.single_word) {
        size_t start = 0, len = 0;
        const bool left_ok = i == 0 || !IsWordChar(CodePointBefore(text, i, &start));
        const size_t end = i + t.content.size();
        const bool right_ok = end == text.size() || !IsWordChar(CodePointAt(text, end, &len));
        if (!left_ok || !right_ok) continue;
      }
      found = &t;
      break;
    }
    if (found == nullptr) {
      ++i;
      continue;
    }
    size_t begin = i;
    size_t end = i + found->content.size();
    if (found->lstrip) {
      size_t start = 0;
      while (begin > text_start && IsWhitespace(CodePointBefore(text, begin, &start))) begin = start;
    }
    if (found->rstrip) {
      size_t len = 0;
      while (end < text.size() && IsWhitespace(CodePointAt(text, end, &len))) end += len;
    }
    if (begin > text_start) out.push_back({text_start, begin, -1});
    out.push_back({begin, end, found->id});
    text_start = end;
    i = end;
  }
  if (text_start < text.size()) out.push_back({text_start, text.size(), -1});
  return out;
}

}  // namespace bitlens
