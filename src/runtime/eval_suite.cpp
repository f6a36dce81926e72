// runtime/eval_suite: the results table of a vision-language model — every
// method at every configuration quantized into the work directory, measured
// from the written files and evaluated against the full-precision model —
// then the stories260K table; all rows or an error, never a partial table.
#include "runtime/eval_suite.h"

#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cmath>
#include <filesystem>
#include <map>
#include <memory>

#include "model/model.h"
#include "quant/checkpoint.h"
#include "runtime/eval.h"
#include "runtime/eval_suite_steps.h"

namespace bitlens {
namespace fs = std::filesystem;

namespace {

quant::PlanOptions Plan(const std::string& vision, const std::string& projector, const std::string& decoder) {
  quant::PlanOptions p;
  p.vision = vision;
  p.projector = projector;
  p.decoder = decoder;
  p.embed = "w4g32";
  p.lm_head = "w4g32";
  return p;
}

// The work directory: the caller's (kept), or a fresh temporary one removed
// when the suite ends, whether it succeeded or not.
class WorkDir {
 public:
  static Result<std::unique_ptr<WorkDir>> Create(const std::string& given) {
    std::error_code ec;
    if (!given.empty()) {
      fs::create_directories(given, ec);
      if (ec) return IoError(given + ": cannot create the work directory (" + ec.message() + ")");
      return std::unique_ptr<WorkDir>(new WorkDir(given, false));
    }
    std::string pattern = (fs::temp_directory_path(ec) / "bitlens-eval-suite-XXXXXX").string();
    if (ec || mkdtemp(pattern.data()) == nullptr) {
      return IoError("cannot create a temporary work directory under " + fs::temp_directory_path(ec).string());
    }
    return std::unique_ptr<WorkDir>(new WorkDir(pattern, true));
  }
  ~WorkDir() {
    std::error_code ec;
    if (temporary_) fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  WorkDir(std::string path, bool temporary) : path_(std::move(path)), temporary_(temporary) {}
  std::string path_;
  bool temporary_;
};

SuiteMetrics MetricsOf(const EvalReport& r) {
  SuiteMetrics m;
  m.accuracy = r.answers.count > 0 ? r.answers.accuracy() : std::nan("");
  for (const auto& [kind, stats] : r.kinds) m.kind_accuracy[kind] = stats.accuracy();
  m.caption_perplexity = r.caption_perplexity();
  m.kl = r.all.kl();
  m.top1 = r.all.top1_agreement();
  m.compared = r.all.compared;
  return m;
}

// Kinds present in the items, in QuestionKind order.
std::vector<std::string> KindsOf(const std::vector<EvalItem>& items) {
  std::vector<std::string> kinds;
  for (int k = 0; k < train::kNumQuestionKinds; ++k) {
    const std::string name(train::QuestionKindName(static_cast<train::QuestionKind>(k)));
    if (std::any_of(items.begin(), items.end(), [&](const EvalItem& i) { return i.kind == name; })) {
      kinds.push_back(name);
    }
  }
  return kinds;
}

std::string CatalogFraction(const train::DataOptions& d) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%g", d.catalog_fraction);
  return buf;
}

std::string EvalCommand(const std::string& model, const std::string& reference, const EvalSuiteOptions& o,
                        int64_t count) {
  return "bitlens eval --model " + model + " --reference " + reference + " --split test --count " +
         std::to_string(count) + " --seed " + std::to_string(o.data.seed) + " --image-size " +
         std::to_string(o.data.image_size) + " --catalog-fraction " + CatalogFraction(o.data) + " --max-new-tokens " +
         std::to_string(o.max_new_tokens);
}

Result<suite::Calibration> PrepareCalibration(const EvalSuiteOptions& o, const std::string& work, SuiteTable* table) {
  suite::Calibration calib;
  if (!o.calib_path.empty()) {
    BL_ASSIGN_OR_RETURN(calib.samples, quant::ReadCalibJsonl(o.calib_path));
    calib.path = o.calib_path;
    calib.file = o.calib_path;
    table->calib_source = o.calib_path;
  } else {
    const int64_t n = o.synthetic_calib > 0 ? o.synthetic_calib : (o.quick ? 4 : 128);
    const std::string dir = work + "/calib";
    BL_TRY(train::WriteSplit(o.data, train::Split::kTrain, n, dir));
    BL_ASSIGN_OR_RETURN(calib.samples, quant::ReadCalibJsonl(dir + "/train.jsonl"));
    calib.path = "$WORK/calib/train.jsonl";
    calib.file = dir + "/train.jsonl";
    table->calib_source = std::to_string(n) + " synthetic train samples (bitlens data, seed " +
                          std::to_string(o.data.seed) + ", " + std::to_string(o.data.image_size) +
                          " px, catalogue share " + CatalogFraction(o.data) + ")";
  }
  table->calib_samples = static_cast<int64_t>(calib.samples.size());
  return calib;
}

Status RunVlmTable(const EvalSuiteOptions& o, const std::string& work, const suite::Progress& progress,
                   SuiteTable* table) {
  table->title = "Reference VLM";
  table->model = o.model_dir;
  table->vlm = true;
  const int64_t count = o.eval_count > 0 ? o.eval_count : (o.quick ? 8 : 1000);
  BL_ASSIGN_OR_RETURN(std::vector<EvalItem> items, SyntheticEvalItems(o.data, train::Split::kTest, count));
  table->eval_items = static_cast<int64_t>(items.size());
  table->kinds = KindsOf(items);
  BL_ASSIGN_OR_RETURN(suite::Calibration calib, PrepareCalibration(o, work, table));

  progress("loading the full-precision model " + o.model_dir);
  BL_ASSIGN_OR_RETURN(std::unique_ptr<Model> fp, LoadModel(o.model_dir));
  if (!fp->config.is_vlm()) {
    return InvalidArgument(o.model_dir + ": eval-suite --model needs a vision-language model (LLaVA layout)");
  }
  if (!fp->quantization.empty()) {
    return InvalidArgument(o.model_dir + ": eval-suite --model needs the full-precision checkpoint, not a quantized one");
  }
  EvalOptions eo;
  eo.max_new_tokens = o.max_new_tokens;

  const std::vector<std::string>& methods = VlmSuiteMethods();
  const size_t total = 1 + methods.size() * SuiteConfigs().size();
  const suite::QatSettings qat = suite::ResolveQatSettings(o);
  std::map<std::string, double> gptq_seconds;  // per configuration: QAT starts from that checkpoint
  size_t done = 0;
  auto step = [&](const std::string& what) {
    progress("[" + std::to_string(++done) + "/" + std::to_string(total) + "] " + what);
  };

  step("fp: evaluating " + std::to_string(items.size()) + " test samples");
  SuiteRow fp_row;
  fp_row.method = "fp";
  fp_row.checkpoint = o.model_dir;
  BL_ASSIGN_OR_RETURN(fp_row.size, MeasureCheckpoint(o.model_dir));
  BL_ASSIGN_OR_RETURN(EvalReport fp_report, Evaluate(*fp, fp.get(), items, eo));
  fp_row.metrics = MetricsOf(fp_report);
  fp_row.commands.push_back(EvalCommand(o.model_dir, o.model_dir, o, count));
  char fp_line[160];
  std::snprintf(fp_line, sizeof(fp_line), "fp: %.3f MB, %.3f bpw, accuracy %.4f, KL %.5f, top-1 %.4f",
                fp_row.size.megabytes(), fp_row.size.bpw(), fp_row.metrics.accuracy, fp_row.metrics.kl,
                fp_row.metrics.top1);
  progress(fp_line);
  table->rows.push_back(std::move(fp_row));

  for (const std::string& method : methods) {
    for (const SuiteConfig& config : SuiteConfigs()) {
      const std::string name = "vlm-" + method + "-" + config.name;
      const std::string out = work + "/" + name;
      step(method + " " + config.name + ": quantizing into " + out);
      SuiteRow row;
      row.method = method;
      row.config = config.name;
      row.checkpoint = out;
      if (method == "qat") {
        // QAT starts from the GPTQ checkpoint of the same configuration (a
        // row above), so its time is that GPTQ run's plus the training.
        const std::string init = "vlm-gptq-" + config.name;
        const auto gptq = gptq_seconds.find(config.name);
        if (gptq == gptq_seconds.end()) return Internal("QAT row " + config.name + " before its GPTQ start");
        BL_ASSIGN_OR_RETURN(double seconds, suite::QatWith(config.plan, o.model_dir, work + "/" + init, out, calib, qat, progress));
        row.method_seconds = gptq->second + seconds;
        row.commands.push_back(
            suite::QatCommand(config.plan, o.model_dir, "$WORK/" + init, "$WORK/" + name, calib.path, qat));
      } else {
        BL_ASSIGN_OR_RETURN(row.method_seconds, suite::QuantizeWith(method, config.plan, o.model_dir, out, calib));
        row.commands.push_back(suite::QuantizeCommand(method, config.plan, o.model_dir, "$WORK/" + name,
                                                      method == "gptq" ? calib.path : ""));
        if (method == "gptq") gptq_seconds[config.name] = row.method_seconds;
      }
      BL_ASSIGN_OR_RETURN(row.size, MeasureCheckpoint(out));
      BL_ASSIGN_OR_RETURN(std::unique_ptr<Model> q, LoadModel(out));
      BL_ASSIGN_OR_RETURN(EvalReport report, Evaluate(*q, fp.get(), items, eo));
      row.metrics = MetricsOf(report);
      row.commands.push_back(EvalCommand("$WORK/" + name, o.model_dir, o, count));
      char line[200];
      std::snprintf(line, sizeof(line), "%s %s: %.3f MB, %.3f bpw, accuracy %.4f, KL %.5f, top-1 %.4f, %.1f s",
                    method.c_str(), config.name.c_str(), row.size.megabytes(), row.size.bpw(), row.metrics.accuracy,
                    row.metrics.kl, row.metrics.top1, row.method_seconds);
      progress(line);
      table->rows.push_back(std::move(row));
    }
  }
  return Status::Ok();
}

}  // namespace

const std::vector<SuiteConfig>& SuiteConfigs() {
  static const std::vector<SuiteConfig> configs = {
      {"w2g32", Plan("w2g32", "w2g32", "w2g32")},
      {"w2g64", Plan("w2g64", "w2g64", "w2g64")},
      {"mixed", Plan("w4g32", "w8", "w2g32")},
      {"t1", Plan("t1", "t1", "t1")},
  };
  return configs;
}

std::string DescribeConfig(const SuiteConfig& c) {
  return "vision " + c.plan.vision + ", projector " + c.plan.projector + ", decoder " + c.plan.decoder + ", embed " +
         c.plan.embed + ", lm-head " + c.plan.lm_head;
}

const std::vector<std::string>& VlmSuiteMethods() {
  static const std::vector<std::string> m = {"rtn", "hqq", "gptq", "qat"};
  return m;
}
const std::vector<std::string>& StoriesSuiteMethods() {
  static const std::vector<std::string> m = {"rtn", "hqq", "gptq"};
  return m;
}
const std::vector<std::string>& StoriesSuiteConfigs() {
  static const std::vector<std::string> c = {"w2g32", "w2g64", "t1"};
  return c;
}

namespace suite {
const SuiteConfig* FindSuiteConfig(const std::string& name) {
  for (const SuiteConfig& c : SuiteConfigs()) {
    if (c.name == name) return &c;
  }
  return nullptr;
}
}  // namespace suite

Result<CheckpointSize> MeasureCheckpoint(const std::string& dir) {
  BL_ASSIGN_OR_RETURN(Checkpoint checkpoint, Checkpoint::Open(dir));
  BL_ASSIGN_OR_RETURN(quant::QuantizationConfig quant, quant::LoadQuantizationConfig(dir));
  CheckpointSize size;
  for (const auto& file : checkpoint.files()) {
    std::error_code ec;
    const uintmax_t bytes = fs::file_size(file->path(), ec);
    if (ec) return IoError(file->path() + ": cannot read its size (" + ec.message() + ")");
    size.file_bytes += bytes;
    for (const TensorEntry& e : file->entries()) {
      size.tensor_bytes += e.end - e.begin;
      if (const quant::QuantizedTensor* q = quant.Find(e.name)) {
        size.params += q->n * q->k;
      } else {
        size.params += NumElements(e.shape);
      }
    }
  }
  if (size.params == 0) return InvalidArgument(dir + ": the checkpoint holds no parameters");
  return size;
}

Result<EvalSuiteReport> RunEvalSuite(const EvalSuiteOptions& o) {
  const auto start = std::chrono::steady_clock::now();
  if (o.model_dir.empty()) return InvalidArgument("eval-suite needs --model DIR");
  if (!o.calib_path.empty() && o.synthetic_calib > 0) {
    return InvalidArgument("--calib and --synthetic both give calibration data; pass one");
  }
  if (o.synthetic_calib < 0) return InvalidArgument("--synthetic must be positive");
  if (o.eval_count < 0) return InvalidArgument("--count must be positive");
  if (o.qat_steps < 0) return InvalidArgument("--qat-steps must be positive");
  if (!o.stories_dir.empty()) {
    for (const char* f : {"stories260K.bin", "tok512.bin"}) {
      if (!fs::exists(fs::path(o.stories_dir) / f)) {
        return NotFound(o.stories_dir + ": no " + f + " (--stories needs the llama2.c stories260K checkpoint and "
                        "its tokenizer)");
      }
    }
  }
  const suite::Progress progress = [&](const std::string& line) {
    if (o.on_progress) o.on_progress(line);
  };
  BL_ASSIGN_OR_RETURN(std::unique_ptr<WorkDir> work, WorkDir::Create(o.work_dir));
  progress("work directory " + work->path() + (o.work_dir.empty() ? " (removed at the end)" : ""));

  EvalSuiteReport report;
  report.machine = bench::DescribeMachine();
  report.command_line = o.command_line;
  report.quick = o.quick;
  report.threads = o.threads;
  const suite::QatSettings qat = suite::ResolveQatSettings(o);
  report.qat_steps = qat.steps;
  report.qat_batch = qat.batch;
  report.qat_synthetic = qat.synthetic;
  report.data = o.data;
  BL_TRY(RunVlmTable(o, work->path(), progress, &report.vlm));
  if (!o.stories_dir.empty()) {
    BL_ASSIGN_OR_RETURN(report.stories, suite::RunStoriesTable(o, work->path(), progress));
    report.has_stories = true;
  }
  report.seconds = suite::SecondsSince(start);
  return report;
}

}  // namespace bitlens
