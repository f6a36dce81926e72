// quant/pipeline: the streaming quantize-and-write loop. Each weight is read
// from the mapping one block of rows at a time, converted to f32, packed,
// measured (weight-space error) and appended to its shard; the source pages
// are dropped after use so the resident set stays near one block.
#include "quant/pipeline.h"

#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "base/f16.h"
#include "base/log.h"
#include "base/staging_dir.h"
#include "base/thread_pool.h"
#include "formats/safetensors.h"
#include "quant/checkpoint.h"
#include "quant/quantize_layer.h"
#include "quant/report.h"

namespace bitlens::quant {
namespace {

namespace fs = std::filesystem;
using ordered_json = nlohmann::ordered_json;

constexpr size_t kBlockFloats = size_t{4} << 20;  // 16 MiB of f32 per block
constexpr size_t kCopyBytes = size_t{8} << 20;

class RtnQuantizer final : public TensorQuantizer {
 public:
  explicit RtnQuantizer(RangeSearch search) : search_(search) {}
  std::string method() const override { return search_ == RangeSearch::kMseClip ? "rtn" : "rtn-minmax"; }
  Status Quantize(const TensorJob& job, std::span<uint8_t> out) override {
    const FormatInfo& f = *job.tensor->format;
    const int64_t k = job.tensor->k;
    const size_t rb = RowBytes(f, k);
    if (out.size() != rb * static_cast<size_t>(job.rows)) return Internal("rtn: output block size mismatch");
    const float* w = job.w;
    uint8_t* o = out.data();
    const RangeSearch search = search_;
    ParallelFor(static_cast<size_t>(job.rows), 1, [&](size_t b, size_t e, size_t) {
      for (size_t r = b; r < e; ++r) f.quantize_row_ref(f, w + r * k, k, search, o + r * rb);
    });
    return Status::Ok();
  }

 private:
  RangeSearch search_;
};

// RTN / HQQ through the algorithms' entry point (rows are independent, so
// blocks of rows give the same bytes as the whole tensor).
class LinearQuantizer final : public TensorQuantizer {
 public:
  explicit LinearQuantizer(QuantMethod method) : method_(method) {}
  std::string method() const override { return QuantMethodName(method_); }
  Status Quantize(const TensorJob& job, std::span<uint8_t> out) override {
    QuantizeOptions options;
    options.grid = method_ == QuantMethod::kHqq ? GridMethod::kHqq : GridMethod::kMseClip;
    return QuantizeLinear(method_, *job.tensor->format, job.w, job.rows, job.tensor->k, nullptr, options, out,
                          nullptr);
  }

 private:
  QuantMethod method_;
};

// Lets the kernel drop the source pages already consumed (file-backed, so
// they are re-read from disk if touched again); keeps peak RSS near a block.
void DropPages(const void* p, size_t n) {
  static const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  uintptr_t b = reinterpret_cast<uintptr_t>(p);
  uintptr_t e = b + n;
  b = b / page * page;
  e = (e + page - 1) / page * page;
  if (e > b) madvise(reinterpret_cast<void*>(b), e - b, MADV_DONTNEED);
}

void ToF32(DType d, const void* src, size_t count, float* out) {
  if (d == DType::kF32) std::memcpy(out, src, count * sizeof(float));
  else if (d == DType::kF16) F16ToF32(static_cast<const uint16_t*>(src), out, count);
  else Bf16ToF32(static_cast<const uint16_t*>(src), out, count);
}

bool Cancelled(const PipelineOptions& o) { return o.cancel != nullptr && o.cancel->load(std::memory_order_relaxed); }

class Writer {
 public:
  Writer(const PipelineOptions& options, const QuantPlan& plan, const Checkpoint& source, TensorQuantizer& quantizer,
         const fs::path& dir)
      : options_(options), plan_(plan), source_(source), quantizer_(quantizer), dir_(dir) {}

  Status Run(std::vector<TensorResult>* results) {
    size_t unit = 0;
    for (size_t s = 0; s < plan_.shard_files.size(); ++s) {
      SafetensorsWriter w((dir_ / plan_.shard_files[s]).string());
      w.SetMetadata("format", "pt");
      w.SetMetadata("bitlens.quantize", "method=" + quantizer_.method());
      std::vector<size_t> members;
      for (size_t i = 0; i < plan_.tensors.size(); ++i) {
        if (plan_.tensors[i].shard == s) {
          members.push_back(i);
          w.Declare(plan_.tensors[i].name, plan_.tensors[i].out_dtype, plan_.tensors[i].out_shape);
        }
      }
      BL_TRY(w.Begin());
      for (size_t i : members) {
        while (unit < plan_.units.size() && plan_.units[unit].first + plan_.units[unit].count <= i) ++unit;
        const PlanUnit& u = plan_.units[unit];
        if (i == u.first) BL_TRY(quantizer_.BeginUnit(plan_, u));
        TensorResult r;
        BL_TRY(WriteTensor(plan_.tensors[i], i, w, &r));
        results->push_back(std::move(r));
        if (i + 1 == u.first + u.count) BL_TRY(quantizer_.EndUnit(plan_, u));
      }
      BL_TRY(w.Finish());
    }
    return Status::Ok();
  }

 private:
  // `extra`: parameters of the current tensor already done (progress inside big tensors).
  void Progress(size_t index, const std::string& name, int64_t extra = 0) {
    if (!options_.on_progress) return;
    options_.on_progress({params_done_ + extra, plan_.total_params, index, plan_.tensors.size(), name});
  }

  Status WriteTensor(const PlannedTensor& t, size_t index, SafetensorsWriter& w, TensorResult* r) {
    const auto start = std::chrono::steady_clock::now();
    r->name = t.name;
    r->component = t.component;
    r->layer = t.layer;
    r->params = NumElements(t.shape);
    r->bytes = t.out_bytes;
    r->packed = t.packed;
    r->format = t.format != nullptr ? t.format->name : std::string(DTypeName(t.out_dtype));
    r->bpw = r->params > 0 ? 8.0 * static_cast<double>(t.out_bytes) / static_cast<double>(r->params) : 0;
    if (auto it = options_.sensitivity.find(t.name); it != options_.sensitivity.end()) r->sensitivity = it->second;
    Progress(index, t.name);
    BL_ASSIGN_OR_RETURN(Tensor src, source_.Get(t.name));
    const std::vector<float>* repl = quantizer_.Replacement(t);
    if (repl != nullptr && repl->size() != static_cast<size_t>(r->params)) {
      return Internal(quantizer_.method() + ": replacement for '" + t.name + "' has " +
                      std::to_string(repl->size()) + " values, the tensor " + std::to_string(r->params));
    }
    if (t.format == nullptr && repl == nullptr) {
      BL_TRY(Copy(src, w));
    } else if (t.format == nullptr) {
      BL_TRY(WriteReplacement(t, *repl, w));
    } else {
      const void* data = repl != nullptr ? static_cast<const void*>(repl->data()) : src.data();
      BL_TRY(Convert(t, index, data, repl != nullptr ? DType::kF32 : t.src_dtype, /*mapped=*/repl == nullptr, w, r));
      if (t.packed) r->output_rel_error = quantizer_.OutputError(t);
    }
    params_done_ += r->params;
    r->seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return Status::Ok();
  }

  Status Copy(const Tensor& src, SafetensorsWriter& w) {
    const uint8_t* p = static_cast<const uint8_t*>(src.data());
    const size_t n = src.nbytes();
    for (size_t off = 0; off < n; off += kCopyBytes) {
      if (Cancelled(options_)) return bitlens::Cancelled("interrupted");
      const size_t len = std::min(kCopyBytes, n - off);
      BL_TRY(w.WritePart(p + off, len));
      DropPages(p + off, len);
    }
    if (n == 0) BL_TRY(w.WritePart(p, 0));
    return Status::Ok();
  }

  // A kept tensor whose values the quantizer replaced, in its stored dtype.
  Status WriteReplacement(const PlannedTensor& t, const std::vector<float>& v, SafetensorsWriter& w) {
    if (t.out_dtype == DType::kF32) return w.WritePart(v.data(), v.size() * sizeof(float));
    if (t.out_dtype != DType::kF16 && t.out_dtype != DType::kBF16) {
      return InvalidArgument("'" + t.name + "' is " + std::string(DTypeName(t.out_dtype)) + " and cannot take float values");
    }
    std::vector<uint16_t> h(v.size());
    for (size_t i = 0; i < v.size(); ++i) h[i] = t.out_dtype == DType::kBF16 ? F32ToBf16(v[i]) : F32ToF16(v[i]);
    return w.WritePart(h.data(), h.size() * sizeof(uint16_t));
  }

  // `mapped`: src_data is the file mapping (its pages are dropped after use).
  Status Convert(const PlannedTensor& t, size_t index, const void* src_data, DType src_dtype, bool mapped,
                 SafetensorsWriter& w, TensorResult* r) {
    const int64_t n = t.n, k = t.k;
    const FormatInfo& f = *t.format;
    const size_t esize = DTypeSize(src_dtype);
    int64_t block = std::max<int64_t>(1, static_cast<int64_t>(kBlockFloats / static_cast<size_t>(k)));
    if (t.packed && quantizer_.WholeTensor(t)) block = n;
    block = std::min(block, n);
    const size_t out_row = t.packed ? RowBytes(f, k) : static_cast<size_t>(k) * 2;
    wf_.resize(static_cast<size_t>(block * k));
    deq_.resize(static_cast<size_t>(block * k));
    out_.resize(static_cast<size_t>(block) * out_row);
    const size_t threads = std::max<size_t>(1, NumThreads());
    double err2 = 0, ref2 = 0;
    const uint8_t* base = static_cast<const uint8_t*>(src_data);
    for (int64_t row0 = 0; row0 < n; row0 += block) {
      if (Cancelled(options_)) return bitlens::Cancelled("interrupted");
      const int64_t rows = std::min(block, n - row0);
      const size_t count = static_cast<size_t>(rows * k);
      const uint8_t* in = base + static_cast<size_t>(row0 * k) * esize;
      ToF32(src_dtype, in, count, wf_.data());
      // Scales and values are stored in 16-bit floats: larger weights would overflow.
      float max_abs = 0;
      for (size_t i = 0; i < count; ++i) max_abs = std::max(max_abs, std::fabs(wf_[i]));
      if (!(max_abs <= f.max_abs_weight)) {
        return InvalidArgument("'" + t.name + "' holds a weight of magnitude " + std::to_string(max_abs) + " that " +
                               f.name + " cannot store (limit " + std::to_string(f.max_abs_weight) + ")");
      }
      const size_t out_bytes = static_cast<size_t>(rows) * out_row;
      if (t.packed) {
        TensorJob job{&t, row0, rows, wf_.data()};
        BL_TRY(quantizer_.Quantize(job, std::span<uint8_t>(out_.data(), out_bytes)));
        kernels::WeightView view{DType::kU8, out_.data(), rows, k, &f};
        DequantizeWeightRows(view, 0, rows, deq_.data());
      } else {
        uint16_t* o = reinterpret_cast<uint16_t*>(out_.data());
        const bool bf = t.out_dtype == DType::kBF16;
        for (size_t i = 0; i < count; ++i) {
          o[i] = bf ? F32ToBf16(wf_[i]) : F32ToF16(wf_[i]);
          deq_[i] = bf ? Bf16ToF32(o[i]) : F16ToF32(o[i]);
        }
      }
      // ‖W − Ŵ‖² and ‖W‖², per worker then summed in worker order (deterministic).
      partial_.assign(threads * 2, 0.0);
      const float* a = wf_.data();
      const float* b = deq_.data();
      double* part = partial_.data();
      ParallelFor(static_cast<size_t>(rows), 1, [&](size_t rb, size_t re, size_t worker) {
        double e = 0, s = 0;
        for (size_t i = rb * k; i < re * k; ++i) {
          const double d = static_cast<double>(a[i]) - b[i];
          e += d * d;
          s += static_cast<double>(a[i]) * a[i];
        }
        part[worker * 2] += e;
        part[worker * 2 + 1] += s;
      });
      for (size_t i = 0; i < threads; ++i) {
        err2 += partial_[i * 2];
        ref2 += partial_[i * 2 + 1];
      }
      BL_TRY(w.WritePart(out_.data(), out_bytes));
      if (mapped) DropPages(in, count * esize);
      Progress(index, t.name, (row0 + rows) * k);
    }
    r->rel_error = ref2 > 0 ? std::sqrt(err2 / ref2) : 0.0;
    return Status::Ok();
  }

  const PipelineOptions& options_;
  const QuantPlan& plan_;
  const Checkpoint& source_;
  TensorQuantizer& quantizer_;
  fs::path dir_;
  int64_t params_done_ = 0;
  std::vector<float> wf_, deq_;
  std::vector<uint8_t> out_;
  std::vector<double> partial_;
};

Status WriteText(const fs::path& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary);
  f << text;
  f.close();
  if (!f) return IoError(path.string() + ": cannot write");
  return Status::Ok();
}

Status WriteConfig(const QuantPlan& plan, const TensorQuantizer& quantizer, const PlanOptions& po,
                   const fs::path& dir) {
  ordered_json config = ordered_json::parse(plan.config_json, nullptr, /*allow_exceptions=*/false);
  if (config.is_discarded() || !config.is_object()) return InvalidArgument("config.json: malformed JSON");
  QuantizationConfig qc;
  for (const PlannedTensor& t : plan.tensors) {
    if (t.packed) qc.tensors[t.name] = {t.format, t.n, t.k};
  }
  ordered_json q = ordered_json::object();
  q["quant_method"] = kQuantMethod;
  q["version"] = kQuantConfigVersion;
  q["method"] = quantizer.method();
  ordered_json components = ordered_json::object();
  for (const auto& [c, f] : plan.component_formats) components[c] = f;
  q["components"] = components;
  ordered_json overrides = ordered_json::array();
  for (const auto& [glob, f] : po.overrides) overrides.push_back(glob + "=" + f);
  q["overrides"] = overrides;
  ordered_json tensors = ordered_json::object();
  for (const auto& [name, t] : qc.tensors) tensors[name] = {{"format", t.format->name}, {"shape", {t.n, t.k}}};
  q["tensors"] = tensors;
  config["quantization_config"] = q;
  return WriteText(dir / "config.json", config.dump(2) + "\n");
}

Status WriteIndex(const QuantPlan& plan, const fs::path& dir) {
  ordered_json index;
  index["metadata"] = {{"total_size", plan.output_bytes}};
  ordered_json map = ordered_json::object();
  std::vector<const PlannedTensor*> sorted;
  for (const PlannedTensor& t : plan.tensors) sorted.push_back(&t);
  std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->name < b->name; });
  for (const PlannedTensor* t : sorted) map[t->name] = plan.shard_files[t->shard];
  index["weight_map"] = map;
  return WriteText(dir / "model.safetensors.index.json", index.dump(2) + "\n");
}

// Everything else at the top of the source directory (tokenizer, processor,
// generation config, README) is copied as is.
Status CopySideFiles(const fs::path& src, const fs::path& dst) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(src, ec)) {
    if (!entry.is_regular_file(ec)) continue;
    const std::string name = entry.path().filename().string();
    if (name == "config.json" || name == "model.safetensors.index.json" || name == "report.json" ||
        name == "report.html" || entry.path().extension() == ".safetensors") {
      continue;
    }
    fs::copy_file(entry.path(), dst / name, fs::copy_options::overwrite_existing, ec);
    if (ec) return IoError(entry.path().string() + ": cannot copy (" + ec.message() + ")");
  }
  if (ec) return IoError(src.string() + ": cannot list (" + ec.message() + ")");
  return Status::Ok();
}

}  // namespace

std::unique_ptr<TensorQuantizer> MakeRtnQuantizer(RangeSearch search) {
  return std::make_unique<RtnQuantizer>(search);
}

Result<std::unique_ptr<TensorQuantizer>> MakeCalibrationFreeQuantizer(const std::string& method) {
  if (method == "rtn") return std::unique_ptr<TensorQuantizer>(new LinearQuantizer(QuantMethod::kRtn));
  if (method == "hqq") return std::unique_ptr<TensorQuantizer>(new LinearQuantizer(QuantMethod::kHqq));
  if (method == "gptq" || method.rfind("awq", 0) == 0) {
    return InvalidArgument("--method " + method + " needs calibration data (--calib FILE)");
  }
  return InvalidArgument("--method '" + method + "' is not one of rtn, hqq, gptq, awq+gptq");
}

double PeakRssMiB() {
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss / 1024.0;  // Linux reports KiB
}

Result<PipelineResult> QuantizeCheckpoint(const PipelineOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  if (options.output_dir.empty()) return InvalidArgument("quantize needs an output directory (-o OUT)");
  std::error_code ec;
  if (!fs::is_directory(options.model_dir, ec)) return NotFound(options.model_dir + ": not a model directory");
  fs::path out = fs::path(options.output_dir).lexically_normal();
  if (out.has_parent_path() && out.filename().empty()) out = out.parent_path();  // "OUT/" -> "OUT"
  if (fs::exists(out, ec) && fs::equivalent(out, options.model_dir, ec)) {
    return InvalidArgument(options.output_dir + ": the output directory is the source model");
  }
  if (fs::exists(out, ec) && !options.overwrite) {
    return InvalidArgument(options.output_dir + ": already exists (use --force to replace it)");
  }
  if (options.threads > 0) SetNumThreads(static_cast<size_t>(options.threads));

  BL_ASSIGN_OR_RETURN(Checkpoint source, Checkpoint::Open(options.model_dir));
  BL_ASSIGN_OR_RETURN(QuantPlan plan, PlanQuantization(options.model_dir, source, options.plan));
  std::unique_ptr<TensorQuantizer> rtn;
  TensorQuantizer* quantizer = options.quantizer;
  if (quantizer == nullptr) {
    BL_ASSIGN_OR_RETURN(rtn, MakeCalibrationFreeQuantizer("rtn"));
    quantizer = rtn.get();
  }

  BL_ASSIGN_OR_RETURN(std::unique_ptr<StagingDir> staging, StagingDir::Create(out));
  const fs::path& tmp = staging->path();

  PipelineResult result;
  result.output_dir = out.string();
  result.method = quantizer->method();
  result.source_dir = options.model_dir;
  result.command_line = options.command_line;
  result.component_formats = plan.component_formats;
  result.tied_lm_head = plan.tied_lm_head;
  result.total_params = plan.total_params;
  result.source_bytes = plan.source_bytes;
  result.output_bytes = plan.output_bytes;
  result.threads = static_cast<int>(NumThreads());

  Writer writer(options, plan, source, *quantizer, tmp);
  BL_TRY(writer.Run(&result.tensors));
  if (Cancelled(options)) return bitlens::Cancelled("interrupted");
  BL_TRY(WriteConfig(plan, *quantizer, options.plan, tmp));
  if (plan.shard_files.size() > 1) BL_TRY(WriteIndex(plan, tmp));
  BL_TRY(CopySideFiles(options.model_dir, tmp));

  int64_t weight_params = 0;
  uint64_t weight_bytes = 0;
  for (const PlannedTensor& t : plan.tensors) {
    if (t.weight) {
      weight_params += NumElements(t.shape);
      weight_bytes += t.out_bytes;
    }
  }
  result.weight_bpw = weight_params > 0 ? 8.0 * weight_bytes / weight_params : 0;
  result.model_bpw = plan.total_params > 0 ? 8.0 * plan.output_bytes / plan.total_params : 0;
  for (const auto& entry : fs::directory_iterator(tmp, ec)) {
    result.files.push_back(entry.path().filename().string());
    result.bytes_written += entry.file_size(ec);
  }
  std::sort(result.files.begin(), result.files.end());
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  result.peak_rss_mib = PeakRssMiB();
  BL_TRY(WriteText(tmp / "report.json", ReportJson(result)));
  BL_TRY(WriteText(tmp / "report.html", ReportHtml(result)));
  result.files.push_back("report.html");
  result.files.push_back("report.json");
  if (Cancelled(options)) return bitlens::Cancelled("interrupted");

  BL_TRY(staging->Commit());
  return result;
}

}  // namespace bitlens::quant
