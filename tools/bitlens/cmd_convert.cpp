// bitlens convert: other checkpoint formats -> a Hugging Face checkpoint
// directory. Today: --from llama2c (checkpoint .bin + tokenizer .bin).
#include <cstdio>
#include <memory>

#include "commands.h"
#include "formats/llama2c.h"

namespace bitlens::cli {

namespace {
struct ConvertArgs {
  std::string from;
  std::string input;
  std::string tokenizer;
  std::string out;
};
}  // namespace

void AddConvertCommand(CLI::App& app, Status* result) {
  auto args = std::make_shared<ConvertArgs>();
  auto* cmd = app.add_subcommand("convert", "Convert a checkpoint to a Hugging Face directory");
  cmd->add_option("--from", args->from, "Source format (llama2c)")->required();
  cmd->add_option("input", args->input, "Source checkpoint file")->required();
  cmd->add_option("--tokenizer", args->tokenizer, "Source tokenizer file (llama2c: tokenizer .bin)");
  cmd->add_option("-o,--output", args->out, "Output directory (must not exist)")->required();
  cmd->callback([args, result] {
    if (args->from != "llama2c") {
      *result = InvalidArgument("--from '" + args->from + "' is not supported (llama2c)");
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
