// tokenizer/bpe_tokenizer: see bpe_tokenizer.h.
#include "tokenizer/bpe_tokenizer.h"

#include <algorithm>

#include "tokenizer/utf8.h"

namespace bitlens {

void BpeTokenizer::EncodePlain(std::string text, size_t origin_zero, std::vector<int32_t>* ids) const {
  if (text.empty()) return;
  std::vector<PreToken> pieces;
  pieces.push_back({std::move(text), origin_zero});
  if (parts_.pre_tokenizer) parts_.pre_tokenizer->Apply(&pieces);
  for (const auto& p : pieces) parts_.model.EncodeWord(p.text, ids);
}

size_t BpeTokenizer::FirstCharacterSpan(std::string_view input, std::string_view normalized) const {
  if (input.empty() || normalized.empty()) return 0;
  const size_t n = utf8::ValidSequenceLength(input, 0);
  std::string first(input.substr(0, n == 0 ? 1 : n));
  if (parts_.normalizer) parts_.normalizer->Apply(&first);
  if (!first.empty() && normalized.compare(0, first.size(), first) == 0) return first.size();
  // Normalized in context differently (e.g. composed with what follows):
  // at least the first character comes from offset 0.
  const size_t m = utf8::ValidSequenceLength(normalized, 0);
  return m == 0 ? 1 : m;
}

std::vector<int32_t> BpeTokenizer::Encode(std::string_view text, bool add_bos) const {
  std::vector<int32_t> ids;
  if (add_bos && bos_id_) ids.push_back(*bos_id_);
  // HF works on Rust strings, which are valid UTF-8 by construction; invalid
  // input bytes become U+FFFD first, as Python's decode(errors="replace") would.
  const std::string clean = utf8::Sanitize(text);
  for (const auto& seg : parts_.added.Split(clean, /*normalized=*/false)) {
    if (seg.id >= 0) {
      ids.push_back(seg.id);
      continue;
    }
    std::string piece = clean.substr(seg.begin, seg.end - seg.begin);
    if (parts_.normalizer) parts_.normalizer->Apply(&piece);
    const size_t origin_zero = seg.begin == 0 ? FirstCharacterSpan(clean, piece) : 0;
    if (!parts_.added.has_normalized()) {
      EncodePlain(std::move(piece), origin_zero, &ids);
      continue;
    }
    for (const auto& sub : parts_.added.Split(piece, /*normalized=*/true)) {
      if (sub.id >= 0) {
        ids.push_back(sub.id);
      } else {
        const size_t sub_zero = sub.begin < origin_zero ? std::min(sub.end, origin_zero) - sub.begin : 0;
        EncodePlain(piece.substr(sub.begin, sub.end - sub.begin), sub_zero, &ids);
      }
    }
  }
  return ids;
}

std::string BpeTokenizer::DecodeImpl(std::span<const int32_t> ids, bool raw) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int32_t id : ids) {
    if (const AddedToken* t = parts_.added.FindById(id)) {
      tokens.push_back(t->content);
    } else if (const std::string* s = parts_.model.IdToToken(id)) {
      tokens.push_back(*s);
    }
    // Unknown ids are skipped, as HF does.
  }
  std::string text;
  if (parts_.decoder) {
    parts_.decoder->Apply(&tokens, raw);
    for (const auto& t : tokens) text += t;
  } else {
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (i != 0) text += ' ';
      text += tokens[i];
    }
  }
  return raw ? text : utf8::Sanitize(text);
}

std::string BpeTokenizer::Decode(const std::vector<int32_t>& ids) const { return DecodeImpl(ids, false); }
std::string BpeTokenizer::DecodeBytes(std::span<const int32_t> ids) const { return DecodeImpl(ids, true); }

int32_t BpeTokenizer::vocab_size() const {
  int32_t limit = parts_.model.id_limit();
  for (const auto& t : parts_.added.tokens()) limit = std::max(limit, t.id + 1);
  return limit;
}

std::optional<int32_t> BpeTokenizer::TokenId(std::string_view token) const {
  if (const AddedToken* t = parts_.added.FindByContent(token)) return t->id;
  return parts_.model.TokenToId(token);
}

}  // namespace bitlens
