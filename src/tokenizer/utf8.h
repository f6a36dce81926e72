// tokenizer/utf8: the few UTF-8 primitives the tokenizers need: walking code
// points, validating, replacing invalid bytes with U+FFFD the way Rust's
// String::from_utf8_lossy does (so text round-trips like HF tokenizers).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace bitlens::utf8 {

// Length in bytes of the valid UTF-8 sequence starting at s[i], or 0 when the
// bytes there are not a valid (complete, shortest-form, non-surrogate) sequence.
size_t ValidSequenceLength(std::string_view s, size_t i);

// Code point of the valid sequence at s[i] of length `len` (from ValidSequenceLength).
uint32_t DecodeAt(std::string_view s, size_t i, size_t len);

// Appends the UTF-8 encoding of `cp` to *out.
void Append(uint32_t cp, std::string* out);

// True when all of `s` is valid UTF-8.
bool IsValid(std::string_view s);

// `s` with every maximal invalid subsequence replaced by U+FFFD
// (the WHATWG / Rust from_utf8_lossy rule).
std::string Sanitize(std::string_view s);

// Length of the maximal invalid subsequence at s[i] (>= 1), under the same rule.
size_t InvalidRunLength(std::string_view s, size_t i);

// True when s[i..] is a proper prefix of some valid sequence (more bytes
// could complete it), i.e. a character cut at the end of the buffer.
bool IsIncompleteTail(std::string_view s, size_t i);

}  // namespace bitlens::utf8
