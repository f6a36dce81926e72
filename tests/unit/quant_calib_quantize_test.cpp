// Calibrated quantization of whole blocks: GPTQ beats RTN on the layers of a
// walked model, AWQ's scales are folded consistently (norm weights divided by
// exactly the scales the weights were multiplied by), and the packed rows
// replace the weights for the rest of the walk.
#include <cmath>
#include <filesystem>

#include <gtest/gtest.h>

#include "model/model.h"
#include "quant/calib_quantize.h"
#include "quant/rtn.h"
#include "test_paths.h"

namespace bitlens::quant {
namespace {

std::unique_ptr<Model> SynthPhi3() {
  const std::string dir = testing::ScratchDir() + "-work/phi3";
  std::filesystem::remove_all(dir);
  auto r = testing::RunCli("synth --family phi3 --preset tiny -o " + dir);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  auto m = LoadModel(dir);
  EXPECT_TRUE(m.ok()) << m.status().message();
  return m.ok() ? std::move(*m) : nullptr;
}

std::vector<CalibSample> Texts() {
  std::vector<CalibSample> s(6);
  const char* p[] = {"The quick brown fox", "jumps over the lazy dog", "Hello world, this is a test",
                     "Pack my box with five dozen liquor jugs", "Sphinx of black quartz", "judge my vow"};
  for (int i = 0; i < 6; ++i) s[i].prompt = p[i], s[i].answer = std::string(p[(i + 1) % 6]) + " again";
  return s;
}

TEST(QuantCalibQuantize, GptqLayerErrorsAreBelowRtnOnTheWalkedModel) {
  auto model = SynthPhi3();
  ASSERT_NE(model, nullptr);
  const FormatInfo* f = *FindFormat("w2g64");
  auto format_of = [&](const std::string&) { return f; };
  std::map<std::string, double> err[2];
  for (int m = 0; m < 2; ++m) {
    CalibQuantizeOptions o;
    o.method = m == 0 ? QuantMethod::kRtn : QuantMethod::kGptq;
    o.quantize.error_rows = 0;
    QuantizingSink sink(o, format_of);
    CalibOptions co;
    co.sequential = false;  // both methods see the same inputs
    auto sum = RunCalibration(*model, Texts(), co, sink);
    ASSERT_TRUE(sum.ok()) << sum.status().message();
    err[m] = sink.errors;
  }
  ASSERT_EQ(err[0].size(), 8u);  // 2 layers x (qkv, o, gate_up, down)
  for (const auto& [name, rtn] : err[0]) {
    ASSERT_TRUE(err[1].count(name)) << name;
    EXPECT_LT(err[1][name], rtn) << name << ": gptq " << err[1][name] << " vs rtn " << rtn;
  }
}

// Keeps each block's original norm weights and the quantizer's outputs.
class AwqCheckSink final : public CalibSink {
 public:
  explicit AwqCheckSink(const FormatInfo* f) : f_(f) {
    CalibQuantizeOptions o;
    o.method = QuantMethod::kRtn;
    o.awq = true;
    o.quantize.error_rows = 0;
    quantizer_ = std::make_unique<BlockQuantizer>(o);
  }
  Status OnBlock(CalibBlock& block, std::vector<kernels::WeightView>& replace) override {
    const std::vector<float> before = block.norms[0].weight;
    BL_TRY(quantizer_->Quantize(block, [&](const std::string&) { return f_; }, replace));
    // s_j = before_j / after_j; the packed qkv rows hold W·diag(s).
    const CalibTensor& qkv = block.tensors[0];
    const std::vector<float>& after = block.norms[0].weight;
    std::vector<float> s(after.size());
    for (size_t j = 0; j < s.size(); ++j) s[j] = before[j] / after[j];
    for (float v : s) max_scale_change = std::max(max_scale_change, std::fabs(v - 1.0f));
    const std::vector<float>* kept = quantizer_->Norm(block.norms[0].weight_name);
    EXPECT_TRUE(kept != nullptr && *kept == after) << block.norms[0].weight_name;
    std::vector<float> w_hat(static_cast<size_t>(qkv.weight.n * qkv.weight.k));
    BL_TRY(DequantizeRowsRef(*f_, *quantizer_->Packed(qkv.name), qkv.weight.n, qkv.weight.k, w_hat.data()));
    for (int64_t r = 0; r < qkv.weight.n; ++r) {
      for (int64_t j = 0; j < qkv.weight.k; ++j) w_hat[r * qkv.weight.k + j] /= s[j];
    }
    BL_ASSIGN_OR_RETURN(std::vector<float> w, WeightToF32(qkv.weight));
    BL_ASSIGN_OR_RETURN(double direct, RelativeOutputError(w.data(), w_hat.data(), qkv.weight.n, qkv.weight.k,
                                                           block.inputs[0], 0));
    reported.push_back(*quantizer_->OutputError(qkv.name));
    recovered.push_back(direct);
    return Status::Ok();
  }
  std::vector<double> reported, recovered;
  float max_scale_change = 0;

 private:
  const FormatInfo* f_;
  std::unique_ptr<BlockQuantizer> quantizer_;
};

TEST(QuantCalibQuantize, AwqScalesFoldIntoTheNormExactly) {
  auto model = SynthPhi3();
  ASSERT_NE(model, nullptr);
  AwqCheckSink sink(*FindFormat("w2g64"));
  CalibOptions co;
  auto sum = RunCalibration(*model, Texts(), co, sink);
  ASSERT_TRUE(sum.ok()) << sum.status().message();
  ASSERT_EQ(sink.reported.size(), 2u);
  EXPECT_GT(sink.max_scale_change, 1e-3f) << "AWQ chose s = 1 everywhere: the fold is not exercised";
  for (size_t i = 0; i < sink.reported.size(); ++i) {
    // The error measured on the scaled problem equals the error of the
    // unscaled weights under the original statistics.
    EXPECT_NEAR(sink.recovered[i], sink.reported[i], 1e-3 * sink.reported[i])
        << "layer " << i << ": recovered " << sink.recovered[i] << " reported " << sink.reported[i];
  }
}

}  // namespace
}  // namespace bitlens::quant
