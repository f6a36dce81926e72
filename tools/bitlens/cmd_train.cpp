// bitlens train: trains the reference VLM (and its tokenizer) of a recipe
// into a Hugging Face checkpoint folder. Ctrl-C saves a resumable state;
// --resume continues it. All the work is train/trainer.
#include <atomic>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "commands.h"
#include "train/trainer.h"

namespace bitlens::cli {
namespace {

std::atomic<bool> g_train_interrupted{false};
extern "C" void OnTrainInterrupt(int) { g_train_interrupted.store(true); }

struct TrainFlags {
  std::string recipe;
  std::string output;
  std::string state;
  bool resume = false;
  bool force = false;
  int threads = -1;
  int64_t stop_after = 0;
};

Status RunTrain(const TrainFlags& flags) {
  train::TrainOptions o;
  o.output_dir = flags.output;
  o.state_path = flags.state;
  o.resume = flags.resume;
  o.force = flags.force;
  o.threads = flags.threads;
  o.stop_after_step = flags.stop_after;
  if (!flags.recipe.empty()) {
    std::ifstream in(flags.recipe, std::ios::binary);
    if (!in) return NotFound(flags.recipe + ": cannot open the recipe");
    std::ostringstream text;
    text << in.rdbuf();
    o.recipe_json = text.str();
    BL_ASSIGN_OR_RETURN(o.recipe, train::ParseRecipe(o.recipe_json, flags.recipe));
  } else if (!flags.resume) {
    return InvalidArgument("train needs --recipe FILE (or --resume to continue a saved state)");
  }

  g_train_interrupted.store(false);
  auto old_int = std::signal(SIGINT, OnTrainInterrupt);
  auto old_term = std::signal(SIGTERM, OnTrainInterrupt);
  o.cancel = &g_train_interrupted;
  auto result = train::Train(o);
  std::signal(SIGINT, old_int);
  std::signal(SIGTERM, old_term);
  if (!result.ok()) return result.status();
  const train::TrainResult& r = *result;
  if (!r.finished) {
    std::printf("stopped after step %lld; state saved to %s (continue with --resume)\n", (long long)r.step,
                r.state_path.c_str());
    return g_train_interrupted.load() ? Cancelled("interrupted; resume with: bitlens train --resume -o " + flags.output)
                                      : Status::Ok();
  }
  std::printf("trained %lld steps in %.1f s; test exact match %.2f%% (%lld/%lld), loss %.4f\nwrote %s\n",
              (long long)r.step, r.seconds, 100 * r.test.accuracy(), (long long)r.test.correct,
              (long long)r.test.samples, r.test.loss, r.output_dir.c_str());
  for (const auto& [kind, k] : r.test.per_kind) {
    std::printf("  %-12s %6.2f%% (%lld/%lld)\n", kind.c_str(), k.samples ? 100.0 * k.correct / k.samples : 0.0,
                (long long)k.correct, (long long)k.samples);
  }
  return Status::Ok();
}

}  // namespace

void AddTrainCommand(CLI::App& app, Status* result) {
  auto f = std::make_shared<TrainFlags>();
  auto* cmd = app.add_subcommand("train", "Train the reference VLM and its tokenizer from a recipe");
  cmd->add_option("--recipe", f->recipe, "recipe.json (e.g. models/ref-vlm/recipe.json)");
  cmd->add_option("-o,--output", f->output, "output checkpoint directory (written as OUT.tmp, then renamed)")
      ->required();
  cmd->add_option("--state", f->state, "resumable state file (default: OUT.state)");
  cmd->add_flag("--resume", f->resume, "continue from the saved state (same recipe), bit-identically");
  cmd->add_flag("--force", f->force, "replace an existing output directory");
  cmd->add_option("--threads", f->threads, "worker threads (default: the recipe's; 0 = all cores)");
  cmd->add_option("--stop-after", f->stop_after, "save the state and stop after this many steps in total");
  cmd->callback([f, result] { *result = RunTrain(*f); });
}

}  // namespace bitlens::cli
