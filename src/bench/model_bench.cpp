// bench/model_bench: warm-up, timed prefill, timed greedy decode, then the
// same step's GEMVs alone, all on one Session at the current pool size.
#include "bench/model_bench.h"

#include <sys/resource.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>

#include "base/thread_pool.h"
#include "bench/machine.h"
#include "kernels/ops.h"
#include "quant/formats.h"
#include "runtime/session.h"

namespace bitlens::bench {
namespace {

using Clock = std::chrono::steady_clock;
double Seconds(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

int64_t MatrixBytes(const kernels::WeightView& w) {
  return w.data == nullptr ? 0 : static_cast<int64_t>(kernels::WeightRowBytes(w)) * w.n;
}

// Every matrix a decode step multiplies by, in the order the decoder runs them.
std::vector<const kernels::WeightView*> DecodeMatrices(const DecoderWeights& w) {
  std::vector<const kernels::WeightView*> out;
  for (const DecoderLayerWeights& l : w.layers) {
    for (const kernels::WeightView* v : {&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down}) out.push_back(v);
  }
  out.push_back(&w.lm_head);
  return out;
}

std::string FormatName(const kernels::WeightView& w) {
  if (w.format != nullptr) return w.format->name;
  std::string name(DTypeName(w.dtype));
  for (char& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return name;
}

void Say(const ModelBenchOptions& o, const std::string& line) {
  if (o.progress) o.progress(line);
}

double ProcessCpuSeconds() {
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
}

int32_t Argmax(const float* logits, int64_t vocab) {
  return static_cast<int32_t>(std::max_element(logits, logits + vocab) - logits);
}

}  // namespace

DecodeWeightBytes CountDecodeWeightBytes(const Decoder& decoder) {
  const DecoderWeights& w = decoder.weights();
  const int64_t hidden = decoder.config().hidden_size;
  const int64_t f32 = static_cast<int64_t>(sizeof(float));
  DecodeWeightBytes b;
  for (const DecoderLayerWeights& l : w.layers) {
    for (const kernels::WeightView* v : {&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down}) {
      b.layer_matrices += MatrixBytes(*v);
    }
    b.layer_vectors += (l.input_norm.data ? hidden * f32 : 0) + (l.post_attn_norm.data ? hidden * f32 : 0);
    // A bias has one value per output row of its matrix.
    const std::pair<const F32Vector*, const kernels::WeightView*> biases[] = {
        {&l.q_bias, &l.q}, {&l.k_bias, &l.k}, {&l.v_bias, &l.v}, {&l.o_bias, &l.o},
        {&l.gate_bias, &l.gate}, {&l.up_bias, &l.up}, {&l.down_bias, &l.down}};
    for (const auto& [bias, view] : biases) b.layer_vectors += bias->data ? view->n * f32 : 0;
  }
  b.final_norm = w.final_norm.data ? hidden * f32 : 0;
  b.lm_head = MatrixBytes(w.lm_head);
  const Tensor& e = w.embed_tokens;
  b.embed_row = e.rank() >= 1 && e.dim(0) > 0 ? static_cast<int64_t>(e.nbytes()) / e.dim(0) : 0;
  return b;
}

Result<ModelBenchResult> BenchModel(const Model& model, const ModelBenchOptions& options) {
  if (!model.decoder) return InvalidArgument(model.dir + ": the model has no decoder to benchmark");
  if (options.prompt_tokens < 1) return InvalidArgument("--prompt-tokens must be >= 1");
  if (options.decode_tokens < 1) return InvalidArgument("--decode-tokens must be >= 1");
  const Decoder& decoder = *model.decoder;
  const TextConfig& c = decoder.config();
  const DecoderWeights& w = decoder.weights();

  ModelBenchResult r;
  r.model_dir = model.dir;
  r.architecture = model.config.architecture;
  r.threads = static_cast<int64_t>(NumThreads());
  r.bytes = CountDecodeWeightBytes(decoder);
  r.prompt_tokens = options.prompt_tokens;
  r.decode_tokens = options.decode_tokens;
  std::map<std::string, int64_t> formats;
  for (const kernels::WeightView* v : DecodeMatrices(w)) {
    if (v == &w.lm_head && c.tie_word_embeddings) continue;  // counted with the embedding below
    r.parameters += v->n * v->k;
    ++formats[FormatName(*v)];
  }
  r.parameters += c.vocab_size * c.hidden_size;
  r.weight_formats.clear();
  for (const auto& [name, count] : formats) {
    r.weight_formats += (r.weight_formats.empty() ? "" : ", ") + name + " x" + std::to_string(count);
  }
  r.weight_formats += std::string(", head ") + FormatName(w.lm_head) + (c.tie_word_embeddings ? " (tied)" : "");

  // Context just large enough: the KV cache and buffers stay small.
  const int64_t warmup_prompt = std::min<int64_t>(options.prompt_tokens, 8);
  SessionOptions so;
  so.max_context = options.prompt_tokens + options.decode_tokens + 1;
  BL_ASSIGN_OR_RETURN(std::unique_ptr<Session> session, Session::Create(model, so));
  if (session->context() < so.max_context) {
    return InvalidArgument(model.dir + ": --prompt-tokens + --decode-tokens = " + std::to_string(so.max_context - 1) +
                           " exceeds the model's " + std::to_string(session->context()) + " positions");
  }
  // Deterministic prompt ids spread over the vocabulary; the image token is
  // skipped (it would need an image).
  const int32_t image_id = model.config.is_vlm() ? static_cast<int32_t>(model.config.image_token_index) : -1;
  std::vector<int32_t> prompt;
  uint64_t s = 12345;
  while (static_cast<int64_t>(prompt.size()) < options.prompt_tokens) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    const auto id = static_cast<int32_t>((s >> 33) % static_cast<uint64_t>(c.vocab_size));
    if (id != image_id) prompt.push_back(id);
  }
  const int64_t vocab = c.vocab_size;

  // Warm-up: the first pass pages the mapped weights in (from the page cache
  // or disk) and settles the pool; it is not timed into the figures.
  Say(options, "warm-up: a short prefill and 2 decode steps (the first pass pages the weights in)");
  auto t0 = Clock::now();
  BL_TRY(session->Prefill(prompt.data(), warmup_prompt, nullptr));
  for (int i = 0; i < 2; ++i) BL_TRY(session->DecodeStep(Argmax(session->logits(), vocab)));
  r.warmup_s = Seconds(t0, Clock::now());

  Say(options, "prefill: " + std::to_string(options.prompt_tokens) + " tokens");
  t0 = Clock::now();
  BL_TRY(session->Prefill(prompt.data(), options.prompt_tokens, nullptr));
  r.prefill_s = Seconds(t0, Clock::now());
  r.prefill_tokens_per_s = options.prompt_tokens / r.prefill_s;

  Say(options, "decode: " + std::to_string(options.decode_tokens) + " greedy steps");
  std::vector<double> steps;
  int32_t id = Argmax(session->logits(), vocab);
  const double cpu0 = ProcessCpuSeconds();
  for (int64_t i = 0; i < options.decode_tokens; ++i) {
    const auto a = Clock::now();
    BL_TRY(session->DecodeStep(id));
    id = Argmax(session->logits(), vocab);
    steps.push_back(Seconds(a, Clock::now()));
  }
  r.decode_cpu_s = ProcessCpuSeconds() - cpu0;
  r.load_average_1min = LoadAverage1Min();
  for (double t : steps) r.decode_s += t;
  if (r.decode_cpu_s > 0) r.decode_tokens_per_cpu_s = options.decode_tokens * r.threads / r.decode_cpu_s;
  r.decode_tokens_per_s = options.decode_tokens / r.decode_s;
  std::vector<double> sorted = steps;
  std::sort(sorted.begin(), sorted.end());
  r.decode_step_median_ms = sorted[sorted.size() / 2] * 1e3;
  r.decode_step_best_ms = sorted.front() * 1e3;
  const double mean_pos = options.prompt_tokens + (options.decode_tokens + 1) / 2.0;
  r.kv_bytes_per_token = 2.0 * static_cast<double>(c.num_hidden_layers) * mean_pos *
                         static_cast<double>(decoder.kv_dim()) * sizeof(float);
  session.reset();

  // The step's GEMVs alone: same matrices, same order, same pool.
  Say(options, "matmul-only pass: the GEMVs of one decode step, " + std::to_string(options.matmul_passes) + " times");
  const std::vector<const kernels::WeightView*> matrices = DecodeMatrices(w);
  int64_t max_n = 0, max_k = 0;
  for (const kernels::WeightView* v : matrices) {
    max_n = std::max(max_n, v->n);
    max_k = std::max(max_k, v->k);
  }
  std::vector<float> x(static_cast<size_t>(max_k)), y(static_cast<size_t>(max_n));
  for (size_t i = 0; i < x.size(); ++i) x[i] = 0.01f * static_cast<float>(static_cast<int64_t>(i % 17) - 8);
  double best = 0;
  for (int64_t pass = 0; pass < std::max<int64_t>(options.matmul_passes, 1); ++pass) {
    const auto a = Clock::now();
    for (const kernels::WeightView* v : matrices) kernels::MatMul(x.data(), 1, *v, nullptr, y.data());
    const double t = Seconds(a, Clock::now());
    best = pass == 0 ? t : std::min(best, t);
  }
  r.matmul_pass_ms = best * 1e3;
  r.matmul_gb_per_s = static_cast<double>(r.bytes.layer_matrices + r.bytes.lm_head) / best / 1e9;

  SetCeiling(options.bandwidth_gb_per_s, &r);
  return r;
}

void SetCeiling(double bandwidth_gb_per_s, ModelBenchResult* r) {
  r->bandwidth_gb_per_s = bandwidth_gb_per_s;
  r->ceiling_tokens_per_s = r->ceiling_ratio = r->ceiling_ratio_median = 0;
  if (bandwidth_gb_per_s <= 0 || r->bytes.total() <= 0) return;
  r->ceiling_tokens_per_s = bandwidth_gb_per_s * 1e9 / static_cast<double>(r->bytes.total());
  r->ceiling_ratio = r->decode_tokens_per_s / r->ceiling_tokens_per_s;
  if (r->decode_step_median_ms > 0) r->ceiling_ratio_median = (1e3 / r->decode_step_median_ms) / r->ceiling_tokens_per_s;
}

}  // namespace bitlens::bench
