// Tests of train/ops rotary embedding and attention: forward values against
// the inference kernels, backward against central finite differences,
// accumulation into existing gradients, and thread-count independence.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "base/thread_pool.h"
#include "formats/hf_config.h"
#include "kernels/ops.h"
#include "model/rope.h"
#include "train/ops.h"
#include "train_grad_check.h"

namespace bitlens {
namespace {

using testing::Dot;
using testing::ExpectGradientMatches;
using testing::RandomVector;

// Finite-difference bounds (h = 0.01 on f32 inputs), the classes of
// train_ops_test.cpp. RoPE is linear in x: only the f32 rounding of the
// forward divided by 2h remains (seen up to 1.2e-5). Attention adds the
// O(h²) truncation error of the softmax (seen up to 1.7e-4 on a gradient of 0.6).
constexpr double kLinearRtol = 2e-4, kLinearAtol = 5e-4;
constexpr double kSmoothRtol = 1e-3, kSmoothAtol = 2e-4;

struct ThreadsGuard {
  ~ThreadsGuard() { SetNumThreads(0); }
};

// cos/sin [t, rotary_dim / 2] for positions 0..t-1, from the decoder's tables.
struct RopeRows {
  int64_t rotary_dim = 0;
  std::vector<float> cos, sin;
};

RopeRows MakeRopeRows(int64_t head_dim, double partial_rotary_factor, int64_t t) {
  TextConfig config;
  config.head_dim = head_dim;
  config.partial_rotary_factor = partial_rotary_factor;
  config.rope.theta = 100.0;  // low base: every pair rotates by a visible angle over a few positions
  auto table = RopeTable::Build(config, t);
  EXPECT_TRUE(table.ok()) << table.status().message();
  RopeRows r;
  r.rotary_dim = table->rotary_dim();
  const int64_t half = r.rotary_dim / 2;
  for (int64_t p = 0; p < t; ++p) {
    r.cos.insert(r.cos.end(), table->cos(p, false), table->cos(p, false) + half);
    r.sin.insert(r.sin.end(), table->sin(p, false), table->sin(p, false) + half);
  }
  return r;
}

struct RopeCase {
  std::string name;
  int64_t t, heads, head_dim;
  double partial;
};

const RopeCase kRopeCases[] = {{"full", 5, 3, 8, 1.0}, {"partial", 6, 2, 10, 0.6}};

TEST(TrainRope, ForwardMatchesInferenceKernel) {
  for (const RopeCase& c : kRopeCases) {
    const RopeRows rope = MakeRopeRows(c.head_dim, c.partial, c.t);
    const int64_t row = c.heads * c.head_dim;
    std::vector<float> x = RandomVector(static_cast<size_t>(c.t * row), 11);
    std::vector<float> y(x.size());
    train::RopeForward(x.data(), c.t, c.heads, c.head_dim, rope.rotary_dim, rope.cos.data(), rope.sin.data(),
                       y.data());
    std::vector<float> ref = x;
    const int64_t half = rope.rotary_dim / 2;
    for (int64_t p = 0; p < c.t; ++p) {
      kernels::ApplyRopeRef(ref.data() + p * row, c.heads, c.head_dim, rope.rotary_dim, rope.cos.data() + p * half,
                            rope.sin.data() + p * half);
    }
    for (size_t i = 0; i < y.size(); ++i) {
      ASSERT_EQ(y[i], ref[i]) << c.name << " at " << i << " (x " << x[i] << ")";
    }
    // In place gives the same values.
    std::vector<float> inplace = x;
    train::RopeForward(inplace.data(), c.t, c.heads, c.head_dim, rope.rotary_dim, rope.cos.data(), rope.sin.data(),
                       inplace.data());
    EXPECT_EQ(inplace, y) << c.name;
  }
}

TEST(TrainRope, PartialRotaryPassesTrailingDimsThrough) {
  const RopeCase& c = kRopeCases[1];
  const RopeRows rope = MakeRopeRows(c.head_dim, c.partial, c.t);
  ASSERT_EQ(rope.rotary_dim, 6);
  std::vector<float> x = RandomVector(static_cast<size_t>(c.t * c.heads * c.head_dim), 12);
  std::vector<float> y(x.size(), NAN);
  train::RopeForward(x.data(), c.t, c.heads, c.head_dim, rope.rotary_dim, rope.cos.data(), rope.sin.data(), y.data());
  for (int64_t r = 0; r < c.t * c.heads; ++r) {
    for (int64_t d = rope.rotary_dim; d < c.head_dim; ++d) {
      EXPECT_EQ(y[r * c.head_dim + d], x[r * c.head_dim + d]) << "row " << r << " dim " << d;
    }
  }
}

TEST(TrainRope, BackwardMatchesFiniteDifferences) {
  for (const RopeCase& c : kRopeCases) {
    const RopeRows rope = MakeRopeRows(c.head_dim, c.partial, c.t);
    const size_t n = static_cast<size_t>(c.t * c.heads * c.head_dim);
    std::vector<float> x = RandomVector(n, 21);
    const std::vector<float> probe = RandomVector(n, 22);
    std::vector<float> y(n);
    auto loss = [&] {
      train::RopeForward(x.data(), c.t, c.heads, c.head_dim, rope.rotary_dim, rope.cos.data(), rope.sin.data(),
                         y.data());
      return Dot(probe, y);
    };
    std::vector<float> dx(n, 0.0f);
    train::RopeBackward(probe.data(), c.t, c.heads, c.head_dim, rope.rotary_dim, rope.cos.data(), rope.sin.data(),
                        dx.data());
    ExpectGradientMatches("rope dx (" + c.name + ")", x, dx, loss, 1e-2, kLinearRtol, kLinearAtol, n);
  }
}

TEST(TrainRope, BackwardAccumulates) {
  const RopeCase& c = kRopeCases[1];
  const RopeRows rope = MakeRopeRows(c.head_dim, c.partial, c.t);
  const size_t n = static_cast<size_t>(c.t * c.heads * c.head_dim);
  const std::vector<float> dy = RandomVector(n, 31);
  std::vector<float> fresh(n, 0.0f);
  train::RopeBackward(dy.data(), c.t, c.heads, c.head_dim, rope.rotary_dim, rope.cos.data(), rope.sin.data(),
                      fresh.data());
  const std::vector<float> base = RandomVector(n, 32);
  std::vector<float> acc = base;
  train::RopeBackward(dy.data(), c.t, c.heads, c.head_dim, rope.rotary_dim, rope.cos.data(), rope.sin.data(),
                      acc.data());
  for (size_t i = 0; i < n; ++i) EXPECT_FLOAT_EQ(acc[i], base[i] + fresh[i]) << i;
  // A null gradient is skipped.
  train::RopeBackward(dy.data(), c.t, c.heads, c.head_dim, rope.rotary_dim, rope.cos.data(), rope.sin.data(), nullptr);
}

// ---- attention

struct AttnCase {
  std::string name;
  int64_t t, n_heads, n_kv_heads, head_dim;
  bool causal;
};

const AttnCase kAttnCases[] = {
    {"gqa causal", 7, 4, 2, 5, true},
    {"gqa bidirectional", 7, 4, 2, 5, false},
    {"mha causal", 9, 3, 3, 7, true},
    {"mha bidirectional", 9, 3, 3, 7, false},
    // Past 64 query rows the backward works in several row blocks, the last one partial.
    {"gqa causal, two row blocks", 70, 4, 2, 5, true},
    {"mha bidirectional, two row blocks", 67, 2, 2, 3, false},
};

struct AttnInputs {
  std::vector<float> q, k, v;
  float scale;
  explicit AttnInputs(const AttnCase& c, uint64_t seed)
      : q(RandomVector(static_cast<size_t>(c.t * c.n_heads * c.head_dim), seed)),
        k(RandomVector(static_cast<size_t>(c.t * c.n_kv_heads * c.head_dim), seed + 1)),
        v(RandomVector(static_cast<size_t>(c.t * c.n_kv_heads * c.head_dim), seed + 2)),
        scale(1.0f / std::sqrt(static_cast<float>(c.head_dim))) {}
};

std::vector<float> Forward(const AttnCase& c, const AttnInputs& in, std::vector<float>* probs_out = nullptr) {
  std::vector<float> probs(static_cast<size_t>(c.n_heads * c.t * c.t), NAN);
  std::vector<float> out(in.q.size(), NAN);
  train::AttentionForward(in.q.data(), in.k.data(), in.v.data(), c.t, c.n_heads, c.n_kv_heads, c.head_dim, c.causal,
                          in.scale, probs.data(), out.data());
  if (probs_out != nullptr) *probs_out = probs;
  return out;
}

struct AttnGrads {
  std::vector<float> dq, dk, dv;
};

void Backward(const AttnCase& c, const AttnInputs& in, const std::vector<float>& probs, const std::vector<float>& dout,
              AttnGrads& g, bool with_dq = true, bool with_dk = true, bool with_dv = true) {
  std::vector<float> scratch(NumThreads() * static_cast<size_t>(c.t));
  train::AttentionBackward(dout.data(), in.q.data(), in.k.data(), in.v.data(), probs.data(), c.t, c.n_heads,
                           c.n_kv_heads, c.head_dim, c.causal, in.scale, scratch.data(),
                           with_dq ? g.dq.data() : nullptr, with_dk ? g.dk.data() : nullptr,
                           with_dv ? g.dv.data() : nullptr);
}

AttnGrads ZeroGrads(const AttnInputs& in) {
  return {std::vector<float>(in.q.size(), 0.0f), std::vector<float>(in.k.size(), 0.0f),
          std::vector<float>(in.v.size(), 0.0f)};
}

TEST(TrainAttention, ForwardMatchesInferenceKernel) {
  for (const AttnCase& c : kAttnCases) {
    const AttnInputs in(c, 100);
    std::vector<float> probs;
    const std::vector<float> out = Forward(c, in, &probs);
    std::vector<float> ref(out.size());
    kernels::AttentionRef(in.q.data(), c.t, c.n_heads, in.k.data(), in.v.data(), c.t, c.n_kv_heads, c.head_dim, 0,
                          c.causal, in.scale, ref.data());
    double worst = 0;
    size_t worst_i = 0;
    for (size_t i = 0; i < out.size(); ++i) {
      const double diff = std::abs(static_cast<double>(out[i]) - ref[i]);
      if (!(diff <= worst)) {
        worst = diff;
        worst_i = i;
      }
    }
    EXPECT_LE(worst, 1e-5) << c.name << ": out[" << worst_i << "] = " << out[worst_i] << ", reference "
                           << ref[worst_i];
    // probs: rows sum to 1; exact zeros above the diagonal when causal.
    for (int64_t h = 0; h < c.n_heads; ++h) {
      for (int64_t i = 0; i < c.t; ++i) {
        const float* row = probs.data() + (h * c.t + i) * c.t;
        double sum = 0;
        for (int64_t j = 0; j < c.t; ++j) {
          sum += row[j];
          if (c.causal && j > i) {
            EXPECT_EQ(row[j], 0.0f) << c.name << " head " << h << " row " << i << " col " << j;
          }
        }
        EXPECT_NEAR(sum, 1.0, 1e-6) << c.name << " head " << h << " row " << i;
      }
    }
  }
}

TEST(TrainAttention, BackwardMatchesFiniteDifferences) {
  constexpr size_t kMaxChecks = 400;  // every element of the small cases, a stride of the long ones
  for (const AttnCase& c : kAttnCases) {
    AttnInputs in(c, 200);
    const std::vector<float> probe = RandomVector(in.q.size(), 299);
    std::vector<float> probs;
    Forward(c, in, &probs);
    AttnGrads g = ZeroGrads(in);
    Backward(c, in, probs, probe, g);
    auto loss = [&] { return Dot(probe, Forward(c, in)); };
    ExpectGradientMatches("attention dq (" + c.name + ")", in.q, g.dq, loss, 1e-2, kSmoothRtol, kSmoothAtol,
                          kMaxChecks);
    ExpectGradientMatches("attention dk (" + c.name + ")", in.k, g.dk, loss, 1e-2, kSmoothRtol, kSmoothAtol,
                          kMaxChecks);
    ExpectGradientMatches("attention dv (" + c.name + ")", in.v, g.dv, loss, 1e-2, kSmoothRtol, kSmoothAtol,
                          kMaxChecks);
  }
}

TEST(TrainAttention, BackwardAccumulatesAndSkipsNullGradients) {
  const AttnCase& c = kAttnCases[0];
  const AttnInputs in(c, 300);
  const std::vector<float> dout = RandomVector(in.q.size(), 301);
  std::vector<float> probs;
  Forward(c, in, &probs);
  AttnGrads fresh = ZeroGrads(in);
  Backward(c, in, probs, dout, fresh);

  // Starting from existing gradients: result = existing + fresh.
  AttnGrads acc{RandomVector(in.q.size(), 302), RandomVector(in.k.size(), 303), RandomVector(in.v.size(), 304)};
  const AttnGrads base = acc;
  Backward(c, in, probs, dout, acc);
  auto expect_sum = [](const char* what, const std::vector<float>& got, const std::vector<float>& a,
                       const std::vector<float>& b) {
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_NEAR(got[i], a[i] + b[i], 1e-5f * (1.0f + std::abs(a[i]) + std::abs(b[i])))
          << what << "[" << i << "]: existing " << a[i] << " + fresh " << b[i];
    }
  };
  expect_sum("dq", acc.dq, base.dq, fresh.dq);
  expect_sum("dk", acc.dk, base.dk, fresh.dk);
  expect_sum("dv", acc.dv, base.dv, fresh.dv);

  // Each gradient alone equals its share of the full call; the others stay untouched.
  for (int which = 0; which < 3; ++which) {
    AttnGrads one = ZeroGrads(in);
    one.dq.assign(in.q.size(), 7.0f);
    one.dk.assign(in.k.size(), 7.0f);
    one.dv.assign(in.v.size(), 7.0f);
    Backward(c, in, probs, dout, one, which == 0, which == 1, which == 2);
    const std::vector<float>* got[3] = {&one.dq, &one.dk, &one.dv};
    const std::vector<float>* want[3] = {&fresh.dq, &fresh.dk, &fresh.dv};
    for (int m = 0; m < 3; ++m) {
      for (size_t i = 0; i < got[m]->size(); ++i) {
        const float expected = m == which ? 7.0f + (*want[m])[i] : 7.0f;
        EXPECT_NEAR((*got[m])[i], expected, 1e-5f) << "only gradient " << which << ", gradient " << m << " [" << i
                                                   << "]";
      }
    }
  }
}

TEST(TrainAttention, SameResultsWithOneAndTwoThreads) {
  ThreadsGuard guard;
  const AttnCase c{"gqa causal, several row blocks", 150, 4, 2, 16, true};
  const AttnInputs in(c, 400);
  const std::vector<float> dout = RandomVector(in.q.size(), 401);
  std::vector<float> out[2], probs[2];
  AttnGrads g[2] = {ZeroGrads(in), ZeroGrads(in)};
  for (int run = 0; run < 2; ++run) {
    SetNumThreads(run + 1);
    ASSERT_EQ(NumThreads(), static_cast<size_t>(run + 1));
    out[run] = Forward(c, in, &probs[run]);
    Backward(c, in, probs[run], dout, g[run]);
  }
  EXPECT_EQ(out[0], out[1]);
  EXPECT_EQ(probs[0], probs[1]);
  EXPECT_EQ(g[0].dq, g[1].dq);
  EXPECT_EQ(g[0].dk, g[1].dk);
  EXPECT_EQ(g[0].dv, g[1].dv);
}

}  // namespace
}  // namespace bitlens
