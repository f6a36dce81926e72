// vision/pil_resample: Pillow-exact resize (Resample.c semantics) and the
// transformers center crop. Facts reproduced from Pillow's libImaging:
//  - filters and supports: box 0.5, bilinear 1, hamming 1, bicubic 2 (a=-0.5),
//    lanczos 3; when downscaling the support is stretched by the scale factor
//    (antialiasing) and the filter argument is divided by it;
//  - per output pixel the taps are normalized to sum 1 in double, then turned
//    into fixed point with 22 fractional bits, rounding half away from zero;
//  - the horizontal pass runs first into an 8-bit temporary (only over the
//    rows the vertical pass reads), then the vertical pass; each pass adds
//    0.5 in fixed point, shifts right (floor) and clips to [0, 255].
#include "vision/pil_resample.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

// Exactness against Pillow (built without FMA contraction on x86-64) needs
// every double multiply and add rounded separately.
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

namespace bitlens {
namespace {

constexpr int kPrecisionBits = 32 - 8 - 2;  // 22: 8-bit result, 2 bits of headroom for overshoot

using FilterFn = double (*)(double);

double BoxFilter(double x) { return (x > -0.5 && x <= 0.5) ? 1.0 : 0.0; }

double BilinearFilter(double x) {
  if (x < 0.0) x = -x;
  return x < 1.0 ? 1.0 - x : 0.0;
}

double HammingFilter(double x) {
  if (x < 0.0) x = -x;
  if (x == 0.0) return 1.0;
  if (x >= 1.0) return 0.0;
  x = x * M_PI;
  // Pillow writes the window constants as float literals; keep them so.
  return std::sin(x) / x * (0.54f + 0.46f * std::cos(x));
}

double BicubicFilter(double x) {
  // Keys' cubic convolution with a = -0.5.
  const double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

double Sinc(double x) {
  if (x == 0.0) return 1.0;
  x = x * M_PI;
  return std::sin(x) / x;
}

double LanczosFilter(double x) {
  if (-3.0 <= x && x < 3.0) return Sinc(x) * Sinc(x / 3);
  return 0.0;
}

struct Filter {
  FilterFn fn;
  double support;
};

// Taps of one axis: output pixel i reads `count[i]` input pixels starting at
// `first[i]`, weighted by coeffs[i * ksize + j] (22-bit fixed point).
struct AxisTaps {
  int ksize = 0;
  std::vector<int> first;
  std::vector<int> count;
  std::vector<int32_t> coeffs;
};

AxisTaps ComputeTaps(int in_size, int out_size, const Filter& filter) {
  // Pillow passes the box (0, 0, in_w, in_h) as floats; in_size <= 16384 is exact.
  const float in0 = 0.0f;
  const float in1 = static_cast<float>(in_size);
  const double scale = static_cast<double>(in1 - in0) / out_size;
  const double filterscale = scale < 1.0 ? 1.0 : scale;
  const double support = filter.support * filterscale;
  AxisTaps taps;
  taps.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  taps.first.resize(out_size);
  taps.count.resize(out_size);
  taps.coeffs.assign(static_cast<size_t>(out_size) * taps.ksize, 0);
  std::vector<double> w(taps.ksize);
  for (int xx = 0; xx < out_size; ++xx) {
    const double center = in0 + (xx + 0.5) * scale;
    const double ss = 1.0 / filterscale;
    int xmin = static_cast<int>(center - support + 0.5);  // truncation, as in C
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double ww = 0.0;
    for (int x = 0; x < xmax; ++x) {
      w[x] = filter.fn((x + xmin - center + 0.5) * ss);
      ww += w[x];
    }
    int32_t* k = &taps.coeffs[static_cast<size_t>(xx) * taps.ksize];
    for (int x = 0; x < xmax; ++x) {
      const double v = ww != 0.0 ? w[x] / ww : w[x];
      const double fixed = v * (1 << kPrecisionBits);
      k[x] = static_cast<int32_t>(v < 0 ? -0.5 + fixed : 0.5 + fixed);
    }
    taps.first[xx] = xmin;
    taps.count[xx] = xmax;
  }
  return taps;
}

// Accumulators are 32-bit like Pillow's: the taps of one output pixel sum to
// 2^22 and their absolute values to at most ~1.58 * 2^22 (lanczos at the
// image border; 1.25 for bicubic), so |acc| <= 255 * 1.58 * 2^22 + 2^21
// stays below 2^31.
inline uint8_t Clip8(int32_t acc) {
  const int32_t v = acc >> kPrecisionBits;  // arithmetic shift: floor
  return static_cast<uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
}

// in: rows [row0, row0 + out_h) of an RGB image of width in_w -> out [out_h, out_w, 3].
void ResampleHorizontal(const uint8_t* in, int in_w, int row0, int out_h, const AxisTaps& taps, int out_w,
                        uint8_t* out) {
  for (int y = 0; y < out_h; ++y) {
    const uint8_t* src = in + static_cast<size_t>(row0 + y) * in_w * 3;
    uint8_t* dst = out + static_cast<size_t>(y) * out_w * 3;
    for (int xx = 0; xx < out_w; ++xx) {
      const int32_t* k = &taps.coeffs[static_cast<size_t>(xx) * taps.ksize];
      const uint8_t* p = src + static_cast<size_t>(taps.first[xx]) * 3;
      int32_t s0 = 1 << (kPrecisionBits - 1), s1 = s0, s2 = s0;
      for (int x = 0; x < taps.count[xx]; ++x) {
        s0 += p[3 * x + 0] * k[x];
        s1 += p[3 * x + 1] * k[x];
        s2 += p[3 * x + 2] * k[x];
      }
      dst[3 * xx + 0] = Clip8(s0);
      dst[3 * xx + 1] = Clip8(s1);
      dst[3 * xx + 2] = Clip8(s2);
    }
  }
}

// in: RGB image of width w whose row 0 is source row `row_offset`; out [out_h, w, 3].
void ResampleVertical(const uint8_t* in, int w, int row_offset, const AxisTaps& taps, int out_h, uint8_t* out) {
  const size_t stride = static_cast<size_t>(w) * 3;
  std::vector<int32_t> acc(stride);
  for (int yy = 0; yy < out_h; ++yy) {
    const int32_t* k = &taps.coeffs[static_cast<size_t>(yy) * taps.ksize];
    const int first = taps.first[yy] - row_offset;
    std::fill(acc.begin(), acc.end(), int32_t{1} << (kPrecisionBits - 1));
    for (int y = 0; y < taps.count[yy]; ++y) {
      const uint8_t* src = in + static_cast<size_t>(first + y) * stride;
      const int32_t c = k[y];
      for (size_t i = 0; i < stride; ++i) acc[i] += src[i] * c;
    }
    uint8_t* dst = out + static_cast<size_t>(yy) * stride;
    for (size_t i = 0; i < stride; ++i) dst[i] = Clip8(acc[i]);
  }
}

}  // namespace

Result<Image> ResizePil(const Image& image, int width, int height, int resample) {
  if (width <= 0 || height <= 0) {
    return InvalidArgument("resize to " + std::to_string(width) + "x" + std::to_string(height) +
                           ": both sides must be positive");
  }
  if (image.width <= 0 || image.height <= 0 ||
      image.rgb.size() != static_cast<size_t>(image.width) * image.height * 3) {
    return InvalidArgument("resize: input image is empty or its pixel buffer does not match " +
                           std::to_string(image.width) + "x" + std::to_string(image.height));
  }
  Filter filter;
  switch (resample) {
    case static_cast<int>(PilFilter::kLanczos): filter = {LanczosFilter, 3.0}; break;
    case static_cast<int>(PilFilter::kBilinear): filter = {BilinearFilter, 1.0}; break;
    case static_cast<int>(PilFilter::kBicubic): filter = {BicubicFilter, 2.0}; break;
    case static_cast<int>(PilFilter::kBox): filter = {BoxFilter, 0.5}; break;
    case static_cast<int>(PilFilter::kHamming): filter = {HammingFilter, 1.0}; break;
    case static_cast<int>(PilFilter::kNearest):
      return Unsupported("resample 0 (nearest) is not supported; use 1 (lanczos), 2 (bilinear), 3 (bicubic), "
                         "4 (box) or 5 (hamming)");
    default:
      return InvalidArgument("resample " + std::to_string(resample) + " is not a PIL filter (0..5)");
  }
  if (width == image.width && height == image.height) return image;

  const bool need_horizontal = width != image.width;
  const bool need_vertical = height != image.height;
  const AxisTaps vtaps = ComputeTaps(image.height, height, filter);
  // Only the source rows the vertical pass reads go through the horizontal pass.
  const int row_first = vtaps.first.front();
  const int row_last = vtaps.first.back() + vtaps.count.back();

  const uint8_t* src = image.rgb.data();
  int src_w = image.width;
  int row_offset = 0;
  std::vector<uint8_t> temp;
  if (need_horizontal) {
    const AxisTaps htaps = ComputeTaps(image.width, width, filter);
    temp.resize(static_cast<size_t>(row_last - row_first) * width * 3);
    ResampleHorizontal(image.rgb.data(), image.width, row_first, row_last - row_first, htaps, width, temp.data());
    src = temp.data();
    src_w = width;
    row_offset = row_first;
  }
  Image out;
  out.width = width;
  out.height = height;
  if (need_vertical) {
    out.rgb.resize(static_cast<size_t>(width) * height * 3);
    ResampleVertical(src, src_w, row_offset, vtaps, height, out.rgb.data());
  } else {
    out.rgb = std::move(temp);  // rows [0, height) == all rows when no vertical pass
  }
  return out;
}

Image CenterCropImage(const Image& image, int crop_height, int crop_width) {
  auto floor_div2 = [](int v) { return v >= 0 ? v / 2 : -((-v + 1) / 2); };
  const int h = image.height, w = image.width;
  const int top = floor_div2(h - crop_height);
  const int left = floor_div2(w - crop_width);
  Image out;
  out.height = crop_height;
  out.width = crop_width;
  out.rgb.assign(static_cast<size_t>(crop_height) * crop_width * 3, 0);
  // Padding case: the image sits at (pad_top, pad_left) of a zero canvas of
  // max(h, crop) x max(w, crop), and the crop window moves by the same pad.
  const int pad_top = crop_height > h ? (crop_height - h + 1) / 2 : 0;
  const int pad_left = crop_width > w ? (crop_width - w + 1) / 2 : 0;
  const int win_top = top + pad_top, win_left = left + pad_left;
  for (int y = 0; y < crop_height; ++y) {
    const int sy = win_top + y - pad_top;  // row in the source image
    if (sy < 0 || sy >= h) continue;
    for (int x = 0; x < crop_width; ++x) {
      const int sx = win_left + x - pad_left;
      if (sx < 0 || sx >= w) continue;
      for (int c = 0; c < 3; ++c) {
        out.rgb[(static_cast<size_t>(y) * crop_width + x) * 3 + c] =
            image.rgb[(static_cast<size_t>(sy) * w + sx) * 3 + c];
      }
    }
  }
  return out;
}

}  // namespace bitlens
