// The bitlens CLI: one thin file per subcommand (cmd_<name>.cpp). Each
// Add<Name>Command registers its flags on `app` and, when run, stores its
// Status in *result; main() turns that into a one-line message and an exit
// code (2 bad input, 1 internal failure).
#pragma once

#include <CLI/CLI.hpp>

#include "base/status.h"

namespace bitlens::cli {

void AddSynthCommand(CLI::App& app, Status* result);
void AddInspectCommand(CLI::App& app, Status* result);
void AddRunCommand(CLI::App& app, Status* result);
void AddConvertCommand(CLI::App& app, Status* result);
void AddQuantizeCommand(CLI::App& app, Status* result);
void AddBenchCommand(CLI::App& app, Status* result);
void AddTrainCommand(CLI::App& app, Status* result);
void AddDataCommand(CLI::App& app, Status* result);
void AddEvalCommand(CLI::App& app, Status* result);
void AddEvalSuiteCommand(CLI::App& app, Status* result);
void AddExportCommand(CLI::App& app, Status* result);
void AddQatCommand(CLI::App& app, Status* result);

}  // namespace bitlens::cli
