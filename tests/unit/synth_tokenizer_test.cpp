// The byte-level BPE tokenizer written by `bitlens synth`: GPT-2's byte
// alphabet, a deterministic merge list of the promised size, and for every
// preset the family's special tokens at the ids config.json relies on, as
// bitlens' Tokenizer and chat formats see them.
#include <algorithm>
#include <fstream>
#include <set>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "formats/hf_config.h"
#include "model/synth.h"
#include "model/synth_tokenizer.h"
#include "test_paths.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

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

// Every preset's tokenizer, as written, loaded by bitlens' own Tokenizer:
// ids unique and inside the model vocabulary, the family's special tokens at
// the ids config.json relies on, and the chat format the runtime will pick
// (ChatFamilyFor) encodes to those ids.
struct PresetCase {
  std::string family, preset;
  ChatFamily chat;
  std::vector<std::string> specials;  // the family's own special tokens
};

void PrintTo(const PresetCase& c, std::ostream* os) { *os << c.family << "/" << c.preset; }

class SynthTokenizerPreset : public ::testing::TestWithParam<PresetCase> {};

TEST_P(SynthTokenizerPreset, LoadsAndAgreesWithConfig) {
  const PresetCase& pc = GetParam();
  SynthOptions o;
  if (!pc.family.empty()) o.family = SynthFamilyFromName(pc.family);
  o.preset = pc.preset;
  auto plan = PlanSynth(o);
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  const ModelConfig& c = plan->config;
  const SynthTokenizerSpec& spec = plan->preset.tokenizer;
  auto text = SynthTokenizerJson(spec, c.text.vocab_size);
  ASSERT_TRUE(text.ok()) << text.status().message();

  // The JSON itself: every id once, below vocab_size; specials in vocab and added_tokens alike.
  json tok = json::parse(*text);
  const json& vocab = tok["model"]["vocab"];
  std::set<int64_t> ids;
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    EXPECT_TRUE(ids.insert(it.value().get<int64_t>()).second) << "id " << it.value() << " used twice";
    EXPECT_LT(it.value().get<int64_t>(), c.text.vocab_size);
  }
  EXPECT_EQ(ids.size(), 256u + 248 + spec.special_tokens.size());
  for (const auto& a : tok["added_tokens"]) EXPECT_EQ(vocab[a["content"].get<std::string>()], a["id"]) << a["content"];

  // Loaded back by the runtime's tokenizer.
  const std::string dir = testing::ScratchDir();
  { std::ofstream(dir + "/tokenizer.json") << *text; }
  { std::ofstream(dir + "/tokenizer_config.json") << SynthTokenizerConfigJson(spec, c.text.max_position_embeddings); }
  auto loaded = Tokenizer::Load(dir);
  ASSERT_TRUE(loaded.ok()) << loaded.status().message();
  const Tokenizer& t = **loaded;
  for (const auto& name : pc.specials) {
    auto want = std::find_if(spec.special_tokens.begin(), spec.special_tokens.end(),
                             [&](const SpecialToken& s) { return s.content == name; });
    ASSERT_NE(want, spec.special_tokens.end()) << name << " missing from preset " << pc.preset;
    EXPECT_EQ(t.TokenId(name), std::optional<int32_t>(static_cast<int32_t>(want->id))) << name;
  }
  EXPECT_LE(t.vocab_size(), c.text.vocab_size);
  EXPECT_EQ(t.add_bos_by_default(), spec.add_bos);
  ASSERT_TRUE(t.bos_id().has_value());
  EXPECT_EQ(*t.bos_id(), c.text.bos_token_id);
  // Generation stops at the tokenizer's EOS and at config.json's.
  const auto& gen = plan->preset.generation_eos_ids;
  for (int32_t id : t.eos_ids()) EXPECT_NE(std::find(gen.begin(), gen.end(), id), gen.end()) << "eos " << id;
  EXPECT_NE(std::find(gen.begin(), gen.end(), c.text.eos_token_ids[0]), gen.end());
  if (c.is_vlm()) {
    EXPECT_EQ(t.TokenId("<image>"), std::optional<int32_t>(static_cast<int32_t>(c.image_token_index)));
  }

  // The chat format the runtime picks, and its prompt: every special token
  // written in it is one id, the image placeholder exactly once.
  const ChatFamily family = ChatFamilyFor(c.text.model_type, t);
  EXPECT_EQ(static_cast<int>(family), static_cast<int>(pc.chat)) << pc.preset;
  const std::string prompt = FormatUserTurn(family, "Describe the image.", c.is_vlm(), "<image>");
  const std::vector<int32_t> encoded = t.Encode(prompt, false);
  EXPECT_EQ(t.Decode(encoded), prompt);
  if (c.is_vlm()) {
    EXPECT_EQ(std::count(encoded.begin(), encoded.end(), int32_t(c.image_token_index)), 1) << prompt;
  }
  // Plain text round-trips through the byte-level BPE and uses merges.
  const std::string sample = "The image shows a red circle, 3 cats and caf\xC3\xA9 au lait.";
  const auto sample_ids = t.Encode(sample, false);
  EXPECT_EQ(t.Decode(sample_ids), sample);
  EXPECT_LT(sample_ids.size(), sample.size() / 2) << "merges should shorten English text";
}

INSTANTIATE_TEST_SUITE_P(
    Presets, SynthTokenizerPreset,
    ::testing::Values(
        PresetCase{"llava", "tiny", ChatFamily::kLlava15, {"<unk>", "<s>", "</s>", "<image>", "<pad>"}},
        PresetCase{"llava-siglip", "tiny", ChatFamily::kLlava15, {"<s>", "</s>", "<image>"}},
        PresetCase{"llama", "tiny", ChatFamily::kLlava15, {"<s>", "</s>"}},
        PresetCase{"phi3", "tiny", ChatFamily::kPhi3, {"<s>", "</s>", "<|endoftext|>", "<|user|>", "<|end|>", "<|assistant|>"}},
        PresetCase{"", "phi-4-mini", ChatFamily::kPhi4, {"<|endoftext|>", "<|endofprompt|>", "<|user|>", "<|end|>", "<|assistant|>"}},
        PresetCase{"", "phi-3.5-vision", ChatFamily::kPhi3,
                   {"<s>", "</s>", "<|endoftext|>", "<|user|>", "<|end|>", "<|assistant|>", "<image>"}},
        PresetCase{"", "llava-1.5-7b", ChatFamily::kLlava15, {"<s>", "</s>", "<image>", "<pad>"}},
        PresetCase{"", "smolvlm-256m", ChatFamily::kSmolVlm,
                   {"<|endoftext|>", "<|im_start|>", "<|im_end|>", "<image>", "<end_of_utterance>"}}),
    [](const auto& info) {
      std::string name = info.param.family + "_" + info.param.preset;
      for (char& ch : name) {
        if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
      }
      return name;
    });

}  // namespace
}  // namespace bitlens
