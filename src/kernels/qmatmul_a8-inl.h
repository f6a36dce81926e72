// kernels/qmatmul_a8-inl.h: per-target code shared by the int8-activation
// kernels (qmatmul_a8, qmatmul_lut): the activation quantizer that equals
// QuantizeActivationBlocksRef. Included after hwy/foreach_target.h.
// Highway's per-target include guard: this file is compiled once per target.
#if defined(BITLENS_KERNELS_QMATMUL_A8_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef BITLENS_KERNELS_QMATMUL_A8_INL_H_
#undef BITLENS_KERNELS_QMATMUL_A8_INL_H_
#else
#define BITLENS_KERNELS_QMATMUL_A8_INL_H_
#endif

#include <cstdint>
#include <cstring>

#include "hwy/highway.h"
#include "kernels/qmatmul_a8.h"

// The reference rounds x·inv before adding the rounding constant.
#pragma GCC optimize("fp-contract=off")

HWY_BEFORE_NAMESPACE();
namespace bitlens::kernels {
namespace HWY_NAMESPACE {

// x [k] -> xq [kq] (zeros past k), d and bsum [kq / block] for activation
// blocks of `block` values (a multiple of 32, at most kMaxActBlock); equal to
// QuantizeActivationBlocksRef on the first ceil(k/block) blocks, zero blocks after.
constexpr int kMaxActBlock = 256;
HWY_MAYBE_UNUSED inline void QuantizeRow(const float* HWY_RESTRICT x, int64_t k, int64_t kq, int block,
                                         int8_t* HWY_RESTRICT xq, float* HWY_RESTRICT d, int32_t* HWY_RESTRICT bsum) {
  namespace hn = hwy::HWY_NAMESPACE;
  const hn::CappedTag<float, kA8Block> df;
  const hn::RebindToSigned<decltype(df)> di;
  const hn::Rebind<int16_t, decltype(df)> d16;
  const hn::Rebind<int8_t, decltype(df)> d8;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  const auto magic = hn::Set(df, 12582912.0f);
  const auto lo = hn::Set(df, -127.0f), hi = hn::Set(df, 127.0f);
  alignas(64) float tail[kMaxActBlock];
  for (int64_t i0 = 0; i0 < kq; i0 += block) {
    const int64_t b = i0 / block;
    if (i0 >= k) {
      std::memset(xq + i0, 0, static_cast<size_t>(block));
      d[b] = 0.0f;
      bsum[b] = 0;
      continue;
    }
    const float* xb = x + i0;
    if (i0 + block > k) {  // ragged last block: zero-padded copy
      std::memset(tail, 0, sizeof(tail));
      std::memcpy(tail, xb, static_cast<size_t>(k - i0) * sizeof(float));
      xb = tail;
    }
    auto vmax = hn::Zero(df);
    for (int64_t j = 0; j < block; j += lanes) vmax = hn::Max(vmax, hn::Abs(hn::LoadU(df, xb + j)));
    const float amax = hn::GetLane(hn::MaxOfLanes(df, vmax));
    const float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
    d[b] = amax / 127.0f;
    const auto vinv = hn::Set(df, inv);
    auto vsum = hn::Zero(di);
    for (int64_t j = 0; j < block; j += lanes) {
      auto v = hn::Mul(hn::LoadU(df, xb + j), vinv);
      v = hn::Sub(hn::Add(v, magic), magic);
      const auto q = hn::ConvertTo(di, hn::Min(hn::Max(v, lo), hi));
      vsum = hn::Add(vsum, q);
      hn::StoreU(hn::DemoteTo(d8, hn::DemoteTo(d16, q)), d8, xq + i0 + j);
    }
    bsum[b] = hn::GetLane(hn::SumOfLanes(di, vsum));
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace bitlens::kernels
HWY_AFTER_NAMESPACE();

#endif  // BITLENS_KERNELS_QMATMUL_A8_INL_H_
