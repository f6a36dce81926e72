// train/qat: RunQat checks the options, plans the formats as `bitlens
// quantize` does, prepares the initial grids (running HQQ/GPTQ in-process when
// asked), builds the examples, trains in the chosen mode and writes the
// packed rows through quant/pipeline (OUT.tmp renamed to OUT).
#include "train/qat.h"

#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <numeric>
#include <random>

#include <nlohmann/json.hpp>

#include "base/thread_pool.h"
#include "quant/calib_jsonl.h"
#include "quant/calib_quantizer.h"
#include "quant/pipeline.h"
#include "train/qat_run.h"

namespace bitlens::train {
namespace {

namespace fs = std::filesystem;

Status CheckOptions(const QatOptions& o) {
  if (o.model_dir.empty()) return InvalidArgument("qat needs --model DIR");
  if (o.output_dir.empty()) return InvalidArgument("qat needs -o OUT");
  if (o.steps < 0) return InvalidArgument("--steps must be >= 0");
  if (o.batch < 1) return InvalidArgument("--batch must be >= 1");
  if (!(o.lr >= 0) || o.lr > 1) return InvalidArgument("--lr must be in [0, 1]");
  if (!(o.temperature > 0)) return InvalidArgument("--temperature must be > 0");
  if (!(o.kl_weight >= 0) || !(o.hidden_weight >= 0) || !(o.ce_weight >= 0)) {
    return InvalidArgument("--kl-weight, --hidden-weight and --ce-weight must be >= 0");
  }
  if (o.kl_weight + o.hidden_weight + o.ce_weight <= 0) {
    return InvalidArgument("every loss weight is 0: set --kl-weight, --hidden-weight or --ce-weight");
  }
  if (o.synthetic < 0 || o.eval_samples < 0) return InvalidArgument("--synthetic and --eval must be >= 0");
  if (o.calib.empty() && o.synthetic == 0) {
    return InvalidArgument("qat needs training data: --calib FILE.jsonl and/or --synthetic N");
  }
  if (!o.init_from.empty() && o.init == "rtn") {
    return InvalidArgument("--init-from needs --init hqq or --init gptq (the method that wrote it)");
  }
  if (o.init != "rtn" && o.init != "hqq" && o.init != "gptq") {
    return InvalidArgument("--init '" + o.init + "' is not one of rtn, hqq, gptq");
  }
  if (o.init == "gptq" && o.init_from.empty() && o.calib.empty()) {
    return InvalidArgument("--init gptq runs GPTQ on the calibration data: add --calib FILE (or --init-from DIR)");
  }
  if (o.resume && o.mode == QatMode::kBlock) {
    return InvalidArgument("--resume applies to --mode e2e; block mode restarts (each block trains in one pass)");
  }
  if (o.resume && !fs::exists(QatStatePath(o.output_dir))) {
    return InvalidArgument("--resume: " + QatStatePath(o.output_dir) + " does not exist (nothing to resume)");
  }
  if (fs::exists(o.output_dir) && !o.overwrite) {
    return InvalidArgument(o.output_dir + " exists (use --force to replace it)");
  }
  return Status::Ok();
}

std::string Fingerprint(const QatOptions& o, const quant::QuantPlan& plan, size_t train_examples) {
  nlohmann::json j;
  j["model"] = fs::absolute(o.model_dir).lexically_normal().string();
  j["formats"] = plan.component_formats;
  j["overrides"] = o.plan.overrides;
  j["init"] = o.init;
  j["init_from"] = o.init_from;
  j["mode"] = o.mode == QatMode::kBlock ? "block" : "e2e";
  j["calib"] = o.calib;
  j["train_examples"] = train_examples;
  j["seed"] = o.seed;
  j["steps"] = o.steps;
  j["batch"] = o.batch;
  j["lr"] = o.lr;
  j["weights"] = {o.kl_weight, o.hidden_weight, o.ce_weight, o.temperature};
  return j.dump();
}

// Runs `bitlens quantize --method hqq|gptq` into dir with the same formats.
Status QuantizeForInit(const QatOptions& o, const std::string& dir) {
  std::unique_ptr<quant::TensorQuantizer> quantizer;
  if (o.init == "hqq") {
    BL_ASSIGN_OR_RETURN(quantizer, quant::MakeCalibrationFreeQuantizer("hqq"));
  } else {
    BL_ASSIGN_OR_RETURN(std::vector<quant::CalibSample> samples, quant::ReadCalibJsonl(o.calib));
    quant::CalibQuantizeOptions q;
    q.method = quant::QuantMethod::kGptq;
    BL_ASSIGN_OR_RETURN(quantizer, quant::CalibratedQuantizer::Create(o.model_dir, samples, quant::CalibOptions{}, q));
  }
  quant::PipelineOptions p;
  p.model_dir = o.model_dir;
  p.output_dir = dir;
  p.plan = o.plan;
  p.overwrite = true;
  p.quantizer = quantizer.get();
  p.cancel = o.cancel;
  p.command_line = "bitlens qat --init " + o.init + " (initial grids)";
  BL_ASSIGN_OR_RETURN(quant::PipelineResult r, quant::QuantizeCheckpoint(p));
  (void)r;
  return Status::Ok();
}

}  // namespace

std::string QatStatePath(const std::string& output_dir) {
  std::string p = output_dir;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  return p + ".qatstate";
}

size_t QatExampleIndex(uint64_t seed, int64_t step, int64_t batch, int64_t j, size_t count) {
  const uint64_t slot = static_cast<uint64_t>(step * batch + j);
  const uint64_t epoch = slot / count;
  std::vector<size_t> perm(count);
  std::iota(perm.begin(), perm.end(), size_t{0});
  std::mt19937_64 rng(seed * 0x9E3779B97F4A7C15ull + epoch);
  std::shuffle(perm.begin(), perm.end(), rng);
  return perm[slot % count];
}

Result<QatResult> RunQat(const QatOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  BL_TRY(CheckOptions(options));
  QatOptions o = options;
  SetNumThreads(static_cast<size_t>(std::max(0, o.threads)));
  // The pool splits the work; OpenBLAS runs single-threaded inside it (no oversubscription).
  openblas_set_num_threads(1);
  if (o.stretched) BL_TRY(UseStretchedFormats(o.plan));

  BL_ASSIGN_OR_RETURN(Checkpoint source, Checkpoint::Open(o.model_dir));
  BL_ASSIGN_OR_RETURN(quant::QuantPlan plan, quant::PlanQuantization(o.model_dir, source, o.plan));
  if (plan.config.model_type != "llava") {
    return InvalidArgument(o.model_dir + ": qat trains LLaVA checkpoints (model_type is '" + plan.config.model_type + "')");
  }
  for (const quant::PlannedTensor& t : plan.tensors) {
    if (t.weight && t.format == nullptr && t.src_dtype != DType::kF32 && t.src_dtype != DType::kF16 &&
        t.src_dtype != DType::kBF16) {
      return InvalidArgument(o.model_dir + " is already quantized (" + t.name + " is " +
                             std::string(DTypeName(t.src_dtype)) + "); qat starts from full precision");
    }
  }

  QatDataOptions d;
  d.calib = o.calib;
  d.synthetic = o.synthetic;
  d.eval_samples = o.eval_samples;
  d.seed = o.seed;
  BL_ASSIGN_OR_RETURN(QatData data, BuildQatData(o.model_dir, plan.config, d));

  // Initial grids; an in-process HQQ/GPTQ checkpoint lives next to the output until the end.
  std::string init_dir = o.init_from;
  bool remove_init_dir = false;
  if (o.init != "rtn" && init_dir.empty()) {
    init_dir = o.output_dir + ".init";
    BL_TRY(QuantizeForInit(o, init_dir));
    remove_init_dir = true;
  }
  struct RemoveDir {
    std::string dir;
    ~RemoveDir() {
      std::error_code ec;
      if (!dir.empty()) fs::remove_all(dir, ec);
    }
  } cleanup{remove_init_dir ? init_dir : std::string()};
  BL_ASSIGN_OR_RETURN(std::unique_ptr<QatInit> init, QatInit::Open(o.init, init_dir));

  QatContext context;
  context.options = &o;
  context.plan = &plan;
  context.source = &source;
  context.init = init.get();
  context.data = &data;
  context.fingerprint = Fingerprint(o, plan, data.train.size());

  QatResult result;
  result.output_dir = o.output_dir;
  result.train_samples = static_cast<int64_t>(data.train.size());
  QatPackedWeights packed;
  if (o.mode == QatMode::kBlock) {
    BL_TRY(RunBlockWise(context, &packed, &result));
  } else {
    BL_TRY(RunEndToEnd(context, &packed, &result));
  }

  std::unique_ptr<quant::TensorQuantizer> quantizer = packed.MakeQuantizer("qat-" + o.init);
  quant::PipelineOptions p;
  p.model_dir = o.model_dir;
  p.output_dir = o.output_dir;
  p.plan = o.plan;
  p.overwrite = o.overwrite || o.resume;
  p.quantizer = quantizer.get();
  p.cancel = o.cancel;
  p.command_line = o.command_line;
  auto written = quant::QuantizeCheckpoint(p);
  if (!written.ok()) {
    if (written.status().code() == StatusCode::kCancelled) {
      return Cancelled("interrupted while writing; the state " + QatStatePath(o.output_dir) + " is kept (--resume)");
    }
    return written.status();
  }
  result.bytes_written = written->bytes_written;
  std::error_code ec;
  fs::remove(QatStatePath(o.output_dir), ec);
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

}  // namespace bitlens::train
