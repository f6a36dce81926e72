// quant/calib_plan: --target-bpw / --target-size. Walks the model over the
// calibration samples once (full-precision inputs), measures every block
// tensor's relative output error under each candidate format
// (quant/sensitivity), and allocates formats under the byte budget
// (quant/planner). The result is a per-tensor format map for the pipeline.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "base/status.h"
#include "model/model.h"
#include "quant/calib_jsonl.h"
#include "quant/calib_runner.h"
#include "quant/pipeline_plan.h"
#include "quant/planner.h"
#include "quant/sensitivity.h"

namespace bitlens::quant {

// Candidate formats when none are given: the table's grid formats from 2 to
// 8 bits that exist in this build, narrowest first.
std::vector<const FormatInfo*> DefaultPlanCandidates();
// "w2g64,w4g32,w8" -> formats; InvalidArgument naming an unknown or passthrough one.
Result<std::vector<const FormatInfo*>> ParsePlanCandidates(const std::string& list);

struct SensitivityTable {
  std::vector<const FormatInfo*> candidates;
  std::vector<PlanTensor> tensors;  // every linear of every calibrated block, in model order
  std::vector<CalibComponent> components;  // per tensor
};

// The sensitivity walk. Tensors whose name `include` rejects are skipped
// (e.g. the projector when it keeps its own format).
Result<SensitivityTable> MeasureSensitivity(const Model& model, const std::vector<CalibSample>& samples,
                                            const CalibOptions& calib, std::vector<const FormatInfo*> candidates,
                                            const std::function<bool(const std::string&)>& include,
                                            const SensitivityOptions& options = {});

struct MixedPrecisionPlan {
  Plan plan;
  std::vector<std::pair<std::string, std::string>> formats;  // (tensor name, format), for PlanOptions overrides
  std::map<std::string, double> sensitivity;  // per tensor: relative output error at the narrowest candidate
};

// Allocates formats for `table` within budget_bytes (bytes of the planned tensors only).
Result<MixedPrecisionPlan> AllocateFormats(const SensitivityTable& table, uint64_t budget_bytes);

// The whole --target-bpw / --target-size step for `bitlens quantize`: the
// tensors `plan_options` packs (except the projector, which keeps its own
// format) are measured on `samples` and allocated within the budget —
// target_bpw bits per weight over those tensors, or target_size bytes for the
// whole output minus the bytes of everything not planned. Exactly one target
// must be positive. The formats come back as (name, format) overrides.
Result<MixedPrecisionPlan> PlanForTarget(const Model& model, const std::vector<CalibSample>& samples,
                                         const CalibOptions& calib, const PlanOptions& plan_options,
                                         std::vector<const FormatInfo*> candidates, double target_bpw,
                                         uint64_t target_size);

}  // namespace bitlens::quant
