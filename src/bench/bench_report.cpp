// bench/bench_report: the human table and the JSON of a BenchReport.
#include <cstdarg>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "bench/bench.h"

namespace bitlens::bench {
namespace {

std::string Printf(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
std::string Printf(const char* fmt, ...) {
  char buf[512];
  va_list args;
  va_start(args, fmt);
  std::vsnprintf(buf, sizeof(buf), fmt, args);
  va_end(args);
  return buf;
}

std::string Load(double load) { return load < 0 ? "?" : Printf("%.2f", load); }

}  // namespace

std::string FormatBenchText(const BenchReport& r) {
  const MachineInfo& m = r.machine;
  std::string out;
  out += Printf("machine   %s, %lld logical cores, LLC %.0f MiB, RAM %.1f GiB\n", m.cpu_model.c_str(),
                static_cast<long long>(m.logical_cores), m.llc_bytes / 1048576.0, m.ram_bytes / 1073741824.0);
  out += Printf("build     %s, %s, Highway target %s, %s\n", m.compiler.c_str(), m.build_type.c_str(),
                m.hwy_target.c_str(), m.git_describe.empty() ? "revision unknown" : m.git_describe.c_str());
  out += Printf("matmuls   quantized weights with %s activations\n",
                r.activations == "a8" ? "int8 (W2A8)" : "f32 (W2A16)");
  out += Printf("load      %s (1-min load average at start; the machine may be shared)\n\n",
                Load(m.load_average_1min).c_str());

  out += "memory bandwidth (STREAM triad, best of passes; read = sum over two arrays)\n";
  out += "threads   triad GB/s   median GB/s   read GB/s   array MiB   load\n";
  for (const BandwidthResult& b : r.bandwidth) {
    out += Printf("%7lld   %10.1f   %11.1f   %9.1f   %9.0f   %s\n", static_cast<long long>(b.threads), b.triad_gb_per_s,
                  b.triad_median_gb_per_s, b.read_gb_per_s, b.array_bytes / 1048576.0, Load(b.load_average_1min).c_str());
  }

  if (!r.kernels.empty()) {
    out += "\nkernels (weights streamed from DRAM; best call; ratio = weight GB/s / triad GB/s at the same threads)\n";
    out += "format    m      n x k         threads   weight MiB    ms/call   weight GB/s   GFLOP/s   ratio\n";
    for (const KernelResult& k : r.kernels) {
      out += Printf("%-8s %3lld  %5lld x %-5lld   %7lld   %10.2f   %8.3f   %11.1f   %7.1f   %5.2f\n", k.format.c_str(),
                    static_cast<long long>(k.m), static_cast<long long>(k.n), static_cast<long long>(k.k),
                    static_cast<long long>(k.threads), k.weight_bytes / 1048576.0, k.best_s * 1e3, k.gb_per_s,
                    k.gflop_per_s, k.bandwidth_ratio);
    }
  }

  if (r.model) {
    const ModelBenchResult& d = *r.model;
    out += "\nmodel     " + d.model_dir + " (" + d.architecture + ")\n";
    out += Printf("weights   %.2f B parameters; %s\n", d.parameters / 1e9, d.weight_formats.c_str());
    out += Printf("threads   %lld\n", static_cast<long long>(d.threads));
    out += Printf("bytes/token  %.1f MiB = layers %.1f MiB + norms %.2f MiB + lm_head %.1f MiB + embedding row %.3f MiB\n",
                  d.bytes.total() / 1048576.0, d.bytes.layer_matrices / 1048576.0,
                  (d.bytes.layer_vectors + d.bytes.final_norm) / 1048576.0, d.bytes.lm_head / 1048576.0,
                  d.bytes.embed_row / 1048576.0);
    out += Printf("prefill   %lld tokens in %.2f s: %.1f tokens/s\n", static_cast<long long>(d.prompt_tokens), d.prefill_s,
                  d.prefill_tokens_per_s);
    out += Printf("decode    %lld tokens in %.2f s: %.2f tokens/s (step median %.1f ms, best %.1f ms)\n",
                  static_cast<long long>(d.decode_tokens), d.decode_s, d.decode_tokens_per_s, d.decode_step_median_ms,
                  d.decode_step_best_ms);
    out += Printf("cpu       %.2f s of CPU over %lld threads during decode: %.2f tokens/s while running "
                  "(the run held its cores %.0f%% of the wall time)\n",
                  d.decode_cpu_s, static_cast<long long>(d.threads), d.decode_tokens_per_cpu_s,
                  d.decode_s > 0 ? 100.0 * d.decode_cpu_s / (d.threads * d.decode_s) : 0.0);
    if (d.bandwidth_gb_per_s > 0) {
      out += Printf("ceiling   %.1f GB/s (best triad before/after; after: %.1f) / %.1f MiB per token = %.2f tokens/s\n",
                    d.bandwidth_gb_per_s, d.bandwidth_after_gb_per_s, d.bytes.total() / 1048576.0, d.ceiling_tokens_per_s);
      out += Printf("ratio     achieved / ceiling = %.2f (with the median step: %.2f)\n", d.ceiling_ratio,
                    d.ceiling_ratio_median);
    }
    out += Printf("matmuls   the step's GEMVs alone: %.1f ms (%.1f GB/s); the rest of a median step: %.1f ms\n",
                  d.matmul_pass_ms, d.matmul_gb_per_s, d.decode_step_median_ms - d.matmul_pass_ms);
    out += Printf("kv cache  %.1f MiB read per token at the mean position (not in bytes/token)\n",
                  d.kv_bytes_per_token / 1048576.0);
    out += Printf("load      %s after decode\n", Load(d.load_average_1min).c_str());
  }
  if (r.profile) {
    const DecodeProfile& p = *r.profile;
    out += Printf("\ndecode step by op (fastest of %lld steps from position %lld): %.1f ms\n",
                  static_cast<long long>(p.steps), static_cast<long long>(p.position), p.step_ms);
    out += "op                   calls       ms   share   weight MiB   GB/s\n";
    for (const ProfileRow& row : p.rows) {
      out += Printf("%-18s %7lld %8.2f  %5.1f%%", row.op.c_str(), static_cast<long long>(row.calls_per_step),
                    row.ms_per_step, p.step_ms > 0 ? 100.0 * row.ms_per_step / p.step_ms : 0.0);
      if (row.weight_bytes > 0 && row.ms_per_step > 0) {
        out += Printf("   %10.1f %6.1f", row.weight_bytes / 1048576.0, row.weight_bytes / row.ms_per_step / 1e6);
      }
      out += "\n";
    }
  }
  return out;
}

std::string FormatBenchJson(const BenchReport& r) {
  using nlohmann::json;
  const MachineInfo& m = r.machine;
  json j;
  j["bitlens_bench_version"] = 1;
  j["started_utc"] = r.started_utc;
  j["command"] = r.command_line;
  j["activations"] = r.activations;
  j["machine"] = {{"cpu_model", m.cpu_model},     {"logical_cores", m.logical_cores},
                  {"llc_bytes", m.llc_bytes},     {"ram_bytes", m.ram_bytes},
                  {"hwy_target", m.hwy_target},   {"compiler", m.compiler},
                  {"build_type", m.build_type},   {"git_describe", m.git_describe},
                  {"kernel", m.kernel},           {"load_average_1min", m.load_average_1min}};
  j["bandwidth"] = json::array();
  for (const BandwidthResult& b : r.bandwidth) {
    j["bandwidth"].push_back({{"threads", b.threads},
                              {"array_bytes", b.array_bytes},
                              {"repetitions", b.repetitions},
                              {"triad_gb_per_s", b.triad_gb_per_s},
                              {"triad_median_gb_per_s", b.triad_median_gb_per_s},
                              {"read_gb_per_s", b.read_gb_per_s},
                              {"load_average_1min", b.load_average_1min}});
  }
  j["kernels"] = json::array();
  for (const KernelResult& k : r.kernels) {
    j["kernels"].push_back({{"format", k.format},         {"m", k.m},
                            {"n", k.n},                   {"k", k.k},
                            {"threads", k.threads},       {"weight_bytes", k.weight_bytes},
                            {"copies", k.copies},         {"calls", k.calls},
                            {"best_s", k.best_s},         {"median_s", k.median_s},
                            {"gb_per_s", k.gb_per_s},     {"gflop_per_s", k.gflop_per_s},
                            {"bandwidth_ratio", k.bandwidth_ratio}});
  }
  if (r.model) {
    const ModelBenchResult& d = *r.model;
    j["model"] = {{"model_dir", d.model_dir},
                  {"architecture", d.architecture},
                  {"threads", d.threads},
                  {"parameters", d.parameters},
                  {"weight_formats", d.weight_formats},
                  {"bytes_per_token",
                   {{"layer_matrices", d.bytes.layer_matrices},
                    {"layer_vectors", d.bytes.layer_vectors},
                    {"final_norm", d.bytes.final_norm},
                    {"lm_head", d.bytes.lm_head},
                    {"embed_row", d.bytes.embed_row},
                    {"total", d.bytes.total()}}},
                  {"prompt_tokens", d.prompt_tokens},
                  {"decode_tokens", d.decode_tokens},
                  {"warmup_s", d.warmup_s},
                  {"prefill_s", d.prefill_s},
                  {"prefill_tokens_per_s", d.prefill_tokens_per_s},
                  {"decode_s", d.decode_s},
                  {"decode_tokens_per_s", d.decode_tokens_per_s},
                  {"decode_step_median_ms", d.decode_step_median_ms},
                  {"decode_step_best_ms", d.decode_step_best_ms},
                  {"decode_cpu_s", d.decode_cpu_s},
                  {"decode_tokens_per_cpu_s", d.decode_tokens_per_cpu_s},
                  {"matmul_pass_ms", d.matmul_pass_ms},
                  {"matmul_gb_per_s", d.matmul_gb_per_s},
                  {"kv_bytes_per_token", d.kv_bytes_per_token},
                  {"bandwidth_gb_per_s", d.bandwidth_gb_per_s},
                  {"bandwidth_after_gb_per_s", d.bandwidth_after_gb_per_s},
                  {"ceiling_tokens_per_s", d.ceiling_tokens_per_s},
                  {"ceiling_ratio", d.ceiling_ratio},
                  {"ceiling_ratio_median", d.ceiling_ratio_median},
                  {"load_average_1min", d.load_average_1min}};
  } else {
    j["model"] = nullptr;
  }
  if (r.profile) {
    const DecodeProfile& p = *r.profile;
    json rows = json::array();
    for (const ProfileRow& row : p.rows) {
      rows.push_back({{"op", row.op},
                      {"ms_per_step", row.ms_per_step},
                      {"calls_per_step", row.calls_per_step},
                      {"weight_bytes", row.weight_bytes}});
    }
    j["profile"] = {{"position", p.position}, {"steps", p.steps}, {"step_ms", p.step_ms}, {"rows", rows}};
  } else {
    j["profile"] = nullptr;
  }
  return j.dump(2) + "\n";
}

Status WriteBenchJson(const BenchReport& report, const std::string& path) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return IoError(path + ": cannot write the JSON report (does the directory exist?)");
    out << FormatBenchJson(report);
    out.flush();
    if (!out) {
      std::error_code ec;
      std::filesystem::remove(tmp, ec);
      return IoError(path + ": writing the JSON report failed (disk full?)");
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::filesystem::remove(tmp, ec);
    return IoError(path + ": cannot rename the finished report into place");
  }
  return Status::Ok();
}

}  // namespace bitlens::bench
