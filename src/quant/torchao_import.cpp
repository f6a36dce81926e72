// quant/torchao_import: torchao QAT checkpoints (IntxUnpackedToInt8Tensor,
// flattened to safetensors) -> bitlens packed weights under the same grids.
// The byte-level description of the input is in the header.
#include "quant/torchao_import.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>

#include <nlohmann/json.hpp>

#include "base/f16.h"
#include "base/mmap_file.h"
#include "base/staging_dir.h"
#include "formats/safetensors.h"
#include "quant/checkpoint.h"
#include "quant/grid.h"

namespace bitlens::quant {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using nlohmann::ordered_json;

constexpr const char* kIntxType = "IntxUnpackedToInt8Tensor";
constexpr float kF16Max = 65504.0f;

std::string Num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

std::string BaseName(const std::string& path) { return fs::path(path).filename().string(); }

// torchao's dequantized value, in the operations of dequantize_affine for
// the model dtype: (q − zp) in that dtype, times the scale, rounded to it.
float TorchaoValue(int q, float zp, float scale, DType compute) {
  const float v = (static_cast<float>(q) - zp) * scale;
  switch (compute) {
    case DType::kBF16:
      return Bf16ToF32(F32ToBf16(v));
    case DType::kF16:
      return F16ToF32(F32ToF16(v));
    default:
      return v;
  }
}

}  // namespace

void TorchaoMappingError::Merge(const TorchaoMappingError& o) {
  groups += o.groups;
  exact_groups += o.exact_groups;
  max_abs = std::max(max_abs, o.max_abs);
  max_rel_scale = std::max(max_rel_scale, o.max_rel_scale);
  max_in_steps = std::max(max_in_steps, o.max_in_steps);
}

Result<const FormatInfo*> TorchaoFormat(int bits, int64_t group_size) {
  const std::string name = "w" + std::to_string(bits) + "g" + std::to_string(group_size);
  const bool known = (bits == 2 && (group_size == 32 || group_size == 64 || group_size == 128)) ||
                     ((bits == 3 || bits == 4) && (group_size == 32 || group_size == 64));
  if (!known) {
    return Unsupported("int" + std::to_string(bits) + " in groups of " + std::to_string(group_size) +
                       " has no bitlens format (supported: int2 g32/g64/g128 -> w2g*, int3 and int4 "
                       "g32/g64 -> w3g*/w4g*)");
  }
  return FindFormat(name);
}

Status PackTorchaoWeight(const TorchaoWeight& w, const FormatInfo& format, uint8_t* out,
                         TorchaoMappingError* error) {
  const int qmin = -(1 << (w.bits - 1)), qmax = (1 << (w.bits - 1)) - 1;
  const int64_t groups = w.k / w.group_size;
  if (format.group_size != w.group_size || QMax(format) != qmax - qmin || w.k % w.group_size != 0) {
    return Internal(w.name + ": format " + format.name + " does not match int" + std::to_string(w.bits) +
                    " in groups of " + std::to_string(w.group_size));
  }
  const size_t row_bytes = RowBytes(format, w.k);
  std::vector<GroupGrid> grids(static_cast<size_t>(groups));
  std::vector<uint8_t> codes(static_cast<size_t>(w.k));
  TorchaoMappingError err;
  for (int64_t r = 0; r < w.n; ++r) {
    const int8_t* q = w.qdata + r * w.k;
    for (int64_t j = 0; j < groups; ++j) {
      const size_t at = static_cast<size_t>(r * groups + j);
      const float s = w.scale[at], zp = w.zero_point[at];
      const std::string where = w.name + ": group [" + std::to_string(r) + ", " + std::to_string(j) + "]";
      if (!std::isfinite(s) || s < 0.0f) return InvalidArgument(where + " has scale " + Num(s));
      if (!std::isfinite(zp)) return InvalidArgument(where + " has zero_point " + Num(zp));
      if (s > kF16Max) return InvalidArgument(where + ": scale " + Num(s) + " exceeds f16 (65504)");
      // min = (qmin − zp)·scale, the value of code 0, rounded once to f16.
      const double min_exact = (static_cast<double>(qmin) - zp) * s;
      if (std::fabs(min_exact) > kF16Max) {
        return InvalidArgument(where + ": minimum (qmin − zero_point)·scale = " + Num(min_exact) +
                               " exceeds f16 (65504)");
      }
      GroupGrid& g = grids[static_cast<size_t>(j)];
      g.scale = F16ToF32(F32ToF16(s));
      g.offset = F16ToF32(F32ToF16(static_cast<float>(min_exact)));
      err.groups += 1;
      err.max_rel_scale = std::max(err.max_rel_scale, s > 0.0f ? std::fabs(g.scale - s) / s : 0.0);
      bool exact = true;
      for (int64_t i = j * w.group_size; i < (j + 1) * w.group_size; ++i) {
        if (q[i] < qmin || q[i] > qmax) {
          return InvalidArgument(w.name + ": qdata[" + std::to_string(r) + ", " + std::to_string(i) + "] = " +
                                 std::to_string(q[i]) + " is outside int" + std::to_string(w.bits) + "'s [" +
                                 std::to_string(qmin) + ", " + std::to_string(qmax) + "]");
        }
        const int c = q[i] - qmin;
        codes[static_cast<size_t>(i)] = static_cast<uint8_t>(c);
        // Read back exactly as the format's reader does: min + scale·c in f32.
        const float ours = g.offset + g.scale * static_cast<float>(c);
        const float theirs = TorchaoValue(q[i], zp, s, w.compute);
        const double d = std::fabs(static_cast<double>(ours) - theirs);
        if (ours != theirs) exact = false;
        err.max_abs = std::max(err.max_abs, d);
        if (s > 0.0f) err.max_in_steps = std::max(err.max_in_steps, d / s);
      }
      err.exact_groups += exact;
    }
    EncodeRow(format, grids.data(), codes.data(), w.k, out + r * row_bytes);
  }
  if (error != nullptr) error->Merge(err);
  return Status::Ok();
}

namespace {

// The safetensors metadata of every file of the checkpoint, merged.
struct TorchaoMetadata {
  std::vector<std::string> tensor_names;
  std::map<std::string, std::string> entries;  // name -> JSON text
  std::map<std::string, std::string> file_of;  // name -> file (for messages)
};

Result<TorchaoMetadata> ReadMetadata(const Checkpoint& ckpt, const std::string& dir) {
  TorchaoMetadata m;
  bool found = false;
  for (const auto& file : ckpt.files()) {
    const std::string fname = BaseName(file->path());
    const auto& md = file->metadata();
    auto it = md.find("tensor_names");
    if (it == md.end()) continue;
    found = true;
    json names = json::parse(it->second, nullptr, /*allow_exceptions=*/false);
    if (names.is_discarded() || !names.is_array()) {
      return InvalidArgument(fname + ": metadata 'tensor_names' is not a JSON list");
    }
    for (const json& n : names) {
      if (!n.is_string()) return InvalidArgument(fname + ": metadata 'tensor_names' holds a non-string");
      const std::string name = n.get<std::string>();
      auto e = md.find(name);
      if (e == md.end()) {
        return InvalidArgument(fname + ": metadata lists tensor '" + name + "' in tensor_names but has no entry for it");
      }
      if (m.entries.count(name) == 0) m.tensor_names.push_back(name);
      m.entries[name] = e->second;
      m.file_of[name] = fname;
    }
  }
  if (!found) {
    return InvalidArgument(dir + ": no torchao metadata ('tensor_names' in the safetensors header); expected a "
                           "checkpoint saved with torchao's flatten_tensor_state_dict (as transformers saves "
                           "torchao models)");
  }
  return m;
}

// A tensor of the checkpoint, checked for presence, dtype and shape.
Result<Tensor> Need(const Checkpoint& ckpt, const std::string& file, const std::string& weight,
                    const std::string& name, const std::vector<DType>& dtypes, const Shape& shape) {
  if (!ckpt.Has(name)) {
    return NotFound(file + ": torchao weight '" + weight + "' has no tensor '" + name + "'");
  }
  BL_ASSIGN_OR_RETURN(Tensor t, ckpt.Get(name));
  if (std::find(dtypes.begin(), dtypes.end(), t.dtype()) == dtypes.end()) {
    std::string want;
    for (DType d : dtypes) want += (want.empty() ? "" : "|") + std::string(DTypeName(d));
    return InvalidArgument(file + ": tensor '" + name + "' is " + std::string(DTypeName(t.dtype())) + ", expected " +
                           want);
  }
  if (t.shape() != shape) {
    return InvalidArgument(file + ": tensor '" + name + "' has shape " + ShapeToString(t.shape()) + ", expected " +
                           ShapeToString(shape));
  }
  return t;
}

std::vector<float> ToFloats(const Tensor& t) {
  const Tensor f = t.ToF32();
  return std::vector<float>(f.data_as<float>(), f.data_as<float>() + f.numel());
}

// One output tensor: a plain tensor copied from its mapping, or a torchao
// weight checked and planned here and packed only when it is written (so at
// most one packed tensor is in memory at a time).
struct PlannedOut {
  std::string name;
  DType dtype;
  Shape shape;
  Tensor copy;                        // plain tensors
  std::unique_ptr<TorchaoWeight> w;   // torchao weights (scale/zero_point widened)
  const FormatInfo* format = nullptr;
  size_t report = 0;                  // index into TorchaoImportResult::tensors
};

Result<DType> TorchDType(const json& v, const std::string& what) {
  // {"_type": "torch.dtype", "_data": "float32"}
  if (!v.is_object() || !v.contains("_data") || !v["_data"].is_string()) {
    return InvalidArgument(what + " is not a torch.dtype");
  }
  const std::string d = v["_data"].get<std::string>();
  if (d == "float32") return DType::kF32;
  if (d == "bfloat16") return DType::kBF16;
  if (d == "float16") return DType::kF16;
  return Unsupported(what + " is torch." + d + " (float32, bfloat16 or float16 expected)");
}

Result<PlannedOut> ImportIntx(const Checkpoint& ckpt, const std::string& file, const std::string& name,
                              const json& meta, TorchaoImportedTensor* report) {
  const std::string what = file + ": tensor '" + name + "'";
  const json& data = meta.contains("_data") ? meta["_data"] : json();
  if (!data.is_object()) return InvalidArgument(what + ": metadata has no '_data' object");
  // Bit width from target_dtype: {"_type": "torch.dtype", "_data": "int4"}.
  const json& td = data.contains("target_dtype") ? data["target_dtype"] : json();
  if (!td.is_object() || !td.contains("_data") || !td["_data"].is_string()) {
    return InvalidArgument(what + ": metadata has no target_dtype");
  }
  const std::string target = td["_data"].get<std::string>();
  int bits = 0;
  if (target.size() == 4 && target.rfind("int", 0) == 0 && target[3] >= '1' && target[3] <= '8') bits = target[3] - '0';
  if (bits == 0) return Unsupported(what + ": target_dtype " + target + " is not int1..int8");
  const json& bs = data.contains("block_size") ? data["block_size"] : json();
  if (!bs.is_array() || bs.size() != 2 || !bs[0].is_number_integer() || !bs[1].is_number_integer()) {
    return Unsupported(what + ": block_size " + bs.dump() + " is not [1, group] of a linear weight");
  }
  const int64_t b0 = bs[0].get<int64_t>(), group = bs[1].get<int64_t>();
  DType compute = DType::kF32;
  if (data.contains("dtype")) {
    BL_ASSIGN_OR_RETURN(compute, TorchDType(data["dtype"], what + ": dtype"));
  }
  std::string act;
  if (data.contains("activation_quantization") && data["activation_quantization"].is_string()) {
    act = data["activation_quantization"].get<std::string>();
  }

  const size_t dot = name.rfind('.');
  if (dot == std::string::npos) return InvalidArgument(what + ": name has no module part");
  const std::string prefix = name.substr(0, dot) + "._" + name.substr(dot + 1) + "_";
  if (!ckpt.Has(prefix + "qdata")) return NotFound(what + ": tensor '" + prefix + "qdata' is missing");
  const TensorEntry* qe = ckpt.Find(prefix + "qdata");
  if (qe->shape.size() != 2) {
    return InvalidArgument(file + ": tensor '" + prefix + "qdata' has shape " + ShapeToString(qe->shape) +
                           ", expected [n, k]");
  }
  const int64_t n = qe->shape[0], k = qe->shape[1];
  if (b0 != 1 || group <= 0 || k % group != 0) {
    return InvalidArgument(what + ": block_size [" + std::to_string(b0) + ", " + std::to_string(group) +
                           "] does not tile qdata " + ShapeToString(qe->shape));
  }
  BL_ASSIGN_OR_RETURN(const FormatInfo* format, TorchaoFormat(bits, group));
  const Shape grid_shape = {n, k / group};
  BL_ASSIGN_OR_RETURN(Tensor q, Need(ckpt, file, name, prefix + "qdata", {DType::kI8}, {n, k}));
  BL_ASSIGN_OR_RETURN(Tensor scale, Need(ckpt, file, name, prefix + "scale",
                                         {DType::kF32, DType::kBF16, DType::kF16}, grid_shape));
  BL_ASSIGN_OR_RETURN(Tensor zp, Need(ckpt, file, name, prefix + "zero_point",
                                      {DType::kI8, DType::kI32, DType::kF32, DType::kBF16, DType::kF16}, grid_shape));
  PlannedOut out{name, DType::kU8, {n, static_cast<int64_t>(RowBytes(*format, k))}, {}, nullptr, format, 0};
  out.w = std::make_unique<TorchaoWeight>();
  TorchaoWeight& w = *out.w;
  w.name = file + ": " + name;
  w.bits = bits, w.n = n, w.k = k, w.group_size = group;
  w.qdata = q.data_as<int8_t>();  // points into the mapping, which the checkpoint keeps
  w.scale = ToFloats(scale);
  w.zero_point = ToFloats(zp);
  w.compute = compute;
  report->name = name;
  report->format = format;
  report->bits = bits, report->n = n, report->k = k;
  report->activation_quantization = act;
  return out;
}

Status WriteText(const fs::path& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary);
  f << text;
  f.close();
  if (!f) return IoError(path.string() + ": cannot write");
  return Status::Ok();
}

Status CopySideFiles(const fs::path& src, const fs::path& dst) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(src, ec)) {
    if (!entry.is_regular_file(ec)) continue;
    const std::string name = entry.path().filename().string();
    if (name == "config.json" || name == "model.safetensors.index.json" || entry.path().extension() == ".safetensors") {
      continue;
    }
    fs::copy_file(entry.path(), dst / name, fs::copy_options::overwrite_existing, ec);
    if (ec) return IoError(entry.path().string() + ": cannot copy (" + ec.message() + ")");
  }
  if (ec) return IoError(src.string() + ": cannot list (" + ec.message() + ")");
  return Status::Ok();
}

}  // namespace

Result<TorchaoImportResult> ImportTorchaoCheckpoint(const TorchaoImportOptions& options) {
  if (options.output_dir.empty()) return InvalidArgument("convert --from torchao needs an output directory (-o OUT)");
  std::error_code ec;
  if (!fs::is_directory(options.input_dir, ec)) return NotFound(options.input_dir + ": not a directory");
  fs::path out = fs::path(options.output_dir).lexically_normal();
  if (out.has_parent_path() && out.filename().empty()) out = out.parent_path();
  if (fs::exists(out, ec) && fs::equivalent(out, options.input_dir, ec)) {
    return InvalidArgument(options.output_dir + ": the output directory is the input");
  }
  if (fs::exists(out, ec) && !options.overwrite) {
    return InvalidArgument(options.output_dir + ": already exists (use --force to replace it)");
  }
  const std::string config_path = (fs::path(options.input_dir) / "config.json").string();
  BL_ASSIGN_OR_RETURN(std::string config_text, ReadTextFile(config_path));
  ordered_json config = ordered_json::parse(config_text, nullptr, /*allow_exceptions=*/false);
  if (config.is_discarded() || !config.is_object()) return InvalidArgument(config_path + ": malformed JSON");

  BL_ASSIGN_OR_RETURN(Checkpoint ckpt, Checkpoint::Open(options.input_dir));
  BL_ASSIGN_OR_RETURN(TorchaoMetadata meta, ReadMetadata(ckpt, options.input_dir));

  TorchaoImportResult result;
  std::vector<PlannedOut> outs;
  std::set<std::string> claimed;
  QuantizationConfig qc;
  for (const std::string& name : meta.tensor_names) {
    const std::string& file = meta.file_of[name];
    json m = json::parse(meta.entries[name], nullptr, /*allow_exceptions=*/false);
    if (m.is_discarded() || !m.is_object() || !m.contains("_type") || !m["_type"].is_string()) {
      return InvalidArgument(file + ": metadata of tensor '" + name + "' is not a JSON object with a _type");
    }
    const std::string type = m["_type"].get<std::string>();
    if (type == "Tensor") {
      if (!ckpt.Has(name)) return NotFound(file + ": tensor '" + name + "' is listed in tensor_names but missing");
      BL_ASSIGN_OR_RETURN(Tensor t, ckpt.Get(name));
      outs.push_back({name, t.dtype(), t.shape(), t, nullptr, nullptr, 0});
      claimed.insert(name);
      result.copied += 1;
      result.tensors.push_back({name, nullptr, 0, t.numel() > 0 ? t.dim(0) : 0, 0, "", {}});
    } else if (type == kIntxType) {
      TorchaoImportedTensor report;
      BL_ASSIGN_OR_RETURN(PlannedOut o, ImportIntx(ckpt, file, name, m, &report));
      const std::string prefix = name.substr(0, name.rfind('.')) + "._" + name.substr(name.rfind('.') + 1) + "_";
      for (const char* part : {"qdata", "scale", "zero_point"}) claimed.insert(prefix + part);
      qc.tensors[name] = {report.format, report.n, report.k};
      result.packed += 1;
      o.report = result.tensors.size();
      result.tensors.push_back(report);
      outs.push_back(std::move(o));
    } else {
      return Unsupported(file + ": tensor '" + name + "' is a torchao " + type + "; only " + kIntxType +
                         " (IntxWeightOnlyConfig / Int8DynamicActivationIntxWeightConfig, packing "
                         "unpacked_to_int8) is supported");
    }
  }
  for (const std::string& name : ckpt.Names()) {
    if (claimed.count(name) == 0) {
      return InvalidArgument(BaseName(ckpt.FileOf(name)) + ": tensor '" + name +
                             "' is not part of any tensor listed in the torchao metadata 'tensor_names'");
    }
  }

  BL_ASSIGN_OR_RETURN(std::unique_ptr<StagingDir> staging, StagingDir::Create(out));
  std::sort(outs.begin(), outs.end(), [](const PlannedOut& a, const PlannedOut& b) { return a.name < b.name; });
  SafetensorsWriter writer((staging->path() / "model.safetensors").string());
  for (const PlannedOut& o : outs) writer.Declare(o.name, o.dtype, o.shape);
  BL_TRY(writer.Begin());
  std::vector<uint8_t> packed;
  for (const PlannedOut& o : outs) {
    if (o.w == nullptr) {
      BL_TRY(writer.Write(o.copy.data(), o.copy.nbytes()));
      continue;
    }
    TorchaoImportedTensor& report = result.tensors[o.report];
    packed.resize(static_cast<size_t>(o.w->n) * RowBytes(*o.format, o.w->k));
    BL_TRY(PackTorchaoWeight(*o.w, *o.format, packed.data(), &report.error));
    result.error.Merge(report.error);
    BL_TRY(writer.Write(packed.data(), packed.size()));
  }
  BL_TRY(writer.Finish());

  // config.json: torchao's quantization_config moves under "torchao"; bitlens'
  // lists every packed tensor.
  ordered_json source = config.contains("quantization_config") ? config["quantization_config"] : ordered_json();
  config.erase("quantization_config");
  qc.extra_json["method"] = "\"torchao\"";
  if (!source.is_null()) qc.extra_json["torchao"] = source.dump();
  const json q = QuantizationConfigToJson(qc);
  config["quantization_config"] = ordered_json::parse(q.dump());
  BL_TRY(WriteText(staging->path() / "config.json", config.dump(2) + "\n"));
  BL_TRY(CopySideFiles(options.input_dir, staging->path()));
  BL_TRY(staging->Commit());
  return result;
}

std::string TorchaoImportSummary(const TorchaoImportResult& r) {
  std::map<std::string, int> by_format;
  std::set<std::string> acts;
  for (const TorchaoImportedTensor& t : r.tensors) {
    if (t.format == nullptr) continue;
    by_format["int" + std::to_string(t.bits) + "->" + t.format->name] += 1;
    if (!t.activation_quantization.empty()) acts.insert(t.activation_quantization);
  }
  std::string s = "torchao import: " + std::to_string(r.packed) + " weights packed (";
  bool first = true;
  for (const auto& [f, c] : by_format) s += (first ? "" : ", ") + std::to_string(c) + " " + f, first = false;
  s += "), " + std::to_string(r.copied) + " tensors copied; " + std::to_string(r.error.exact_groups) + " of " +
       std::to_string(r.error.groups) + " groups exact; f16 grids: max scale error " +
       Num(r.error.max_rel_scale) + " relative, max weight error " + Num(r.error.max_abs) + " (" +
       Num(r.error.max_in_steps) + " steps)";
  for (const std::string& a : acts) {
    s += "; note: torchao's activation quantization '" + a + "' is not reproduced (bitlens keeps its own)";
  }
  return s;
}

}  // namespace bitlens::quant
