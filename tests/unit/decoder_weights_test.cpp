// Decoder loading: tensor names of text-only and LLaVA (v4, v5) layouts, and
// one-line errors for a missing tensor, a shape that disagrees with
// config.json and an unsupported dtype — through the library and the CLI
// (exit code 2). Also: BF16/F16 weights give the logits of their f32 values,
// and a prompt that does not fit the context is an OutOfRange.
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>

#include <gtest/gtest.h>

#include "base/f16.h"
#include "formats/safetensors.h"
#include "model/model.h"
#include "runtime/session.h"
#include "test_paths.h"

namespace bitlens {
namespace {

namespace fs = std::filesystem;

// A tiny Llama: hidden 64, intermediate 128, 1 layer, 4 heads, 2 kv heads, vocab 32.
constexpr int64_t kHidden = 64, kInter = 128, kVocab = 32, kHeads = 4, kKvHeads = 2, kHeadDim = 16;

struct TinyTensor {
  std::string name;
  Shape shape;
};

std::vector<TinyTensor> TinyLlamaTensors(const std::string& prefix, const std::string& lm_head) {
  const std::string l = prefix + "layers.0.";
  return {{prefix + "embed_tokens.weight", {kVocab, kHidden}},
          {prefix + "norm.weight", {kHidden}},
          {lm_head, {kVocab, kHidden}},
          {l + "input_layernorm.weight", {kHidden}},
          {l + "post_attention_layernorm.weight", {kHidden}},
          {l + "self_attn.q_proj.weight", {kHeads * kHeadDim, kHidden}},
          {l + "self_attn.k_proj.weight", {kKvHeads * kHeadDim, kHidden}},
          {l + "self_attn.v_proj.weight", {kKvHeads * kHeadDim, kHidden}},
          {l + "self_attn.o_proj.weight", {kHidden, kHeads * kHeadDim}},
          {l + "mlp.gate_proj.weight", {kInter, kHidden}},
          {l + "mlp.up_proj.weight", {kInter, kHidden}},
          {l + "mlp.down_proj.weight", {kHidden, kInter}}};
}

const char* kTinyConfig = R"({
  "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 64, "intermediate_size": 128,
  "num_hidden_layers": 1, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 32,
  "max_position_embeddings": 16, "rms_norm_eps": 1e-5, "tie_word_embeddings": false
})";

const char* kTinyLlavaConfig = R"({
  "architectures": ["LlavaForConditionalGeneration"], "model_type": "llava", "image_token_index": 31,
  "text_config": {"model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 1,
                  "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 32,
                  "max_position_embeddings": 16, "rms_norm_eps": 1e-5},
  "vision_config": {"model_type": "clip_vision_model", "hidden_size": 32, "intermediate_size": 64,
                    "num_hidden_layers": 1, "num_attention_heads": 2, "image_size": 16, "patch_size": 8}
})";

// Writes config.json + model.safetensors; `edit` may change a tensor's shape or dtype.
void WriteTiny(const std::string& dir, const std::vector<TinyTensor>& tensors, const std::string& config,
               DType dtype = DType::kF32, const std::function<void(TinyTensor&, DType&)>& edit = nullptr) {
  fs::create_directories(dir);
  std::ofstream(dir + "/config.json") << config;
  std::mt19937 rng(1);
  std::normal_distribution<float> normal(0.0f, 0.3f);
  std::vector<std::pair<std::string, Tensor>> out;
  for (TinyTensor t : tensors) {
    DType d = dtype;
    if (edit) edit(t, d);
    std::vector<float> values(NumElements(t.shape));
    for (float& v : values) v = t.shape.size() == 1 ? 1.0f + normal(rng) : normal(rng);
    Tensor f32 = Tensor::FromF32(t.shape, values);
    if (d == DType::kF32) {
      out.emplace_back(t.name, f32);
      continue;
    }
    Tensor conv = Tensor::Zeros(d, t.shape);
    for (size_t i = 0; i < values.size(); ++i) {
      if (d == DType::kBF16) conv.mutable_data_as<uint16_t>()[i] = F32ToBf16(values[i]);
      else if (d == DType::kF16) conv.mutable_data_as<uint16_t>()[i] = F32ToF16(values[i]);
      else if (d == DType::kI8) conv.mutable_data_as<int8_t>()[i] = static_cast<int8_t>(values[i] * 10);
    }
    out.emplace_back(t.name, conv);
  }
  ASSERT_TRUE(WriteSafetensors(dir + "/model.safetensors", out).ok());
}

std::string WorkDir() {
  const std::string dir = testing::ScratchDir() + "-work";
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

Status LoadDecoder(const std::string& dir) {
  auto config = LoadModelConfig(dir);
  if (!config.ok()) return config.status();
  auto ckpt = Checkpoint::Open(dir);
  if (!ckpt.ok()) return ckpt.status();
  return Decoder::Load(*ckpt, config->text).status();
}

TEST(DecoderWeights, AcceptsTextOnlyAndBothLlavaLayouts) {
  const std::string dir = WorkDir();
  WriteTiny(dir + "/text", TinyLlamaTensors("model.", "lm_head.weight"), kTinyConfig);
  WriteTiny(dir + "/v4", TinyLlamaTensors("language_model.model.", "language_model.lm_head.weight"), kTinyLlavaConfig);
  WriteTiny(dir + "/v5", TinyLlamaTensors("model.language_model.", "lm_head.weight"), kTinyLlavaConfig);
  for (const char* layout : {"text", "v4", "v5"}) {
    const Status s = LoadDecoder(dir + "/" + layout);
    EXPECT_TRUE(s.ok()) << layout << ": " << s.message();
  }
}

TEST(DecoderWeights, MissingTensorIsNamed) {
  const std::string dir = WorkDir() + "/m";
  auto tensors = TinyLlamaTensors("model.", "lm_head.weight");
  tensors.pop_back();  // mlp.down_proj
  WriteTiny(dir, tensors, kTinyConfig);
  const Status s = LoadDecoder(dir);
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_EQ(s.message(), "model.safetensors: tensor 'model.layers.0.mlp.down_proj.weight' is missing (config.json expects it)");
  auto r = testing::RunCli("run --model " + dir + " --prompt hi");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "bitlens: " + s.message() + "\n");
}

TEST(DecoderWeights, ShapeDisagreeingWithConfigIsNamed) {
  const std::string dir = WorkDir() + "/m";
  WriteTiny(dir, TinyLlamaTensors("model.", "lm_head.weight"), kTinyConfig, DType::kF32, [](TinyTensor& t, DType&) {
    if (t.name == "model.layers.0.mlp.down_proj.weight") t.shape = {kHidden, 100};
  });
  const Status s = LoadDecoder(dir);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "model.safetensors: 'model.layers.0.mlp.down_proj.weight' is [64, 100] but config.json implies [64, 128]");
  auto r = testing::RunCli("run --model " + dir + " --prompt hi");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "bitlens: " + s.message() + "\n");
}

TEST(DecoderWeights, UnsupportedDtypeIsNamed) {
  const std::string dir = WorkDir() + "/m";
  WriteTiny(dir, TinyLlamaTensors("model.", "lm_head.weight"), kTinyConfig, DType::kF32, [](TinyTensor& t, DType& d) {
    if (t.name == "model.layers.0.self_attn.q_proj.weight") d = DType::kI8;
  });
  const Status s = LoadDecoder(dir);
  EXPECT_EQ(s.code(), StatusCode::kUnsupported);
  EXPECT_EQ(s.message(), "model.safetensors: 'model.layers.0.self_attn.q_proj.weight' has dtype I8; the decoder reads F32, F16 or BF16");
  auto r = testing::RunCli("run --model " + dir + " --prompt hi");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "bitlens: " + s.message() + "\n");
}

TEST(DecoderWeights, NoEmbeddingUnderAnyKnownName) {
  const std::string dir = WorkDir() + "/m";
  WriteTiny(dir, TinyLlamaTensors("transformer.", "lm_head.weight"), kTinyConfig);
  const Status s = LoadDecoder(dir);
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_NE(s.message().find("model.safetensors: no token embedding found"), std::string::npos) << s.message();
}

std::unique_ptr<Model> LoadNoTokenizer(const std::string& dir) {
  auto m = LoadModel(dir);
  EXPECT_TRUE(m.ok()) << m.status().message();
  return m.ok() ? std::move(*m) : nullptr;
}

std::vector<float> PromptLogits(const std::string& dir, const std::vector<int32_t>& ids) {
  auto model = LoadNoTokenizer(dir);
  if (!model) return {};
  auto session = Session::Create(*model, SessionOptions{});
  EXPECT_TRUE(session.ok()) << session.status().message();
  auto logits = (*session)->EvaluateLogits(ids);
  EXPECT_TRUE(logits.ok()) << logits.status().message();
  return logits.ok() ? *logits : std::vector<float>{};
}

TEST(DecoderWeights, HalfPrecisionWeightsGiveTheLogitsOfTheirF32Values) {
  // The same bf16-representable values stored as BF16 and as F32 must run the
  // same math (embedding rows and norms are converted, matrices read in place).
  for (DType half : {DType::kBF16, DType::kF16}) {
    const std::string dir = WorkDir();
    WriteTiny(dir + "/half", TinyLlamaTensors("model.", "lm_head.weight"), kTinyConfig, half);
    // F32 copy holding exactly the rounded values.
    auto ckpt = Checkpoint::Open(dir + "/half");
    ASSERT_TRUE(ckpt.ok());
    std::vector<std::pair<std::string, Tensor>> f32;
    for (const std::string& name : ckpt->Names()) f32.emplace_back(name, ckpt->Get(name)->ToF32());
    fs::create_directories(dir + "/f32");
    fs::copy_file(dir + "/half/config.json", dir + "/f32/config.json");
    ASSERT_TRUE(WriteSafetensors(dir + "/f32/model.safetensors", f32).ok());
    const std::vector<int32_t> ids = {1, 5, 9, 30, 2, 17};
    const auto a = PromptLogits(dir + "/half", ids), b = PromptLogits(dir + "/f32", ids);
    ASSERT_EQ(a.size(), ids.size() * kVocab);
    ASSERT_EQ(b.size(), a.size());
    float worst = 0;
    for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(a[i] - b[i]));
    EXPECT_LT(worst, 1e-4f) << DTypeName(half) << ": max |half - f32| logit difference " << worst;
  }
}

TEST(Session, PromptPlusMaxTokensBeyondTheContextIsOutOfRange) {
  const std::string dir = WorkDir() + "/m";
  WriteTiny(dir, TinyLlamaTensors("model.", "lm_head.weight"), kTinyConfig);  // context 16
  auto model = LoadNoTokenizer(dir);
  ASSERT_NE(model, nullptr);
  auto session = Session::Create(*model, SessionOptions{});
  ASSERT_TRUE(session.ok());
  EXPECT_EQ((*session)->context(), 16);
  GenerateOptions options;
  options.max_tokens = 7;
  auto r = (*session)->Generate({1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, nullptr, options);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kOutOfRange);
  EXPECT_EQ(r.status().message(),
            "prompt has 10 tokens + 7 to generate but the context holds 16; lower --max-tokens or raise --max-context");
  options.max_tokens = 6;  // exactly fills the context
  auto ok = (*session)->Generate({1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, nullptr, options);
  ASSERT_TRUE(ok.ok()) << ok.status().message();
  EXPECT_EQ(ok->ids.size(), 6u);
}

TEST(Session, MaxContextOptionCapsTheContext) {
  const std::string dir = WorkDir() + "/m";
  WriteTiny(dir, TinyLlamaTensors("model.", "lm_head.weight"), kTinyConfig);
  auto model = LoadNoTokenizer(dir);
  ASSERT_NE(model, nullptr);
  SessionOptions o;
  o.max_context = 8;
  auto session = Session::Create(*model, o);
  ASSERT_TRUE(session.ok());
  EXPECT_EQ((*session)->context(), 8);
  auto r = (*session)->EvaluateLogits({1, 2, 3, 4, 5, 6, 7, 8, 9});
  EXPECT_EQ(r.status().code(), StatusCode::kOutOfRange);
}

TEST(Session, IdsOutsideTheVocabularyAreRejected) {
  const std::string dir = WorkDir() + "/m";
  WriteTiny(dir, TinyLlamaTensors("model.", "lm_head.weight"), kTinyConfig);
  auto model = LoadNoTokenizer(dir);
  ASSERT_NE(model, nullptr);
  auto session = Session::Create(*model, SessionOptions{});
  ASSERT_TRUE(session.ok());
  GenerateOptions options;
  options.max_tokens = 2;
  auto r = (*session)->Generate({1, 32}, nullptr, options);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message(), "token id 32 is outside the vocabulary of 32");
}

}  // namespace
}  // namespace bitlens
