// tokenizer/byte_level: GPT-2's reversible byte <-> printable code point map
// (bytes_to_unicode). Byte-level BPE vocabularies spell every byte with it,
// e.g. the space 0x20 is "Ġ" (U+0120).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace bitlens::byte_level {

// Code point that spells byte `b`.
uint32_t ByteToCodePoint(uint8_t b);
// Byte spelled by code point `cp`, if it is one of the 256 spellings.
std::optional<uint8_t> CodePointToByte(uint32_t cp);

// Every byte of `bytes` replaced by its spelling (valid UTF-8 out).
std::string Encode(std::string_view bytes);

// Inverse of Encode for one token; std::nullopt when a code point of
// `token` is not a byte spelling (HF then keeps the token's own bytes).
std::optional<std::string> Decode(std::string_view token);

}  // namespace bitlens::byte_level
