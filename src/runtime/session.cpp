// runtime/session: prefill -> sample -> decode loop over a Decoder, with the
// image rows spliced in at the image-token positions.
#include "runtime/session.h"

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "base/thread_pool.h"

namespace bitlens {
namespace {

using Clock = std::chrono::steady_clock;
double MsSince(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

// Holds back streamed text that could still become a stop string, so that a
// stop string is never shown and text before it is never lost.
class StopFilter {
 public:
  explicit StopFilter(const std::vector<std::string>& stops) : stops_(stops) {}

  // Appends `piece`; returns the text now safe to show. Sets stopped() when a
  // stop string completed (the returned text then ends right before it).
  std::string Push(std::string_view piece) {
    pending_.append(piece);
    size_t cut = std::string::npos;
    for (const std::string& s : stops_) {
      if (s.empty()) continue;
      const size_t at = pending_.find(s);
      if (at != std::string::npos) cut = std::min(cut, at);
    }
    if (cut != std::string::npos) {
      stopped_ = true;
      std::string out = pending_.substr(0, cut);
      pending_.clear();
      return out;
    }
    // Keep the longest tail of pending_ that is a proper prefix of a stop string.
    size_t keep = 0;
    for (const std::string& s : stops_) {
      for (size_t len = std::min(s.size() - (s.empty() ? 0 : 1), pending_.size()); len > keep; --len) {
        if (pending_.compare(pending_.size() - len, len, s, 0, len) == 0) {
          keep = len;
          break;
        }
      }
    }
    std::string out = pending_.substr(0, pending_.size() - keep);
    pending_.erase(0, pending_.size() - keep);
    return out;
  }
  std::string Flush() {
    std::string out;
    out.swap(pending_);
    return out;
  }
  bool stopped() const { return stopped_; }

 private:
  const std::vector<std::string>& stops_;
  std::string pending_;
  bool stopped_ = false;
};

}  // namespace

std::string FormatTimingTable(const Timings& t) {
  char buf[512];
  std::string out = "stage        ms   tokens   tokens/s\n";
  auto row = [&](const char* stage, double ms, int64_t tokens, double tps) {
    if (tokens >= 0) std::snprintf(buf, sizeof(buf), "%-8s %9.1f %8lld %10.1f\n", stage, ms, static_cast<long long>(tokens), tps);
    else std::snprintf(buf, sizeof(buf), "%-8s %9.1f %8s %10s\n", stage, ms, "-", "-");
    out += buf;
  };
  row("load", t.load_ms, -1, 0);
  if (t.image_tokens > 0) row("vision", t.vision_ms, t.image_tokens, t.vision_ms > 0 ? t.image_tokens * 1e3 / t.vision_ms : 0);
  row("prefill", t.prefill_ms, t.prompt_tokens, t.prefill_tokens_per_s());
  row("decode", t.decode_ms, t.generated_tokens, t.decode_tokens_per_s());
  return out;
}

Result<std::unique_ptr<Session>> Session::Create(const Model& model, const SessionOptions& options) {
  if (!model.decoder) return InvalidArgument("the model has no decoder");
  const TextConfig& c = model.config.text;
  if (options.max_context <= 0) return InvalidArgument("--max-context must be positive");
  std::unique_ptr<Session> s(new Session(model));
  if (options.max_batch < 0) return InvalidArgument("--prefill-batch must not be negative");
  s->context_ = std::min<int64_t>(c.max_position_embeddings, options.max_context);
  s->max_batch_ = options.max_batch > 0 ? std::min(options.max_batch, s->context_) : s->context_;
  BL_ASSIGN_OR_RETURN(s->rope_, RopeTable::Build(c, s->context_));
  s->kv_ = KvCache(c.num_hidden_layers, s->context_, model.decoder->kv_dim());
  const int64_t threads = static_cast<int64_t>(NumThreads());
  const int64_t image_rows = model.config.is_vlm() ? model.config.image_seq_length() : 0;
  if (model.vision && model.vision->num_image_tokens() != image_rows) {
    return Internal("the vision encoder yields " + std::to_string(model.vision->num_image_tokens()) +
                    " image rows but config.json implies " + std::to_string(image_rows));
  }
  const size_t decoder_floats = model.decoder->BufferFloats(s->max_batch_, s->context_, threads);
  s->arena_.reset(new float[decoder_floats + c.vocab_size + image_rows * c.hidden_size]);
  s->buffers_ = model.decoder->CarveBuffers(s->arena_.get(), s->max_batch_, s->context_, threads);
  s->logits_ = s->arena_.get() + decoder_floats;
  s->image_embeds_ = image_rows > 0 ? s->logits_ + c.vocab_size : nullptr;
  s->tokens_.reserve(s->context_);
  const RopeConfig& rope = c.rope;
  if (rope.type == "longrope" && !model.config.is_vlm() && rope.original_max_position_embeddings < s->context_) {
    s->recompute_at_ = rope.original_max_position_embeddings;
  }
  return s;
}

Result<std::vector<int32_t>> Session::TokenizePrompt(std::string_view text, bool has_image, ChatMode chat) const {
  if (!model_.tokenizer) {
    return NotFound(model_.dir + ": no tokenizer (tokenizer.json, tokenizer.model or vocab.json) to encode the prompt");
  }
  const Tokenizer& tok = *model_.tokenizer;
  const ModelConfig& cfg = model_.config;
  if (has_image && !cfg.is_vlm()) return InvalidArgument(model_.dir + ": an image was given but the model has no vision tower");
  std::string image_token;
  if (cfg.is_vlm()) image_token = tok.Decode({static_cast<int32_t>(cfg.image_token_index)});
  const bool text_has_image = !image_token.empty() && text.find(image_token) != std::string_view::npos;
  std::string prompt(text);
  if (chat == ChatMode::kOn || (chat == ChatMode::kAuto && has_image && !text_has_image)) {
    prompt = FormatUserTurn(model_.chat_family, text, has_image && !text_has_image, image_token);
  } else if (has_image && !text_has_image) {
    prompt = image_token + "\n" + prompt;
  }
  std::vector<int32_t> ids = tok.Encode(prompt, tok.add_bos_by_default());
  if (ids.empty()) ids.push_back(model_.bos_id);  // an empty prompt starts from BOS
  if (!cfg.is_vlm()) return ids;

  const int32_t image_id = static_cast<int32_t>(cfg.image_token_index);
  const int64_t placeholders = std::count(ids.begin(), ids.end(), image_id);
  if (has_image && placeholders != 1) {
    return InvalidArgument("the prompt holds " + std::to_string(placeholders) + " image tokens; one image needs exactly one");
  }
  if (!has_image && placeholders != 0) return InvalidArgument("the prompt holds an image token but no image was given");
  std::vector<int32_t> expanded;
  expanded.reserve(ids.size() + cfg.image_seq_length());
  for (int32_t id : ids) {
    if (id == image_id) expanded.insert(expanded.end(), cfg.image_seq_length(), image_id);
    else expanded.push_back(id);
  }
  return expanded;
}

Status Session::Prefill(const int32_t* ids, int64_t n, const float* image_embeds) {
  if (n <= 0) return InvalidArgument("the prompt is empty");
  if (n > context_) {
    return OutOfRange("prompt has " + std::to_string(n) + " tokens but the context holds " + std::to_string(context_) +
                      "; shorten the prompt or raise --max-context");
  }
  tokens_.assign(ids, ids + n);
  prefill_image_ = image_embeds;
  return ForwardFromStart(1, logits_);
}

Status Session::ForwardFromStart(int64_t n_logits, float* logits) {
  const int64_t n = static_cast<int64_t>(tokens_.size());
  const bool vlm = model_.config.is_vlm();
  const int32_t image_id = vlm ? static_cast<int32_t>(model_.config.image_token_index) : -1;
  const int64_t h = model_.config.text.hidden_size, vocab = model_.config.text.vocab_size;
  const int64_t image_rows = vlm ? model_.config.image_seq_length() : 0;
  const int64_t placeholders = vlm ? std::count(tokens_.begin(), tokens_.end(), image_id) : 0;
  if (placeholders > 0 && prefill_image_ == nullptr) {
    return InvalidArgument("the prompt holds image tokens but no image was encoded");
  }
  if (prefill_image_ != nullptr && placeholders != image_rows) {
    return InvalidArgument("the prompt holds " + std::to_string(placeholders) + " image tokens but the image yields " +
                           std::to_string(image_rows));
  }
  kv_.Clear();
  // One forward in transformers: the longrope factor set follows the whole sequence.
  const bool long_rope = rope_.UseLong(n - 1);
  const int64_t first_logit = n - n_logits;  // logits are wanted for positions [first_logit, n)
  int64_t image_row = 0;
  for (int64_t pos0 = 0; pos0 < n; pos0 += max_batch_) {
    const int64_t m = std::min(max_batch_, n - pos0);
    for (int64_t t = 0; t < m; ++t) {
      float* row = buffers_.x + t * h;
      if (tokens_[pos0 + t] == image_id) {
        std::copy(prefill_image_ + image_row * h, prefill_image_ + (image_row + 1) * h, row);
        ++image_row;
      } else {
        BL_TRY(model_.decoder->Embed(&tokens_[pos0 + t], 1, row));
      }
    }
    const int64_t chunk_logits = std::max<int64_t>(0, pos0 + m - std::max(first_logit, pos0));
    float* out = chunk_logits > 0 ? logits + (pos0 + m - chunk_logits - first_logit) * vocab : nullptr;
    BL_TRY(model_.decoder->Forward(m, pos0, rope_, long_rope, kv_.layers(), buffers_, chunk_logits, out));
    kv_.set_size(pos0 + m);
  }
  return Status::Ok();
}

Status Session::DecodeStep(int32_t id) {
  const int64_t pos = kv_.size();
  if (pos >= context_) return OutOfRange("the context of " + std::to_string(context_) + " positions is full");
  tokens_.push_back(id);
  if (recompute_at_ == pos) {
    // Phi3ForCausalLM.prepare_inputs_for_generation: when the sequence first
    // outgrows original_max_position_embeddings, transformers drops the cache
    // and recomputes everything with the long factors. Do the same.
    return ForwardFromStart(1, logits_);
  }
  BL_TRY(model_.decoder->Embed(&id, 1, buffers_.x));
  BL_TRY(model_.decoder->Forward(1, pos, rope_, rope_.UseLong(pos), kv_.layers(), buffers_, 1, logits_));
  kv_.set_size(pos + 1);
  return Status::Ok();
}

Result<std::vector<float>> Session::EvaluateLogits(const std::vector<int32_t>& ids, const float* image_embeds) {
  const int64_t n = static_cast<int64_t>(ids.size()), vocab = model_.config.text.vocab_size;
  if (n <= 0) return InvalidArgument("no ids to evaluate");
  if (n > context_) {
    return OutOfRange(std::to_string(n) + " ids but the context holds " + std::to_string(context_));
  }
  tokens_.assign(ids.begin(), ids.end());
  prefill_image_ = image_embeds;
  std::vector<float> logits(static_cast<size_t>(n * vocab));
  BL_TRY(ForwardFromStart(n, logits.data()));
  return logits;
}

Result<const float*> Session::EncodeImage(const Image& image, Timings* timings) {
  if (!model_.vision || image_embeds_ == nullptr) {
    return InvalidArgument(model_.dir + ": an image was given but the model has no vision tower");
  }
  if (!model_.image_processor) {
    return NotFound(model_.dir + "/preprocessor_config.json is missing; it says how to resize and normalize the image");
  }
  const auto start = Clock::now();
  BL_ASSIGN_OR_RETURN(Tensor pixels, PreprocessImage(image, *model_.image_processor));
  BL_TRY(model_.vision->Encode(pixels, image_embeds_));
  timings->vision_ms = MsSince(start);
  timings->image_tokens = model_.config.image_seq_length();
  return static_cast<const float*>(image_embeds_);
}

Result<GenerateResult> Session::Generate(const std::vector<int32_t>& prompt, const Image* image,
                                         const GenerateOptions& options, const TokenCallback& on_token) {
  const int64_t n = static_cast<int64_t>(prompt.size());
  if (n == 0) return InvalidArgument("the prompt is empty");
  if (options.max_tokens < 0) return InvalidArgument("--max-tokens must not be negative");
  const SamplerOptions& so = options.sampling;
  if (!(so.temperature >= 0)) return InvalidArgument("--temperature must be >= 0 (0 = greedy)");
  if (so.top_k < 0) return InvalidArgument("--top-k must be >= 0 (0 = off)");
  if (!(so.top_p > 0 && so.top_p <= 1)) return InvalidArgument("--top-p must be in (0, 1] (1 = off)");
  if (!(so.repeat_penalty > 0)) return InvalidArgument("--repeat-penalty must be > 0 (1 = off)");
  if (n + options.max_tokens > context_) {
    return OutOfRange("prompt has " + std::to_string(n) + " tokens + " + std::to_string(options.max_tokens) +
                      " to generate but the context holds " + std::to_string(context_) +
                      "; lower --max-tokens or raise --max-context");
  }
  GenerateResult result;
  result.timings.load_ms = model_.load_ms;
  result.timings.prompt_tokens = n;
  if (image != nullptr) BL_TRY(EncodeImage(*image, &result.timings).status());

  auto start = Clock::now();
  BL_TRY(Prefill(prompt.data(), n, image != nullptr ? image_embeds_ : nullptr));
  result.timings.prefill_ms = MsSince(start);

  Sampler sampler(model_.config.text.vocab_size, options.sampling);
  std::unique_ptr<StreamingDecoder> detok;
  if (model_.tokenizer) {
    detok = std::make_unique<StreamingDecoder>(*model_.tokenizer);
    // Decode the output as a continuation of the prompt (as HF's TextStreamer
    // does), so a first token like "▁there" keeps its space after a prompt; a
    // leading BOS is left out so that output from BOS alone starts clean.
    size_t first = 0;
    while (first < prompt.size() && prompt[first] == model_.bos_id) ++first;
    for (size_t i = first; i < prompt.size(); ++i) detok->Push(prompt[i]);
  }
  StopFilter stops(options.stop);
  start = Clock::now();
  result.finish_reason = "length";
  result.ids.reserve(options.max_tokens);
  auto emit = [&](int32_t id, const std::string& text) {
    result.text += text;
    return on_token ? on_token(id, text) : true;
  };
  for (int64_t i = 0; i < options.max_tokens; ++i) {
    const int32_t id = sampler.Sample(logits_, tokens_.data(), static_cast<int64_t>(tokens_.size()));
    result.ids.push_back(id);
    ++result.timings.generated_tokens;
    if (options.stop_at_eos && std::find(model_.eos_ids.begin(), model_.eos_ids.end(), id) != model_.eos_ids.end()) {
      result.finish_reason = "eos";
      break;
    }
    const std::string piece = detok ? stops.Push(detok->Push(id)) : std::string();
    if (!emit(id, piece)) {
      result.finish_reason = "cancelled";
      break;
    }
    if (stops.stopped()) {
      result.finish_reason = "stop";
      break;
    }
    if (i + 1 < options.max_tokens) BL_TRY(DecodeStep(id));
  }
  if (detok && result.finish_reason != "stop") {
    const std::string tail = stops.Push(detok->Flush());
    const std::string rest = stops.stopped() ? tail : tail + stops.Flush();
    if (!rest.empty()) emit(-1, rest);
  }
  result.timings.decode_ms = MsSince(start);
  return result;
}

}  // namespace bitlens
