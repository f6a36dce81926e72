// StreamingDecoder: text comes out only in whole UTF-8 characters, even when a
// character is spread over several byte-fallback or byte-level tokens, and
// the pieces add up to exactly what Decode returns for all ids.
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "test_paths.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

namespace bitlens {
namespace {

std::string FixtureDir(const std::string& name) { return testing::SourceDir() + "/tests/golden/tokenizers/" + name; }

std::unique_ptr<Tokenizer> LoadOrDie(const std::string& dir) {
  auto t = Tokenizer::Load(dir);
  EXPECT_TRUE(t.ok()) << t.status().message();
  return t.ok() ? std::move(t).value() : nullptr;
}

// Streams `ids` and checks every piece; returns the concatenation.
std::string StreamAll(const Tokenizer& tok, const std::vector<int32_t>& ids, std::vector<std::string>* pieces = nullptr) {
  StreamingDecoder stream(tok);
  std::string all;
  for (int32_t id : ids) {
    const std::string piece = stream.Push(id);
    EXPECT_TRUE(utf8::IsValid(piece)) << "piece after id " << id << " is not whole UTF-8";
    if (pieces) pieces->push_back(piece);
    all += piece;
  }
  const std::string rest = stream.Flush();
  if (pieces) pieces->push_back(rest);
  return all + rest;
}

const char kText[] = "Hi 中文 😀 👨‍👩‍👧‍👦 café ✓";

TEST(TokenizerStreaming, ByteFallbackCharactersComeOutWhole) {
  auto tok = LoadOrDie(FixtureDir("tiny-spm"));
  ASSERT_NE(tok, nullptr);
  const auto ids = tok->Encode(kText, false);
  // The 512-piece vocabulary spells CJK and emoji with <0xXX> tokens.
  const auto byte_token = tok->TokenId("<0xF0>");
  ASSERT_TRUE(byte_token.has_value());
  ASSERT_NE(std::find(ids.begin(), ids.end(), *byte_token), ids.end()) << "the emoji should use byte fallback";

  std::vector<std::string> pieces;
  EXPECT_EQ(StreamAll(*tok, ids, &pieces), tok->Decode(ids));
  EXPECT_EQ(tok->Decode(ids), kText);
  // The four tokens of 😀 (F0 9F 98 80): three empty pieces, then the emoji.
  const auto it = std::find(ids.begin(), ids.end(), *byte_token);
  const size_t at = static_cast<size_t>(it - ids.begin());
  EXPECT_EQ(pieces[at], "");
  EXPECT_EQ(pieces[at + 1], "");
  EXPECT_EQ(pieces[at + 2], "");
  EXPECT_EQ(pieces[at + 3], "\xF0\x9F\x98\x80");
  for (const auto& p : pieces) EXPECT_EQ(p.find("\xEF\xBF\xBD"), std::string::npos) << "no U+FFFD in '" << p << "'";
}

TEST(TokenizerStreaming, SentencePieceModelStreamsLikeItDecodes) {
  auto tok = LoadOrDie(FixtureDir("tiny-spm-model"));
  ASSERT_NE(tok, nullptr);
  const auto ids = tok->Encode(kText, false);
  EXPECT_EQ(StreamAll(*tok, ids), tok->Decode(ids));
  EXPECT_EQ(tok->Decode(ids), kText);
}

TEST(TokenizerStreaming, ByteLevelCharactersComeOutWhole) {
  auto tok = LoadOrDie(FixtureDir("tiny-bytelevel"));
  ASSERT_NE(tok, nullptr);
  const auto ids = tok->Encode(kText, false);
  std::vector<std::string> pieces;
  EXPECT_EQ(StreamAll(*tok, ids, &pieces), kText);
  size_t empty = 0;
  for (const auto& p : pieces) empty += p.empty();
  EXPECT_GT(empty, 3u) << "multi-byte characters are held back while incomplete";
}

TEST(TokenizerStreaming, LeadingSpaceIsStrippedOnlyOnce) {
  auto tok = LoadOrDie(FixtureDir("tiny-spm"));
  ASSERT_NE(tok, nullptr);
  const auto ids = tok->Encode("Hello world and more words", false);
  std::vector<std::string> pieces;
  EXPECT_EQ(StreamAll(*tok, ids, &pieces), "Hello world and more words");
}

TEST(TokenizerStreaming, InvalidBytesBecomeReplacementCharacters) {
  auto tok = LoadOrDie(FixtureDir("tiny-spm"));
  ASSERT_NE(tok, nullptr);
  const int32_t xff = *tok->TokenId("<0xFF>");
  const int32_t xe4 = *tok->TokenId("<0xE4>");
  const int32_t a = *tok->TokenId("a");
  StreamingDecoder stream(*tok);
  EXPECT_EQ(stream.Push(a), "a");
  EXPECT_EQ(stream.Push(xff), "\xEF\xBF\xBD");  // can never start a character
  EXPECT_EQ(stream.Push(xe4), "");              // may still complete
  EXPECT_EQ(stream.Push(a), "\xEF\xBF\xBD" "a");  // it did not
  EXPECT_EQ(stream.Push(xe4), "");
  EXPECT_EQ(stream.Flush(), "\xEF\xBF\xBD");  // cut off at the end
}

TEST(TokenizerStreaming, EveryCorpusLineOfEveryTokenizer) {
  std::ifstream f(FixtureDir("corpus.txt"));
  std::vector<std::string> lines;
  for (std::string l; std::getline(f, l);) lines.push_back(l);
  ASSERT_GT(lines.size(), 50u);
  std::vector<std::string> dirs = {FixtureDir("tiny-spm"), FixtureDir("tiny-spm-model"), FixtureDir("tiny-bytelevel"),
                                   FixtureDir("tiny-metaspace")};
  for (const char* rel : {"tokenizers/llava-1.5", "tokenizers/smolvlm", "tokenizers/llama2-spm", "tokenizers/gpt2"}) {
    const std::string d = testing::TestDataPath(rel);
    if (!d.empty()) dirs.push_back(d);
  }
  for (const auto& dir : dirs) {
    auto tok = LoadOrDie(dir);
    ASSERT_NE(tok, nullptr);
    int mismatches = 0;
    for (const auto& line : lines) {
      const auto ids = tok->Encode(line, false);
      const std::string streamed = StreamAll(*tok, ids);
      if (streamed != tok->Decode(ids) && mismatches++ == 0) {
        ADD_FAILURE() << dir << ": streamed '" << streamed << "' but Decode gives '" << tok->Decode(ids) << "'";
      }
    }
    EXPECT_EQ(mismatches, 0) << dir;
  }
}

}  // namespace
}  // namespace bitlens
