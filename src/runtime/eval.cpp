// runtime/eval: the evaluation loop. Per item: one greedy decode (prefill +
// decode steps, as `bitlens run` with temperature 0) and one teacher-forced
// forward over prompt + expected answer + EOS, on the model and, when given,
// on the reference with the same ids.
#include "runtime/eval.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>

#include "runtime/eval_metrics.h"
#include "runtime/sampler.h"

namespace bitlens {
namespace {

constexpr const char* kCaptionKind = "caption";

Status CheckReference(const Model& model, const Model& reference) {
  const int64_t v = model.config.text.vocab_size, rv = reference.config.text.vocab_size;
  if (v != rv) {
    return InvalidArgument(reference.dir + ": the reference has a vocabulary of " + std::to_string(rv) +
                           " tokens but the model has " + std::to_string(v) + " (KL needs the same tokenizer)");
  }
  if (model.config.is_vlm() != reference.config.is_vlm()) {
    return InvalidArgument(reference.dir + ": the reference and the model must both be vision-language models or both not");
  }
  if (model.config.is_vlm() && (model.config.image_token_index != reference.config.image_token_index ||
                                model.config.image_seq_length() != reference.config.image_seq_length())) {
    return InvalidArgument(reference.dir + ": the reference's image token or image length differs from the model's");
  }
  return Status::Ok();
}

// The text between the end of the user turn and the answer: LLaVA-1.5's
// "ASSISTANT:" is followed by a space ("ASSISTANT: {answer}</s>"), as is a raw
// prompt; the other families' assistant headers end in a newline or a tag.
const char* AnswerSeparator(ChatFamily family) {
  return family == ChatFamily::kLlava15 || family == ChatFamily::kNone ? " " : "";
}

// The answer's ids as they continue the prompt. A byte-level BPE spells the
// separating space inside the first answer token (" red"); SentencePiece's
// dummy prefix already gives "▁there", and encoding " there" would add a
// lone "▁". The first spelling whose decoded continuation reads exactly
// separator + answer wins (the first one when none does).
std::vector<int32_t> AnswerIds(const Tokenizer& tok, const std::vector<int32_t>& prompt, const std::string& separator,
                               const std::string& answer) {
  std::vector<int32_t> with_separator = tok.Encode(separator + answer, /*add_bos=*/false);
  if (separator.empty()) return with_separator;
  const std::string prompt_text = tok.Decode(prompt);
  auto reads_right = [&](const std::vector<int32_t>& ids) {
    std::vector<int32_t> all = prompt;
    all.insert(all.end(), ids.begin(), ids.end());
    return tok.Decode(all) == prompt_text + separator + answer;
  };
  if (reads_right(with_separator)) return with_separator;
  std::vector<int32_t> bare = tok.Encode(answer, /*add_bos=*/false);
  if (reads_right(bare)) return bare;
  return with_separator;
}

bool IsEos(const Model& model, int32_t id) {
  return std::find(model.eos_ids.begin(), model.eos_ids.end(), id) != model.eos_ids.end();
}

}  // namespace

double EvalStats::accuracy() const {
  return count > 0 ? static_cast<double>(correct) / count : std::numeric_limits<double>::quiet_NaN();
}
double EvalStats::perplexity() const {
  return answer_tokens > 0 ? std::exp(nll_sum / answer_tokens) : std::numeric_limits<double>::quiet_NaN();
}
double EvalStats::kl() const { return compared > 0 ? kl_sum / compared : std::numeric_limits<double>::quiet_NaN(); }
double EvalStats::top1_agreement() const {
  return compared > 0 ? static_cast<double>(agree) / compared : std::numeric_limits<double>::quiet_NaN();
}
void EvalStats::Add(const EvalStats& o) {
  count += o.count;
  correct += o.correct;
  nll_sum += o.nll_sum;
  answer_tokens += o.answer_tokens;
  kl_sum += o.kl_sum;
  agree += o.agree;
  compared += o.compared;
}

double EvalReport::caption_perplexity() const {
  const auto it = kinds.find(kCaptionKind);
  return it == kinds.end() ? std::numeric_limits<double>::quiet_NaN() : it->second.perplexity();
}

Result<EvalReport> Evaluate(const Model& model, const Model* reference, const std::vector<EvalItem>& items,
                            const EvalOptions& options) {
  if (items.empty()) return InvalidArgument("no items to evaluate");
  if (options.max_new_tokens <= 0) {
    return InvalidArgument("--max-new-tokens must be positive, got " + std::to_string(options.max_new_tokens));
  }
  if (!model.tokenizer) return NotFound(model.dir + ": no tokenizer; evaluation needs one to build prompts");
  if (reference) BL_TRY(CheckReference(model, *reference));
  const auto start = std::chrono::steady_clock::now();
  const Tokenizer& tok = *model.tokenizer;
  const int64_t vocab = model.config.text.vocab_size;
  BL_ASSIGN_OR_RETURN(std::unique_ptr<Session> session, Session::Create(model, options.session));
  std::unique_ptr<Session> ref_session;
  if (reference) {
    BL_ASSIGN_OR_RETURN(ref_session, Session::Create(*reference, options.session));
  }
  const int32_t eos = model.eos_ids.empty() ? -1 : model.eos_ids.front();
  const std::string separator = AnswerSeparator(model.chat_family);

  EvalReport report;
  report.model = model.dir;
  if (reference) report.reference = reference->dir;
  int64_t done = 0;
  for (const EvalItem& item : items) {
    const std::string where = "item " + std::to_string(done) + " (" + item.kind + ")";
    std::optional<Image> loaded;
    const Image* image = item.image ? &*item.image : nullptr;
    if (!image && !item.image_path.empty()) {
      BL_ASSIGN_OR_RETURN(Image decoded, DecodeImageFile(item.image_path));
      loaded = std::move(decoded);
      image = &*loaded;
    }
    auto prompt_or = session->TokenizePrompt(item.question, image != nullptr, ChatMode::kAuto);
    if (!prompt_or.ok()) return prompt_or.status().WithContext(where);
    const std::vector<int32_t> prompt = std::move(prompt_or).value();
    // Teacher-forced targets: the expected answer, then the closing EOS that
    // ends a turn (training scores both).
    std::vector<int32_t> targets = AnswerIds(tok, prompt, separator, item.answer);
    if (eos >= 0) targets.push_back(eos);
    std::vector<int32_t> full = prompt;
    full.insert(full.end(), targets.begin(), targets.end());
    if (static_cast<int64_t>(full.size()) > session->context()) {
      return OutOfRange(where + ": prompt and answer take " + std::to_string(full.size()) +
                        " tokens but the context holds " + std::to_string(session->context()));
    }

    Timings timings;
    const float* embeds = nullptr;
    if (image) {
      BL_ASSIGN_OR_RETURN(embeds, session->EncodeImage(*image, &timings));
    }

    // Greedy answer.
    BL_TRY(session->Prefill(prompt.data(), static_cast<int64_t>(prompt.size()), embeds));
    std::vector<int32_t> generated;
    for (int64_t i = 0; i < options.max_new_tokens; ++i) {
      const int32_t id = Argmax(session->logits(), vocab);
      if (IsEos(model, id)) break;
      generated.push_back(id);
      if (i + 1 == options.max_new_tokens || session->position() >= session->context()) break;
      BL_TRY(session->DecodeStep(id));
    }
    EvalPrediction pred;
    pred.kind = item.kind;
    pred.question = item.question;
    pred.answer = item.answer;
    pred.prediction = tok.Decode(generated);
    pred.correct = NormalizeAnswer(pred.prediction) == NormalizeAnswer(item.answer);

    EvalStats s;
    s.count = 1;
    s.correct = pred.correct ? 1 : 0;
    // Teacher-forced scores: the logits at position p predict full[p + 1].
    BL_ASSIGN_OR_RETURN(std::vector<float> logits, session->EvaluateLogits(full, embeds));
    std::vector<float> ref_logits;
    if (ref_session) {
      const float* ref_embeds = nullptr;
      if (image) {
        BL_ASSIGN_OR_RETURN(ref_embeds, ref_session->EncodeImage(*image, &timings));
      }
      BL_ASSIGN_OR_RETURN(ref_logits, ref_session->EvaluateLogits(full, ref_embeds));
    }
    const size_t first = prompt.size() - 1;
    for (size_t j = 0; j < targets.size(); ++j) {
      const float* row = logits.data() + (first + j) * vocab;
      s.nll_sum += TokenNll(row, vocab, targets[j]);
      ++s.answer_tokens;
      if (ref_session) {
        const float* ref_row = ref_logits.data() + (first + j) * vocab;
        s.kl_sum += KlDivergence(ref_row, row, vocab);
        s.agree += Argmax(ref_row, vocab) == Argmax(row, vocab) ? 1 : 0;
        ++s.compared;
      }
    }
    report.kinds[item.kind].Add(s);
    report.all.Add(s);
    if (item.kind != kCaptionKind) report.answers.Add(s);
    report.predictions.push_back(std::move(pred));
    ++done;
    report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (options.on_progress) options.on_progress(done, static_cast<int64_t>(items.size()), report);
  }
  return report;
}

}  // namespace bitlens
