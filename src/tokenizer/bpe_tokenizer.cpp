// tokenizer/bpe_tokenizer: see bpe_tokenizer.h.
#include "tokenizer/bpe_tokenizer.h"

#include <algorithm>

#include "tokenizer/utf8.h"

namespace bitlens {

void BpeTokenizer::EncodePlain(std::string text, bool at_start, std::vector<int32_t>* ids) const {
  if (text.empty()) return;
  std::vector<PreToken> pieces;
  pieces.push_back({std::move(text), at_start});
  if (parts_.pre_tokenizer) parts_.pre_tokenizer->Apply(&pieces);
  for (const auto& p : pieces) parts_.model.EncodeWord(p.text, ids);
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
    const bool at_start = seg.begin == 0;
    if (!parts_.added.has_normalized()) {
      EncodePlain(std::move(piece), at_start, &ids);
      continue;
    }
    for (const auto& sub : parts_.added.Split(piece, /*normalized=*/true)) {
      if (sub.id >= 0) {
        ids.push_back(sub.id);
      } else {
        EncodePlain(piece.substr(sub.begin, sub.end - sub.begin), at_start && sub.begin == 0, &ids);
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
