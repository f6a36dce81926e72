// Bad tokenizer files: every one is rejected with one line that names the file
// and the field, with the status code the CLI maps to exit 2. Also pins the
// basic behaviour of tiny hand-written tokenizer.json files.
#include <fstream>
#include <iterator>
#include <string>

#include <gtest/gtest.h>

#include "test_paths.h"
#include "tokenizer/tokenizer.h"

namespace bitlens {
namespace {

void WriteFile(const std::string& path, const std::string& content) {
  std::ofstream f(path, std::ios::binary);
  f << content;
}

// Writes `json` as tokenizer.json in a fresh directory and loads it.
Result<std::unique_ptr<Tokenizer>> LoadJson(const std::string& json) {
  const std::string dir = testing::ScratchDir();
  WriteFile(dir + "/tokenizer.json", json);
  return Tokenizer::Load(dir);
}

void ExpectError(const Result<std::unique_ptr<Tokenizer>>& r, StatusCode code, const std::string& fragment) {
  ASSERT_FALSE(r.ok()) << "expected an error containing '" << fragment << "'";
  EXPECT_EQ(r.status().code(), code) << r.status().message();
  EXPECT_NE(r.status().message().find(fragment), std::string::npos) << "message: " << r.status().message();
  EXPECT_EQ(r.status().message().find('\n'), std::string::npos) << "one line: " << r.status().message();
  EXPECT_NE(r.status().message().find("tokenizer"), std::string::npos) << "names the file: " << r.status().message();
}

const char kTiny[] = R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2, "<x>": 3}, "merges": ["a b"]},
  "added_tokens": [{"id": 3, "content": "<x>", "special": true}]})";

TEST(TokenizerErrors, TinyHandWrittenFileLoadsAndMerges) {
  auto t = LoadJson(kTiny);
  ASSERT_TRUE(t.ok()) << t.status().message();
  EXPECT_EQ((*t)->Encode("aab", false), (std::vector<int32_t>{0, 2}));
  EXPECT_EQ((*t)->Encode("ab<x>ba", false), (std::vector<int32_t>{2, 3, 1, 0}));
  EXPECT_EQ((*t)->vocab_size(), 4);
  EXPECT_EQ((*t)->TokenId("<x>"), 3);
  EXPECT_FALSE((*t)->TokenId("zz").has_value());
  EXPECT_FALSE((*t)->bos_id().has_value());
  // No decoder: HF joins the tokens with spaces.
  EXPECT_EQ((*t)->Decode({2, 3, 1}), "ab <x> b");
}

TEST(TokenizerErrors, MergesAsPairsEqualMergesAsStrings) {
  auto t = LoadJson(R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": [["a", "b"]]}})");
  ASSERT_TRUE(t.ok()) << t.status().message();
  EXPECT_EQ((*t)->Encode("abab", false), (std::vector<int32_t>{2, 2}));
}

TEST(TokenizerErrors, MalformedJson) {
  ExpectError(LoadJson(R"({"model": {"type": "BPE", "vocab": {"a": 0,}})"), StatusCode::kInvalidArgument,
              "tokenizer.json: not valid JSON (syntax error at byte");
}

TEST(TokenizerErrors, UnknownModelType) {
  ExpectError(LoadJson(R"({"model": {"type": "Magic", "vocab": {}}})"), StatusCode::kInvalidArgument,
              "tokenizer.json: model.type: unknown model type 'Magic'");
}

TEST(TokenizerErrors, UnsupportedModelType) {
  ExpectError(LoadJson(R"({"model": {"type": "Unigram", "vocab": [["a", 0.0]]}})"), StatusCode::kUnsupported,
              "model.type: model 'Unigram' is not supported");
}

TEST(TokenizerErrors, UnsupportedJsonYieldsToTheSentencePieceModelBesideIt) {
  const std::string dir = testing::ScratchDir();
  WriteFile(dir + "/tokenizer.json", R"({"model": {"type": "Unigram", "vocab": [["a", 0.0]]}})");
  std::ifstream model(testing::SourceDir() + "/tests/golden/tokenizers/tiny-spm-model/tokenizer.model", std::ios::binary);
  ASSERT_TRUE(model.good());
  WriteFile(dir + "/tokenizer.model", std::string(std::istreambuf_iterator<char>(model), {}));
  auto t = Tokenizer::Load(dir);
  ASSERT_TRUE(t.ok()) << t.status().message();
  EXPECT_EQ((*t)->vocab_size(), 512);
  EXPECT_EQ((*t)->Decode((*t)->Encode("Hello world", true)), "<s> Hello world");
}

TEST(TokenizerErrors, MissingModel) {
  ExpectError(LoadJson(R"({"normalizer": null})"), StatusCode::kInvalidArgument, "tokenizer.json: missing field 'model'");
}

TEST(TokenizerErrors, MergeNamesTokenNotInVocab) {
  ExpectError(LoadJson(R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b", "a q"]}})"),
              StatusCode::kInvalidArgument, "model.merges[1] ('a q'): token 'q' is not in the vocab");
}

TEST(TokenizerErrors, MergeResultNotInVocab) {
  ExpectError(LoadJson(R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": ["a b"]}})"),
              StatusCode::kInvalidArgument, "model.merges[0] ('a b'): the merged token 'ab' is not in the vocab");
}

TEST(TokenizerErrors, MergeWithoutSpace) {
  ExpectError(LoadJson(R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["ab"]}})"),
              StatusCode::kInvalidArgument, "model.merges[0]: expected \"<a> <b>\" with exactly one space, got 'ab'");
}

TEST(TokenizerErrors, VocabIdNotAnInteger) {
  ExpectError(LoadJson(R"({"model": {"type": "BPE", "vocab": {"a": "zero"}, "merges": []}})"),
              StatusCode::kInvalidArgument, "model.vocab['a']: expected an integer id, got a string");
}

TEST(TokenizerErrors, VocabIdOutOfRange) {
  ExpectError(LoadJson(R"({"model": {"type": "BPE", "vocab": {"a": 4000000000}, "merges": []}})"),
              StatusCode::kInvalidArgument, "model.vocab['a']: id 4000000000 is out of range");
  ExpectError(LoadJson(R"({"model": {"type": "BPE", "vocab": {"a": -1}, "merges": []}})"),
              StatusCode::kInvalidArgument, "model.vocab['a']: id -1 is out of range");
  ExpectError(LoadJson(R"({"model": {"type": "BPE", "vocab": {"a": 2000000000}, "merges": []}})"),
              StatusCode::kInvalidArgument, "token 'a' has id 2000000000, outside 0..16777215");
}

TEST(TokenizerErrors, TwoTokensShareAnId) {
  ExpectError(LoadJson(R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 0}, "merges": []}})"),
              StatusCode::kInvalidArgument, "tokens 'a' and 'b' share id 0");
}

TEST(TokenizerErrors, VocabNotAnObject) {
  ExpectError(LoadJson(R"({"model": {"type": "BPE", "vocab": [1, 2], "merges": []}})"), StatusCode::kInvalidArgument,
              "model.vocab: expected an object of token -> id, got array");
}

TEST(TokenizerErrors, UnknownTokenMissingFromVocab) {
  ExpectError(LoadJson(R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [], "unk_token": "<unk>"}})"),
              StatusCode::kInvalidArgument, "model.unk_token: '<unk>' is not in the vocab");
}

TEST(TokenizerErrors, BadPreTokenizerRegex) {
  ExpectError(LoadJson(R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []},
    "pre_tokenizer": {"type": "Split", "pattern": {"Regex": "(unclosed"}, "behavior": "Isolated", "invert": false}})"),
              StatusCode::kInvalidArgument, "pre_tokenizer.pattern.Regex: regex '(unclosed' is invalid at offset");
}

TEST(TokenizerErrors, UnknownSplitBehaviour) {
  ExpectError(LoadJson(R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []},
    "pre_tokenizer": {"type": "Split", "pattern": {"String": " "}, "behavior": "Sideways"}})"),
              StatusCode::kInvalidArgument, "pre_tokenizer.behavior: unknown split behaviour 'Sideways'");
}

TEST(TokenizerErrors, UnsupportedComponentsNameTheirField) {
  ExpectError(LoadJson(R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []},
    "pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "ByteLevel"}, {"type": "UnicodeScripts"}]}})"),
              StatusCode::kUnsupported, "pre_tokenizer.pretokenizers[1].type: pre-tokenizer 'UnicodeScripts'");
  ExpectError(LoadJson(R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []},
    "normalizer": {"type": "Precompiled", "precompiled_charsmap": ""}})"),
              StatusCode::kUnsupported, "normalizer.type: normalizer 'Precompiled' is not supported");
  ExpectError(LoadJson(R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []},
    "decoder": {"type": "WordPiece"}})"),
              StatusCode::kUnsupported, "decoder.type: decoder 'WordPiece' is not supported");
}

TEST(TokenizerErrors, AddedTokenWithoutContent) {
  ExpectError(LoadJson(R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "added_tokens": [{"id": 5}]})"),
              StatusCode::kInvalidArgument, "added_tokens[0]: missing field 'content'");
}

TEST(TokenizerErrors, MistypedOption) {
  ExpectError(LoadJson(R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [], "byte_fallback": "yes"}})"),
              StatusCode::kInvalidArgument, "model.byte_fallback: expected true or false, got string");
}

TEST(TokenizerErrors, MissingDirectory) {
  auto r = Tokenizer::Load(testing::ScratchDir() + "/does-not-exist");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find("no such directory"), std::string::npos) << r.status().message();
}

TEST(TokenizerErrors, DirectoryWithoutTokenizer) {
  const std::string dir = testing::ScratchDir();
  auto r = Tokenizer::Load(dir);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find("no tokenizer.json, tokenizer.model or vocab.json + merges.txt"),
            std::string::npos)
      << r.status().message();
}

TEST(TokenizerErrors, MalformedTokenizerConfig) {
  const std::string dir = testing::ScratchDir();
  WriteFile(dir + "/tokenizer.json", kTiny);
  WriteFile(dir + "/tokenizer_config.json", "{\"add_bos_token\": tru");
  ExpectError(Tokenizer::Load(dir), StatusCode::kInvalidArgument, "tokenizer_config.json: not valid JSON");
  WriteFile(dir + "/tokenizer_config.json", "{\"add_bos_token\": \"yes\"}");
  ExpectError(Tokenizer::Load(dir), StatusCode::kInvalidArgument,
              "tokenizer_config.json.add_bos_token: expected true or false, got string");
}

TEST(TokenizerErrors, BadEosIdInConfig) {
  const std::string dir = testing::ScratchDir();
  WriteFile(dir + "/tokenizer.json", kTiny);
  WriteFile(dir + "/config.json", "{\"eos_token_id\": \"</s>\"}");
  auto r = Tokenizer::Load(dir);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("config.json.eos_token_id: expected a token id or a list of token ids"),
            std::string::npos)
      << r.status().message();
}

TEST(TokenizerErrors, SpecialTokensFromConfigs) {
  const std::string dir = testing::ScratchDir();
  WriteFile(dir + "/tokenizer.json", kTiny);
  WriteFile(dir + "/tokenizer_config.json", R"({"bos_token": {"content": "<x>"}, "add_bos_token": true, "eos_token": "b"})");
  WriteFile(dir + "/generation_config.json", R"({"eos_token_id": [1, 2]})");
  auto t = Tokenizer::Load(dir);
  ASSERT_TRUE(t.ok()) << t.status().message();
  EXPECT_EQ((*t)->bos_id(), 3);
  EXPECT_TRUE((*t)->add_bos_by_default());
  EXPECT_EQ((*t)->eos_ids(), (std::vector<int32_t>{1, 2}));
  EXPECT_EQ((*t)->Encode("ab", true), (std::vector<int32_t>{3, 2}));
}

TEST(TokenizerErrors, BadMergesTxtLine) {
  const std::string dir = testing::ScratchDir();
  WriteFile(dir + "/vocab.json", R"({"a": 0, "b": 1, "ab": 2})");
  WriteFile(dir + "/merges.txt", "#version: 0.2\na b\nab\n");
  auto r = Tokenizer::Load(dir);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("merges.txt: line 3: expected \"<a> <b>\", got 'ab'"), std::string::npos)
      << r.status().message();
}

TEST(TokenizerErrors, BadVocabJson) {
  const std::string dir = testing::ScratchDir();
  WriteFile(dir + "/merges.txt", "#version: 0.2\n");
  WriteFile(dir + "/vocab.json", R"({"a": 0, "b": "one"})");
  auto r = Tokenizer::Load(dir);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("vocab.json: 'b': expected an integer id, got a string"), std::string::npos)
      << r.status().message();
  WriteFile(dir + "/vocab.json", R"(["a", "b"])");
  r = Tokenizer::Load(dir);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("vocab.json: expected an object of token -> id"), std::string::npos)
      << r.status().message();
}

TEST(TokenizerErrors, CorruptSentencePieceModel) {
  const std::string dir = testing::ScratchDir();
  WriteFile(dir + "/tokenizer.model", "this is not a protobuf");
  auto r = Tokenizer::Load(dir);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("tokenizer.model: not a SentencePiece model"), std::string::npos)
      << r.status().message();
}

TEST(TokenizerErrors, InvalidUtf8InputIsReplacedNotFatal) {
  auto t = LoadJson(R"({"model": {"type": "BPE", "vocab": {"a": 0, "<unk>": 1}, "merges": [], "unk_token": "<unk>"}})");
  ASSERT_TRUE(t.ok()) << t.status().message();
  // 0xFF becomes U+FFFD, which this vocabulary spells as <unk>.
  EXPECT_EQ((*t)->Encode(std::string("a\xFF" "a", 3), false), (std::vector<int32_t>{0, 1, 0}));
}

}  // namespace
}  // namespace bitlens
