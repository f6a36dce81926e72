// train/trainer, train/recipe, train/examples: a micro training run lowers
// the loss and writes a checkpoint `bitlens run` answers from; a run stopped
// half-way and resumed ends with bit-identical parameters; training examples
// tokenize exactly as the runtime tokenizes the same question; bad recipes
// give one clear line each.
#include "train/trainer.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "golden_case.h"
#include "model/model.h"
#include "runtime/session.h"
#include "test_paths.h"
#include "train/examples.h"
#include "train/recipe.h"
#include "train/train_state.h"

namespace bitlens::train {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// A model small enough to train for a few dozen steps in a few seconds:
// 16 px images in 8 px patches (4 image tokens), two-layer towers.
json MicroRecipeJson(int64_t steps) {
  return json::parse(R"({
    "seed": 5,
    "data": {"image_size": 16, "train_samples": 256, "validation_samples": 16, "test_samples": 16,
             "catalog_fraction": 0.15},
    "tokenizer": {"vocab_size": 400},
    "model": {"vision": {"hidden_size": 16, "intermediate_size": 32, "num_layers": 2, "num_heads": 2, "patch_size": 8},
              "text": {"hidden_size": 32, "intermediate_size": 64, "num_layers": 2, "num_heads": 4, "num_kv_heads": 2,
                       "max_position_embeddings": 256},
              "dtype": "f32"},
    "optimizer": {"lr": 0.004, "min_lr": 0.0004, "warmup_steps": 3, "steps": 40, "batch_size": 8,
                  "weight_decay": 0.01, "grad_clip": 1.0},
    "eval": {"interval": 10, "samples": 8},
    "threads": 1
  })")
      .patch(json::array({{{"op", "replace"}, {"path", "/optimizer/steps"}, {"value", steps}}}));
}

TrainOptions MicroOptions(const json& recipe, const std::string& out) {
  TrainOptions o;
  o.recipe_json = recipe.dump(2);
  auto r = ParseRecipe(o.recipe_json, "micro recipe");
  EXPECT_TRUE(r.ok()) << r.status().message();
  if (r.ok()) o.recipe = *r;
  o.output_dir = out;
  o.progress = false;
  return o;
}

// ------------------------------------------------------------------ recipe

TEST(TrainRecipe, ShippedRecipeParsesWithTheTeamShape) {
  const std::string path = testing::SourceDir() + "/models/ref-vlm/recipe.json";
  auto r = LoadRecipe(path);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->data.image_size, 64);
  EXPECT_EQ(r->vision.patch_size, 8);
  EXPECT_EQ(r->vision.hidden_size, 128);
  EXPECT_EQ(r->vision.num_layers, 4);
  EXPECT_EQ(r->vision.num_heads, 4);
  EXPECT_EQ(r->vision.intermediate_size, 512);
  EXPECT_EQ(r->text.hidden_size, 256);
  EXPECT_EQ(r->text.num_layers, 4);
  EXPECT_EQ(r->text.num_heads, 8);
  EXPECT_EQ(r->text.num_kv_heads, 4);
  EXPECT_EQ(r->text.intermediate_size, 704);
  EXPECT_EQ(r->text.max_position_embeddings, 256);
  EXPECT_EQ(r->vocab_size, 1024);
  const ModelConfig c = RecipeModelConfig(*r, 1024, SpecialTokenIds{1019, 1020, 1022, 1023});
  EXPECT_EQ(c.image_seq_length(), 64);
  EXPECT_EQ(c.text.head_dim, 32);
  EXPECT_EQ(c.image_token_index, 1023);
  EXPECT_FALSE(c.text.tie_word_embeddings);
}

TEST(TrainRecipe, DefaultsFillOmittedKeys) {
  auto r = ParseRecipe("{}", "recipe.json");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->optimizer.batch_size, 16);
  EXPECT_EQ(r->dtype, DType::kF32);
  auto s = ParseRecipe(R"({"seed": 9, "model": {"dtype": "bf16"}, "optimizer": {"lr": 0.002, "min_lr": 0}})",
                       "recipe.json");
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_EQ(s->seed, 9u);
  EXPECT_EQ(s->data.seed, 9u);
  EXPECT_EQ(s->dtype, DType::kBF16);
  EXPECT_DOUBLE_EQ(s->optimizer.lr, 0.002);
}

TEST(TrainRecipe, BadInputsGiveOneLineNamingTheKey) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"not json", "recipe.json: not valid JSON"},
      {"[1, 2]", "expected an object"},
      {R"({"sead": 1})", "recipe.json: sead: unknown key"},
      {R"({"optimizer": {"learning_rate": 0.1}})", "optimizer.learning_rate: unknown key"},
      {R"({"model": {"vision": {"layers": 2}}})", "model.vision.layers: unknown key"},
      {R"({"seed": "one"})", "seed: expected an integer, got string"},
      {R"({"optimizer": {"steps": 10.5}})", "optimizer.steps: expected an integer, got number"},
      {R"({"optimizer": {"lr": "fast"}})", "optimizer.lr: expected a number, got string"},
      {R"({"optimizer": {"steps": 0}})", "optimizer.steps: 0 is outside"},
      {R"({"optimizer": {"lr": -1}})", "optimizer.lr: -1 is outside"},
      {R"({"optimizer": {"beta2": 1.5}})", "optimizer.beta2: 1.5 is outside"},
      {R"({"data": 3})", "data: expected an object, got number"},
      {R"({"model": {"dtype": "f16"}})", "model.dtype: 'f16' is not f32 or bf16"},
      {R"({"model": {"dtype": 32}})", "model.dtype: expected a string"},
      {R"({"model": {"vision": {"patch_size": 7}}})", "model.vision.patch_size: 7 does not divide data.image_size 64"},
      {R"({"model": {"text": {"num_kv_heads": 3}}})", "model.text.num_kv_heads: does not divide"},
      {R"({"optimizer": {"lr": 0.001, "min_lr": 0.01}})", "optimizer.min_lr: is larger than optimizer.lr"},
      {R"({"eval": {"samples": 1000}, "data": {"validation_samples": 10}})", "eval.samples: is larger"},
      {R"({"model": {"text": {"max_position_embeddings": 64}}})", "leaves no room for the prompt"},
      {R"({"threads": -2})", "threads: -2 is outside"},
      {R"({"seed": 18446744073709551615})", "seed: value out of range"},
      {R"({"data": {"kinds": "color"}})", "data.kinds: expected an array of question kinds, got string"},
      {R"({"data": {"kinds": ["colour"]}})", "data.kinds: \"colour\" is not a question kind"},
      {R"({"data": {"kinds": [3]}})", "data.kinds: 3 is not a question kind"},
      {R"({"data": {"kinds": []}})", "data.kinds: is empty"},
      {R"({"data": {"kinds": ["catalog"], "catalog_fraction": 0}})", "data.kinds: only catalog"},
      {R"({"data": {"kinds": ["color"], "catalog_fraction": 1}})", "data.kinds: no catalog"},
  };
  for (const auto& [text, expected] : cases) {
    auto r = ParseRecipe(text, "recipe.json");
    ASSERT_FALSE(r.ok()) << "accepted: " << text;
    const std::string& m = r.status().message();
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << m;
    EXPECT_EQ(m.rfind("recipe.json: ", 0), 0u) << m;
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
    EXPECT_NE(m.find(expected), std::string::npos) << "for " << text << "\n got: " << m << "\n want: " << expected;
  }
}

TEST(TrainRecipe, CliRejectsABadRecipeWithExitCode2) {
  const std::string dir = testing::ScratchDir();
  std::ofstream(dir + "/recipe.json") << R"({"optimizer": {"stepz": 3}})";
  const auto r = testing::RunCli("train --recipe " + dir + "/recipe.json -o " + dir + "/out");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("optimizer.stepz: unknown key"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir + "/out"));
  const auto missing = testing::RunCli("train --resume -o " + dir + "/nothing");
  EXPECT_EQ(missing.exit_code, 2) << missing.err;
  EXPECT_NE(missing.err.find("no train state"), std::string::npos) << missing.err;
}

// ------------------------------------------------------------------ training

TEST(TrainRecipe, KindsRestrictTheDrawnSamples) {
  auto r = ParseRecipe(R"({"data": {"kinds": ["yes_no", "color", "color"]}})", "recipe.json");
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_EQ(r->kinds.size(), 2u);
  EXPECT_EQ(r->kinds[0], QuestionKind::kYesNo);
  EXPECT_EQ(r->kinds[1], QuestionKind::kColor);
  int changed = 0;
  for (int64_t i = 0; i < 40; ++i) {
    const VqaSample plain = MakeSample(r->data, Split::kTrain, i);
    EXPECT_EQ(DrawSample(r->data, {}, Split::kTrain, i).question, plain.question) << i;
    const VqaSample s = DrawSample(r->data, r->kinds, Split::kTrain, i);
    EXPECT_TRUE(s.kind == QuestionKind::kYesNo || s.kind == QuestionKind::kColor) << i << ": " << s.question;
    if (plain.kind == s.kind) EXPECT_EQ(s.question, plain.question) << "a wanted sample is kept as it is";
    changed += plain.kind != s.kind;
  }
  EXPECT_GT(changed, 10) << "of 40 samples of 8 kinds, most are redrawn";
}

TEST(TrainTrainer, KindsRestrictTrainingAndEvaluation) {
  const std::string out = testing::ScratchDir() + "/kinds";
  json recipe = MicroRecipeJson(4);
  recipe["data"]["kinds"] = json::array({"count"});
  auto result = Train(MicroOptions(recipe, out));
  ASSERT_TRUE(result.ok()) << result.status().message();
  const json eval = json::parse(ReadFile(out + "/eval.json"));
  ASSERT_EQ(eval["per_kind"].size(), 1u) << eval.dump();
  EXPECT_EQ(eval["per_kind"]["count"]["samples"].get<int>(), 16);
}

TEST(TrainTrainer, MicroRunLowersTheLossAndWritesARunnableCheckpoint) {
  const std::string dir = testing::ScratchDir();
  const std::string out = dir + "/micro";
  auto result = Train(MicroOptions(MicroRecipeJson(40), out));
  ASSERT_TRUE(result.ok()) << result.status().message();
  ASSERT_TRUE(result->finished);
  ASSERT_EQ(result->losses.size(), 40u);
  const auto& l = result->losses;
  const double first = std::accumulate(l.begin(), l.begin() + 5, 0.0) / 5;
  const double last = std::accumulate(l.end() - 5, l.end(), 0.0) / 5;
  // Untrained, the loss is about ln(vocab) ≈ 6 nats; forty steps must take a whole nat off
  // (batch-to-batch noise of the 5-step means is a few tenths).
  EXPECT_LT(last, first - 1.0) << "mean loss of steps 1-5 " << first << ", of steps 36-40 " << last;
  EXPECT_EQ(result->test.samples, 16);

  for (const char* f : {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                        "special_tokens_map.json", "preprocessor_config.json", "generation_config.json",
                        "recipe.json", "train_log.jsonl", "eval.json"}) {
    EXPECT_TRUE(fs::exists(out + "/" + f)) << f;
  }
  EXPECT_FALSE(fs::exists(out + ".tmp"));
  EXPECT_FALSE(fs::exists(out + ".state")) << "a finished run removes its state";
  // One log line per step, the eval steps with validation figures.
  std::istringstream log(ReadFile(out + "/train_log.jsonl"));
  std::string line;
  int lines = 0, evals = 0;
  while (std::getline(log, line)) {
    const json j = json::parse(line);
    ++lines;
    EXPECT_EQ(j["step"].get<int>(), lines);
    EXPECT_DOUBLE_EQ(j["loss"].get<double>(), l[lines - 1]);
    for (const char* k : {"lr", "grad_norm", "tokens", "seconds"}) EXPECT_TRUE(j.contains(k)) << k;
    evals += j.contains("val_accuracy");
  }
  EXPECT_EQ(lines, 40);
  EXPECT_EQ(evals, 4);
  const json eval = json::parse(ReadFile(out + "/eval.json"));
  EXPECT_EQ(eval["samples"].get<int>(), 16);
  EXPECT_EQ(eval["split"], "test");

  // The runtime loads it: the prompt tokens of a test question equal the training example's prefix.
  auto model = LoadModel(out);
  ASSERT_TRUE(model.ok()) << model.status().message();
  auto session = Session::Create(**model, SessionOptions{});
  ASSERT_TRUE(session.ok()) << session.status().message();
  const Recipe recipe = MicroOptions(MicroRecipeJson(40), out).recipe;
  ExampleContext ctx;
  ctx.tokenizer = (*model)->tokenizer.get();
  ctx.config = &(*model)->config;
  ctx.image_processor = *(*model)->image_processor;
  ctx.eos_id = (*model)->eos_ids.at(0);
  for (int64_t i = 0; i < 8; ++i) {
    const VqaSample sample = MakeSample(recipe.data, Split::kTest, i);
    auto ex = BuildExample(sample, ctx);
    ASSERT_TRUE(ex.ok()) << ex.status().message();
    auto prompt = (*session)->TokenizePrompt(sample.question, /*has_image=*/true, ChatMode::kAuto);
    ASSERT_TRUE(prompt.ok()) << prompt.status().message();
    ASSERT_LT(prompt->size(), ex->input_ids.size());
    EXPECT_TRUE(std::equal(prompt->begin(), prompt->end(), ex->input_ids.begin())) << sample.question;
    // Scored positions start exactly at the end of the prompt and end with </s>.
    const size_t first_scored = std::find_if(ex->targets.begin(), ex->targets.end(), [](int32_t t) { return t >= 0; }) -
                                ex->targets.begin();
    EXPECT_EQ(first_scored + 1, prompt->size()) << sample.question;
    EXPECT_EQ(ex->targets[ex->targets.size() - 2], ctx.eos_id);
    EXPECT_EQ(ex->targets.back(), -100);
    // Prompt and answer tokenized apart equal the whole turn tokenized at once.
    const std::string whole = ChatPrompt(sample.question) + " " + sample.answer;
    std::vector<int32_t> joined = ctx.tokenizer->Encode(whole, ctx.tokenizer->add_bos_by_default());
    std::vector<int32_t> expanded;
    for (int32_t id : joined) {
      if (id == ctx.config->image_token_index) expanded.insert(expanded.end(), ctx.config->image_seq_length(), id);
      else expanded.push_back(id);
    }
    expanded.push_back(ctx.eos_id);
    EXPECT_EQ(expanded, ex->input_ids) << whole;
  }

  // `bitlens run` answers a question about a test image.
  const std::string data_dir = dir + "/data";
  ASSERT_TRUE(WriteSplit(recipe.data, Split::kTest, 1, data_dir).ok());
  std::ifstream jsonl(data_dir + "/test.jsonl");
  std::string first_line;
  ASSERT_TRUE(std::getline(jsonl, first_line));
  const json sample = json::parse(first_line);
  std::string image = sample["image"].get<std::string>();
  if (!fs::path(image).is_absolute()) image = data_dir + "/" + image;
  const auto run = testing::RunCli("run --model " + out + " --image " + image + " --prompt '" +
                                   sample["prompt"].get<std::string>() + "' --max-tokens 8 --temperature 0");
  EXPECT_EQ(run.exit_code, 0) << run.err;
}

TEST(TrainTrainer, ResumedRunEndsWithBitIdenticalParameters) {
  const std::string dir = testing::ScratchDir();
  const json recipe = MicroRecipeJson(12);
  auto straight = Train(MicroOptions(recipe, dir + "/straight"));
  ASSERT_TRUE(straight.ok()) << straight.status().message();
  ASSERT_TRUE(straight->finished);

  TrainOptions half = MicroOptions(recipe, dir + "/halves");
  half.stop_after_step = 6;
  auto first = Train(half);
  ASSERT_TRUE(first.ok()) << first.status().message();
  EXPECT_FALSE(first->finished);
  EXPECT_EQ(first->step, 6);
  EXPECT_FALSE(fs::exists(dir + "/halves")) << "a stopped run writes no checkpoint";
  ASSERT_TRUE(fs::exists(dir + "/halves.state"));
  auto state = ReadTrainState(dir + "/halves.state");
  ASSERT_TRUE(state.ok()) << state.status().message();
  EXPECT_EQ(state->step, 6);

  TrainOptions rest = MicroOptions(recipe, dir + "/halves");
  rest.resume = true;
  auto second = Train(rest);
  ASSERT_TRUE(second.ok()) << second.status().message();
  ASSERT_TRUE(second->finished);
  EXPECT_EQ(second->step, 12);
  ASSERT_EQ(second->losses.size(), 6u);
  for (size_t i = 0; i < 6; ++i) {
    EXPECT_EQ(second->losses[i], straight->losses[6 + i]) << "step " << 7 + i;
  }
  const std::string a = ReadFile(dir + "/straight/model.safetensors");
  const std::string b = ReadFile(dir + "/halves/model.safetensors");
  ASSERT_FALSE(a.empty());
  EXPECT_TRUE(a == b) << "weights after 12 straight steps differ from 6 + resume + 6";
  EXPECT_EQ(ReadFile(dir + "/straight/tokenizer.json"), ReadFile(dir + "/halves/tokenizer.json"));
  EXPECT_EQ(straight->test.correct, second->test.correct);
  EXPECT_EQ(straight->test.loss, second->test.loss);
}

TEST(TrainTrainer, ResumeRefusesADifferentRecipeAndExistingOutput) {
  const std::string dir = testing::ScratchDir();
  TrainOptions o = MicroOptions(MicroRecipeJson(4), dir + "/out");
  o.stop_after_step = 2;
  ASSERT_TRUE(Train(o).ok());
  TrainOptions other = MicroOptions(MicroRecipeJson(5), dir + "/out");
  other.resume = true;
  auto r = Train(other);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("different recipe"), std::string::npos) << r.status().message();

  fs::create_directories(dir + "/exists");
  auto e = Train(MicroOptions(MicroRecipeJson(4), dir + "/exists"));
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("--force"), std::string::npos) << e.status().message();
}

TEST(TrainTrainer, CorruptStateIsAnErrorNotACrash) {
  const std::string dir = testing::ScratchDir();
  std::ofstream(dir + "/out.state", std::ios::binary) << "BLTSTATE garbage";
  TrainOptions o = MicroOptions(MicroRecipeJson(4), dir + "/out");
  o.resume = true;
  auto r = Train(o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("out.state"), std::string::npos) << r.status().message();
}


// ------------------------------------------------------------------ HF parity

// tests/golden/ref_vlm* (tests/conformance/ref_vlm_parity.py): checkpoints bitlens trained, run
// by transformers — ref_vlm holds a micro model; `--model DIR --out tests/golden/ref_vlm_<name>`
// adds another (e.g. the full reference model). bitlens must build the same chat prompt, ids and
// pixel values, and its runtime and its trainable model must give transformers' logits.
std::vector<std::string> RefVlmGoldenDirs() {
  std::vector<std::string> dirs;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(testing::GoldenDir(), ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("ref_vlm", 0) == 0 && fs::exists(e.path() / "parity.json")) dirs.push_back(e.path().string());
  }
  std::sort(dirs.begin(), dirs.end());
  return dirs;
}

void CheckRefVlmGolden(const std::string& dir);

TEST(RefVlmParity, PromptIdsPixelsAndLogitsMatchTransformers) {
  const std::vector<std::string> dirs = RefVlmGoldenDirs();
  if (dirs.empty()) GTEST_SKIP() << "no tests/golden/ref_vlm*/parity.json (make conformance)";
  for (const std::string& dir : dirs) {
    SCOPED_TRACE(dir);
    CheckRefVlmGolden(dir);
  }
}

void CheckRefVlmGolden(const std::string& dir) {
  const json meta = json::parse(ReadFile(dir + "/parity.json"));
  auto golden = Checkpoint::Open(dir + "/parity.safetensors");
  ASSERT_TRUE(golden.ok()) << golden.status().message();
  const std::string model_dir = dir + "/" + meta["model_dir"].get<std::string>();
  const double tol = meta["tolerance_abs"].get<double>();

  auto model = LoadModel(model_dir);
  ASSERT_TRUE(model.ok()) << model.status().message();
  auto session = Session::Create(**model, SessionOptions{});
  ASSERT_TRUE(session.ok()) << session.status().message();
  auto trainable = TrainableVlm::Load(model_dir);
  ASSERT_TRUE(trainable.ok()) << trainable.status().message();
  const ModelConfig& cfg = (*model)->config;
  const int64_t vocab = cfg.text.vocab_size;
  ExampleContext ctx;
  ctx.tokenizer = (*model)->tokenizer.get();
  ctx.config = &cfg;
  ctx.image_processor = *(*model)->image_processor;
  ctx.eos_id = (*model)->eos_ids.at(0);

  const auto& cases = meta["cases"];
  ASSERT_GE(cases.size(), 2u);
  for (size_t i = 0; i < cases.size(); ++i) {
    const json& c = cases[i];
    SCOPED_TRACE(c["question"].get<std::string>());
    const std::string n = std::to_string(i);
    // The chat template, byte for byte.
    EXPECT_EQ(ChatPrompt(c["question"].get<std::string>()), c["prompt_text"].get<std::string>());
    // The training example: ids equal the processor's, pixels the image processor's.
    auto image = DecodeImageFile(dir + "/" + c["image"].get<std::string>());
    ASSERT_TRUE(image.ok()) << image.status().message();
    VqaSample sample;
    sample.image = *image;
    sample.question = c["question"].get<std::string>();
    sample.answer = c["answer"].get<std::string>();
    auto ex = BuildExample(sample, ctx);
    ASSERT_TRUE(ex.ok()) << ex.status().message();
    const Tensor ids_t = *golden->Get("input_ids_" + n);
    const std::vector<int64_t> want_ids(ids_t.data_as<int64_t>(), ids_t.data_as<int64_t>() + ids_t.numel());
    const std::vector<int64_t> got_ids(ex->input_ids.begin(), ex->input_ids.end());
    ASSERT_EQ(got_ids, want_ids);
    const Tensor px = *golden->Get("pixel_values_" + n);
    ASSERT_EQ(static_cast<int64_t>(ex->pixel_values.size()), px.numel());
    EXPECT_TRUE(testing::FloatsNear("pixel_values", ex->pixel_values.data(), px.data_as<float>(),
                                    ex->pixel_values.size(), 1e-5));
    const Tensor logits = *golden->Get("logits_" + n);
    const int64_t t = static_cast<int64_t>(got_ids.size());
    ASSERT_EQ(logits.numel(), t * vocab);

    // Runtime: image rows from the golden pixels, then every position's logits.
    auto chw = px.Reshape({px.dim(1), px.dim(2), px.dim(3)});
    ASSERT_TRUE(chw.ok());
    std::vector<float> rows(cfg.image_seq_length() * cfg.text.hidden_size);
    ASSERT_TRUE((*model)->vision->Encode(*chw, rows.data()).ok());
    std::vector<int32_t> ids32(ex->input_ids);
    auto runtime = (*session)->EvaluateLogits(ids32, rows.data());
    ASSERT_TRUE(runtime.ok()) << runtime.status().message();
    EXPECT_TRUE(testing::FloatsNear("runtime logits", runtime->data(), logits.data_as<float>(), runtime->size(), tol,
                                    vocab));
    // The trainable model, as the trainer evaluates it.
    VlmExample golden_ex;
    golden_ex.input_ids = ids32;
    golden_ex.targets.assign(ids32.size(), -100);
    golden_ex.pixel_values.assign(px.data_as<float>(), px.data_as<float>() + px.numel());
    const float* train_logits = (*trainable)->Forward(golden_ex);
    EXPECT_TRUE(testing::FloatsNear("trainable logits", train_logits, logits.data_as<float>(), t * vocab, tol, vocab));
  }
}

}  // namespace
}  // namespace bitlens::train
