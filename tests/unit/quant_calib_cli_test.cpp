// `bitlens quantize --calib` end to end on a synthesized tiny LLaVA: gptq and
// awq+gptq write checkpoints that run, whose logits stay near the
// full-precision model's (AWQ's rescaled norms written, not just the
// weights), --target-bpw keeps the planned layers within the budget, and bad
// calibration input is a one-line exit 2.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "model/model.h"
#include "runtime/session.h"
#include "test_paths.h"

namespace bitlens {
namespace {

struct Fixture {
  std::string dir, model, calib;
};

Fixture Prepare(const std::string& image) {
  Fixture f;
  f.dir = testing::ScratchDir();
  f.model = f.dir + "/llava";
  auto synth = testing::RunCli("synth --family llava --preset tiny -o " + f.model);
  EXPECT_EQ(synth.exit_code, 0) << synth.err;
  std::filesystem::copy_file(image, f.dir + "/a.png");
  f.calib = f.dir + "/calib.jsonl";
  std::ofstream(f.calib) << "{\"image\": \"a.png\", \"prompt\": \"Describe the image.\", \"answer\": \"An astronaut.\"}\n"
                         << "{\"prompt\": \"What is the capital of France?\", \"answer\": \"Paris, on the Seine.\"}\n"
                         << "{\"image\": \"a.png\", \"prompt\": \"What color is the suit?\"}\n"
                         << "{\"prompt\": \"Count to ten: one two three four five six seven eight nine ten\"}\n";
  return f;
}

// Logits at every position of one prompt (text only).
std::vector<float> Logits(const std::string& dir) {
  auto m = LoadModel(dir);
  EXPECT_TRUE(m.ok()) << m.status().message();
  if (!m.ok()) return {};
  auto s = Session::Create(**m, SessionOptions{});
  EXPECT_TRUE(s.ok());
  auto ids = (*s)->TokenizePrompt("Tell me about the picture and the astronaut in it.", false, ChatMode::kOn);
  EXPECT_TRUE(ids.ok());
  auto logits = (*s)->EvaluateLogits(*ids);
  EXPECT_TRUE(logits.ok()) << logits.status().message();
  return logits.ok() ? *logits : std::vector<float>{};
}

double RelDiff(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) num += (a[i] - b[i]) * double(a[i] - b[i]), den += double(b[i]) * b[i];
  return std::sqrt(num / den);
}

TEST(QuantCalibCli, GptqAndAwqGptqCheckpointsRunAndStayCloseToFullPrecision) {
  BL_REQUIRE_TEST_DATA(image, "images/astronaut.png");
  const Fixture f = Prepare(image);
  const std::vector<float> ref = Logits(f.model);
  ASSERT_FALSE(ref.empty());
  double err[3] = {0, 0, 0};
  const char* methods[3] = {"rtn", "gptq", "awq+gptq"};
  for (int m = 0; m < 3; ++m) {
    SCOPED_TRACE(methods[m]);
    const std::string out = f.dir + "/q-" + std::to_string(m);
    const std::string calib = m == 0 ? "" : " --calib " + f.calib;
    auto q = testing::RunCli("quantize --model " + f.model + " -o " + out + " --method " + methods[m] + calib +
                             " --decoder w4g32 --vision w4g32 --embed f16 --lm-head f16");
    ASSERT_EQ(q.exit_code, 0) << q.err;
    EXPECT_NE(q.out.find(std::string("method ") + methods[m]), std::string::npos) << q.out;
    err[m] = RelDiff(Logits(out), ref);
    auto run = testing::RunCli("run --model " + out + " --image " + f.dir + "/a.png --prompt 'What is this?' --max-tokens 4");
    EXPECT_EQ(run.exit_code, 0) << run.err;
    if (m == 0) continue;
    std::ifstream in(out + "/report.json");
    const nlohmann::json report = nlohmann::json::parse(in, nullptr, false);
    ASSERT_FALSE(report.is_discarded());
    int with_error = 0;
    for (const auto& t : report["tensors"]) {
      if (t.contains("output_rel_error") && t["output_rel_error"].is_number()) ++with_error;
    }
    // 2 decoder layers x 7 linears, 1 tower layer x 6, projector linear_1/2 kept f16.
    EXPECT_EQ(with_error, 20) << report["tensors"].dump().substr(0, 400);
  }
  std::printf("logits relative error vs full precision (w4g32): rtn %.5f, gptq %.5f, awq+gptq %.5f\n", err[0], err[1],
              err[2]);
  // awq+gptq wrote rescaled norms: the output's norm weights differ from the source's.
  auto src = LoadModel(f.model);
  auto awq = LoadModel(f.dir + "/q-2");
  ASSERT_TRUE(src.ok() && awq.ok());
  double max_change = 0;
  const int64_t h = (*src)->config.text.hidden_size;
  for (size_t l = 0; l < (*src)->decoder->weights().layers.size(); ++l) {
    const auto& A = (*src)->decoder->weights().layers[l];
    const auto& B = (*awq)->decoder->weights().layers[l];
    for (const auto& [a, b] : {std::pair{A.input_norm.data, B.input_norm.data},
                               std::pair{A.post_attn_norm.data, B.post_attn_norm.data}}) {
      for (int64_t j = 0; j < h; ++j) max_change = std::max(max_change, std::fabs(double(a[j]) - b[j]) / std::fabs(a[j]));
    }
  }
  EXPECT_GT(max_change, 1e-3) << "the AWQ-rescaled norm weights were not written";
  // Calibrated methods beat RTN on the logits; a missing or wrong norm fold
  // (weights scaled by s, norms not divided by s) would leave awq+gptq far
  // behind RTN.
  EXPECT_LT(err[1], err[0]);
  EXPECT_LT(err[2], err[0]);
}

TEST(QuantCalibCli, TargetBpwPlansTheLayersWithinTheBudget) {
  BL_REQUIRE_TEST_DATA(image, "images/astronaut.png");
  const Fixture f = Prepare(image);
  const std::string out = f.dir + "/planned";
  auto q = testing::RunCli("quantize --model " + f.model + " -o " + out + " --method gptq --calib " + f.calib +
                           " --target-bpw 3.2 --candidates w2g64,w3g64,w4g32,w8");
  ASSERT_EQ(q.exit_code, 0) << q.err;
  EXPECT_NE(q.out.find("mixed precision:"), std::string::npos) << q.out;
  std::ifstream in(out + "/report.json");
  const nlohmann::json report = nlohmann::json::parse(in, nullptr, false);
  ASSERT_FALSE(report.is_discarded());
  double bytes = 0, params = 0;
  std::set<std::string> formats;
  for (const auto& t : report["tensors"]) {
    if (!t.contains("sensitivity") || !t["sensitivity"].is_number()) continue;  // planned tensors carry one
    bytes += t["bytes"].get<double>();
    params += t["params"].get<double>();
    formats.insert(t["format"].get<std::string>());
  }
  ASSERT_GT(params, 0);
  const double bpw = 8 * bytes / params;
  std::printf("planned layers: %.3f bpw for a target of 3.2, formats used: %zu\n", bpw, formats.size());
  EXPECT_LE(bpw, 3.2);
  EXPECT_GT(bpw, 2.6);  // the budget is spent, not left at 2.5 bpw
  EXPECT_GE(formats.size(), 2u);  // mixed, not one format everywhere

  auto no_calib = testing::RunCli("quantize --model " + f.model + " -o " + f.dir + "/x --target-bpw 3");
  EXPECT_EQ(no_calib.exit_code, 2);
  EXPECT_NE(no_calib.err.find("add --calib FILE"), std::string::npos) << no_calib.err;
  std::ofstream(f.dir + "/bad.jsonl") << "{\"prompt\": \"ok\"}\n{\"prompt\": 7}\n";
  auto bad = testing::RunCli("quantize --model " + f.model + " -o " + f.dir + "/y --method gptq --calib " + f.dir +
                             "/bad.jsonl");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("bad.jsonl:2: 'prompt' must be a string (got number)"), std::string::npos) << bad.err;
  EXPECT_FALSE(std::filesystem::exists(f.dir + "/y"));
}

TEST(QuantCalibCli, TextOnlyCalibrationWithMoreThreadsThanCores) {
  // The walk starts (and sizes its buffers) before the pipeline sets --threads.
  const std::string dir = testing::ScratchDir();
  auto synth = testing::RunCli("synth --family llama --preset tiny -o " + dir + "/llama");
  ASSERT_EQ(synth.exit_code, 0) << synth.err;
  std::ofstream(dir + "/text.jsonl") << "{\"prompt\": \"hello there\"}\n{\"prompt\": \"a b c d\", \"answer\": \"e f\"}\n";
  auto q = testing::RunCli("quantize --model " + dir + "/llama -o " + dir + "/out --method gptq --calib " + dir +
                           "/text.jsonl --threads 7");
  EXPECT_EQ(q.exit_code, 0) << q.err;
  EXPECT_NE(q.out.find("calibration: 2 samples (0 with images)"), std::string::npos) << q.out;
}

}  // namespace
}  // namespace bitlens
