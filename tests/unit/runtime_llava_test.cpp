// The session's image path against HF transformers' LLaVA goldens: image rows
// spliced at the image-token positions give the prompt logits at every
// position and the 16 greedy ids of transformers, from the golden
// pixel_values and from the image file through the whole Generate path.
#include <algorithm>
#include <filesystem>

#include <gtest/gtest.h>

#include "golden_case.h"
#include "model/model.h"
#include "runtime/sampler.h"
#include "runtime/session.h"
#include "vision/image.h"

namespace bitlens {
namespace {

class SessionLlavaGolden : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    auto c = testing::LoadGoldenCase(GetParam());
    if (!c.ok() && c.status().code() == StatusCode::kNotFound) {
      GTEST_SKIP() << "golden case tests/golden/" << GetParam() << " is not there yet (make conformance writes it)";
    }
    ASSERT_TRUE(c.ok()) << c.status().message();
    golden_ = std::make_unique<testing::GoldenCase>(std::move(*c));
    for (int64_t id : golden_->input_ids()) prompt_.push_back(static_cast<int32_t>(id));
  }

  void Load(const std::string& dir) {
    auto m = LoadModel(dir);
    ASSERT_TRUE(m.ok()) << m.status().message();
    model_ = std::move(*m);
    auto s = Session::Create(*model_, SessionOptions{});
    ASSERT_TRUE(s.ok()) << s.status().message();
    session_ = std::move(*s);
  }

  // Image rows from the golden pixel_values [1, 3, H, W].
  std::vector<float> GoldenImageRows() {
    const Tensor px = golden_->Get("pixel_values");
    auto chw = px.Reshape({px.dim(1), px.dim(2), px.dim(3)});
    EXPECT_TRUE(chw.ok());
    std::vector<float> rows(model_->config.image_seq_length() * model_->config.text.hidden_size);
    const Status s = model_->vision->Encode(*chw, rows.data());
    EXPECT_TRUE(s.ok()) << s.message();
    return rows;
  }

  std::unique_ptr<testing::GoldenCase> golden_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<Session> session_;
  std::vector<int32_t> prompt_;
};

TEST_P(SessionLlavaGolden, PromptLogitsAndGreedyIdsMatchTransformers) {
  for (const std::string& dir : {golden_->model_dir(), golden_->model_v4_dir()}) {
    SCOPED_TRACE(dir);
    Load(dir);
    ASSERT_NE(session_, nullptr);
    const std::vector<float> rows = GoldenImageRows();
    auto logits = session_->EvaluateLogits(prompt_, rows.data());
    ASSERT_TRUE(logits.ok()) << logits.status().message();
    EXPECT_TRUE(testing::TensorNear(golden_->name + " logits", *logits, golden_->Get("logits"), golden_->tolerance()));

    const int64_t vocab = model_->config.text.vocab_size;
    ASSERT_TRUE(session_->Prefill(prompt_.data(), prompt_.size(), rows.data()).ok());
    std::vector<int64_t> got;
    for (int step = 0; step < 16; ++step) {
      got.push_back(Argmax(session_->logits(), vocab));
      if (step + 1 < 16) {
        ASSERT_TRUE(session_->DecodeStep(static_cast<int32_t>(got.back())).ok());
      }
    }
    EXPECT_EQ(got, golden_->greedy_ids());
  }
}

TEST_P(SessionLlavaGolden, ImageRowsSplicedAcrossPrefillChunksMatchTransformers) {
  Load(golden_->model_dir());
  ASSERT_NE(model_, nullptr);
  SessionOptions options;
  options.max_batch = 7;  // the image-token run spans several chunks
  auto chunked = Session::Create(*model_, options);
  ASSERT_TRUE(chunked.ok()) << chunked.status().message();
  const std::vector<float> rows = GoldenImageRows();
  auto logits = (*chunked)->EvaluateLogits(prompt_, rows.data());
  ASSERT_TRUE(logits.ok()) << logits.status().message();
  EXPECT_TRUE(testing::TensorNear(golden_->name + " chunked logits", *logits, golden_->Get("logits"),
                                  golden_->tolerance()));
}

TEST_P(SessionLlavaGolden, GenerateFromTheImageFileGivesTheGreedyIds) {
  BL_REQUIRE_TEST_DATA(image_path, "images/astronaut.png");
  Load(golden_->model_dir());
  ASSERT_NE(session_, nullptr);
  auto image = DecodeImageFile(image_path);
  ASSERT_TRUE(image.ok()) << image.status().message();
  GenerateOptions options;
  options.max_tokens = 16;
  options.stop_at_eos = false;
  auto result = session_->Generate(prompt_, &*image, options);
  ASSERT_TRUE(result.ok()) << result.status().message();
  EXPECT_EQ(std::vector<int64_t>(result->ids.begin(), result->ids.end()), golden_->greedy_ids());
  EXPECT_EQ(result->timings.image_tokens, golden_->n_image_tokens());
}

INSTANTIATE_TEST_SUITE_P(LlavaCases, SessionLlavaGolden, ::testing::Values("llava_clip_llama", "llava_siglip_phi3"),
                         [](const auto& info) { return std::string(info.param); });

// A synthesized tiny LLaVA with its tokenizer: the prompt gets the chat
// template and one placeholder expanded to image_seq_length ids; the CLI runs
// it end to end and reports the vision stage.
TEST(SessionLlavaPrompt, ImagePlaceholderIsExpandedInsideTheChatTemplate) {
  const std::string dir = testing::ScratchDir() + "-work/llava";
  std::filesystem::remove_all(dir);
  auto synth = testing::RunCli("synth --family llava --preset tiny -o " + dir);
  ASSERT_EQ(synth.exit_code, 0) << synth.err;
  auto model = LoadModel(dir);
  ASSERT_TRUE(model.ok()) << model.status().message();
  auto session = Session::Create(**model, SessionOptions{});
  ASSERT_TRUE(session.ok()) << session.status().message();
  const int32_t image_id = static_cast<int32_t>((*model)->config.image_token_index);
  const int64_t n_image = (*model)->config.image_seq_length();

  auto ids = (*session)->TokenizePrompt("Describe the image.", true, ChatMode::kAuto);
  ASSERT_TRUE(ids.ok()) << ids.status().message();
  const auto first = std::find(ids->begin(), ids->end(), image_id);
  ASSERT_NE(first, ids->end());
  EXPECT_EQ(std::count(ids->begin(), ids->end(), image_id), n_image);
  EXPECT_TRUE(std::all_of(first, first + n_image, [&](int32_t id) { return id == image_id; }));
  // The ids spell the family's user turn, its placeholder repeated n_image times.
  EXPECT_NE((*model)->chat_family, ChatFamily::kNone);
  std::string want = FormatUserTurn((*model)->chat_family, "Describe the image.", true, "<image>");
  std::string images;
  for (int64_t i = 0; i < n_image; ++i) images += "<image>";
  want.replace(want.find("<image>"), 7, images);
  const std::string text = (*model)->tokenizer->Decode(*ids);
  ASSERT_GE(text.size(), want.size()) << text;
  EXPECT_EQ(text.substr(text.size() - want.size()), want);

  auto raw = (*session)->TokenizePrompt("Describe the image.", false, ChatMode::kAuto);
  ASSERT_TRUE(raw.ok());
  EXPECT_EQ(std::count(raw->begin(), raw->end(), image_id), 0);
  auto two = (*session)->TokenizePrompt("<image> and <image>", true, ChatMode::kAuto);
  EXPECT_EQ(two.status().code(), StatusCode::kInvalidArgument);

  BL_REQUIRE_TEST_DATA(image, "images/astronaut.png");
  auto run = testing::RunCli("run --model " + dir + " --image " + image + " --prompt 'What is this?' --max-tokens 4");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_NE(run.err.find("vision"), std::string::npos) << run.err;
}

}  // namespace
}  // namespace bitlens
