// Mixed precision: the sensitivity metric equals ‖ΔW X‖² / ‖W X‖² computed
// from the inputs themselves, and the planner stays within the byte budget,
// leaves no upgrade that would still fit, prefers the sensitive tensors and
// matches a brute-force optimum on small instances.
#include <cmath>
#include <limits>
#include <random>

#include <gtest/gtest.h>

#include <filesystem>

#include "model/model.h"
#include "quant/calib_plan.h"
#include "quant/planner.h"
#include "quant/rtn.h"
#include "quant/sensitivity.h"
#include "test_paths.h"

namespace bitlens::quant {
namespace {

std::vector<const FormatInfo*> Candidates(std::initializer_list<const char*> names) {
  std::vector<const FormatInfo*> out;
  for (const char* n : names) {
    auto f = FindFormat(n);
    EXPECT_TRUE(f.ok()) << n;
    if (f.ok()) out.push_back(*f);
  }
  return out;
}

TEST(QuantSensitivity, RelativeErrorEqualsOutputErrorOnTheCalibrationInputs) {
  const int64_t n = 24, k = 128, rows = 200;
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> w(n * k), x(rows * k);
  for (float& v : w) v = 0.02f * nd(rng);
  for (int64_t t = 0; t < rows; ++t) {
    for (int64_t j = 0; j < k; ++j) x[t * k + j] = nd(rng) * (j % 16 == 0 ? 8.0f : 1.0f);  // outlier channels
  }
  LayerStats stats(k);
  ASSERT_TRUE(stats.Accumulate(x.data(), rows).ok());
  const auto cands = Candidates({"w2g64", "w4g32", "w8"});
  SensitivityOptions all_rows;
  all_rows.max_rows = 0;
  auto errs = RelativeOutputErrors(cands, w.data(), n, k, &stats, all_rows);
  ASSERT_TRUE(errs.ok()) << errs.status().message();
  for (size_t c = 0; c < cands.size(); ++c) {
    // Direct: quantize, then compare y = x Wᵀ with yq = x Wqᵀ.
    std::vector<uint8_t> packed(RowBytes(*cands[c], k) * n);
    ASSERT_TRUE(QuantizeRowsRef(*cands[c], w.data(), n, k, RangeSearch::kMseClip, packed).ok());
    std::vector<float> wq(n * k);
    ASSERT_TRUE(DequantizeRowsRef(*cands[c], packed, n, k, wq.data()).ok());
    double num = 0, den = 0;
    for (int64_t t = 0; t < rows; ++t) {
      for (int64_t o = 0; o < n; ++o) {
        double y = 0, yq = 0;
        for (int64_t j = 0; j < k; ++j) y += double(x[t * k + j]) * w[o * k + j], yq += double(x[t * k + j]) * wq[o * k + j];
        num += (yq - y) * (yq - y);
        den += y * y;
      }
    }
    const double direct = num / den;
    EXPECT_NEAR((*errs)[c], direct, 1e-4 * direct + 1e-9) << cands[c]->name;
  }
  EXPECT_GT((*errs)[0], (*errs)[1]);  // 2-bit worse than 4-bit worse than 8-bit
  EXPECT_GT((*errs)[1], (*errs)[2]);
  EXPECT_GT((*errs)[2], 0.0);
}

TEST(QuantPlanner, StaysWithinTheBudgetAndLeavesNoUpgradeThatFits) {
  const auto cands = Candidates({"w2g128", "w2g64", "w2g32", "w4g64", "w4g32", "w8"});
  std::mt19937 rng(3);
  std::uniform_real_distribution<double> u(0.5, 2.0);
  std::vector<PlanTensor> tensors;
  const double base[6] = {0.30, 0.22, 0.16, 0.020, 0.012, 0.0001};  // typical ladder of relative errors
  for (int i = 0; i < 40; ++i) {
    PlanTensor t;
    t.name = "t" + std::to_string(i);
    t.n = 64 * (1 + i % 5);
    t.k = 256 * (1 + i % 3);
    const double s = u(rng) * (i % 7 == 0 ? 20.0 : 1.0);  // a few sensitive tensors
    for (double b : base) t.error.push_back(b * s);
    tensors.push_back(t);
  }
  for (double bpw : {2.25, 2.5, 2.8, 3.0, 3.5, 4.2, 6.0, 9.0}) {
    SCOPED_TRACE("target bpw " + std::to_string(bpw));
    const uint64_t budget = BudgetForBpw(bpw, tensors);
    auto plan = PlanFormats(cands, tensors, budget);
    ASSERT_TRUE(plan.ok()) << plan.status().message();
    uint64_t bytes = 0;
    double err = 0;
    for (size_t t = 0; t < tensors.size(); ++t) {
      bytes += TensorBytes(*cands[plan->choice[t]], tensors[t].n, tensors[t].k);
      err += tensors[t].error[plan->choice[t]];
    }
    EXPECT_EQ(bytes, plan->bytes);
    EXPECT_NEAR(err, plan->error, 1e-12);
    EXPECT_LE(plan->bytes, budget) << "planned " << plan->bytes << " bytes for a budget of " << budget;
    EXPECT_LE(plan->bpw(), bpw);
    // Maximal: no single change to a lower-error format still fits.
    for (size_t t = 0; t < tensors.size(); ++t) {
      const uint64_t cur = TensorBytes(*cands[plan->choice[t]], tensors[t].n, tensors[t].k);
      for (size_t c = 0; c < cands.size(); ++c) {
        const uint64_t b = TensorBytes(*cands[c], tensors[t].n, tensors[t].k);
        if (tensors[t].error[c] < tensors[t].error[plan->choice[t]] && b > cur) {
          EXPECT_GT(plan->bytes + (b - cur), budget) << tensors[t].name << " could still move to " << cands[c]->name;
        }
      }
    }
  }
  // Below the cheapest plan: a clear error with the numbers.
  auto too_small = PlanFormats(cands, tensors, BudgetForBpw(2.0, tensors));
  ASSERT_FALSE(too_small.ok());
  EXPECT_EQ(too_small.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(too_small.status().message().find("below the smallest plan"), std::string::npos)
      << too_small.status().message();
}

TEST(QuantPlanner, SensitiveTensorsGetTheWiderFormatAndPinsHold) {
  const auto cands = Candidates({"w2g64", "w4g32"});
  std::vector<PlanTensor> tensors(4);
  for (int i = 0; i < 4; ++i) {
    tensors[i].name = "layer" + std::to_string(i);
    tensors[i].n = 128, tensors[i].k = 512;
    tensors[i].error = {0.2, 0.01};
  }
  tensors[2].error = {2.0, 0.05};  // the sensitive one
  const uint64_t narrow = TensorBytes(*cands[0], 128, 512), wide = TensorBytes(*cands[1], 128, 512);
  auto plan = PlanFormats(cands, tensors, 3 * narrow + wide);  // room for exactly one wide tensor
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  EXPECT_EQ(plan->choice, (std::vector<int>{0, 0, 1, 0}));
  EXPECT_EQ(plan->bytes, 3 * narrow + wide);

  tensors[0].pinned = 1;  // e.g. the projector, kept wide by default
  auto pinned = PlanFormats(cands, tensors, 2 * narrow + 2 * wide);
  ASSERT_TRUE(pinned.ok()) << pinned.status().message();
  EXPECT_EQ(pinned->choice, (std::vector<int>{1, 0, 1, 0}));
}

// Exhaustive search over every assignment of a small instance.
double BruteForce(const std::vector<const FormatInfo*>& cands, const std::vector<PlanTensor>& ts, uint64_t budget) {
  double best = std::numeric_limits<double>::infinity();
  std::vector<int> c(ts.size(), 0);
  for (;;) {
    uint64_t bytes = 0;
    double err = 0;
    for (size_t t = 0; t < ts.size(); ++t) bytes += TensorBytes(*cands[c[t]], ts[t].n, ts[t].k), err += ts[t].error[c[t]];
    if (bytes <= budget) best = std::min(best, err);
    size_t i = 0;
    while (i < ts.size() && ++c[i] == static_cast<int>(cands.size())) c[i++] = 0;
    if (i == ts.size()) break;
  }
  return best;
}

TEST(QuantPlanner, MatchesTheBruteForceOptimumOnSmallInstances) {
  const auto cands = Candidates({"w2g128", "w2g64", "w4g64", "w8"});
  std::mt19937 rng(11);
  std::uniform_real_distribution<double> u(0.2, 5.0);
  double worst_ratio = 1.0;
  for (int trial = 0; trial < 30; ++trial) {
    std::vector<PlanTensor> ts(6);
    for (size_t t = 0; t < ts.size(); ++t) {
      ts[t].name = "t" + std::to_string(t);
      ts[t].n = 64 * (1 + (rng() % 4));
      ts[t].k = 128 * (1 + (rng() % 3));
      const double s = u(rng);
      ts[t].error = {0.3 * s, 0.2 * s, 0.015 * s, 0.0002 * s};
    }
    const uint64_t budget = BudgetForBpw(2.3 + 0.2 * (trial % 15), ts);
    auto plan = PlanFormats(cands, ts, budget);
    ASSERT_TRUE(plan.ok()) << plan.status().message();
    const double opt = BruteForce(cands, ts, budget);
    ASSERT_LE(plan->bytes, budget);
    EXPECT_GE(plan->error, opt - 1e-12);
    worst_ratio = std::max(worst_ratio, plan->error / opt);
  }
  // Small budgets fit in the DP's 65536 units of the byte steps' gcd: exact.
  std::printf("planner error / brute-force optimum, worst of 30: %.6f\n", worst_ratio);
  EXPECT_LT(worst_ratio, 1.0 + 1e-9);
}

}  // namespace
}  // namespace bitlens::quant

namespace bitlens::quant {
namespace {

TEST(QuantCalibPlan, SensitivityWalkAndAllocationOnATinyModel) {
  const std::string dir = testing::ScratchDir() + "-work/llama";
  std::filesystem::remove_all(dir);
  auto synth = testing::RunCli("synth --family llama --preset tiny -o " + dir);
  ASSERT_EQ(synth.exit_code, 0) << synth.err;
  auto model = LoadModel(dir);
  ASSERT_TRUE(model.ok()) << model.status().message();
  std::vector<CalibSample> samples(4);
  for (int i = 0; i < 4; ++i) samples[i].prompt = "sample number " + std::to_string(i) + " with some words in it";
  auto cands = ParsePlanCandidates("w2g64,w4g32,w8");
  ASSERT_TRUE(cands.ok()) << cands.status().message();
  auto table = MeasureSensitivity(**model, samples, CalibOptions{}, *cands,
                                  [](const std::string& name) { return name.find("o_proj") == std::string::npos; });
  ASSERT_TRUE(table.ok()) << table.status().message();
  const size_t layers = static_cast<size_t>((*model)->config.text.num_hidden_layers);
  ASSERT_EQ(table->tensors.size(), 6 * layers);  // q, k, v, gate, up, down (o_proj excluded)
  for (const PlanTensor& t : table->tensors) {
    EXPECT_EQ(t.name.find("o_proj"), std::string::npos);
    ASSERT_EQ(t.error.size(), 3u);
    EXPECT_GT(t.error[0], t.error[1]) << t.name;
    EXPECT_GT(t.error[1], t.error[2]) << t.name;
  }
  const uint64_t budget = BudgetForBpw(3.5, table->tensors);
  auto plan = AllocateFormats(*table, budget);
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  EXPECT_LE(plan->plan.bytes, budget);
  EXPECT_GT(plan->plan.bpw(), 2.5);  // the budget is used, not just the narrowest format everywhere
  ASSERT_EQ(plan->formats.size(), table->tensors.size());
  EXPECT_EQ(plan->sensitivity.at(table->tensors[0].name), table->tensors[0].error[0]);

  auto bad = ParsePlanCandidates("w2g64,f16");
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("f16 is a passthrough format"), std::string::npos) << bad.status().message();
}

}  // namespace
}  // namespace bitlens::quant
