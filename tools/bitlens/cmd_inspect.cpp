// bitlens inspect: placeholder until the subcommand lands.
#include "commands.h"

namespace bitlens::cli {

void AddInspectCommand(CLI::App& app, Status* result) {
  auto* cmd = app.add_subcommand("inspect", "(not yet available)");
  cmd->callback([result] { *result = Unsupported("'inspect' is not implemented yet"); });
}

}  // namespace bitlens::cli
