// quant/calib_runner: the layer-by-layer calibration walk. Hidden states of
// every calibration token are kept; each block runs once with taps (its
// statistics), the sink quantizes it, and in sequential mode the block runs
// again with the quantized weights to produce the next block's inputs.
#include "quant/calib_runner.h"

#include <algorithm>
#include <cstring>

#include "base/thread_pool.h"
#include "model/projector.h"
#include "model/rope.h"
#include "model/vit.h"
#include "model/vit_weights.h"
#include "runtime/session.h"
#include "vision/image.h"

namespace bitlens::quant {
namespace {

// Accumulates each tap site's input into the block's LayerStats.
class StatsTap final : public LinearInputTap {
 public:
  explicit StatsTap(std::vector<LayerStats>& inputs) : inputs_(inputs) {}
  void OnInput(LinearSite site, const float* x, int64_t rows, int64_t k) override {
    Add(static_cast<int>(site), x, rows, k);
  }
  void Add(int input, const float* x, int64_t rows, int64_t k) {
    if (!status_.ok()) return;
    LayerStats& s = inputs_[static_cast<size_t>(input)];
    if (s.k != k) {
      status_ = Internal("calibration tap: input " + std::to_string(input) + " has k=" + std::to_string(k) +
                         " but its statistics were sized for " + std::to_string(s.k));
      return;
    }
    status_ = s.Accumulate(x, rows);
  }
  const Status& status() const { return status_; }

 private:
  std::vector<LayerStats>& inputs_;
  Status status_;
};

kernels::WeightView RowRange(const kernels::WeightView& w, int64_t first, int64_t rows) {
  kernels::WeightView r = w;
  r.data = static_cast<const uint8_t*>(w.data) + first * kernels::WeightRowBytes(w);
  r.n = rows;
  return r;
}

const kernels::WeightView& Pick(const std::vector<kernels::WeightView>& replace, size_t i,
                                const kernels::WeightView& loaded) {
  return replace[i].data != nullptr ? replace[i] : loaded;
}

Status CheckReplacements(const CalibBlock& block, const std::vector<kernels::WeightView>& replace) {
  if (replace.size() != block.tensors.size()) return Internal("calibration sink resized the replacement list");
  for (size_t i = 0; i < replace.size(); ++i) {
    if (replace[i].data == nullptr) continue;
    const kernels::WeightView& w = block.tensors[i].weight;
    if (replace[i].n != w.n || replace[i].k != w.k) {
      return Internal("calibration sink replaced " + block.tensors[i].name + " [" + std::to_string(w.n) + ", " +
                      std::to_string(w.k) + "] with a different shape");
    }
  }
  for (const CalibNorm& norm : block.norms) {
    const size_t k = static_cast<size_t>(block.inputs[static_cast<size_t>(norm.input)].k);
    if (norm.weight.size() != k || (!norm.bias_name.empty() && norm.bias.size() != k)) {
      return Internal("calibration sink resized the norm " + norm.weight_name);
    }
  }
  return Status::Ok();
}

size_t StatsBytes(const CalibBlock& b) {
  size_t bytes = 0;
  for (const LayerStats& s : b.inputs) bytes += s.MemoryBytes();
  return bytes;
}

Status HandToSink(CalibSink& sink, CalibBlock& block, std::vector<kernels::WeightView>& replace, CalibSummary& sum) {
  replace.assign(block.tensors.size(), kernels::WeightView{});
  sum.peak_stats_bytes = std::max(sum.peak_stats_bytes, StatsBytes(block));
  ++sum.blocks;
  BL_TRY(sink.OnBlock(block, replace));
  return CheckReplacements(block, replace);
}

// ---- vision tower -----------------------------------------------------------

struct VisionState {
  std::vector<float> hidden;  // [images, seq, vision_hidden]
  int64_t seq = 0, dim = 0;
};

Status RunVision(const Model& model, const std::vector<std::string>& images, const CalibOptions& options,
                 CalibSink& sink, CalibSummary& sum, VisionState& vs, ProjectorWeights* projector_out,
                 kernels::Activation* projector_act) {
  const ModelConfig& cfg = model.config;
  const VisionConfig& v = *cfg.vision;
  if (!model.image_processor) {
    return NotFound(model.dir + "/preprocessor_config.json is missing; calibration images cannot be preprocessed");
  }
  BL_ASSIGN_OR_RETURN(kernels::Activation act, ActivationFromName(v.hidden_act, "config.json: vision_config.hidden_act"));
  BL_ASSIGN_OR_RETURN(*projector_act,
                      ActivationFromName(cfg.projector_hidden_act, "config.json: projector_hidden_act"));
  BL_ASSIGN_OR_RETURN(std::string tower_prefix, FindVisionTowerPrefix(model.checkpoint));
  BL_ASSIGN_OR_RETURN(std::string projector_prefix, FindProjectorPrefix(model.checkpoint));
  WeightLoader tower_loader(model.checkpoint, tower_prefix);
  const int64_t layers = VitLayersForFeature(v, cfg.vision_feature_layer);
  if (layers < 0 || layers > v.num_hidden_layers) {
    return InvalidArgument("config.json: vision_feature_layer " + std::to_string(cfg.vision_feature_layer) +
                           " is outside the tower's " + std::to_string(v.num_hidden_layers) + " layers");
  }
  BL_ASSIGN_OR_RETURN(VitWeights tower_weights, LoadVitWeights(tower_loader, v, layers));
  WeightLoader projector_loader(model.checkpoint, projector_prefix);
  BL_ASSIGN_OR_RETURN(*projector_out, LoadProjectorWeights(projector_loader, cfg));
  VitTower tower(v, std::move(tower_weights), act);

  vs.seq = tower.seq_len();
  vs.dim = tower.hidden_size();
  const size_t per_image = static_cast<size_t>(vs.seq * vs.dim);
  vs.hidden.assign(per_image * images.size(), 0.0f);
  for (size_t i = 0; i < images.size(); ++i) {
    BL_ASSIGN_OR_RETURN(Image image, DecodeImageFile(images[i]));
    BL_ASSIGN_OR_RETURN(Tensor pixels, PreprocessImage(image, *model.image_processor));
    const float* h = tower.Embed(pixels.data_as<float>());
    std::copy(h, h + per_image, vs.hidden.begin() + static_cast<std::ptrdiff_t>(i * per_image));
  }

  std::vector<float> scratch(per_image);
  std::vector<kernels::WeightView> replace;
  const std::string& p = tower_prefix;
  for (int64_t l = 0; l < layers; ++l) {
    const VitLayerWeights& L = tower.weights().layers[static_cast<size_t>(l)];
    const std::string n = p + "encoder.layers." + std::to_string(l) + ".";
    CalibBlock block;
    block.component = CalibComponent::kVision;
    block.layer = l;
    block.inputs = {LayerStats(vs.dim), LayerStats(vs.dim), LayerStats(vs.dim), LayerStats(L.fc1.n)};
    block.tensors = {{n + "self_attn.q_proj.weight", L.q_proj, 0}, {n + "self_attn.k_proj.weight", L.k_proj, 0},
                     {n + "self_attn.v_proj.weight", L.v_proj, 0}, {n + "self_attn.out_proj.weight", L.out_proj, 1},
                     {n + "mlp.fc1.weight", L.fc1, 2},             {n + "mlp.fc2.weight", L.fc2, 3}};
    block.norms.push_back({n + "layer_norm1.weight", n + "layer_norm1.bias", L.layer_norm1_weight, L.layer_norm1_bias, 0});
    block.norms.push_back({n + "layer_norm2.weight", n + "layer_norm2.bias", L.layer_norm2_weight, L.layer_norm2_bias, 2});
    StatsTap tap(block.inputs);
    for (size_t i = 0; i < images.size(); ++i) {
      float* h = vs.hidden.data() + i * per_image;
      if (options.sequential) {
        std::copy(h, h + per_image, scratch.begin());
        h = scratch.data();
      }
      tower.ForwardLayer(L, h, &tap);
      BL_TRY(tap.status());
    }
    BL_TRY(HandToSink(sink, block, replace, sum));
    if (!options.sequential) continue;
    VitLayerWeights cur = L;
    cur.q_proj = Pick(replace, 0, L.q_proj);
    cur.k_proj = Pick(replace, 1, L.k_proj);
    cur.v_proj = Pick(replace, 2, L.v_proj);
    cur.out_proj = Pick(replace, 3, L.out_proj);
    cur.fc1 = Pick(replace, 4, L.fc1);
    cur.fc2 = Pick(replace, 5, L.fc2);
    cur.layer_norm1_weight = block.norms[0].weight;
    cur.layer_norm1_bias = block.norms[0].bias;
    cur.layer_norm2_weight = block.norms[1].weight;
    cur.layer_norm2_bias = block.norms[1].bias;
    for (size_t i = 0; i < images.size(); ++i) tower.ForwardLayer(cur, vs.hidden.data() + i * per_image, nullptr);
  }
  return Status::Ok();
}

// LlavaProjector::Project with taps: features [rows, vision_hidden] -> out
// [rows, text_hidden]; mid [rows, text_hidden] is scratch.
void Project(const ProjectorWeights& w, kernels::Activation act, const float* features, int64_t rows, float* mid,
             float* out, StatsTap* tap) {
  const float* b1 = w.linear_1_bias.empty() ? nullptr : w.linear_1_bias.data();
  const float* b2 = w.linear_2_bias.empty() ? nullptr : w.linear_2_bias.data();
  if (tap) tap->Add(0, features, rows, w.linear_1.k);
  kernels::MatMul(features, rows, w.linear_1, b1, mid);
  kernels::Activate(act, mid, rows * w.linear_1.n);
  if (tap) tap->Add(1, mid, rows, w.linear_2.k);
  kernels::MatMul(mid, rows, w.linear_2, b2, out);
}

// Projects every image's selected feature rows; image i's rows go to
// embeds[i] = [image tokens, text_hidden].
Status RunProjector(const Model& model, const ProjectorWeights& pw, kernels::Activation act, const VisionState& vs,
                    int64_t n_images, const CalibOptions& options, CalibSink& sink, CalibSummary& sum,
                    std::vector<float>& embeds) {
  const ModelConfig& cfg = model.config;
  const int64_t first_row = cfg.vision_feature_select_strategy == "default" ? 1 : 0;
  const int64_t tokens = vs.seq - first_row, td = cfg.text.hidden_size;
  if (tokens != cfg.image_seq_length()) {
    return Internal("the vision tower yields " + std::to_string(tokens) + " image rows but config.json implies " +
                    std::to_string(cfg.image_seq_length()));
  }
  BL_ASSIGN_OR_RETURN(std::string prefix, FindProjectorPrefix(model.checkpoint));
  CalibBlock block;
  block.component = CalibComponent::kProjector;
  block.inputs = {LayerStats(pw.linear_1.k), LayerStats(pw.linear_2.k)};
  block.tensors = {{prefix + "linear_1.weight", pw.linear_1, 0}, {prefix + "linear_2.weight", pw.linear_2, 1}};
  embeds.assign(static_cast<size_t>(n_images * tokens * td), 0.0f);
  std::vector<float> mid(static_cast<size_t>(tokens * pw.linear_1.n));
  StatsTap tap(block.inputs);
  auto features = [&](int64_t i) { return vs.hidden.data() + (i * vs.seq + first_row) * vs.dim; };
  auto out = [&](int64_t i) { return embeds.data() + i * tokens * td; };
  for (int64_t i = 0; i < n_images; ++i) {
    Project(pw, act, features(i), tokens, mid.data(), out(i), &tap);
    BL_TRY(tap.status());
  }
  std::vector<kernels::WeightView> replace;
  BL_TRY(HandToSink(sink, block, replace, sum));
  if (options.sequential && (replace[0].data != nullptr || replace[1].data != nullptr)) {
    ProjectorWeights cur;
    cur.linear_1 = Pick(replace, 0, pw.linear_1);
    cur.linear_2 = Pick(replace, 1, pw.linear_2);
    cur.linear_1_bias = pw.linear_1_bias;
    cur.linear_2_bias = pw.linear_2_bias;
    for (int64_t i = 0; i < n_images; ++i) Project(cur, act, features(i), tokens, mid.data(), out(i), nullptr);
  }
  return Status::Ok();
}

// ---- decoder ----------------------------------------------------------------

Status RunDecoder(const Model& model, const std::vector<CalibSequence>& seqs, const std::vector<float>& image_embeds,
                  const CalibOptions& options, CalibSink& sink, CalibSummary& sum) {
  const Decoder& dec = *model.decoder;
  const TextConfig& c = model.config.text;
  const int64_t h = c.hidden_size, kvd = dec.kv_dim(), inter = c.intermediate_size;
  const int64_t q_rows = c.num_attention_heads * c.head_dim;
  const int32_t image_id = model.config.is_vlm() ? static_cast<int32_t>(model.config.image_token_index) : -1;
  const int64_t image_rows = model.config.is_vlm() ? model.config.image_seq_length() : 0;

  // Hidden states of every token, sample after sample: [T, hidden].
  std::vector<int64_t> offset(seqs.size() + 1, 0);
  int64_t max_len = 0;
  for (size_t s = 0; s < seqs.size(); ++s) {
    const int64_t n = static_cast<int64_t>(seqs[s].ids.size());
    offset[s + 1] = offset[s] + n;
    max_len = std::max(max_len, n);
  }
  const int64_t total = offset.back();
  std::vector<float> hidden(static_cast<size_t>(total * h));
  sum.tokens = total;
  sum.hidden_bytes = hidden.size() * sizeof(float);
  for (size_t s = 0; s < seqs.size(); ++s) {
    int64_t row = 0;
    for (size_t t = 0; t < seqs[s].ids.size(); ++t) {
      float* dst = hidden.data() + (offset[s] + static_cast<int64_t>(t)) * h;
      if (seqs[s].ids[t] == image_id && seqs[s].image >= 0 && row < image_rows) {
        const float* src = image_embeds.data() + (seqs[s].image * image_rows + row) * h;
        std::copy(src, src + h, dst);
        ++row;
      } else {
        BL_TRY(dec.Embed(&seqs[s].ids[t], 1, dst));
      }
    }
  }

  const int64_t threads = static_cast<int64_t>(NumThreads());
  std::vector<float> arena(dec.BufferFloats(max_len, max_len, threads) + static_cast<size_t>(2 * max_len * kvd));
  const DecoderBuffers buf = dec.CarveBuffers(arena.data(), max_len, max_len, threads);
  float* kv_base = arena.data() + dec.BufferFloats(max_len, max_len, threads);
  const LayerKv kv{kv_base, kv_base + max_len * kvd};
  BL_ASSIGN_OR_RETURN(RopeTable rope, RopeTable::Build(c, max_len));

  auto run_all = [&](const DecoderLayerWeights& L, LinearInputTap* tap, bool write_back) -> Status {
    for (size_t s = 0; s < seqs.size(); ++s) {
      const int64_t n = offset[s + 1] - offset[s];
      float* rows = hidden.data() + offset[s] * h;
      std::copy(rows, rows + n * h, buf.x);
      BL_TRY(dec.ForwardLayer(L, n, 0, rope, rope.UseLong(n - 1), kv, buf, tap));
      if (write_back) std::copy(buf.x, buf.x + n * h, rows);
    }
    return Status::Ok();
  };

  const std::string& p = dec.weights().prefix;
  std::vector<kernels::WeightView> replace;
  for (size_t l = 0; l < dec.weights().layers.size(); ++l) {
    const DecoderLayerWeights& L = dec.weights().layers[l];
    const std::string lp = p + "layers." + std::to_string(l) + ".";
    const bool fused = model.checkpoint.Has(lp + "self_attn.qkv_proj.weight");
    CalibBlock block;
    block.component = CalibComponent::kDecoder;
    block.layer = static_cast<int64_t>(l);
    block.inputs = {LayerStats(h), LayerStats(q_rows), LayerStats(h), LayerStats(inter)};
    if (fused) {
      block.tensors = {{lp + "self_attn.qkv_proj.weight", RowRange(L.q, 0, L.q.n + L.k.n + L.v.n), 0},
                       {lp + "self_attn.o_proj.weight", L.o, 1},
                       {lp + "mlp.gate_up_proj.weight", RowRange(L.gate, 0, L.gate.n + L.up.n), 2},
                       {lp + "mlp.down_proj.weight", L.down, 3}};
    } else {
      block.tensors = {{lp + "self_attn.q_proj.weight", L.q, 0}, {lp + "self_attn.k_proj.weight", L.k, 0},
                       {lp + "self_attn.v_proj.weight", L.v, 0}, {lp + "self_attn.o_proj.weight", L.o, 1},
                       {lp + "mlp.gate_proj.weight", L.gate, 2}, {lp + "mlp.up_proj.weight", L.up, 2},
                       {lp + "mlp.down_proj.weight", L.down, 3}};
    }
    block.norms.push_back({lp + "input_layernorm.weight", "", std::vector<float>(L.input_norm.data, L.input_norm.data + h),
                           {}, 0});
    block.norms.push_back({lp + "post_attention_layernorm.weight", "",
                           std::vector<float>(L.post_attn_norm.data, L.post_attn_norm.data + h), {}, 2});
    StatsTap tap(block.inputs);
    BL_TRY(run_all(L, &tap, /*write_back=*/!options.sequential));
    BL_TRY(tap.status());
    BL_TRY(HandToSink(sink, block, replace, sum));
    if (!options.sequential) continue;

    DecoderLayerWeights cur;
    cur.input_norm.data = block.norms[0].weight.data();
    cur.post_attn_norm.data = block.norms[1].weight.data();
    if (fused) {
      const kernels::WeightView qkv = Pick(replace, 0, block.tensors[0].weight);
      cur.q = RowRange(qkv, 0, L.q.n);
      cur.k = RowRange(qkv, L.q.n, L.k.n);
      cur.v = RowRange(qkv, L.q.n + L.k.n, L.v.n);
      cur.o = Pick(replace, 1, L.o);
      const kernels::WeightView gate_up = Pick(replace, 2, block.tensors[2].weight);
      cur.gate = RowRange(gate_up, 0, L.gate.n);
      cur.up = RowRange(gate_up, L.gate.n, L.up.n);
      cur.down = Pick(replace, 3, L.down);
    } else {
      cur.q = Pick(replace, 0, L.q);
      cur.k = Pick(replace, 1, L.k);
      cur.v = Pick(replace, 2, L.v);
      cur.o = Pick(replace, 3, L.o);
      cur.gate = Pick(replace, 4, L.gate);
      cur.up = Pick(replace, 5, L.up);
      cur.down = Pick(replace, 6, L.down);
    }
    cur.q_bias.data = L.q_bias.data, cur.k_bias.data = L.k_bias.data, cur.v_bias.data = L.v_bias.data;
    cur.o_bias.data = L.o_bias.data, cur.gate_bias.data = L.gate_bias.data, cur.up_bias.data = L.up_bias.data;
    cur.down_bias.data = L.down_bias.data;
    BL_TRY(run_all(cur, nullptr, /*write_back=*/true));
  }
  return Status::Ok();
}

}  // namespace

const char* CalibComponentName(CalibComponent c) {
  switch (c) {
    case CalibComponent::kVision: return "vision";
    case CalibComponent::kProjector: return "projector";
    case CalibComponent::kDecoder: return "decoder";
  }
  return "?";
}

Result<std::vector<CalibSequence>> BuildCalibSequences(const Model& model, const std::vector<CalibSample>& samples,
                                                       const CalibOptions& options, std::vector<std::string>* images) {
  if (options.max_tokens_per_sample <= 0) return InvalidArgument("--calib-tokens must be positive");
  if (!model.tokenizer) {
    return NotFound(model.dir + ": calibration needs the model's tokenizer (tokenizer.json, tokenizer.model or vocab.json)");
  }
  // A one-position session: only its prompt formatting is used.
  SessionOptions so;
  so.max_context = 1;
  BL_ASSIGN_OR_RETURN(std::unique_ptr<Session> session, Session::Create(model, so));
  const size_t count = options.max_samples > 0 ? std::min<size_t>(samples.size(), options.max_samples) : samples.size();
  std::vector<CalibSequence> seqs;
  seqs.reserve(count);
  images->clear();
  for (size_t i = 0; i < count; ++i) {
    const CalibSample& s = samples[i];
    const std::string where = "calibration sample on line " + std::to_string(s.line);
    auto ids = session->TokenizePrompt(s.prompt, !s.image.empty(), ChatMode::kOn);
    if (!ids.ok()) return ids.status().WithContext(where);
    CalibSequence seq;
    seq.ids = std::move(*ids);
    if (s.answer) {
      const std::vector<int32_t> answer = model.tokenizer->Encode(*s.answer, /*add_bos=*/false);
      seq.ids.insert(seq.ids.end(), answer.begin(), answer.end());
    }
    if (static_cast<int64_t>(seq.ids.size()) > options.max_tokens_per_sample) {
      seq.ids.resize(static_cast<size_t>(options.max_tokens_per_sample));
    }
    if (!s.image.empty()) {
      seq.image = static_cast<int64_t>(images->size());
      images->push_back(s.image);
    }
    seqs.push_back(std::move(seq));
  }
  return seqs;
}

Result<CalibSummary> RunCalibration(const Model& model, const std::vector<CalibSample>& samples,
                                    const CalibOptions& options, CalibSink& sink) {
  if (!model.decoder) return InvalidArgument("the model has no decoder");
  std::vector<std::string> images;
  BL_ASSIGN_OR_RETURN(std::vector<CalibSequence> seqs, BuildCalibSequences(model, samples, options, &images));
  CalibSummary sum;
  sum.samples = static_cast<int64_t>(seqs.size());
  sum.images = static_cast<int64_t>(images.size());
  std::vector<float> image_embeds;  // [images, image tokens, text_hidden]
  if (!images.empty()) {
    VisionState vs;
    ProjectorWeights pw;
    kernels::Activation act = kernels::Activation::kGelu;
    BL_TRY(RunVision(model, images, options, sink, sum, vs, &pw, &act));
    BL_TRY(RunProjector(model, pw, act, vs, static_cast<int64_t>(images.size()), options, sink, sum, image_embeds));
  }
  BL_TRY(RunDecoder(model, seqs, image_embeds, options, sink, sum));
  return sum;
}

}  // namespace bitlens::quant
