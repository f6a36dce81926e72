// bitlens convert: placeholder until the subcommand lands.
#include "commands.h"

namespace bitlens::cli {

void AddConvertCommand(CLI::App& app, Status* result) {
  auto* cmd = app.add_subcommand("convert", "(not yet available)");
  cmd->callback([result] { *result = Unsupported("'convert' is not implemented yet"); });
}

}  // namespace bitlens::cli
