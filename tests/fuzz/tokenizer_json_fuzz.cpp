// Fuzz target: any byte string given as tokenizer.json is either rejected with
// a Status or loads into a tokenizer that can encode, decode and stream a
// fixed multilingual string without crashing or emitting invalid UTF-8.
#include <cstddef>
#include <cstdint>
#include <string>

#include "tokenizer/bpe_tokenizer.h"
#include "tokenizer/utf8.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto tok = bitlens::BpeTokenizer::FromTokenizerJson(text, "fuzz/tokenizer.json");
  if (!tok.ok()) {
    if (tok.status().message().empty()) __builtin_trap();
    return 0;
  }
  static const char kSample[] = "Hello <s> wörld 中文 😀\n\t 123 don't <|image|>";
  const auto ids = (*tok)->Encode(kSample, /*add_bos=*/true);
  const std::string decoded = (*tok)->Decode(ids);
  if (!bitlens::utf8::IsValid(decoded)) __builtin_trap();
  bitlens::StreamingDecoder stream(**tok);
  for (int32_t id : ids) {
    if (!bitlens::utf8::IsValid(stream.Push(id))) __builtin_trap();
  }
  if (!bitlens::utf8::IsValid(stream.Flush())) __builtin_trap();
  // Ids outside the vocabulary are skipped, never read out of bounds.
  (void)(*tok)->Decode({-1, 0, (*tok)->vocab_size(), 1 << 30});
  return 0;
}
