// train/qat: quantization-aware training of a full-precision LLaVA checkpoint
// into a quantized one (`bitlens qat`). The frozen full-precision model is the
// teacher; the student is the same weights with every packed linear
// fake-quantized (learnable grids, STE), distilled end to end or block by
// block, and written through quant/pipeline in the layout `bitlens quantize` writes.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "base/status.h"
#include "quant/pipeline_plan.h"

namespace bitlens::train {

enum class QatMode { kEndToEnd, kBlock };

struct QatOptions {
  std::string model_dir;
  std::string output_dir;
  quant::PlanOptions plan;     // formats per component, as `bitlens quantize` takes them
  bool stretched = false;      // 2-bit asymmetric formats become the stretched symmetric grid (w2gN -> w2sgN)

  // Initial grids: "rtn" (MSE clip search on the weights), or "hqq"/"gptq":
  // the grids and dequantized weights of that method's packed checkpoint,
  // either `init_from` (a `bitlens quantize` output with the same formats) or
  // produced in-process into <output>.init (removed afterwards).
  std::string init = "rtn";
  std::string init_from;

  QatMode mode = QatMode::kEndToEnd;
  std::string calib;           // calibration JSONL of `bitlens quantize --calib` (needs image and answer per line)
  int64_t synthetic = 0;       // plus this many synthetic training samples (train/data, split train)
  int64_t eval_samples = 16;   // held-out synthetic samples (split validation) for the before/after KL
  uint64_t seed = 1;

  int64_t steps = 200;         // optimizer steps (block mode: per block)
  int64_t batch = 4;           // samples per step (gradient accumulation)
  float lr = 1e-4f;            // peak learning rate (warmup 5 %, cosine to lr/10)
  float clip = 1.0f;           // global gradient-norm clip (0 = off)
  float kl_weight = 1.0f;      // KL(teacher ‖ student) on the answer positions
  float hidden_weight = 0.0f;  // MSE of every decoder layer's hidden state (e2e)
  float ce_weight = 0.0f;      // cross-entropy of the answer tokens
  float temperature = 1.0f;

  int threads = 0;             // worker threads (0 = all cores); OpenBLAS runs single-threaded inside them
  bool resume = false;         // continue from <output>.qatstate
  int64_t save_every = 50;     // steps between state saves (and on interruption)
  bool overwrite = false;      // replace an existing output directory
  std::string command_line;    // recorded in the report
  const std::atomic<bool>* cancel = nullptr;  // Ctrl-C: save the state, write no output, return Cancelled
  // Called after every step: (step, total steps, a short detail such as "KL 0.0123").
  std::function<void(int64_t, int64_t, const std::string&)> on_progress;
};

struct QatResult {
  std::string output_dir;
  int64_t train_samples = 0;
  int64_t steps = 0;                 // steps run by this invocation (after a resume: the rest)
  double eval_kl_init = 0;           // mean KL per answer token on the held-out samples, initial grids
  double eval_kl_final = 0;          // the same after training
  // e2e: the trained student's logits at the answer positions of the held-out
  // samples, [sum of answer rows, vocab] in sample order (what the output must reproduce).
  std::vector<float> eval_answer_logits;
  std::vector<double> block_mse_init, block_mse_final;  // block mode: per decoder block, relative MSE
  double seconds = 0;
  uint64_t bytes_written = 0;
};

// Validates the options (InvalidArgument naming the flag), trains, writes the
// quantized checkpoint atomically. The state file <output>.qatstate is kept
// while the run is incomplete and removed after the output is written.
Result<QatResult> RunQat(const QatOptions& options);

// "<output>.qatstate"
std::string QatStatePath(const std::string& output_dir);

}  // namespace bitlens::train
