// train/qat_weights: what QAT needs per quantized weight, shared by both
// modes — the initial grids (RTN, or a packed HQQ/GPTQ checkpoint), the
// source weights in f32, the rounding of weights kept as f16/bf16, and the
// packed rows handed to quant/pipeline when the output is written.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "base/status.h"
#include "formats/safetensors.h"
#include "quant/checkpoint.h"
#include "quant/pipeline.h"
#include "train/fake_quant.h"

namespace bitlens::train {

// The source of the initial grids.
class QatInit {
 public:
  // `method` "rtn" needs no directory; "hqq"/"gptq" read `packed_dir`, a
  // checkpoint `bitlens quantize --method <method>` wrote.
  static Result<std::unique_ptr<QatInit>> Open(const std::string& method, const std::string& packed_dir);

  // Grids for the planned packed weight `t` whose source values are w [n, k].
  // RTN: the MSE clip grids of w. Packed: the grids stored for t.name (same
  // format and shape, else InvalidArgument naming the directory), and w is
  // replaced by the packed weight's dequantized values, so the student starts
  // exactly at the post-training checkpoint (GPTQ's codes are not the nearest
  // ones of the source weights).
  Result<FakeQuantGrids> Grids(const quant::PlannedTensor& t, std::vector<float>& w) const;

  const std::string& method() const { return method_; }

 private:
  std::string method_, dir_;
  std::optional<Checkpoint> packed_;
  quant::QuantizationConfig quant_;
};

// The whole tensor `name` of `checkpoint` as f32 (F32/F16/BF16 sources).
Result<std::vector<float>> ReadF32(const Checkpoint& checkpoint, const std::string& name);

// Rounds v to what a tensor stored as `dtype` (F16/BF16; others unchanged) reads back.
void RoundToDType(std::vector<float>& v, DType dtype);

// Stretched variants of the 2-bit asymmetric formats in every component and
// override ("w2g32" -> "w2sg32"); InvalidArgument when a 2-bit format has none.
Status UseStretchedFormats(quant::PlanOptions& plan);

// Packed rows per tensor name, written by a TensorQuantizer that copies them
// into the pipeline's output (every packed tensor of the plan must be present).
class QatPackedWeights {
 public:
  void Set(const std::string& name, std::vector<uint8_t> rows) { rows_[name] = std::move(rows); }
  bool Has(const std::string& name) const { return rows_.count(name) != 0; }
  std::unique_ptr<quant::TensorQuantizer> MakeQuantizer(const std::string& method) const;

 private:
  std::map<std::string, std::vector<uint8_t>> rows_;
};

// PackWithGrids of w [n, k] into n rows of RowBytes(format, k) bytes.
std::vector<uint8_t> PackRows(const FakeQuantGrids& grids, const float* w);

}  // namespace bitlens::train
