// bench/decode_profile: where the time of one decode step goes. Replays the
// decoder's per-layer sequence (model/decoder.cpp RunLayer: norm, q/k/v,
// rope, attention, o, residual, norm, gate/up, activation, down, residual;
// then final norm, LM head, argmax) on the model's own weights with the same
// kernels, timing each op class. Profiling only; the Session is the truth.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"
#include "model/model.h"

namespace bitlens::bench {

struct ProfileRow {
  std::string op;          // e.g. "matmul gate+up", "attention"
  double ms_per_step = 0;  // summed over layers, best step
  int64_t calls_per_step = 0;
  int64_t weight_bytes = 0;  // matrices only: bytes the op streams per step
};

struct DecodeProfile {
  int64_t position = 0;  // KV length at the first profiled step
  int64_t steps = 0;
  double step_ms = 0;    // fastest whole step
  std::vector<ProfileRow> rows;  // of that fastest step, in decoder order
};

// Profiles `steps` decode steps at positions position.. (KV filled with
// stand-in values). Uses the current pool size. Allocates its own buffers.
Result<DecodeProfile> ProfileDecodeStep(const Model& model, int64_t position, int64_t steps);

}  // namespace bitlens::bench
