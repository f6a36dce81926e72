// tokenizer/spm_tokenizer: see spm_tokenizer.h.
#include "tokenizer/spm_tokenizer.h"

#include <algorithm>

#include "tokenizer/utf8.h"

namespace bitlens {
namespace {

constexpr char kSpace[] = "\xE2\x96\x81";  // U+2581, SentencePiece's space

}  // namespace

Result<std::unique_ptr<SpmTokenizer>> SpmTokenizer::Load(const std::string& path, AddedVocabulary added) {
  auto t = std::make_unique<SpmTokenizer>();
  const auto status = t->sp_.Load(path);
  if (!status.ok()) return InvalidArgument(path + ": not a SentencePiece model (" + status.ToString() + ")");
  t->added_ = std::move(added);
  return t;
}

std::vector<int32_t> SpmTokenizer::Encode(std::string_view text, bool add_bos) const {
  std::vector<int32_t> ids;
  if (add_bos && bos_id_) ids.push_back(*bos_id_);
  const std::string clean = utf8::Sanitize(text);
  std::vector<int> piece_ids;
  for (const auto& seg : added_.Split(clean, /*normalized=*/false)) {
    if (seg.id >= 0) {
      ids.push_back(seg.id);
      continue;
    }
    piece_ids.clear();
    if (sp_.Encode(std::string_view(clean).substr(seg.begin, seg.end - seg.begin), &piece_ids).ok()) {
      ids.insert(ids.end(), piece_ids.begin(), piece_ids.end());
    }
  }
  return ids;
}

std::string SpmTokenizer::DecodeRunRaw(std::span<const int32_t> ids, bool first) const {
  std::string out;
  for (int32_t id : ids) {
    if (sp_.IsByte(id)) {
      // "<0xAB>"
      const std::string piece = sp_.IdToPiece(id);
      out.push_back(static_cast<char>(std::strtol(piece.substr(3, 2).c_str(), nullptr, 16)));
    } else if (sp_.IsUnknown(id)) {
      out += " \xE2\x81\x87 ";  // SentencePiece's default unknown surface " ⁇ "
    } else {
      const std::string& piece = sp_.IdToPiece(id);
      size_t prev = 0;
      for (size_t p = piece.find(kSpace); p != std::string::npos; p = piece.find(kSpace, prev)) {
        out.append(piece, prev, p - prev);
        out.push_back(' ');
        prev = p + 3;
      }
      out.append(piece, prev, std::string::npos);
    }
  }
  if (first && !out.empty() && out[0] == ' ') out.erase(0, 1);
  return out;
}

std::string SpmTokenizer::DecodeImpl(std::span<const int32_t> ids, bool raw) const {
  std::string out;
  size_t i = 0;
  bool first = true;
  while (i < ids.size()) {
    const int32_t id = ids[i];
    const AddedToken* added = added_.FindById(id);
    const bool in_model = id >= 0 && id < sp_.GetPieceSize();
    if (added != nullptr || !in_model || sp_.IsControl(id)) {
      // Special and added tokens are rendered as written; unknown ids skipped.
      if (added != nullptr) {
        out += added->content;
      } else if (in_model) {
        out += sp_.IdToPiece(id);
      }
      first = false;
      ++i;
      continue;
    }
    size_t j = i;
    while (j < ids.size() && ids[j] >= 0 && ids[j] < sp_.GetPieceSize() && !sp_.IsControl(ids[j]) &&
           added_.FindById(ids[j]) == nullptr) {
      ++j;
    }
    const auto run = ids.subspan(i, j - i);
    if (raw) {
      out += DecodeRunRaw(run, first);
    } else {
      std::string text;
      std::vector<int> run_ids(run.begin(), run.end());
      if (!sp_.Decode(run_ids, &text).ok()) text = utf8::Sanitize(DecodeRunRaw(run, first));
      // SentencePiece drops the leading space of every run; only the first
      // run of the sequence should lose it.
      if (!first && sp_.IdToPiece(run[0]).rfind(kSpace, 0) == 0) text = " " + text;
      out += text;
    }
    first = false;
    i = j;
  }
  return raw ? out : utf8::Sanitize(out);
}

std::string SpmTokenizer::Decode(const std::vector<int32_t>& ids) const { return DecodeImpl(ids, false); }
std::string SpmTokenizer::DecodeBytes(std::span<const int32_t> ids) const { return DecodeImpl(ids, true); }

int32_t SpmTokenizer::vocab_size() const {
  int32_t limit = sp_.GetPieceSize();
  for (const auto& t : added_.tokens()) limit = std::max(limit, t.id + 1);
  return limit;
}

std::optional<int32_t> SpmTokenizer::TokenId(std::string_view token) const {
  if (const AddedToken* t = added_.FindByContent(token)) return t->id;
  const int id = sp_.PieceToId(token);
  // PieceToId answers unk for anything unknown; only the unk piece itself maps to it.
  if (id == sp_.unk_id() && sp_.IdToPiece(id) != token) return std::nullopt;
  return id;
}

}  // namespace bitlens
