// TrainByteLevelBpe: the tokenizer.json it writes loads in bitlens' own
// Tokenizer, round-trips every corpus line, learns the frequent words as single
// tokens, respects vocab_size, places the special tokens after the merges, and
// rejects bad options. Byte-for-byte parity with HF `tokenizers` is checked by
// BpeTrainerParity against goldens written by tests/conformance/bpe_trainer_parity.py.
#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "test_paths.h"
#include "tokenizer/bpe_trainer.h"
#include "tokenizer/tokenizer.h"

namespace bitlens {
namespace {

using json = nlohmann::json;

// A few thousand short lines in the spirit of the synthetic VQA data, plus
// lines that exercise the byte-level path (accents, CJK, emoji, digits,
// contractions, tabs, runs of spaces, newlines).
std::vector<std::string> SceneCorpus(int lines) {
  const std::vector<std::string> colors = {"red", "green", "blue", "yellow", "purple", "orange", "white", "black"};
  const std::vector<std::string> shapes = {"circle", "square", "triangle", "star", "heart", "diamond"};
  const std::vector<std::string> places = {"top left", "top right", "bottom left", "bottom right", "center"};
  const std::vector<std::string> counts = {"one", "two", "three", "four", "five"};
  std::mt19937 rng(7);
  auto pick = [&](const std::vector<std::string>& v) { return v[rng() % v.size()]; };
  std::vector<std::string> out;
  for (int i = 0; i < lines; ++i) {
    switch (i % 5) {
      case 0: out.push_back("What color is the " + pick(shapes) + "?"); break;
      case 1: out.push_back("There are " + pick(counts) + " " + pick(colors) + " " + pick(shapes) + "s."); break;
      case 2: out.push_back("Where is the " + pick(colors) + " " + pick(shapes) + "? " + pick(places)); break;
      case 3: out.push_back("A " + pick(colors) + " " + pick(shapes) + " in the " + pick(places) + "."); break;
      default: out.push_back("Is there a " + pick(colors) + " " + pick(shapes) + "? yes"); break;
    }
  }
  const std::vector<std::string> odd = {
      "caf\xC3\xA9 na\xC3\xAFve \xC3\xBC" "ber",       // café naïve über
      "\xE6\x9D\xB1\xE4\xBA\xAC \xE5\xA4\xA7\xE9\x98\xAA",  // 東京 大阪
      "emoji \xF0\x9F\x99\x82 and \xF0\x9F\x8D\x95!",    // 🙂 🍕
      "it's 2024, they'll pay $3.50 (or 7%)",
      "tabs\tand   three spaces  \n a newline",
      "   leading and trailing   ",
      "x",
      "<not special> <s1>",
  };
  for (int r = 0; r < 3; ++r) out.insert(out.end(), odd.begin(), odd.end());
  return out;
}

struct Trained {
  std::string text;
  json j;
  std::unique_ptr<Tokenizer> tok;
};

Trained TrainAndLoad(const std::vector<std::string>& corpus, const BpeTrainOptions& options) {
  Trained t;
  auto text = TrainByteLevelBpe(corpus, options);
  EXPECT_TRUE(text.ok()) << text.status().message();
  if (!text.ok()) return t;
  t.text = *text;
  t.j = json::parse(t.text, nullptr, false);
  EXPECT_FALSE(t.j.is_discarded());
  const std::string path = testing::ScratchDir() + "/tokenizer.json";
  std::ofstream(path, std::ios::binary) << t.text;
  auto tok = Tokenizer::Load(path);
  EXPECT_TRUE(tok.ok()) << tok.status().message();
  if (tok.ok()) t.tok = std::move(tok).value();
  return t;
}

TEST(BpeTrainer, WritesByteLevelBpeTokenizerJson) {
  BpeTrainOptions options;
  options.vocab_size = 400;
  Trained t = TrainAndLoad(SceneCorpus(500), options);
  ASSERT_TRUE(t.tok);
  EXPECT_EQ(t.j["model"]["type"], "BPE");
  EXPECT_EQ(t.j["pre_tokenizer"]["type"], "ByteLevel");
  EXPECT_EQ(t.j["pre_tokenizer"]["add_prefix_space"], false);
  EXPECT_EQ(t.j["pre_tokenizer"]["use_regex"], true);
  EXPECT_EQ(t.j["decoder"]["type"], "ByteLevel");
  // The 256 byte tokens come first, in byte order, spelled with GPT-2's alphabet.
  const json& vocab = t.j["model"]["vocab"];
  EXPECT_EQ(vocab.value("\xC4\x80", -1), 0);    // byte 0x00 is U+0100
  EXPECT_EQ(vocab.value("\xC4\xA0", -1), 32);   // space is 'Ġ'
  EXPECT_EQ(vocab.value("A", -1), 65);
  EXPECT_EQ(vocab.value("\xC3\xBF", -1), 255);  // 'ÿ' spells itself
}

TEST(BpeTrainer, RoundTripsEveryCorpusLine) {
  const auto corpus = SceneCorpus(3000);
  BpeTrainOptions options;
  options.vocab_size = 700;
  Trained t = TrainAndLoad(corpus, options);
  ASSERT_TRUE(t.tok);
  int failures = 0;
  size_t tokens = 0, bytes = 0;
  for (const auto& line : corpus) {
    const auto ids = t.tok->Encode(line, /*add_bos=*/false);
    tokens += ids.size();
    bytes += line.size();
    const std::string back = t.tok->Decode(ids);
    if (back != line && ++failures <= 5) ADD_FAILURE() << "'" << line << "' decoded as '" << back << "'";
  }
  EXPECT_EQ(failures, 0);
  // The learned merges compress the corpus well below one token per byte.
  EXPECT_LT(static_cast<double>(tokens) / bytes, 0.35) << tokens << " tokens for " << bytes << " bytes";
}

TEST(BpeTrainer, FrequentWordsBecomeSingleTokens) {
  BpeTrainOptions options;
  options.vocab_size = 600;
  Trained t = TrainAndLoad(SceneCorpus(3000), options);
  ASSERT_TRUE(t.tok);
  for (const char* word : {" circle", " square", " triangle", " red", " yellow", " the", "What", " color"}) {
    const auto ids = t.tok->Encode(word, false);
    EXPECT_EQ(ids.size(), 1u) << "'" << word << "' took " << ids.size() << " tokens";
  }
  EXPECT_EQ(t.tok->Encode("What color is the circle?", false).size(), 6u);
}

TEST(BpeTrainer, VocabSizeIsRespected) {
  for (int vocab_size : {261, 300, 400}) {
    BpeTrainOptions options;
    options.vocab_size = vocab_size;
    Trained t = TrainAndLoad(SceneCorpus(2000), options);
    ASSERT_TRUE(t.tok);
    // Enough distinct pairs here to fill every requested size exactly.
    EXPECT_EQ(t.j["model"]["vocab"].size(), static_cast<size_t>(vocab_size));
    EXPECT_EQ(t.tok->vocab_size(), vocab_size);
  }
  // The scene corpus runs out of pairs seen twice (every word is one token)
  // before 2000: the vocabulary stops short, never over, and the specials
  // still follow the last merge.
  {
    BpeTrainOptions options;
    options.vocab_size = 2000;
    Trained t = TrainAndLoad(SceneCorpus(2000), options);
    ASSERT_TRUE(t.tok);
    const size_t n = t.j["model"]["vocab"].size();
    EXPECT_GT(n, 400u);
    EXPECT_LT(n, 2000u);
    EXPECT_EQ(t.j["added_tokens"][0]["id"], n - 5);
  }
  // A tiny corpus runs out after two merges.
  BpeTrainOptions options;
  options.vocab_size = 1024;
  Trained t = TrainAndLoad({"ab ab ab"}, options);
  ASSERT_TRUE(t.tok);
  // Pairs of "ab"," ab"," ab": (a,b)x3, (Ġ,a)x2 -> ab; (Ġ,ab)x2 -> Ġab; then nothing twice.
  EXPECT_EQ(t.j["model"]["merges"].size(), 2u);
  EXPECT_EQ(t.j["model"]["vocab"].size(), 256u + 2 + 5);
}

TEST(BpeTrainer, TiesBreakByThePairsBytes) {
  // Every pair occurs once. The lowest bytes win: ' '(0x20) + 'c' before 'a' + 'b'.
  BpeTrainOptions options;
  options.vocab_size = 256 + 5 + 3;
  options.min_frequency = 1;
  Trained t = TrainAndLoad({"ab cd"}, options);
  ASSERT_TRUE(t.tok);
  const json want = json::parse(R"([["Ġ","c"],["Ġc","d"],["a","b"]])");
  EXPECT_EQ(t.j["model"]["merges"], want) << t.j["model"]["merges"].dump();
}

TEST(BpeTrainer, MostFrequentPairMergesFirst) {
  // One word per line: hug x10, pug x5, pun x12, bun x4, hugs x5. Pair counts:
  // u+g 20, p+u 17, u+n 16, h+u 15 -> "ug". Then h+ug 15, p+ug 5, p+u 12,
  // u+n 16 -> "un". Then h+ug 15, p+un 12 -> "hug".
  std::vector<std::string> corpus;
  auto add = [&](const std::string& w, int n) { for (int i = 0; i < n; ++i) corpus.push_back(w); };
  add("hug", 10);
  add("pug", 5);
  add("pun", 12);
  add("bun", 4);
  add("hugs", 5);
  BpeTrainOptions options;
  options.vocab_size = 256 + 5 + 3;
  Trained t = TrainAndLoad(corpus, options);
  ASSERT_TRUE(t.tok);
  const json want = json::parse(R"([["u","g"],["u","n"],["h","ug"]])");
  EXPECT_EQ(t.j["model"]["merges"], want) << t.j["model"]["merges"].dump();
}

TEST(BpeTrainer, SpecialTokensTakeTheIdsAfterTheMergesAndEncodeAsOne) {
  BpeTrainOptions options;
  options.vocab_size = 400;
  Trained t = TrainAndLoad(SceneCorpus(2000), options);
  ASSERT_TRUE(t.tok);
  ASSERT_EQ(t.j["model"]["vocab"].size(), 400u);
  const int32_t first_special = 400 - 5;
  const json& added = t.j["added_tokens"];
  ASSERT_EQ(added.size(), 5u);
  for (size_t i = 0; i < options.special_tokens.size(); ++i) {
    const std::string& s = options.special_tokens[i];
    EXPECT_EQ(added[i]["content"], s);
    EXPECT_EQ(added[i]["id"], first_special + static_cast<int>(i));
    EXPECT_EQ(added[i]["special"], true);
    EXPECT_EQ(t.tok->TokenId(s), first_special + static_cast<int>(i)) << s;
    EXPECT_EQ(t.tok->Encode(s, false), std::vector<int32_t>{first_special + static_cast<int32_t>(i)}) << s;
  }
  // In a prompt the image placeholder is one token between ordinary ones.
  const auto ids = t.tok->Encode("USER: <image>\nWhat color is the star? ASSISTANT: red</s>", false);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), first_special + 4), 1);
  EXPECT_EQ(ids.back(), first_special + 1);
  EXPECT_EQ(t.tok->Decode(ids), "USER: <image>\nWhat color is the star? ASSISTANT: red</s>");
}

TEST(BpeTrainer, SpecialTokenTextInTheCorpusDoesNotShapeMerges) {
  // "<image>" appears often but is cut out before counting: no merge of '<'.
  std::vector<std::string> corpus(50, "<image> a b");
  BpeTrainOptions options;
  options.vocab_size = 300;
  Trained t = TrainAndLoad(corpus, options);
  ASSERT_TRUE(t.tok);
  for (const auto& m : t.j["model"]["merges"]) {
    EXPECT_EQ(m[0].get<std::string>().find('<'), std::string::npos) << m.dump();
  }
}

TEST(BpeTrainer, IsDeterministicAndIndependentOfLineOrder) {
  BpeTrainOptions options;
  options.vocab_size = 450;
  auto corpus = SceneCorpus(1500);
  auto a = TrainByteLevelBpe(corpus, options);
  std::reverse(corpus.begin(), corpus.end());
  auto b = TrainByteLevelBpe(corpus, options);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*a, *b);
}

TEST(BpeTrainer, RejectsBadOptions) {
  const auto corpus = SceneCorpus(50);
  BpeTrainOptions small;
  small.vocab_size = 260;  // < 256 + 5 specials
  auto r = TrainByteLevelBpe(corpus, small);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status().message();
  EXPECT_NE(r.status().message().find("261"), std::string::npos) << r.status().message();

  BpeTrainOptions options;
  EXPECT_EQ(TrainByteLevelBpe({}, options).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(TrainByteLevelBpe({"", ""}, options).status().code(), StatusCode::kInvalidArgument);

  BpeTrainOptions twice;
  twice.special_tokens = {"<s>", "<s>"};
  EXPECT_EQ(TrainByteLevelBpe(corpus, twice).status().code(), StatusCode::kInvalidArgument);
  BpeTrainOptions empty_special;
  empty_special.special_tokens = {""};
  EXPECT_EQ(TrainByteLevelBpe(corpus, empty_special).status().code(), StatusCode::kInvalidArgument);
  BpeTrainOptions min_freq;
  min_freq.min_frequency = 0;
  EXPECT_EQ(TrainByteLevelBpe(corpus, min_freq).status().code(), StatusCode::kInvalidArgument);
  BpeTrainOptions byte_special;
  byte_special.special_tokens = {"a"};  // collides with the byte token 'a'
  EXPECT_EQ(TrainByteLevelBpe(corpus, byte_special).status().code(), StatusCode::kInvalidArgument);
}

// --- Parity with HF tokenizers (goldens from tests/conformance/bpe_trainer_parity.py) ---

struct ParityCases {
  BpeTrainOptions options;
  std::vector<std::string> corpus;
  std::vector<std::string> probes;
};

bool ReadText(const std::string& path, std::string* out) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return false;
  std::ostringstream ss;
  ss << f.rdbuf();
  *out = ss.str();
  return true;
}

bool ReadParityCases(const std::string& path, ParityCases* c) {
  std::string text;
  if (!ReadText(path, &text)) return false;
  const json j = json::parse(text, nullptr, false);
  if (j.is_discarded()) return false;
  c->options.vocab_size = j["options"]["vocab_size"].get<int>();
  c->options.min_frequency = j["options"]["min_frequency"].get<int>();
  c->options.special_tokens = j["options"]["special_tokens"].get<std::vector<std::string>>();
  c->corpus = j["corpus"].get<std::vector<std::string>>();
  c->probes = j["probes"].get<std::vector<std::string>>();
  return true;
}

std::string ParityDir() { return testing::SourceDir() + "/tests/golden/bpe_trainer"; }

// Run by the conformance script only: trains on cases.json and writes the
// tokenizer.json that HF tokenizers then encodes with.
TEST(BpeTrainerParity, DISABLED_WriteTokenizerJson) {
  const char* dir = std::getenv("BITLENS_BPE_PARITY_DIR");
  ASSERT_NE(dir, nullptr) << "set BITLENS_BPE_PARITY_DIR (tests/conformance/bpe_trainer_parity.py does)";
  ParityCases c;
  ASSERT_TRUE(ReadParityCases(std::string(dir) + "/cases.json", &c));
  auto text = TrainByteLevelBpe(c.corpus, c.options);
  ASSERT_TRUE(text.ok()) << text.status().message();
  std::ofstream(std::string(dir) + "/tokenizer.json", std::ios::binary) << *text;
}

TEST(BpeTrainerParity, RetrainingReproducesTheCheckedFileAndHfIds) {
  ParityCases c;
  ASSERT_TRUE(ReadParityCases(ParityDir() + "/cases.json", &c)) << ParityDir() << "/cases.json";
  std::string golden;
  ASSERT_TRUE(ReadText(ParityDir() + "/tokenizer.json", &golden));
  auto text = TrainByteLevelBpe(c.corpus, c.options);
  ASSERT_TRUE(text.ok()) << text.status().message();
  // The HF ids below were computed with exactly this file.
  EXPECT_TRUE(*text == golden) << "the trainer's output changed: rerun tests/conformance/bpe_trainer_parity.py";

  std::string hf_text;
  ASSERT_TRUE(ReadText(ParityDir() + "/hf_ids.json", &hf_text));
  const json hf = json::parse(hf_text, nullptr, false);
  ASSERT_FALSE(hf.is_discarded());
  const json& want = hf["ids"];
  ASSERT_EQ(want.size(), c.probes.size());
  auto tok = Tokenizer::Load(ParityDir() + "/tokenizer.json");
  ASSERT_TRUE(tok.ok()) << tok.status().message();
  int mismatches = 0;
  size_t tokens = 0;
  for (size_t i = 0; i < c.probes.size(); ++i) {
    const auto ids = (*tok)->Encode(c.probes[i], /*add_bos=*/false);
    const auto expected = want[i].get<std::vector<int32_t>>();
    tokens += expected.size();
    if (ids != expected && ++mismatches <= 5) {
      ADD_FAILURE() << "probe " << i << " '" << c.probes[i] << "': bitlens " << ::testing::PrintToString(ids)
                    << " vs HF " << ::testing::PrintToString(expected);
    }
    EXPECT_EQ((*tok)->Decode(ids), c.probes[i]);
  }
  EXPECT_EQ(mismatches, 0) << "of " << c.probes.size() << " probes";
  EXPECT_GT(tokens, 1000u);
}

}  // namespace
}  // namespace bitlens
