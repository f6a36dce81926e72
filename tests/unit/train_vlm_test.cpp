// The trainable VLM (train/vlm) on a tiny LLaVA config: its logits equal the
// inference path's (model/ + runtime/Session) on the same saved weights, its
// end-to-end gradient matches finite differences for every kind of tensor,
// checkpoints round-trip, and a few optimizer steps lower the loss.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "base/f16.h"
#include "base/thread_pool.h"
#include "formats/safetensors.h"
#include "formats/hf_config.h"
#include "model/model.h"
#include "model/synth.h"
#include "runtime/session.h"
#include "test_paths.h"
#include "quant/formats.h"
#include "train/fake_quant.h"
#include "train/ops.h"
#include "train/optim.h"
#include "train/vlm.h"
#include "train_grad_check.h"

namespace bitlens {
namespace {

using train::Param;
using train::TrainableVlm;
using train::VlmExample;

constexpr int32_t kImageToken = 60;

// Vision: 16 px images in 8 px patches (4 image tokens + CLS), hidden 16,
// 3 layers of which vision_feature_layer -2 uses 2. Text: hidden 32, 2 layers,
// 4 query heads over 2 KV heads, vocab 64.
ModelConfig TinyConfig(bool tied = false) {
  ModelConfig c;
  c.model_type = "llava";
  c.architecture = "LlavaForConditionalGeneration";
  TextConfig& t = c.text;
  t.model_type = "llama";
  t.vocab_size = 64;
  t.hidden_size = 32;
  t.intermediate_size = 48;
  t.num_hidden_layers = 2;
  t.num_attention_heads = 4;
  t.num_key_value_heads = 2;
  t.head_dim = 8;
  t.max_position_embeddings = 64;
  t.rms_norm_eps = 1e-5;
  t.tie_word_embeddings = tied;
  t.bos_token_id = 1;
  t.eos_token_ids = {2};
  t.pad_token_id = 3;
  VisionConfig v = VisionConfigDefaults("clip_vision_model");
  v.hidden_size = 16;
  v.intermediate_size = 40;
  v.num_hidden_layers = 3;
  v.num_attention_heads = 2;
  v.image_size = 16;
  v.patch_size = 8;
  c.vision = v;
  c.image_token_index = kImageToken;
  c.vision_feature_layer = -2;
  c.vision_feature_select_strategy = "default";
  return c;
}

// Weights large enough that every tensor visibly moves the logits (the N(0, 0.02)
// init leaves them nearly uniform) yet smooth enough for finite differences
// at h = 1e-2: matrices N(0, 0.15), embeddings N(0, 1),
// norm scales 1 + N(0, 0.2), biases N(0, 0.2).
void Randomize(train::ParamSet& params, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> n01(0.0f, 1.0f);
  for (size_t i = 0; i < params.size(); ++i) {
    Param& p = params[i];
    const std::string& name = p.name;
    const bool norm = name.find("norm") != std::string::npos || name.find("layrnorm") != std::string::npos;
    const bool bias = name.size() > 5 && name.compare(name.size() - 5, 5, ".bias") == 0;
    const bool embedding = name.find("embed") != std::string::npos && name.find("patch") == std::string::npos;
    for (float& x : p.value) {
      if (norm && !bias) x = 1.0f + 0.2f * n01(rng);
      else if (bias) x = 0.2f * n01(rng);
      else if (embedding) x = n01(rng);
      else x = 0.15f * n01(rng);
    }
  }
}

VlmExample ImageExample(uint64_t seed) {
  VlmExample ex;
  ex.input_ids = {1, 10, kImageToken, kImageToken, kImageToken, kImageToken, 20, 31, 42, 53, 2};
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> n01(0.0f, 1.0f);
  ex.pixel_values.resize(3 * 16 * 16);
  for (float& x : ex.pixel_values) x = n01(rng);
  std::uniform_int_distribution<int32_t> tok(0, 63);
  ex.targets.resize(ex.input_ids.size());
  for (size_t t = 0; t < ex.targets.size(); ++t) ex.targets[t] = (t % 4 == 3) ? -100 : tok(rng);
  return ex;
}

std::unique_ptr<TrainableVlm> MakeModel(const ModelConfig& config, uint64_t seed) {
  auto m = TrainableVlm::Create(config, seed);
  EXPECT_TRUE(m.ok()) << m.status().message();
  if (!m.ok()) return nullptr;
  Randomize((*m)->params(), seed + 1);
  return std::move(m).value();
}

int64_t CountedTargets(const VlmExample& ex) {
  return std::count_if(ex.targets.begin(), ex.targets.end(), [](int32_t t) { return t >= 0; });
}

// Mean cross-entropy of the model on ex; with `backward`, the gradient of that
// loss is accumulated into the params.
double Loss(TrainableVlm& model, const VlmExample& ex, bool backward) {
  const float* logits = model.Forward(ex);
  EXPECT_NE(logits, nullptr);
  if (logits == nullptr) return NAN;
  const int64_t T = static_cast<int64_t>(ex.input_ids.size()), V = model.config().text.vocab_size;
  const float scale = 1.0f / static_cast<float>(CountedTargets(ex));
  std::vector<float> dlogits;
  if (backward) dlogits.assign(static_cast<size_t>(T * V), 0.0f);
  const double sum =
      train::CrossEntropyForwardBackward(logits, ex.targets.data(), T, V, scale, backward ? dlogits.data() : nullptr);
  if (backward) model.Backward(dlogits.data());
  return sum * scale;
}

struct LogitDiff {
  double max_abs = 0, max_ref = 0;
  int64_t index = -1;
};

LogitDiff CompareLogits(const float* got, const std::vector<float>& want) {
  LogitDiff d;
  for (size_t i = 0; i < want.size(); ++i) {
    d.max_ref = std::max(d.max_ref, std::fabs(static_cast<double>(want[i])));
    const double e = std::fabs(static_cast<double>(got[i]) - want[i]);
    if (e > d.max_abs || std::isnan(e)) {
      d.max_abs = std::isnan(e) ? INFINITY : e;
      d.index = static_cast<int64_t>(i);
    }
  }
  return d;
}

// THE check that the trainer trains the model the runtime runs: saved, then
// loaded by LoadModel and run through Session (the path of `bitlens run`),
// the logits at every position agree to 1e-4 of the largest logit, with and
// without an image, untied and tied heads.
// The "full" variant keeps the class token and takes the last layer's output
// (vision_feature_layer -1): 5 image tokens.
struct RuntimeCase {
  bool tied;
  bool full;
};

class TrainVlmRuntime : public ::testing::TestWithParam<RuntimeCase> {};

TEST_P(TrainVlmRuntime, LogitsEqualTheInferencePath) {
  const bool tied = GetParam().tied;
  ModelConfig config = TinyConfig(tied);
  if (GetParam().full) {
    config.vision_feature_select_strategy = "full";
    config.vision_feature_layer = -1;
  }
  auto model = MakeModel(config, 7);
  ASSERT_NE(model, nullptr);
  const std::string dir = testing::ScratchDir() + "/vlm";
  const Status saved = train::SaveVlmCheckpoint(*model, DType::kF32, dir);
  ASSERT_TRUE(saved.ok()) << saved.message();

  auto loaded = LoadModel(dir);
  ASSERT_TRUE(loaded.ok()) << loaded.status().message();
  ASSERT_NE((*loaded)->vision, nullptr);
  auto session = Session::Create(**loaded, SessionOptions{});
  ASSERT_TRUE(session.ok()) << session.status().message();

  VlmExample with_image = ImageExample(11);
  if (GetParam().full) with_image.input_ids.insert(with_image.input_ids.begin() + 2, kImageToken);
  ASSERT_EQ((*loaded)->vision->num_image_tokens(), GetParam().full ? 5 : 4);
  VlmExample text_only = ImageExample(11);
  text_only.pixel_values.clear();
  text_only.input_ids = {1, 5, 9, 14, 27, 33, 48, 2};
  for (const VlmExample* ex : {&with_image, &text_only}) {
    std::vector<float> image_rows;
    const float* image = nullptr;
    if (!ex->pixel_values.empty()) {
      image_rows.resize(static_cast<size_t>((*loaded)->vision->num_image_tokens() * 32));
      const Tensor pixels = Tensor::FromF32({1, 3, 16, 16}, ex->pixel_values);
      const Status enc = (*loaded)->vision->Encode(pixels, image_rows.data());
      ASSERT_TRUE(enc.ok()) << enc.message();
      image = image_rows.data();
    }
    auto want = (*session)->EvaluateLogits(ex->input_ids, image);
    ASSERT_TRUE(want.ok()) << want.status().message();
    const float* got = model->Forward(*ex);
    ASSERT_NE(got, nullptr);
    ASSERT_EQ(want->size(), ex->input_ids.size() * 64);
    const LogitDiff d = CompareLogits(got, *want);
    EXPECT_GT(d.max_ref, 1.0) << "logits too small to compare meaningfully";
    EXPECT_LE(d.max_abs, 1e-4 * std::max(1.0, d.max_ref))
        << (image ? "image" : "text-only") << " example, tied=" << tied << ": logits differ most at position "
        << d.index / 64 << " token " << d.index % 64 << ": trainable " << got[d.index] << ", runtime "
        << (*want)[static_cast<size_t>(d.index)] << " (largest |logit| " << d.max_ref << ")";
  }
}

INSTANTIATE_TEST_SUITE_P(Heads, TrainVlmRuntime,
                         ::testing::Values(RuntimeCase{false, false}, RuntimeCase{true, false}, RuntimeCase{false, true}),
                         [](const ::testing::TestParamInfo<RuntimeCase>& info) {
                           return std::string(info.param.tied ? "Tied" : "Untied") + (info.param.full ? "Full" : "Default");
                         });

// A checkpoint bitlens synth wrote (tiny LLaVA, v4 and v5 tensor names) loads
// into the trainable model and runs with the runtime's logits; Create draws
// the weights of `bitlens synth --seed` (v4, its default layout).
TEST(TrainVlm, LoadsSynthesizedCheckpointsOfEveryLayout) {
  for (HfLayout layout : {HfLayout::kV4, HfLayout::kV5}) {
    SynthOptions options;
    options.family = SynthFamily::kLlava;
    options.preset = "tiny";
    options.seed = 5;
    options.layout = layout;
    options.output_dir = testing::ScratchDir() + "/synth";
    auto synth = Synthesize(options);
    ASSERT_TRUE(synth.ok()) << synth.status().message();
    auto loaded = TrainableVlm::Load(options.output_dir);
    ASSERT_TRUE(loaded.ok()) << loaded.status().message();
    // synth keys its random streams by the tensor names it writes, so only
    // the v4 file (synth's default) holds Create's weights.
    if (layout == HfLayout::kV4) {
      auto created = TrainableVlm::Create((*loaded)->config(), 5);
      ASSERT_TRUE(created.ok()) << created.status().message();
      ASSERT_EQ((*loaded)->params().size(), (*created)->params().size());
      for (size_t i = 0; i < (*loaded)->params().size(); ++i) {
        ASSERT_EQ((*loaded)->params()[i].value, (*created)->params()[i].value) << (*loaded)->params()[i].name;
      }
    }

    auto runtime = LoadModel(options.output_dir);
    ASSERT_TRUE(runtime.ok()) << runtime.status().message();
    auto session = Session::Create(**runtime, SessionOptions{});
    ASSERT_TRUE(session.ok()) << session.status().message();
    const ModelConfig& c = (*loaded)->config();
    VlmExample ex;
    ex.input_ids = {1, 300, 17};
    for (int64_t i = 0; i < c.image_seq_length(); ++i) ex.input_ids.push_back(static_cast<int32_t>(c.image_token_index));
    for (int32_t id : {44, 401, 9, 2}) ex.input_ids.push_back(id);
    ex.pixel_values = testing::RandomVector(static_cast<size_t>(3 * c.vision->image_size * c.vision->image_size), 4);
    std::vector<float> rows(static_cast<size_t>(c.image_seq_length() * c.text.hidden_size));
    const Tensor pixels = Tensor::FromF32({3, c.vision->image_size, c.vision->image_size}, ex.pixel_values);
    ASSERT_TRUE((*runtime)->vision->Encode(pixels, rows.data()).ok());
    auto want = (*session)->EvaluateLogits(ex.input_ids, rows.data());
    ASSERT_TRUE(want.ok()) << want.status().message();
    const float* got = (*loaded)->Forward(ex);
    ASSERT_NE(got, nullptr);
    const LogitDiff d = CompareLogits(got, *want);
    EXPECT_LE(d.max_abs, 1e-4 * std::max(1.0, d.max_ref))
        << HfLayoutName(layout) << ": logits differ most at " << d.index << ": trainable " << got[d.index] << ", runtime "
        << (*want)[static_cast<size_t>(d.index)];
  }
}

// End-to-end gradient of the mean cross-entropy against central differences,
// a stride of entries from every tensor. Float forward passes: the loss (~4)
// carries ~2e-6 of rounding (measured: the finite difference of a key bias,
// exactly 0, comes out at up to 1e-4 with h = 1e-2 and 3e-4 with h = 3e-3), so
// h = 1e-2 and atol 2e-4; rtol 3e-2 covers the O(h²) truncation (measured up to
// 2% on the vision layers). A wrong factor or transpose is an O(1) error.
// Tensors the loss cannot reach (vision layers past vision_feature_layer,
// post_layernorm) must have exactly zero gradient; every other tensor must
// have a gradient well above atol so the check cannot pass vacuously.
class TrainVlmGradient : public ::testing::TestWithParam<bool> {};

TEST_P(TrainVlmGradient, MatchesFiniteDifferencesForEveryTensor) {
  const bool tied = GetParam();
  auto model = MakeModel(TinyConfig(tied), 21);
  ASSERT_NE(model, nullptr);
  const VlmExample ex = ImageExample(5);
  train::ParamSet& params = model->params();
  params.ZeroGrad();
  Loss(*model, ex, /*backward=*/true);
  const double h = 1e-2, rtol = 3e-2, atol = 2e-4;
  for (size_t i = 0; i < params.size(); ++i) {
    Param& p = params[i];
    const std::vector<float> analytic = p.grad;
    double max_grad = 0;
    for (float g : analytic) max_grad = std::max(max_grad, static_cast<double>(std::fabs(g)));
    const bool unreachable = p.name.find("encoder.layers.2.") != std::string::npos ||
                             p.name.find("post_layernorm") != std::string::npos;
    if (unreachable) {
      EXPECT_EQ(max_grad, 0.0) << p.name << " is past the selected vision layer but has a gradient";
      continue;
    }
    // A key bias shifts every score of a query by the same amount, which the
    // softmax cancels: its gradient is zero in exact arithmetic.
    const bool key_bias = p.name.find("k_proj.bias") != std::string::npos;
    if (key_bias) {
      EXPECT_LT(max_grad, 1e-6) << p.name << ": the softmax cancels a key bias, yet it has a gradient";
    } else {
      EXPECT_GT(max_grad, 10 * atol) << p.name << ": gradient too small for the check to mean anything";
    }
    testing::ExpectGradientMatches(p.name, p.value, analytic, [&] { return Loss(*model, ex, false); }, h, rtol, atol,
                                   /*max_checks=*/16);
  }
}

INSTANTIATE_TEST_SUITE_P(Heads, TrainVlmGradient, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& info) { return info.param ? "Tied" : "Untied"; });

// Hidden-state matching (distillation): the gradient of Σ probe · DecoderHidden(0)
// alone (no logits) against finite differences, with the same bounds as the
// end-to-end check; layer 1, the final norm and the head must get none. And the
// last hidden state through the final norm and head gives the logits.
TEST(TrainVlm, HiddenStateGradientMatchesFiniteDifferences) {
  auto model = MakeModel(TinyConfig(), 23);
  ASSERT_NE(model, nullptr);
  const VlmExample ex = ImageExample(6);
  const int64_t T = static_cast<int64_t>(ex.input_ids.size()), h = 32;
  const std::vector<float> probe = testing::RandomVector(static_cast<size_t>(T * h), 99);
  auto hidden_loss = [&] {
    EXPECT_NE(model->Forward(ex), nullptr);
    const float* hid = model->DecoderHidden(0);
    double sum = 0;
    for (int64_t i = 0; i < T * h; ++i) sum += static_cast<double>(probe[static_cast<size_t>(i)]) * hid[i];
    return sum;
  };
  train::ParamSet& params = model->params();
  params.ZeroGrad();
  ASSERT_NE(model->Forward(ex), nullptr);
  model->Backward(nullptr, {probe.data()});
  for (size_t i = 0; i < params.size(); ++i) {
    Param& p = params[i];
    double max_grad = 0;
    for (float g : p.grad) max_grad = std::max(max_grad, static_cast<double>(std::fabs(g)));
    const bool after = p.name.find("language_model.model.layers.1.") != std::string::npos ||
                       p.name.find("lm_head") != std::string::npos || p.name == "language_model.model.norm.weight";
    if (after) {
      EXPECT_EQ(max_grad, 0.0) << p.name << " lies after layer 0 but has a gradient";
      continue;
    }
    if (p.name.find("layers.0.") == std::string::npos && p.name.find("embed_tokens") == std::string::npos &&
        p.name.find("linear_1") == std::string::npos) {
      continue;  // a sample: decoder layer 0, embeddings, the projector, vision layer 0
    }
    if (p.name.find("k_proj.bias") != std::string::npos) continue;  // zero by symmetry (see above)
    EXPECT_GT(max_grad, 2e-3) << p.name << ": gradient too small for the check to mean anything";
    const std::vector<float> analytic = p.grad;
    testing::ExpectGradientMatches(p.name, p.value, analytic, hidden_loss, 1e-2, 3e-2, 2e-4, 16);
  }

  // final norm + head of the last hidden state = the logits.
  const float* logits = model->Forward(ex);
  ASSERT_NE(logits, nullptr);
  std::vector<float> xf(static_cast<size_t>(T * h)), rstd(static_cast<size_t>(T)), want(static_cast<size_t>(T * 64));
  train::RmsNormForward(model->DecoderHidden(1), params.Find("language_model.model.norm.weight")->value.data(), T, h,
                        1e-5f, xf.data(), rstd.data());
  train::LinearForward(xf.data(), params.Find("language_model.lm_head.weight")->value.data(), nullptr, T, h, 64,
                       want.data());
  EXPECT_EQ(std::vector<float>(logits, logits + T * 64), want);
  EXPECT_EQ(model->DecoderHidden(2), nullptr);
}

TEST(TrainVlm, SaveLoadRoundTripsParams) {
  auto model = MakeModel(TinyConfig(), 3);
  ASSERT_NE(model, nullptr);
  for (DType dtype : {DType::kF32, DType::kBF16}) {
    const std::string dir = testing::ScratchDir() + "/ckpt";
    const Status saved = train::SaveVlmCheckpoint(*model, dtype, dir);
    ASSERT_TRUE(saved.ok()) << saved.message();
    auto loaded = TrainableVlm::Load(dir);
    ASSERT_TRUE(loaded.ok()) << loaded.status().message();
    const train::ParamSet& a = model->params();
    const train::ParamSet& b = (*loaded)->params();
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) {
      ASSERT_EQ(a[i].name, b[i].name);
      ASSERT_EQ(a[i].shape, b[i].shape);
      for (size_t j = 0; j < a[i].value.size(); ++j) {
        const float want = dtype == DType::kF32 ? a[i].value[j] : Bf16ToF32(F32ToBf16(a[i].value[j]));
        ASSERT_EQ(b[i].value[j], want) << DTypeName(dtype) << " " << a[i].name << "[" << j << "]";
      }
    }
  }
}

// Training runs are reproducible whatever the thread count: logits and every
// gradient are bit-identical with 1 and 2 threads.
TEST(TrainVlm, ForwardAndBackwardAreBitIdenticalForAnyThreadCount) {
  const VlmExample ex = ImageExample(4);
  std::vector<std::vector<float>> grads[2];
  double losses[2];
  for (int run = 0; run < 2; ++run) {
    SetNumThreads(run == 0 ? 1 : 2);
    auto model = MakeModel(TinyConfig(), 31);
    ASSERT_NE(model, nullptr);
    model->params().ZeroGrad();
    losses[run] = Loss(*model, ex, /*backward=*/true);
    for (size_t i = 0; i < model->params().size(); ++i) grads[run].push_back(model->params()[i].grad);
  }
  SetNumThreads(0);
  EXPECT_EQ(losses[0], losses[1]);
  ASSERT_EQ(grads[0].size(), grads[1].size());
  for (size_t i = 0; i < grads[0].size(); ++i) EXPECT_EQ(grads[0][i], grads[1][i]) << "parameter " << i;
}

// A checkpoint that does not fit its config.json fails to load with a
// message naming the tensor: missing, wrong shape, or quantized.
TEST(TrainVlm, LoadNamesTheBadTensor) {
  auto model = MakeModel(TinyConfig(), 3);
  ASSERT_NE(model, nullptr);
  const std::string dir = testing::ScratchDir() + "/bad";
  ASSERT_TRUE(train::SaveVlmCheckpoint(*model, DType::kF32, dir).ok());
  const train::ParamSet& params = model->params();
  const std::string victim = "language_model.model.layers.1.mlp.down_proj.weight";
  struct Case {
    const char* what;
    StatusCode code;
  };
  for (const Case c : {Case{"missing", StatusCode::kNotFound}, Case{"shape", StatusCode::kInvalidArgument},
                       Case{"dtype", StatusCode::kInvalidArgument}}) {
    std::vector<std::pair<std::string, Tensor>> tensors;
    std::vector<uint8_t> bytes(48 * 32, 1);
    for (size_t i = 0; i < params.size(); ++i) {
      const Param& p = params[i];
      if (p.name != victim) {
        tensors.emplace_back(p.name, Tensor::FromF32(p.shape, p.value));
      } else if (std::string(c.what) == "shape") {
        tensors.emplace_back(p.name, Tensor::FromF32({p.shape[1], p.shape[0]}, p.value));
      } else if (std::string(c.what) == "dtype") {
        tensors.emplace_back(p.name, Tensor(DType::kU8, p.shape, bytes.data()));
      }
    }
    ASSERT_TRUE(WriteSafetensors(dir + "/model.safetensors", tensors).ok());
    auto loaded = TrainableVlm::Load(dir);
    ASSERT_FALSE(loaded.ok()) << c.what;
    EXPECT_EQ(loaded.status().code(), c.code) << c.what << ": " << loaded.status().message();
    EXPECT_NE(loaded.status().message().find(victim), std::string::npos) << loaded.status().message();
  }
}

TEST(TrainVlm, CreateIsDeterministicInTheSeed) {
  auto a = TrainableVlm::Create(TinyConfig(), 5);
  auto b = TrainableVlm::Create(TinyConfig(), 5);
  auto c = TrainableVlm::Create(TinyConfig(), 6);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  const Param* wa = (*a)->params().Find("language_model.model.layers.0.mlp.up_proj.weight");
  const Param* wb = (*b)->params().Find("language_model.model.layers.0.mlp.up_proj.weight");
  const Param* wc = (*c)->params().Find("language_model.model.layers.0.mlp.up_proj.weight");
  ASSERT_TRUE(wa && wb && wc);
  EXPECT_EQ(wa->value, wb->value);
  EXPECT_NE(wa->value, wc->value);
  // Norm scales start at 1, biases at 0, and neither decays.
  const Param* norm = (*a)->params().Find("language_model.model.norm.weight");
  const Param* bias = (*a)->params().Find("multi_modal_projector.linear_1.bias");
  ASSERT_TRUE(norm && bias);
  EXPECT_EQ(norm->value, std::vector<float>(32, 1.0f));
  EXPECT_EQ(bias->value, std::vector<float>(32, 0.0f));
  EXPECT_FALSE(norm->decay);
  EXPECT_FALSE(bias->decay);
  EXPECT_TRUE(wa->decay);
}

// Plain SGD on one example: the loss must fall well below where it started.
TEST(TrainVlm, SgdStepsLowerTheLoss) {
  auto model = MakeModel(TinyConfig(), 9);
  ASSERT_NE(model, nullptr);
  const VlmExample ex = ImageExample(2);
  train::ParamSet& params = model->params();
  double first = 0, last = 0;
  for (int step = 0; step < 10; ++step) {
    params.ZeroGrad();
    last = Loss(*model, ex, /*backward=*/true);
    if (step == 0) first = last;
    for (size_t i = 0; i < params.size(); ++i) {
      for (size_t j = 0; j < params[i].value.size(); ++j) params[i].value[j] -= 0.05f * params[i].grad[j];
    }
  }
  EXPECT_LT(last, 0.7 * first) << "loss went from " << first << " to " << last << " in 10 SGD steps";
}

// AdamW (train/optim) on one example: the loss must fall well below where it started.
TEST(TrainVlm, AdamWStepsLowerTheLoss) {
  auto model = MakeModel(TinyConfig(/*tied=*/true), 13);
  ASSERT_NE(model, nullptr);
  const VlmExample ex = ImageExample(3);
  train::ParamSet& params = model->params();
  train::AdamW adamw(params, train::AdamWConfig{});
  double first = 0, last = 0;
  for (int step = 0; step < 10; ++step) {
    params.ZeroGrad();
    last = Loss(*model, ex, /*backward=*/true);
    if (step == 0) first = last;
    adamw.Step(params, 1e-2f);
  }
  EXPECT_LT(last, 0.5 * first) << "loss went from " << first << " to " << last << " in 10 AdamW steps";
}

// QAT routing: with fake quantization on three weights (2-bit groups in the
// decoder MLP and the untied head, 8-bit rows in a vision MLP), the model's
// logits are exactly those of a copy whose weights ARE the fake-quantized
// values, and the master weights' and grids' gradients are FakeQuantBackward
// of that copy's weight gradients.
TEST(TrainVlm, FakeQuantForwardAndBackwardRouteThroughTheGrids) {
  const ModelConfig config = TinyConfig();
  auto qat = MakeModel(config, 17);
  auto copy = MakeModel(config, 17);
  ASSERT_TRUE(qat && copy);
  const VlmExample ex = ImageExample(8);
  struct Site {
    const char* name;
    const char* format;
  };
  const Site sites[] = {{"language_model.model.layers.0.mlp.up_proj.weight", "w2g32"},
                        {"language_model.lm_head.weight", "w2g32"},
                        {"vision_tower.vision_model.encoder.layers.0.mlp.fc1.weight", "w8"}};
  std::vector<train::FakeQuantGrids> grids, expected_grids;
  for (const Site& s : sites) {
    Param* w = qat->params().Find(s.name);
    ASSERT_NE(w, nullptr) << s.name;
    auto format = quant::FindFormat(s.format);
    ASSERT_TRUE(format.ok());
    auto g = train::InitGridsRtn(**format, w->value.data(), w->shape[0], w->shape[1]);
    ASSERT_TRUE(g.ok()) << g.status().message();
    grids.push_back(*g);
    expected_grids.push_back(*g);
  }
  for (size_t i = 0; i < grids.size(); ++i) {
    const Status st = qat->SetFakeQuant(sites[i].name, &grids[i]);
    ASSERT_TRUE(st.ok()) << st.message();
    Param* w = copy->params().Find(sites[i].name);
    std::vector<float> wq(w->value.size());
    train::FakeQuantForward(grids[i], w->value.data(), wq.data());
    EXPECT_NE(wq, w->value) << sites[i].name << ": fake quantization changed nothing";
    w->value = wq;
  }
  qat->params().ZeroGrad();
  copy->params().ZeroGrad();
  const double loss_qat = Loss(*qat, ex, /*backward=*/true);
  const double loss_copy = Loss(*copy, ex, /*backward=*/true);
  EXPECT_EQ(loss_qat, loss_copy);

  for (size_t i = 0; i < qat->params().size(); ++i) {
    const Param& p = qat->params()[i];
    const Param& c = copy->params()[i];
    const auto site = std::find_if(std::begin(sites), std::end(sites), [&](const Site& s) { return p.name == s.name; });
    if (site == std::end(sites)) {
      ASSERT_EQ(p.grad, c.grad) << p.name << ": gradient differs from the copy's";
      continue;
    }
    const size_t g = static_cast<size_t>(site - std::begin(sites));
    std::vector<float> want(p.value.size(), 0.0f);
    train::FakeQuantBackward(expected_grids[g], p.value.data(), c.grad.data(), want.data());
    EXPECT_EQ(p.grad, want) << p.name << ": master gradient is not the STE of the copy's";
    EXPECT_EQ(grids[g].dscale, expected_grids[g].dscale) << p.name;
    EXPECT_EQ(grids[g].doffset, expected_grids[g].doffset) << p.name;
    double dscale = 0;
    for (float x : grids[g].dscale) dscale += std::fabs(x);
    EXPECT_GT(dscale, 0.0) << p.name << ": the grids received no gradient";
  }

  // Switching it off again restores the master weights in the forward.
  auto plain = MakeModel(config, 17);
  for (const Site& s : sites) ASSERT_TRUE(qat->SetFakeQuant(s.name, nullptr).ok());
  EXPECT_EQ(Loss(*qat, ex, false), Loss(*plain, ex, false));
  // Grids of the wrong shape are refused.
  EXPECT_EQ(qat->SetFakeQuant(sites[0].name, &grids[1]).code(), StatusCode::kInvalidArgument);
}

TEST(TrainVlm, RejectsUnsupportedConfigsAndBadExamples) {
  ModelConfig siglip = TinyConfig();
  siglip.vision->model_type = "siglip_vision_model";
  auto s = TrainableVlm::Create(siglip, 0);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument);
  ModelConfig phi = TinyConfig();
  phi.text.model_type = "phi3";
  EXPECT_FALSE(TrainableVlm::Create(phi, 0).ok());

  auto model = TrainableVlm::Create(TinyConfig(), 0);
  ASSERT_TRUE(model.ok());
  VlmExample ex = ImageExample(1);
  EXPECT_TRUE((*model)->CheckExample(ex).ok());
  VlmExample three_image_tokens = ex;
  three_image_tokens.input_ids[2] = 7;
  EXPECT_FALSE((*model)->CheckExample(three_image_tokens).ok());
  EXPECT_EQ((*model)->Forward(three_image_tokens), nullptr);
  VlmExample bad_id = ex;
  bad_id.input_ids[1] = 64;
  EXPECT_FALSE((*model)->CheckExample(bad_id).ok());
  VlmExample small_image = ex;
  small_image.pixel_values.resize(3 * 8 * 8);
  EXPECT_FALSE((*model)->CheckExample(small_image).ok());

  EXPECT_EQ((*model)->SetFakeQuant("no.such.weight", nullptr).code(), StatusCode::kNotFound);
  EXPECT_EQ((*model)->SetFakeQuant("language_model.model.norm.weight", nullptr).code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace bitlens
