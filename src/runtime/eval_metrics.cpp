// runtime/eval_metrics: see eval_metrics.h. Log-softmax with the max
// subtracted, in double, so identical rows give exactly zero divergence.
#include "runtime/eval_metrics.h"

#include <algorithm>
#include <cmath>

namespace bitlens {
namespace {

bool IsAsciiSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

// log sum_v exp(x_v).
double LogSumExp(const float* x, int64_t n) {
  const float m = *std::max_element(x, x + n);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += std::exp(static_cast<double>(x[i]) - m);
  return m + std::log(sum);
}

}  // namespace

std::string NormalizeAnswer(std::string_view text) {
  size_t b = 0, e = text.size();
  while (b < e && IsAsciiSpace(text[b])) ++b;
  while (e > b && IsAsciiSpace(text[e - 1])) --e;
  std::string out(text.substr(b, e - b));
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

double TokenNll(const float* logits, int64_t vocab, int32_t target) {
  return LogSumExp(logits, vocab) - static_cast<double>(logits[target]);
}

double KlDivergence(const float* ref_logits, const float* model_logits, int64_t vocab) {
  const double lse_ref = LogSumExp(ref_logits, vocab);
  const double lse_model = LogSumExp(model_logits, vocab);
  double kl = 0;
  for (int64_t v = 0; v < vocab; ++v) {
    const double log_p = ref_logits[v] - lse_ref;
    const double log_q = model_logits[v] - lse_model;
    kl += std::exp(log_p) * (log_p - log_q);
  }
  return kl;
}

}  // namespace bitlens
