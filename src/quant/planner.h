// quant/planner: mixed-precision bit allocation. Given each tensor's relative
// output error under every candidate format (quant/sensitivity), picks one
// format per tensor so that the bytes written stay within a budget
// (--target-bpw / --target-size) and the summed error is as low as it can get.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "base/status.h"
#include "quant/formats.h"

namespace bitlens::quant {

struct PlanTensor {
  std::string name;
  int64_t n = 0, k = 0;        // [n, k]
  std::vector<double> error;   // per candidate; +inf = the format is not allowed for this tensor
  int pinned = -1;             // candidate index forced (e.g. the projector kept wide); -1 = free
};

struct Plan {
  std::vector<int> choice;     // candidate index per tensor
  uint64_t bytes = 0;          // Σ n · RowBytes(format, k)
  uint64_t budget_bytes = 0;
  double error = 0;            // Σ error of the chosen candidates
  double bpw() const;          // bytes · 8 / Σ n·k of the planned tensors
  int64_t weights = 0;         // Σ n·k
};

// Bytes tensor `t` takes in candidate format `f`.
uint64_t TensorBytes(const FormatInfo& f, int64_t n, int64_t k);
// The byte budget of `bpw` bits per weight over `tensors` (rounded down).
uint64_t BudgetForBpw(double bpw, const std::vector<PlanTensor>& tensors);

// Minimizes Σ error subject to Σ bytes ≤ budget_bytes (a multiple-choice
// knapsack): dynamic programming over the bytes left after every tensor's
// cheapest format, in units of ⌈free / 65536⌉ bytes (multiples of the gcd of
// the byte steps, so small instances are exact) with costs rounded up, then
// single upgrades that fit the leftover bytes, largest error drop first.
// The result never exceeds the budget, and no further single upgrade fits.
// InvalidArgument (with the numbers) when even the cheapest choice does not fit.
Result<Plan> PlanFormats(std::span<const FormatInfo* const> candidates, const std::vector<PlanTensor>& tensors,
                         uint64_t budget_bytes);

}  // namespace bitlens::quant
