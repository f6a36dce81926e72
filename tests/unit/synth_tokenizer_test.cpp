// The byte-level BPE tokenizer written by `bitlens synth`: GPT-2's byte
// alphabet, a deterministic merge list of the promised size, and special
// tokens whose ids agree with config.json for every preset.
#include <set>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "formats/hf_config.h"
#include "model/synth.h"
#include "model/synth_tokenizer.h"

namespace bitlens {
namespace {

using json = nlohmann::json;

TEST(SynthTokenizer, ByteSymbolsFollowGpt2Alphabet) {
  EXPECT_EQ(ByteLevelSymbol('A'), "A");
  EXPECT_EQ(ByteLevelSymbol(' '), "\xC4\xA0");   // U+0120 'Ġ'
  EXPECT_EQ(ByteLevelSymbol('\n'), "\xC4\x8A");  // U+010A 'Ċ'
  EXPECT_EQ(ByteLevelSymbol(0), "\xC4\x80");     // U+0100
  EXPECT_EQ(ByteLevelSymbol(0xAD), "\xC5\x83");  // soft hyphen is the 68th unprintable byte: U+0143
  EXPECT_EQ(ByteLevelSymbol(0xFF), "\xC3\xBF");  // 'ÿ' stands for itself
  std::set<std::string> all;
  for (int b = 0; b < 256; ++b) all.insert(ByteLevelSymbol(static_cast<uint8_t>(b)));
  EXPECT_EQ(all.size(), 256u);
}

TEST(SynthTokenizer, LearnsExactlyTheRequestedNewTokensDeterministically) {
  auto a = LearnByteLevelBpe(SynthTokenizerCorpus(), 248);
  auto b = LearnByteLevelBpe(SynthTokenizerCorpus(), 248);
  ASSERT_TRUE(a.ok()) << a.status().message();
  EXPECT_EQ(a->tokens.size(), 256u + 248);
  EXPECT_GE(a->merges.size(), 248u);
  EXPECT_EQ(a->merges, b->merges);
  // The most frequent pair of the corpus comes first. Counted separately
  // (Python, GPT-2 regex): ' a' 72 times, 'he' 61, ' t' 53. Words keep their
  // leading space, so 'Ġ' + 'a' is a pair and 'e' + 'Ġ' never is.
  EXPECT_EQ(a->merges[0].first + a->merges[0].second, "\xC4\xA0" "a");
  EXPECT_EQ(a->merges[1].first + a->merges[1].second, "he");
  std::set<std::string> unique(a->tokens.begin(), a->tokens.end());
  EXPECT_EQ(unique.size(), a->tokens.size());
  EXPECT_FALSE(LearnByteLevelBpe("ab ab", 5).ok()) << "a tiny corpus cannot yield 5 merges";
}

// For every preset: ids unique, inside the model vocabulary, and the tokens
// config.json points at (bos, eos, image) are the ones the chat formats use.
class SynthTokenizerPreset : public ::testing::TestWithParam<std::pair<std::string, std::string>> {};

TEST_P(SynthTokenizerPreset, SpecialTokenIdsAgreeWithConfig) {
  const auto [family, preset] = GetParam();
  SynthOptions o;
  if (!family.empty()) o.family = SynthFamilyFromName(family);
  o.preset = preset;
  auto plan = PlanSynth(o);
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  auto text = SynthTokenizerJson(plan->preset.tokenizer, plan->config.text.vocab_size);
  ASSERT_TRUE(text.ok()) << text.status().message();
  json tok = json::parse(*text);
  const json& vocab = tok["model"]["vocab"];
  std::map<int64_t, std::string> by_id;
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    const int64_t id = it.value().get<int64_t>();
    EXPECT_TRUE(by_id.emplace(id, it.key()).second) << "id " << id << " used twice";
    EXPECT_LT(id, plan->config.text.vocab_size);
  }
  EXPECT_EQ(by_id.size(), 256u + 248 + plan->preset.tokenizer.special_tokens.size());
  std::map<std::string, int64_t> special;
  for (const auto& a : tok["added_tokens"]) {
    EXPECT_TRUE(a["special"].get<bool>());
    EXPECT_EQ(vocab[a["content"].get<std::string>()], a["id"]) << a["content"];
    special[a["content"].get<std::string>()] = a["id"].get<int64_t>();
  }
  for (const char* t : {"<s>", "</s>", "<image>", "<|user|>", "<|end|>", "<|assistant|>", "<|endoftext|>"}) {
    EXPECT_TRUE(special.count(t)) << t << " missing in preset " << preset;
  }
  const ModelConfig& c = plan->config;
  const std::string& bos = plan->preset.tokenizer.bos_token;
  EXPECT_EQ(special[bos], c.text.bos_token_id) << "bos " << bos;
  EXPECT_EQ(by_id[c.text.eos_token_ids[0]], plan->preset.tokenizer.eos_token);
  if (c.is_vlm()) EXPECT_EQ(by_id[c.image_token_index], "<image>");
  if (c.text.model_type == "phi3") {
    // The Phi-3 chat format ends a turn with <|end|>; generation must stop there.
    const auto& gen = plan->preset.generation_eos_ids;
    EXPECT_NE(std::find(gen.begin(), gen.end(), special["<|end|>"]), gen.end());
  }
}

INSTANTIATE_TEST_SUITE_P(
    Presets, SynthTokenizerPreset,
    ::testing::Values(std::pair<std::string, std::string>{"llava", "tiny"}, std::pair<std::string, std::string>{"llava-siglip", "tiny"},
                      std::pair<std::string, std::string>{"llama", "tiny"}, std::pair<std::string, std::string>{"phi3", "tiny"},
                      std::pair<std::string, std::string>{"", "phi-4-mini"}, std::pair<std::string, std::string>{"", "phi-3.5-vision"},
                      std::pair<std::string, std::string>{"", "llava-1.5-7b"}, std::pair<std::string, std::string>{"", "smolvlm-256m"}),
    [](const auto& info) {
      std::string name = info.param.first + "_" + info.param.second;
      for (char& ch : name) {
        if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
      }
      return name;
    });

}  // namespace
}  // namespace bitlens
