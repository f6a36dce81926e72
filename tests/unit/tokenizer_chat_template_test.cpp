// Chat templates: FormatUserTurn must reproduce, byte for byte, what
// transformers' apply_chat_template renders from each family's template
// (tests/golden/tokenizers/chat_templates.json, written by
// tests/conformance/tokenizer_parity.py).
#include <fstream>
#include <map>
#include <memory>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "test_paths.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace bitlens {
namespace {

TEST(TokenizerChatTemplate, MatchesTransformersRendering) {
  std::ifstream f(testing::SourceDir() + "/tests/golden/tokenizers/chat_templates.json");
  ASSERT_TRUE(f.good());
  std::stringstream ss;
  ss << f.rdbuf();
  const auto cases = nlohmann::json::parse(ss.str());
  const std::map<std::string, ChatFamily> families = {{"llava15", ChatFamily::kLlava15},
                                                      {"phi3", ChatFamily::kPhi3},
                                                      {"phi4", ChatFamily::kPhi4},
                                                      {"llama3", ChatFamily::kLlama3},
                                                      {"smolvlm", ChatFamily::kSmolVlm}};
  ASSERT_GE(cases.size(), 10u);
  std::map<std::string, int> checked;
  for (const auto& c : cases) {
    const std::string family = c["family"].get<std::string>();
    ASSERT_TRUE(families.count(family)) << family;
    const std::string got = FormatUserTurn(families.at(family), c["text"].get<std::string>(),
                                           c["has_image"].get<bool>(), c["image_token"].get<std::string>());
    EXPECT_EQ(got, c["expected"].get<std::string>()) << family << " has_image=" << c["has_image"];
    ++checked[family];
  }
  EXPECT_EQ(checked.size(), families.size()) << "every family has golden cases";
}

// The formatted prompt, encoded by the family's tokenizer with its default
// BOS handling, gives the ids HF tokenizers gives (image placeholders and
// turn markers become single special tokens).
TEST(TokenizerChatTemplate, FormattedPromptsEncodeLikeHf) {
  std::ifstream f(testing::SourceDir() + "/tests/golden/tokenizers/chat_templates.json");
  ASSERT_TRUE(f.good());
  std::stringstream ss;
  ss << f.rdbuf();
  const auto cases = nlohmann::json::parse(ss.str());
  std::map<std::string, std::unique_ptr<Tokenizer>> tokenizers;
  int checked = 0;
  for (const auto& c : cases) {
    if (!c.contains("ids")) continue;
    const std::string rel = c["tokenizer"].get<std::string>();
    const std::string dir = testing::TestDataPath(rel);
    if (dir.empty()) GTEST_SKIP() << "test data '" << rel << "' not found";
    if (!tokenizers.count(rel)) {
      auto t = Tokenizer::Load(dir);
      ASSERT_TRUE(t.ok()) << t.status().message();
      tokenizers[rel] = std::move(t).value();
    }
    const Tokenizer& tok = *tokenizers[rel];
    const auto got = tok.Encode(c["expected"].get<std::string>(), tok.add_bos_by_default());
    EXPECT_EQ(got, c["ids"].get<std::vector<int32_t>>()) << c["family"] << ": '" << c["expected"] << "'";
    ++checked;
  }
  EXPECT_GE(checked, 6);
}

TEST(TokenizerChatTemplate, FamilyFromModelTypeAndSpecialTokens) {
  BL_REQUIRE_TEST_DATA(llava_dir, "tokenizers/llava-1.5");
  auto llava = Tokenizer::Load(llava_dir);
  ASSERT_TRUE(llava.ok()) << llava.status().message();
  EXPECT_EQ(ChatFamilyFor("llava", **llava), ChatFamily::kLlava15);
  EXPECT_EQ(ChatFamilyFor("llama", **llava), ChatFamily::kLlava15);  // has <image>
  EXPECT_EQ(ChatFamilyFor("phi3", **llava), ChatFamily::kPhi3);

  BL_REQUIRE_TEST_DATA(o200k_dir, "tokenizers/o200k");
  auto o200k = Tokenizer::Load(o200k_dir);
  ASSERT_TRUE(o200k.ok()) << o200k.status().message();
  EXPECT_EQ(ChatFamilyFor("phi3", **o200k), ChatFamily::kPhi4);  // Phi-4-mini: o200k vocabulary
  EXPECT_EQ(ChatFamilyFor("phi4mm", **o200k), ChatFamily::kPhi4);

  BL_REQUIRE_TEST_DATA(smol_dir, "tokenizers/smolvlm");
  auto smol = Tokenizer::Load(smol_dir);
  ASSERT_TRUE(smol.ok()) << smol.status().message();
  EXPECT_EQ(ChatFamilyFor("idefics3", **smol), ChatFamily::kSmolVlm);
  EXPECT_EQ(ChatFamilyFor("llama", **smol), ChatFamily::kSmolVlm);
}

}  // namespace
}  // namespace bitlens
