// quant/calib_runner: runs the full-precision model over calibration samples
// component by component (vision tower, projector, decoder) and layer by
// layer, handing each block's weights and input statistics to a CalibSink.
//
// Memory is bounded by the hidden states of all calibration tokens plus one
// block: at any time the runner holds
//   decoder:  T · hidden · 4 bytes            (T = Σ tokens per sample, each ≤ max_tokens_per_sample)
//           + L_max · (2·hidden + 2·q_dim + 2·inter) · 4 + 2 · L_max · kv_dim · 4   (one sample's buffers)
//           + Σ_sites k_site² · 4              (LayerStats of one block: hidden² · 3 + inter² for Llama/Phi-3)
//   vision:   images · seq · vision_hidden · 4 (+ the same per-block terms for the tower)
// plus whatever the sink keeps for one block (its f32 copy of that block's weights).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "kernels/ops.h"
#include "model/model.h"
#include "quant/calib_jsonl.h"
#include "quant/layer_stats.h"

namespace bitlens::quant {

struct CalibOptions {
  // Tokens kept per sample (prompt, image tokens, answer), from the start.
  int64_t max_tokens_per_sample = 512;
  // Samples used, from the top of the file; 0 = all.
  int64_t max_samples = 0;
  // GPTQ's sequential mode: after a block is quantized, the next block's
  // inputs are computed with the quantized weights (the sink's replacements),
  // so each block corrects for the error of those before it. Off: every block
  // sees full-precision inputs.
  bool sequential = true;
};

enum class CalibComponent { kVision, kProjector, kDecoder };
const char* CalibComponentName(CalibComponent c);  // "vision", "projector", "decoder"

// One weight tensor of a block, by its checkpoint name. Phi-3's fused
// qkv_proj and gate_up_proj appear whole (their parts share one input).
struct CalibTensor {
  std::string name;            // e.g. "model.layers.3.self_attn.q_proj.weight"
  kernels::WeightView weight;  // as loaded, [n, k]
  int input = 0;               // index into CalibBlock::inputs
};

// A norm whose output is the input `input` of the block: AWQ folds its
// per-channel scales into these copies (weight /= s, and bias /= s for
// LayerNorm); the rest of the walk uses the modified copies.
struct CalibNorm {
  std::string weight_name, bias_name;  // bias_name empty for RMSNorm
  std::vector<float> weight, bias;     // [k]
  int input = 0;
};

struct CalibBlock {
  CalibComponent component = CalibComponent::kDecoder;
  int64_t layer = 0;                  // index within the component (0 for the projector)
  std::vector<LayerStats> inputs;     // one per distinct linear input, accumulated over every sample
  std::vector<CalibTensor> tensors;   // in forward order
  std::vector<CalibNorm> norms;
};

// The quantizer's side of the walk.
class CalibSink {
 public:
  virtual ~CalibSink() = default;
  // Called once per block in model order. `replace` has one entry per
  // block.tensors, all empty (data == nullptr); setting one makes the rest of
  // the walk use those weights (f32/f16/bf16 or packed rows with `format`, same
  // [n, k]) in sequential mode. Replacement memory must stay valid until the
  // next OnBlock call (or the end of RunCalibration).
  virtual Status OnBlock(CalibBlock& block, std::vector<kernels::WeightView>& replace) = 0;
};

// One sample as the model sees it: the Session's prompt ids (chat template,
// image placeholder expanded), the answer's ids appended, capped.
struct CalibSequence {
  std::vector<int32_t> ids;
  int64_t image = -1;  // index into the image list, -1 for text only
};

// Tokenizes `samples` as Session::TokenizePrompt does (ChatMode::kOn), appends
// each answer's ids (no BOS) and caps each sequence; image paths are collected
// into `images` (one entry per sample with an image).
Result<std::vector<CalibSequence>> BuildCalibSequences(const Model& model, const std::vector<CalibSample>& samples,
                                                       const CalibOptions& options, std::vector<std::string>* images);

// Totals of one run, for the report.
struct CalibSummary {
  int64_t samples = 0;
  int64_t tokens = 0;        // decoder rows
  int64_t images = 0;
  int64_t blocks = 0;
  size_t hidden_bytes = 0;   // the decoder's hidden states of all tokens
  size_t peak_stats_bytes = 0;
};

// The walk as a pull API, for callers that own the loop (the quantize
// pipeline visits its units in its own order). Blocks come in model order:
// vision tower layers (when any sample has an image), the projector, then the
// decoder layers. Next() runs the next block with taps and returns it with its
// statistics (null when the walk is over); Finish(replace) ends that block —
// in sequential mode by running it again on `replace` (one entry per
// block.tensors, empty = the loaded weight; the memory must stay valid until
// Finish returns) and the possibly rescaled block.norms.
class CalibWalk {
 public:
  static Result<std::unique_ptr<CalibWalk>> Start(const Model& model, const std::vector<CalibSample>& samples,
                                                  const CalibOptions& options);
  ~CalibWalk();
  Result<CalibBlock*> Next();
  Status Finish(const std::vector<kernels::WeightView>& replace);
  // Whether the block Next() would return is (component, layer); false at the end.
  bool NextIs(CalibComponent component, int64_t layer) const;
  const CalibSummary& summary() const;

 private:
  struct State;
  explicit CalibWalk(std::unique_ptr<State> s);
  std::unique_ptr<State> s_;
};

// The whole walk with a push sink: Next, sink.OnBlock, Finish, block by block.
Result<CalibSummary> RunCalibration(const Model& model, const std::vector<CalibSample>& samples,
                                    const CalibOptions& options, CalibSink& sink);

}  // namespace bitlens::quant
