// Quantized models end to end: a synthesized tiny LLaVA (and a tied, fused
// Phi-3) is quantized with several plans, loaded by LoadModel, run by the
// Session and by `bitlens run`, and its logits are compared with the same
// model whose every packed weight was dequantized to f32 (the float
// reference, built here). The packed kernels read the same values the
// reference holds, so the two differ only by f32 summation order.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "base/mmap_file.h"
#include "kernels/qmatmul_a8.h"
#include "model/model.h"
#include "quant/checkpoint.h"
#include "quant/pipeline.h"
#include "quant/report.h"
#include "runtime/session.h"
#include "test_paths.h"

namespace bitlens {
namespace {

namespace fs = std::filesystem;

std::string Synth(const std::string& family, const std::string& name) {
  const std::string dir = testing::ScratchDir() + "-work/" + name;
  fs::remove_all(dir);
  auto r = testing::RunCli("synth --family " + family + " --preset tiny -o " + dir);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return dir;
}

// Writes `ref_dir`: every packed tensor of `qdir` dequantized to F32, the
// others as stored, config.json without quantization_config, side files copied.
void WriteDequantizedReference(const std::string& qdir, const std::string& ref_dir) {
  fs::remove_all(ref_dir);
  fs::create_directories(ref_dir);
  auto quant = quant::LoadQuantizationConfig(qdir);
  ASSERT_TRUE(quant.ok()) << quant.status().message();
  ASSERT_FALSE(quant->empty());
  auto ckpt = Checkpoint::Open(qdir);
  ASSERT_TRUE(ckpt.ok()) << ckpt.status().message();
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const std::string& name : ckpt->Names()) {
    auto t = ckpt->Get(name);
    ASSERT_TRUE(t.ok());
    if (const quant::QuantizedTensor* q = quant->Find(name)) {
      std::vector<float> values(static_cast<size_t>(q->n * q->k));
      kernels::WeightView view{DType::kU8, t->data(), q->n, q->k, q->format};
      quant::DequantizeWeightRows(view, 0, q->n, values.data());
      tensors.emplace_back(name, Tensor::FromF32({q->n, q->k}, values));
    } else {
      tensors.emplace_back(name, *t);
    }
  }
  ASSERT_TRUE(WriteSafetensors(ref_dir + "/model.safetensors", tensors).ok());
  auto text = ReadTextFile(qdir + "/config.json");
  ASSERT_TRUE(text.ok());
  nlohmann::ordered_json config = nlohmann::ordered_json::parse(*text);
  config.erase("quantization_config");
  std::ofstream(ref_dir + "/config.json") << config.dump(2);
  for (const auto& e : fs::directory_iterator(qdir)) {
    const std::string n = e.path().filename().string();
    if (n != "config.json" && e.path().extension() != ".safetensors" && n.rfind("report", 0) != 0 &&
        n != "model.safetensors.index.json") {
      fs::copy_file(e.path(), fs::path(ref_dir) / n);
    }
  }
}

std::unique_ptr<Model> Load(const std::string& dir) {
  auto m = LoadModel(dir);
  EXPECT_TRUE(m.ok()) << dir << ": " << m.status().message();
  return m.ok() ? std::move(*m) : nullptr;
}

// Prompt logits [n, vocab] of `model` (with a fixed synthetic image for VLMs).
std::vector<float> PromptLogits(const Model& model, std::vector<float>* image_rows_out = nullptr) {
  auto session = Session::Create(model, SessionOptions{});
  EXPECT_TRUE(session.ok()) << session.status().message();
  auto ids = (*session)->TokenizePrompt("Describe the image in detail.", model.config.is_vlm(), ChatMode::kAuto);
  EXPECT_TRUE(ids.ok()) << ids.status().message();
  std::vector<float> rows;
  if (model.config.is_vlm()) {
    const VisionConfig& v = *model.config.vision;
    std::vector<float> px(static_cast<size_t>(3 * v.image_size * v.image_size));
    for (size_t i = 0; i < px.size(); ++i) px[i] = std::sin(0.37f * static_cast<float>(i)) * 1.5f;
    const Tensor pixels = Tensor::FromF32({3, v.image_size, v.image_size}, px);
    rows.resize(static_cast<size_t>(model.config.image_seq_length() * model.config.text.hidden_size));
    const Status s = model.vision->Encode(pixels, rows.data());
    EXPECT_TRUE(s.ok()) << s.message();
    if (image_rows_out != nullptr) *image_rows_out = rows;
  }
  auto logits = (*session)->EvaluateLogits(*ids, rows.empty() ? nullptr : rows.data());
  EXPECT_TRUE(logits.ok()) << logits.status().message();
  return logits.ok() ? *logits : std::vector<float>{};
}

// Logits [vocab] of a decode step (m = 1): the prompt but its last id is
// prefilled, then the last id is decoded; the table kernels only run here.
std::vector<float> DecodeLogits(const Model& model) {
  auto session = Session::Create(model, SessionOptions{});
  EXPECT_TRUE(session.ok()) << session.status().message();
  auto ids = (*session)->TokenizePrompt("Describe the image in detail.", model.config.is_vlm(), ChatMode::kAuto);
  EXPECT_TRUE(ids.ok()) << ids.status().message();
  std::vector<float> rows;
  if (model.config.is_vlm()) {
    const VisionConfig& v = *model.config.vision;
    std::vector<float> px(static_cast<size_t>(3 * v.image_size * v.image_size));
    for (size_t i = 0; i < px.size(); ++i) px[i] = std::sin(0.37f * static_cast<float>(i)) * 1.5f;
    rows.resize(static_cast<size_t>(model.config.image_seq_length() * model.config.text.hidden_size));
    EXPECT_TRUE(model.vision->Encode(Tensor::FromF32({3, v.image_size, v.image_size}, px), rows.data()).ok());
  }
  const Status p = (*session)->Prefill(ids->data(), static_cast<int64_t>(ids->size()) - 1,
                                       rows.empty() ? nullptr : rows.data());
  EXPECT_TRUE(p.ok()) << p.message();
  const Status d = (*session)->DecodeStep(ids->back());
  EXPECT_TRUE(d.ok()) << d.message();
  const float* l = (*session)->logits();
  return std::vector<float>(l, l + model.config.text.vocab_size);
}

struct Diff {
  double max_abs = 0;
  double max_ref = 0;
};
Diff Compare(const std::vector<float>& a, const std::vector<float>& b) {
  Diff d;
  EXPECT_EQ(a.size(), b.size());
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    d.max_abs = std::max(d.max_abs, static_cast<double>(std::fabs(a[i] - b[i])));
    d.max_ref = std::max(d.max_ref, static_cast<double>(std::fabs(b[i])));
  }
  return d;
}

struct PlanCase {
  const char* name;
  const char* family;
  quant::PlanOptions plan;
  const char* method = "rtn";
};

std::vector<PlanCase> Cases() {
  std::vector<PlanCase> cases;
  cases.push_back({"defaults", "llava", {}});  // decoder w2g64, vision w4g32, projector f16, embed/lm-head w4g32
  quant::PlanOptions two_bit;
  two_bit.vision = "w2g32";
  two_bit.projector = "w2g32";
  two_bit.decoder = "w2g64";
  two_bit.embed = "w2g64";
  two_bit.lm_head = "w2sg64";
  two_bit.overrides = {{"language_model.model.layers.1.mlp.*", "w4g64"}};
  cases.push_back({"all_2bit_with_override", "llava", two_bit});
  quant::PlanOptions wide;
  wide.vision = "bf16";
  wide.projector = "w8";
  wide.decoder = "w2g32";
  wide.embed = "keep";
  wide.lm_head = "w4g64";
  cases.push_back({"w2g32_decoder_w8_projector", "llava", wide});
  quant::PlanOptions phi;
  phi.decoder = "w2g64";
  phi.embed = "w2g64";  // tied: the packed table is also the lm head
  cases.push_back({"phi3_tied_fused_w2g64", "phi3", phi});
  quant::PlanOptions dq;
  dq.vision = "t1";
  dq.projector = "w3g32";
  dq.decoder = "w2g32dq";
  dq.embed = "w2g64dq";
  dq.lm_head = "w8";
  cases.push_back({"w2g32dq_decoder_t1_vision_hqq", "llava", dq, "hqq"});
  return cases;
}

class QuantizedRun : public ::testing::TestWithParam<size_t> {};

// The Must-show check: the 2-bit model's logits equal those of its dequantized
// float reference. Both compute Σ x·w over the same f32 weight values; the
// packed path sums per group (scale·Σx·q + min·Σx) while the float path sums
// x·(min + scale·q), so they differ by f32 rounding only. Tolerance: 1e-4 of
// the largest reference logit (f32 epsilon 6e-8 times sums of ≤ 128 terms
// through 2 layers stays two orders below it); quantization error itself is
// orders of magnitude larger (printed as the distance to the source model).
TEST_P(QuantizedRun, LogitsMatchTheDequantizedFloatReference) {
  const PlanCase c = Cases()[GetParam()];
  const std::string src = Synth(c.family, std::string("src-") + c.name);
  const std::string qdir = testing::ScratchDir() + "-work/q-" + c.name;
  const std::string ref = testing::ScratchDir() + "-work/ref-" + c.name;
  quant::PipelineOptions options;
  options.model_dir = src;
  options.output_dir = qdir;
  options.plan = c.plan;
  options.overwrite = true;
  auto quantizer = quant::MakeCalibrationFreeQuantizer(c.method);
  ASSERT_TRUE(quantizer.ok()) << quantizer.status().message();
  options.quantizer = quantizer->get();
  auto result = quant::QuantizeCheckpoint(options);
  ASSERT_TRUE(result.ok()) << result.status().message();
  std::printf("[%s] %s\n", c.name, quant::ReportSummaryLine(*result).c_str());
  EXPECT_TRUE(fs::exists(qdir + "/report.json"));
  EXPECT_TRUE(fs::exists(qdir + "/report.html"));
  EXPECT_TRUE(fs::exists(qdir + "/tokenizer.json"));
  EXPECT_FALSE(fs::exists(qdir + ".tmp"));
  WriteDequantizedReference(qdir, ref);

  auto qmodel = Load(qdir);
  auto rmodel = Load(ref);
  auto smodel = Load(src);
  ASSERT_TRUE(qmodel && rmodel && smodel);
  EXPECT_FALSE(qmodel->quantization.empty());
  // The decoder really runs packed weights.
  EXPECT_NE(qmodel->decoder->weights().layers[0].q.format, nullptr);
  EXPECT_EQ(rmodel->decoder->weights().layers[0].q.format, nullptr);

  std::vector<float> qrows, rrows;
  const std::vector<float> ql = PromptLogits(*qmodel, &qrows);
  const std::vector<float> rl = PromptLogits(*rmodel, &rrows);
  const std::vector<float> sl = PromptLogits(*smodel);
  ASSERT_FALSE(ql.empty());
  const Diff d = Compare(ql, rl);
  const Diff ds = Compare(ql, sl);
  const double tol = 1e-4 * std::max(1.0, d.max_ref);
  std::printf("[%s] logits vs dequantized reference: max |diff| %.3g (tolerance %.3g, max |logit| %.3g); "
              "vs the source model: max |diff| %.3g\n",
              c.name, d.max_abs, tol, d.max_ref, ds.max_abs);
  EXPECT_LE(d.max_abs, tol);
  EXPECT_GT(ds.max_abs, 100 * tol) << "quantization left the logits unchanged: were the weights packed?";
  if (!qrows.empty()) {
    const Diff di = Compare(qrows, rrows);
    std::printf("[%s] image rows vs reference: max |diff| %.3g\n", c.name, di.max_abs);
    EXPECT_LE(di.max_abs, 1e-4 * std::max(1.0, di.max_ref));
  }
}

INSTANTIATE_TEST_SUITE_P(Plans, QuantizedRun, ::testing::Range<size_t>(0, Cases().size()), [](const auto& info) {
  return std::string(Cases()[info.param].name);
});

// The W2A8 paths (int8 activations, blocks of 32; and its table-kernel
// variant) against the same float reference. Activation rounding is at most
// 1/254 of each block's max |x| (0.4 %), compounded over 2 layers and the
// head; the tolerance, 2 % of the largest logit, stays well below what 2-bit
// quantization itself moves (printed as the distance to the source model).
TEST(QuantizedRunA8, LogitsStayCloseToTheDequantizedFloatReference) {
  struct Restore {
    ~Restore() { kernels::SetQActivations(kernels::QActivations::kF32); }
  } restore;
  for (const char* family : {"llava", "phi3"}) {
    SCOPED_TRACE(family);
    const std::string src = Synth(family, std::string("a8-src-") + family);
    const std::string qdir = testing::ScratchDir() + "-work/a8-q-" + family;
    const std::string ref = testing::ScratchDir() + "-work/a8-ref-" + family;
    quant::PipelineOptions options;
    options.model_dir = src;
    options.output_dir = qdir;
    options.plan.embed = "w2g64";
    auto result = quant::QuantizeCheckpoint(options);
    ASSERT_TRUE(result.ok()) << result.status().message();
    WriteDequantizedReference(qdir, ref);
    auto qmodel = Load(qdir);
    auto rmodel = Load(ref);
    auto smodel = Load(src);
    ASSERT_TRUE(qmodel && rmodel && smodel);
    kernels::SetQActivations(kernels::QActivations::kF32);
    // a8 on the prompt (prefill, m > 1); a8lut on a decode step (m = 1).
    const std::vector<float> rl = PromptLogits(*rmodel), rd = DecodeLogits(*rmodel);
    const std::vector<float> sl = PromptLogits(*smodel), sd = DecodeLogits(*smodel);
    for (kernels::QActivations a : {kernels::QActivations::kInt8, kernels::QActivations::kInt8Lut}) {
      const bool decode = a == kernels::QActivations::kInt8Lut;
      kernels::SetQActivations(a);
      const std::vector<float> ql = decode ? DecodeLogits(*qmodel) : PromptLogits(*qmodel);
      kernels::SetQActivations(kernels::QActivations::kF32);
      const std::vector<float>& rl_ = decode ? rd : rl;
      const std::vector<float>& sl_ = decode ? sd : sl;
      ASSERT_FALSE(ql.empty());
      const Diff d = Compare(ql, rl_);
      const Diff ds = Compare(ql, sl_);
      const double tol = 0.02 * std::max(1e-3, d.max_ref);
      std::printf("[%s %s] logits vs dequantized reference: max |diff| %.3g (tolerance %.3g, max |logit| %.3g); "
                  "vs the source model: %.3g\n",
                  family, kernels::QActivationsName(a), d.max_abs, tol, d.max_ref, ds.max_abs);
      EXPECT_LE(d.max_abs, tol);
      EXPECT_GT(d.max_abs, 0.0) << "int8 activations left the logits bit-identical: was the a8 path taken?";
    }
  }
}

// Greedy generation streams tokens from the quantized model, and `bitlens run`
// and `bitlens inspect` accept the quantized directory.
TEST(QuantizedRunCli, RunAndInspectTheQuantizedTinyLlava) {
  const std::string src = Synth("llava", "cli-src");
  const std::string qdir = testing::ScratchDir() + "-work/cli-q";
  quant::PipelineOptions options;
  options.model_dir = src;
  options.output_dir = qdir;
  options.overwrite = true;
  auto result = quant::QuantizeCheckpoint(options);
  ASSERT_TRUE(result.ok()) << result.status().message();

  auto model = Load(qdir);
  ASSERT_TRUE(model);
  auto session = Session::Create(*model, SessionOptions{});
  ASSERT_TRUE(session.ok());
  auto ids = (*session)->TokenizePrompt("What is this?", false, ChatMode::kAuto);
  ASSERT_TRUE(ids.ok());
  GenerateOptions g;
  g.max_tokens = 6;
  g.stop_at_eos = false;
  int pieces = 0;
  auto gen = (*session)->Generate(*ids, nullptr, g, [&](int32_t, std::string_view) {
    ++pieces;
    return true;
  });
  ASSERT_TRUE(gen.ok()) << gen.status().message();
  EXPECT_EQ(gen->ids.size(), 6u);
  EXPECT_EQ(pieces, 6);

  auto inspect = testing::RunCli("inspect " + qdir);
  ASSERT_EQ(inspect.exit_code, 0) << inspect.err;
  EXPECT_NE(inspect.out.find("w2g64"), std::string::npos) << inspect.out;
  EXPECT_NE(inspect.out.find("bpw"), std::string::npos) << inspect.out;

  BL_REQUIRE_TEST_DATA(image, "images/astronaut.png");
  auto run = testing::RunCli("run --model " + qdir + " --image " + image + " --prompt 'What is this?' --max-tokens 4");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_NE(run.err.find("vision"), std::string::npos) << run.err;
}

}  // namespace
}  // namespace bitlens
