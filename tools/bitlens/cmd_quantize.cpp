// bitlens quantize: a full-precision checkpoint -> a quantized one (packed
// weights + quantization_config), streamed tensor by tensor with a progress
// bar; Ctrl-C leaves nothing behind. All the work is quant/pipeline.
#include <atomic>
#include <csignal>
#include <cstdio>

#include "base/progress.h"
#include "commands.h"
#include "formats/safetensors.h"
#include "model/synth.h"
#include "quant/calib_jsonl.h"
#include "quant/calib_plan.h"
#include "quant/calib_quantizer.h"
#include "quant/pipeline.h"
#include "quant/report.h"

namespace bitlens::cli {
namespace {

std::atomic<bool> g_interrupted{false};
extern "C" void OnQuantizeInterrupt(int) { g_interrupted.store(true); }

struct QuantizeFlags {
  std::string model;
  std::string output;
  std::string method = "rtn";
  std::string calib;
  int64_t calib_tokens = 512;
  int64_t calib_samples = 0;
  bool no_sequential = false;
  double target_bpw = 0;
  std::string target_size;
  std::string candidates;
  quant::PlanOptions plan;
  std::vector<std::string> overrides;
  std::string max_shard_size = "2GB";
  int threads = 0;
  bool force = false;
  bool dry_run = false;
  std::string command_line;
};

Result<std::pair<std::string, std::string>> ParseOverride(const std::string& text) {
  const size_t eq = text.rfind('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == text.size()) {
    return InvalidArgument("--override '" + text + "' is not GLOB=FORMAT (e.g. 'model.layers.0.*=w4g32')");
  }
  return std::make_pair(text.substr(0, eq), text.substr(eq + 1));
}

std::string HumanBytes(uint64_t b) {
  char buf[32];
  if (b >= 1000000000ull) std::snprintf(buf, sizeof(buf), "%.2f GB", b / 1e9);
  else if (b >= 1000000ull) std::snprintf(buf, sizeof(buf), "%.2f MB", b / 1e6);
  else std::snprintf(buf, sizeof(buf), "%.1f kB", b / 1e3);
  return buf;
}

// The plan without writing: per component and format, tensors, params, bytes, bpw.
Status DryRun(const quant::PipelineOptions& o) {
  BL_ASSIGN_OR_RETURN(Checkpoint source, Checkpoint::Open(o.model_dir));
  BL_ASSIGN_OR_RETURN(quant::QuantPlan plan, quant::PlanQuantization(o.model_dir, source, o.plan));
  struct Row {
    int64_t tensors = 0, params = 0;
    uint64_t bytes = 0;
  };
  std::map<std::pair<std::string, std::string>, Row> rows;
  for (const quant::PlannedTensor& t : plan.tensors) {
    const std::string fmt = t.format != nullptr ? t.format->name : std::string(DTypeName(t.out_dtype));
    Row& r = rows[{quant::ComponentName(t.component), t.weight ? fmt : fmt + " (not a weight)"}];
    r.tensors += 1;
    r.params += NumElements(t.shape);
    r.bytes += t.out_bytes;
  }
  std::printf("%-10s %-22s %8s %14s %14s %8s\n", "component", "format", "tensors", "parameters", "bytes", "bpw");
  for (const auto& [key, r] : rows) {
    std::printf("%-10s %-22s %8lld %14lld %14llu %8.3f\n", key.first.c_str(), key.second.c_str(),
                (long long)r.tensors, (long long)r.params, (unsigned long long)r.bytes,
                r.params ? 8.0 * r.bytes / r.params : 0.0);
  }
  std::printf("total: %lld parameters, %s -> %s (%.3f bpw), %zu shard(s)%s\ndry run: nothing written\n",
              (long long)plan.total_params, HumanBytes(plan.source_bytes).c_str(),
              HumanBytes(plan.output_bytes).c_str(),
              plan.total_params ? 8.0 * plan.output_bytes / plan.total_params : 0.0, plan.shard_files.size(),
              plan.tied_lm_head ? "; lm head tied to the embeddings" : "");
  return Status::Ok();
}

Status RunQuantize(const QuantizeFlags& flags) {
  quant::PipelineOptions o;
  o.model_dir = flags.model;
  o.output_dir = flags.output;
  o.plan = flags.plan;
  for (const std::string& text : flags.overrides) {
    BL_ASSIGN_OR_RETURN(auto pair, ParseOverride(text));
    o.plan.overrides.push_back(pair);
  }
  BL_ASSIGN_OR_RETURN(o.plan.max_shard_bytes, ParseByteSize(flags.max_shard_size));
  o.overwrite = flags.force;
  o.threads = flags.threads;
  o.command_line = flags.command_line;
  if (flags.dry_run) return DryRun(o);
  if (o.output_dir.empty()) return InvalidArgument("quantize needs -o OUT (or --dry-run)");

  const bool calibrated = flags.method == "gptq" || flags.method.rfind("awq", 0) == 0;
  if (calibrated && flags.calib.empty()) {
    return InvalidArgument("--method " + flags.method + " needs calibration data: --calib FILE (JSONL of "
                           "{\"image\", \"prompt\", \"answer\"} lines)");
  }
  const bool targeted = flags.target_bpw > 0 || !flags.target_size.empty();
  if (targeted && flags.calib.empty()) {
    return InvalidArgument("--target-bpw/--target-size measure each layer's sensitivity on calibration data: "
                           "add --calib FILE");
  }
  if (!flags.calib.empty() && !calibrated && !targeted) {
    return InvalidArgument("--calib is used by gptq and awq+gptq (and --target-bpw), not by " + flags.method);
  }
  std::vector<quant::CalibSample> samples;
  quant::CalibOptions calib;
  calib.max_tokens_per_sample = flags.calib_tokens;
  calib.max_samples = flags.calib_samples;
  calib.sequential = !flags.no_sequential;
  if (!flags.calib.empty()) {
    BL_ASSIGN_OR_RETURN(samples, quant::ReadCalibJsonl(flags.calib));
  }
  if (targeted) {
    uint64_t target_size = 0;
    if (!flags.target_size.empty()) {
      BL_ASSIGN_OR_RETURN(target_size, ParseByteSize(flags.target_size));
    }
    std::vector<const quant::FormatInfo*> candidates = quant::DefaultPlanCandidates();
    if (!flags.candidates.empty()) {
      BL_ASSIGN_OR_RETURN(candidates, quant::ParsePlanCandidates(flags.candidates));
    }
    BL_ASSIGN_OR_RETURN(std::unique_ptr<Model> model, LoadModel(o.model_dir));
    BL_ASSIGN_OR_RETURN(quant::MixedPrecisionPlan mixed,
                        quant::PlanForTarget(*model, samples, calib, o.plan, candidates, flags.target_bpw, target_size));
    for (auto& f : mixed.formats) o.plan.overrides.push_back(f);
    o.sensitivity = mixed.sensitivity;
    std::printf("mixed precision: %zu layer tensors at %.3f bpw (%llu of %llu budget bytes)\n", mixed.formats.size(),
                mixed.plan.bpw(), (unsigned long long)mixed.plan.bytes, (unsigned long long)mixed.plan.budget_bytes);
  }
  std::unique_ptr<quant::TensorQuantizer> quantizer;
  const quant::CalibratedQuantizer* calibrated_quantizer = nullptr;
  if (calibrated) {
    quant::CalibQuantizeOptions q;
    std::string base = flags.method;
    if (base.rfind("awq", 0) == 0) {
      q.awq = true;
      base = base == "awq" ? "rtn" : base.substr(base.find('+') == std::string::npos ? 3 : base.find('+') + 1);
    }
    auto m = quant::ParseQuantMethod(base);
    if (!m.ok()) return InvalidArgument("--method " + flags.method + ": " + m.status().message());
    q.method = *m;
    BL_ASSIGN_OR_RETURN(std::unique_ptr<quant::CalibratedQuantizer> cq,
                        quant::CalibratedQuantizer::Create(o.model_dir, samples, calib, q));
    calibrated_quantizer = cq.get();
    quantizer = std::move(cq);
  } else {
    BL_ASSIGN_OR_RETURN(quantizer, quant::MakeCalibrationFreeQuantizer(flags.method));
  }
  o.quantizer = quantizer.get();

  g_interrupted.store(false);
  auto old_int = std::signal(SIGINT, OnQuantizeInterrupt);
  auto old_term = std::signal(SIGTERM, OnQuantizeInterrupt);
  o.cancel = &g_interrupted;
  std::unique_ptr<ProgressBar> bar;
  o.on_progress = [&](const quant::QuantProgress& p) {
    if (p.params_total < 16'000'000) return;  // tiny models finish before a bar is worth drawing
    if (!bar) bar = std::make_unique<ProgressBar>("quantize", static_cast<uint64_t>(p.params_total));
    bar->Update(static_cast<uint64_t>(p.params_done),
                std::to_string(p.tensor + 1) + "/" + std::to_string(p.tensors) + " " + p.name);
  };
  auto result = quant::QuantizeCheckpoint(o);
  std::signal(SIGINT, old_int);
  std::signal(SIGTERM, old_term);
  if (!result.ok()) {
    if (bar) bar->Abandon();
    if (result.status().code() == StatusCode::kCancelled) {
      return Cancelled("interrupted; nothing was written to " + o.output_dir);
    }
    return result.status();
  }
  if (bar) bar->Finish(std::to_string(result->tensors.size()) + " tensors");
  if (calibrated_quantizer != nullptr) {
    const quant::CalibSummary& c = calibrated_quantizer->summary();
    std::printf("calibration: %lld samples (%lld with images), %lld tokens, hidden states %.1f MiB, "
                "largest block statistics %.1f MiB, %lld blocks\n",
                (long long)c.samples, (long long)c.images, (long long)c.tokens, c.hidden_bytes / 1048576.0,
                c.peak_stats_bytes / 1048576.0, (long long)c.blocks);
  }
  std::printf("wrote %s (%s, method %s)\n%s\nreport: %s/report.html\n", result->output_dir.c_str(),
              HumanBytes(result->bytes_written).c_str(), result->method.c_str(),
              quant::ReportSummaryLine(*result).c_str(), result->output_dir.c_str());
  return Status::Ok();
}

}  // namespace

void AddQuantizeCommand(CLI::App& app, Status* result) {
  auto f = std::make_shared<QuantizeFlags>();
  auto* cmd = app.add_subcommand("quantize", "Quantize a checkpoint (mixed precision per component and layer)");
  cmd->add_option("--model", f->model, "full-precision checkpoint directory")->required();
  cmd->add_option("-o,--output", f->output, "output directory (written as OUT.tmp, then renamed)");
  cmd->add_option("--method", f->method, "rtn | hqq (no calibration) | gptq | awq+gptq (need --calib)")
      ->capture_default_str();
  cmd->add_option("--calib", f->calib, "calibration JSONL ({\"image\", \"prompt\", \"answer\"} per line)");
  cmd->add_option("--calib-tokens", f->calib_tokens, "tokens kept per calibration sample")->capture_default_str();
  cmd->add_option("--calib-samples", f->calib_samples, "calibration samples used from the top of the file (0 = all)");
  cmd->add_flag("--no-sequential", f->no_sequential,
                "feed full-precision layer outputs forward during calibration (default: the quantized ones)");
  cmd->add_option("--target-bpw", f->target_bpw, "plan formats per layer tensor to this many bits per weight");
  cmd->add_option("--target-size", f->target_size, "plan formats per layer tensor so the output fits, e.g. 2.5GB");
  cmd->add_option("--candidates", f->candidates, "formats the planner may pick, e.g. w2g64,w4g32,w8");
  cmd->add_option("--vision", f->plan.vision, "format of the vision tower's linear weights")->capture_default_str();
  cmd->add_option("--projector", f->plan.projector, "format of the multi-modal projector")->capture_default_str();
  cmd->add_option("--decoder", f->plan.decoder, "format of the decoder layers' linear weights")->capture_default_str();
  cmd->add_option("--embed", f->plan.embed, "format of the token embedding table")->capture_default_str();
  cmd->add_option("--lm-head", f->plan.lm_head, "format of an untied lm head (a tied head is the embedding)")
      ->capture_default_str();
  cmd->add_option("--override", f->overrides, "GLOB=FORMAT over full tensor names, repeatable, last match wins");
  cmd->add_option("--threads", f->threads, "worker threads (0 = all cores)");
  cmd->add_option("--max-shard-size", f->max_shard_size, "shard size limit, e.g. 2GB, 500MB")->capture_default_str();
  cmd->add_flag("--force", f->force, "replace an existing output directory");
  cmd->add_flag("--dry-run", f->dry_run, "print the plan (formats, bytes, bpw per component) without writing");
  cmd->callback([f, result] {
    // The effective settings, defaults included, for the report.
    f->command_line = "bitlens quantize --model " + f->model + " -o " + f->output + " --method " + f->method +
                      (f->calib.empty() ? "" : " --calib " + f->calib + " --calib-tokens " + std::to_string(f->calib_tokens)) +
                      (f->target_bpw > 0 ? " --target-bpw " + std::to_string(f->target_bpw) : "") +
                      (f->target_size.empty() ? "" : " --target-size " + f->target_size) + " --vision " + f->plan.vision +
                      " --projector " + f->plan.projector + " --decoder " + f->plan.decoder + " --embed " +
                      f->plan.embed + " --lm-head " + f->plan.lm_head;
    for (const std::string& o : f->overrides) f->command_line += " --override '" + o + "'";
    *result = RunQuantize(*f);
  });
}

}  // namespace bitlens::cli
