// quant/calib_runner: the layer-by-layer calibration walk. Hidden states of
// every calibration token are kept; each block runs once with taps (its
// statistics), the caller quantizes it, and in sequential mode the block runs
// again with the quantized weights to produce the next block's inputs.
#include "quant/calib_runner.h"

#include <sys/mman.h>
#include <unistd.h>

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

// Releases the resident pages of a mapped weight once its block is done: the
// walk reads every layer once, and without this the whole mapped checkpoint
// would end up counted in the process's resident set. The mapping is
// read-only and file-backed, so a later read faults the pages back in.
// Only ranges of the checkpoint's own mapping are dropped (never heap memory).
void DropPages(const Checkpoint& checkpoint, const std::string& name) {
  auto t = checkpoint.Get(name);
  if (!t.ok() || t->nbytes() == 0) return;
  static const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t begin = reinterpret_cast<uintptr_t>(t->data());
  const uintptr_t b = begin / page * page;
  const uintptr_t e = (begin + t->nbytes() + page - 1) / page * page;
  madvise(reinterpret_cast<void*>(b), e - b, MADV_DONTNEED);
}

bool AnyReplaced(const std::vector<kernels::WeightView>& replace) {
  return std::any_of(replace.begin(), replace.end(), [](const kernels::WeightView& w) { return w.data != nullptr; });
}

Status CheckReplacements(const CalibBlock& block, const std::vector<kernels::WeightView>& replace) {
  if (replace.size() != block.tensors.size()) {
    return Internal("calibration: " + std::to_string(replace.size()) + " replacements for " +
                    std::to_string(block.tensors.size()) + " tensors");
  }
  for (size_t i = 0; i < replace.size(); ++i) {
    if (replace[i].data == nullptr) continue;
    const kernels::WeightView& w = block.tensors[i].weight;
    if (replace[i].n != w.n || replace[i].k != w.k) {
      return Internal("calibration: " + block.tensors[i].name + " [" + std::to_string(w.n) + ", " +
                      std::to_string(w.k) + "] replaced with a different shape");
    }
  }
  for (const CalibNorm& norm : block.norms) {
    const size_t k = static_cast<size_t>(block.inputs[static_cast<size_t>(norm.input)].k);
    if (norm.weight.size() != k || (!norm.bias_name.empty() && norm.bias.size() != k)) {
      return Internal("calibration: the norm " + norm.weight_name + " was resized");
    }
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

}  // namespace

enum class WalkStage { kVision, kProjector, kDecoder, kDone };

struct CalibWalk::State {
  const Model& model;
  CalibOptions options;
  std::vector<CalibSequence> seqs;
  std::vector<std::string> images;
  CalibSummary sum;
  WalkStage stage = WalkStage::kDone;
  int64_t layer = 0;
  bool open = false;  // Next returned a block that Finish has not closed
  CalibBlock block;

  // Vision tower and projector (only while images are walked).
  std::unique_ptr<VitTower> tower;
  std::string tower_prefix, projector_prefix;
  int64_t tower_layers = 0;
  std::vector<float> vit_hidden;  // [images, seq, vision_hidden]
  std::vector<float> vit_scratch;  // [seq, vision_hidden]
  int64_t vit_seq = 0, vit_dim = 0;
  ProjectorWeights projector;
  kernels::Activation projector_act = kernels::Activation::kGelu;
  std::vector<float> image_embeds;  // [images, image tokens, text_hidden]

  // Decoder.
  std::vector<int64_t> offset;  // rows of sample s: [offset[s], offset[s+1])
  std::vector<float> hidden;    // [T, hidden]
  std::vector<float> arena;
  DecoderBuffers buf;
  LayerKv kv;
  RopeTable rope;
  bool fused = false;  // Phi-3's qkv_proj / gate_up_proj
  int64_t max_len_ = 0;  // longest sample

  explicit State(const Model& m) : model(m) {}

  Status StartVision();
  void VisionBlock();
  Status VisionFinish(const std::vector<kernels::WeightView>& replace);
  Status ProjectorBlock();
  Status ProjectorFinish(const std::vector<kernels::WeightView>& replace);
  Status StartDecoder();
  void CarveDecoderBuffers();
  void DecoderBlock();
  Status DecoderRunAll(const DecoderLayerWeights& L, LinearInputTap* tap, bool write_back);
  Status DecoderFinish(const std::vector<kernels::WeightView>& replace);
  Status RunPass1();
};

// ---- vision tower -----------------------------------------------------------

Status CalibWalk::State::StartVision() {
  const ModelConfig& cfg = model.config;
  if (!cfg.vision) return InvalidArgument(model.dir + ": calibration samples have images but the model has no vision tower");
  const VisionConfig& v = *cfg.vision;
  if (!model.image_processor) {
    return NotFound(model.dir + "/preprocessor_config.json is missing; calibration images cannot be preprocessed");
  }
  BL_ASSIGN_OR_RETURN(kernels::Activation act, ActivationFromName(v.hidden_act, "config.json: vision_config.hidden_act"));
  BL_ASSIGN_OR_RETURN(projector_act, ActivationFromName(cfg.projector_hidden_act, "config.json: projector_hidden_act"));
  BL_ASSIGN_OR_RETURN(tower_prefix, FindVisionTowerPrefix(model.checkpoint));
  BL_ASSIGN_OR_RETURN(projector_prefix, FindProjectorPrefix(model.checkpoint));
  WeightLoader tower_loader(model.checkpoint, tower_prefix);
  tower_layers = VitLayersForFeature(v, cfg.vision_feature_layer);
  if (tower_layers < 0 || tower_layers > v.num_hidden_layers) {
    return InvalidArgument("config.json: vision_feature_layer " + std::to_string(cfg.vision_feature_layer) +
                           " is outside the tower's " + std::to_string(v.num_hidden_layers) + " layers");
  }
  BL_ASSIGN_OR_RETURN(VitWeights tower_weights, LoadVitWeights(tower_loader, v, tower_layers));
  WeightLoader projector_loader(model.checkpoint, projector_prefix);
  BL_ASSIGN_OR_RETURN(projector, LoadProjectorWeights(projector_loader, cfg));
  tower = std::make_unique<VitTower>(v, std::move(tower_weights), act);
  vit_seq = tower->seq_len();
  vit_dim = tower->hidden_size();
  const size_t per_image = static_cast<size_t>(vit_seq * vit_dim);
  vit_hidden.assign(per_image * images.size(), 0.0f);
  vit_scratch.resize(per_image);
  for (size_t i = 0; i < images.size(); ++i) {
    BL_ASSIGN_OR_RETURN(Image image, DecodeImageFile(images[i]));
    BL_ASSIGN_OR_RETURN(Tensor pixels, PreprocessImage(image, *model.image_processor));
    const float* h = tower->Embed(pixels.data_as<float>());
    std::copy(h, h + per_image, vit_hidden.begin() + static_cast<std::ptrdiff_t>(i * per_image));
  }
  return Status::Ok();
}

void CalibWalk::State::VisionBlock() {
  const VitLayerWeights& L = tower->weights().layers[static_cast<size_t>(layer)];
  const std::string n = tower_prefix + "encoder.layers." + std::to_string(layer) + ".";
  block = CalibBlock{};
  block.component = CalibComponent::kVision;
  block.layer = layer;
  block.inputs = {LayerStats(vit_dim), LayerStats(vit_dim), LayerStats(vit_dim), LayerStats(L.fc1.n)};
  block.tensors = {{n + "self_attn.q_proj.weight", L.q_proj, 0}, {n + "self_attn.k_proj.weight", L.k_proj, 0},
                   {n + "self_attn.v_proj.weight", L.v_proj, 0}, {n + "self_attn.out_proj.weight", L.out_proj, 1},
                   {n + "mlp.fc1.weight", L.fc1, 2},             {n + "mlp.fc2.weight", L.fc2, 3}};
  block.norms.push_back({n + "layer_norm1.weight", n + "layer_norm1.bias", L.layer_norm1_weight, L.layer_norm1_bias, 0});
  block.norms.push_back({n + "layer_norm2.weight", n + "layer_norm2.bias", L.layer_norm2_weight, L.layer_norm2_bias, 2});
}

Status CalibWalk::State::VisionFinish(const std::vector<kernels::WeightView>& replace) {
  const size_t per_image = static_cast<size_t>(vit_seq * vit_dim);
  if (!options.sequential) return Status::Ok();  // pass 1 already advanced the hidden states
  const VitLayerWeights& L = tower->weights().layers[static_cast<size_t>(layer)];
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
  for (size_t i = 0; i < images.size(); ++i) tower->ForwardLayer(cur, vit_hidden.data() + i * per_image, nullptr);
  return Status::Ok();
}

Status CalibWalk::State::ProjectorBlock() {
  const ModelConfig& cfg = model.config;
  const int64_t first_row = cfg.vision_feature_select_strategy == "default" ? 1 : 0;
  if (vit_seq - first_row != cfg.image_seq_length()) {
    return Internal("the vision tower yields " + std::to_string(vit_seq - first_row) +
                    " image rows but config.json implies " + std::to_string(cfg.image_seq_length()));
  }
  block = CalibBlock{};
  block.component = CalibComponent::kProjector;
  block.inputs = {LayerStats(projector.linear_1.k), LayerStats(projector.linear_2.k)};
  block.tensors = {{projector_prefix + "linear_1.weight", projector.linear_1, 0},
                   {projector_prefix + "linear_2.weight", projector.linear_2, 1}};
  return Status::Ok();
}

// Projects every image's selected feature rows into image_embeds, with `tap`
// on the first pass; the tower's states are freed after the last pass.
Status CalibWalk::State::ProjectorFinish(const std::vector<kernels::WeightView>& replace) {
  if (options.sequential && AnyReplaced(replace)) {
    ProjectorWeights cur;
    cur.linear_1 = Pick(replace, 0, projector.linear_1);
    cur.linear_2 = Pick(replace, 1, projector.linear_2);
    cur.linear_1_bias = projector.linear_1_bias;
    cur.linear_2_bias = projector.linear_2_bias;
    const ModelConfig& cfg = model.config;
    const int64_t first_row = cfg.vision_feature_select_strategy == "default" ? 1 : 0;
    const int64_t tokens = vit_seq - first_row, td = cfg.text.hidden_size;
    std::vector<float> mid(static_cast<size_t>(tokens * projector.linear_1.n));
    for (size_t i = 0; i < images.size(); ++i) {
      Project(cur, projector_act, vit_hidden.data() + (i * vit_seq + first_row) * vit_dim, tokens, mid.data(),
              image_embeds.data() + i * tokens * td, nullptr);
    }
  }
  tower.reset();
  std::vector<float>().swap(vit_hidden);
  std::vector<float>().swap(vit_scratch);
  return Status::Ok();
}

// ---- decoder ----------------------------------------------------------------

Status CalibWalk::State::StartDecoder() {
  const Decoder& dec = *model.decoder;
  const TextConfig& c = model.config.text;
  const int64_t h = c.hidden_size;
  const int32_t image_id = model.config.is_vlm() ? static_cast<int32_t>(model.config.image_token_index) : -1;
  const int64_t image_rows = model.config.is_vlm() ? model.config.image_seq_length() : 0;
  offset.assign(seqs.size() + 1, 0);
  int64_t max_len = 0;
  for (size_t s = 0; s < seqs.size(); ++s) {
    const int64_t n = static_cast<int64_t>(seqs[s].ids.size());
    offset[s + 1] = offset[s] + n;
    max_len = std::max(max_len, n);
  }
  hidden.assign(static_cast<size_t>(offset.back() * h), 0.0f);
  sum.tokens = offset.back();
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
  std::vector<float>().swap(image_embeds);
  max_len_ = max_len;
  CarveDecoderBuffers();
  BL_ASSIGN_OR_RETURN(rope, RopeTable::Build(c, max_len));
  fused = model.checkpoint.Has(dec.weights().prefix + "layers.0.self_attn.qkv_proj.weight");
  return Status::Ok();
}

void CalibWalk::State::DecoderBlock() {
  const Decoder& dec = *model.decoder;
  const TextConfig& c = model.config.text;
  const int64_t h = c.hidden_size, q_rows = c.num_attention_heads * c.head_dim;
  const DecoderLayerWeights& L = dec.weights().layers[static_cast<size_t>(layer)];
  const std::string lp = dec.weights().prefix + "layers." + std::to_string(layer) + ".";
  block = CalibBlock{};
  block.component = CalibComponent::kDecoder;
  block.layer = layer;
  block.inputs = {LayerStats(h), LayerStats(q_rows), LayerStats(h), LayerStats(c.intermediate_size)};
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
}

// One sample's forward buffers and K/V, sized for the current thread count
// (the caller may resize the pool after the walk starts).
void CalibWalk::State::CarveDecoderBuffers() {
  const Decoder& dec = *model.decoder;
  const int64_t threads = static_cast<int64_t>(NumThreads()), kvd = dec.kv_dim();
  const size_t buffer_floats = dec.BufferFloats(max_len_, max_len_, threads);
  arena.assign(buffer_floats + static_cast<size_t>(2 * max_len_ * kvd), 0.0f);
  buf = dec.CarveBuffers(arena.data(), max_len_, max_len_, threads);
  kv = LayerKv{arena.data() + buffer_floats, arena.data() + buffer_floats + max_len_ * kvd};
}

// Runs `L` over every sample's rows (copied into the forward buffer);
// write_back stores the layer's output as the next layer's input.
Status CalibWalk::State::DecoderRunAll(const DecoderLayerWeights& L, LinearInputTap* tap, bool write_back) {
  const int64_t h = model.config.text.hidden_size;
  if (static_cast<int64_t>(NumThreads()) > buf.threads) CarveDecoderBuffers();
  for (size_t s = 0; s < seqs.size(); ++s) {
    const int64_t n = offset[s + 1] - offset[s];
    float* rows = hidden.data() + offset[s] * h;
    std::copy(rows, rows + n * h, buf.x);
    BL_TRY(model.decoder->ForwardLayer(L, n, 0, rope, rope.UseLong(n - 1), kv, buf, tap));
    if (write_back) std::copy(buf.x, buf.x + n * h, rows);
  }
  return Status::Ok();
}

Status CalibWalk::State::DecoderFinish(const std::vector<kernels::WeightView>& replace) {
  if (!options.sequential) return Status::Ok();
  const DecoderLayerWeights& L = model.decoder->weights().layers[static_cast<size_t>(layer)];
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
  return DecoderRunAll(cur, nullptr, /*write_back=*/true);
}

// The first, full-precision pass of the current block, with taps. In
// sequential mode the hidden states stay as they were (the second pass, on the
// quantized block, advances them); otherwise this pass advances them.
Status CalibWalk::State::RunPass1() {
  StatsTap tap(block.inputs);
  switch (stage) {
    case WalkStage::kVision: {
      const VitLayerWeights& L = tower->weights().layers[static_cast<size_t>(layer)];
      const size_t per_image = static_cast<size_t>(vit_seq * vit_dim);
      for (size_t i = 0; i < images.size(); ++i) {
        float* h = vit_hidden.data() + i * per_image;
        if (options.sequential) {
          std::copy(h, h + per_image, vit_scratch.begin());
          h = vit_scratch.data();
        }
        tower->ForwardLayer(L, h, &tap);
        BL_TRY(tap.status());
      }
      return Status::Ok();
    }
    case WalkStage::kProjector: {
      const ModelConfig& cfg = model.config;
      const int64_t first_row = cfg.vision_feature_select_strategy == "default" ? 1 : 0;
      const int64_t tokens = vit_seq - first_row, td = cfg.text.hidden_size;
      image_embeds.assign(static_cast<size_t>(static_cast<int64_t>(images.size()) * tokens * td), 0.0f);
      std::vector<float> mid(static_cast<size_t>(tokens * projector.linear_1.n));
      for (size_t i = 0; i < images.size(); ++i) {
        Project(projector, projector_act, vit_hidden.data() + (i * vit_seq + first_row) * vit_dim, tokens,
                mid.data(), image_embeds.data() + i * tokens * td, &tap);
        BL_TRY(tap.status());
      }
      return Status::Ok();
    }
    case WalkStage::kDecoder: {
      const DecoderLayerWeights& L = model.decoder->weights().layers[static_cast<size_t>(layer)];
      BL_TRY(DecoderRunAll(L, &tap, /*write_back=*/!options.sequential));
      return tap.status();
    }
    case WalkStage::kDone: break;
  }
  return Internal("calibration walk: no block to run");
}

CalibWalk::CalibWalk(std::unique_ptr<State> s) : s_(std::move(s)) {}
CalibWalk::~CalibWalk() = default;
const CalibSummary& CalibWalk::summary() const { return s_->sum; }

bool CalibWalk::NextIs(CalibComponent component, int64_t layer) const {
  switch (s_->stage) {
    case WalkStage::kVision: return component == CalibComponent::kVision && layer == s_->layer;
    case WalkStage::kProjector: return component == CalibComponent::kProjector;
    case WalkStage::kDecoder: return component == CalibComponent::kDecoder && layer == s_->layer;
    case WalkStage::kDone: return false;
  }
  return false;
}

Result<std::unique_ptr<CalibWalk>> CalibWalk::Start(const Model& model, const std::vector<CalibSample>& samples,
                                                    const CalibOptions& options) {
  if (!model.decoder) return InvalidArgument("the model has no decoder");
  auto s = std::make_unique<State>(model);
  s->options = options;
  BL_ASSIGN_OR_RETURN(s->seqs, BuildCalibSequences(model, samples, options, &s->images));
  s->sum.samples = static_cast<int64_t>(s->seqs.size());
  s->sum.images = static_cast<int64_t>(s->images.size());
  if (!s->images.empty()) {
    BL_TRY(s->StartVision());
    s->stage = s->tower_layers > 0 ? WalkStage::kVision : WalkStage::kProjector;
  } else {
    BL_TRY(s->StartDecoder());
    s->stage = WalkStage::kDecoder;
  }
  s->layer = 0;
  if (s->stage == WalkStage::kDecoder && model.decoder->weights().layers.empty()) s->stage = WalkStage::kDone;
  return std::unique_ptr<CalibWalk>(new CalibWalk(std::move(s)));
}

Result<CalibBlock*> CalibWalk::Next() {
  State& s = *s_;
  if (s.open) return Internal("calibration walk: Next before Finish of the previous block");
  switch (s.stage) {
    case WalkStage::kVision: s.VisionBlock(); break;
    case WalkStage::kProjector: BL_TRY(s.ProjectorBlock()); break;
    case WalkStage::kDecoder: s.DecoderBlock(); break;
    case WalkStage::kDone: return static_cast<CalibBlock*>(nullptr);
  }
  BL_TRY(s.RunPass1());
  size_t stats_bytes = 0;
  for (const LayerStats& st : s.block.inputs) stats_bytes += st.MemoryBytes();
  s.sum.peak_stats_bytes = std::max(s.sum.peak_stats_bytes, stats_bytes);
  ++s.sum.blocks;
  s.open = true;
  return &s.block;
}

Status CalibWalk::Finish(const std::vector<kernels::WeightView>& replace) {
  State& s = *s_;
  if (!s.open) return Internal("calibration walk: Finish without a block");
  BL_TRY(CheckReplacements(s.block, replace));
  s.open = false;
  switch (s.stage) {
    case WalkStage::kVision:
      BL_TRY(s.VisionFinish(replace));
      if (++s.layer == s.tower_layers) s.stage = WalkStage::kProjector, s.layer = 0;
      break;
    case WalkStage::kProjector:
      BL_TRY(s.ProjectorFinish(replace));
      BL_TRY(s.StartDecoder());
      s.stage = WalkStage::kDecoder, s.layer = 0;
      break;
    case WalkStage::kDecoder:
      BL_TRY(s.DecoderFinish(replace));
      if (++s.layer == static_cast<int64_t>(s.model.decoder->weights().layers.size())) s.stage = WalkStage::kDone;
      break;
    case WalkStage::kDone: return Internal("calibration walk: Finish after the end");
  }
  for (const CalibTensor& t : s.block.tensors) DropPages(s.model.checkpoint, t.name);
  s.block = CalibBlock{};  // frees the statistics
  return Status::Ok();
}

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
  BL_ASSIGN_OR_RETURN(std::unique_ptr<CalibWalk> walk, CalibWalk::Start(model, samples, options));
  std::vector<kernels::WeightView> replace;
  for (;;) {
    BL_ASSIGN_OR_RETURN(CalibBlock * block, walk->Next());
    if (block == nullptr) break;
    replace.assign(block->tensors.size(), kernels::WeightView{});
    BL_TRY(sink.OnBlock(*block, replace));
    BL_TRY(walk->Finish(replace));
  }
  return walk->summary();
}

}  // namespace bitlens::quant
