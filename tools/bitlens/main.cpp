// bitlens: command-line entry point. Parses flags with CLI11 and hands off to
// the subcommand; all logic lives in the library.
#include <cstdio>

#include "commands.h"

int main(int argc, char** argv) {
  CLI::App app{"bitlens: 2-bit vision-language models on phone-class CPUs"};
  app.require_subcommand(1);
  bitlens::Status result;
  bitlens::cli::AddSynthCommand(app, &result);
  bitlens::cli::AddInspectCommand(app, &result);
  bitlens::cli::AddRunCommand(app, &result);
  bitlens::cli::AddConvertCommand(app, &result);
  bitlens::cli::AddQuantizeCommand(app, &result);
  bitlens::cli::AddBenchCommand(app, &result);
  bitlens::cli::AddTrainCommand(app, &result);
  bitlens::cli::AddDataCommand(app, &result);
  bitlens::cli::AddEvalCommand(app, &result);
  bitlens::cli::AddEvalSuiteCommand(app, &result);
  bitlens::cli::AddExportCommand(app, &result);
  bitlens::cli::AddQatCommand(app, &result);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  if (!result.ok()) {
    std::fprintf(stderr, "bitlens: %s\n", result.message().c_str());
    return result.ExitCode();
  }
  return 0;
}
