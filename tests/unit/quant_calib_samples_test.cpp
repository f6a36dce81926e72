// How many calibration samples GPTQ needs: on the trained stories260K model,
// the held-out relative output error of w2g64 GPTQ per linear layer, for
// Hessians from 8 .. 512 samples, against RTN. Prints the table that
// docs/quantization.md ("Calibration") records; the full sweep (8, 32, 128,
// 512 samples) runs with BITLENS_CALIB_SWEEP=1, otherwise 8 and 64.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include <gtest/gtest.h>

#include "base/f16.h"
#include "model/model.h"
#include "quant/calib_runner.h"
#include "quant/quantize_layer.h"
#include "quant/rtn.h"
#include "runtime/session.h"
#include "test_paths.h"

namespace bitlens::quant {
namespace {

std::vector<float> ToF32(const kernels::WeightView& w) {
  std::vector<float> out(static_cast<size_t>(w.n * w.k));
  const size_t count = out.size();
  if (w.dtype == DType::kF32) std::copy_n(static_cast<const float*>(w.data), count, out.data());
  else if (w.dtype == DType::kF16) F16ToF32(static_cast<const uint16_t*>(w.data), out.data(), count);
  else Bf16ToF32(static_cast<const uint16_t*>(w.data), out.data(), count);
  return out;
}

// Copies every block's statistics (full-precision inputs of every layer).
class StatsRecorder final : public CalibSink {
 public:
  Status OnBlock(CalibBlock& block, std::vector<kernels::WeightView>&) override {
    std::vector<LayerStats> copy;
    for (const LayerStats& s : block.inputs) {
      LayerStats c(s.k);
      BL_TRY(c.Merge(s));
      copy.push_back(std::move(c));
    }
    stats.push_back(std::move(copy));
    std::vector<std::pair<kernels::WeightView, int>> t;
    for (const CalibTensor& ct : block.tensors) t.emplace_back(ct.weight, ct.input);
    tensors.push_back(std::move(t));
    return Status::Ok();
  }
  std::vector<std::vector<LayerStats>> stats;
  std::vector<std::vector<std::pair<kernels::WeightView, int>>> tensors;
};

// Stories sampled from the model itself (temperature 1, one seed per story).
std::vector<CalibSample> Stories(const Model& model, int count, uint64_t seed0) {
  auto session = Session::Create(model, SessionOptions{});
  EXPECT_TRUE(session.ok());
  const char* openings[] = {"Once upon a time", "One day", "Tom had a", "The little bird", "Lily wanted to"};
  std::vector<CalibSample> out;
  for (int i = 0; i < count; ++i) {
    CalibSample s;
    s.prompt = openings[i % 5];
    auto ids = (*session)->TokenizePrompt(s.prompt, false, ChatMode::kOff);
    EXPECT_TRUE(ids.ok());
    GenerateOptions g;
    g.max_tokens = 120;
    g.sampling.temperature = 1.0f;
    g.sampling.seed = seed0 + static_cast<uint64_t>(i);
    auto r = (*session)->Generate(*ids, nullptr, g);
    EXPECT_TRUE(r.ok()) << r.status().message();
    s.answer = r->text;
    s.line = i + 1;
    out.push_back(std::move(s));
  }
  return out;
}

TEST(QuantCalibSamples, GptqHeldOutErrorAgainstSampleCount) {
  BL_REQUIRE_TEST_DATA(bin, "stories260K/stories260K.bin");
  BL_REQUIRE_TEST_DATA(tok, "stories260K/tok512.bin");
  const std::string dir = testing::ScratchDir() + "-work/stories";
  std::filesystem::remove_all(dir);
  auto conv = testing::RunCli("convert --from llama2c " + bin + " --tokenizer " + tok + " -o " + dir);
  ASSERT_EQ(conv.exit_code, 0) << conv.err;
  auto model = LoadModel(dir);
  ASSERT_TRUE(model.ok()) << model.status().message();

  CalibOptions options;
  options.sequential = false;  // every count sees the same full-precision layer inputs
  options.max_tokens_per_sample = 128;
  StatsRecorder held_out;
  ASSERT_TRUE(RunCalibration(**model, Stories(**model, 64, 100000), options, held_out).ok());
  const bool full = std::getenv("BITLENS_CALIB_SWEEP") != nullptr;
  const std::vector<int> counts = full ? std::vector<int>{8, 32, 128, 512} : std::vector<int>{8, 64};
  const std::vector<CalibSample> train = Stories(**model, counts.back(), 1);

  const FormatInfo& f = **FindFormat("w2g64");
  QuantizeOptions qo;
  qo.error_rows = 0;
  auto mean_error = [&](QuantMethod method, const StatsRecorder* calib) {
    double sum = 0;
    int count = 0;
    for (size_t b = 0; b < held_out.tensors.size(); ++b) {
      for (const auto& [view, input] : held_out.tensors[b]) {
        const std::vector<float> w = ToF32(view);
        std::vector<uint8_t> packed(RowBytes(f, view.k) * view.n);
        const LayerStats* st = calib ? &calib->stats[b][input] : nullptr;
        EXPECT_TRUE(QuantizeLinear(method, f, w.data(), view.n, view.k, st, qo, packed, nullptr).ok());
        std::vector<float> w_hat(w.size());
        EXPECT_TRUE(DequantizeRowsRef(f, packed, view.n, view.k, w_hat.data()).ok());
        auto e = RelativeOutputError(w.data(), w_hat.data(), view.n, view.k, held_out.stats[b][input], 0);
        EXPECT_TRUE(e.ok());
        sum += *e;
        ++count;
      }
    }
    return sum / count;
  };
  const double rtn = mean_error(QuantMethod::kRtn, nullptr);
  std::printf("stories260K, w2g64, mean held-out relative output error over %zu blocks' linears\n",
              held_out.tensors.size());
  std::printf("%-8s %-8s %-10s %-10s\n", "samples", "tokens", "gptq", "rtn");
  std::vector<double> gptq;
  for (int n : counts) {
    CalibOptions o = options;
    o.max_samples = n;
    StatsRecorder calib;
    auto sum = RunCalibration(**model, train, o, calib);
    ASSERT_TRUE(sum.ok()) << sum.status().message();
    gptq.push_back(mean_error(QuantMethod::kGptq, &calib));
    std::printf("%-8d %-8lld %-10.5f %-10.5f\n", n, static_cast<long long>(sum->tokens), gptq.back(), rtn);
  }
  EXPECT_LT(gptq.back(), gptq.front()) << "more calibration samples should lower the held-out error";
  EXPECT_LT(gptq.back(), rtn) << "GPTQ should beat RTN on held-out data";
}

}  // namespace
}  // namespace bitlens::quant
