// train/trainer: the training loop of `bitlens train`. Everything a step
// depends on (data order, learning rate) is a pure function of the step
// number, so the saved state (parameters, AdamW moments, step) is all a
// resumed run needs to continue bit-identically.
#include "train/trainer.h"

#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include <nlohmann/json.hpp>

#include "base/f16.h"
#include "base/progress.h"
#include "base/staging_dir.h"
#include "base/thread_pool.h"
#include "model/presets.h"
#include "model/synth_config.h"
#include "model/synth_tokenizer.h"
#include "tokenizer/bpe_trainer.h"
#include "tokenizer/chat_template.h"
#include "train/ops.h"
#include "train/optim.h"
#include "train/train_state.h"

namespace bitlens::train {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

// ------------------------------------------------------------------ data order

uint64_t SplitMix64(uint64_t* state) {
  uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// A seeded permutation of [0, n) per epoch (Fisher-Yates on splitmix64, so
// the order is the same with every standard library).
class EpochOrder {
 public:
  EpochOrder(uint64_t seed, int64_t n) : seed_(seed), n_(n) {}
  int64_t At(int64_t position) {
    const int64_t epoch = position / n_;
    if (epoch != epoch_) {
      epoch_ = epoch;
      perm_.resize(static_cast<size_t>(n_));
      for (int64_t i = 0; i < n_; ++i) perm_[i] = i;
      uint64_t state = seed_ ^ (0xD1B54A32D192ED03ull * static_cast<uint64_t>(epoch + 1));
      for (int64_t i = n_ - 1; i > 0; --i) {
        const int64_t j = static_cast<int64_t>(SplitMix64(&state) % static_cast<uint64_t>(i + 1));
        std::swap(perm_[i], perm_[j]);
      }
    }
    return perm_[position % n_];
  }

 private:
  uint64_t seed_;
  int64_t n_;
  int64_t epoch_ = -1;
  std::vector<int64_t> perm_;
};

// ------------------------------------------------------------------ files

Status WriteText(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  out.close();
  if (!out) return IoError(path.string() + ": write failed (disk full?)");
  return Status::Ok();
}

constexpr const char* kSpecialTokens[] = {"<s>", "</s>", "<unk>", "<pad>", "<image>"};

// The side files of the checkpoint, spelled as `bitlens synth` writes them
// for the tiny llava preset (tokenizer_config with LLaVA's chat template,
// generation and processor configs), with the trained tokenizer's ids.
Status WriteSideFiles(const fs::path& dir, const ModelConfig& config, const Recipe& recipe,
                      const std::vector<SpecialToken>& specials, const SpecialTokenIds& ids) {
  BL_ASSIGN_OR_RETURN(SynthPreset tiny_llava, FindSynthPreset(SynthFamily::kLlava, "tiny"));
  SynthPreset p;
  p.name = "ref-vlm";
  p.family = SynthFamily::kLlava;
  p.config = config;
  p.default_dtype = recipe.dtype;
  p.generation_eos_ids = {ids.eos};
  p.tokenizer.special_tokens = specials;
  p.tokenizer.bos_token = "<s>";
  p.tokenizer.eos_token = "</s>";
  p.tokenizer.pad_token = "<pad>";
  p.tokenizer.unk_token = "<unk>";
  p.tokenizer.add_bos = true;
  p.tokenizer.chat_template = tiny_llava.tokenizer.chat_template;
  SynthImageProcessorSpec ip;
  ip.processor_type = "CLIPImageProcessor";
  ip.size = recipe.data.image_size;
  ip.crop = recipe.data.image_size;
  ip.resample = 3;
  // CLIP's mean/std, as the decimal constants transformers writes.
  static constexpr double kMean[3] = {0.48145466, 0.4578275, 0.40821073};
  static constexpr double kStd[3] = {0.26862954, 0.26130258, 0.27577711};
  for (int c = 0; c < 3; ++c) {
    ip.mean[c] = kMean[c];
    ip.std[c] = kStd[c];
  }
  p.image_processor = ip;
  BL_TRY(WriteText(dir / "tokenizer_config.json", SynthTokenizerConfigJson(p.tokenizer, config.text.max_position_embeddings)));
  json special_map = {{"bos_token", "<s>"}, {"eos_token", "</s>"}, {"unk_token", "<unk>"}, {"pad_token", "<pad>"}};
  BL_TRY(WriteText(dir / "special_tokens_map.json", special_map.dump(2) + "\n"));
  BL_TRY(WriteText(dir / "generation_config.json", SynthGenerationConfigJson(p, HfLayout::kV4)));
  BL_TRY(WriteText(dir / "preprocessor_config.json", SynthPreprocessorConfigJson(p)));
  BL_TRY(WriteText(dir / "processor_config.json", SynthProcessorConfigJson(p)));
  return Status::Ok();
}

// LLaVA-1.5's tokenizer (Llama's) prepends <s> through a TemplateProcessing
// post-processor; the trained BPE has none, so HF tokenizers would add no BOS
// while tokenizer_config.json's add_bos_token makes bitlens add one. Adding
// Llama's post-processor makes both add exactly one <s>.
Result<std::string> WithBosPostProcessor(const std::string& tokenizer_json) {
  json root = json::parse(tokenizer_json, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded() || !root.is_object()) return Internal("the BPE trainer wrote invalid tokenizer.json");
  std::optional<int64_t> bos;
  if (auto it = root.find("added_tokens"); it != root.end() && it->is_array()) {
    for (const json& t : *it) {
      if (t.is_object() && t.value("content", "") == "<s>" && t.contains("id") && t["id"].is_number_integer()) {
        bos = t["id"].get<int64_t>();
      }
    }
  }
  if (!bos) return Internal("the trained tokenizer.json has no <s> added token");
  auto special = [](const char* id, int type_id) { return json{{"SpecialToken", {{"id", id}, {"type_id", type_id}}}}; };
  auto sequence = [](const char* id, int type_id) { return json{{"Sequence", {{"id", id}, {"type_id", type_id}}}}; };
  root["post_processor"] = {
      {"type", "TemplateProcessing"},
      {"single", json::array({special("<s>", 0), sequence("A", 0)})},
      {"pair", json::array({special("<s>", 0), sequence("A", 0), special("<s>", 1), sequence("B", 1)})},
      {"special_tokens", {{"<s>", {{"id", "<s>"}, {"ids", json::array({*bos})}, {"tokens", json::array({"<s>"})}}}}}};
  return root.dump(2) + "\n";
}

// Why Forward refused an example, as a non-OK status.
Status ForwardFailure(const TrainableVlm& model, const VlmExample& ex, const std::string& what) {
  Status s = model.CheckExample(ex);
  if (s.ok()) return Internal(what + ": the model's forward pass failed");
  return s.WithContext(what);
}

// ------------------------------------------------------------------ state

TrainState CaptureState(const TrainableVlm& model, AdamW& adam, int64_t step, double seconds, int64_t tokens,
                        const std::string& recipe_json, const std::string& tokenizer_json, const std::string& log) {
  TrainState s;
  s.step = step;
  s.optimizer_step = adam.step();
  s.seconds = seconds;
  s.tokens = tokens;
  s.recipe_json = recipe_json;
  s.tokenizer_json = tokenizer_json;
  s.log_jsonl = log;
  const ParamSet& params = model.params();
  const int64_t total = params.NumElements();
  s.values.reserve(total);
  s.adam_m.reserve(total);
  s.adam_v.reserve(total);
  for (size_t i = 0; i < params.size(); ++i) {
    const Param& p = params[i];
    s.tensors.push_back({p.name, p.shape});
    s.values.insert(s.values.end(), p.value.begin(), p.value.end());
    const auto& m = adam.m()[i];
    const auto& v = adam.v()[i];
    // Frozen parameters may have no moments; they are stored as zeros.
    if (m.size() == p.value.size()) s.adam_m.insert(s.adam_m.end(), m.begin(), m.end());
    else s.adam_m.insert(s.adam_m.end(), p.value.size(), 0.0f);
    if (v.size() == p.value.size()) s.adam_v.insert(s.adam_v.end(), v.begin(), v.end());
    else s.adam_v.insert(s.adam_v.end(), p.value.size(), 0.0f);
  }
  return s;
}

Status RestoreState(const TrainState& s, const std::string& source, TrainableVlm& model, AdamW& adam) {
  ParamSet& params = model.params();
  if (s.tensors.size() != params.size()) {
    return InvalidArgument(source + ": holds " + std::to_string(s.tensors.size()) + " tensors but the recipe's model has " +
                           std::to_string(params.size()));
  }
  size_t offset = 0;
  for (size_t i = 0; i < params.size(); ++i) {
    Param& p = params[i];
    if (s.tensors[i].name != p.name || s.tensors[i].shape != p.shape) {
      return InvalidArgument(source + ": tensor " + std::to_string(i) + " is '" + s.tensors[i].name + "' " +
                             ShapeToString(s.tensors[i].shape) + " but the model has '" + p.name + "' " +
                             ShapeToString(p.shape));
    }
    const size_t n = p.value.size();
    std::copy_n(s.values.begin() + offset, n, p.value.begin());
    auto& m = adam.m()[i];
    auto& v = adam.v()[i];
    if (m.size() == n) std::copy_n(s.adam_m.begin() + offset, n, m.begin());
    if (v.size() == n) std::copy_n(s.adam_v.begin() + offset, n, v.begin());
    offset += n;
  }
  adam.set_step(s.optimizer_step);
  return Status::Ok();
}

std::string FormatNumber(double v, const char* fmt = "%.6g") {
  char buf[48];
  std::snprintf(buf, sizeof(buf), fmt, v);
  return buf;
}

// ------------------------------------------------------------------ one run

struct Run {
  const TrainOptions& o;
  const Recipe& r;
  std::string recipe_json;
  std::string tokenizer_json;
  std::unique_ptr<StagingDir> staging;
  std::unique_ptr<Tokenizer> tokenizer;
  ModelConfig config;
  ExampleContext context;
  std::unique_ptr<TrainableVlm> model;
  std::unique_ptr<AdamW> adam;
  int64_t step = 0;
  int64_t tokens = 0;
  double seconds_before = 0;  // wall time of earlier (resumed) runs
  std::string log;
  TrainResult result;

  explicit Run(const TrainOptions& options) : o(options), r(options.recipe) {}

  Status Setup(const TrainState* resumed) {
    if (resumed != nullptr) {
      tokenizer_json = resumed->tokenizer_json;
    } else {
      BpeTrainOptions bpe;
      bpe.vocab_size = r.vocab_size;
      bpe.min_frequency = r.min_frequency;
      bpe.special_tokens.assign(std::begin(kSpecialTokens), std::end(kSpecialTokens));
      BL_ASSIGN_OR_RETURN(std::string trained, TrainByteLevelBpe(TokenizerCorpus(r.data), bpe));
      BL_ASSIGN_OR_RETURN(tokenizer_json, WithBosPostProcessor(trained));
    }
    BL_ASSIGN_OR_RETURN(staging, StagingDir::Create(o.output_dir));
    const fs::path dir = staging->path();
    BL_TRY(WriteText(dir / "tokenizer.json", tokenizer_json));
    // tokenizer_config.json needs the special ids, which come from the tokenizer itself.
    BL_ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> bare, Tokenizer::Load((dir / "tokenizer.json").string()));
    std::vector<SpecialToken> specials;
    SpecialTokenIds ids;
    for (const char* name : kSpecialTokens) {
      const auto id = bare->TokenId(name);
      if (!id) return Internal(std::string("the trained tokenizer has no special token ") + name);
      specials.push_back({name, *id});
    }
    ids.bos = specials[0].id;
    ids.eos = specials[1].id;
    ids.pad = specials[3].id;
    ids.image = specials[4].id;
    int64_t vocab = bare->vocab_size();
    for (const auto& s : specials) vocab = std::max<int64_t>(vocab, s.id + 1);
    config = RecipeModelConfig(r, vocab, ids);
    BL_TRY(WriteSideFiles(dir, config, r, specials, ids));
    BL_TRY(WriteText(dir / "recipe.json", recipe_json));
    // The tokenizer and image processor exactly as `bitlens run` loads them from the checkpoint.
    BL_ASSIGN_OR_RETURN(tokenizer, Tokenizer::Load(dir.string()));
    if (ChatFamilyFor(config.text.model_type, *tokenizer) != ChatFamily::kLlava15) {
      return Internal("the trained tokenizer does not select the LLaVA-1.5 chat format");
    }
    context.tokenizer = tokenizer.get();
    context.config = &config;
    context.eos_id = static_cast<int32_t>(ids.eos);
    BL_ASSIGN_OR_RETURN(context.image_processor, LoadImageProcessorConfig(dir.string()));

    BL_ASSIGN_OR_RETURN(model, TrainableVlm::Create(config, r.seed));
    AdamWConfig ac;
    ac.beta1 = static_cast<float>(r.optimizer.beta1);
    ac.beta2 = static_cast<float>(r.optimizer.beta2);
    ac.eps = static_cast<float>(r.optimizer.eps);
    ac.weight_decay = static_cast<float>(r.optimizer.weight_decay);
    adam = std::make_unique<AdamW>(model->params(), ac);
    if (resumed != nullptr) {
      BL_TRY(RestoreState(*resumed, o.state_path, *model, *adam));
      step = resumed->step;
      tokens = resumed->tokens;
      seconds_before = resumed->seconds;
      log = resumed->log_jsonl;
    }
    return Status::Ok();
  }

  Status SaveState(double seconds) {
    return WriteTrainState(CaptureState(*model, *adam, step, seconds, tokens, recipe_json, tokenizer_json, log),
                           o.state_path);
  }

  // One optimizer step over batch_size samples; returns the mean CE per answer token.
  Result<double> Step(EpochOrder& order, float lr, double* grad_norm, std::vector<float>& dlogits) {
    const int64_t batch = r.optimizer.batch_size;
    std::vector<VlmExample> examples;
    examples.reserve(batch);
    int64_t scored = 0;
    for (int64_t j = 0; j < batch; ++j) {
      const int64_t index = order.At(step * batch + j);
      const VqaSample sample = DrawSample(r.data, r.kinds, Split::kTrain, index);
      BL_ASSIGN_OR_RETURN(VlmExample ex, BuildExample(sample, context));
      for (int32_t t : ex.targets) scored += t >= 0;
      examples.push_back(std::move(ex));
    }
    if (scored == 0) return Internal("a batch without answer tokens");
    const float scale = 1.0f / static_cast<float>(scored);
    const int64_t vocab = config.text.vocab_size;
    ParamSet& params = model->params();
    params.ZeroGrad();
    double loss_sum = 0;
    for (const VlmExample& ex : examples) {
      const int64_t t = static_cast<int64_t>(ex.input_ids.size());
      const float* logits = model->Forward(ex);
      if (logits == nullptr) return ForwardFailure(*model, ex, "training sample");
      dlogits.assign(static_cast<size_t>(t * vocab), 0.0f);
      loss_sum += CrossEntropyForwardBackward(logits, ex.targets.data(), t, vocab, scale, dlogits.data());
      model->Backward(dlogits.data());
      tokens += t;
    }
    *grad_norm = ClipGradNorm(params, r.optimizer.grad_clip);
    // A non-finite norm leaves the gradients untouched; the step is skipped
    // (the loss check of the caller then stops the run if the loss is bad too).
    if (std::isfinite(*grad_norm)) adam->Step(params, lr);
    return loss_sum / static_cast<double>(scored);
  }

  Result<TrainResult> Loop() {
    const RecipeOptimizer& opt = r.optimizer;
    EpochOrder order(r.seed, r.train_samples);
    std::vector<float> dlogits;
    const auto start = Clock::now();
    auto elapsed = [&] { return seconds_before + std::chrono::duration<double>(Clock::now() - start).count(); };
    const int64_t first = step;
    ProgressBar bar("train", static_cast<uint64_t>(std::max<int64_t>(opt.steps - first, 1)));
    int64_t window_tokens = 0;
    auto window_start = Clock::now();
    const int64_t tokens_at_start = tokens;
    while (step < opt.steps) {
      const float lr = WarmupCosineLr(step + 1, opt.warmup_steps, opt.steps, static_cast<float>(opt.lr),
                                      static_cast<float>(opt.min_lr));
      double grad_norm = 0;
      const int64_t tokens_before = tokens;
      BL_ASSIGN_OR_RETURN(double loss, Step(order, lr, &grad_norm, dlogits));
      if (!std::isfinite(loss)) {
        if (o.progress) bar.Abandon();
        return Internal("training diverged at step " + std::to_string(step + 1) + " (loss " + FormatNumber(loss) +
                        "); lower optimizer.lr");
      }
      ++step;
      window_tokens += tokens - tokens_before;
      result.losses.push_back(loss);
      json line = {{"step", step}, {"loss", loss}, {"lr", lr}, {"grad_norm", grad_norm}, {"tokens", tokens},
                   {"seconds", std::round(elapsed() * 1000) / 1000}};
      const bool last = step == opt.steps;
      if ((r.eval_interval > 0 && step % r.eval_interval == 0) || last) {
        BL_ASSIGN_OR_RETURN(result.validation,
                            EvaluateSplit(*model, context, r.data, Split::kValidation, r.eval_samples, r.kinds));
        line["val_loss"] = result.validation.loss;
        line["val_accuracy"] = result.validation.accuracy();
      }
      log += line.dump() + "\n";
      if (o.progress) {
        const double window = std::chrono::duration<double>(Clock::now() - window_start).count();
        std::string detail = "step " + std::to_string(step) + "/" + std::to_string(opt.steps) + " loss " +
                             FormatNumber(loss, "%.4f") + " lr " + FormatNumber(lr, "%.2e") + " " +
                             FormatNumber(window > 0 ? window_tokens / window : 0, "%.0f") + " tok/s";
        if (result.validation.samples > 0) {
          detail += " val " + FormatNumber(100 * result.validation.accuracy(), "%.1f") + "%";
        }
        bar.Update(static_cast<uint64_t>(step - first), detail);
        if (window > 10) {
          window_tokens = 0;
          window_start = Clock::now();
        }
      }
      const bool cancelled = o.cancel != nullptr && o.cancel->load();
      const bool pause = o.stop_after_step > 0 && step >= o.stop_after_step && !last;
      if (cancelled || pause) {
        if (o.progress) bar.Abandon();
        BL_TRY(SaveState(elapsed()));
        result.finished = false;
        result.step = step;
        result.seconds = elapsed();
        result.state_path = o.state_path;
        return result;
      }
      if (r.checkpoint_interval > 0 && step % r.checkpoint_interval == 0 && !last) BL_TRY(SaveState(elapsed()));
    }
    if (o.progress) bar.Finish(std::to_string(tokens - tokens_at_start) + " tokens");
    result.seconds = elapsed();
    return Finish();
  }

  Result<TrainResult> Finish() {
    const fs::path dir = staging->path();
    if (o.save_state_on_finish) BL_TRY(SaveState(result.seconds));
    // The test figures describe the weights as saved: round the masters first when saving bf16.
    if (r.dtype == DType::kBF16) {
      ParamSet& params = model->params();
      for (size_t i = 0; i < params.size(); ++i) {
        for (float& v : params[i].value) v = Bf16ToF32(F32ToBf16(v));
      }
    }
    BL_ASSIGN_OR_RETURN(result.test, EvaluateSplit(*model, context, r.data, Split::kTest, r.test_samples, r.kinds));
    BL_TRY(SaveVlmCheckpoint(*model, r.dtype, dir.string()));
    BL_TRY(WriteText(dir / "train_log.jsonl", log));
    json eval = json::parse(result.test.ToJson());
    eval["validation"] = json::parse(result.validation.ToJson());
    eval["steps"] = step;
    eval["tokens"] = tokens;
    eval["train_seconds"] = std::round(result.seconds * 10) / 10;
    eval["method"] = "exact match of teacher-forced greedy (argmax) predictions over the answer and </s>";
    BL_TRY(WriteText(dir / "eval.json", eval.dump(2) + "\n"));
    BL_TRY(staging->Commit());
    if (!o.save_state_on_finish) {
      std::error_code ec;
      fs::remove(o.state_path, ec);
    }
    result.finished = true;
    result.step = step;
    result.output_dir = o.output_dir;
    return result;
  }
};

}  // namespace

std::string EvalSummary::ToJson() const {
  json kinds = json::object();
  for (const auto& [name, k] : per_kind) {
    kinds[name] = {{"samples", k.samples},
                   {"correct", k.correct},
                   {"accuracy", k.samples ? static_cast<double>(k.correct) / k.samples : 0.0}};
  }
  return json({{"split", split},
               {"samples", samples},
               {"correct", correct},
               {"exact_match", accuracy()},
               {"loss", loss},
               {"per_kind", kinds}})
      .dump();
}

VqaSample DrawSample(const DataOptions& data, const std::vector<QuestionKind>& kinds, Split split, int64_t index) {
  constexpr int64_t kRedrawStride = int64_t{1} << 40;  // beyond any split size
  VqaSample sample = MakeSample(data, split, index);
  for (int64_t k = 1; !kinds.empty() && std::find(kinds.begin(), kinds.end(), sample.kind) == kinds.end(); ++k) {
    sample = MakeSample(data, split, index + k * kRedrawStride);
  }
  return sample;
}

Result<EvalSummary> EvaluateSplit(TrainableVlm& model, const ExampleContext& context, const DataOptions& data,
                                  Split split, int64_t count, const std::vector<QuestionKind>& kinds) {
  EvalSummary s;
  s.split = split == Split::kTrain ? "train" : split == Split::kValidation ? "validation" : "test";
  const int64_t vocab = context.config->text.vocab_size;
  double loss_sum = 0;
  int64_t scored = 0;
  for (int64_t i = 0; i < count; ++i) {
    const VqaSample sample = DrawSample(data, kinds, split, i);
    BL_ASSIGN_OR_RETURN(VlmExample ex, BuildExample(sample, context));
    const int64_t t = static_cast<int64_t>(ex.input_ids.size());
    const float* logits = model.Forward(ex);
    if (logits == nullptr) return ForwardFailure(model, ex, s.split + " sample " + std::to_string(i));
    loss_sum += CrossEntropyForwardBackward(logits, ex.targets.data(), t, vocab, 1.0f, nullptr);
    bool exact = true;
    for (int64_t p = 0; p < t; ++p) {
      if (ex.targets[p] < 0) continue;
      ++scored;
      const float* row = logits + p * vocab;
      const int64_t best = std::max_element(row, row + vocab) - row;
      exact = exact && best == ex.targets[p];
    }
    EvalSummary::Kind& k = s.per_kind[std::string(QuestionKindName(sample.kind))];
    k.samples += 1;
    k.correct += exact;
    s.samples += 1;
    s.correct += exact;
  }
  s.loss = scored ? loss_sum / scored : 0.0;
  return s;
}

Result<TrainResult> Train(const TrainOptions& options) {
  TrainOptions o = options;
  if (o.output_dir.empty()) return InvalidArgument("train needs an output directory (-o OUT)");
  while (o.output_dir.size() > 1 && o.output_dir.back() == '/') o.output_dir.pop_back();
  if (o.state_path.empty()) o.state_path = o.output_dir + ".state";
  std::error_code ec;
  if (fs::exists(o.output_dir, ec) && !o.force) {
    return InvalidArgument(o.output_dir + " already exists; pass --force to replace it");
  }
  std::unique_ptr<TrainState> resumed;
  if (o.resume) {
    BL_ASSIGN_OR_RETURN(TrainState s, ReadTrainState(o.state_path));
    if (!o.recipe_json.empty() && s.recipe_json != o.recipe_json) {
      return InvalidArgument(o.state_path + ": was started with a different recipe; resume with the same recipe.json "
                             "(or start afresh without --resume)");
    }
    BL_ASSIGN_OR_RETURN(o.recipe, ParseRecipe(s.recipe_json, o.state_path + " (recipe)"));
    o.recipe_json = s.recipe_json;
    resumed = std::make_unique<TrainState>(std::move(s));
  }
  const int threads = o.threads >= 0 ? o.threads : o.recipe.threads;
  SetNumThreads(static_cast<size_t>(threads));
  // Our pool splits the work; OpenBLAS runs single-threaded inside it (no oversubscription).
  openblas_set_num_threads(1);

  Run run(o);
  run.recipe_json = o.recipe_json;
  BL_TRY(run.Setup(resumed.get()));
  resumed.reset();
  return run.Loop();
}

}  // namespace bitlens::train
