// bitlens run: placeholder until the subcommand lands.
#include "commands.h"

namespace bitlens::cli {

void AddRunCommand(CLI::App& app, Status* result) {
  auto* cmd = app.add_subcommand("run", "(not yet available)");
  cmd->callback([result] { *result = Unsupported("'run' is not implemented yet"); });
}

}  // namespace bitlens::cli
