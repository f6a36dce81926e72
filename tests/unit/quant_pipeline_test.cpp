// The quantize pipeline: the mixed-precision plan (component defaults, glob
// overrides), the unit order a calibrated quantizer relies on, replacement
// values, sharding, and the atomic output (interrupt, failure, existing OUT).
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "base/mmap_file.h"
#include "base/progress.h"
#include "model/model.h"
#include "quant/pipeline.h"
#include "quant/report.h"
#include "runtime/session.h"
#include "test_paths.h"

namespace bitlens {
namespace {

namespace fs = std::filesystem;

class QuantPipeline : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = testing::ScratchDir() + "-work";
    fs::remove_all(base_);
    auto r = testing::RunCli("synth --family llava --preset tiny -o " + base_ + "/src");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto c = Checkpoint::Open(base_ + "/src");
    ASSERT_TRUE(c.ok());
    ckpt_ = std::make_unique<Checkpoint>(std::move(*c));
  }
  Result<quant::QuantPlan> Plan(const quant::PlanOptions& o) { return quant::PlanQuantization(base_ + "/src", *ckpt_, o); }
  quant::PipelineOptions Options(const std::string& out) {
    quant::PipelineOptions o;
    o.model_dir = base_ + "/src";
    o.output_dir = base_ + "/" + out;
    return o;
  }
  std::string base_;
  std::unique_ptr<Checkpoint> ckpt_;
};

const quant::PlannedTensor* Find(const quant::QuantPlan& p, const std::string& name) {
  for (const auto& t : p.tensors) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

std::string FormatOf(const quant::QuantPlan& p, const std::string& name) {
  const quant::PlannedTensor* t = Find(p, name);
  if (t == nullptr) return "(absent)";
  return t->format ? t->format->name : "keep";
}

TEST_F(QuantPipeline, ComponentDefaultsAndOverridesPickEachTensorsFormat) {
  quant::PlanOptions o;
  o.overrides = {{"language_model.model.layers.0.*", "w4g32"},
                 {"language_model.model.layers.0.mlp.down_proj.weight", "w8"},
                 {"*.encoder.layers.1.self_attn.*", "keep"}};
  auto plan = Plan(o);
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  const std::string lm = "language_model.model.";
  EXPECT_EQ(FormatOf(*plan, lm + "layers.1.self_attn.q_proj.weight"), "w2g64");  // decoder default
  EXPECT_EQ(FormatOf(*plan, lm + "layers.0.self_attn.q_proj.weight"), "w4g32");  // first override
  EXPECT_EQ(FormatOf(*plan, lm + "layers.0.mlp.down_proj.weight"), "w8");        // the later one wins
  EXPECT_EQ(FormatOf(*plan, lm + "embed_tokens.weight"), "w4g32");
  EXPECT_EQ(FormatOf(*plan, "language_model.lm_head.weight"), "w4g32");
  EXPECT_EQ(FormatOf(*plan, "multi_modal_projector.linear_1.weight"), "f16");
  EXPECT_EQ(FormatOf(*plan, "vision_tower.vision_model.encoder.layers.0.mlp.fc1.weight"), "w4g32");
  EXPECT_EQ(FormatOf(*plan, "vision_tower.vision_model.encoder.layers.1.self_attn.q_proj.weight"), "keep");
  // Norms, biases, position embeddings and the patch conv are never converted.
  EXPECT_EQ(FormatOf(*plan, lm + "layers.0.input_layernorm.weight"), "keep");
  EXPECT_EQ(FormatOf(*plan, "vision_tower.vision_model.embeddings.patch_embedding.weight"), "keep");
  EXPECT_EQ(FormatOf(*plan, "vision_tower.vision_model.embeddings.position_embedding.weight"), "keep");
  EXPECT_EQ(FormatOf(*plan, "multi_modal_projector.linear_1.bias"), "keep");

  const quant::PlannedTensor* q = Find(*plan, lm + "layers.1.self_attn.q_proj.weight");
  EXPECT_TRUE(q->packed);
  EXPECT_EQ(q->out_dtype, DType::kU8);
  EXPECT_EQ(q->out_shape, (Shape{64, 20}));  // w2g64: one 20-byte block per row of 64
  const quant::PlannedTensor* p = Find(*plan, "multi_modal_projector.linear_1.weight");
  EXPECT_FALSE(p->packed);  // f16 is written as a plain F16 tensor
  EXPECT_EQ(p->out_dtype, DType::kF16);
  uint64_t sum = 0;
  for (const auto& t : plan->tensors) sum += t.out_bytes;
  EXPECT_EQ(sum, plan->output_bytes);
}

TEST_F(QuantPipeline, BadPlansAreOneLineErrors) {
  quant::PlanOptions unknown;
  unknown.decoder = "w2g48";
  auto a = Plan(unknown);
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(a.status().message().rfind("--decoder: ", 0), 0u) << a.status().message();

  quant::PlanOptions nothing;
  nothing.overrides = {{"model.layers.0.*", "w4g32"}};  // LLaVA v4 names start with language_model.
  auto b = Plan(nothing);
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.status().message().find("--override 'model.layers.0.*' matches no weight tensor"), std::string::npos)
      << b.status().message();

  quant::PlanOptions bad_override;
  bad_override.overrides = {{"*", "int3"}};
  auto c = Plan(bad_override);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("--override '*=int3'"), std::string::npos) << c.status().message();
}

// Records the calls the pipeline makes, and replaces the final norm.
class RecordingQuantizer final : public quant::TensorQuantizer {
 public:
  std::string method() const override { return "recording"; }
  Status BeginUnit(const quant::QuantPlan& plan, const quant::PlanUnit& unit) override {
    EXPECT_FALSE(open_) << "units interleave";
    open_ = true;
    current_ = &unit;
    log.push_back(std::string("begin ") + quant::ComponentName(unit.component) + " " + std::to_string(unit.layer));
    return Status::Ok();
  }
  Status EndUnit(const quant::QuantPlan& plan, const quant::PlanUnit& unit) override {
    EXPECT_EQ(&unit, current_);
    open_ = false;
    return Status::Ok();
  }
  Status Quantize(const quant::TensorJob& job, std::span<uint8_t> out) override {
    EXPECT_TRUE(open_);
    EXPECT_EQ(job.tensor->component, current_->component);
    EXPECT_EQ(job.tensor->layer, current_->layer);
    ++jobs;
    return rtn->Quantize(job, out);
  }
  const std::vector<float>* Replacement(const quant::PlannedTensor& t) override {
    if (t.name != "language_model.model.norm.weight") return nullptr;
    norm.assign(static_cast<size_t>(NumElements(t.shape)), 0.5f);
    return &norm;
  }
  std::unique_ptr<quant::TensorQuantizer> rtn = quant::MakeRtnQuantizer();
  std::vector<std::string> log;
  std::vector<float> norm;
  int jobs = 0;
  bool open_ = false;
  const quant::PlanUnit* current_ = nullptr;
};

TEST_F(QuantPipeline, UnitsComeInModelOrderAndReplacementsAreWritten) {
  RecordingQuantizer rec;
  auto o = Options("q");
  o.quantizer = &rec;
  auto r = quant::QuantizeCheckpoint(o);
  ASSERT_TRUE(r.ok()) << r.status().message();
  const std::vector<std::string> want = {
      "begin vision -1", "begin vision 0",  "begin vision 1",  "begin vision -1", "begin projector -1",
      "begin embed -1",  "begin decoder 0", "begin decoder 1", "begin decoder -1", "begin lm-head -1"};
  EXPECT_EQ(rec.log, want);
  EXPECT_EQ(rec.jobs, 12 + 14 + 2);  // vision linears, decoder linears, embed + lm head (projector is f16)
  auto ckpt = Checkpoint::Open(base_ + "/q");
  ASSERT_TRUE(ckpt.ok());
  auto norm = ckpt->Get("language_model.model.norm.weight");
  ASSERT_TRUE(norm.ok());
  for (int64_t i = 0; i < norm->numel(); ++i) ASSERT_EQ(norm->data_as<float>()[i], 0.5f) << i;
  auto cfg = ReadTextFile(base_ + "/q/config.json");
  ASSERT_TRUE(cfg.ok());
  const auto j = nlohmann::json::parse(*cfg);
  EXPECT_EQ(j["quantization_config"]["method"], "recording");
  EXPECT_EQ(j["quantization_config"]["components"]["decoder"], "w2g64");
}

TEST_F(QuantPipeline, ShardedOutputLoadsAndGivesTheSameLogits) {
  auto one = Options("one");
  ASSERT_TRUE(quant::QuantizeCheckpoint(one).ok());
  auto many = Options("many");
  many.plan.max_shard_bytes = 30000;
  auto r = quant::QuantizeCheckpoint(many);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_TRUE(fs::exists(base_ + "/many/model.safetensors.index.json"));
  int shards = 0;
  for (const auto& e : fs::directory_iterator(base_ + "/many")) shards += e.path().extension() == ".safetensors";
  EXPECT_GE(shards, 3);
  std::vector<std::vector<float>> logits;
  for (const char* d : {"one", "many"}) {
    auto m = LoadModel(base_ + "/" + d);
    ASSERT_TRUE(m.ok()) << m.status().message();
    auto s = Session::Create(**m, SessionOptions{});
    ASSERT_TRUE(s.ok());
    auto l = (*s)->EvaluateLogits({1, 20, 30, 40, 50});
    ASSERT_TRUE(l.ok());
    logits.push_back(*l);
  }
  EXPECT_EQ(logits[0], logits[1]);
}

// A quantizer that fails at its n-th job, or raises the cancel flag there.
class FailingQuantizer final : public quant::TensorQuantizer {
 public:
  FailingQuantizer(int at, std::atomic<bool>* cancel) : at_(at), cancel_(cancel) {}
  std::string method() const override { return "failing"; }
  Status Quantize(const quant::TensorJob& job, std::span<uint8_t> out) override {
    if (++n_ == at_) {
      if (cancel_ == nullptr) return Internal("quantizer failed on purpose");
      cancel_->store(true);
    }
    return rtn_->Quantize(job, out);
  }

 private:
  int at_, n_ = 0;
  std::atomic<bool>* cancel_;
  std::unique_ptr<quant::TensorQuantizer> rtn_ = quant::MakeRtnQuantizer();
};

TEST_F(QuantPipeline, InterruptOrFailureLeavesNothingBehind) {
  std::atomic<bool> cancel{false};
  FailingQuantizer interrupt(5, &cancel);
  auto o = Options("q");
  o.quantizer = &interrupt;
  o.cancel = &cancel;
  auto r = quant::QuantizeCheckpoint(o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kCancelled);
  EXPECT_EQ(r.status().ExitCode(), 130);
  EXPECT_FALSE(fs::exists(base_ + "/q"));
  EXPECT_FALSE(fs::exists(base_ + "/q.tmp"));

  FailingQuantizer fail(20, nullptr);
  o.quantizer = &fail;
  o.cancel = nullptr;
  r = quant::QuantizeCheckpoint(o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "quantizer failed on purpose");
  EXPECT_FALSE(fs::exists(base_ + "/q"));
  EXPECT_FALSE(fs::exists(base_ + "/q.tmp"));
}

TEST_F(QuantPipeline, ExistingOutputNeedsForceAndIsReplacedWhole) {
  fs::create_directories(base_ + "/q");
  std::ofstream(base_ + "/q/keep.txt") << "x";
  auto o = Options("q");
  auto r = quant::QuantizeCheckpoint(o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("already exists (use --force"), std::string::npos);
  EXPECT_TRUE(fs::exists(base_ + "/q/keep.txt"));
  o.overwrite = true;
  r = quant::QuantizeCheckpoint(o);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_FALSE(fs::exists(base_ + "/q/keep.txt"));
  EXPECT_TRUE(fs::exists(base_ + "/q/model.safetensors"));
  EXPECT_FALSE(fs::exists(base_ + "/q.old"));
  // A trailing slash names the same directory (staged as q.tmp, not q/.tmp).
  auto slash = Options("s/");
  ASSERT_TRUE(quant::QuantizeCheckpoint(slash).ok());
  EXPECT_TRUE(fs::exists(base_ + "/s/model.safetensors"));
  EXPECT_FALSE(fs::exists(base_ + "/s/.tmp"));
}

TEST_F(QuantPipeline, ReportTotalsAgreeWithTheFiles) {
  auto r = quant::QuantizeCheckpoint(Options("q"));
  ASSERT_TRUE(r.ok()) << r.status().message();
  std::printf("tiny llava: %s\n", quant::ReportSummaryLine(*r).c_str());
  auto text = ReadTextFile(base_ + "/q/report.json");
  ASSERT_TRUE(text.ok());
  const auto j = nlohmann::json::parse(*text);
  EXPECT_EQ(j["totals"]["params"], 169792);
  EXPECT_EQ(j["totals"]["output_tensor_bytes"].get<uint64_t>(), r->output_bytes);
  EXPECT_GT(j["totals"]["peak_rss_mib"].get<double>(), 0.0);
  uint64_t bytes = 0;
  for (const auto& t : j["tensors"]) bytes += t["bytes"].get<uint64_t>();
  EXPECT_EQ(bytes, r->output_bytes);
  // The output tensor bytes are those of the safetensors data sections.
  auto ckpt = Checkpoint::Open(base_ + "/q");
  ASSERT_TRUE(ckpt.ok());
  uint64_t stored = 0;
  for (const auto& name : ckpt->Names()) stored += ckpt->Find(name)->end - ckpt->Find(name)->begin;
  EXPECT_EQ(stored, r->output_bytes);
  // Every 2-bit tensor's relative weight error is reported and plausible for 2 bits.
  for (const auto& t : j["tensors"]) {
    if (t["format"] == "w2g64") {
      ASSERT_TRUE(t.contains("rel_error")) << t.dump();
      EXPECT_GT(t["rel_error"].get<double>(), 0.05) << t.dump();
      EXPECT_LT(t["rel_error"].get<double>(), 0.8) << t.dump();
    }
  }
  auto html = ReadTextFile(base_ + "/q/report.html");
  ASSERT_TRUE(html.ok());
  EXPECT_NE(html->find("<svg"), std::string::npos);
  EXPECT_EQ(html->find("<script"), std::string::npos);
  EXPECT_EQ(html->find("http://www.w3.org/2000/svg"), html->find("http"));  // no external resources
}

TEST_F(QuantPipeline, CliQuantizesAndRefusesCalibratedMethodsWithoutData) {
  auto ok = testing::RunCli("quantize --model " + base_ + "/src -o " + base_ + "/cli --decoder w2g32 --override "
                            "'language_model.model.layers.1.*=w4g64' --threads 2");
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_NE(ok.out.find("report: " + base_ + "/cli/report.html"), std::string::npos) << ok.out;
  auto gptq = testing::RunCli("quantize --model " + base_ + "/src -o " + base_ + "/g --method gptq");
  EXPECT_EQ(gptq.exit_code, 2);
  EXPECT_NE(gptq.err.find("--method gptq needs calibration data: --calib FILE"), std::string::npos) << gptq.err;
  EXPECT_FALSE(fs::exists(base_ + "/g"));
  auto bad = testing::RunCli("quantize --model " + base_ + "/src -o " + base_ + "/b --vision w7");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_EQ(std::count(bad.err.begin(), bad.err.end(), '\n'), 1) << bad.err;
  EXPECT_FALSE(fs::exists(base_ + "/b"));
  auto dry = testing::RunCli("quantize --model " + base_ + "/src --dry-run");
  EXPECT_EQ(dry.exit_code, 0) << dry.err;
  EXPECT_NE(dry.out.find("w2g64"), std::string::npos) << dry.out;
}

TEST(QuantProgressBar, LineShowsFractionElapsedAndEta) {
  FILE* f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  ProgressBar bar("quantize", 200, f);
  EXPECT_EQ(bar.Line(50, 10.0, "7/9 w"), "quantize [######..................]  25%  10s elapsed, ETA 30s  7/9 w");
  EXPECT_EQ(bar.Line(0, 0.0, ""), "quantize [........................]   0%  0s elapsed, ETA --");
  EXPECT_EQ(ProgressBar::FormatDuration(3725), "1h02m");
  EXPECT_EQ(ProgressBar::FormatDuration(187), "3m07s");
  // Not a terminal: plain lines, one per decile (or 5 s), none for repeats within a decile.
  bar.SetInteractive(false);
  bar.Update(0, "a");
  bar.Update(5, "b");
  bar.Update(100, "c");
  bar.Finish("done");
  std::rewind(f);
  std::string text;
  char buf[256];
  while (std::fgets(buf, sizeof(buf), f) != nullptr) text += buf;
  std::fclose(f);
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 3) << text;
  EXPECT_EQ(text.find('\r'), std::string::npos) << text;
  EXPECT_NE(text.find(" 50%"), std::string::npos) << text;
  EXPECT_NE(text.find("quantize: done in 0s, done"), std::string::npos) << text;
}

}  // namespace
}  // namespace bitlens
