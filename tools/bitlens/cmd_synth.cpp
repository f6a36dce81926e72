// bitlens synth: writes a random-weight checkpoint of a preset in the exact
// Hugging Face layout (see model/synth.h). Ctrl-C leaves nothing behind.
#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>

#include "commands.h"
#include "model/inspect.h"
#include "model/synth.h"

namespace bitlens::cli {
namespace {

std::atomic<bool> g_interrupted{false};
extern "C" void OnInterrupt(int) { g_interrupted.store(true); }

struct SynthFlags {
  std::string family;
  std::string preset = "tiny";
  std::string dtype;
  uint64_t seed = 0;
  std::string layout = "v4";
  std::string output;
  std::string max_shard_size = "2GB";
  bool force = false;
  bool dry_run = false;
  bool json = false;
};

Result<SynthOptions> ToOptions(const SynthFlags& f) {
  SynthOptions o;
  if (!f.family.empty()) {
    o.family = SynthFamilyFromName(f.family);
    if (!o.family) return InvalidArgument("--family '" + f.family + "' is not one of llava, llava-siglip, llama, phi3");
  }
  o.preset = f.preset;
  if (!f.dtype.empty()) {
    o.dtype = SynthDTypeFromName(f.dtype);
    if (!o.dtype) return InvalidArgument("--dtype '" + f.dtype + "' is not one of f32, bf16, f16");
  }
  o.seed = f.seed;
  auto layout = HfLayoutFromName(f.layout);
  if (!layout) return InvalidArgument("--layout '" + f.layout + "' is not v4, v5, v5-module or v5-saved");
  o.layout = *layout;
  BL_ASSIGN_OR_RETURN(o.max_shard_bytes, ParseByteSize(f.max_shard_size));
  o.output_dir = f.output;
  o.overwrite = f.force;
  return o;
}

Status DryRun(const SynthOptions& o, bool as_json) {
  BL_ASSIGN_OR_RETURN(SynthPlan plan, PlanSynth(o));
  std::vector<TensorInfo> tensors;
  for (const auto& t : plan.tensors) tensors.push_back({t.name, plan.dtype, t.shape});
  ModelReport report = InspectTensors(plan.config, tensors);
  for (const auto& s : plan.shards) report.shards.push_back({s.file, static_cast<int64_t>(s.tensors.size()), s.bytes});
  if (as_json) {
    std::fputs(FormatReportJson(report).c_str(), stdout);
  } else {
    std::printf("preset        %s: %s\n", plan.preset.name.c_str(), plan.preset.note.c_str());
    std::fputs(FormatReportText(report).c_str(), stdout);
    std::printf("dry run: nothing written (shard sizes above are tensor bytes)\n");
  }
  return Status::Ok();
}

double PeakRssMiB() {
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss / 1024.0;  // Linux reports KiB
}

Status RunSynth(const SynthFlags& flags) {
  BL_ASSIGN_OR_RETURN(SynthOptions options, ToOptions(flags));
  if (flags.dry_run) return DryRun(options, flags.json);
  if (options.output_dir.empty()) return InvalidArgument("synth needs -o DIR (or --dry-run)");

  BL_ASSIGN_OR_RETURN(SynthPreset preset, FindSynthPreset(options.family, options.preset));
  std::printf("synth %s: %s\n", preset.name.c_str(), preset.note.c_str());
  std::fflush(stdout);
  g_interrupted.store(false);
  auto old_int = std::signal(SIGINT, OnInterrupt);
  auto old_term = std::signal(SIGTERM, OnInterrupt);
  options.cancel = &g_interrupted;
  const auto start = std::chrono::steady_clock::now();
  bool progress_shown = false;
  options.on_progress = [&](const SynthProgress& p) {
    if (p.bytes_total < (64u << 20)) return;  // tiny models finish before a line is worth it
    progress_shown = true;
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::fprintf(stderr, "\rsynth: %.2f / %.2f GB (%3.0f%%), shard %zu/%zu, %.1f s   ", p.bytes_done / 1e9,
                 p.bytes_total / 1e9, p.bytes_total ? 100.0 * p.bytes_done / p.bytes_total : 100.0, p.shard + 1,
                 p.num_shards, secs);
    std::fflush(stderr);
  };
  auto result = Synthesize(options);
  std::signal(SIGINT, old_int);
  std::signal(SIGTERM, old_term);
  if (progress_shown) std::fputc('\n', stderr);
  if (!result.ok()) {
    if (result.status().code() == StatusCode::kCancelled) {
      return Cancelled("interrupted; nothing was written to " + options.output_dir);
    }
    return result.status();
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("wrote %s: %zu files, %s bytes, %s parameters in %.1f s; peak RSS %.1f MiB\n", result->output_dir.c_str(),
              result->files.size(), WithThousands(result->bytes_written).c_str(),
              WithThousands(result->total_params).c_str(), secs, PeakRssMiB());
  return Status::Ok();
}

}  // namespace

void AddSynthCommand(CLI::App& app, Status* result) {
  auto flags = std::make_shared<SynthFlags>();
  auto* cmd = app.add_subcommand("synth", "Write a random-weight checkpoint in the exact Hugging Face layout");
  cmd->add_option("--family", flags->family, "llava | llava-siglip | llama | phi3 (implied by real-shape presets)");
  cmd->add_option("--preset", flags->preset, "tiny | phi-4-mini | phi-3.5-vision | llava-1.5-7b | smolvlm-256m")
      ->capture_default_str();
  cmd->add_option("--dtype", flags->dtype, "f32 | bf16 | f16 (default: the preset's; tiny is f32)");
  cmd->add_option("--seed", flags->seed, "random seed; the same seed writes the same bytes")->capture_default_str();
  cmd->add_option("--layout", flags->layout, "LLaVA tensor names: v4 (Hub files), v5 (model.language_model...), v5-module, v5-saved")
      ->capture_default_str();
  cmd->add_option("-o,--output", flags->output, "output directory (written as DIR.tmp, then renamed)");
  cmd->add_option("--max-shard-size", flags->max_shard_size, "shard size limit, e.g. 2GB, 500MB")->capture_default_str();
  cmd->add_flag("--force", flags->force, "replace an existing output directory");
  cmd->add_flag("--dry-run", flags->dry_run, "print the plan (parameters, bytes, shards) without writing");
  cmd->add_flag("--json", flags->json, "with --dry-run: print the plan as JSON");
  cmd->callback([flags, result] { *result = RunSynth(*flags); });
}

}  // namespace bitlens::cli
