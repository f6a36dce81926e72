// runtime/eval_suite_quantize: one timed quantization run of the results
// table through the quantize pipeline (the library behind `bitlens
// quantize`), and the command line that does the same from a shell.
#include <chrono>
#include <filesystem>
#include <memory>

#include "quant/calib_quantizer.h"
#include "quant/pipeline.h"
#include "runtime/eval_suite_steps.h"

namespace bitlens::suite {

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

Result<double> QuantizeWith(const std::string& method, const quant::PlanOptions& plan, const std::string& source,
                            const std::string& out, const Calibration& calib) {
  const auto start = std::chrono::steady_clock::now();
  std::unique_ptr<quant::TensorQuantizer> quantizer;
  if (method == "gptq") {
    if (calib.samples.empty()) return InvalidArgument("gptq needs calibration samples");
    quant::CalibQuantizeOptions q;
    q.method = quant::QuantMethod::kGptq;
    BL_ASSIGN_OR_RETURN(std::unique_ptr<quant::CalibratedQuantizer> cq,
                        quant::CalibratedQuantizer::Create(source, calib.samples, calib.options, q));
    quantizer = std::move(cq);
  } else {
    BL_ASSIGN_OR_RETURN(quantizer, quant::MakeCalibrationFreeQuantizer(method));
  }
  quant::PipelineOptions o;
  o.model_dir = source;
  o.output_dir = out;
  o.plan = plan;
  o.overwrite = true;
  o.quantizer = quantizer.get();
  o.command_line = QuantizeCommand(method, plan, source, out, method == "gptq" ? calib.path : "");
  auto result = quant::QuantizeCheckpoint(o);
  if (!result.ok()) return result.status().WithContext(method + " into " + out);
  return SecondsSince(start);
}

// The QAT rows wait for `bitlens qat`: until the build has it, they fail
// loudly instead of showing anything (callers check QatAvailable first and
// point at --no-qat).
bool QatBuilt() { return false; }

Result<double> QatWith(const quant::PlanOptions& plan, const std::string& source, const std::string& out,
                       const Calibration& calib, bool quick) {
  (void)plan, (void)source, (void)out, (void)calib, (void)quick;
  return Unsupported("QAT rows need `bitlens qat`, which this build does not have yet; "
                     "run eval-suite with --no-qat to produce the other rows");
}

namespace {

std::string PlanFlags(const quant::PlanOptions& plan) {
  return " --vision " + plan.vision + " --projector " + plan.projector + " --decoder " + plan.decoder + " --embed " +
         plan.embed + " --lm-head " + plan.lm_head;
}

}  // namespace

std::string QuantizeCommand(const std::string& method, const quant::PlanOptions& plan, const std::string& source,
                            const std::string& out, const std::string& calib_path) {
  std::string c = "bitlens quantize --model " + source + " -o " + out + " --method " + method;
  if (!calib_path.empty()) c += " --calib " + calib_path;
  return c + PlanFlags(plan) + " --force";
}

std::string QatCommand(const quant::PlanOptions& plan, const std::string& source, const std::string& out,
                       const std::string& calib_path, bool quick) {
  (void)quick;
  return "bitlens qat --model " + source + " --calib " + calib_path + PlanFlags(plan) + " -o " + out;
}

}  // namespace bitlens::suite

namespace bitlens {
bool QatAvailable() { return suite::QatBuilt(); }
}  // namespace bitlens
