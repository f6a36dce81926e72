// quant/calib_quantizer: maps the pipeline's units onto calibration blocks.
#include "quant/calib_quantizer.h"

#include <cstring>

namespace bitlens::quant {

Result<std::unique_ptr<CalibratedQuantizer>> CalibratedQuantizer::Create(const std::string& model_dir,
                                                                         const std::vector<CalibSample>& samples,
                                                                         const CalibOptions& calib,
                                                                         const CalibQuantizeOptions& options) {
  BL_ASSIGN_OR_RETURN(std::unique_ptr<Model> model, LoadModel(model_dir));
  BL_ASSIGN_OR_RETURN(std::unique_ptr<CalibWalk> walk, CalibWalk::Start(*model, samples, calib));
  std::unique_ptr<CalibratedQuantizer> q(new CalibratedQuantizer(std::move(model), std::move(walk), options));
  q->fallback_ = MakeRtnQuantizer(RangeSearch::kMseClip);
  return q;
}

std::string CalibratedQuantizer::method() const {
  return std::string(options_.awq ? "awq+" : "") + QuantMethodName(options_.method);
}

Status CalibratedQuantizer::BeginUnit(const QuantPlan& plan, const PlanUnit& unit) {
  CalibComponent c;
  if (unit.component == Component::kVision && unit.layer >= 0) c = CalibComponent::kVision;
  else if (unit.component == Component::kProjector) c = CalibComponent::kProjector;
  else if (unit.component == Component::kDecoder && unit.layer >= 0) c = CalibComponent::kDecoder;
  else return Status::Ok();
  const int64_t layer = c == CalibComponent::kProjector ? 0 : unit.layer;
  if (!walk_->NextIs(c, layer)) return Status::Ok();  // e.g. tower layers past the feature layer
  BL_ASSIGN_OR_RETURN(CalibBlock * block, walk_->Next());
  auto format_of = [&](const std::string& name) -> const FormatInfo* {
    for (size_t i = unit.first; i < unit.first + unit.count; ++i) {
      const PlannedTensor& t = plan.tensors[i];
      if (t.name == name) return t.packed ? t.format : nullptr;
    }
    return nullptr;
  };
  std::vector<kernels::WeightView> replace;
  BL_TRY(block_.Quantize(*block, format_of, replace));
  return walk_->Finish(replace);
}

Status CalibratedQuantizer::Quantize(const TensorJob& job, std::span<uint8_t> out) {
  const PlannedTensor& t = *job.tensor;
  const std::vector<uint8_t>* packed = block_.Packed(t.name);
  if (packed == nullptr) return fallback_->Quantize(job, out);
  const size_t row_bytes = RowBytes(*t.format, t.k);
  const size_t bytes = static_cast<size_t>(job.rows) * row_bytes;
  if (out.size() != bytes || static_cast<size_t>(job.row0 + job.rows) * row_bytes > packed->size()) {
    return Internal("calibrated quantizer: rows " + std::to_string(job.row0) + "+" + std::to_string(job.rows) +
                    " of " + t.name + " do not match the packed tensor");
  }
  std::memcpy(out.data(), packed->data() + static_cast<size_t>(job.row0) * row_bytes, bytes);
  return Status::Ok();
}

std::optional<double> CalibratedQuantizer::OutputError(const PlannedTensor& tensor) {
  return block_.OutputError(tensor.name);
}

const std::vector<float>* CalibratedQuantizer::Replacement(const PlannedTensor& tensor) {
  if (const std::vector<float>* norm = block_.Norm(tensor.name)) return norm;
  return block_.Scaled(tensor.name);
}

}  // namespace bitlens::quant
