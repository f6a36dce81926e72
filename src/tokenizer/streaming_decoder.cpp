// tokenizer/streaming_decoder: StreamingDecoder (declared in tokenizer.h).
// Each Push decodes a short window of ids and returns the new bytes up to the
// last whole UTF-8 character; a character cut across tokens is held until its
// last byte arrives. Decoders are prefix-stable (decoding ids a,b starts with
// the decoding of a), which is what makes the window valid.
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

namespace bitlens {
namespace {

// Returns the printable part of `bytes` from `from`: whole characters, with
// bytes that can never become valid replaced by U+FFFD. *consumed is set to
// the bytes used; an incomplete character at the end is left unconsumed.
std::string TakeWholeCharacters(std::string_view bytes, size_t from, size_t* consumed) {
  std::string out;
  size_t i = from;
  while (i < bytes.size()) {
    const size_t n = utf8::ValidSequenceLength(bytes, i);
    if (n != 0) {
      out.append(bytes.substr(i, n));
      i += n;
    } else if (utf8::IsIncompleteTail(bytes, i)) {
      break;
    } else {
      out.append("\xEF\xBF\xBD");
      i += utf8::InvalidRunLength(bytes, i);
    }
  }
  *consumed = i;
  return out;
}

}  // namespace

std::string StreamingDecoder::Push(int32_t id) {
  ids_.push_back(id);
  const std::string bytes = tokenizer_.DecodeBytes(ids_);
  if (bytes.size() < emitted_bytes_) {
    // Not expected from the supported decoders; never re-emit text.
    emitted_bytes_ = bytes.size();
    return {};
  }
  size_t consumed = 0;
  std::string text = TakeWholeCharacters(bytes, emitted_bytes_, &consumed);
  emitted_bytes_ = consumed;
  if (consumed == bytes.size() && ids_.size() > 1) {
    // Everything is out: keep only the last id as context for the next one.
    ids_.erase(ids_.begin(), ids_.end() - 1);
    emitted_bytes_ = tokenizer_.DecodeBytes(ids_).size();
  }
  return text;
}

std::string StreamingDecoder::Flush() {
  const std::string bytes = tokenizer_.DecodeBytes(ids_);
  std::string rest = bytes.size() > emitted_bytes_ ? utf8::Sanitize(std::string_view(bytes).substr(emitted_bytes_)) : "";
  ids_.clear();
  emitted_bytes_ = 0;
  return rest;
}

}  // namespace bitlens
