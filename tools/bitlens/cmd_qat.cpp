// bitlens qat: quantization-aware training of a full-precision LLaVA
// checkpoint into a quantized one (the layout `bitlens quantize` writes),
// with a progress bar showing the distillation loss; Ctrl-C saves the state
// for --resume. All the work is train/qat.
#include <atomic>
#include <csignal>
#include <cstdio>

#include "base/progress.h"
#include "commands.h"
#include "train/qat.h"

namespace bitlens::cli {
namespace {

std::atomic<bool> g_qat_interrupted{false};
extern "C" void OnQatInterrupt(int) { g_qat_interrupted.store(true); }

struct QatFlags {
  train::QatOptions o;
  std::string mode = "e2e";
  bool force = false;
};

Status RunQatCommand(QatFlags& f) {
  train::QatOptions& o = f.o;
  if (f.mode == "e2e") o.mode = train::QatMode::kEndToEnd;
  else if (f.mode == "block") o.mode = train::QatMode::kBlock;
  else return InvalidArgument("--mode '" + f.mode + "' is not e2e or block");
  o.overwrite = f.force;
  o.command_line = "bitlens qat --model " + o.model_dir + " -o " + o.output_dir + " --mode " + f.mode + " --init " +
                   o.init + " --vision " + o.plan.vision + " --projector " + o.plan.projector + " --decoder " +
                   o.plan.decoder + " --embed " + o.plan.embed + " --lm-head " + o.plan.lm_head + " --steps " +
                   std::to_string(o.steps) + " --batch " + std::to_string(o.batch) + " --lr " + std::to_string(o.lr) +
                   (o.stretched ? " --stretched" : "");

  g_qat_interrupted.store(false);
  auto old_int = std::signal(SIGINT, OnQatInterrupt);
  auto old_term = std::signal(SIGTERM, OnQatInterrupt);
  o.cancel = &g_qat_interrupted;
  std::unique_ptr<ProgressBar> bar;
  o.on_progress = [&](int64_t step, int64_t total, const std::string& detail) {
    if (!bar) bar = std::make_unique<ProgressBar>("qat", static_cast<uint64_t>(total));
    bar->Update(static_cast<uint64_t>(step), detail);
  };
  auto result = train::RunQat(o);
  std::signal(SIGINT, old_int);
  std::signal(SIGTERM, old_term);
  if (!result.ok()) {
    if (bar) bar->Abandon();
    return result.status();
  }
  if (bar) bar->Finish();
  const train::QatResult& r = *result;
  std::printf("trained %lld steps on %lld samples\n", (long long)r.steps, (long long)r.train_samples);
  if (o.mode == train::QatMode::kEndToEnd && o.eval_samples > 0) {
    std::printf("held-out KL per answer token: initial grids %.6f -> qat %.6f (%lld samples)\n", r.eval_kl_init,
                r.eval_kl_final, (long long)o.eval_samples);
  }
  for (size_t b = 0; b < r.block_mse_final.size(); ++b) {
    std::printf("decoder block %zu: relative reconstruction error %.6f -> %.6f\n", b, r.block_mse_init[b],
                r.block_mse_final[b]);
  }
  std::printf("wrote %s (%.2f MB) in %.1f s\n", r.output_dir.c_str(), r.bytes_written / 1e6, r.seconds);
  return Status::Ok();
}

}  // namespace

void AddQatCommand(CLI::App& app, Status* result) {
  auto f = std::make_shared<QatFlags>();
  train::QatOptions& o = f->o;
  auto* cmd = app.add_subcommand("qat", "Quantization-aware training: distil a full-precision VLM into a quantized one");
  cmd->add_option("--model", o.model_dir, "full-precision LLaVA checkpoint directory (the teacher)")->required();
  cmd->add_option("-o,--output", o.output_dir, "output directory (written as OUT.tmp, then renamed)")->required();
  cmd->add_option("--vision", o.plan.vision, "format of the vision tower's linear weights")->capture_default_str();
  cmd->add_option("--projector", o.plan.projector, "format of the multi-modal projector")->capture_default_str();
  cmd->add_option("--decoder", o.plan.decoder, "format of the decoder layers' linear weights")->capture_default_str();
  cmd->add_option("--embed", o.plan.embed, "format of the token embedding table")->capture_default_str();
  cmd->add_option("--lm-head", o.plan.lm_head, "format of an untied lm head")->capture_default_str();
  cmd->add_flag("--stretched", o.stretched, "2-bit formats use the stretched symmetric grid (w2gN -> w2sgN)");
  cmd->add_option("--init", o.init, "initial grids: rtn | hqq | gptq (hqq/gptq run in-process unless --init-from)")
      ->capture_default_str();
  cmd->add_option("--init-from", o.init_from, "a checkpoint `bitlens quantize --method hqq|gptq` wrote, same formats");
  cmd->add_option("--mode", f->mode, "e2e (whole model) | block (decoder blocks one at a time)")->capture_default_str();
  cmd->add_option("--calib", o.calib, "calibration JSONL ({\"image\", \"prompt\", \"answer\"} per line)");
  cmd->add_option("--synthetic", o.synthetic, "synthetic training samples added to the data")->capture_default_str();
  cmd->add_option("--eval", o.eval_samples, "held-out synthetic samples for the before/after KL")->capture_default_str();
  cmd->add_option("--seed", o.seed, "data order and synthetic samples")->capture_default_str();
  cmd->add_option("--steps", o.steps, "optimizer steps (block mode: per decoder block)")->capture_default_str();
  cmd->add_option("--lr", o.lr, "peak learning rate (warmup 5 %, cosine to lr/10)")->capture_default_str();
  cmd->add_option("--batch", o.batch, "samples per step")->capture_default_str();
  cmd->add_option("--clip", o.clip, "gradient-norm clip (0 = off)")->capture_default_str();
  cmd->add_option("--kl-weight", o.kl_weight, "weight of KL(teacher || student) on the answer logits")
      ->capture_default_str();
  cmd->add_option("--hidden-weight", o.hidden_weight, "weight of the decoder hidden-state MSE")->capture_default_str();
  cmd->add_option("--ce-weight", o.ce_weight, "weight of the answer cross-entropy")->capture_default_str();
  cmd->add_option("--temperature", o.temperature, "distillation temperature")->capture_default_str();
  cmd->add_option("--save-every", o.save_every, "steps between state saves (OUT.qatstate)")->capture_default_str();
  cmd->add_option("--threads", o.threads, "worker threads (0 = all cores)")->capture_default_str();
  cmd->add_flag("--resume", o.resume, "continue from OUT.qatstate");
  cmd->add_flag("--force", f->force, "replace an existing output directory");
  cmd->callback([f, result] { *result = RunQatCommand(*f); });
}

}  // namespace bitlens::cli
