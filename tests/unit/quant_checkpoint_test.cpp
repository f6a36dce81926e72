// The quantized checkpoint layout: quantization_config parsing and writing,
// the per-tensor checks of MapWeight, and LoadModel on tampered quantized
// directories (each error one line naming the file and the tensor).
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "base/mmap_file.h"
#include "model/model.h"
#include "quant/checkpoint.h"
#include "quant/pipeline.h"
#include "quant/quantize_layer.h"
#include "quant/rtn.h"
#include "test_paths.h"

namespace bitlens {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const quant::FormatInfo& Format(const char* name) {
  auto f = quant::FindFormat(name);
  EXPECT_TRUE(f.ok()) << name;
  return **f;
}

std::string ConfigWith(const json& qc) {
  json j = {{"model_type", "llama"}, {"quantization_config", qc}};
  return j.dump();
}

TEST(QuantCheckpoint, ConfigRoundTripsThroughJson) {
  quant::QuantizationConfig c;
  c.tensors["model.layers.0.self_attn.q_proj.weight"] = {&Format("w2g64"), 64, 128};
  c.tensors["model.embed_tokens.weight"] = {&Format("w4g32"), 512, 64};
  c.extra_json["method"] = "\"rtn\"";
  const json qc = quant::QuantizationConfigToJson(c);
  EXPECT_EQ(qc["quant_method"], "bitlens");
  EXPECT_EQ(qc["version"], 1);
  EXPECT_EQ(qc["tensors"]["model.embed_tokens.weight"]["shape"], json::array({512, 64}));
  auto back = quant::ParseQuantizationConfig(ConfigWith(qc), "config.json");
  ASSERT_TRUE(back.ok()) << back.status().message();
  ASSERT_EQ(back->tensors.size(), 2u);
  const quant::QuantizedTensor* q = back->Find("model.layers.0.self_attn.q_proj.weight");
  ASSERT_NE(q, nullptr);
  EXPECT_STREQ(q->format->name, "w2g64");
  EXPECT_EQ(q->n, 64);
  EXPECT_EQ(q->k, 128);
  EXPECT_EQ(q->row_bytes(), 2u * 20u);  // two 20-byte w2g64 blocks
  EXPECT_EQ(back->extra_json.at("method"), "\"rtn\"");
}

TEST(QuantCheckpoint, AbsentConfigIsEmpty) {
  auto c = quant::ParseQuantizationConfig(R"({"model_type": "llama"})", "config.json");
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->empty());
}

TEST(QuantCheckpoint, BadConfigsAreOneLineErrors) {
  struct Case {
    json qc;
    StatusCode code;
    const char* needle;
  };
  const Case cases[] = {
      {{{"quant_method", "gptq"}, {"version", 1}, {"tensors", json::object()}}, StatusCode::kUnsupported,
       "quant_method 'gptq' is not supported"},
      {{{"quant_method", "bitlens"}, {"version", 9}, {"tensors", json::object()}}, StatusCode::kUnsupported,
       "version 9"},
      {{{"quant_method", "bitlens"}, {"version", 1}}, StatusCode::kInvalidArgument, "tensors is missing"},
      {{{"quant_method", "bitlens"}, {"version", 1}, {"tensors", {{"w", {{"format", "w9g7"}, {"shape", {4, 64}}}}}}},
       StatusCode::kInvalidArgument, "tensors['w']: "},
      {{{"quant_method", "bitlens"}, {"version", 1}, {"tensors", {{"w", {{"format", "w2g64"}, {"shape", {4}}}}}}},
       StatusCode::kInvalidArgument, "tensors['w'].shape must be [n, k]"},
      {{{"quant_method", "bitlens"}, {"version", 1}, {"tensors", {{"w", {{"format", "w2g64"}, {"shape", {0, 64}}}}}}},
       StatusCode::kInvalidArgument, "is not valid"},
      {{{"quant_method", "bitlens"}, {"version", 1}, {"tensors", {{"w", {{"shape", {4, 64}}}}}}},
       StatusCode::kInvalidArgument, "tensors['w'].format is missing"},
  };
  for (const Case& c : cases) {
    auto r = quant::ParseQuantizationConfig(ConfigWith(c.qc), "dir/config.json");
    ASSERT_FALSE(r.ok()) << c.qc.dump();
    EXPECT_EQ(r.status().code(), c.code) << r.status().message();
    EXPECT_NE(r.status().message().find(c.needle), std::string::npos) << r.status().message();
    EXPECT_EQ(r.status().message().rfind("dir/config.json: quantization_config", 0), 0u) << r.status().message();
    EXPECT_EQ(r.status().message().find('\n'), std::string::npos);
  }
}

// A packed [8, 64] w2g64 weight next to a float one, checked by MapWeight.
class QuantMapWeight : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::ScratchDir();
    const quant::FormatInfo& f = Format("w2g64");
    std::vector<float> w(8 * 64);
    for (size_t i = 0; i < w.size(); ++i) w[i] = 0.01f * static_cast<float>((i * 7) % 13) - 0.06f;
    std::vector<uint8_t> packed(8 * quant::RowBytes(f, 64));
    ASSERT_TRUE(quant::QuantizeRowsRef(f, w.data(), 8, 64, quant::RangeSearch::kMinMax, packed).ok());
    Tensor p = Tensor::Zeros(DType::kU8, {8, static_cast<int64_t>(quant::RowBytes(f, 64))});
    std::memcpy(p.mutable_data_as<uint8_t>(), packed.data(), packed.size());
    Tensor wrong = Tensor::Zeros(DType::kU8, {8, 41});
    ASSERT_TRUE(WriteSafetensors(dir_ + "/model.safetensors",
                                 {{"packed", p}, {"float", Tensor::FromF32({8, 64}, w)}, {"wrong", wrong},
                                  {"unlisted", p}})
                    .ok());
    auto c = Checkpoint::Open(dir_ + "/model.safetensors");
    ASSERT_TRUE(c.ok());
    ckpt_ = std::make_unique<Checkpoint>(std::move(*c));
    quant_.tensors["packed"] = {&f, 8, 64};
    quant_.tensors["wrong"] = {&f, 8, 64};
    quant_.tensors["float"] = {&f, 8, 64};
    quant_.source = dir_ + "/config.json";
    w_ = w;
    packed_ = packed;
  }
  std::string dir_;
  std::unique_ptr<Checkpoint> ckpt_;
  quant::QuantizationConfig quant_;
  std::vector<float> w_;
  std::vector<uint8_t> packed_;
};

TEST_F(QuantMapWeight, PackedViewReadsTheStoredRows) {
  Tensor keep;
  auto v = quant::MapWeight(*ckpt_, &quant_, "packed", {8, 64}, &keep);
  ASSERT_TRUE(v.ok()) << v.status().message();
  EXPECT_EQ(v->format, &Format("w2g64"));
  EXPECT_EQ(v->n, 8);
  EXPECT_EQ(v->k, 64);
  EXPECT_EQ(kernels::WeightRowBytes(*v), 20u);
  EXPECT_EQ(std::memcmp(v->data, packed_.data(), packed_.size()), 0);
  std::vector<float> rows(2 * 64), want(8 * 64);
  quant::DequantizeWeightRows(*v, 3, 2, rows.data());
  ASSERT_TRUE(quant::DequantizeRowsRef(Format("w2g64"), packed_, 8, 64, want.data()).ok());
  for (int i = 0; i < 128; ++i) EXPECT_EQ(rows[i], want[3 * 64 + i]) << i;
}

TEST_F(QuantMapWeight, BadPackedTensorsAreNamed) {
  Tensor keep;
  auto wrong = quant::MapWeight(*ckpt_, &quant_, "wrong", {8, 64}, &keep);
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.status().message(), "model.safetensors: 'wrong' is U8 [8, 41] but w2g64 [8, 64] packs to U8 [8, 20]");
  auto unlisted = quant::MapWeight(*ckpt_, &quant_, "unlisted", {8, 64}, &keep);
  ASSERT_FALSE(unlisted.ok());
  EXPECT_NE(unlisted.status().message().find("'unlisted' is U8 (packed) but config.json's quantization_config has "
                                             "no entry for it"),
            std::string::npos)
      << unlisted.status().message();
  auto as_float = quant::MapWeight(*ckpt_, &quant_, "float", {8, 64}, &keep);
  ASSERT_FALSE(as_float.ok());
  EXPECT_NE(as_float.status().message().find("'float' has dtype F32 but quantization_config says it is w2g64"),
            std::string::npos)
      << as_float.status().message();
  auto shape = quant::MapWeight(*ckpt_, &quant_, "packed", {8, 128}, &keep);
  ASSERT_FALSE(shape.ok());
  EXPECT_EQ(shape.status().message(), "config.json: quantization_config gives 'packed' the shape [8, 64] but the model "
                                      "config implies [8, 128]");
  auto missing = quant::MapWeight(*ckpt_, &quant_, "nothere", {8, 64}, &keep);
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  // Without a quantization_config the U8 tensor is refused too.
  auto no_config = quant::MapWeight(*ckpt_, nullptr, "packed", {8, 64}, &keep);
  EXPECT_FALSE(no_config.ok());
}

// A quantized tiny LLaVA written by the pipeline; LoadModel reads it, and
// each tampering of config.json is refused with one line.
class QuantCheckpointDir : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = testing::ScratchDir() + "-work";
    fs::remove_all(base_);
    auto r = testing::RunCli("synth --family llava --preset tiny -o " + base_ + "/src");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    quant::PipelineOptions o;
    o.model_dir = base_ + "/src";
    o.output_dir = base_ + "/q";
    auto q = quant::QuantizeCheckpoint(o);
    ASSERT_TRUE(q.ok()) << q.status().message();
    auto text = ReadTextFile(base_ + "/q/config.json");
    ASSERT_TRUE(text.ok());
    config_ = json::parse(*text);
  }
  void WriteConfig(const json& j) { std::ofstream(base_ + "/q/config.json") << j.dump(2); }
  std::string base_;
  json config_;
};

TEST_F(QuantCheckpointDir, StoredBytesAreTheReferenceQuantizerOutput) {
  auto model = LoadModel(base_ + "/q");
  ASSERT_TRUE(model.ok()) << model.status().message();
  auto src = Checkpoint::Open(base_ + "/src");
  ASSERT_TRUE(src.ok());
  const std::string name = "language_model.model.layers.1.mlp.down_proj.weight";
  const quant::QuantizedTensor* q = (*model)->quantization.Find(name);
  ASSERT_NE(q, nullptr);
  EXPECT_STREQ(q->format->name, "w2g64");
  auto w = src->Get(name);
  ASSERT_TRUE(w.ok());
  // The default method (rtn) is QuantizeLinear with the MSE clip grid.
  std::vector<uint8_t> want(static_cast<size_t>(q->n) * q->row_bytes());
  quant::QuantizeOptions rtn;
  rtn.grid = quant::GridMethod::kMseClip;
  ASSERT_TRUE(quant::QuantizeLinear(quant::QuantMethod::kRtn, *q->format, w->data_as<float>(), q->n, q->k, nullptr, rtn,
                                    want, nullptr)
                  .ok());
  auto got = (*model)->checkpoint.Get(name);
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->nbytes(), want.size());
  EXPECT_EQ(std::memcmp(got->data(), want.data(), want.size()), 0);
  EXPECT_EQ((*model)->decoder->weights().layers[1].down.format, q->format);
  EXPECT_EQ((*model)->decoder->weights().embed.format, &Format("w4g32"));
}

TEST_F(QuantCheckpointDir, MissingEntryIsRefused) {
  config_["quantization_config"]["tensors"].erase("language_model.model.layers.0.self_attn.k_proj.weight");
  WriteConfig(config_);
  auto m = LoadModel(base_ + "/q");
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().message(), "model.safetensors: 'language_model.model.layers.0.self_attn.k_proj.weight' is U8 "
                                  "(packed) but config.json's quantization_config has no entry for it");
  EXPECT_EQ(m.status().ExitCode(), 2);
}

TEST_F(QuantCheckpointDir, UnknownFormatIsRefused) {
  config_["quantization_config"]["tensors"]["language_model.model.layers.0.self_attn.k_proj.weight"]["format"] = "w2g48";
  WriteConfig(config_);
  auto m = LoadModel(base_ + "/q");
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("tensors['language_model.model.layers.0.self_attn.k_proj.weight']"),
            std::string::npos)
      << m.status().message();
  EXPECT_NE(m.status().message().find("w2g48"), std::string::npos) << m.status().message();
  EXPECT_EQ(m.status().ExitCode(), 2);
}

TEST_F(QuantCheckpointDir, WrongFormatForTheStoredBytesIsRefused) {
  // w2g32 packs [n, 64] into 24 bytes per row, the file holds w2g64's 20.
  config_["quantization_config"]["tensors"]["language_model.model.layers.0.self_attn.k_proj.weight"]["format"] = "w2g32";
  WriteConfig(config_);
  auto m = LoadModel(base_ + "/q");
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("is U8 [32, 20] but w2g32 [32, 64] packs to U8 [32, 24]"), std::string::npos)
      << m.status().message();
}

TEST_F(QuantCheckpointDir, ListedTensorAbsentFromTheFilesIsRefused) {
  config_["quantization_config"]["tensors"]["language_model.model.layers.7.mlp.up_proj.weight"] = {
      {"format", "w2g64"}, {"shape", {128, 64}}};
  WriteConfig(config_);
  auto m = LoadModel(base_ + "/q");
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("lists 'language_model.model.layers.7.mlp.up_proj.weight' but no safetensors "
                                      "file holds it"),
            std::string::npos)
      << m.status().message();
}

TEST_F(QuantCheckpointDir, LogicalShapeDisagreeingWithTheModelIsRefused) {
  config_["quantization_config"]["tensors"]["language_model.model.layers.0.self_attn.k_proj.weight"]["shape"] = {
      32, 128};
  WriteConfig(config_);
  auto m = LoadModel(base_ + "/q");
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("gives 'language_model.model.layers.0.self_attn.k_proj.weight' the shape [32, "
                                      "128] but the model config implies [32, 64]"),
            std::string::npos)
      << m.status().message();
}

TEST_F(QuantCheckpointDir, ACheckpointIsNotQuantizedTwice) {
  quant::PipelineOptions o;
  o.model_dir = base_ + "/q";
  o.output_dir = base_ + "/qq";
  auto q = quant::QuantizeCheckpoint(o);
  ASSERT_FALSE(q.ok());
  EXPECT_NE(q.status().message().find("already quantized"), std::string::npos) << q.status().message();
  EXPECT_FALSE(fs::exists(base_ + "/qq.tmp"));
}

}  // namespace
}  // namespace bitlens
