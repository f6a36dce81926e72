// `bitlens inspect`: per-component counts of a tiny LLaVA worked out by hand,
// the tied head of Phi-3, layout differences, JSON output, and one-line
// errors with exit code 2 for every kind of bad directory.
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "model/inspect.h"
#include "model/synth.h"
#include "test_paths.h"

namespace bitlens {
namespace {

namespace fs = std::filesystem;

// Models live beside ScratchDir(), which every call to it empties.
std::string ModelRoot() {
  const std::string root = testing::ScratchDir() + "-models";
  fs::remove_all(root);
  fs::create_directories(root);
  return root;
}

std::string Synth(SynthFamily family, const std::string& dir, DType dtype = DType::kF32) {
  SynthOptions o;
  o.family = family;
  o.dtype = dtype;
  o.output_dir = dir;
  auto r = Synthesize(o);
  EXPECT_TRUE(r.ok()) << r.status().message();
  return dir;
}

const ComponentStats* Component(const ModelReport& r, const std::string& name) {
  for (const auto& c : r.components) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

TEST(InspectReport, TinyLlavaComponentsMatchHandCounts) {
  const std::string dir = Synth(SynthFamily::kLlava, ModelRoot() + "/llava", DType::kBF16);
  auto r = InspectCheckpoint(dir);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->family, "llava");
  EXPECT_EQ(r->layout, "v4");
  // CLIP d=32, mlp 64, 2 layers, 17 positions:
  //   class 32 + patch 32*3*8*8 + pos 17*32 + pre_layrnorm 64
  //   + 2 * (4*(32*32+32) + 2*64 + (64*32+64) + (32*64+32)) + post_layernorm 64
  const int64_t vision = 32 + 6144 + 544 + 64 + 2 * (4224 + 128 + 2112 + 2080) + 64;
  const int64_t projector = (64 * 32 + 64) + (64 * 64 + 64);
  // Llama h=64, mlp 128, q 64 rows, k/v 32 rows: 2 * (64*64*2 + 32*64*2 + 3*128*64 + 2*64) + norm 64.
  const int64_t layers = 2 * (2 * 4096 + 2 * 2048 + 3 * 8192 + 128) + 64;
  const int64_t embed = 512 * 64;
  struct Want {
    const char* name;
    int64_t tensors, params;
  } want[] = {{"vision tower", 39, vision}, {"projector", 4, projector}, {"decoder layers", 19, layers},
              {"embeddings", 1, embed}, {"lm head", 1, embed}};
  for (const auto& w : want) {
    const ComponentStats* c = Component(*r, w.name);
    ASSERT_NE(c, nullptr) << w.name;
    EXPECT_EQ(c->tensors, w.tensors) << w.name;
    EXPECT_EQ(c->params, w.params) << w.name;
    EXPECT_EQ(c->bytes, uint64_t(2 * w.params)) << w.name;
    EXPECT_EQ(c->params_by_dtype.at("BF16"), w.params) << w.name;
  }
  EXPECT_EQ(r->total_params, vision + projector + layers + 2 * embed);
  EXPECT_EQ(r->total_params, 169'792);
  ASSERT_EQ(r->shards.size(), 1u);
  EXPECT_EQ(r->shards[0].file, "model.safetensors");
  EXPECT_GT(r->shards[0].file_bytes, r->total_bytes);  // header included
  EXPECT_TRUE(r->layout_checked);
  EXPECT_TRUE(r->missing.empty() && r->unexpected.empty() && r->wrong_shape.empty());
  EXPECT_EQ(r->synth_origin, "preset=tiny family=llava seed=0");
}

TEST(InspectReport, TiedPhi3HeadIsNotStoredAndNotCounted) {
  const std::string dir = Synth(SynthFamily::kPhi3, ModelRoot() + "/phi3");
  auto r = InspectCheckpoint(dir);
  ASSERT_TRUE(r.ok()) << r.status().message();
  const ComponentStats* head = Component(*r, "lm head");
  ASSERT_NE(head, nullptr);
  EXPECT_EQ(head->params, 0);
  EXPECT_NE(head->note.find("tied"), std::string::npos);
  // embed 512*64 + 2 * (qkv 128*64 + o 64*64 + gate_up 256*64 + down 64*128 + 2*64) + 64
  EXPECT_EQ(r->total_params, 32768 + 2 * (8192 + 4096 + 16384 + 8192 + 128) + 64);
}

TEST(InspectReport, RenamedAndReshapedTensorsAreReported) {
  ModelConfig config;
  config.model_type = "llama";
  config.text.vocab_size = 8;
  config.text.hidden_size = 4;
  config.text.intermediate_size = 8;
  config.text.num_hidden_layers = 1;
  config.text.num_attention_heads = 2;
  config.text.num_key_value_heads = 2;
  config.text.head_dim = 2;
  std::vector<TensorInfo> tensors = {
      {"model.embed_tokens.weight", DType::kF32, {8, 4}},
      {"model.layers.0.self_attn.q_proj.weight", DType::kF32, {4, 4}},
      {"model.layers.0.self_attn.k_proj.weight", DType::kF32, {4, 4}},
      {"model.layers.0.self_attn.v_proj.weight", DType::kF32, {4, 4}},
      {"model.layers.0.self_attn.o_proj.weight", DType::kF32, {4, 4}},
      {"model.layers.0.mlp.gate_proj.weight", DType::kF32, {8, 4}},
      {"model.layers.0.mlp.up_proj.weight", DType::kF32, {8, 4}},
      {"model.layers.0.mlp.down_proj.weight", DType::kF32, {4, 9}},  // wrong
      {"model.layers.0.input_layernorm.weight", DType::kF32, {4}},
      {"model.layers.0.post_attn_norm.weight", DType::kF32, {4}},  // misnamed
      {"model.norm.weight", DType::kF32, {4}},
      {"lm_head.weight", DType::kF32, {8, 4}},
  };
  ModelReport r = InspectTensors(config, tensors);
  ASSERT_TRUE(r.layout_checked) << r.layout_error;
  EXPECT_EQ(r.missing, std::vector<std::string>{"model.layers.0.post_attention_layernorm.weight"});
  EXPECT_EQ(r.unexpected, std::vector<std::string>{"model.layers.0.post_attn_norm.weight"});
  ASSERT_EQ(r.wrong_shape.size(), 1u);
  EXPECT_NE(r.wrong_shape[0].find("[4, 9]"), std::string::npos) << r.wrong_shape[0];
  EXPECT_NE(FormatReportText(r).find("1 missing, 1 unexpected, 1 wrong shape"), std::string::npos) << FormatReportText(r);
}

TEST(InspectCli, TextAndJsonReports) {
  const std::string dir = Synth(SynthFamily::kLlavaSiglip, ModelRoot() + "/siglip");
  auto text = testing::RunCli("inspect " + dir);
  EXPECT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("llava-siglip"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("siglip_vision_model"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("layout check  ok"), std::string::npos) << text.out;
  auto js = testing::RunCli("inspect --json " + dir);
  ASSERT_EQ(js.exit_code, 0) << js.err;
  auto j = nlohmann::json::parse(js.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << js.out;
  EXPECT_EQ(j["family"], "llava-siglip");
  EXPECT_EQ(j["vision"]["image_tokens"], 16);
  EXPECT_EQ(j["layout_check"]["ok"], true);
  int64_t sum = 0;
  for (const auto& c : j["components"]) sum += c["parameters"].get<int64_t>();
  EXPECT_EQ(sum, j["total_parameters"].get<int64_t>());
}

// Each broken directory: exit 2, exactly one line on stderr, naming the file.
TEST(InspectCli, BadInputsExit2WithOneLineNamingTheFile) {
  const std::string root = ModelRoot();
  auto fresh = [&](const std::string& name) {
    const std::string dir = root + "/" + name;
    Synth(SynthFamily::kLlama, dir);
    return dir;
  };
  auto write = [](const std::string& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; };

  const std::string no_config = fresh("no_config");
  fs::remove(no_config + "/config.json");
  const std::string bad_json = fresh("bad_json");
  write(bad_json + "/config.json", "{\"model_type\": \"llama\",");
  const std::string unknown = fresh("unknown");
  write(unknown + "/config.json", "{\"model_type\": \"mamba\"}");
  const std::string no_weights = fresh("no_weights");
  fs::remove(no_weights + "/model.safetensors");
  const std::string truncated = fresh("truncated");
  fs::resize_file(truncated + "/model.safetensors", fs::file_size(truncated + "/model.safetensors") - 100);

  struct Case {
    std::string dir, must_name;
  } cases[] = {{no_config, "config.json"},        {bad_json, "config.json"},
               {unknown, "config.json"},          {no_weights, no_weights},
               {truncated, "model.safetensors"},  {root + "/does_not_exist", "config.json"}};
  for (const auto& c : cases) {
    auto r = testing::RunCli("inspect " + c.dir);
    EXPECT_EQ(r.exit_code, 2) << c.dir << "\n" << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_NE(r.err.find(c.must_name), std::string::npos) << r.err;
  }
}

}  // namespace
}  // namespace bitlens

namespace bitlens {
namespace {

// Checkpoints written by HF transformers itself (tests/golden, every name
// layout it produces) pass inspect's layout check with no differences.
TEST(InspectReport, CheckpointsWrittenByTransformersPassTheLayoutCheck) {
  const fs::path golden = fs::path(testing::SourceDir()) / "tests" / "golden";
  if (!fs::exists(golden)) GTEST_SKIP() << "no tests/golden";
  int checked = 0;
  for (const auto& entry : fs::recursive_directory_iterator(golden)) {
    if (!entry.is_regular_file() || entry.path().filename() != "config.json") continue;
    const std::string dir = entry.path().parent_path().string();
    if (!fs::exists(dir + "/model.safetensors") && !fs::exists(dir + "/model.safetensors.index.json")) continue;
    // torchao QAT checkpoints (quant_method "torchao") are inputs of `bitlens convert --from
    // torchao`, not checkpoints bitlens runs; tests/unit/torchao_import_test.cpp covers them.
    if (entry.path().parent_path().parent_path().filename() == "torchao_qat") continue;
    auto r = InspectCheckpoint(dir);
    ASSERT_TRUE(r.ok()) << r.status().message();
    EXPECT_TRUE(r->layout_checked) << dir << ": " << r->layout_error;
    EXPECT_TRUE(r->missing.empty() && r->unexpected.empty() && r->wrong_shape.empty())
        << dir << " (layout " << r->layout << ")\n" << FormatReportText(*r);
    ++checked;
  }
  EXPECT_GT(checked, 0);
}

}  // namespace
}  // namespace bitlens
