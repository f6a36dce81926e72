// runtime/eval_suite_quantize: one timed quantization run of the results
// table through the quantize pipeline (the library behind `bitlens
// quantize`), and the command line that does the same from a shell.
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <memory>

#include "quant/calib_quantizer.h"
#include "quant/pipeline.h"
#include "train/qat.h"
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

QatSettings ResolveQatSettings(const EvalSuiteOptions& o) {
  QatSettings s;
  s.steps = o.qat_steps > 0 ? o.qat_steps : (o.quick ? 2 : 200);
  s.batch = o.quick ? 1 : 4;
  s.synthetic = o.qat_synthetic >= 0 ? o.qat_synthetic : (o.quick ? 0 : 1024);
  s.eval_samples = o.quick ? 2 : 16;
  s.seed = o.data.seed;
  s.threads = o.threads;
  return s;
}

Result<double> QatWith(const quant::PlanOptions& plan, const std::string& source, const std::string& init_from,
                       const std::string& out, const Calibration& calib, const QatSettings& settings,
                       const Progress& progress) {
  const auto start = std::chrono::steady_clock::now();
  train::QatOptions q;
  q.model_dir = source;
  q.output_dir = out;
  q.plan = plan;
  q.init = "gptq";
  q.init_from = init_from;
  q.mode = train::QatMode::kEndToEnd;
  q.calib = calib.file;
  q.synthetic = settings.synthetic;
  q.eval_samples = settings.eval_samples;
  q.seed = settings.seed;
  q.steps = settings.steps;
  q.batch = settings.batch;
  q.threads = settings.threads;
  q.overwrite = true;
  q.command_line = QatCommand(plan, source, init_from, out, calib.file, settings);
  // A line every tenth of the run: QAT rows take minutes on the reference model.
  q.on_progress = [&](int64_t step, int64_t total, const std::string& detail) {
    const int64_t every = std::max<int64_t>(1, total / 10);
    if (step % every == 0 || step == total) {
      progress("qat step " + std::to_string(step) + "/" + std::to_string(total) + " " + detail);
    }
  };
  auto result = train::RunQat(q);
  if (!result.ok()) return result.status().WithContext("qat into " + out);
  return SecondsSince(start);
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

std::string QatCommand(const quant::PlanOptions& plan, const std::string& source, const std::string& init_from,
                       const std::string& out, const std::string& calib_path, const QatSettings& s) {
  return "bitlens qat --model " + source + " -o " + out + " --mode e2e --init gptq --init-from " + init_from +
         " --calib " + calib_path + " --synthetic " + std::to_string(s.synthetic) + " --eval " +
         std::to_string(s.eval_samples) + " --seed " + std::to_string(s.seed) + " --steps " + std::to_string(s.steps) +
         " --batch " + std::to_string(s.batch) + PlanFlags(plan) + " --force";
}

}  // namespace bitlens::suite
