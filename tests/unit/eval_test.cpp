// bitlens eval on a synthesized tiny LLaVA: the metric arithmetic on hand-made
// rows, a model against itself (KL 0, agreement 1) and against another seed,
// answers that are the model's own greedy outputs (accuracy 1), teacher-forced
// perplexity recomputed here from the Session's logits, the JSONL reader, and
// bad flags (exit 2).
#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "model/model.h"
#include "runtime/eval.h"
#include "runtime/eval_metrics.h"
#include "runtime/sampler.h"
#include "runtime/session.h"
#include "test_paths.h"

namespace bitlens {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::string Synth(const std::string& family, uint64_t seed, const std::string& name) {
  const std::string dir = testing::ScratchDir() + "-work/" + name;
  fs::remove_all(dir);
  auto r = testing::RunCli("synth --family " + family + " --preset tiny --seed " + std::to_string(seed) + " -o " + dir);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return dir;
}

std::unique_ptr<Model> Load(const std::string& dir) {
  auto m = LoadModel(dir);
  EXPECT_TRUE(m.ok()) << m.status().message();
  return m.ok() ? std::move(m).value() : nullptr;
}

Image Solid(int size, uint8_t r, uint8_t g, uint8_t b) {
  Image im;
  im.width = im.height = size;
  for (int i = 0; i < size * size; ++i) im.rgb.insert(im.rgb.end(), {r, g, b});
  return im;
}

// Six items over three kinds, each with its own image.
std::vector<EvalItem> HandItems() {
  std::vector<EvalItem> items;
  const char* kinds[] = {"color", "shape", "caption"};
  for (int i = 0; i < 6; ++i) {
    EvalItem it;
    it.kind = kinds[i % 3];
    it.question = i % 3 == 2 ? "Describe the image." : "What color is the object?";
    it.answer = i % 3 == 2 ? "A red circle in the top left." : "red";
    it.image = Solid(64, static_cast<uint8_t>(40 * i), 128, static_cast<uint8_t>(255 - 30 * i));
    items.push_back(std::move(it));
  }
  return items;
}

TEST(EvalMetrics, NormalizeTrimsAndLowercasesOnly) {
  EXPECT_EQ(NormalizeAnswer("  Red\n"), "red");
  EXPECT_EQ(NormalizeAnswer("\tTOP Left "), "top left");
  EXPECT_EQ(NormalizeAnswer("top  left"), "top  left");  // inner spaces count
  EXPECT_EQ(NormalizeAnswer("red."), "red.");            // punctuation counts
  EXPECT_EQ(NormalizeAnswer("\xC3\x89t\xC3\xA9"), "\xC3\x89t\xC3\xA9");  // non-ASCII untouched
  EXPECT_EQ(NormalizeAnswer("   "), "");
}

TEST(EvalMetrics, NllAndKlOnHandRows) {
  const float uniform[4] = {0, 0, 0, 0};
  EXPECT_NEAR(TokenNll(uniform, 4, 2), std::log(4.0), 1e-12);
  // softmax(log 0.5, log 0.5) vs softmax(log 0.25, log 0.75), shifted by a constant.
  const float p[2] = {static_cast<float>(std::log(0.5)), static_cast<float>(std::log(0.5))};
  const float q[2] = {static_cast<float>(std::log(0.25) + 7), static_cast<float>(std::log(0.75) + 7)};
  const double want = 0.5 * std::log(0.5 / 0.25) + 0.5 * std::log(0.5 / 0.75);
  EXPECT_NEAR(KlDivergence(p, q, 2), want, 1e-6);
  EXPECT_NEAR(TokenNll(q, 2, 1), -std::log(0.75), 1e-6);
  EXPECT_EQ(KlDivergence(q, q, 2), 0.0);
  EXPECT_GT(KlDivergence(q, p, 2), 0.0);
}

TEST(Eval, ModelAgainstItselfHasZeroKlAndFullAgreement) {
  auto model = Load(Synth("llava", 0, "a"));
  auto same = Load(Synth("llava", 0, "b"));
  ASSERT_TRUE(model && same);
  auto r = Evaluate(*model, same.get(), HandItems(), EvalOptions{});
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->all.count, 6);
  EXPECT_GT(r->all.compared, 6);
  EXPECT_EQ(r->all.compared, r->all.answer_tokens);
  EXPECT_EQ(r->all.kl(), 0.0) << r->all.kl();
  EXPECT_EQ(r->all.top1_agreement(), 1.0);
  EXPECT_EQ(r->kinds.size(), 3u);
  EXPECT_EQ(r->kinds.at("caption").count, 2);
  EXPECT_EQ(r->answers.count, 4);  // captions are not in the headline accuracy
}

TEST(Eval, AnotherModelAsReferenceDiverges) {
  auto model = Load(Synth("llava", 0, "a"));
  auto other = Load(Synth("llava", 1, "b"));
  ASSERT_TRUE(model && other);
  auto r = Evaluate(*model, other.get(), HandItems(), EvalOptions{});
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_GT(r->all.kl(), 1e-3);
  EXPECT_LT(r->all.top1_agreement(), 1.0);
  EXPECT_GE(r->all.top1_agreement(), 0.0);
}

TEST(Eval, PerplexityIsTheTeacherForcedAnswerNll) {
  auto model = Load(Synth("llava", 0, "a"));
  ASSERT_TRUE(model);
  std::vector<EvalItem> items = HandItems();
  items.resize(1);
  auto r = Evaluate(*model, nullptr, items, EvalOptions{});
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_FALSE(r->has_reference());

  // Recomputed: prompt as `bitlens run` builds it, then " red" and EOS.
  auto session = Session::Create(*model, SessionOptions{});
  ASSERT_TRUE(session.ok());
  auto prompt = (*session)->TokenizePrompt(items[0].question, true, ChatMode::kAuto);
  ASSERT_TRUE(prompt.ok());
  std::vector<int32_t> targets = model->tokenizer->Encode(" red", false);
  targets.push_back(model->eos_ids.front());
  std::vector<int32_t> ids = *prompt;
  ids.insert(ids.end(), targets.begin(), targets.end());
  Timings t;
  auto embeds = (*session)->EncodeImage(*items[0].image, &t);
  ASSERT_TRUE(embeds.ok());
  auto logits = (*session)->EvaluateLogits(ids, *embeds);
  ASSERT_TRUE(logits.ok());
  const int64_t vocab = model->config.text.vocab_size;
  double nll = 0;
  for (size_t j = 0; j < targets.size(); ++j) {
    const float* row = logits->data() + (prompt->size() - 1 + j) * vocab;
    double m = row[0], sum = 0;
    for (int64_t v = 0; v < vocab; ++v) m = std::max<double>(m, row[v]);
    for (int64_t v = 0; v < vocab; ++v) sum += std::exp(row[v] - m);
    nll += m + std::log(sum) - row[targets[j]];
  }
  EXPECT_EQ(r->all.answer_tokens, static_cast<int64_t>(targets.size()));
  EXPECT_NEAR(r->all.perplexity(), std::exp(nll / targets.size()), 1e-9 * std::exp(nll / targets.size()));
  // A random tiny model: near-uniform over 512 tokens, far from certain.
  EXPECT_GT(r->all.perplexity(), 50.0);
}

TEST(Eval, OwnGreedyAnswersScoreOneAndOthersZero) {
  auto model = Load(Synth("llava", 0, "a"));
  ASSERT_TRUE(model);
  auto first = Evaluate(*model, nullptr, HandItems(), EvalOptions{});
  ASSERT_TRUE(first.ok()) << first.status().message();
  std::vector<EvalItem> items = HandItems();
  for (size_t i = 0; i < items.size(); ++i) {
    // Items 0..3 get the model's own greedy answer (upper-cased: normalization
    // ignores case); 4 and 5 keep an answer the model did not give.
    if (i < 4) {
      std::string a = first->predictions[i].prediction;
      for (char& c : a) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      items[i].answer = "  " + a + " ";
    }
    ASSERT_NE(NormalizeAnswer(first->predictions[i].prediction), NormalizeAnswer(HandItems()[i].answer));
  }
  auto r = Evaluate(*model, nullptr, items, EvalOptions{});
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->all.correct, 4);
  EXPECT_EQ(r->kinds.at("color").correct, 2);   // items 0, 3
  EXPECT_EQ(r->kinds.at("shape").correct, 1);   // item 1 (4 kept "red")
  EXPECT_EQ(r->kinds.at("caption").correct, 1); // item 2 (5 kept the caption)
  EXPECT_DOUBLE_EQ(r->answers.accuracy(), 3.0 / 4.0);
}

// Writes a JSONL file of the golden test images with the given answers.
std::string WriteJsonl(const std::string& dir, const std::vector<std::string>& answers) {
  const std::string images = testing::SourceDir() + "/tests/golden/vision/inputs/";
  const char* files[] = {"interlaced_rgb.png", "palette4.png", "grey.jpg"};
  const char* kinds[] = {"color", "position", "caption"};
  std::string text;
  for (size_t i = 0; i < answers.size(); ++i) {
    json j;
    j["image"] = images + files[i % 3];
    j["prompt"] = i % 3 == 2 ? "Describe the image." : "Where is the star?";
    j["answer"] = answers[i];
    j["kind"] = kinds[i % 3];
    text += j.dump() + "\n";
  }
  const std::string path = dir + "/eval.jsonl";
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

TEST(Eval, CliOnOwnGreedyAnswersFromJsonlGivesAccuracyOne) {
  const std::string model = Synth("llava", 0, "a");
  const std::string dir = testing::ScratchDir();
  const std::string path = WriteJsonl(dir, {"x", "x", "x", "x", "x", "x"});
  auto items = ReadEvalJsonl(path);
  ASSERT_TRUE(items.ok()) << items.status().message();
  ASSERT_EQ(items->size(), 6u);
  EXPECT_EQ((*items)[1].kind, "position");
  auto m = Load(model);
  ASSERT_TRUE(m);
  auto first = Evaluate(*m, nullptr, *items, EvalOptions{});
  ASSERT_TRUE(first.ok()) << first.status().message();
  std::vector<std::string> own;
  for (const auto& p : first->predictions) own.push_back(p.prediction);
  WriteJsonl(dir, own);

  auto r = testing::RunCli("eval --model " + model + " --data " + path + " --json " + dir + "/report.json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("answers"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("eval 6/6"), std::string::npos) << r.err;
  const json report = json::parse(Slurp(dir + "/report.json"), nullptr, false);
  ASSERT_FALSE(report.is_discarded());
  EXPECT_EQ(report["items"], 6);
  EXPECT_EQ(report["accuracy"], 1.0) << report.dump(1);
  EXPECT_EQ(report["kinds"]["caption"]["correct"], 2);
  EXPECT_TRUE(report["kl"].is_null() || !report.contains("kl"));
  EXPECT_EQ(report["predictions"].size(), 6u);
  // --count caps the items read from the file.
  auto two = testing::RunCli("eval --model " + model + " --data " + path + " --count 2 --json " + dir + "/two.json");
  ASSERT_EQ(two.exit_code, 0) << two.err;
  EXPECT_EQ(json::parse(Slurp(dir + "/two.json"))["items"], 2);
}

// Quantized checkpoints run through the same path; against the float model
// the 8-bit one stays much closer than the 2-bit one.
TEST(Eval, QuantizedModelsAgainstTheFloatReference) {
  const std::string fp = Synth("llava", 0, "a");
  const std::string dir = testing::ScratchDir();
  auto q2 = testing::RunCli("quantize --model " + fp + " -o " + dir + "/q2");
  ASSERT_EQ(q2.exit_code, 0) << q2.err;
  auto q8 = testing::RunCli("quantize --model " + fp + " -o " + dir + "/q8 --vision w8 --projector w8 --decoder w8 "
                            "--embed w8 --lm-head w8");
  ASSERT_EQ(q8.exit_code, 0) << q8.err;
  auto ref = Load(fp);
  auto m2 = Load(dir + "/q2");
  auto m8 = Load(dir + "/q8");
  ASSERT_TRUE(ref && m2 && m8);
  auto r2 = Evaluate(*m2, ref.get(), HandItems(), EvalOptions{});
  auto r8 = Evaluate(*m8, ref.get(), HandItems(), EvalOptions{});
  ASSERT_TRUE(r2.ok()) << r2.status().message();
  ASSERT_TRUE(r8.ok()) << r8.status().message();
  EXPECT_GT(r8->all.kl(), 0.0);
  EXPECT_GT(r2->all.kl(), 10 * r8->all.kl()) << "w2 " << r2->all.kl() << " vs w8 " << r8->all.kl();
  EXPECT_GE(r8->all.top1_agreement(), r2->all.top1_agreement());
}

// A SentencePiece model (stories260K converted from llama2.c): the answer
// continues the raw prompt as "▁there ▁was ...", not with a lone "▁" first.
TEST(Eval, SentencePieceAnswerContinuesThePrompt) {
  BL_REQUIRE_TEST_DATA(bin, "stories260K/stories260K.bin");
  const std::string dir = testing::ScratchDir();
  auto c = testing::RunCli("convert --from llama2c " + bin + " --tokenizer " +
                           testing::TestDataPath("stories260K/tok512.bin") + " -o " + dir + "/st");
  ASSERT_EQ(c.exit_code, 0) << c.err;
  auto model = Load(dir + "/st");
  ASSERT_TRUE(model);
  EvalItem item;
  item.question = "Once upon a time,";
  item.answer = "there was a little girl";
  item.kind = "story";
  auto r = Evaluate(*model, nullptr, {item}, EvalOptions{});
  ASSERT_TRUE(r.ok()) << r.status().message();
  const size_t bare = model->tokenizer->Encode(item.answer, false).size();
  ASSERT_NE(model->tokenizer->Encode(" " + item.answer, false).size(), bare);
  EXPECT_EQ(r->all.answer_tokens, static_cast<int64_t>(bare + 1));
  // The trained model's greedy story starts with exactly this answer.
  EXPECT_EQ(r->predictions[0].prediction.rfind("there was a little girl", 0), 0u) << r->predictions[0].prediction;
}

TEST(Eval, JsonlReaderNamesBadLines) {
  const std::string dir = testing::ScratchDir();
  auto write = [&](const std::string& text) {
    std::ofstream(dir + "/x.jsonl", std::ios::binary) << text;
    return dir + "/x.jsonl";
  };
  auto no_answer = ReadEvalJsonl(write("{\"prompt\": \"q\", \"answer\": \"a\"}\n{\"prompt\": \"q\"}\n"));
  EXPECT_EQ(no_answer.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(no_answer.status().message().find("x.jsonl:2"), std::string::npos) << no_answer.status().message();
  auto bad_kind = ReadEvalJsonl(write("{\"prompt\": \"q\", \"answer\": \"a\", \"kind\": 3}\n"));
  EXPECT_EQ(bad_kind.status().code(), StatusCode::kInvalidArgument) << bad_kind.status().message();
  auto no_kind = ReadEvalJsonl(write("\n{\"prompt\": \"q\", \"answer\": \"a\"}\n"));
  ASSERT_TRUE(no_kind.ok()) << no_kind.status().message();
  EXPECT_EQ((*no_kind)[0].kind, "other");
  EXPECT_EQ(ReadEvalJsonl(dir + "/missing.jsonl").status().code(), StatusCode::kNotFound);
}

TEST(Eval, ReferenceWithAnotherShapeIsRejected) {
  auto model = Load(Synth("llava", 0, "a"));
  auto text_only = Load(Synth("llama", 0, "b"));
  ASSERT_TRUE(model && text_only);
  auto r = Evaluate(*model, text_only.get(), HandItems(), EvalOptions{});
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status().message();
  EXPECT_EQ(Evaluate(*model, nullptr, {}, EvalOptions{}).status().code(), StatusCode::kInvalidArgument);
  EvalOptions zero;
  zero.max_new_tokens = 0;
  EXPECT_EQ(Evaluate(*model, nullptr, HandItems(), zero).status().code(), StatusCode::kInvalidArgument);
}

TEST(Eval, BadFlagsExitTwo) {
  const std::string model = Synth("llava", 0, "a");
  const std::string dir = testing::ScratchDir();
  const std::string data = WriteJsonl(dir, {"red"});
  const std::string text_only = Synth("llama", 0, "b");
  for (const std::string& args : {
           std::string("eval"),                                             // --model is required
           "eval --model " + model + " --count 0",                          // count must be positive
           "eval --model " + model + " --count -3",
           "eval --model " + model + " --split dev",                        // unknown split
           "eval --model " + model + " --split test --data " + data,        // two sources
           "eval --model " + model + " --data " + dir + "/missing.jsonl",   // no such file
           "eval --model " + model + " --data " + data + " --reference " + text_only,  // not comparable
           "eval --model " + model + " --data " + data + " --max-new-tokens 0",
           "eval --model " + model + " --activations a4",
           "eval --model " + model + " --catalog-fraction 1.5",
           "eval --model " + model + " --image-size 0",
           "eval --model " + dir + "/no-model --data " + data,
       }) {
    auto r = testing::RunCli(args);
    EXPECT_EQ(r.exit_code, 2) << args << "\n" << r.err;
  }
}

TEST(Eval, SyntheticItemsCarryTheGeneratorsKinds) {
  train::DataOptions data;
  auto items = SyntheticEvalItems(data, train::Split::kTest, 40);
  ASSERT_TRUE(items.ok()) << items.status().message();
  ASSERT_EQ(items->size(), 40u);
  for (int64_t i = 0; i < 40; ++i) {
    const train::VqaSample s = train::MakeSample(data, train::Split::kTest, i);
    EXPECT_EQ((*items)[i].question, s.question);
    EXPECT_EQ((*items)[i].answer, s.answer);
    EXPECT_EQ((*items)[i].kind, train::QuestionKindName(s.kind));
    ASSERT_TRUE((*items)[i].image.has_value());
    EXPECT_EQ((*items)[i].image->width, data.image_size);
  }
  EXPECT_EQ(SyntheticEvalItems(data, train::Split::kTest, 0).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseSplit("dev").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(*ParseSplit("validation"), train::Split::kValidation);
}

TEST(Eval, SplitWrittenAsJsonlReadsBackAsTheSameItems) {
  train::DataOptions data;
  const std::string dir = testing::ScratchDir();
  ASSERT_TRUE(train::WriteSplit(data, train::Split::kValidation, 12, dir).ok());
  auto from_file = ReadEvalJsonl(dir + "/validation.jsonl");
  auto generated = SyntheticEvalItems(data, train::Split::kValidation, 12);
  ASSERT_TRUE(from_file.ok()) << from_file.status().message();
  ASSERT_TRUE(generated.ok());
  ASSERT_EQ(from_file->size(), 12u);
  for (size_t i = 0; i < 12; ++i) {
    const EvalItem& f = (*from_file)[i];
    const EvalItem& g = (*generated)[i];
    EXPECT_EQ(f.question, g.question);
    EXPECT_EQ(f.answer, g.answer);
    EXPECT_EQ(f.kind, g.kind);
    auto image = DecodeImageFile(f.image_path);
    ASSERT_TRUE(image.ok()) << image.status().message();
    EXPECT_TRUE(image->rgb == g.image->rgb) << "item " << i;
  }
}

TEST(Eval, CliOnSyntheticSplitPrintsEveryKind) {
  const std::string model = Synth("llava", 0, "a");
  const std::string dir = testing::ScratchDir();
  auto r = testing::RunCli("eval --model " + model + " --reference " + model + " --count 24 --json " + dir + "/r.json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json report = json::parse(Slurp(dir + "/r.json"), nullptr, false);
  ASSERT_FALSE(report.is_discarded());
  EXPECT_EQ(report["items"], 24);
  EXPECT_EQ(report["kl"], 0.0);
  EXPECT_EQ(report["top1_agreement"], 1.0);
  int64_t sum = 0;
  for (const auto& [kind, row] : report["kinds"].items()) {
    EXPECT_NE(r.out.find(kind), std::string::npos) << kind << "\n" << r.out;
    sum += row["count"].get<int64_t>();
  }
  EXPECT_EQ(sum, 24);
}

}  // namespace
}  // namespace bitlens
