// quant/calib_plan: sensitivity walk + knapsack allocation for --target-bpw.
#include "quant/calib_plan.h"

#include <sstream>

#include "quant/calib_quantize.h"
#include "quant/grid.h"

namespace bitlens::quant {
namespace {

// Measures each block tensor against the candidates; changes nothing.
class SensitivitySink final : public CalibSink {
 public:
  SensitivitySink(SensitivityTable& table, const std::function<bool(const std::string&)>& include,
                  const SensitivityOptions& options)
      : table_(table), include_(include), options_(options) {}
  Status OnBlock(CalibBlock& block, std::vector<kernels::WeightView>&) override {
    for (const CalibTensor& t : block.tensors) {
      if (include_ && !include_(t.name)) continue;
      BL_ASSIGN_OR_RETURN(std::vector<float> w, WeightToF32(t.weight));
      const LayerStats& stats = block.inputs[static_cast<size_t>(t.input)];
      BL_ASSIGN_OR_RETURN(std::vector<double> err,
                          RelativeOutputErrors(table_.candidates, w.data(), t.weight.n, t.weight.k,
                                               stats.rows_seen > 0 ? &stats : nullptr, options_));
      PlanTensor p;
      p.name = t.name;
      p.n = t.weight.n;
      p.k = t.weight.k;
      p.error = std::move(err);
      table_.tensors.push_back(std::move(p));
      table_.components.push_back(block.component);
    }
    return Status::Ok();
  }

 private:
  SensitivityTable& table_;
  const std::function<bool(const std::string&)>& include_;
  SensitivityOptions options_;
};

}  // namespace

std::vector<const FormatInfo*> DefaultPlanCandidates() {
  std::vector<const FormatInfo*> out;
  for (const char* name : {"w2g64", "w2g32dq", "w2g32", "w3g64", "w3g32", "w4g64", "w4g32", "w8"}) {
    auto f = FindFormat(name);
    if (f.ok()) out.push_back(*f);
  }
  return out;
}

Result<std::vector<const FormatInfo*>> ParsePlanCandidates(const std::string& list) {
  std::vector<const FormatInfo*> out;
  std::stringstream ss(list);
  std::string name;
  while (std::getline(ss, name, ',')) {
    if (name.empty()) continue;
    auto f = FindFormat(name);
    if (!f.ok()) return InvalidArgument("--candidates: " + f.status().message());
    if (!HasGrid(**f)) {
      return InvalidArgument("--candidates: " + name + " is a passthrough format; candidates must be quantized formats");
    }
    out.push_back(*f);
  }
  if (out.empty()) return InvalidArgument("--candidates: no formats given (e.g. w2g64,w4g32,w8)");
  return out;
}

Result<SensitivityTable> MeasureSensitivity(const Model& model, const std::vector<CalibSample>& samples,
                                            const CalibOptions& calib, std::vector<const FormatInfo*> candidates,
                                            const std::function<bool(const std::string&)>& include,
                                            const SensitivityOptions& options) {
  SensitivityTable table;
  table.candidates = std::move(candidates);
  if (table.candidates.empty()) return InvalidArgument("no candidate formats to plan with");
  CalibOptions walk = calib;
  walk.sequential = false;  // nothing is quantized: every block sees full-precision inputs
  SensitivitySink sink(table, include, options);
  BL_TRY(RunCalibration(model, samples, walk, sink).status());
  return table;
}

Result<MixedPrecisionPlan> AllocateFormats(const SensitivityTable& table, uint64_t budget_bytes) {
  MixedPrecisionPlan out;
  BL_ASSIGN_OR_RETURN(out.plan, PlanFormats(table.candidates, table.tensors, budget_bytes));
  size_t narrowest = 0;
  for (size_t c = 1; c < table.candidates.size(); ++c) {
    if (table.candidates[c]->bpw < table.candidates[narrowest]->bpw) narrowest = c;
  }
  for (size_t t = 0; t < table.tensors.size(); ++t) {
    const PlanTensor& p = table.tensors[t];
    out.formats.emplace_back(p.name, table.candidates[static_cast<size_t>(out.plan.choice[t])]->name);
    out.sensitivity[p.name] = p.error[narrowest];
  }
  return out;
}

Result<MixedPrecisionPlan> PlanForTarget(const Model& model, const std::vector<CalibSample>& samples,
                                         const CalibOptions& calib, const PlanOptions& plan_options,
                                         std::vector<const FormatInfo*> candidates, double target_bpw,
                                         uint64_t target_size) {
  if ((target_bpw > 0) == (target_size > 0)) return InvalidArgument("give one of --target-bpw and --target-size");
  BL_ASSIGN_OR_RETURN(QuantPlan base, PlanQuantization(model.dir, model.checkpoint, plan_options));
  std::map<std::string, const PlannedTensor*> packed;
  for (const PlannedTensor& t : base.tensors) {
    if (t.packed && t.component != Component::kProjector) packed[t.name] = &t;
  }
  auto include = [&](const std::string& name) { return packed.count(name) > 0; };
  BL_ASSIGN_OR_RETURN(SensitivityTable table, MeasureSensitivity(model, samples, calib, std::move(candidates), include));
  if (table.tensors.empty()) return InvalidArgument("no quantized layer weights to plan (check --decoder/--vision)");
  uint64_t budget = 0;
  if (target_bpw > 0) {
    budget = BudgetForBpw(target_bpw, table.tensors);
  } else {
    uint64_t planned_default = 0;
    for (const PlanTensor& t : table.tensors) planned_default += packed.at(t.name)->out_bytes;
    const uint64_t fixed = base.output_bytes - planned_default;
    if (target_size <= fixed) {
      return InvalidArgument("--target-size " + std::to_string(target_size) + " bytes leaves nothing for the planned "
                             "layers: the tensors outside them already take " + std::to_string(fixed) + " bytes");
    }
    budget = target_size - fixed;
  }
  return AllocateFormats(table, budget);
}

}  // namespace bitlens::quant
