// bitlens convert: other checkpoint formats -> a Hugging Face checkpoint
// directory. --from llama2c (checkpoint .bin + tokenizer .bin); --from torchao
// (a torchao QAT checkpoint directory -> a bitlens quantized checkpoint).
#include <cstdio>
#include <memory>

#include "commands.h"
#include "formats/llama2c.h"
#include "quant/torchao_import.h"

namespace bitlens::cli {

namespace {
struct ConvertArgs {
  std::string from;
  std::string input;
  std::string tokenizer;
  std::string out;
  bool force = false;
};
}  // namespace

void AddConvertCommand(CLI::App& app, Status* result) {
  auto args = std::make_shared<ConvertArgs>();
  auto* cmd = app.add_subcommand("convert", "Convert a checkpoint to a Hugging Face directory");
  cmd->add_option("--from", args->from, "Source format (llama2c, torchao)")->required();
  cmd->add_option("input", args->input, "Source checkpoint file (torchao: directory)")->required();
  cmd->add_option("--tokenizer", args->tokenizer, "Source tokenizer file (llama2c: tokenizer .bin)");
  cmd->add_option("-o,--output", args->out, "Output directory (must not exist)")->required();
  cmd->add_flag("--force", args->force, "torchao: replace an existing output directory");
  cmd->callback([args, result] {
    if (args->from == "torchao") {
      quant::TorchaoImportOptions options;
      options.input_dir = args->input;
      options.output_dir = args->out;
      options.overwrite = args->force;
      auto imported = quant::ImportTorchaoCheckpoint(options);
      if (!imported.ok()) {
        *result = imported.status();
        return;
      }
      std::fprintf(stderr, "%s\nwrote %s\n", quant::TorchaoImportSummary(*imported).c_str(), args->out.c_str());
      return;
    }
    if (args->from != "llama2c") {
      *result = InvalidArgument("--from '" + args->from + "' is not supported (llama2c, torchao)");
      return;
    }
    if (args->tokenizer.empty()) {
      *result = InvalidArgument("--from llama2c needs --tokenizer TOKENIZER.bin (e.g. tok512.bin)");
      return;
    }
    *result = ConvertLlama2c(args->input, args->tokenizer, args->out);
    if (result->ok()) std::fprintf(stderr, "wrote %s\n", args->out.c_str());
  });
}

}  // namespace bitlens::cli
