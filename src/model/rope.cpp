// model/rope: tables computed in float32 in the same order of operations as
// transformers' rope init functions, so positions far from 0 still agree.
#include "model/rope.h"

#include <cmath>

namespace bitlens {
namespace {

constexpr float kPi = 3.14159265358979323846f;

// base ** (2i / dim) in float32, as torch evaluates `base ** arange(0, dim, 2).float() / dim`.
float BasePower(double base, int64_t i, int64_t dim) {
  const float exponent = static_cast<float>(2 * i) / static_cast<float>(dim);
  return std::pow(static_cast<float>(base), exponent);
}

}  // namespace

int64_t RotaryDim(const TextConfig& config) {
  return static_cast<int64_t>(static_cast<double>(config.head_dim) * config.partial_rotary_factor);
}

float RopeAttentionScaling(const TextConfig& config) {
  const RopeConfig& r = config.rope;
  if (r.type != "longrope") return 1.0f;
  if (r.attention_factor) return static_cast<float>(*r.attention_factor);
  // transformers: factor defaults to max_position_embeddings / original_max_position_embeddings.
  const double original = static_cast<double>(r.original_max_position_embeddings);
  const double factor = r.factor_given ? r.factor : static_cast<double>(config.max_position_embeddings) / original;
  if (factor <= 1.0) return 1.0f;
  return static_cast<float>(std::sqrt(1.0 + std::log(factor) / std::log(original)));
}

std::vector<float> RopeInverseFrequencies(const TextConfig& config, bool use_long_factor) {
  const RopeConfig& r = config.rope;
  const int64_t dim = RotaryDim(config);
  const int64_t half = dim / 2;
  std::vector<float> inv(half);
  for (int64_t i = 0; i < half; ++i) {
    if (r.type == "longrope") {
      const std::vector<double>& ext = use_long_factor ? r.long_factor : r.short_factor;
      const float e = i < static_cast<int64_t>(ext.size()) ? static_cast<float>(ext[i]) : 1.0f;
      inv[i] = 1.0f / (e * BasePower(r.theta, i, dim));
    } else {
      inv[i] = 1.0f / BasePower(r.theta, i, dim);
    }
  }
  if (r.type == "linear") {
    for (float& f : inv) f /= static_cast<float>(r.factor);
  } else if (r.type == "llama3") {
    // Llama 3.1: keep high frequencies, divide low ones by `factor`, blend in between.
    const float factor = static_cast<float>(r.factor);
    const float low = static_cast<float>(r.low_freq_factor), high = static_cast<float>(r.high_freq_factor);
    const float old_context = static_cast<float>(r.original_max_position_embeddings);
    const float low_freq_wavelen = old_context / low, high_freq_wavelen = old_context / high;
    for (float& f : inv) {
      const float wavelen = 2.0f * kPi / f;
      const float scaled = wavelen > low_freq_wavelen ? f / factor : f;
      if (!(wavelen < high_freq_wavelen) && !(wavelen > low_freq_wavelen)) {
        const float smooth = (old_context / wavelen - low) / (high - low);
        f = (1.0f - smooth) * scaled / factor + smooth * scaled;
      } else {
        f = scaled;
      }
    }
  }
  return inv;
}

Result<RopeTable> RopeTable::Build(const TextConfig& config, int64_t max_positions) {
  RopeTable t;
  t.rotary_dim_ = RotaryDim(config);
  if (t.rotary_dim_ <= 0 || t.rotary_dim_ % 2 != 0 || t.rotary_dim_ > config.head_dim) {
    return InvalidArgument("config.json: rotary dim " + std::to_string(t.rotary_dim_) +
                           " (head_dim * partial_rotary_factor) must be even and in (0, head_dim]");
  }
  if (config.rope.type == "llama3" && config.rope.original_max_position_embeddings <= 0) {
    return InvalidArgument("config.json: llama3 rope needs original_max_position_embeddings");
  }
  const bool longrope = config.rope.type == "longrope";
  if (longrope && config.rope.original_max_position_embeddings <= 0) {
    return InvalidArgument("config.json: longrope needs original_max_position_embeddings");
  }
  t.max_positions_ = max_positions;
  t.long_threshold_ = longrope ? config.rope.original_max_position_embeddings : -1;
  const float scaling = RopeAttentionScaling(config);
  const int64_t half = t.rotary_dim_ / 2;
  auto fill = [&](bool use_long, std::vector<float>* c, std::vector<float>* s) {
    const std::vector<float> inv = RopeInverseFrequencies(config, use_long);
    c->resize(max_positions * half);
    s->resize(max_positions * half);
    for (int64_t p = 0; p < max_positions; ++p) {
      for (int64_t i = 0; i < half; ++i) {
        const float angle = static_cast<float>(p) * inv[i];
        (*c)[p * half + i] = std::cos(angle) * scaling;
        (*s)[p * half + i] = std::sin(angle) * scaling;
      }
    }
  };
  fill(false, &t.cos_, &t.sin_);
  // The long set is only reachable when the table extends past the threshold.
  if (longrope && max_positions > t.long_threshold_) fill(true, &t.cos_long_, &t.sin_long_);
  return t;
}

bool RopeTable::UseLong(int64_t last_position) const {
  return long_threshold_ >= 0 && last_position + 1 > long_threshold_;
}

}  // namespace bitlens
