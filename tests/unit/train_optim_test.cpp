// Tests of train/optim: AdamW against hand-computed and reference updates,
// convergence on a quadratic, the warmup + cosine schedule, and global
// gradient-norm clipping; frozen parameters stay untouched throughout.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "train/optim.h"
#include "train/param.h"
#include "train_grad_check.h"

namespace bitlens {
namespace {

using train::AdamW;
using train::AdamWConfig;
using train::Param;
using train::ParamSet;

// A weight (decayed), a bias (not decayed) and a frozen tensor.
struct ThreeParams {
  ParamSet set;
  Param* w;
  Param* b;
  Param* frozen;
  ThreeParams() {
    w = &set.Add("w", {3});
    b = &set.Add("b", {1}, /*decay=*/false);
    frozen = &set.Add("frozen", {2});
    frozen->trainable = false;
    w->value = {1.0f, -2.0f, 0.5f};
    b->value = {0.3f};
    frozen->value = {4.0f, -4.0f};
  }
};

TEST(TrainAdamW, FirstStepEqualsHandComputedUpdate) {
  ThreeParams p;
  p.w->grad = {0.1f, -0.3f, 2.0f};
  p.b->grad = {-0.5f};
  p.frozen->grad = {1.0f, 1.0f};
  AdamW opt(p.set, AdamWConfig{0.9f, 0.95f, 1e-8f, 0.1f});
  opt.Step(p.set, 0.01f);
  EXPECT_EQ(opt.step(), 1);
  // Step 1: m = 0.1 g, v = 0.05 g², so m / (1 − 0.9) = g and √(v / (1 − 0.95)) = |g|:
  // the Adam step is lr · g / (|g| + ε) = ±0.01 (to 1e-7 relative). Decay first scales
  // the weight by 1 − lr · wd = 0.999; the bias is not decayed.
  const float expected_w[3] = {1.0f * 0.999f - 0.01f, -2.0f * 0.999f + 0.01f, 0.5f * 0.999f - 0.01f};
  for (int i = 0; i < 3; ++i) EXPECT_NEAR(p.w->value[i], expected_w[i], 1e-6f) << "w[" << i << "]";
  EXPECT_NEAR(p.b->value[0], 0.3f + 0.01f, 1e-6f);
  EXPECT_EQ(p.frozen->value, (std::vector<float>{4.0f, -4.0f}));
  EXPECT_EQ(p.frozen->grad, (std::vector<float>{1.0f, 1.0f}));
  EXPECT_TRUE(opt.m()[2].empty() && opt.v()[2].empty());
  // Moments after one step: m = (1 − β1) g, v = (1 − β2) g².
  EXPECT_NEAR(opt.m()[0][2], 0.1f * 2.0f, 1e-7f);
  EXPECT_NEAR(opt.v()[0][2], 0.05f * 4.0f, 1e-7f);
  // Step() leaves gradients alone.
  EXPECT_EQ(p.w->grad, (std::vector<float>{0.1f, -0.3f, 2.0f}));
}

// AdamW in double, written the textbook way (bias-corrected m̂, v̂).
struct ReferenceAdamW {
  AdamWConfig c;
  std::vector<double> m, v;
  int64_t t = 0;
  void Step(std::vector<double>& p, const std::vector<float>& g, double lr, bool decay) {
    ++t;
    m.resize(p.size(), 0.0);
    v.resize(p.size(), 0.0);
    for (size_t i = 0; i < p.size(); ++i) {
      m[i] = c.beta1 * m[i] + (1.0 - c.beta1) * g[i];
      v[i] = c.beta2 * v[i] + (1.0 - c.beta2) * static_cast<double>(g[i]) * g[i];
      const double m_hat = m[i] / (1.0 - std::pow(static_cast<double>(c.beta1), static_cast<double>(t)));
      const double v_hat = v[i] / (1.0 - std::pow(static_cast<double>(c.beta2), static_cast<double>(t)));
      if (decay) p[i] -= lr * c.weight_decay * p[i];
      p[i] -= lr * m_hat / (std::sqrt(v_hat) + c.eps);
    }
  }
};

TEST(TrainAdamW, MatchesReferenceFormulaOverSeveralSteps) {
  // A large ε and weight decay so both visibly shape the update.
  const AdamWConfig config{0.8f, 0.9f, 1e-2f, 0.5f};
  ParamSet set;
  Param& w = set.Add("w", {17});
  Param& b = set.Add("b", {5}, /*decay=*/false);
  w.value = testing::RandomVector(17, 1);
  b.value = testing::RandomVector(5, 2);
  std::vector<double> ref_w(w.value.begin(), w.value.end()), ref_b(b.value.begin(), b.value.end());
  ReferenceAdamW rw{config, {}, {}}, rb{config, {}, {}};
  AdamW opt(set, config);
  for (int step = 0; step < 6; ++step) {
    w.grad = testing::RandomVector(17, 100 + step, 0.05f);
    b.grad = testing::RandomVector(5, 200 + step, 0.05f);
    const float lr = 0.02f * static_cast<float>(step + 1);
    rw.Step(ref_w, w.grad, lr, true);
    rb.Step(ref_b, b.grad, lr, false);
    opt.Step(set, lr);
    for (size_t i = 0; i < ref_w.size(); ++i) {
      EXPECT_NEAR(w.value[i], ref_w[i], 1e-6 * (1.0 + std::abs(ref_w[i]))) << "step " << step << " w[" << i << "]";
    }
    for (size_t i = 0; i < ref_b.size(); ++i) {
      EXPECT_NEAR(b.value[i], ref_b[i], 1e-6 * (1.0 + std::abs(ref_b[i]))) << "step " << step << " b[" << i << "]";
    }
  }
  EXPECT_EQ(opt.step(), 6);
}

TEST(TrainAdamW, ConvergesOnQuadratic) {
  // loss = Σ ½ a_i (x_i − c_i)², curvatures spanning two decades.
  ParamSet set;
  Param& x = set.Add("x", {8}, /*decay=*/false);
  x.value = testing::RandomVector(8, 5, 3.0f);
  const std::vector<float> target = testing::RandomVector(8, 6, 2.0f);
  const float a[8] = {0.1f, 0.3f, 1.0f, 2.0f, 3.0f, 5.0f, 8.0f, 10.0f};
  auto loss = [&] {
    double s = 0;
    for (int i = 0; i < 8; ++i) s += 0.5 * a[i] * (x.value[i] - target[i]) * (x.value[i] - target[i]);
    return s;
  };
  const double initial = loss();
  AdamW opt(set, AdamWConfig{0.9f, 0.95f, 1e-8f, 0.1f});
  const int64_t total = 600;
  for (int64_t step = 0; step < total; ++step) {
    set.ZeroGrad();
    for (int i = 0; i < 8; ++i) x.grad[i] = a[i] * (x.value[i] - target[i]);
    opt.Step(set, train::WarmupCosineLr(step, 20, total, 0.1f, 0.0f));
  }
  const double final_loss = loss();
  EXPECT_LT(final_loss, 1e-6 * initial) << "initial " << initial << ", final " << final_loss;
  for (int i = 0; i < 8; ++i) EXPECT_NEAR(x.value[i], target[i], 1e-2f) << "x[" << i << "]";
}

TEST(TrainAdamW, FrozenParamTrainsAfterUnfreezing) {
  ThreeParams p;
  AdamW opt(p.set, AdamWConfig{});
  p.frozen->trainable = true;
  p.frozen->grad = {1.0f, -1.0f};
  opt.Step(p.set, 0.1f);
  ASSERT_EQ(opt.m()[2].size(), 2u);
  // First step from zero moments: Adam step ±lr, decay 1 − 0.1 · 0.1.
  EXPECT_NEAR(p.frozen->value[0], 4.0f * 0.99f - 0.1f, 1e-5f);
  EXPECT_NEAR(p.frozen->value[1], -4.0f * 0.99f + 0.1f, 1e-5f);
}

TEST(TrainSchedule, WarmupCosineValues) {
  const int64_t warmup = 10, total = 110;
  const float max_lr = 3e-3f, min_lr = 3e-4f;
  auto lr = [&](int64_t s) { return train::WarmupCosineLr(s, warmup, total, max_lr, min_lr); };
  EXPECT_EQ(lr(0), 0.0f);
  EXPECT_FLOAT_EQ(lr(5), 0.5f * max_lr);
  EXPECT_FLOAT_EQ(lr(warmup), max_lr);
  EXPECT_FLOAT_EQ(lr(warmup + (total - warmup) / 2), 0.5f * (max_lr + min_lr));
  // A quarter of the way down: min + (max − min) · ½ (1 + cos(π/4)).
  EXPECT_FLOAT_EQ(lr(warmup + (total - warmup) / 4),
                  static_cast<float>(min_lr + (max_lr - min_lr) * 0.5 * (1.0 + std::sqrt(0.5))));
  EXPECT_FLOAT_EQ(lr(total), min_lr);
  EXPECT_FLOAT_EQ(lr(total + 50), min_lr);
  // Monotone: up through warmup, down after.
  for (int64_t s = 1; s <= total; ++s) {
    if (s <= warmup) {
      EXPECT_GT(lr(s), lr(s - 1)) << "step " << s;
    } else {
      EXPECT_LT(lr(s), lr(s - 1)) << "step " << s;
    }
  }
  // Without warmup the first step already runs at max_lr.
  EXPECT_FLOAT_EQ(train::WarmupCosineLr(0, 0, 100, max_lr, min_lr), max_lr);
}

TEST(TrainClipGradNorm, ScalesToMaxNormAndSkipsFrozen) {
  ThreeParams p;
  p.w->grad = {3.0f, 0.0f, 0.0f};
  p.b->grad = {-4.0f};
  p.frozen->grad = {100.0f, 100.0f};  // not part of the norm, never scaled
  const double norm = train::ClipGradNorm(p.set, 1.0);
  EXPECT_DOUBLE_EQ(norm, 5.0);
  EXPECT_FLOAT_EQ(p.w->grad[0], 0.6f);
  EXPECT_EQ(p.w->grad[1], 0.0f);
  EXPECT_FLOAT_EQ(p.b->grad[0], -0.8f);
  EXPECT_EQ(p.frozen->grad, (std::vector<float>{100.0f, 100.0f}));
  // The clipped gradients have norm max_norm.
  EXPECT_NEAR(train::ClipGradNorm(p.set, 0.0), 1.0, 1e-7);
}

TEST(TrainClipGradNorm, ManyParamsClipToExactlyMaxNorm) {
  ParamSet set;
  for (int i = 0; i < 5; ++i) {
    std::string name = "p";
    name += std::to_string(i);
    Param& q = set.Add(name, {1000 + i});
    q.grad = testing::RandomVector(q.grad.size(), 40 + i);
  }
  double sum_sq = 0;
  for (size_t i = 0; i < set.size(); ++i) sum_sq += testing::Dot(set[i].grad, set[i].grad);
  const double before = train::ClipGradNorm(set, 2.5);
  EXPECT_NEAR(before, std::sqrt(sum_sq), 1e-9 * std::sqrt(sum_sq));
  const double after = train::ClipGradNorm(set, 0.0);
  EXPECT_NEAR(after, 2.5, 2.5e-6) << "norm before clipping " << before;
}

TEST(TrainClipGradNorm, LeavesSmallGradientsAlone) {
  ThreeParams p;
  p.w->grad = {0.3f, -0.1f, 0.2f};
  p.b->grad = {0.05f};
  const std::vector<float> w_grad = p.w->grad, b_grad = p.b->grad;
  const double norm = train::ClipGradNorm(p.set, 1.0);
  EXPECT_NEAR(norm, std::sqrt(0.09 + 0.01 + 0.04 + 0.0025), 1e-7);
  EXPECT_EQ(p.w->grad, w_grad);
  EXPECT_EQ(p.b->grad, b_grad);
  // max_norm <= 0 never clips.
  p.w->grad = {30.0f, 0.0f, 0.0f};
  EXPECT_NEAR(train::ClipGradNorm(p.set, 0.0), std::sqrt(900.0 + 0.0025), 1e-7);
  EXPECT_EQ(p.w->grad[0], 30.0f);
}

}  // namespace
}  // namespace bitlens
