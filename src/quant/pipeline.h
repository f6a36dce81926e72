// quant/pipeline: turns a full-precision checkpoint into a quantized one,
// tensor by tensor in bounded memory (one block of rows in f32 at a time),
// into OUT.tmp renamed to OUT only when complete. The packing step is a
// TensorQuantizer, so calibrated methods plug in without touching the I/O.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "base/status.h"
#include "quant/formats.h"
#include "quant/pipeline_plan.h"

namespace bitlens::quant {

// One block of rows of one weight handed to a TensorQuantizer.
struct TensorJob {
  const PlannedTensor* tensor = nullptr;  // name, component, layer, format, [n, k]
  int64_t row0 = 0;                       // first row of this block
  int64_t rows = 0;
  const float* w = nullptr;               // [rows, k] f32, this block of the source weight
};

// Packs weights. The pipeline calls, in plan order (vision layers, projector,
// embeddings, decoder layers 0..L-1, lm head):
//   BeginUnit(unit) -> Quantize(job) for each block of each packed weight of
//   the unit -> EndUnit(unit).
// Units never interleave, so a calibrated quantizer can run its calibration
// forward up to the layer in BeginUnit and keep what it packed for the next.
class TensorQuantizer {
 public:
  virtual ~TensorQuantizer() = default;
  // Recorded in config.json and the report ("rtn", "gptq", ...).
  virtual std::string method() const = 0;
  virtual Status BeginUnit(const QuantPlan& plan, const PlanUnit& unit) { return Status::Ok(); }
  virtual Status EndUnit(const QuantPlan& plan, const PlanUnit& unit) { return Status::Ok(); }
  // True to receive the whole weight in one job (e.g. an activation-aware
  // scale search over all rows); otherwise blocks of rows (~16 MiB of f32).
  virtual bool WholeTensor(const PlannedTensor& tensor) const { return false; }
  // Writes job.rows packed rows (RowBytes(*format, k) bytes each) to out.
  virtual Status Quantize(const TensorJob& job, std::span<uint8_t> out) = 0;
  // After the last block of a tensor: its layer-output relative error, when
  // the quantizer measured one on calibration data (shown in the report).
  virtual std::optional<double> OutputError(const PlannedTensor& tensor) { return std::nullopt; }
  // Values replacing the source tensor, asked once per tensor after its
  // unit's BeginUnit: f32, NumElements(tensor.shape) of them (e.g. a norm
  // weight AWQ rescaled, or a weight to pack from rescaled values). Written in
  // the tensor's output dtype or packed as usual; null keeps the source.
  // Must stay valid until the tensor is written.
  virtual const std::vector<float>* Replacement(const PlannedTensor& tensor) { return nullptr; }
};

// Round to nearest per group (min-max or MSE clip search), rows split over the
// thread pool.
std::unique_ptr<TensorQuantizer> MakeRtnQuantizer(RangeSearch search = RangeSearch::kMseClip);
// Calibration-free methods through quant::QuantizeLinear: "rtn" (MSE clip
// grid) or "hqq". Methods that need calibration data (gptq, awq+gptq) are an
// InvalidArgument naming --calib.
Result<std::unique_ptr<TensorQuantizer>> MakeCalibrationFreeQuantizer(const std::string& method);

struct QuantProgress {
  int64_t params_done = 0;
  int64_t params_total = 0;
  size_t tensor = 0;     // index of the tensor being written
  size_t tensors = 0;
  std::string name;      // its name
};

struct PipelineOptions {
  std::string model_dir;
  std::string output_dir;
  PlanOptions plan;
  bool overwrite = false;   // replace an existing output_dir
  int threads = 0;          // 0: keep the pool as it is
  TensorQuantizer* quantizer = nullptr;  // null: RTN with the MSE clip search
  std::map<std::string, double> sensitivity;  // per tensor name, shown in the report when given
  const std::atomic<bool>* cancel = nullptr;  // checked between blocks; nothing is left behind
  std::function<void(const QuantProgress&)> on_progress;
  std::string command_line;  // recorded in the report
};

struct TensorResult {
  std::string name;
  Component component = Component::kDecoder;
  int layer = -1;
  std::string format;        // table name, or the stored dtype ("F32", "BF16") when not converted
  bool packed = false;
  int64_t params = 0;
  uint64_t bytes = 0;        // output bytes
  double bpw = 0;            // 8 · bytes / params
  double rel_error = std::numeric_limits<double>::quiet_NaN();  // ‖W − Ŵ‖ / ‖W‖ (weights only)
  std::optional<double> output_rel_error;  // from a calibrated quantizer
  std::optional<double> sensitivity;
  double seconds = 0;
};

struct PipelineResult {
  std::string output_dir;
  std::string method;
  std::string source_dir;
  std::string command_line;
  std::vector<std::pair<std::string, std::string>> component_formats;
  bool tied_lm_head = false;
  std::vector<TensorResult> tensors;
  std::vector<std::string> files;  // relative to output_dir
  int64_t total_params = 0;
  uint64_t source_bytes = 0;      // tensor bytes
  uint64_t output_bytes = 0;      // tensor bytes
  uint64_t bytes_written = 0;     // every file, headers and JSON included
  double weight_bpw = 0;          // over the converted weights
  double model_bpw = 0;           // over every parameter
  double seconds = 0;
  double peak_rss_mib = 0;        // getrusage at the end of the run
  int threads = 0;
};

// Plans, quantizes, writes OUT.tmp (safetensors shards + index, config.json
// with quantization_config, the source's tokenizer/processor files,
// report.json, report.html) and renames it to OUT.
Result<PipelineResult> QuantizeCheckpoint(const PipelineOptions& options);

// Peak resident set of this process so far, MiB (getrusage).
double PeakRssMiB();

}  // namespace bitlens::quant
