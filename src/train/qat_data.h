// train/qat_data: the QAT training and held-out examples — calibration JSONL
// lines (image, prompt, answer) and synthetic samples — built by
// train/examples exactly as the trainer builds them (chat template, image
// placeholder expanded, targets on the answer and </s>).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"
#include "formats/hf_config.h"
#include "train/vlm.h"

namespace bitlens::train {

struct QatDataOptions {
  std::string calib;          // JSONL path, may be empty
  int64_t synthetic = 0;      // synthetic training samples (split train)
  int64_t eval_samples = 0;   // held-out samples (split validation)
  uint64_t seed = 1;
};

struct QatData {
  std::vector<VlmExample> train;
  std::vector<VlmExample> eval;
};

// Loads the tokenizer and image processor of model_dir. Errors: a calibration
// line without image or answer (QAT distils the answer positions of image
// questions), no training example at all, an example longer than the model's context.
Result<QatData> BuildQatData(const std::string& model_dir, const ModelConfig& config, const QatDataOptions& options);

}  // namespace bitlens::train
