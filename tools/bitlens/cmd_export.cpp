// bitlens export: write a checkpoint folder as one ahead-of-time file that
// the runtime maps and runs (.blz) or an ExecuTorch program (.pte).
#include <cstdio>
#include <memory>

#include "commands.h"
#include "formats/blz.h"
#include "model/export.h"

namespace bitlens::cli {

namespace {

struct ExportArgs {
  std::string model_dir;
  std::string to = "blz";
  std::string target;
  int64_t max_context = 4096;
  std::string output;
  bool quiet = false;
};

Status Export(const ExportArgs& a) {
  if (a.to != "blz" && a.to != "pte") return InvalidArgument("--to '" + a.to + "' is not blz or pte");
  ExportOptions o;
  o.model_dir = a.model_dir;
  o.output = a.output;
  o.max_context = a.max_context;
  o.progress = !a.quiet;
  o.target = blz::HostDefaultTarget();
  if (!a.target.empty()) {
    BL_ASSIGN_OR_RETURN(o.target, blz::ParseTarget(a.target));
  }
  BL_ASSIGN_OR_RETURN(ExportResult r, a.to == "pte" ? ExportPte(o) : ExportBlz(o));
  std::fputs(FormatExportSummary(r).c_str(), stdout);
  std::printf("export: done in %.2f s\n", r.seconds);
  return Status::Ok();
}

}  // namespace

void AddExportCommand(CLI::App& app, Status* result) {
  auto a = std::make_shared<ExportArgs>();
  auto* cmd = app.add_subcommand("export", "Write a checkpoint folder as one mmap-able file (.blz, or ExecuTorch .pte)");
  cmd->add_option("--model", a->model_dir, "Float or quantized checkpoint folder")->required();
  cmd->add_option("--to", a->to, "Container: blz (bitlens' own) or pte (ExecuTorch program, BitlensBackend delegate)");
  cmd->add_option("--target", a->target,
                  "Target ISA: x86-avx2, x86-avx512, arm64-neon, arm64-dotprod (default: this machine's family)");
  cmd->add_option("--max-context", a->max_context, "Context positions the memory plan is sized for");
  cmd->add_option("-o,--output", a->output, "Output file")->required();
  cmd->add_flag("-q,--quiet", a->quiet, "No progress bar");
  cmd->callback([a, result] { *result = Export(*a); });
}

}  // namespace bitlens::cli
