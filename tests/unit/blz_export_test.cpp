// .blz export end to end: a tiny LLaVA (float, and quantized through the
// library) is exported, loaded back from the mapped file, and must give
// exactly the logits and tokens of its checkpoint folder; every weight the
// kernels read lies inside the file's mapping (nothing copied at load).
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "formats/blz.h"
#include "model/export.h"
#include "model/model.h"
#include "model/vit_weights.h"
#include "quant/pipeline.h"
#include "runtime/kv_cache.h"
#include "runtime/session.h"
#include "test_paths.h"

namespace bitlens {
namespace {

namespace fs = std::filesystem;

std::string Synth(const std::string& name) {
  const std::string dir = testing::ScratchDir() + "-work/" + name;
  fs::remove_all(dir);
  auto r = testing::RunCli("synth --family llava --preset tiny -o " + dir);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return dir;
}

std::string Quantize(const std::string& src, const std::string& name) {
  const std::string qdir = testing::ScratchDir() + "-work/" + name;
  quant::PipelineOptions options;
  options.model_dir = src;
  options.output_dir = qdir;
  options.overwrite = true;
  options.plan.decoder = "w2g64";
  options.plan.vision = "w2g32";
  options.plan.projector = "w4g32";
  options.plan.embed = "w2g64";
  options.plan.lm_head = "w4g64";
  auto quantizer = quant::MakeCalibrationFreeQuantizer("rtn");
  EXPECT_TRUE(quantizer.ok()) << quantizer.status().message();
  options.quantizer = quantizer->get();
  auto result = quant::QuantizeCheckpoint(options);
  EXPECT_TRUE(result.ok()) << result.status().message();
  return qdir;
}

std::string Export(const std::string& dir, const std::string& name) {
  ExportOptions o;
  o.model_dir = dir;
  o.output = testing::ScratchDir() + "-work/" + name + ".blz";
  o.target = blz::HostDefaultTarget();
  o.max_context = 256;
  o.progress = false;
  auto r = ExportBlz(o);
  EXPECT_TRUE(r.ok()) << r.status().message();
  EXPECT_FALSE(fs::exists(o.output + ".tmp"));
  if (r.ok()) std::printf("%s", FormatExportSummary(*r).c_str());
  return o.output;
}

std::unique_ptr<Model> Load(const std::string& path) {
  auto m = LoadModel(path);
  EXPECT_TRUE(m.ok()) << path << ": " << m.status().message();
  return m.ok() ? std::move(*m) : nullptr;
}

// Prompt logits [n, vocab] then one decode step's logits [vocab], with a
// fixed synthetic image.
std::vector<float> Logits(const Model& model) {
  auto session = Session::Create(model, SessionOptions{});
  EXPECT_TRUE(session.ok()) << session.status().message();
  auto ids = (*session)->TokenizePrompt("Describe the image in detail.", true, ChatMode::kAuto);
  EXPECT_TRUE(ids.ok()) << ids.status().message();
  const VisionConfig& v = *model.config.vision;
  std::vector<float> px(static_cast<size_t>(3 * v.image_size * v.image_size));
  for (size_t i = 0; i < px.size(); ++i) px[i] = std::sin(0.37f * static_cast<float>(i)) * 1.5f;
  std::vector<float> rows(static_cast<size_t>(model.config.image_seq_length() * model.config.text.hidden_size));
  EXPECT_TRUE(model.vision->Encode(Tensor::FromF32({3, v.image_size, v.image_size}, px), rows.data()).ok());
  auto logits = (*session)->EvaluateLogits(*ids, rows.data());
  EXPECT_TRUE(logits.ok()) << logits.status().message();
  std::vector<float> out = logits.ok() ? *logits : std::vector<float>{};
  auto s2 = Session::Create(model, SessionOptions{});
  EXPECT_TRUE((*s2)->Prefill(ids->data(), static_cast<int64_t>(ids->size()) - 1, rows.data()).ok());
  EXPECT_TRUE((*s2)->DecodeStep(ids->back()).ok());
  const float* l = (*s2)->logits();
  out.insert(out.end(), l, l + model.config.text.vocab_size);
  return out;
}

void ExpectIdentical(const std::vector<float>& a, const std::vector<float>& b) {
  ASSERT_EQ(a.size(), b.size());
  ASSERT_FALSE(a.empty());
  size_t diffs = 0;
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i] != b[i]) {
      ++diffs;
      worst = std::max(worst, static_cast<double>(std::fabs(a[i] - b[i])));
    }
  }
  EXPECT_EQ(diffs, 0u) << diffs << " of " << a.size() << " logits differ, max |diff| " << worst;
}

std::string RunTokens(const std::string& model) {
  auto r = testing::RunCli("run --model " + model + " --prompt 'Hello there' --max-tokens 12 --no-chat");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return r.out;
}

TEST(BlzExport, QuantizedRoundTripGivesIdenticalLogitsAndTokens) {
  const std::string src = Synth("blz-src");
  const std::string qdir = Quantize(src, "blz-q");
  const std::string file = Export(qdir, "tiny-q");
  auto folder = Load(qdir);
  auto blz = Load(file);
  ASSERT_TRUE(folder && blz);
  EXPECT_FALSE(blz->quantization.empty());
  EXPECT_NE(blz->decoder->weights().layers[0].q.format, nullptr);
  EXPECT_TRUE(blz->image_processor.has_value());
  ASSERT_TRUE(blz->tokenizer);
  EXPECT_EQ(blz->bos_id, folder->bos_id);
  EXPECT_EQ(blz->eos_ids, folder->eos_ids);
  EXPECT_EQ(blz->chat_family, folder->chat_family);
  ExpectIdentical(Logits(*blz), Logits(*folder));
  const std::string a = RunTokens(qdir), b = RunTokens(file);
  EXPECT_FALSE(a.empty());
  EXPECT_EQ(a, b);
}

TEST(BlzExport, FloatRoundTripGivesIdenticalLogitsAndTokens) {
  const std::string src = Synth("blz-float");
  const std::string file = Export(src, "tiny-f");
  auto folder = Load(src);
  auto blz = Load(file);
  ASSERT_TRUE(folder && blz);
  EXPECT_TRUE(blz->quantization.empty());
  ExpectIdentical(Logits(*blz), Logits(*folder));
  EXPECT_EQ(RunTokens(src), RunTokens(file));
}

// `bitlens eval` and `bench` take the .blz where they take a folder: eval
// against the folder it came from agrees on every token (KL 0), and bench
// reports the load.
TEST(BlzExport, EvalAndBenchAcceptTheFile) {
  const std::string src = Synth("blz-cli-src");
  const std::string dir = testing::ScratchDir();
  auto r = testing::RunCli("export --model " + src + " --to blz -o " + dir + "/m.blz");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("component"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("decoder"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("export"), std::string::npos) << "no progress bar: " << r.err;
  r = testing::RunCli("eval --model " + dir + "/m.blz --reference " + src + " --count 4 --json " + dir + "/r.json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::ifstream in(dir + "/r.json");
  const std::string report((std::istreambuf_iterator<char>(in)), {});
  EXPECT_NE(report.find("\"kl\": 0.0"), std::string::npos) << report.substr(0, 400);
  EXPECT_NE(report.find("\"top1_agreement\": 1.0"), std::string::npos) << report.substr(0, 400);
  r = testing::RunCli("bench --model " + dir + "/m.blz --reps 1 --array-mib 8 --threads 1 --prompt-tokens 8 "
                      "--decode-tokens 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("loaded in"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("m.blz"), std::string::npos) << r.out;
}

// The memory plan's KV cache is exactly what the runtime's KvCache holds for
// that context; the context is clamped to max_position_embeddings; the plan
// is recorded in the file's metadata.
TEST(BlzExport, MemoryPlanMatchesTheKvCacheAndIsRecorded) {
  const std::string src = Synth("blz-plan-src");
  auto model = Load(src);
  ASSERT_TRUE(model);
  const TextConfig& t = model->config.text;
  const MemoryPlan plan = PlanMemory(model->config, 64);
  const KvCache kv(t.num_hidden_layers, 64, t.num_key_value_heads * t.head_dim);
  EXPECT_EQ(plan.kv_cache_bytes, kv.bytes());
  EXPECT_EQ(plan.arena_bytes, plan.kv_cache_bytes + plan.decode_scratch_bytes);
  EXPECT_GT(plan.decode_scratch_bytes, static_cast<uint64_t>(t.vocab_size) * 4);
  EXPECT_EQ(PlanMemory(model->config, t.max_position_embeddings * 10).max_context, t.max_position_embeddings);
  const std::string file = Export(src, "plan");  // max_context 256
  auto f = blz::BlzFile::Open(file);
  ASSERT_TRUE(f.ok()) << f.status().message();
  const std::string md((*f)->contents().metadata_json);
  const MemoryPlan p256 = PlanMemory(model->config, 256);
  EXPECT_NE(md.find("\"arena_bytes\": " + std::to_string(p256.arena_bytes)), std::string::npos) << md;
  EXPECT_NE(md.find("\"max_context\": " + std::to_string(p256.max_context)), std::string::npos) << md;
}

// Address ranges of this process's mappings of `path` (from /proc/self/maps).
std::vector<std::pair<uintptr_t, uintptr_t>> MappingsOf(const std::string& path) {
  std::vector<std::pair<uintptr_t, uintptr_t>> out;
  std::ifstream maps("/proc/self/maps");
  const std::string canonical = fs::canonical(path).string();
  for (std::string line; std::getline(maps, line);) {
    if (line.size() < canonical.size() || line.compare(line.size() - canonical.size(), canonical.size(), canonical) != 0) {
      continue;
    }
    std::istringstream in(line);
    std::string range;
    in >> range;
    const size_t dash = range.find('-');
    out.emplace_back(std::stoull(range.substr(0, dash), nullptr, 16), std::stoull(range.substr(dash + 1), nullptr, 16));
  }
  return out;
}

TEST(BlzExport, EveryWeightPointerLiesInsideTheMapping) {
  const std::string src = Synth("blz-nocopy-src");
  const std::string qdir = Quantize(src, "blz-nocopy-q");
  for (const std::string& dir : {qdir, src}) {
    const std::string file = Export(dir, dir == src ? "nocopy-f" : "nocopy-q");
    auto model = Load(file);
    ASSERT_TRUE(model);
    const auto ranges = MappingsOf(file);
    ASSERT_FALSE(ranges.empty()) << file << " is not mapped";
    int checked = 0;
    auto inside = [&](const void* p, const std::string& what) {
      ++checked;
      const uintptr_t a = reinterpret_cast<uintptr_t>(p);
      bool ok = false;
      for (const auto& [lo, hi] : ranges) ok = ok || (a >= lo && a < hi);
      EXPECT_TRUE(ok) << what << " at " << p << " is outside the mapping of " << file << " (a copy)";
      EXPECT_EQ(a % 64, 0u) << what << " is not 64-byte aligned";
    };
    const DecoderWeights& w = model->decoder->weights();
    inside(w.embed.data, "embed_tokens");
    inside(w.lm_head.data, "lm_head");
    inside(w.final_norm.data, "final norm");
    for (size_t l = 0; l < w.layers.size(); ++l) {
      const auto& L = w.layers[l];
      const std::string p = "layer " + std::to_string(l) + " ";
      for (const auto* v : {&L.q, &L.k, &L.v, &L.o, &L.gate, &L.up, &L.down}) inside(v->data, p + "matrix");
      inside(L.input_norm.data, p + "input norm");
      inside(L.post_attn_norm.data, p + "post-attention norm");
    }
    // The vision tower's and projector's matrices, bound by the same binder
    // VisionEncoder::Load uses.
    const quant::QuantizationConfig* q = model->quantization.empty() ? nullptr : &model->quantization;
    auto prefix = FindVisionTowerPrefix(model->checkpoint);
    ASSERT_TRUE(prefix.ok()) << prefix.status().message();
    WeightLoader loader(model->checkpoint, *prefix, q);
    auto vit = LoadVitWeights(loader, *model->config.vision, model->config.vision->num_hidden_layers);
    ASSERT_TRUE(vit.ok()) << vit.status().message();
    inside(vit->patch_embedding.data, "patch embedding");
    for (const auto& L : vit->layers) {
      for (const auto* v : {&L.q_proj, &L.k_proj, &L.v_proj, &L.out_proj, &L.fc1, &L.fc2}) inside(v->data, "vit matrix");
    }
    for (const std::string& name : model->checkpoint.Names()) {
      auto t = model->checkpoint.Get(name);
      ASSERT_TRUE(t.ok());
      inside(t->data(), name);
      EXPECT_EQ(reinterpret_cast<uintptr_t>(t->data()) % blz::kTensorAlignment, 0u) << name;
    }
    std::printf("%s: %d weight pointers inside the mapping\n", file.c_str(), checked);
  }
}

}  // namespace
}  // namespace bitlens
