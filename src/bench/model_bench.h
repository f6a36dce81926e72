// bench/model_bench: end-to-end speed of a loaded checkpoint (float or
// quantized): prefill tokens/s, greedy decode tokens/s, the bytes of weights
// one decoded token reads, and how close decode comes to the bandwidth
// ceiling (bandwidth / bytes per token).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "base/status.h"
#include "model/model.h"

namespace bitlens::bench {

// Bytes of weights one decode step reads: every matrix of every decoder layer
// (packed rows for a quantized format), the norm vectors and biases as the
// runtime reads them (f32), the final norm and the LM head in full (for a tied
// head: the whole embedding table), plus one embedding row for the token.
struct DecodeWeightBytes {
  int64_t layer_matrices = 0;  // q, k, v, o, gate, up, down of all layers
  int64_t layer_vectors = 0;   // norms and biases of all layers (f32)
  int64_t final_norm = 0;
  int64_t lm_head = 0;
  int64_t embed_row = 0;
  int64_t total() const { return layer_matrices + layer_vectors + final_norm + lm_head + embed_row; }
};
DecodeWeightBytes CountDecodeWeightBytes(const Decoder& decoder);

struct ModelBenchOptions {
  int64_t prompt_tokens = 128;
  int64_t decode_tokens = 32;
  int64_t matmul_passes = 3;     // GEMV-only passes over the model's matrices (best is kept)
  double bandwidth_gb_per_s = 0; // triad GB/s at the session's thread count (0: no ratio)
  std::function<void(const std::string&)> progress;  // one line per stage (may be null)
};

struct ModelBenchResult {
  std::string model_dir;
  std::string architecture;
  int64_t threads = 0;
  int64_t parameters = 0;          // decoder matrices + embedding, counted from the shapes
  std::string weight_formats;      // e.g. "w2g64 ×224, bf16 ×1" over the decoder's matrices and head
  DecodeWeightBytes bytes;
  int64_t prompt_tokens = 0, decode_tokens = 0;
  double warmup_s = 0;
  double prefill_s = 0;
  double prefill_tokens_per_s = 0;
  double decode_s = 0;               // sum over the timed steps
  double decode_tokens_per_s = 0;    // decode_tokens / decode_s
  double decode_step_median_ms = 0;
  double decode_step_best_ms = 0;
  // Process CPU seconds during the timed decode (all threads). On a shared
  // machine threads * decode_s / decode_cpu_s shows how much of the wall time
  // the run actually held its cores; decode_tokens_per_cpu_s is the speed
  // while running (tokens / (decode_cpu_s / threads)).
  double decode_cpu_s = 0;
  double decode_tokens_per_cpu_s = 0;
  // The GEMVs of one decode step alone (every layer matrix and the LM head,
  // m = 1, same pool), best of matmul_passes: the part of a step that is
  // weight streaming; the rest is attention, norms, rope, embedding, sampling.
  double matmul_pass_ms = 0;
  double matmul_gb_per_s = 0;        // matrix bytes / matmul_pass_ms
  double kv_bytes_per_token = 0;     // K/V cache bytes attention reads at the mean decode position (f32)
  double bandwidth_gb_per_s = 0;     // the ceiling's bandwidth: best triad before/after the run
  double bandwidth_after_gb_per_s = 0;  // triad measured right after the run (0 = not measured)
  double ceiling_tokens_per_s = 0;   // bandwidth / bytes per token
  double ceiling_ratio = 0;          // decode_tokens_per_s / ceiling_tokens_per_s
  double ceiling_ratio_median = 0;   // using the median step instead of the mean
  double load_average_1min = -1;     // when decode ended
};

// Sets bandwidth_gb_per_s and the ceiling figures derived from it.
void SetCeiling(double bandwidth_gb_per_s, ModelBenchResult* r);

// Sets up its own Session at the current pool size (SetNumThreads first).
Result<ModelBenchResult> BenchModel(const Model& model, const ModelBenchOptions& options);

}  // namespace bitlens::bench
