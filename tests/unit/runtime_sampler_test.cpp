// Sampler: greedy argmax, top-k / top-p masks as transformers' warpers keep
// them, temperature, repetition penalty, and determinism for a seed.
#include <cmath>
#include <vector>

#include <gtest/gtest.h>

#include "runtime/sampler.h"

namespace bitlens {
namespace {

std::vector<int32_t> Kept(Sampler& s, const std::vector<float>& logits) {
  const int64_t n = s.Filter(logits.data());
  std::vector<int32_t> ids(s.candidates(), s.candidates() + n);
  std::sort(ids.begin(), ids.end());
  return ids;
}

TEST(Sampler, GreedyIsArgmaxWithTheFirstIndexOnTies) {
  const std::vector<float> logits = {0.5f, 3.0f, -1.0f, 3.0f};
  EXPECT_EQ(Argmax(logits.data(), 4), 1);
  Sampler s(4, SamplerOptions{});
  std::vector<float> copy = logits;
  EXPECT_EQ(s.Sample(copy.data(), nullptr, 0), 1);
}

TEST(Sampler, TopKKeepsTheKLargestAndTheirTies) {
  SamplerOptions o;
  o.temperature = 1.0f;
  o.top_k = 2;
  Sampler s(5, o);
  EXPECT_EQ(Kept(s, {1, 5, 3, 4, 2}), (std::vector<int32_t>{1, 3}));
  SamplerOptions tie = o;
  tie.top_k = 1;
  Sampler t(4, tie);
  EXPECT_EQ(Kept(t, {1, 5, 5, 4}), (std::vector<int32_t>{1, 2}));
}

TEST(Sampler, TopPKeepsTheSmallestSetReachingP) {
  // Probabilities 0.5, 0.3, 0.15, 0.05. HF's TopP (p=0.75) drops tokens whose
  // ascending cumulative mass is <= 0.25: ids 3 and 2.
  const std::vector<float> logits = {std::log(0.5f), std::log(0.3f), std::log(0.15f), std::log(0.05f)};
  SamplerOptions o;
  o.temperature = 1.0f;
  o.top_p = 0.75f;
  Sampler s(4, o);
  EXPECT_EQ(Kept(s, logits), (std::vector<int32_t>{0, 1}));
  EXPECT_NEAR(s.probabilities()[0], 0.5 / 0.8, 1e-6);
  EXPECT_NEAR(s.probabilities()[1], 0.3 / 0.8, 1e-6);
  o.top_p = 0.85f;
  Sampler s2(4, o);
  EXPECT_EQ(Kept(s2, logits), (std::vector<int32_t>{0, 1, 2}));
  o.top_p = 0.1f;  // at least one token survives
  Sampler s3(4, o);
  EXPECT_EQ(Kept(s3, logits), (std::vector<int32_t>{0}));
}

TEST(Sampler, TemperatureSharpensTheDistribution) {
  SamplerOptions o;
  o.temperature = 0.5f;
  Sampler s(2, o);
  const std::vector<float> logits = {0.0f, std::log(2.0f)};
  ASSERT_EQ(s.Filter(logits.data()), 2);
  // exp(2 * logit): 1 and 4.
  EXPECT_EQ(s.candidates()[0], 1);
  EXPECT_NEAR(s.probabilities()[0], 0.8, 1e-6);
  EXPECT_NEAR(s.probabilities()[1], 0.2, 1e-6);
}

TEST(Sampler, RepetitionPenaltyAppliesOncePerDistinctId) {
  SamplerOptions o;
  o.repeat_penalty = 2.0f;
  Sampler s(4, o);
  std::vector<float> logits = {2.0f, -2.0f, 1.0f, 3.0f};
  const std::vector<int32_t> history = {0, 1, 0, 0};
  s.ApplyRepetitionPenalty(logits.data(), history.data(), history.size());
  EXPECT_EQ(logits, (std::vector<float>{1.0f, -4.0f, 1.0f, 3.0f}));
  // Greedy after the penalty: id 3 stays best; penalizing 3 hands it to 2 (first of the 1.0 tie is 0).
  std::vector<float> again = {2.0f, -2.0f, 1.5f, 3.0f};
  const std::vector<int32_t> h3 = {3};
  EXPECT_EQ(s.Sample(again.data(), h3.data(), 1), 0);
}

std::vector<int32_t> Draws(uint64_t seed, int n) {
  SamplerOptions o;
  o.temperature = 1.0f;
  o.seed = seed;
  Sampler s(8, o);
  std::vector<int32_t> out;
  for (int i = 0; i < n; ++i) {
    std::vector<float> logits = {0, 0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f, 0.7f};
    out.push_back(s.Sample(logits.data(), nullptr, 0));
  }
  return out;
}

TEST(Sampler, SameSeedSameTokensOtherSeedOtherTokens) {
  EXPECT_EQ(Draws(42, 64), Draws(42, 64));
  EXPECT_NE(Draws(42, 64), Draws(43, 64));
}

TEST(Sampler, DrawsFollowTheProbabilities) {
  SamplerOptions o;
  o.temperature = 1.0f;
  o.seed = 7;
  Sampler s(2, o);
  int ones = 0;
  const int n = 20000;
  for (int i = 0; i < n; ++i) {
    std::vector<float> logits = {0.0f, std::log(3.0f)};  // p(1) = 0.75
    ones += s.Sample(logits.data(), nullptr, 0);
  }
  EXPECT_NEAR(static_cast<double>(ones) / n, 0.75, 0.02) << ones << " of " << n;
}

}  // namespace
}  // namespace bitlens
