// bench/decode_profile: the decode step of model/decoder.cpp with a timer
// around every kernel call, grouped by op class.
#include "bench/decode_profile.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>

#include "base/thread_pool.h"
#include "kernels/ops.h"
#include "model/rope.h"

namespace bitlens::bench {
namespace {

using Clock = std::chrono::steady_clock;

enum Op { kEmbed, kNorm, kQkv, kRope, kAttention, kO, kResidual, kGateUp, kActivation, kDown, kFinalNorm, kLmHead, kArgmax, kOps };
const char* kOpNames[kOps] = {"embed row",       "rmsnorm",      "matmul q+k+v",  "rope",        "attention",
                              "matmul o",        "residual add", "matmul gate+up", "activation", "matmul down",
                              "final norm",      "matmul lm_head", "argmax"};

int64_t Bytes(const kernels::WeightView& w) { return static_cast<int64_t>(kernels::WeightRowBytes(w)) * w.n; }

struct Timer {
  double ms[kOps] = {};
  int64_t calls[kOps] = {};
  Clock::time_point t = Clock::now();
  void Start() { t = Clock::now(); }
  void Stop(Op op) {
    const auto now = Clock::now();
    ms[op] += std::chrono::duration<double, std::milli>(now - t).count();
    ++calls[op];
    t = now;
  }
};

}  // namespace

Result<DecodeProfile> ProfileDecodeStep(const Model& model, int64_t position, int64_t steps) {
  if (!model.decoder) return InvalidArgument(model.dir + ": no decoder to profile");
  if (position < 0 || steps < 1) return InvalidArgument("profile: position >= 0 and steps >= 1");
  const Decoder& d = *model.decoder;
  const TextConfig& c = d.config();
  const DecoderWeights& W = d.weights();
  const int64_t h = c.hidden_size, hd = c.head_dim, heads = c.num_attention_heads;
  const int64_t kv_heads = c.num_key_value_heads, kvd = kv_heads * hd;
  const int64_t inter = c.intermediate_size, vocab = c.vocab_size;
  const int64_t context = position + steps;
  const int64_t threads = static_cast<int64_t>(NumThreads());
  const float eps = static_cast<float>(c.rms_norm_eps);
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(hd)));
  const kernels::Activation act = c.hidden_act == "silu" ? kernels::Activation::kSilu : kernels::Activation::kGelu;

  BL_ASSIGN_OR_RETURN(RopeTable rope, RopeTable::Build(c, context));
  std::unique_ptr<float[]> arena(new float[d.BufferFloats(1, context, threads)]);
  const DecoderBuffers buf = d.CarveBuffers(arena.get(), 1, context, threads);
  // Stand-in K/V: attention's cost depends on the length, not the values.
  std::vector<std::vector<float>> kcache(W.layers.size()), vcache(W.layers.size());
  for (size_t l = 0; l < W.layers.size(); ++l) {
    kcache[l].assign(static_cast<size_t>(context * kvd), 0.01f);
    vcache[l].assign(static_cast<size_t>(context * kvd), 0.02f);
  }
  std::vector<float> logits(static_cast<size_t>(vocab));

  DecodeProfile out;
  out.position = position;
  out.steps = steps;
  int32_t id = 1;
  double best_total = 0;
  for (int64_t s = 0; s < steps; ++s) {
    const int64_t pos = position + s, n_kv = pos + 1;
    const bool use_long = rope.UseLong(pos);
    Timer t;
    const auto step_start = Clock::now();
    t.Start();
    BL_TRY(d.Embed(&id, 1, buf.x));
    t.Stop(kEmbed);
    for (size_t l = 0; l < W.layers.size(); ++l) {
      const DecoderLayerWeights& L = W.layers[l];
      float* k_new = kcache[l].data() + pos * kvd;
      float* v_new = vcache[l].data() + pos * kvd;
      kernels::RmsNorm(buf.x, L.input_norm.data, 1, h, eps, buf.xn);
      t.Stop(kNorm);
      kernels::MatMul(buf.xn, 1, L.q, BiasOrNull(L.q_bias), buf.q);
      kernels::MatMul(buf.xn, 1, L.k, BiasOrNull(L.k_bias), k_new);
      kernels::MatMul(buf.xn, 1, L.v, BiasOrNull(L.v_bias), v_new);
      t.Stop(kQkv);
      kernels::ApplyRope(buf.q, heads, hd, rope.rotary_dim(), rope.cos(pos, use_long), rope.sin(pos, use_long));
      kernels::ApplyRope(k_new, kv_heads, hd, rope.rotary_dim(), rope.cos(pos, use_long), rope.sin(pos, use_long));
      t.Stop(kRope);
      kernels::Attention(buf.q, 1, heads, kcache[l].data(), vcache[l].data(), n_kv, kv_heads, hd, pos, true, scale,
                         buf.scores, buf.attn);
      t.Stop(kAttention);
      kernels::MatMul(buf.attn, 1, L.o, BiasOrNull(L.o_bias), buf.xn);
      t.Stop(kO);
      for (int64_t i = 0; i < h; ++i) buf.x[i] += buf.xn[i];
      t.Stop(kResidual);
      kernels::RmsNorm(buf.x, L.post_attn_norm.data, 1, h, eps, buf.xn);
      t.Stop(kNorm);
      kernels::MatMul(buf.xn, 1, L.gate, BiasOrNull(L.gate_bias), buf.gate);
      kernels::MatMul(buf.xn, 1, L.up, BiasOrNull(L.up_bias), buf.up);
      t.Stop(kGateUp);
      kernels::GatedActivate(act, buf.gate, buf.up, inter);
      t.Stop(kActivation);
      kernels::MatMul(buf.gate, 1, L.down, BiasOrNull(L.down_bias), buf.xn);
      t.Stop(kDown);
      for (int64_t i = 0; i < h; ++i) buf.x[i] += buf.xn[i];
      t.Stop(kResidual);
    }
    kernels::RmsNorm(buf.x, W.final_norm.data, 1, h, eps, buf.xn);
    t.Stop(kFinalNorm);
    kernels::MatMul(buf.xn, 1, W.lm_head, nullptr, logits.data());
    t.Stop(kLmHead);
    id = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    t.Stop(kArgmax);
    const double total = std::chrono::duration<double, std::milli>(Clock::now() - step_start).count();
    if (s == 0 || total < best_total) {
      best_total = total;
      out.rows.clear();
      for (int op = 0; op < kOps; ++op) {
        ProfileRow r;
        r.op = kOpNames[op];
        r.ms_per_step = t.ms[op];
        r.calls_per_step = t.calls[op];
        out.rows.push_back(r);
      }
    }
  }
  out.step_ms = best_total;
  for (const DecoderLayerWeights& L : W.layers) {
    out.rows[kQkv].weight_bytes += Bytes(L.q) + Bytes(L.k) + Bytes(L.v);
    out.rows[kO].weight_bytes += Bytes(L.o);
    out.rows[kGateUp].weight_bytes += Bytes(L.gate) + Bytes(L.up);
    out.rows[kDown].weight_bytes += Bytes(L.down);
  }
  out.rows[kLmHead].weight_bytes = Bytes(W.lm_head);
  return out;
}

}  // namespace bitlens::bench
