// What int8 activations (W2A8, `--activations a8`) cost on a real trained
// model: stories260K quantized to w2g64 and w4g32 decoders, logits at 200
// teacher-forced positions (its own greedy continuation) under a8 against a16
// and against the unquantized model. Prints the table docs/benchmarks.md
// records ("Accuracy of a8").
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "kernels/qmatmul_a8.h"
#include "model/model.h"
#include "runtime/session.h"
#include "test_paths.h"

namespace bitlens::kernels {
namespace {

struct Comparison {
  double top1 = 0.0;      // fraction of positions with the same argmax
  double max_abs = 0.0;   // max |a − b| over all logits
  double rel_rms = 0.0;   // ‖a − b‖ / ‖b‖
};

Comparison Compare(const std::vector<float>& a, const std::vector<float>& b, int64_t vocab) {
  Comparison c;
  const int64_t n = static_cast<int64_t>(a.size()) / vocab;
  double diff2 = 0.0, ref2 = 0.0;
  int64_t same = 0;
  for (int64_t p = 0; p < n; ++p) {
    const float* pa = a.data() + p * vocab;
    const float* pb = b.data() + p * vocab;
    same += std::max_element(pa, pa + vocab) - pa == std::max_element(pb, pb + vocab) - pb;
    for (int64_t i = 0; i < vocab; ++i) {
      const double d = double(pa[i]) - pb[i];
      c.max_abs = std::max(c.max_abs, std::fabs(d));
      diff2 += d * d;
      ref2 += double(pb[i]) * pb[i];
    }
  }
  c.top1 = static_cast<double>(same) / static_cast<double>(n);
  c.rel_rms = std::sqrt(diff2 / ref2);
  return c;
}

TEST(QMatMulA8Accuracy, Stories260KLogitsUnderA8AgainstA16) {
  BL_REQUIRE_TEST_DATA(bin, "stories260K/stories260K.bin");
  BL_REQUIRE_TEST_DATA(tok, "stories260K/tok512.bin");
  BL_REQUIRE_TEST_DATA(greedy, "stories260K/greedy200_ids.txt");
  namespace fs = std::filesystem;
  const std::string work = testing::ScratchDir() + "-work";
  fs::remove_all(work);
  const std::string src = work + "/src";
  auto conv = testing::RunCli("convert --from llama2c " + bin + " --tokenizer " + tok + " -o " + src);
  ASSERT_EQ(conv.exit_code, 0) << conv.err;

  // BOS, then the model's own greedy continuation: 200 positions.
  std::vector<int32_t> ids = {1};
  std::ifstream in(greedy);
  for (int32_t id; ids.size() < 200 && in >> id;) ids.push_back(id);
  ASSERT_EQ(ids.size(), 200u);

  int64_t vocab = 0;
  auto logits = [&](const std::string& dir, QActivations acts) {
    SetQActivations(acts);
    auto model = LoadModel(dir);
    EXPECT_TRUE(model.ok()) << model.status().message();
    std::vector<float> out;
    if (model.ok()) {
      vocab = (*model)->config.text.vocab_size;
      auto session = Session::Create(**model, SessionOptions{});
      EXPECT_TRUE(session.ok());
      if (session.ok()) {
        auto l = (*session)->EvaluateLogits(ids);
        EXPECT_TRUE(l.ok()) << l.status().message();
        if (l.ok()) out = std::move(*l);
      }
    }
    SetQActivations(QActivations::kF32);
    return out;
  };
  const std::vector<float> source = logits(src, QActivations::kF32);
  ASSERT_FALSE(source.empty());
  ASSERT_GT(vocab, 0);
  ASSERT_EQ(static_cast<int64_t>(source.size()), 200 * vocab);

  std::printf("[ a8 accuracy ] stories260K, 200 teacher-forced positions, vocab %lld\n", static_cast<long long>(vocab));
  std::printf("%-8s %-22s %-10s %-12s %-10s\n", "decoder", "pair", "top-1 same", "max |diff|", "rel. rms");
  for (const char* fmt : {"w2g64", "w4g32"}) {
    const std::string q = work + "/" + fmt;
    auto quant = testing::RunCli("quantize --model " + src + " --decoder " + fmt + " -o " + q);
    ASSERT_EQ(quant.exit_code, 0) << quant.err;
    const std::vector<float> a16 = logits(q, QActivations::kF32);
    const std::vector<float> a8 = logits(q, QActivations::kInt8);
    ASSERT_EQ(a16.size(), source.size());
    ASSERT_EQ(a8.size(), source.size());
    const Comparison c8 = Compare(a8, a16, vocab), cw = Compare(a16, source, vocab), c8s = Compare(a8, source, vocab);
    for (auto [name, c] : {std::pair<const char*, Comparison>{"a8 vs a16", c8}, {"a16 vs unquantized", cw},
                           {"a8 vs unquantized", c8s}}) {
      std::printf("%-8s %-22s %-10.3f %-12.4g %-10.4g\n", fmt, name, c.top1, c.max_abs, c.rel_rms);
    }
    EXPECT_GT(c8.max_abs, 0.0) << fmt << ": a8 changed no logit, the option did not reach the packed matmuls";
    // Int8 activations (blocks of 32) must move the logits less than the
    // weight quantization itself did.
    EXPECT_LT(c8.rel_rms, cw.rel_rms) << fmt;
  }
  fs::remove_all(work);
}

}  // namespace
}  // namespace bitlens::kernels
