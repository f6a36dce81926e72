// tokenizer/byte_level: see byte_level.h.
#include "tokenizer/byte_level.h"

#include <array>

#include "tokenizer/utf8.h"

namespace bitlens::byte_level {
namespace {

struct Tables {
  std::array<uint32_t, 256> byte_to_cp{};
  std::array<int16_t, 512> cp_to_byte{};  // all spellings are < 0x144

  Tables() {
    cp_to_byte.fill(-1);
    // Printable Latin-1 bytes keep their own code point; the other 68 bytes
    // get 256, 257, ... in byte order (GPT-2's bytes_to_unicode).
    uint32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      byte_to_cp[b] = printable ? static_cast<uint32_t>(b) : next++;
      cp_to_byte[byte_to_cp[b]] = static_cast<int16_t>(b);
    }
  }
};

const Tables& GetTables() {
  static const Tables tables;
  return tables;
}

}  // namespace

uint32_t ByteToCodePoint(uint8_t b) { return GetTables().byte_to_cp[b]; }

std::optional<uint8_t> CodePointToByte(uint32_t cp) {
  if (cp >= 512) return std::nullopt;
  const int16_t b = GetTables().cp_to_byte[cp];
  if (b < 0) return std::nullopt;
  return static_cast<uint8_t>(b);
}

std::string Encode(std::string_view bytes) {
  const Tables& t = GetTables();
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) utf8::Append(t.byte_to_cp[static_cast<uint8_t>(c)], &out);
  return out;
}

std::optional<std::string> Decode(std::string_view token) {
  std::string out;
  out.reserve(token.size());
  for (size_t i = 0; i < token.size();) {
    const size_t n = utf8::ValidSequenceLength(token, i);
    if (n == 0) return std::nullopt;
    const auto b = CodePointToByte(utf8::DecodeAt(token, i, n));
    if (!b) return std::nullopt;
    out.push_back(static_cast<char>(*b));
    i += n;
  }
  return out;
}

}  // namespace bitlens::byte_level
