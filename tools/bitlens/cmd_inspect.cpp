// bitlens inspect: family, components, parameter counts, bytes, dtypes and
// shards of a checkpoint directory, from its headers only.
#include <cstdio>

#include "commands.h"
#include "model/inspect.h"

namespace bitlens::cli {

void AddInspectCommand(CLI::App& app, Status* result) {
  struct Flags {
    std::string dir;
    bool json = false;
    bool tensors = false;
  };
  auto flags = std::make_shared<Flags>();
  auto* cmd = app.add_subcommand("inspect", "Show what a checkpoint holds (headers only; fast on multi-GB models)");
  cmd->add_option("dir", flags->dir, "checkpoint directory (config.json + safetensors)")->required();
  cmd->add_flag("--json", flags->json, "print the report as JSON");
  cmd->add_flag("--tensors", flags->tensors, "also list every tensor: format or dtype, shape, bytes, bits per weight");
  cmd->callback([flags, result] {
    auto report = InspectCheckpoint(flags->dir);
    if (!report.ok()) {
      *result = report.status();
      return;
    }
    std::fputs((flags->json ? FormatReportJson(*report) : FormatReportText(*report)).c_str(), stdout);
    if (flags->tensors && !flags->json) std::fputs(("\n" + FormatTensorListText(*report)).c_str(), stdout);
    *result = Status::Ok();
  });
}

}  // namespace bitlens::cli
