// quant/planner: multiple-choice knapsack over formats, solved by dynamic
// programming over the byte budget in coarse units, then an exact fill of the
// leftover bytes.
#include "quant/planner.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <cstdio>
#include <limits>

namespace bitlens::quant {
namespace {

std::string Gib(uint64_t bytes) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%llu bytes (%.3f GiB)", static_cast<unsigned long long>(bytes),
                static_cast<double>(bytes) / (1024.0 * 1024.0 * 1024.0));
  return buf;
}

// Candidate indices of one tensor that no other candidate beats on both
// bytes and error (its Pareto front), by increasing bytes and decreasing error.
std::vector<int> ParetoFront(const std::vector<uint64_t>& bytes, const std::vector<double>& error) {
  std::vector<int> order;
  for (size_t c = 0; c < bytes.size(); ++c) {
    if (std::isfinite(error[c])) order.push_back(static_cast<int>(c));
  }
  std::sort(order.begin(), order.end(), [&](int a, int b) {
    return bytes[a] != bytes[b] ? bytes[a] < bytes[b] : error[a] < error[b];
  });
  std::vector<int> front;
  for (int c : order) {
    if (!front.empty() && error[c] >= error[front.back()]) continue;  // more bytes, no less error
    front.push_back(c);
  }
  return front;
}

}  // namespace

uint64_t TensorBytes(const FormatInfo& f, int64_t n, int64_t k) {
  return static_cast<uint64_t>(n) * static_cast<uint64_t>(RowBytes(f, k));
}

uint64_t BudgetForBpw(double bpw, const std::vector<PlanTensor>& tensors) {
  double weights = 0;
  for (const PlanTensor& t : tensors) weights += double(t.n) * double(t.k);
  return static_cast<uint64_t>(std::floor(bpw * weights / 8.0));
}

double Plan::bpw() const { return weights > 0 ? double(bytes) * 8.0 / double(weights) : 0.0; }

Result<Plan> PlanFormats(std::span<const FormatInfo* const> candidates, const std::vector<PlanTensor>& tensors,
                         uint64_t budget_bytes) {
  const size_t nc = candidates.size();
  if (nc == 0) return InvalidArgument("planner: no candidate formats");
  Plan plan;
  plan.budget_bytes = budget_bytes;
  plan.choice.assign(tensors.size(), -1);
  std::vector<std::vector<uint64_t>> bytes(tensors.size());
  std::vector<std::vector<int>> fronts(tensors.size());
  for (size_t t = 0; t < tensors.size(); ++t) {
    const PlanTensor& T = tensors[t];
    if (T.error.size() != nc) {
      return InvalidArgument("planner: " + T.name + " has " + std::to_string(T.error.size()) + " errors for " +
                             std::to_string(nc) + " candidate formats");
    }
    plan.weights += T.n * T.k;
    for (size_t c = 0; c < nc; ++c) {
      bytes[t].push_back(CheckRowLength(*candidates[c], T.k).ok() ? TensorBytes(*candidates[c], T.n, T.k) : 0);
    }
    if (T.pinned >= 0) {
      if (static_cast<size_t>(T.pinned) >= nc) return InvalidArgument("planner: " + T.name + " is pinned to no candidate");
      plan.choice[t] = T.pinned;
      continue;
    }
    std::vector<double> err = T.error;
    for (size_t c = 0; c < nc; ++c) {
      if (!CheckRowLength(*candidates[c], T.k).ok()) err[c] = std::numeric_limits<double>::infinity();
    }
    fronts[t] = ParetoFront(bytes[t], err);
    if (fronts[t].empty()) return InvalidArgument("planner: no candidate format can hold " + T.name);
    plan.choice[t] = fronts[t][0];
  }
  for (size_t t = 0; t < tensors.size(); ++t) plan.bytes += bytes[t][static_cast<size_t>(plan.choice[t])];
  if (plan.bytes > budget_bytes) {
    return InvalidArgument("the size target " + Gib(budget_bytes) + " is below the smallest plan, " + Gib(plan.bytes) +
                           " (every tensor at its cheapest candidate format, pinned ones as pinned)");
  }

  // Multiple-choice knapsack by dynamic programming over the free bytes in
  // units of `unit` bytes (≤ kBuckets units): each tensor's extra bytes over
  // its cheapest format are rounded UP to whole units, so a DP solution never
  // exceeds the budget; the rounding loses at most one unit per tensor, which
  // the exact fill below wins back.
  constexpr uint64_t kBuckets = 1 << 16;
  const uint64_t free_bytes = budget_bytes - plan.bytes;
  uint64_t g = 0;
  for (size_t t = 0; t < tensors.size(); ++t) {
    for (int c : fronts[t]) g = std::gcd(g, bytes[t][c] - bytes[t][fronts[t][0]]);
  }
  if (g == 0) g = 1;
  const uint64_t unit = g * std::max<uint64_t>(1, (free_bytes / g + kBuckets - 1) / kBuckets);
  const size_t cap = static_cast<size_t>(free_bytes / unit);
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<double> best(cap + 1, 0.0), next(cap + 1);
  std::vector<std::vector<uint8_t>> pick;  // per free tensor: hull position chosen at each capacity
  std::vector<size_t> free_tensors;
  for (size_t t = 0; t < tensors.size(); ++t) {
    if (tensors[t].pinned < 0) free_tensors.push_back(t);
  }
  pick.reserve(free_tensors.size());
  for (size_t t : free_tensors) {
    const std::vector<int>& h = fronts[t];
    std::vector<uint8_t> p(cap + 1, 0);
    for (size_t w = 0; w <= cap; ++w) {
      double b = inf;
      for (size_t i = 0; i < h.size() && i < 256; ++i) {
        const uint64_t cost = (bytes[t][h[i]] - bytes[t][h[0]] + unit - 1) / unit;
        if (cost > w) break;  // the front is sorted by bytes
        const double e = best[w - cost] + tensors[t].error[h[i]];
        if (e < b) b = e, p[w] = static_cast<uint8_t>(i);
      }
      next[w] = b;
    }
    best.swap(next);
    pick.push_back(std::move(p));
  }
  size_t w = cap;
  for (size_t i = free_tensors.size(); i-- > 0;) {
    const size_t t = free_tensors[i];
    const std::vector<int>& h = fronts[t];
    const size_t at = pick[i][w];
    plan.choice[t] = h[at];
    plan.bytes += bytes[t][h[at]] - bytes[t][h[0]];
    w -= static_cast<size_t>((bytes[t][h[at]] - bytes[t][h[0]] + unit - 1) / unit);
  }
  // Fill: any single upgrade (on or off the hull) that fits, largest error drop first.
  for (;;) {
    double best_gain = 0;
    size_t best_t = 0;
    int best_c = -1;
    for (size_t t = 0; t < tensors.size(); ++t) {
      if (tensors[t].pinned >= 0) continue;
      const int cur = plan.choice[t];
      for (size_t c = 0; c < nc; ++c) {
        const double e = tensors[t].error[c];
        if (!std::isfinite(e) || bytes[t][c] == 0 || bytes[t][c] <= bytes[t][cur]) continue;
        if (plan.bytes + (bytes[t][c] - bytes[t][cur]) > budget_bytes) continue;
        const double gain = tensors[t].error[cur] - e;
        if (gain > best_gain) best_gain = gain, best_t = t, best_c = static_cast<int>(c);
      }
    }
    if (best_c < 0) break;
    plan.bytes += bytes[best_t][best_c] - bytes[best_t][plan.choice[best_t]];
    plan.choice[best_t] = best_c;
  }
  for (size_t t = 0; t < tensors.size(); ++t) plan.error += tensors[t].error[static_cast<size_t>(plan.choice[t])];
  return plan;
}

}  // namespace bitlens::quant
