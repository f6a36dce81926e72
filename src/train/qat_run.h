// train/qat_run: the two training modes behind RunQat (private to train/qat*).
// Both receive the plan, the source checkpoint, the initial grids and the
// examples, and leave the packed rows of every planned packed weight in `out`.
#pragma once

#include "formats/safetensors.h"
#include "quant/pipeline_plan.h"
#include "train/qat.h"
#include "train/qat_data.h"
#include "train/qat_weights.h"

namespace bitlens::train {

struct QatContext {
  const QatOptions* options = nullptr;
  const quant::QuantPlan* plan = nullptr;
  const Checkpoint* source = nullptr;
  const QatInit* init = nullptr;
  const QatData* data = nullptr;
  std::string fingerprint;  // JSON of the settings a resumed run must share
};

// Whole model through TrainableVlm: KL (+ hidden MSE, + CE) against the teacher.
Status RunEndToEnd(const QatContext& context, QatPackedWeights* out, QatResult* result);
// Decoder blocks one at a time against the teacher's block outputs; the other
// components keep their initial grids.
Status RunBlockWise(const QatContext& context, QatPackedWeights* out, QatResult* result);

// Example order: step s, slot j -> index into the training examples (a
// per-epoch shuffle from the seed, so a resumed run sees the same order).
size_t QatExampleIndex(uint64_t seed, int64_t step, int64_t batch, int64_t j, size_t count);

}  // namespace bitlens::train
