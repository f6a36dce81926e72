// train/qat_block: block-wise QAT of the Llama decoder layers. The teacher's
// block inputs come from the mapped checkpoint (embedding rows, image rows of
// the runtime's vision tower and projector); then, one decoder layer at a
// time, only that layer's weights are read into fp32, the teacher's output
// of the layer is computed on every calibration sequence, and the
// fake-quantized layer (master weights + grids, AdamW) is trained to
// reproduce it from the student's own inputs (the outputs of the layers
// already quantized). Memory: three hidden-state copies of every calibration
// token (teacher in, student in, teacher out) + one layer's weights, grids and
// one sequence's activations.
// Components outside the decoder layers keep their initial grids.
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "base/thread_pool.h"
#include "model/model.h"
#include "model/rope.h"
#include "quant/checkpoint.h"
#include "train/ops.h"
#include "train/optim.h"
#include "train/qat_run.h"

namespace bitlens::train {
namespace {

void AddInto(float* dst, const float* src, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] += src[i];
}

// One fake-quantized linear of the block: master weight and grids as Params.
struct BlockLinear {
  const quant::PlannedTensor* planned = nullptr;  // null: kept as stored (not packed), frozen
  Param* w = nullptr;
  FakeQuantGrids grids;
  Param* scale = nullptr;
  Param* offset = nullptr;
  std::vector<float> wq, dwq;
  int64_t n = 0, k = 0;

  bool quantized() const { return planned != nullptr; }
  void Prepare(bool fake) {
    if (fake && quantized()) {
      grids.scale = scale->value;
      grids.offset = offset->value;
      wq.resize(w->value.size());
      FakeQuantForward(grids, w->value.data(), wq.data());
    }
  }
  const float* Matrix(bool fake) const { return fake && quantized() ? wq.data() : w->value.data(); }
  void Forward(bool fake, const float* x, int64_t m, float* y) const {
    LinearForward(x, Matrix(fake), nullptr, m, k, n, y);
  }
  void Backward(const float* dy, const float* x, int64_t m, float* dx) {
    if (!quantized()) {
      LinearBackward(dy, x, w->value.data(), m, k, n, dx, nullptr, nullptr);
      return;
    }
    dwq.assign(w->value.size(), 0.0f);
    LinearBackward(dy, x, wq.data(), m, k, n, dx, dwq.data(), nullptr);
    std::fill(grids.dscale.begin(), grids.dscale.end(), 0.0f);
    std::fill(grids.doffset.begin(), grids.doffset.end(), 0.0f);
    FakeQuantBackward(grids, w->value.data(), dwq.data(), w->grad.data());
    AddInto(scale->grad.data(), grids.dscale.data(), static_cast<int64_t>(grids.dscale.size()));
    AddInto(offset->grad.data(), grids.doffset.data(), static_cast<int64_t>(grids.doffset.size()));
  }
};

// One Llama decoder layer over one sequence (train/ops, as train/vlm_decoder computes it).
class LlamaBlock {
 public:
  LlamaBlock(const TextConfig& t, const RopeTable* rope) : t_(t), rope_(rope) {
    heads_ = t.num_attention_heads;
    kv_ = t.num_key_value_heads;
    hd_ = t.head_dim;
    scale_ = 1.0f / std::sqrt(static_cast<float>(hd_));
  }
  BlockLinear q, k, v, o, gate, up, down;
  std::vector<float> norm1, norm2;

  std::vector<BlockLinear*> linears() { return {&q, &k, &v, &o, &gate, &up, &down}; }
  void Prepare(bool fake) {
    for (BlockLinear* l : linears()) l->Prepare(fake);
  }

  // x [T, h] -> out [T, h]; keeps the activations for Backward.
  void Forward(bool fake, const float* x, int64_t T, float* out) {
    const int64_t h = t_.hidden_size, I = t_.intermediate_size, qd = heads_ * hd_, kvd = kv_ * hd_;
    const float eps = static_cast<float>(t_.rms_norm_eps);
    T_ = T;
    x_ = x;
    const auto sz = [](int64_t a, int64_t b) { return static_cast<size_t>(a * b); };
    xn1_.resize(sz(T, h)), mid_.resize(sz(T, h)), xn2_.resize(sz(T, h));
    qv_.resize(sz(T, qd)), qr_.resize(sz(T, qd)), attn_.resize(sz(T, qd));
    kv_k_.resize(sz(T, kvd)), kv_v_.resize(sz(T, kvd)), kr_.resize(sz(T, kvd));
    g_.resize(sz(T, I)), u_.resize(sz(T, I)), act_.resize(sz(T, I));
    rstd1_.resize(T), rstd2_.resize(T);
    probs_.resize(static_cast<size_t>(heads_ * T * T));
    const float* cos = rope_->cos(0, false);
    const float* sin = rope_->sin(0, false);
    RmsNormForward(x, norm1.data(), T, h, eps, xn1_.data(), rstd1_.data());
    q.Forward(fake, xn1_.data(), T, qv_.data());
    k.Forward(fake, xn1_.data(), T, kv_k_.data());
    v.Forward(fake, xn1_.data(), T, kv_v_.data());
    RopeForward(qv_.data(), T, heads_, hd_, rope_->rotary_dim(), cos, sin, qr_.data());
    RopeForward(kv_k_.data(), T, kv_, hd_, rope_->rotary_dim(), cos, sin, kr_.data());
    AttentionForward(qr_.data(), kr_.data(), kv_v_.data(), T, heads_, kv_, hd_, true, scale_, probs_.data(),
                     attn_.data());
    o.Forward(fake, attn_.data(), T, mid_.data());
    AddInto(mid_.data(), x, T * h);
    RmsNormForward(mid_.data(), norm2.data(), T, h, eps, xn2_.data(), rstd2_.data());
    gate.Forward(fake, xn2_.data(), T, g_.data());
    up.Forward(fake, xn2_.data(), T, u_.data());
    GatedForward(kernels::Activation::kSilu, g_.data(), u_.data(), T * I, act_.data());
    down.Forward(fake, act_.data(), T, out);
    AddInto(out, mid_.data(), T * h);
  }

  // dout [T, h] of the last (fake) Forward -> weight and grid gradients (the input gradient is not needed).
  void Backward(const float* dout) {
    const int64_t T = T_, h = t_.hidden_size, I = t_.intermediate_size, qd = heads_ * hd_, kvd = kv_ * hd_;
    const auto zero = [](std::vector<float>& b, int64_t n) { b.assign(static_cast<size_t>(n), 0.0f); };
    const float* cos = rope_->cos(0, false);
    const float* sin = rope_->sin(0, false);
    dmid_.assign(dout, dout + T * h);
    zero(dact_, T * I);
    down.Backward(dout, act_.data(), T, dact_.data());
    zero(dg_, T * I), zero(du_, T * I);
    GatedBackward(kernels::Activation::kSilu, g_.data(), u_.data(), dact_.data(), T * I, dg_.data(), du_.data());
    zero(dtmp_, T * h);
    gate.Backward(dg_.data(), xn2_.data(), T, dtmp_.data());
    up.Backward(du_.data(), xn2_.data(), T, dtmp_.data());
    RmsNormBackward(dtmp_.data(), mid_.data(), norm2.data(), rstd2_.data(), T, h, dmid_.data(), nullptr);
    zero(dattn_, T * qd);
    o.Backward(dmid_.data(), attn_.data(), T, dattn_.data());
    zero(dqr_, T * qd), zero(dkr_, T * kvd), zero(dv_, T * kvd);
    scratch_.resize(NumThreads() * static_cast<size_t>(T));
    AttentionBackward(dattn_.data(), qr_.data(), kr_.data(), kv_v_.data(), probs_.data(), T, heads_, kv_, hd_, true,
                      scale_, scratch_.data(), dqr_.data(), dkr_.data(), dv_.data());
    zero(dq_, T * qd), zero(dk_, T * kvd);
    RopeBackward(dqr_.data(), T, heads_, hd_, rope_->rotary_dim(), cos, sin, dq_.data());
    RopeBackward(dkr_.data(), T, kv_, hd_, rope_->rotary_dim(), cos, sin, dk_.data());
    q.Backward(dq_.data(), xn1_.data(), T, nullptr);
    k.Backward(dk_.data(), xn1_.data(), T, nullptr);
    v.Backward(dv_.data(), xn1_.data(), T, nullptr);
  }

 private:
  TextConfig t_;
  const RopeTable* rope_;
  int64_t heads_, kv_, hd_;
  float scale_;
  int64_t T_ = 0;
  const float* x_ = nullptr;
  std::vector<float> xn1_, mid_, xn2_, qv_, qr_, attn_, kv_k_, kv_v_, kr_, g_, u_, act_, rstd1_, rstd2_, probs_;
  std::vector<float> dmid_, dact_, dg_, du_, dtmp_, dattn_, dqr_, dkr_, dv_, dq_, dk_, scratch_;
};

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Block inputs of every example: embedding rows with the image rows of the
// full-precision vision tower and projector spliced in (the runtime's, mapped).
Result<std::vector<std::vector<float>>> DecoderInputs(const QatContext& c, const std::vector<VlmExample>& examples) {
  BL_ASSIGN_OR_RETURN(std::unique_ptr<Model> model, LoadModel(c.options->model_dir));
  const ModelConfig& cfg = model->config;
  const int64_t h = cfg.text.hidden_size;
  const quant::PlannedTensor* embed = nullptr;
  for (const quant::PlannedTensor& t : c.plan->tensors) {
    if (t.component == quant::Component::kEmbed && t.weight) embed = &t;
  }
  if (embed == nullptr) return Internal("qat: the plan has no embedding table");
  Tensor keep;
  BL_ASSIGN_OR_RETURN(kernels::WeightView table, quant::MapWeight(model->checkpoint, nullptr, embed->name, embed->shape, &keep));
  std::vector<std::vector<float>> out;
  std::vector<float> image;
  for (const VlmExample& ex : examples) {
    const int64_t T = static_cast<int64_t>(ex.input_ids.size());
    std::vector<float> x(static_cast<size_t>(T * h));
    for (int64_t t = 0; t < T; ++t) quant::DequantizeWeightRows(table, ex.input_ids[t], 1, x.data() + t * h);
    if (!ex.pixel_values.empty()) {
      if (model->vision == nullptr) return InvalidArgument(c.options->model_dir + " has no vision tower");
      const int64_t s = cfg.vision->image_size;
      image.resize(static_cast<size_t>(model->vision->num_image_tokens() * h));
      BL_TRY(model->vision->Encode(Tensor::FromF32({1, 3, s, s}, ex.pixel_values), image.data()));
      int64_t row = 0;
      for (int64_t t = 0; t < T; ++t) {
        if (ex.input_ids[t] != cfg.image_token_index) continue;
        std::copy_n(image.data() + row * h, h, x.data() + t * h);
        ++row;
      }
    }
    out.push_back(std::move(x));
  }
  return out;
}

double SquaredDistance(const float* a, const float* b, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += static_cast<double>(a[i] - b[i]) * (a[i] - b[i]);
  return s;
}

}  // namespace

Status RunBlockWise(const QatContext& c, QatPackedWeights* out, QatResult* result) {
  const QatOptions& o = *c.options;
  const quant::QuantPlan& plan = *c.plan;
  const ModelConfig& cfg = plan.config;
  const TextConfig& text = cfg.text;
  if (text.model_type != "llama") {
    return InvalidArgument("--mode block trains Llama decoder layers (text model is '" + text.model_type + "')");
  }
  const std::vector<VlmExample>& examples = c.data->train;
  BL_ASSIGN_OR_RETURN(RopeTable rope, RopeTable::Build(text, text.max_position_embeddings));
  BL_ASSIGN_OR_RETURN(std::vector<std::vector<float>> x_teacher, DecoderInputs(c, examples));
  std::vector<std::vector<float>> x_student = x_teacher;
  const int64_t h = text.hidden_size;
  const int64_t L = text.num_hidden_layers;
  const int64_t total_steps = o.steps * L;

  // Packed weights outside the decoder layers: initial grids, packed as they are.
  for (const quant::PlannedTensor& t : plan.tensors) {
    if (!t.packed || t.component == quant::Component::kDecoder) continue;
    BL_ASSIGN_OR_RETURN(std::vector<float> w, ReadF32(*c.source, t.name));
    BL_ASSIGN_OR_RETURN(FakeQuantGrids g, c.init->Grids(t, w));
    out->Set(t.name, PackRows(g, w.data()));
  }

  std::vector<float> y, ys, dy;
  for (int64_t layer = 0; layer < L; ++layer) {
    // This layer's weights, fp32, as Params (trained: the packed linears and their grids).
    ParamSet params;
    LlamaBlock block(text, &rope);
    const std::vector<std::pair<std::string, BlockLinear*>> roles = {
        {"self_attn.q_proj.weight", &block.q}, {"self_attn.k_proj.weight", &block.k},
        {"self_attn.v_proj.weight", &block.v}, {"self_attn.o_proj.weight", &block.o},
        {"mlp.gate_proj.weight", &block.gate}, {"mlp.up_proj.weight", &block.up},
        {"mlp.down_proj.weight", &block.down}};
    int found = 0;
    for (const quant::PlannedTensor& t : plan.tensors) {
      if (t.component != quant::Component::kDecoder || t.layer != layer) continue;
      BL_ASSIGN_OR_RETURN(std::vector<float> w, ReadF32(*c.source, t.name));
      if (EndsWith(t.name, "input_layernorm.weight")) {
        block.norm1 = std::move(w);
        ++found;
        continue;
      }
      if (EndsWith(t.name, "post_attention_layernorm.weight")) {
        block.norm2 = std::move(w);
        ++found;
        continue;
      }
      BlockLinear* role = nullptr;
      for (const auto& [suffix, l] : roles) {
        if (EndsWith(t.name, suffix)) role = l;
      }
      if (role == nullptr) return InvalidArgument(t.name + ": not a tensor of a Llama decoder layer (block mode)");
      ++found;
      role->n = t.n;
      role->k = t.k;
      role->w = &params.Add(t.name, {t.n, t.k}, false);
      if (!t.packed) {
        RoundToDType(w, t.out_dtype);
        role->w->value = std::move(w);
        role->w->trainable = false;
        continue;
      }
      role->planned = &t;
      BL_ASSIGN_OR_RETURN(role->grids, c.init->Grids(t, w));
      role->w->value = std::move(w);
      role->scale = &params.Add(t.name + ".qat_scale", {static_cast<int64_t>(role->grids.scale.size())}, false);
      role->offset = &params.Add(t.name + ".qat_offset", {static_cast<int64_t>(role->grids.offset.size())}, false);
      role->scale->value = role->grids.scale;
      role->offset->value = role->grids.offset;
    }
    if (found != 9) {
      return InvalidArgument("decoder layer " + std::to_string(layer) + " has " + std::to_string(found) +
                             " of the 9 Llama layer tensors");
    }

    // Teacher outputs of this layer on the teacher's inputs.
    std::vector<std::vector<float>> y_teacher(examples.size());
    block.Prepare(false);
    for (size_t e = 0; e < examples.size(); ++e) {
      const int64_t T = static_cast<int64_t>(x_teacher[e].size()) / h;
      y_teacher[e].resize(x_teacher[e].size());
      block.Forward(false, x_teacher[e].data(), T, y_teacher[e].data());
    }
    // Relative error of the student's block output against the block's own update (y − x).
    auto block_error = [&]() {
      block.Prepare(true);
      double num = 0, den = 0;
      for (size_t e = 0; e < examples.size(); ++e) {
        const int64_t T = static_cast<int64_t>(x_student[e].size()) / h;
        ys.resize(x_student[e].size());
        block.Forward(true, x_student[e].data(), T, ys.data());
        num += SquaredDistance(ys.data(), y_teacher[e].data(), T * h);
        den += SquaredDistance(y_teacher[e].data(), x_teacher[e].data(), T * h);
      }
      return den > 0 ? num / den : 0.0;
    };
    result->block_mse_init.push_back(block_error());

    AdamWConfig adam_config;
    adam_config.weight_decay = 0.0f;
    AdamW adam(params, adam_config);
    const int64_t warmup = std::max<int64_t>(1, o.steps / 20);
    for (int64_t step = 0; step < o.steps; ++step) {
      if (o.cancel != nullptr && o.cancel->load()) {
        return Cancelled("interrupted in decoder block " + std::to_string(layer) + "; nothing was written");
      }
      params.ZeroGrad();
      block.Prepare(true);
      double loss = 0;
      for (int64_t j = 0; j < o.batch; ++j) {
        const size_t e = QatExampleIndex(o.seed + static_cast<uint64_t>(layer), step, o.batch, j, examples.size());
        const int64_t T = static_cast<int64_t>(x_student[e].size()) / h;
        ys.resize(x_student[e].size());
        block.Forward(true, x_student[e].data(), T, ys.data());
        dy.assign(ys.size(), 0.0f);
        loss += MseForwardBackward(ys.data(), y_teacher[e].data(), T * h, 1.0f / static_cast<float>(o.batch * T * h),
                                   dy.data()) / static_cast<double>(T * h);
        block.Backward(dy.data());
      }
      const double norm = ClipGradNorm(params, o.clip);
      if (!std::isfinite(norm)) continue;
      adam.Step(params, WarmupCosineLr(step, warmup, o.steps, o.lr, o.lr * 0.1f));
      for (BlockLinear* l : block.linears()) {
        if (!l->quantized()) continue;
        for (float& s : l->scale->value) s = std::max(s, 1e-8f);
      }
      if (o.on_progress) {
        char detail[80];
        std::snprintf(detail, sizeof(detail), "block %lld/%lld MSE %.3g", (long long)layer + 1, (long long)L,
                      loss / o.batch);
        o.on_progress(layer * o.steps + step + 1, total_steps, detail);
      }
    }
    result->block_mse_final.push_back(block_error());
    result->steps += o.steps;

    // The student's inputs for the next layer come through this quantized one.
    block.Prepare(true);
    for (size_t e = 0; e < examples.size(); ++e) {
      const int64_t T = static_cast<int64_t>(x_student[e].size()) / h;
      ys.resize(x_student[e].size());
      block.Forward(true, x_student[e].data(), T, ys.data());
      x_student[e] = ys;
      x_teacher[e] = std::move(y_teacher[e]);
    }
    for (BlockLinear* l : block.linears()) {
      if (l->quantized()) out->Set(l->planned->name, PackRows(l->grids, l->w->value.data()));
    }
  }
  return Status::Ok();
}

}  // namespace bitlens::train
