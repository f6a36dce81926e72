// runtime/sampler: RepetitionPenalty -> Temperature -> TopK -> TopP -> draw,
// the order of transformers' logits processors.
#include "runtime/sampler.h"

#include <algorithm>
#include <cmath>

namespace bitlens {

int32_t Argmax(const float* logits, int64_t n) {
  int64_t best = 0;
  for (int64_t i = 1; i < n; ++i) {
    if (logits[i] > logits[best]) best = i;
  }
  return static_cast<int32_t>(best);
}

Sampler::Sampler(int64_t vocab_size, const SamplerOptions& options)
    : vocab_(vocab_size), options_(options), rng_(options.seed), candidates_(vocab_size), probs_(vocab_size),
      seen_(vocab_size, 0) {}

void Sampler::ApplyRepetitionPenalty(float* logits, const int32_t* history, int64_t history_len) {
  const float r = options_.repeat_penalty;
  if (r == 1.0f) return;
  for (int64_t i = 0; i < history_len; ++i) {
    const int32_t id = history[i];
    if (id < 0 || id >= vocab_ || seen_[id]) continue;
    seen_[id] = 1;
    logits[id] = logits[id] < 0 ? logits[id] * r : logits[id] / r;
  }
  for (int64_t i = 0; i < history_len; ++i) {
    if (history[i] >= 0 && history[i] < vocab_) seen_[history[i]] = 0;
  }
}

int64_t Sampler::Filter(const float* logits) {
  const float inv_t = options_.temperature > 0 ? 1.0f / options_.temperature : 1.0f;
  int64_t n = vocab_;
  for (int64_t i = 0; i < n; ++i) candidates_[i] = static_cast<int32_t>(i);
  auto more_likely = [logits](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); };
  if (options_.top_k > 0 && options_.top_k < n) {
    // Keep every token whose logit reaches the k-th largest (ties stay, as HF's TopK).
    std::nth_element(candidates_.begin(), candidates_.begin() + (options_.top_k - 1), candidates_.begin() + n, more_likely);
    const float kth = logits[candidates_[options_.top_k - 1]];
    int64_t kept = 0;
    for (int64_t i = 0; i < vocab_; ++i) {
      if (logits[i] >= kth) candidates_[kept++] = static_cast<int32_t>(i);
    }
    n = kept;
  }
  std::sort(candidates_.begin(), candidates_.begin() + n, more_likely);
  // Softmax of logits / temperature over the survivors.
  const double max_logit = static_cast<double>(logits[candidates_[0]]) * inv_t;
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    probs_[i] = std::exp(static_cast<double>(logits[candidates_[i]]) * inv_t - max_logit);
    sum += probs_[i];
  }
  for (int64_t i = 0; i < n; ++i) probs_[i] /= sum;
  if (options_.top_p < 1.0f) {
    // HF TopP: drop a token when the tokens more likely than it already hold >= top_p; keep at least one.
    double before = 0;
    int64_t kept = 0;
    while (kept < n && (kept == 0 || before < options_.top_p)) before += probs_[kept++];
    n = kept;
    for (int64_t i = 0; i < n; ++i) probs_[i] /= before;
  }
  return n;
}

int32_t Sampler::Sample(float* logits, const int32_t* history, int64_t history_len) {
  ApplyRepetitionPenalty(logits, history, history_len);
  if (options_.temperature <= 0) return Argmax(logits, vocab_);
  const int64_t n = Filter(logits);
  const double u = static_cast<double>(rng_() >> 11) * 0x1.0p-53;  // [0, 1)
  double cumulative = 0;
  for (int64_t i = 0; i < n; ++i) {
    cumulative += probs_[i];
    if (u < cumulative) return candidates_[i];
  }
  return candidates_[n - 1];
}

}  // namespace bitlens
