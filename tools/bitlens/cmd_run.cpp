// bitlens run: load a model directory, stream the answer to a prompt (and an
// optional image) to stdout, and print the timing table to stderr.
#include <cstdio>
#include <memory>
#include <optional>

#include "base/thread_pool.h"
#include "commands.h"
#include "kernels/qmatmul_a8.h"
#include "model/export.h"
#include "model/model.h"
#include "runtime/session.h"
#include "vision/image.h"

namespace bitlens::cli {

namespace {

struct RunArgs {
  std::string model_dir;
  std::string image;
  std::string prompt;
  int64_t max_tokens = 128;
  float temperature = 0.0f;
  int32_t top_k = 0;
  float top_p = 1.0f;
  float repeat_penalty = 1.0f;
  uint64_t seed = 0;
  int64_t max_context = 4096;
  int64_t prefill_batch = 0;
  size_t threads = 0;
  bool chat = false;
  bool no_chat = false;
  std::string activations = "a16";
  std::vector<std::string> stop;
  bool verbose = false;
};

Status Run(const RunArgs& a) {
  SetNumThreads(a.threads);
  kernels::QActivations activations = kernels::QActivations::kF32;
  kernels::ParseQActivations(a.activations, &activations);  // CLI11 already checked the spelling
  kernels::SetQActivations(activations);
  BL_ASSIGN_OR_RETURN(std::unique_ptr<Model> model, LoadModel(a.model_dir));
  if (a.verbose) {
    std::fprintf(stderr, "load: %.1f ms, resident %.1f MiB (%s)\n", model->load_ms,
                 static_cast<double>(ResidentBytes()) / (1 << 20), a.model_dir.c_str());
  }
  std::optional<Image> image;
  if (!a.image.empty()) {
    BL_ASSIGN_OR_RETURN(Image decoded, DecodeImageFile(a.image));
    image = std::move(decoded);
  }
  SessionOptions session_options;
  session_options.max_context = a.max_context;
  session_options.max_batch = a.prefill_batch;
  BL_ASSIGN_OR_RETURN(std::unique_ptr<Session> session, Session::Create(*model, session_options));
  const ChatMode chat = a.chat ? ChatMode::kOn : a.no_chat ? ChatMode::kOff : ChatMode::kAuto;
  BL_ASSIGN_OR_RETURN(std::vector<int32_t> prompt, session->TokenizePrompt(a.prompt, image.has_value(), chat));

  GenerateOptions options;
  options.max_tokens = a.max_tokens;
  options.sampling = {a.temperature, a.top_k, a.top_p, a.repeat_penalty, a.seed};
  options.stop = a.stop;
  BL_ASSIGN_OR_RETURN(GenerateResult result,
                      session->Generate(prompt, image ? &*image : nullptr, options, [](int32_t, std::string_view text) {
                        std::fwrite(text.data(), 1, text.size(), stdout);
                        std::fflush(stdout);
                        return true;
                      }));
  std::fputc('\n', stdout);
  std::fflush(stdout);
  std::fputs(FormatTimingTable(result.timings).c_str(), stderr);
  return Status::Ok();
}

}  // namespace

void AddRunCommand(CLI::App& app, Status* result) {
  auto a = std::make_shared<RunArgs>();
  auto* cmd = app.add_subcommand("run", "Generate text from a prompt (and an image) with a model directory");
  cmd->add_option("--model", a->model_dir, "Model directory (config.json, *.safetensors, tokenizer) or a .blz file from bitlens export")->required();
  cmd->add_option("--image", a->image, "PNG or JPEG image for a vision-language model");
  cmd->add_option("--prompt", a->prompt, "Prompt text (empty on a text model: start from BOS)");
  cmd->add_option("--max-tokens", a->max_tokens, "Tokens to generate at most");
  cmd->add_option("--temperature", a->temperature, "Sampling temperature; 0 = greedy");
  cmd->add_option("--top-k", a->top_k, "Keep the k most likely tokens; 0 = off");
  cmd->add_option("--top-p", a->top_p, "Nucleus sampling mass; 1 = off");
  cmd->add_option("--repeat-penalty", a->repeat_penalty, "Repetition penalty; 1 = off");
  cmd->add_option("--seed", a->seed, "Random seed for sampling");
  cmd->add_option("--max-context", a->max_context, "Context positions at most (KV cache size)");
  cmd->add_option("--prefill-batch", a->prefill_batch, "Prompt rows per forward; 0 = the whole prompt at once");
  cmd->add_option("--threads", a->threads, "Worker threads; 0 = all cores");
  cmd->add_option("--stop", a->stop, "Stop string (repeatable)");
  cmd->add_option("--activations", a->activations,
                  "Activations for quantized weights: a16 (f32, default), a8 (int8 per block of 32) or a8lut "
                  "(a8, decoding 2-bit and ternary weights with lookup tables)")
      ->check(CLI::IsMember({"a16", "a8", "a8lut"}));
  cmd->add_flag("--chat", a->chat, "Wrap the prompt in the model's chat template");
  cmd->add_flag("--no-chat", a->no_chat, "Never apply the chat template");
  cmd->add_flag("-v,--verbose", a->verbose, "Print load time and resident memory");
  cmd->callback([a, result] { *result = Run(*a); });
}

}  // namespace bitlens::cli
