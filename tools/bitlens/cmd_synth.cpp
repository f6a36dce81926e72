// bitlens synth: placeholder until the subcommand lands.
#include "commands.h"

namespace bitlens::cli {

void AddSynthCommand(CLI::App& app, Status* result) {
  auto* cmd = app.add_subcommand("synth", "(not yet available)");
  cmd->callback([result] { *result = Unsupported("'synth' is not implemented yet"); });
}

}  // namespace bitlens::cli
