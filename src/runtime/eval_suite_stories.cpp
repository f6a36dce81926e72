// runtime/eval_suite_stories: the stories260K table. The llama2.c checkpoint
// is converted to an HF directory, each fixed prompt is continued greedily by
// the full-precision model, and every quantized model is scored on those exact
// token sequences: KL(full precision || model) and top-1 agreement of the
// next-token distribution at every position.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <memory>

#include <nlohmann/json.hpp>

#include "formats/llama2c.h"
#include "model/model.h"
#include "runtime/eval_metrics.h"
#include "runtime/eval_suite_steps.h"
#include "runtime/session.h"

namespace bitlens::suite {
namespace fs = std::filesystem;

namespace {

// One prompt with the full-precision continuation and its logits.
struct StoriesSequence {
  std::vector<int32_t> ids;  // prompt + greedy continuation (a final EOS dropped)
  std::vector<float> logits; // [ids, vocab] of the full-precision model
};

int64_t ArgMax(const float* row, int64_t n) {
  int64_t best = 0;
  for (int64_t i = 1; i < n; ++i) {
    if (row[i] > row[best]) best = i;
  }
  return best;
}

Result<SuiteMetrics> Compare(const Model& model, const std::vector<StoriesSequence>& seqs) {
  SessionOptions so;
  BL_ASSIGN_OR_RETURN(std::unique_ptr<Session> session, Session::Create(model, so));
  const int64_t vocab = model.config.text.vocab_size;
  double kl_sum = 0;
  int64_t agree = 0, compared = 0;
  for (const StoriesSequence& s : seqs) {
    BL_ASSIGN_OR_RETURN(std::vector<float> logits, session->EvaluateLogits(s.ids));
    if (logits.size() != s.logits.size()) {
      return Internal(model.dir + ": " + std::to_string(logits.size()) + " logits for a sequence whose reference has " +
                      std::to_string(s.logits.size()));
    }
    for (size_t p = 0; p < s.ids.size(); ++p) {
      const float* ref = s.logits.data() + p * vocab;
      const float* got = logits.data() + p * vocab;
      kl_sum += KlDivergence(ref, got, vocab);
      agree += ArgMax(ref, vocab) == ArgMax(got, vocab) ? 1 : 0;
      ++compared;
    }
  }
  SuiteMetrics m;
  m.accuracy = std::nan("");
  m.caption_perplexity = std::nan("");
  m.kl = kl_sum / compared;
  m.top1 = static_cast<double>(agree) / compared;
  m.compared = compared;
  return m;
}

std::string CompareCommand(const std::string& model) {
  return "# next-token KL and top-1 agreement of " + model + " against $WORK/stories-fp on the fixed prompts";
}

}  // namespace

const std::vector<std::string>& StoriesPrompts() {
  static const std::vector<std::string> prompts = {
      "Once upon a time",
      "One day, a little girl named Lily",
      "Tom had a big red ball.",
      "The sun was shining and the birds were singing.",
      "There was a small dog who",
      "Mom said, \"Let's go to the park!\"",
      "Ben and Sue found a box in the garden.",
      "The cat was sad because",
  };
  return prompts;
}

Result<SuiteTable> RunStoriesTable(const EvalSuiteOptions& o, const std::string& work, const Progress& progress) {
  SuiteTable table;
  table.title = "stories260K";
  table.model = o.stories_dir;
  table.vlm = false;
  const std::string source = work + "/stories-fp";
  std::error_code ec;
  fs::remove_all(source, ec);
  progress("stories260K: converting the llama2.c checkpoint into " + source);
  BL_TRY(ConvertLlama2c(o.stories_dir + "/stories260K.bin", o.stories_dir + "/tok512.bin", source));
  BL_ASSIGN_OR_RETURN(std::unique_ptr<Model> fp, LoadModel(source));

  // Full-precision greedy continuations: the sequences every row is scored on
  // and, with their prompts, the calibration data of gptq.
  const int64_t new_tokens = o.quick ? 8 : 64;
  table.continuation_tokens = new_tokens;
  std::vector<StoriesSequence> seqs;
  Calibration calib;
  {
    SessionOptions so;
    BL_ASSIGN_OR_RETURN(std::unique_ptr<Session> session, Session::Create(*fp, so));
    GenerateOptions go;
    go.max_tokens = new_tokens;
    int64_t line = 0;
    for (const std::string& prompt : StoriesPrompts()) {
      BL_ASSIGN_OR_RETURN(std::vector<int32_t> ids, session->TokenizePrompt(prompt, false, ChatMode::kOff));
      BL_ASSIGN_OR_RETURN(GenerateResult gen, session->Generate(ids, nullptr, go));
      StoriesSequence s;
      s.ids = ids;
      s.ids.insert(s.ids.end(), gen.ids.begin(), gen.ids.end());
      if (gen.finish_reason == "eos" && !gen.ids.empty()) s.ids.pop_back();
      BL_ASSIGN_OR_RETURN(s.logits, session->EvaluateLogits(s.ids));
      seqs.push_back(std::move(s));
      quant::CalibSample c;
      c.prompt = prompt;
      c.answer = gen.text;
      c.line = ++line;
      calib.samples.push_back(std::move(c));
    }
  }
  // The calibration file the commands in the document name.
  {
    std::string jsonl;
    for (const quant::CalibSample& c : calib.samples) {
      nlohmann::ordered_json j;
      j["prompt"] = c.prompt;
      j["answer"] = *c.answer;
      jsonl += j.dump() + "\n";
    }
    BL_TRY(WriteFileAtomically(work + "/stories-calib.jsonl", jsonl));
    calib.path = "$WORK/stories-calib.jsonl";
    calib.file = work + "/stories-calib.jsonl";
  }
  table.prompts = StoriesPrompts();
  table.eval_items = static_cast<int64_t>(seqs.size());
  table.calib_samples = static_cast<int64_t>(calib.samples.size());
  table.calib_source = "the " + std::to_string(calib.samples.size()) +
                       " fixed prompts with their full-precision continuations";

  const size_t total = 1 + StoriesSuiteMethods().size() * StoriesSuiteConfigs().size();
  size_t done = 0;
  auto step = [&](const std::string& what) {
    progress("stories260K [" + std::to_string(++done) + "/" + std::to_string(total) + "] " + what);
  };
  step("fp: scoring " + std::to_string(seqs.size()) + " prompts");
  SuiteRow fp_row;
  fp_row.method = "fp";
  fp_row.checkpoint = source;
  BL_ASSIGN_OR_RETURN(fp_row.size, MeasureCheckpoint(source));
  BL_ASSIGN_OR_RETURN(fp_row.metrics, Compare(*fp, seqs));
  fp_row.commands.push_back("bitlens convert --from llama2c " + o.stories_dir + "/stories260K.bin --tokenizer " +
                            o.stories_dir + "/tok512.bin -o $WORK/stories-fp");
  table.rows.push_back(std::move(fp_row));

  for (const std::string& method : StoriesSuiteMethods()) {
    for (const std::string& config_name : StoriesSuiteConfigs()) {
      const SuiteConfig* config = FindSuiteConfig(config_name);
      if (config == nullptr) return Internal("no suite configuration " + config_name);
      const std::string name = "stories-" + method + "-" + config_name;
      const std::string out = work + "/" + name;
      step(method + " " + config_name + ": quantizing into " + out);
      SuiteRow row;
      row.method = method;
      row.config = config_name;
      row.checkpoint = out;
      BL_ASSIGN_OR_RETURN(row.method_seconds, QuantizeWith(method, config->plan, source, out, calib));
      BL_ASSIGN_OR_RETURN(row.size, MeasureCheckpoint(out));
      BL_ASSIGN_OR_RETURN(std::unique_ptr<Model> q, LoadModel(out));
      BL_ASSIGN_OR_RETURN(row.metrics, Compare(*q, seqs));
      row.commands.push_back(QuantizeCommand(method, config->plan, "$WORK/stories-fp", "$WORK/" + name,
                                             method == "gptq" ? calib.path : ""));
      row.commands.push_back(CompareCommand("$WORK/" + name));
      char line[200];
      std::snprintf(line, sizeof(line), "stories260K %s %s: %.4f MB, %.3f bpw, KL %.5f, top-1 %.4f, %.2f s",
                    method.c_str(), config_name.c_str(), row.size.megabytes(), row.size.bpw(), row.metrics.kl,
                    row.metrics.top1, row.method_seconds);
      progress(line);
      table.rows.push_back(std::move(row));
    }
  }
  return table;
}

}  // namespace bitlens::suite
