// model/decoder: one pre-norm transformer block after another, as
// LlamaDecoderLayer / Phi3DecoderLayer compute it, batched over n rows.
#include "model/decoder.h"

#include <cmath>

#include "base/f16.h"
#include "base/thread_pool.h"
#include "quant/checkpoint.h"

namespace bitlens {
namespace {

Result<kernels::Activation> ActivationFor(const std::string& name) {
  if (name == "silu" || name == "swish") return kernels::Activation::kSilu;
  if (name == "gelu") return kernels::Activation::kGelu;
  if (name == "gelu_pytorch_tanh" || name == "gelu_new") return kernels::Activation::kGeluTanh;
  if (name == "relu") return kernels::Activation::kRelu;
  return Unsupported("config.json: hidden_act '" + name + "' is not supported (silu, gelu, gelu_pytorch_tanh, relu)");
}

void AddInPlace(float* x, const float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] += y[i];
}

}  // namespace

Result<std::unique_ptr<Decoder>> Decoder::Load(const Checkpoint& checkpoint, const TextConfig& config,
                                               const quant::QuantizationConfig* quant) {
  BL_ASSIGN_OR_RETURN(kernels::Activation act, ActivationFor(config.hidden_act));
  BL_ASSIGN_OR_RETURN(DecoderWeights weights, MapDecoderWeights(checkpoint, config, quant));
  std::unique_ptr<Decoder> d(new Decoder(checkpoint, config, std::move(weights)));
  d->act_ = act;
  return d;
}

size_t Decoder::BufferFloats(int64_t max_tokens, int64_t context, int64_t threads) const {
  const int64_t h = config_.hidden_size, qd = config_.num_attention_heads * config_.head_dim;
  const int64_t inter = config_.intermediate_size;
  return static_cast<size_t>(max_tokens * (2 * h + 2 * qd + 2 * inter) + threads * context);
}

DecoderBuffers Decoder::CarveBuffers(float* base, int64_t max_tokens, int64_t context, int64_t threads) const {
  const int64_t h = config_.hidden_size, qd = config_.num_attention_heads * config_.head_dim;
  const int64_t inter = config_.intermediate_size;
  DecoderBuffers b;
  float* p = base;
  b.x = p, p += max_tokens * h;
  b.xn = p, p += max_tokens * h;
  b.q = p, p += max_tokens * qd;
  b.attn = p, p += max_tokens * qd;
  b.gate = p, p += max_tokens * inter;
  b.up = p, p += max_tokens * inter;
  b.scores = p;
  b.max_tokens = max_tokens;
  b.context = context;
  b.threads = threads;
  return b;
}

Status Decoder::Embed(const int32_t* ids, int64_t n, float* x) const {
  const int64_t h = config_.hidden_size, vocab = config_.vocab_size;
  const Tensor& e = weights_.embed_tokens;
  for (int64_t t = 0; t < n; ++t) {
    const int64_t id = ids[t];
    if (id < 0 || id >= vocab) {
      return InvalidArgument("token id " + std::to_string(id) + " is outside the vocabulary of " + std::to_string(vocab));
    }
    float* row = x + t * h;
    if (weights_.embed.format != nullptr) {  // packed rows: dequantize just this one
      quant::DequantizeWeightRows(weights_.embed, id, 1, row);
      continue;
    }
    switch (e.dtype()) {
      case DType::kF32: {
        const float* src = e.data_as<float>() + id * h;
        for (int64_t i = 0; i < h; ++i) row[i] = src[i];
        break;
      }
      case DType::kF16: F16ToF32(e.data_as<uint16_t>() + id * h, row, h); break;
      case DType::kBF16: Bf16ToF32(e.data_as<uint16_t>() + id * h, row, h); break;
      default: return Internal("embedding dtype was not validated");
    }
  }
  return Status::Ok();
}

Status Decoder::Forward(int64_t n, int64_t pos0, const RopeTable& rope, bool long_rope, const std::vector<LayerKv>& kv,
                        const DecoderBuffers& buf, int64_t n_logits, float* logits) const {
  const TextConfig& c = config_;
  const int64_t h = c.hidden_size, n_kv = pos0 + n;
  if (n <= 0 || n > buf.max_tokens || n_kv > buf.context || n_kv > rope.max_positions() || n_logits < 0 ||
      n_logits > n || kv.size() != weights_.layers.size()) {
    return Internal("decoder forward outside its buffers (n=" + std::to_string(n) + ", pos0=" + std::to_string(pos0) + ")");
  }
  if (static_cast<int64_t>(NumThreads()) > buf.threads) {
    return Internal("thread count grew after the session was created; create the session after SetNumThreads");
  }
  for (size_t l = 0; l < weights_.layers.size(); ++l) {
    RunLayer(weights_.layers[l], n, pos0, rope, long_rope, kv[l], buf, nullptr);
  }
  const float eps = static_cast<float>(c.rms_norm_eps);
  if (n_logits > 0) {
    const int64_t first = n - n_logits;
    kernels::RmsNorm(buf.x + first * h, weights_.final_norm.data, n_logits, h, eps, buf.xn);
    kernels::MatMul(buf.xn, n_logits, weights_.lm_head, nullptr, logits);
  }
  return Status::Ok();
}

Status Decoder::ForwardLayer(const DecoderLayerWeights& layer, int64_t n, int64_t pos0, const RopeTable& rope,
                             bool long_rope, const LayerKv& kv, const DecoderBuffers& buf, LinearInputTap* tap) const {
  if (n <= 0 || n > buf.max_tokens || pos0 + n > buf.context || pos0 + n > rope.max_positions()) {
    return Internal("decoder layer forward outside its buffers (n=" + std::to_string(n) + ", pos0=" +
                    std::to_string(pos0) + ")");
  }
  if (static_cast<int64_t>(NumThreads()) > buf.threads) {
    return Internal("thread count grew after the buffers were carved; carve them after SetNumThreads");
  }
  RunLayer(layer, n, pos0, rope, long_rope, kv, buf, tap);
  return Status::Ok();
}

void Decoder::FinalNorm(const float* x, int64_t n, float* y) const {
  kernels::RmsNorm(x, weights_.final_norm.data, n, config_.hidden_size, static_cast<float>(config_.rms_norm_eps), y);
}

// One LlamaDecoderLayer / Phi3DecoderLayer over rows buf.x[0, n).
void Decoder::RunLayer(const DecoderLayerWeights& L, int64_t n, int64_t pos0, const RopeTable& rope, bool long_rope,
                       const LayerKv& kv, const DecoderBuffers& buf, LinearInputTap* tap) const {
  const TextConfig& c = config_;
  const int64_t h = c.hidden_size, hd = c.head_dim, heads = c.num_attention_heads;
  const int64_t kv_heads = c.num_key_value_heads, qd = heads * hd, kvd = kv_heads * hd;
  const int64_t inter = c.intermediate_size, n_kv = pos0 + n;
  const float eps = static_cast<float>(c.rms_norm_eps);
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(hd)));
  const bool use_long = long_rope;
  const int64_t rd = rope.rotary_dim();
  float* k_new = kv.k + pos0 * kvd;  // [n, kv_heads, hd], written straight into the cache
  float* v_new = kv.v + pos0 * kvd;
  // Attention block: x += o(attn(rope(q(norm x)), rope(k(norm x)), v(norm x)))
  kernels::RmsNorm(buf.x, L.input_norm.data, n, h, eps, buf.xn);
  if (tap) tap->OnInput(LinearSite::kAttnIn, buf.xn, n, h);
  kernels::MatMul(buf.xn, n, L.q, BiasOrNull(L.q_bias), buf.q);
  kernels::MatMul(buf.xn, n, L.k, BiasOrNull(L.k_bias), k_new);
  kernels::MatMul(buf.xn, n, L.v, BiasOrNull(L.v_bias), v_new);
  for (int64_t t = 0; t < n; ++t) {
    const int64_t pos = pos0 + t;
    kernels::ApplyRope(buf.q + t * qd, heads, hd, rd, rope.cos(pos, use_long), rope.sin(pos, use_long));
    kernels::ApplyRope(k_new + t * kvd, kv_heads, hd, rd, rope.cos(pos, use_long), rope.sin(pos, use_long));
  }
  kernels::Attention(buf.q, n, heads, kv.k, kv.v, n_kv, kv_heads, hd, pos0, /*causal=*/true, scale, buf.scores,
                     buf.attn);
  if (tap) tap->OnInput(LinearSite::kAttnOut, buf.attn, n, qd);
  kernels::MatMul(buf.attn, n, L.o, BiasOrNull(L.o_bias), buf.xn);
  AddInPlace(buf.x, buf.xn, n * h);
  // MLP block: x += down(act(gate(norm x)) * up(norm x))
  kernels::RmsNorm(buf.x, L.post_attn_norm.data, n, h, eps, buf.xn);
  if (tap) tap->OnInput(LinearSite::kMlpIn, buf.xn, n, h);
  kernels::MatMul(buf.xn, n, L.gate, BiasOrNull(L.gate_bias), buf.gate);
  kernels::MatMul(buf.xn, n, L.up, BiasOrNull(L.up_bias), buf.up);
  kernels::GatedActivate(act_, buf.gate, buf.up, n * inter);
  if (tap) tap->OnInput(LinearSite::kMlpOut, buf.gate, n, inter);
  kernels::MatMul(buf.gate, n, L.down, BiasOrNull(L.down_bias), buf.xn);
  AddInPlace(buf.x, buf.xn, n * h);
}

}  // namespace bitlens
