// bench/bench: validates the options, then runs bandwidth, kernels and the
// model in that order (the model's ratio needs the bandwidth at its thread count).
#include "bench/bench.h"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <thread>

#include "base/thread_pool.h"
#include "kernels/qmatmul_a8.h"
#include "model/export.h"

namespace bitlens::bench {
namespace {

std::string UtcNow() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string Fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", digits, v);
  return buf;
}

}  // namespace

Result<BenchReport> RunBench(const BenchOptions& o, const std::function<void(const std::string&)>& progress) {
  auto say = [&](const std::string& line) {
    if (progress) progress(line);
  };
  // ---- validate everything before measuring anything
  if (o.threads < 0) return InvalidArgument("--threads must be >= 0 (0 = all hardware threads)");
  if (o.repetitions < 1) return InvalidArgument("--reps must be >= 1");
  if (o.array_bytes != 0 && o.array_bytes < (int64_t{1} << 20)) return InvalidArgument("--array-mib must be >= 1");
  if (!(o.kernel_min_seconds >= 0)) return InvalidArgument("--min-time must be >= 0 seconds");
  if (o.prompt_tokens < 1) return InvalidArgument("--prompt-tokens must be >= 1");
  if (o.decode_tokens < 1) return InvalidArgument("--decode-tokens must be >= 1");
  std::vector<const quant::FormatInfo*> formats;
  std::vector<KernelShape> shapes;
  std::vector<int64_t> batch;
  if (o.kernels) {
    BL_ASSIGN_OR_RETURN(formats, ParseFormats(o.formats));
    BL_ASSIGN_OR_RETURN(shapes, ParseShapes(o.shapes));
    BL_ASSIGN_OR_RETURN(batch, ParsePositiveList(o.batch, "--batch"));
    for (const quant::FormatInfo* f : formats) {
      for (const KernelShape& s : shapes) {
        Status st = quant::CheckRowLength(*f, s.k);
        if (!st.ok()) return InvalidArgument("--shapes " + std::to_string(s.n) + "x" + std::to_string(s.k) + ": " + st.message());
      }
    }
  } else if (!o.formats.empty()) {
    return InvalidArgument("--formats needs --kernels");
  }
  kernels::QActivations activations = kernels::QActivations::kF32;
  if (o.activations == "a8") {
    activations = kernels::QActivations::kInt8;
  } else if (o.activations != "a16") {
    return InvalidArgument("--activations '" + o.activations + "' is not a16 (f32 activations) or a8 (int8 activations)");
  }
  if (o.profile && o.model_dir.empty()) return InvalidArgument("--profile needs --model");
  if (!o.model_dir.empty()) {
    std::error_code ec;
    if (!std::filesystem::is_directory(o.model_dir, ec) && !std::filesystem::is_regular_file(o.model_dir, ec)) {
      return NotFound("--model " + o.model_dir + ": no such directory (a checkpoint directory with config.json)");
    }
  }

  BenchReport report;
  report.started_utc = UtcNow();
  report.command_line = o.command_line;
  report.activations = kernels::QActivationsName(activations);
  report.machine = DescribeMachine();
  const int64_t n_threads = o.threads > 0 ? o.threads : report.machine.logical_cores;
  std::vector<int64_t> thread_counts = {1};
  if (n_threads > 1) thread_counts.push_back(n_threads);

  // Load the model first: a bad checkpoint fails before minutes of measuring.
  std::unique_ptr<Model> model;
  if (!o.model_dir.empty()) {
    say("loading " + o.model_dir);
    BL_ASSIGN_OR_RETURN(model, LoadModel(o.model_dir));
    say("loaded in " + Fixed(model->load_ms, 1) + " ms, resident " +
        Fixed(static_cast<double>(ResidentBytes()) / (1 << 20), 1) + " MiB");
  }

  // Restores the process-wide option however RunBench returns.
  struct ActivationsScope {
    kernels::QActivations previous = kernels::GetQActivations();
    ~ActivationsScope() { kernels::SetQActivations(previous); }
  } activations_scope;
  kernels::SetQActivations(activations);

  for (int64_t t : thread_counts) {
    say("bandwidth: STREAM triad, " + std::to_string(t) + (t == 1 ? " thread" : " threads") + ", best of " +
        std::to_string(o.repetitions));
    BandwidthOptions bo;
    bo.threads = t;
    bo.array_bytes = o.array_bytes;
    bo.repetitions = o.repetitions;
    BL_ASSIGN_OR_RETURN(BandwidthResult b, MeasureBandwidth(bo));
    say("  triad " + Fixed(b.triad_gb_per_s, 1) + " GB/s, read " + Fixed(b.read_gb_per_s, 1) + " GB/s");
    report.bandwidth.push_back(b);
  }
  auto bandwidth_at = [&](int64_t threads) {
    for (const BandwidthResult& b : report.bandwidth) {
      if (b.threads == threads) return b.triad_gb_per_s;
    }
    return 0.0;
  };

  if (o.kernels) {
    const size_t total = formats.size() * shapes.size() * batch.size() * thread_counts.size();
    size_t done = 0;
    KernelBenchOptions ko;
    ko.min_seconds = o.kernel_min_seconds;
    for (const quant::FormatInfo* f : formats) {
      for (const KernelShape& s : shapes) {
        for (int64_t m : batch) {
          for (int64_t t : thread_counts) {
            ++done;
            say("kernels " + std::to_string(done) + "/" + std::to_string(total) + ": " + f->name + " m=" +
                std::to_string(m) + " " + std::to_string(s.n) + "x" + std::to_string(s.k) + " t" + std::to_string(t));
            BL_ASSIGN_OR_RETURN(KernelResult r, RunKernelCase({f, s, m, t}, ko));
            const double bw = bandwidth_at(t);
            r.bandwidth_ratio = bw > 0 ? r.gb_per_s / bw : 0;
            report.kernels.push_back(r);
          }
        }
      }
    }
  }

  if (model) {
    const size_t previous = NumThreads();
    SetNumThreads(static_cast<size_t>(n_threads));
    ModelBenchOptions mo;
    mo.prompt_tokens = o.prompt_tokens;
    mo.decode_tokens = o.decode_tokens;
    mo.bandwidth_gb_per_s = bandwidth_at(n_threads);
    mo.progress = [&](const std::string& line) { say("model (" + std::to_string(n_threads) + " threads): " + line); };
    auto r = BenchModel(*model, mo);
    if (r.ok() && o.profile) {
      say("model (" + std::to_string(n_threads) + " threads): profile of " + std::to_string(o.decode_tokens) +
          " decode steps by op");
      auto p = ProfileDecodeStep(*model, o.prompt_tokens, o.decode_tokens);
      if (!p.ok()) {
        SetNumThreads(previous);
        return p.status();
      }
      report.profile = std::move(*p);
    }
    SetNumThreads(previous);
    if (!r.ok()) return r.status();
    // The machine may be shared: measure the bandwidth again after the model
    // and take the better figure as the ceiling (the ratio stays conservative).
    say("bandwidth again after the model, " + std::to_string(n_threads) + " threads");
    BandwidthOptions bo;
    bo.threads = n_threads;
    bo.array_bytes = o.array_bytes;
    bo.repetitions = o.repetitions;
    BL_ASSIGN_OR_RETURN(BandwidthResult after, MeasureBandwidth(bo));
    r->bandwidth_after_gb_per_s = after.triad_gb_per_s;
    SetCeiling(std::max(r->bandwidth_gb_per_s, after.triad_gb_per_s), &*r);
    report.model = std::move(*r);
  }
  return report;
}

}  // namespace bitlens::bench
