// runtime/eval_metrics: the per-position arithmetic of `bitlens eval` —
// answer normalization for exact match, token negative log-likelihood, and
// KL divergence / top-1 agreement between two next-token distributions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace bitlens {

// Exact match compares answers after trimming ASCII whitespace at both ends
// and lowercasing ASCII letters; nothing else (punctuation, inner spaces and
// non-ASCII letters count).
std::string NormalizeAnswer(std::string_view text);

// -log softmax(logits)[target] for one row logits [vocab], in double.
double TokenNll(const float* logits, int64_t vocab, int32_t target);

// KL(P_ref || P_model) = sum_v p_ref(v) (log p_ref(v) - log p_model(v)) of the
// softmax of two rows [vocab], in nats, computed in double (>= 0 up to rounding).
double KlDivergence(const float* ref_logits, const float* model_logits, int64_t vocab);

}  // namespace bitlens
