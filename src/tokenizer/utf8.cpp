// tokenizer/utf8: see utf8.h.
#include "tokenizer/utf8.h"

namespace bitlens::utf8 {
namespace {

// Allowed range of the second byte for a given lead byte (Unicode Table 3-7);
// later continuation bytes are always 0x80..0xBF.
bool SecondByteOk(uint8_t lead, uint8_t b) {
  if (lead == 0xE0) return b >= 0xA0 && b <= 0xBF;
  if (lead == 0xED) return b >= 0x80 && b <= 0x9F;
  if (lead == 0xF0) return b >= 0x90 && b <= 0xBF;
  if (lead == 0xF4) return b >= 0x80 && b <= 0x8F;
  return b >= 0x80 && b <= 0xBF;
}

// Expected sequence length for a lead byte, 0 if it cannot start a sequence.
size_t ExpectedLength(uint8_t lead) {
  if (lead < 0x80) return 1;
  if (lead >= 0xC2 && lead <= 0xDF) return 2;
  if (lead >= 0xE0 && lead <= 0xEF) return 3;
  if (lead >= 0xF0 && lead <= 0xF4) return 4;
  return 0;
}

// Number of bytes at s[i] that form a valid prefix of a sequence (>= 1 when
// the lead byte is valid), and the expected full length.
size_t ValidPrefix(std::string_view s, size_t i, size_t* expected) {
  const uint8_t lead = static_cast<uint8_t>(s[i]);
  *expected = ExpectedLength(lead);
  if (*expected == 0) return 0;
  size_t n = 1;
  while (n < *expected && i + n < s.size()) {
    const uint8_t b = static_cast<uint8_t>(s[i + n]);
    const bool ok = (n == 1) ? SecondByteOk(lead, b) : (b >= 0x80 && b <= 0xBF);
    if (!ok) break;
    ++n;
  }
  return n;
}

}  // namespace

size_t ValidSequenceLength(std::string_view s, size_t i) {
  size_t expected = 0;
  const size_t n = ValidPrefix(s, i, &expected);
  return (expected != 0 && n == expected) ? n : 0;
}

uint32_t DecodeAt(std::string_view s, size_t i, size_t len) {
  const auto b = [&](size_t k) { return static_cast<uint32_t>(static_cast<uint8_t>(s[i + k])); };
  switch (len) {
    case 1: return b(0);
    case 2: return ((b(0) & 0x1F) << 6) | (b(1) & 0x3F);
    case 3: return ((b(0) & 0x0F) << 12) | ((b(1) & 0x3F) << 6) | (b(2) & 0x3F);
    default: return ((b(0) & 0x07) << 18) | ((b(1) & 0x3F) << 12) | ((b(2) & 0x3F) << 6) | (b(3) & 0x3F);
  }
}

void Append(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

bool IsValid(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const size_t n = ValidSequenceLength(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

size_t InvalidRunLength(std::string_view s, size_t i) {
  size_t expected = 0;
  const size_t n = ValidPrefix(s, i, &expected);
  return n == 0 ? 1 : n;
}

std::string Sanitize(std::string_view s) {
  if (IsValid(s)) return std::string(s);
  std::string out;
  out.reserve(s.size() + 8);
  for (size_t i = 0; i < s.size();) {
    const size_t n = ValidSequenceLength(s, i);
    if (n != 0) {
      out.append(s.substr(i, n));
      i += n;
    } else {
      out.append("\xEF\xBF\xBD");
      i += InvalidRunLength(s, i);
    }
  }
  return out;
}

bool IsIncompleteTail(std::string_view s, size_t i) {
  size_t expected = 0;
  const size_t n = ValidPrefix(s, i, &expected);
  return expected > 1 && n < expected && i + n == s.size();
}

}  // namespace bitlens::utf8
