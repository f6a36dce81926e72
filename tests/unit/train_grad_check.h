// Finite-difference gradient check shared by the train/ tests: compares an
// analytic gradient with central differences of a scalar loss.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

namespace bitlens::testing {

// Loss = Σ_i probe[i] · out[i] of an op's output is the usual scalar to
// differentiate: its gradient w.r.t. the output is `probe` itself.
inline std::vector<float> RandomVector(size_t n, uint64_t seed, float scale = 1.0f) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

inline double Dot(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += static_cast<double>(a[i]) * b[i];
  return s;
}

// Checks analytic[i] against (loss(x + h e_i) − loss(x − h e_i)) / 2h for up to
// max_checks indices of x (all when x is small, else an even stride). loss()
// must read x by reference. Failure prints the worst element. The bound is
// |analytic − numeric| <= atol + rtol · max(|analytic|, |numeric|).
inline void ExpectGradientMatches(const std::string& what, std::vector<float>& x,
                                  const std::vector<float>& analytic, const std::function<double()>& loss,
                                  double h = 1e-2, double rtol = 2e-2, double atol = 2e-3,
                                  size_t max_checks = 64) {
  ASSERT_EQ(x.size(), analytic.size()) << what;
  const size_t stride = std::max<size_t>(1, x.size() / max_checks);
  double worst = -1e300;  // largest excess over the bound seen so far
  size_t worst_i = 0;
  double worst_a = 0, worst_n = 0;
  for (size_t i = 0; i < x.size(); i += stride) {
    const float saved = x[i];
    x[i] = static_cast<float>(saved + h);
    const double up = loss();
    x[i] = static_cast<float>(saved - h);
    const double down = loss();
    x[i] = saved;
    const double numeric = (up - down) / (2 * h);
    const double a = analytic[i];
    const double excess = std::abs(a - numeric) - (atol + rtol * std::max(std::abs(a), std::abs(numeric)));
    if (excess > worst) {
      worst = excess;
      worst_i = i;
      worst_a = a;
      worst_n = numeric;
    }
  }
  EXPECT_LE(worst, 0.0) << what << ": gradient mismatch at index " << worst_i << ": analytic " << worst_a
                        << ", finite difference " << worst_n << " (h " << h << ", rtol " << rtol << ", atol "
                        << atol << ")";
}

}  // namespace bitlens::testing
