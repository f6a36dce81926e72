// train/qat_weights: initial grids, f32 reads, dtype rounding and the packed
// rows of the QAT output (see qat_weights.h).
#include "train/qat_weights.h"

#include <cstring>

#include "base/f16.h"
#include "formats/hf_config.h"

namespace bitlens::train {

Result<std::unique_ptr<QatInit>> QatInit::Open(const std::string& method, const std::string& packed_dir) {
  auto init = std::unique_ptr<QatInit>(new QatInit());
  init->method_ = method;
  if (method == "rtn") {
    if (!packed_dir.empty()) return InvalidArgument("--init-from needs --init hqq or --init gptq (the method that wrote it)");
    return init;
  }
  if (method != "hqq" && method != "gptq") {
    return InvalidArgument("--init '" + method + "' is not one of rtn, hqq, gptq");
  }
  init->dir_ = packed_dir;
  BL_ASSIGN_OR_RETURN(Checkpoint ckpt, Checkpoint::Open(packed_dir));
  init->packed_.emplace(std::move(ckpt));
  BL_ASSIGN_OR_RETURN(init->quant_, quant::LoadQuantizationConfig(packed_dir));
  if (init->quant_.empty()) {
    return InvalidArgument(packed_dir + " is not a quantized checkpoint (config.json has no bitlens quantization_config)");
  }
  return init;
}

Result<FakeQuantGrids> QatInit::Grids(const quant::PlannedTensor& t, std::vector<float>& w) const {
  const quant::FormatInfo& f = *t.format;
  if (!packed_) return InitGridsRtn(f, w.data(), t.n, t.k);
  const quant::QuantizedTensor* q = quant_.Find(t.name);
  if (q == nullptr) {
    return InvalidArgument(dir_ + ": tensor '" + t.name + "' is not quantized there; quantize it with the same formats");
  }
  if (q->format != &f || q->n != t.n || q->k != t.k) {
    return InvalidArgument(dir_ + ": tensor '" + t.name + "' is " + q->format->name + " [" + std::to_string(q->n) + ", " +
                           std::to_string(q->k) + "] but qat plans " + f.name + " [" + std::to_string(t.n) + ", " +
                           std::to_string(t.k) + "]");
  }
  BL_ASSIGN_OR_RETURN(Tensor packed, packed_->Get(t.name));
  const size_t row_bytes = quant::RowBytes(f, t.k);
  if (packed.dtype() != DType::kU8 || packed.nbytes() != row_bytes * static_cast<size_t>(t.n)) {
    return InvalidArgument(packed_->FileOf(t.name) + ": tensor '" + t.name + "' is not " + std::to_string(t.n) +
                           " packed rows of " + std::to_string(row_bytes) + " bytes");
  }
  const uint8_t* rows = packed.data_as<uint8_t>();
  for (int64_t r = 0; r < t.n; ++r) f.dequantize_row_ref(f, rows + r * row_bytes, t.k, w.data() + r * t.k);
  return InitGridsFromPacked(f, rows, t.n, t.k);
}

Result<std::vector<float>> ReadF32(const Checkpoint& checkpoint, const std::string& name) {
  BL_ASSIGN_OR_RETURN(Tensor t, checkpoint.Get(name));
  if (t.dtype() != DType::kF32 && t.dtype() != DType::kF16 && t.dtype() != DType::kBF16) {
    return InvalidArgument(checkpoint.FileOf(name) + ": tensor '" + name + "' is " + std::string(DTypeName(t.dtype())) +
                           "; qat reads F32, BF16 or F16 weights (a full-precision checkpoint)");
  }
  const Tensor f = t.ToF32();
  const float* p = f.data_as<float>();
  return std::vector<float>(p, p + f.numel());
}

void RoundToDType(std::vector<float>& v, DType dtype) {
  if (dtype == DType::kF16) {
    for (float& x : v) x = F16ToF32(F32ToF16(x));
  } else if (dtype == DType::kBF16) {
    for (float& x : v) x = Bf16ToF32(F32ToBf16(x));
  }
}

namespace {

Status Stretch(std::string& spec, const std::string& what) {
  auto f = quant::FindFormat(spec);
  if (!f.ok() || (*f)->bits != 2 || (*f)->encoding != quant::ScaleEncoding::kF16ScaleMin) return Status::Ok();
  const std::string name = (*f)->name;  // "w2g<G>"
  const std::string stretched = "w2sg" + name.substr(3);
  if (!quant::FindFormat(stretched).ok()) {
    return InvalidArgument("--stretched: " + what + " format " + name + " has no stretched variant (w2sg32, w2sg64)");
  }
  spec = stretched;
  return Status::Ok();
}

}  // namespace

Status UseStretchedFormats(quant::PlanOptions& plan) {
  BL_TRY(Stretch(plan.vision, "--vision"));
  BL_TRY(Stretch(plan.projector, "--projector"));
  BL_TRY(Stretch(plan.decoder, "--decoder"));
  BL_TRY(Stretch(plan.embed, "--embed"));
  BL_TRY(Stretch(plan.lm_head, "--lm-head"));
  for (auto& [glob, format] : plan.overrides) BL_TRY(Stretch(format, "--override " + glob));
  return Status::Ok();
}

std::vector<uint8_t> PackRows(const FakeQuantGrids& grids, const float* w) {
  std::vector<uint8_t> out(quant::RowBytes(*grids.format, grids.k) * static_cast<size_t>(grids.n));
  PackWithGrids(grids, w, out.data());
  return out;
}

namespace {

class PackedRowsQuantizer : public quant::TensorQuantizer {
 public:
  PackedRowsQuantizer(const std::map<std::string, std::vector<uint8_t>>* rows, std::string method)
      : rows_(rows), method_(std::move(method)) {}
  std::string method() const override { return method_; }
  Status Quantize(const quant::TensorJob& job, std::span<uint8_t> out) override {
    const quant::PlannedTensor& t = *job.tensor;
    auto it = rows_->find(t.name);
    if (it == rows_->end()) return Internal("qat: no trained rows for " + t.name);
    const size_t row_bytes = quant::RowBytes(*t.format, t.k);
    const size_t begin = static_cast<size_t>(job.row0) * row_bytes, bytes = static_cast<size_t>(job.rows) * row_bytes;
    if (begin + bytes > it->second.size() || out.size() < bytes) return Internal("qat: row range of " + t.name);
    std::memcpy(out.data(), it->second.data() + begin, bytes);
    return Status::Ok();
  }

 private:
  const std::map<std::string, std::vector<uint8_t>>* rows_;
  std::string method_;
};

}  // namespace

std::unique_ptr<quant::TensorQuantizer> QatPackedWeights::MakeQuantizer(const std::string& method) const {
  return std::make_unique<PackedRowsQuantizer>(&rows_, method);
}

}  // namespace bitlens::train
