// runtime/session: one conversation with a loaded Model — the fp32 KV cache
// and every activation buffer are allocated once at creation; a prompt (with
// an optional image) is prefilled in one batched forward, then tokens are
// decoded one at a time, sampled and streamed as text.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "model/model.h"
#include "model/rope.h"
#include "runtime/kv_cache.h"
#include "runtime/sampler.h"
#include "vision/image.h"

namespace bitlens {

struct SessionOptions {
  // The context is min(max_position_embeddings, max_context) positions.
  int64_t max_context = 4096;
  // Rows per prefill forward: 0 runs the whole prompt in one forward (as
  // transformers does); a smaller value caps the activation buffers, which
  // are otherwise sized for a whole-context prompt. Results agree either way.
  int64_t max_batch = 0;
};

enum class ChatMode {
  kAuto,  // wrap in the chat template only when an image comes without an image token
  kOn,    // always wrap the prompt as one user turn
  kOff,   // raw text (an image without a placeholder gets one prepended)
};

struct GenerateOptions {
  int64_t max_tokens = 128;
  SamplerOptions sampling;
  std::vector<std::string> stop;  // stop strings: generation ends before the first match
  bool stop_at_eos = true;
};

struct Timings {
  double load_ms = 0;
  double vision_ms = 0;
  double prefill_ms = 0;
  double decode_ms = 0;
  int64_t prompt_tokens = 0;
  int64_t image_tokens = 0;
  int64_t generated_tokens = 0;
  double prefill_tokens_per_s() const { return prefill_ms > 0 ? prompt_tokens * 1e3 / prefill_ms : 0; }
  double decode_tokens_per_s() const { return decode_ms > 0 ? generated_tokens * 1e3 / decode_ms : 0; }
};

struct GenerateResult {
  std::vector<int32_t> ids;   // generated ids (an EOS that ended generation included)
  std::string text;           // streamed text, stop string and EOS excluded
  std::string finish_reason;  // "eos" | "stop" | "length" | "cancelled"
  Timings timings;
};

// Called per generated token with the text it made printable (may be empty,
// e.g. inside a multi-byte character or a possible stop string). Returning
// false ends generation. Text held back until the end (a possible stop
// string that never completed, an unfinished character) arrives in a last
// call with id -1.
// The timing table `bitlens run` prints: load, vision, prefill, decode with
// tokens and tokens/s, one row each.
std::string FormatTimingTable(const Timings& timings);

using TokenCallback = std::function<bool(int32_t id, std::string_view text)>;

// A Session refers to its Model, which must outlive it.
class Session {
 public:
  static Result<std::unique_ptr<Session>> Create(const Model& model, const SessionOptions& options);

  const Model& model() const { return model_; }
  int64_t context() const { return context_; }
  int64_t position() const { return kv_.size(); }

  // Prompt ids for `text`: chat template per `chat`, BOS as the tokenizer
  // adds it (an empty prompt is just BOS), and, with an image, its single
  // placeholder expanded to config.image_seq_length() image-token ids as
  // HF's LlavaProcessor does.
  Result<std::vector<int32_t>> TokenizePrompt(std::string_view text, bool has_image, ChatMode chat) const;

  // Runs the prompt (and image) from an empty cache, then samples up to
  // max_tokens tokens. `image` may be null. Fails with OutOfRange when the
  // prompt plus max_tokens does not fit the context.
  Result<GenerateResult> Generate(const std::vector<int32_t>& prompt, const Image* image, const GenerateOptions& options,
                                  const TokenCallback& on_token = nullptr);

  // Low-level steps (Generate is built from them). Prefill clears the cache;
  // image_embeds [image tokens, hidden] (may be null, else must stay valid
  // while the session decodes) replace the rows whose id is the image token.
  // Both leave the last position's logits in logits().
  Status Prefill(const int32_t* ids, int64_t n, const float* image_embeds);
  Status DecodeStep(int32_t id);
  float* logits() { return logits_; }

  // Logits [n, vocab] at every position of `ids` (image rows spliced in as
  // for Prefill), run from an empty cache (for evaluation and conformance;
  // allocates its result).
  Result<std::vector<float>> EvaluateLogits(const std::vector<int32_t>& ids, const float* image_embeds = nullptr);

  // image_embeds rows [image tokens, hidden] for `image`: preprocess and
  // encode (VLMs only). The pointer stays valid until the next call.
  Result<const float*> EncodeImage(const Image& image, Timings* timings);

 private:
  explicit Session(const Model& model) : model_(model) {}
  // Runs tokens_ from position 0 (prefill, or a longrope recompute), writing
  // the logits of the last n_logits positions.
  Status ForwardFromStart(int64_t n_logits, float* logits);

  const Model& model_;
  int64_t context_ = 0;
  int64_t max_batch_ = 0;  // rows per forward
  RopeTable rope_;
  KvCache kv_;
  std::unique_ptr<float[]> arena_;  // activations, logits and image rows; one allocation, not zero-filled
  DecoderBuffers buffers_;
  float* logits_ = nullptr;        // [vocab]
  float* image_embeds_ = nullptr;  // [image tokens, hidden] for VLMs
  std::vector<int32_t> tokens_;    // ids in the cache, prompt then generated (capacity = context)
  const float* prefill_image_ = nullptr;  // image rows of the current sequence
  int64_t recompute_at_ = -1;      // position whose decode step recomputes the sequence (longrope)
};

}  // namespace bitlens
