// quant/calib_quantize: quantizes one calibration block (a transformer layer
// or the projector) from its statistics — optional AWQ scales folded into the
// preceding norm (and into up_proj rows for down_proj), then GPTQ/RTN/HQQ per
// tensor through QuantizeLinear — and keeps the packed rows, the rescaled
// norms and each tensor's relative output error until the next block.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "kernels/ops.h"
#include "quant/awq.h"
#include "quant/calib_runner.h"
#include "quant/formats.h"
#include "quant/quantize_layer.h"

namespace bitlens::quant {

struct CalibQuantizeOptions {
  QuantMethod method = QuantMethod::kGptq;
  bool awq = false;           // search AWQ scales per shared input first ("awq+gptq")
  QuantizeOptions quantize;   // grid choice, GPTQ damping, error rows
  AwqOptions awq_options;
};

// The format a tensor (by checkpoint name) is quantized to; null or a format
// without grids (f16/bf16) leaves the tensor to the caller.
using FormatFor = std::function<const FormatInfo*(const std::string& name)>;

class BlockQuantizer {
 public:
  explicit BlockQuantizer(CalibQuantizeOptions options) : options_(std::move(options)) {}

  // Quantizes every tensor of `block` that format_of gives a grid format;
  // AWQ rescales block.norms in place. replace[i] is set to the packed rows
  // of block.tensors[i] (valid until the next call).
  Status Quantize(CalibBlock& block, const FormatFor& format_of, std::vector<kernels::WeightView>& replace);

  // Results of the last block, by checkpoint name (null / nullopt if absent).
  const std::vector<uint8_t>* Packed(const std::string& name) const;
  std::optional<double> OutputError(const std::string& name) const;
  // Norm weights/biases AWQ changed (f32), by checkpoint name.
  const std::vector<float>* Norm(const std::string& name) const;
  // The f32 values that were packed when AWQ rescaled a weight (W·diag(s),
  // up_proj's rows divided by down_proj's scales), by checkpoint name.
  const std::vector<float>* Scaled(const std::string& name) const;

 private:
  CalibQuantizeOptions options_;
  std::map<std::string, std::vector<uint8_t>> packed_;
  std::map<std::string, double> error_;
  std::map<std::string, std::vector<float>> norms_;
  std::map<std::string, std::vector<float>> scaled_;
};

// w [n, k] as f32 from a float weight view (F32 / F16 / BF16, not packed).
Result<std::vector<float>> WeightToF32(const kernels::WeightView& w);

// A CalibSink that quantizes every block with a BlockQuantizer (for tools
// and tests that run RunCalibration directly).
class QuantizingSink final : public CalibSink {
 public:
  QuantizingSink(CalibQuantizeOptions options, FormatFor format_of)
      : quantizer_(std::move(options)), format_of_(std::move(format_of)) {}
  Status OnBlock(CalibBlock& block, std::vector<kernels::WeightView>& replace) override {
    BL_TRY(quantizer_.Quantize(block, format_of_, replace));
    for (const CalibTensor& t : block.tensors) {
      if (auto e = quantizer_.OutputError(t.name)) errors[t.name] = *e;
    }
    return Status::Ok();
  }
  std::map<std::string, double> errors;  // relative output error per quantized tensor

 private:
  BlockQuantizer quantizer_;
  FormatFor format_of_;
};

}  // namespace bitlens::quant
