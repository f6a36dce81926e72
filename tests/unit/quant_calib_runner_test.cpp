// The layer-by-layer calibration walk on synthesized tiny models: its
// statistics equal those of the linear inputs recomputed by hand with the
// scalar reference kernels (and, for the projector, the tower's own full
// forward); sequential mode feeds the sink's replacement weights forward.
#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "kernels/ops.h"
#include "model/model.h"
#include "model/rope.h"
#include "model/vit.h"
#include "model/vit_weights.h"
#include "quant/calib_runner.h"
#include "runtime/session.h"
#include "test_paths.h"
#include "vision/image.h"

namespace bitlens::quant {
namespace {

// Keeps a copy of every block's statistics; optionally replaces the linear
// weights of one decoder layer with zeros (the layer becomes the identity).
class RecordingSink final : public CalibSink {
 public:
  Status OnBlock(CalibBlock& block, std::vector<kernels::WeightView>& replace) override {
    Entry e{block.component, block.layer, {}, {}, {}};
    for (const LayerStats& s : block.inputs) {
      LayerStats copy(s.k);
      BL_TRY(copy.Merge(s));
      copy.Symmetrize();
      e.stats.push_back(std::move(copy));
    }
    for (const CalibTensor& t : block.tensors) e.names.push_back(t.name), e.inputs.push_back(t.input);
    entries.push_back(std::move(e));
    if (block.component == CalibComponent::kDecoder && block.layer == zero_layer) {
      zeros.clear();
      for (const CalibTensor& t : block.tensors) zeros.emplace_back(static_cast<size_t>(t.weight.n * t.weight.k), 0.0f);
      for (size_t i = 0; i < replace.size(); ++i) {
        replace[i] = {DType::kF32, zeros[i].data(), block.tensors[i].weight.n, block.tensors[i].weight.k};
      }
    }
    return Status::Ok();
  }
  struct Entry {
    CalibComponent component;
    int64_t layer;
    std::vector<LayerStats> stats;
    std::vector<std::string> names;
    std::vector<int> inputs;
  };
  const Entry* Find(CalibComponent c, int64_t layer) const {
    for (const Entry& e : entries) {
      if (e.component == c && e.layer == layer) return &e;
    }
    return nullptr;
  }
  std::vector<Entry> entries;
  int64_t zero_layer = -1;
  std::vector<std::vector<float>> zeros;
};

// Σ_t x_tᵀ x_t in double for x [rows, k].
std::vector<double> Gram(const std::vector<float>& x, int64_t k) {
  const int64_t rows = static_cast<int64_t>(x.size()) / k;
  std::vector<double> g(static_cast<size_t>(k * k), 0.0);
  for (int64_t t = 0; t < rows; ++t) {
    for (int64_t i = 0; i < k; ++i) {
      for (int64_t j = 0; j < k; ++j) g[i * k + j] += double(x[t * k + i]) * x[t * k + j];
    }
  }
  return g;
}

// Largest |stats - reference| over the whole matrix, relative to max |reference|.
double RelMaxDiff(const LayerStats& s, const std::vector<double>& ref) {
  double worst = 0, scale = 0;
  for (double v : ref) scale = std::max(scale, std::fabs(v));
  for (int64_t i = 0; i < s.k; ++i) {
    for (int64_t j = 0; j < s.k; ++j) worst = std::max(worst, std::fabs(s.Xtx(i, j) - ref[i * s.k + j]));
  }
  return scale > 0 ? worst / scale : worst;
}

// One Llama decoder layer by hand with the reference kernels, over x [n, h]
// in place; appends the four linear inputs to `in`.
void RefDecoderLayer(const Model& m, const DecoderLayerWeights& L, float* x, int64_t n,
                     std::array<std::vector<float>, 4>& in) {
  const TextConfig& c = m.config.text;
  const int64_t h = c.hidden_size, hd = c.head_dim, heads = c.num_attention_heads, kvh = c.num_key_value_heads;
  const int64_t qd = heads * hd, kvd = kvh * hd, inter = c.intermediate_size;
  auto rope = RopeTable::Build(c, n);
  ASSERT_TRUE(rope.ok());
  std::vector<float> xn(n * h), q(n * qd), k(n * kvd), v(n * kvd), attn(n * qd), o(n * h), g(n * inter), u(n * inter);
  const float eps = static_cast<float>(c.rms_norm_eps);
  kernels::RmsNormRef(x, L.input_norm.data, n, h, eps, xn.data());
  in[0].insert(in[0].end(), xn.begin(), xn.end());
  kernels::MatMulRef(xn.data(), n, L.q, nullptr, q.data());
  kernels::MatMulRef(xn.data(), n, L.k, nullptr, k.data());
  kernels::MatMulRef(xn.data(), n, L.v, nullptr, v.data());
  for (int64_t t = 0; t < n; ++t) {
    kernels::ApplyRopeRef(q.data() + t * qd, heads, hd, rope->rotary_dim(), rope->cos(t, false), rope->sin(t, false));
    kernels::ApplyRopeRef(k.data() + t * kvd, kvh, hd, rope->rotary_dim(), rope->cos(t, false), rope->sin(t, false));
  }
  kernels::AttentionRef(q.data(), n, heads, k.data(), v.data(), n, kvh, hd, 0, true,
                        1.0f / std::sqrt(static_cast<float>(hd)), attn.data());
  in[1].insert(in[1].end(), attn.begin(), attn.end());
  kernels::MatMulRef(attn.data(), n, L.o, nullptr, o.data());
  for (int64_t i = 0; i < n * h; ++i) x[i] += o[i];
  kernels::RmsNormRef(x, L.post_attn_norm.data, n, h, eps, xn.data());
  in[2].insert(in[2].end(), xn.begin(), xn.end());
  kernels::MatMulRef(xn.data(), n, L.gate, nullptr, g.data());
  kernels::MatMulRef(xn.data(), n, L.up, nullptr, u.data());
  kernels::GatedActivateRef(kernels::Activation::kSilu, g.data(), u.data(), n * inter);
  in[3].insert(in[3].end(), g.begin(), g.end());
  kernels::MatMulRef(g.data(), n, L.down, nullptr, o.data());
  for (int64_t i = 0; i < n * h; ++i) x[i] += o[i];
}

std::string Synth(const std::string& args) {
  const std::string dir = testing::ScratchDir() + "-work/model";
  std::filesystem::remove_all(dir);
  auto r = testing::RunCli("synth " + args + " -o " + dir);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return dir;
}

constexpr double kTol = 2e-5;  // f32 sums in another order, relative to the largest entry

TEST(QuantCalibRunner, LayerByLayerStatsEqualTheInputsRecomputedByHand) {
  BL_REQUIRE_TEST_DATA(image_path, "images/astronaut.png");
  const std::string dir = Synth("--family llava --preset tiny");
  auto model = LoadModel(dir);
  ASSERT_TRUE(model.ok()) << model.status().message();
  const Model& m = **model;
  std::vector<CalibSample> samples(3);
  samples[0].prompt = "Describe the image.", samples[0].image = image_path, samples[0].answer = "An astronaut.";
  samples[1].prompt = "What is the capital of France?", samples[1].answer = "Paris, on the Seine.";
  samples[2].prompt = "Count: one two three four five six seven eight nine ten", samples[2].image = image_path;
  CalibOptions options;
  options.sequential = false;
  options.max_tokens_per_sample = 30;  // cuts the third sample inside its answer-less prompt
  RecordingSink sink;
  auto sum = RunCalibration(m, samples, options, sink);
  ASSERT_TRUE(sum.ok()) << sum.status().message();
  EXPECT_EQ(sum->samples, 3);
  EXPECT_EQ(sum->images, 2);
  // 1 tower layer (vision_feature_layer -2 of 2), the projector, 2 decoder layers.
  EXPECT_EQ(sum->blocks, 4);

  // Sequences as the Session builds them, the answer appended, capped.
  std::vector<std::string> images;
  auto seqs = BuildCalibSequences(m, samples, options, &images);
  ASSERT_TRUE(seqs.ok()) << seqs.status().message();
  auto session = Session::Create(m, SessionOptions{});
  ASSERT_TRUE(session.ok());
  auto ids0 = (*session)->TokenizePrompt(samples[0].prompt, true, ChatMode::kOn);
  ASSERT_TRUE(ids0.ok());
  const std::vector<int32_t> answer0 = m.tokenizer->Encode(*samples[0].answer, false);
  ids0->insert(ids0->end(), answer0.begin(), answer0.end());
  ids0->resize(std::min<size_t>(ids0->size(), 30));
  EXPECT_EQ((*seqs)[0].ids, *ids0);
  EXPECT_EQ((*seqs)[2].ids.size(), 30u);
  EXPECT_EQ(images.size(), 2u);

  // Image rows from the vision encoder's full forward; features from the tower's.
  auto image = DecodeImageFile(image_path);
  ASSERT_TRUE(image.ok());
  auto pixels = PreprocessImage(*image, *m.image_processor);
  ASSERT_TRUE(pixels.ok());
  const int64_t h = m.config.text.hidden_size, n_img = m.config.image_seq_length();
  std::vector<float> image_rows(n_img * h);
  ASSERT_TRUE(m.vision->Encode(*pixels, image_rows.data()).ok());
  auto prefix = FindVisionTowerPrefix(m.checkpoint);
  ASSERT_TRUE(prefix.ok());
  WeightLoader loader(m.checkpoint, *prefix);
  const VisionConfig& vc = *m.config.vision;
  auto vw = LoadVitWeights(loader, vc, VitLayersForFeature(vc, m.config.vision_feature_layer));
  ASSERT_TRUE(vw.ok());
  VitTower tower(vc, std::move(*vw), kernels::Activation::kQuickGelu);
  const float* feat = tower.Forward(pixels->data_as<float>());
  std::vector<float> features(feat + vc.hidden_size, feat + tower.seq_len() * vc.hidden_size);  // "default": drop CLS
  std::vector<float> both = features;
  both.insert(both.end(), features.begin(), features.end());  // two samples show the image
  const auto* proj = sink.Find(CalibComponent::kProjector, 0);
  ASSERT_NE(proj, nullptr);
  EXPECT_EQ(proj->stats[0].rows_seen, 2 * n_img);
  const double proj_diff = RelMaxDiff(proj->stats[0], Gram(both, vc.hidden_size));
  EXPECT_LT(proj_diff, kTol) << "projector linear_1 input";

  // Decoder: embed / splice, then two reference layers per sample.
  std::array<std::vector<float>, 4> in0, in1;
  for (const CalibSequence& s : *seqs) {
    const int64_t n = static_cast<int64_t>(s.ids.size());
    std::vector<float> x(n * h);
    int64_t row = 0;
    for (int64_t t = 0; t < n; ++t) {
      if (s.ids[t] == m.config.image_token_index && s.image >= 0) {
        std::copy(image_rows.begin() + row * h, image_rows.begin() + (row + 1) * h, x.begin() + t * h);
        ++row;
      } else {
        ASSERT_TRUE(m.decoder->Embed(&s.ids[t], 1, x.data() + t * h).ok());
      }
    }
    RefDecoderLayer(m, m.decoder->weights().layers[0], x.data(), n, in0);
    RefDecoderLayer(m, m.decoder->weights().layers[1], x.data(), n, in1);
  }
  const int64_t ks[4] = {h, m.config.text.num_attention_heads * m.config.text.head_dim, h,
                         m.config.text.intermediate_size};
  for (int layer = 0; layer < 2; ++layer) {
    const auto* e = sink.Find(CalibComponent::kDecoder, layer);
    ASSERT_NE(e, nullptr);
    ASSERT_EQ(e->stats.size(), 4u);
    EXPECT_EQ(e->names.size(), 7u);
    EXPECT_NE(e->names[0].find("layers." + std::to_string(layer) + ".self_attn.q_proj.weight"), std::string::npos);
    EXPECT_EQ(e->inputs, (std::vector<int>{0, 0, 0, 1, 2, 2, 3}));
    for (int site = 0; site < 4; ++site) {
      const auto& ref = layer == 0 ? in0[site] : in1[site];
      EXPECT_EQ(e->stats[site].rows_seen, sum->tokens);
      const double d = RelMaxDiff(e->stats[site], Gram(ref, ks[site]));
      EXPECT_LT(d, kTol) << "decoder layer " << layer << " site " << site;
    }
  }
}

TEST(QuantCalibRunner, SequentialModeRunsLaterLayersOnTheReplacedWeights) {
  // Phi-3 (fused qkv_proj / gate_up_proj), text only. Zeroing every linear of
  // layer 0 makes it the identity, so in sequential mode layer 1 sees exactly
  // layer 0's inputs; without sequential mode it sees the real layer 0 output.
  const std::string dir = Synth("--family phi3 --preset tiny");
  auto model = LoadModel(dir);
  ASSERT_TRUE(model.ok()) << model.status().message();
  std::vector<CalibSample> samples(2);
  samples[0].prompt = "The quick brown fox jumps over the lazy dog.";
  samples[1].prompt = "Hello", samples[1].answer = "world, again and again";
  for (bool sequential : {true, false}) {
    SCOPED_TRACE(sequential ? "sequential" : "full-precision inputs");
    CalibOptions options;
    options.sequential = sequential;
    RecordingSink sink;
    sink.zero_layer = 0;
    auto sum = RunCalibration(**model, samples, options, sink);
    ASSERT_TRUE(sum.ok()) << sum.status().message();
    const auto* l0 = sink.Find(CalibComponent::kDecoder, 0);
    const auto* l1 = sink.Find(CalibComponent::kDecoder, 1);
    ASSERT_NE(l0, nullptr);
    ASSERT_NE(l1, nullptr);
    ASSERT_EQ(l0->names.size(), 4u);
    EXPECT_NE(l0->names[0].find("self_attn.qkv_proj.weight"), std::string::npos) << l0->names[0];
    EXPECT_NE(l0->names[2].find("mlp.gate_up_proj.weight"), std::string::npos) << l0->names[2];
    // The input norms differ per layer, so compare the residual streams
    // through what both layers' stats share: the rows seen and, with the
    // identity layer, attn_in of layer 1 = attn_in of layer 0 rescaled by the
    // ratio of the two norm weights per channel.
    const auto& L0 = (*model)->decoder->weights().layers[0];
    const auto& L1 = (*model)->decoder->weights().layers[1];
    const int64_t h = (*model)->config.text.hidden_size;
    std::vector<double> want(h * h);
    for (int64_t i = 0; i < h; ++i) {
      for (int64_t j = 0; j < h; ++j) {
        const double r = double(L1.input_norm.data[i]) * L1.input_norm.data[j] /
                         (double(L0.input_norm.data[i]) * L0.input_norm.data[j]);
        want[i * h + j] = l0->stats[0].Xtx(i, j) * r;
      }
    }
    const double d = RelMaxDiff(l1->stats[0], want);
    if (sequential) {
      EXPECT_LT(d, 1e-4) << "layer 1 should see layer 0's inputs unchanged";
    } else {
      EXPECT_GT(d, 1e-2) << "layer 1 should see the full-precision output of layer 0";
    }
  }
}

}  // namespace
}  // namespace bitlens::quant
