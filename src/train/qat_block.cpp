// train/qat_block: block-wise QAT of the decoder layers.
#include "train/qat_run.h"

namespace bitlens::train {

Status RunBlockWise(const QatContext& context, QatPackedWeights* out, QatResult* result) {
  return Unsupported("--mode block is not available yet");
}

}  // namespace bitlens::train
