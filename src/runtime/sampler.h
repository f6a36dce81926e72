// runtime/sampler: picks the next token from logits — greedy, or
// temperature + top-k + top-p sampling in the order transformers' generate
// applies them, after a repetition penalty — deterministically for a seed.
// All scratch is allocated at construction; Sample allocates nothing.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

namespace bitlens {

struct SamplerOptions {
  float temperature = 0.0f;     // 0 = greedy (argmax)
  int32_t top_k = 0;            // 0 = off
  float top_p = 1.0f;           // 1 = off
  float repeat_penalty = 1.0f;  // 1 = off; as HF: logit < 0 ? logit * r : logit / r
  uint64_t seed = 0;
};

class Sampler {
 public:
  Sampler(int64_t vocab_size, const SamplerOptions& options);

  // The next token from logits [vocab] (modified in place by the penalty).
  // `history` holds the ids seen so far (prompt and generated); the penalty
  // applies once to each distinct id in it.
  int32_t Sample(float* logits, const int32_t* history, int64_t history_len);

  // Steps of Sample, public for tests.
  void ApplyRepetitionPenalty(float* logits, const int32_t* history, int64_t history_len);
  // Tokens that survive temperature, top-k and top-p, most likely first, and
  // their renormalized probabilities; returns how many.
  int64_t Filter(const float* logits);
  const int32_t* candidates() const { return candidates_.data(); }
  const double* probabilities() const { return probs_.data(); }

  const SamplerOptions& options() const { return options_; }

 private:
  int64_t vocab_;
  SamplerOptions options_;
  std::mt19937_64 rng_;
  std::vector<int32_t> candidates_;
  std::vector<double> probs_;
  std::vector<uint8_t> seen_;
};

// Index of the largest logit (the first one on ties, as torch.argmax).
int32_t Argmax(const float* logits, int64_t n);

}  // namespace bitlens
