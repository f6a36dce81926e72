// Decoder conformance against HF transformers goldens (tests/golden/<case>/,
// see docs/conformance.md): prompt logits at every position within 1e-3,
// each greedy step's logits within 1e-3, and the same 16 greedy ids.
#include <filesystem>

#include <gtest/gtest.h>

#include "golden_case.h"
#include "model/model.h"
#include "runtime/sampler.h"
#include "runtime/session.h"

namespace bitlens {
namespace {

using testing::GoldenCase;

class DecoderGolden : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    auto c = testing::LoadGoldenCase(GetParam());
    if (!c.ok() && c.status().code() == StatusCode::kNotFound) {
      GTEST_SKIP() << "golden case tests/golden/" << GetParam() << " is not there yet (make conformance writes it)";
    }
    ASSERT_TRUE(c.ok()) << c.status().message();
    golden_ = std::make_unique<GoldenCase>(std::move(*c));
    auto m = LoadModel(golden_->model_dir());
    ASSERT_TRUE(m.ok()) << m.status().message();
    model_ = std::move(*m);
    auto s = Session::Create(*model_, SessionOptions{});
    ASSERT_TRUE(s.ok()) << s.status().message();
    session_ = std::move(*s);
    for (int64_t id : golden_->input_ids()) prompt_.push_back(static_cast<int32_t>(id));
    ASSERT_FALSE(prompt_.empty());
  }
  std::unique_ptr<GoldenCase> golden_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<Session> session_;
  std::vector<int32_t> prompt_;
};

TEST_P(DecoderGolden, PromptLogitsMatchTransformersAtEveryPosition) {
  auto logits = session_->EvaluateLogits(prompt_);
  ASSERT_TRUE(logits.ok()) << logits.status().message();
  EXPECT_TRUE(testing::TensorNear(golden_->name + " logits", *logits, golden_->Get("logits"), golden_->tolerance()));
}

TEST_P(DecoderGolden, GreedyDecodingMatchesTransformersStepByStep) {
  const std::vector<int64_t> want = golden_->greedy_ids();
  const Tensor want_logits = golden_->Get("greedy_logits");
  ASSERT_EQ(want.size(), 16u);
  ASSERT_EQ(want_logits.dim(0), 16);
  const int64_t vocab = model_->config.text.vocab_size;
  ASSERT_TRUE(session_->Prefill(prompt_.data(), prompt_.size(), nullptr).ok());
  std::vector<int64_t> got;
  for (int step = 0; step < 16; ++step) {
    EXPECT_TRUE(testing::FloatsNear(golden_->name + " greedy step " + std::to_string(step) + " logits",
                                    session_->logits(), want_logits.data_as<float>() + step * vocab, vocab,
                                    golden_->tolerance()));
    const int32_t id = Argmax(session_->logits(), vocab);
    got.push_back(id);
    if (step + 1 < 16) {
      ASSERT_TRUE(session_->DecodeStep(id).ok());
    }
  }
  EXPECT_EQ(got, want);
}

TEST_P(DecoderGolden, GenerateProducesTheGreedyIds) {
  GenerateOptions options;
  options.max_tokens = 16;
  options.stop_at_eos = false;  // the goldens decode with eos_token_id=None
  auto result = session_->Generate(prompt_, nullptr, options);
  ASSERT_TRUE(result.ok()) << result.status().message();
  const std::vector<int64_t> want = golden_->greedy_ids();
  EXPECT_EQ(std::vector<int64_t>(result->ids.begin(), result->ids.end()), want);
}

TEST_P(DecoderGolden, PrefillInChunksStillMatchesTransformers) {
  // Chunks of 5 rows: attention spans chunks through the cache, and the
  // longrope factor set still follows the whole prompt (one forward in HF).
  SessionOptions options;
  options.max_batch = 5;
  auto chunked = Session::Create(*model_, options);
  ASSERT_TRUE(chunked.ok()) << chunked.status().message();
  auto logits = (*chunked)->EvaluateLogits(prompt_);
  ASSERT_TRUE(logits.ok()) << logits.status().message();
  EXPECT_TRUE(testing::TensorNear(golden_->name + " chunked logits", *logits, golden_->Get("logits"),
                                  golden_->tolerance()));
  GenerateOptions generate;
  generate.max_tokens = 16;
  generate.stop_at_eos = false;
  auto result = (*chunked)->Generate(prompt_, nullptr, generate);
  ASSERT_TRUE(result.ok()) << result.status().message();
  EXPECT_EQ(std::vector<int64_t>(result->ids.begin(), result->ids.end()), golden_->greedy_ids());
}

INSTANTIATE_TEST_SUITE_P(TextCases, DecoderGolden,
                         ::testing::Values("phi3_longrope_short", "phi3_longrope_long", "phi3_longrope_cross",
                                           "llama_llama3rope_tied", "llama_linear_rope"),
                         [](const auto& info) { return std::string(info.param); });

}  // namespace
}  // namespace bitlens
