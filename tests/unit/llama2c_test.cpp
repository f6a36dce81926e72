// llama2.c conversion: stories260K converted to an HF Llama directory must
// greedily reproduce the 200 ids (and text) of llama2.c's reference run.c,
// through the library and through the CLI; malformed inputs fail in one line.
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sentencepiece_processor.h>

#include "formats/llama2c.h"
#include "model/model.h"
#include "runtime/session.h"
#include "test_paths.h"

namespace bitlens {
namespace {

namespace fs = std::filesystem;
using testing::RunCli;

// A per-test directory beside ScratchDir(), which every call to it empties.
std::string WorkDir() {
  const std::string dir = testing::ScratchDir() + "-work";
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<int32_t> ReadIds(const std::string& path) {
  std::istringstream in(Slurp(path));
  std::vector<int32_t> ids;
  for (int32_t id; in >> id;) ids.push_back(id);
  return ids;
}

std::string FirstMismatch(const std::vector<int32_t>& got, const std::vector<int32_t>& want) {
  for (size_t i = 0; i < std::min(got.size(), want.size()); ++i) {
    if (got[i] != want[i]) {
      return "first mismatch at " + std::to_string(i) + ": got " + std::to_string(got[i]) + ", want " +
             std::to_string(want[i]);
    }
  }
  return "sizes " + std::to_string(got.size()) + " vs " + std::to_string(want.size());
}

// Decoder + session only (no tokenizer): the weights and the forward pass.
std::unique_ptr<Model> LoadDecoderOnly(const std::string& dir) {
  auto m = std::make_unique<Model>();
  m->dir = dir;
  auto config = LoadModelConfig(dir);
  EXPECT_TRUE(config.ok()) << config.status().message();
  m->config = *config;
  auto ckpt = Checkpoint::Open(dir);
  EXPECT_TRUE(ckpt.ok()) << ckpt.status().message();
  m->checkpoint = *ckpt;
  auto decoder = Decoder::Load(m->checkpoint, m->config.text);
  EXPECT_TRUE(decoder.ok()) << decoder.status().message();
  if (!decoder.ok()) return nullptr;
  m->decoder = std::move(*decoder);
  m->bos_id = 1;
  m->eos_ids = {2};
  return m;
}

class Stories260K : public ::testing::Test {
 protected:
  void SetUp() override {
    bin_ = testing::TestDataPath("stories260K/stories260K.bin");
    tok_ = testing::TestDataPath("stories260K/tok512.bin");
    if (bin_.empty() || tok_.empty()) GTEST_SKIP() << "test data 'stories260K/' not found (set BITLENS_TEST_DATA)";
    work_ = WorkDir();
    dir_ = work_ + "/stories260K-hf";
    const Status s = ConvertLlama2c(bin_, tok_, dir_);
    ASSERT_TRUE(s.ok()) << s.message();
    want_ids_ = ReadIds(testing::TestDataPath("stories260K/greedy200_ids.txt"));
    ASSERT_EQ(want_ids_.size(), 200u);
  }
  std::string bin_, tok_, work_, dir_;
  std::vector<int32_t> want_ids_;
};

TEST_F(Stories260K, ConvertedDirectoryHoldsAnHfLlamaCheckpoint) {
  for (const char* f : {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                        "generation_config.json"}) {
    EXPECT_TRUE(fs::exists(fs::path(dir_) / f)) << f;
  }
  auto config = LoadModelConfig(dir_);
  ASSERT_TRUE(config.ok()) << config.status().message();
  EXPECT_EQ(config->text.hidden_size, 64);
  EXPECT_EQ(config->text.intermediate_size, 172);
  EXPECT_EQ(config->text.num_hidden_layers, 5);
  EXPECT_EQ(config->text.num_attention_heads, 8);
  EXPECT_EQ(config->text.num_key_value_heads, 4);
  EXPECT_EQ(config->text.vocab_size, 512);
  EXPECT_EQ(config->text.max_position_embeddings, 512);
  EXPECT_TRUE(config->text.tie_word_embeddings);
  auto ckpt = Checkpoint::Open(dir_);
  ASSERT_TRUE(ckpt.ok());
  EXPECT_FALSE(ckpt->Has("lm_head.weight"));
  EXPECT_EQ(ckpt->Names().size(), 2u + 5u * 9u);
  // No temporary directory is left beside the output.
  for (const auto& e : fs::directory_iterator(fs::path(dir_).parent_path())) {
    EXPECT_EQ(e.path().filename().string().find(".tmp"), std::string::npos) << e.path();
  }
}

TEST_F(Stories260K, GreedyFromBosReproducesLlama2cThroughTheSession) {
  auto model = LoadDecoderOnly(dir_);
  ASSERT_NE(model, nullptr);
  auto session = Session::Create(*model, SessionOptions{});
  ASSERT_TRUE(session.ok()) << session.status().message();
  GenerateOptions options;
  options.max_tokens = 200;
  auto result = (*session)->Generate({1}, nullptr, options);
  ASSERT_TRUE(result.ok()) << result.status().message();
  EXPECT_EQ(result->ids, want_ids_) << FirstMismatch(result->ids, want_ids_);
  EXPECT_EQ(result->finish_reason, "length");
  EXPECT_EQ(result->timings.generated_tokens, 200);
}

TEST_F(Stories260K, BatchedPrefillMatchesTokenByTokenDecoding) {
  // Prefill of 40 ids in one forward must leave the same next-token logits as
  // feeding them one at a time.
  auto model = LoadDecoderOnly(dir_);
  ASSERT_NE(model, nullptr);
  auto session = Session::Create(*model, SessionOptions{});
  ASSERT_TRUE(session.ok());
  std::vector<int32_t> ids = {1};
  ids.insert(ids.end(), want_ids_.begin(), want_ids_.begin() + 39);
  ASSERT_TRUE((*session)->Prefill(ids.data(), ids.size(), nullptr).ok());
  std::vector<float> batched((*session)->logits(), (*session)->logits() + 512);
  ASSERT_TRUE((*session)->Prefill(ids.data(), 1, nullptr).ok());
  for (size_t i = 1; i < ids.size(); ++i) ASSERT_TRUE((*session)->DecodeStep(ids[i]).ok());
  float worst = 0;
  for (int i = 0; i < 512; ++i) worst = std::max(worst, std::abs(batched[i] - (*session)->logits()[i]));
  EXPECT_LT(worst, 1e-4f) << "max |batched - stepwise| logit difference " << worst;
}

TEST_F(Stories260K, LoadModelAndGenerateDecodesTheReferenceText) {
  auto model = LoadModel(dir_);
  ASSERT_TRUE(model.ok()) << model.status().message();
  ASSERT_NE((*model)->tokenizer, nullptr);
  auto session = Session::Create(**model, SessionOptions{});
  ASSERT_TRUE(session.ok());
  auto prompt = (*session)->TokenizePrompt("", false, ChatMode::kAuto);
  ASSERT_TRUE(prompt.ok()) << prompt.status().message();
  EXPECT_EQ(*prompt, std::vector<int32_t>{1});
  GenerateOptions options;
  options.max_tokens = 200;
  std::string streamed;
  auto result = (*session)->Generate(*prompt, nullptr, options, [&](int32_t, std::string_view text) {
    streamed += text;
    return true;
  });
  ASSERT_TRUE(result.ok()) << result.status().message();
  EXPECT_EQ(result->ids, want_ids_) << FirstMismatch(result->ids, want_ids_);
  const std::string want_text = Slurp(testing::TestDataPath("stories260K/greedy200_text.txt"));
  EXPECT_EQ(streamed, result->text);
  // run.c's text ends where its 200 steps ended; ours must agree as far as both go.
  const size_t n = std::min(streamed.size(), want_text.size());
  EXPECT_GT(n, 400u);
  EXPECT_EQ(streamed.substr(0, n), want_text.substr(0, n));
}

TEST_F(Stories260K, CliConvertsAndRunsGreedy) {
  const std::string out = work_ + "/cli-hf";
  auto conv = RunCli("convert --from llama2c " + bin_ + " --tokenizer " + tok_ + " -o " + out);
  ASSERT_EQ(conv.exit_code, 0) << conv.err;
  auto run = RunCli("run --model " + out + " --prompt '' --max-tokens 200 --temperature 0");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const std::string want_text = Slurp(testing::TestDataPath("stories260K/greedy200_text.txt"));
  const size_t n = std::min(run.out.size(), want_text.size());
  EXPECT_GT(n, 400u);
  EXPECT_EQ(run.out.substr(0, n), want_text.substr(0, n));
  for (const char* stage : {"load", "prefill", "decode", "tokens/s"}) {
    EXPECT_NE(run.err.find(stage), std::string::npos) << "timing table lacks '" << stage << "':\n" << run.err;
  }
  // Converting onto an existing non-empty directory refuses and leaves it intact.
  auto again = RunCli("convert --from llama2c " + bin_ + " --tokenizer " + tok_ + " -o " + out);
  EXPECT_EQ(again.exit_code, 2);
  EXPECT_NE(again.err.find("already exists"), std::string::npos) << again.err;
}

TEST_F(Stories260K, PromptIsPrefilledAndGreedyContinuesTheReference) {
  auto model = LoadModel(dir_);
  ASSERT_TRUE(model.ok()) << model.status().message();
  auto session = Session::Create(**model, SessionOptions{});
  ASSERT_TRUE(session.ok());
  auto prompt = (*session)->TokenizePrompt("Once upon a time", false, ChatMode::kAuto);
  ASSERT_TRUE(prompt.ok()) << prompt.status().message();
  // run.c's own first tokens spell the same words.
  ASSERT_EQ(*prompt, (std::vector<int32_t>{1, want_ids_[0], want_ids_[1], want_ids_[2], want_ids_[3]}));
  GenerateOptions options;
  options.max_tokens = 50;
  auto result = (*session)->Generate(*prompt, nullptr, options);
  ASSERT_TRUE(result.ok()) << result.status().message();
  const std::vector<int32_t> want(want_ids_.begin() + 4, want_ids_.begin() + 54);
  EXPECT_EQ(result->ids, want) << FirstMismatch(result->ids, want);
}

TEST_F(Stories260K, StopStringEndsGenerationBeforeIt) {
  auto model = LoadModel(dir_);
  ASSERT_TRUE(model.ok()) << model.status().message();
  auto session = Session::Create(**model, SessionOptions{});
  ASSERT_TRUE(session.ok());
  GenerateOptions options;
  options.max_tokens = 100;
  options.stop = {"Lily."};
  std::string streamed;
  auto result = (*session)->Generate({1}, nullptr, options, [&](int32_t, std::string_view text) {
    streamed += text;
    return true;
  });
  ASSERT_TRUE(result.ok()) << result.status().message();
  EXPECT_EQ(result->finish_reason, "stop");
  EXPECT_EQ(result->text, "Once upon a time, there was a little girl named ");
  EXPECT_EQ(streamed, result->text);
}

TEST_F(Stories260K, CliRefusesAPromptLongerThanTheContext) {
  auto model = LoadModel(dir_);
  ASSERT_TRUE(model.ok()) << model.status().message();
  const std::string text = "Once upon a time, there was a little girl named Lily. She loved to play outside.";
  const size_t n = (*model)->tokenizer->Encode(text, true).size();
  ASSERT_GT(n, 16u);
  auto r = RunCli("run --model " + dir_ + " --prompt '" + text + "' --max-context 16 --max-tokens 8");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "bitlens: prompt has " + std::to_string(n) +
                       " tokens + 8 to generate but the context holds 16; lower --max-tokens or raise --max-context\n");
  EXPECT_EQ(r.out, "");
}

TEST_F(Stories260K, CliRefusesBadSamplingFlagsInOneLine) {
  const std::string base = "run --model " + dir_ + " --prompt hi ";
  const std::pair<const char*, const char*> cases[] = {
      {"--top-p 0", "bitlens: --top-p must be in (0, 1] (1 = off)\n"},
      {"--temperature -1", "bitlens: --temperature must be >= 0 (0 = greedy)\n"},
      {"--repeat-penalty 0", "bitlens: --repeat-penalty must be > 0 (1 = off)\n"},
      {"--max-context 0", "bitlens: --max-context must be positive\n"},
  };
  for (const auto& [flags, message] : cases) {
    auto r = RunCli(base + flags);
    EXPECT_EQ(r.exit_code, 2) << flags;
    EXPECT_EQ(r.err, message) << flags;
  }
}

TEST_F(Stories260K, SeededSamplingIsReproducibleThroughTheCli) {
  const std::string args = "run --model " + dir_ + " --prompt 'Once upon a time' --max-tokens 40 --temperature 1 "
                           "--top-p 0.9 --top-k 40 --repeat-penalty 1.1 --seed 7";
  auto a = RunCli(args), b = RunCli(args);
  ASSERT_EQ(a.exit_code, 0) << a.err;
  ASSERT_EQ(b.exit_code, 0) << b.err;
  EXPECT_EQ(a.out, b.out);
  EXPECT_GT(a.out.size(), 40u);
}

TEST(Llama2c, TruncatedCheckpointIsRejectedWithSizes) {
  BL_REQUIRE_TEST_DATA(bin, "stories260K/stories260K.bin");
  BL_REQUIRE_TEST_DATA(tok, "stories260K/tok512.bin");
  const std::string dir = WorkDir();
  const std::string cut = dir + "/cut.bin";
  const std::string bytes = Slurp(bin);
  std::ofstream(cut, std::ios::binary) << bytes.substr(0, bytes.size() - 100);
  auto r = RunCli("convert --from llama2c " + cut + " --tokenizer " + tok + " -o " + dir + "/out");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("cut.bin: the header (dim 64, 5 layers, vocab 512, shared classifier) implies 1056540 bytes "
                       "but the file has 1056440 (truncated?)"),
            std::string::npos)
      << r.err;
  EXPECT_FALSE(fs::exists(dir + "/out"));
}

TEST(Llama2c, TokenizerWithTooFewTokensIsRejected) {
  BL_REQUIRE_TEST_DATA(bin, "stories260K/stories260K.bin");
  BL_REQUIRE_TEST_DATA(tok, "stories260K/tok512.bin");
  const std::string dir = WorkDir();
  const std::string cut = dir + "/tok.bin";
  const std::string bytes = Slurp(tok);
  std::ofstream(cut, std::ios::binary) << bytes.substr(0, 600);
  const Status s = ConvertLlama2c(bin, cut, dir + "/out");
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "tok.bin: token 42 has length 6 (max_token_length 7, 2 bytes left)");
  EXPECT_FALSE(fs::exists(dir + "/out"));
}

TEST(Llama2c, HeaderWithNonsenseSizesIsRejected) {
  const int32_t header[7] = {64, 172, 5, 7, 4, 512, 512};  // 7 heads do not divide dim 64
  auto r = ParseLlama2cHeader(reinterpret_cast<const uint8_t*>(header), sizeof(header), "/x/bad.bin");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("bad.bin: not a llama2.c checkpoint: n_heads must divide dim"), std::string::npos)
      << r.status().message();
  const int32_t magic[7] = {0x616b3432, 1, 0, 0, 0, 0, 0};
  r = ParseLlama2cHeader(reinterpret_cast<const uint8_t*>(magic), sizeof(magic), "v1.bin");
  EXPECT_EQ(r.status().code(), StatusCode::kUnsupported);
}

TEST(Llama2c, UnsharedClassifierAddsLmHeadToTheExpectedSize) {
  Llama2cConfig c;
  c.dim = 64, c.hidden_dim = 172, c.n_layers = 5, c.n_heads = 8, c.n_kv_heads = 4, c.vocab_size = 512, c.seq_len = 512;
  EXPECT_EQ(c.ExpectedBytes(), 1056540);
  c.shared_classifier = false;
  EXPECT_EQ(c.ExpectedBytes(), 1056540 + 512 * 64 * 4);
}

TEST(Llama2c, MergesRankByMergedPieceScore) {
  Llama2cVocab v;
  v.pieces = {"<unk>", "<s>", "</s>", "a", "b", "c", "ab", "abc", "bc"};
  v.scores = {0, 0, 0, 0, 0, 0, -1, -3, -2};
  const auto merges = SentencePieceMerges(v);
  ASSERT_EQ(merges.size(), 4u);
  EXPECT_EQ(merges[0], std::make_pair(std::string("a"), std::string("b")));   // ab  (-1)
  EXPECT_EQ(merges[1], std::make_pair(std::string("b"), std::string("c")));   // bc  (-2)
  EXPECT_EQ(merges[2], std::make_pair(std::string("a"), std::string("bc")));  // abc (-3), left id 3 < 6
  EXPECT_EQ(merges[3], std::make_pair(std::string("ab"), std::string("c")));
}

// Llama 2's SentencePiece model exported the way llama2.c's tokenizer.py
// does, then converted: vocabulary and merges must equal the tokenizer.json
// that transformers wrote for the same model (llava-1.5-7b-hf).
TEST(Llama2c, Llama2TokenizerConvertsToTransformersTokenizerJson) {
  BL_REQUIRE_TEST_DATA(model_path, "tokenizers/llama2-spm/tokenizer.model");
  BL_REQUIRE_TEST_DATA(reference_path, "tokenizers/llava-1.5/tokenizer.json");
  sentencepiece::SentencePieceProcessor sp;
  ASSERT_TRUE(sp.Load(model_path).ok());
  std::string bin;
  auto put = [&bin](const void* p, size_t n) { bin.append(static_cast<const char*>(p), n); };
  std::vector<std::string> pieces;
  int32_t max_len = 0;
  for (int i = 0; i < sp.GetPieceSize(); ++i) {
    const std::string piece = i == sp.bos_id() ? "\n<s>\n" : i == sp.eos_id() ? "\n</s>\n" : sp.IdToPiece(i);
    std::string t;  // U+2581 written as ' ', as the export does
    for (size_t at = 0; at < piece.size();) {
      if (piece.compare(at, 3, "\xe2\x96\x81") == 0) t += ' ', at += 3;
      else t += piece[at++];
    }
    max_len = std::max<int32_t>(max_len, t.size());
    pieces.push_back(t);
  }
  put(&max_len, 4);
  for (int i = 0; i < sp.GetPieceSize(); ++i) {
    const float score = sp.GetScore(i);
    const int32_t len = pieces[i].size();
    put(&score, 4);
    put(&len, 4);
    bin += pieces[i];
  }
  const std::string path = WorkDir() + "/llama2.bin";
  std::ofstream(path, std::ios::binary) << bin;
  auto vocab = ReadLlama2cTokenizer(path, sp.GetPieceSize());
  ASSERT_TRUE(vocab.ok()) << vocab.status().message();
  const auto reference = nlohmann::json::parse(Slurp(reference_path));
  const auto& ref_vocab = reference["model"]["vocab"];
  ASSERT_EQ(ref_vocab.size(), vocab->pieces.size());
  for (size_t i = 0; i < vocab->pieces.size(); ++i) {
    ASSERT_EQ(ref_vocab[vocab->pieces[i]].get<int>(), static_cast<int>(i)) << vocab->pieces[i];
  }
  const auto merges = SentencePieceMerges(*vocab);
  const auto& ref_merges = reference["model"]["merges"];
  ASSERT_EQ(merges.size(), ref_merges.size());
  for (size_t i = 0; i < merges.size(); ++i) {
    ASSERT_EQ(merges[i].first, ref_merges[i][0].get<std::string>()) << "merge " << i;
    ASSERT_EQ(merges[i].second, ref_merges[i][1].get<std::string>()) << "merge " << i;
  }
}

}  // namespace
}  // namespace bitlens
