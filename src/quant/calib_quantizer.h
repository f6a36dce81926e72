// quant/calib_quantizer: the quantize pipeline's TensorQuantizer for
// calibrated methods (gptq, awq+gptq, awq+rtn, ...). It drives a CalibWalk
// unit by unit: at the start of each tower layer, the projector and each
// decoder layer it runs that block over the calibration samples, quantizes it
// (BlockQuantizer) and keeps the packed rows the pipeline then writes.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "model/model.h"
#include "quant/calib_quantize.h"
#include "quant/calib_runner.h"
#include "quant/pipeline.h"

namespace bitlens::quant {

class CalibratedQuantizer final : public TensorQuantizer {
 public:
  // Loads the full-precision model from model_dir (mapped, as the pipeline
  // maps it) and starts the walk over `samples`.
  static Result<std::unique_ptr<CalibratedQuantizer>> Create(const std::string& model_dir,
                                                             const std::vector<CalibSample>& samples,
                                                             const CalibOptions& calib,
                                                             const CalibQuantizeOptions& options);

  std::string method() const override;
  Status BeginUnit(const QuantPlan& plan, const PlanUnit& unit) override;
  Status Quantize(const TensorJob& job, std::span<uint8_t> out) override;
  std::optional<double> OutputError(const PlannedTensor& tensor) override;
  const std::vector<float>* Replacement(const PlannedTensor& tensor) override;

  const CalibSummary& summary() const { return walk_->summary(); }

 private:
  CalibratedQuantizer(std::unique_ptr<Model> model, std::unique_ptr<CalibWalk> walk, CalibQuantizeOptions options)
      : model_(std::move(model)), walk_(std::move(walk)), options_(options), block_(options) {}

  std::unique_ptr<Model> model_;
  std::unique_ptr<CalibWalk> walk_;
  CalibQuantizeOptions options_;
  BlockQuantizer block_;
  std::unique_ptr<TensorQuantizer> fallback_;  // embeddings, LM head, layers no sample reaches
};

}  // namespace bitlens::quant
