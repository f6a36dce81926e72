// quant/checkpoint: quantization_config parsing and the checks every loader
// applies to a packed tensor before a kernel reads it.
#include "quant/checkpoint.h"

#include <filesystem>

#include <nlohmann/json.hpp>

#include "base/f16.h"
#include "base/mmap_file.h"

namespace bitlens::quant {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string BaseName(const std::string& path) { return fs::path(path).filename().string(); }

bool IsFloat(DType t) { return t == DType::kF32 || t == DType::kF16 || t == DType::kBF16; }

}  // namespace

Result<QuantizationConfig> ParseQuantizationConfig(const std::string& text, const std::string& source) {
  const json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return InvalidArgument(source + ": malformed JSON");
  QuantizationConfig out;
  out.source = source;
  auto qc = j.find("quantization_config");
  if (qc == j.end() || qc->is_null()) return out;
  const std::string where = source + ": quantization_config";
  if (!qc->is_object()) return InvalidArgument(where + " is not an object");
  auto method = qc->find("quant_method");
  if (method == qc->end() || !method->is_string()) return InvalidArgument(where + ".quant_method is missing");
  if (method->get<std::string>() != kQuantMethod) {
    return Unsupported(where + ".quant_method '" + method->get<std::string>() +
                       "' is not supported (bitlens reads its own \"bitlens\" checkpoints)");
  }
  auto version = qc->find("version");
  if (version == qc->end() || !version->is_number_integer()) return InvalidArgument(where + ".version is missing");
  out.version = version->get<int>();
  if (out.version != kQuantConfigVersion) {
    return Unsupported(where + ".version " + std::to_string(out.version) + " is not supported (this build reads " +
                       std::to_string(kQuantConfigVersion) + ")");
  }
  auto tensors = qc->find("tensors");
  if (tensors == qc->end() || !tensors->is_object()) return InvalidArgument(where + ".tensors is missing or not an object");
  for (auto it = tensors->begin(); it != tensors->end(); ++it) {
    const std::string tw = where + ".tensors['" + it.key() + "']";
    if (!it->is_object()) return InvalidArgument(tw + " is not an object");
    auto f = it->find("format");
    if (f == it->end() || !f->is_string()) return InvalidArgument(tw + ".format is missing");
    auto format = FindFormat(f->get<std::string>());
    if (!format.ok()) return InvalidArgument(tw + ": " + format.status().message());
    auto s = it->find("shape");
    if (s == it->end() || !s->is_array() || s->size() != 2 || !(*s)[0].is_number_integer() ||
        !(*s)[1].is_number_integer()) {
      return InvalidArgument(tw + ".shape must be [n, k]");
    }
    QuantizedTensor q;
    q.format = *format;
    q.n = (*s)[0].get<int64_t>();
    q.k = (*s)[1].get<int64_t>();
    if (q.n <= 0 || q.k <= 0 || q.n > (int64_t{1} << 40) || q.k > (int64_t{1} << 32)) {
      return InvalidArgument(tw + ".shape [" + std::to_string(q.n) + ", " + std::to_string(q.k) + "] is not valid");
    }
    if (Status st = CheckRowLength(*q.format, q.k); !st.ok()) return InvalidArgument(tw + ": " + st.message());
    out.tensors.emplace(it.key(), q);
  }
  for (auto it = qc->begin(); it != qc->end(); ++it) {
    if (it.key() != "quant_method" && it.key() != "version" && it.key() != "tensors") {
      out.extra_json[it.key()] = it->dump();
    }
  }
  return out;
}

Result<QuantizationConfig> LoadQuantizationConfig(const std::string& model_dir) {
  const std::string path = (fs::path(model_dir) / "config.json").string();
  BL_ASSIGN_OR_RETURN(std::string text, ReadTextFile(path));
  return ParseQuantizationConfig(text, path);
}

json QuantizationConfigToJson(const QuantizationConfig& config) {
  json qc = json::object();
  qc["quant_method"] = kQuantMethod;
  qc["version"] = config.version;
  for (const auto& [key, text] : config.extra_json) {
    json v = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (!v.is_discarded()) qc[key] = std::move(v);
  }
  json tensors = json::object();
  for (const auto& [name, t] : config.tensors) {
    tensors[name] = {{"format", t.format->name}, {"shape", {t.n, t.k}}};
  }
  qc["tensors"] = std::move(tensors);
  return qc;
}

Result<kernels::WeightView> MapWeight(const Checkpoint& checkpoint, const QuantizationConfig* quant,
                                      const std::string& name, const Shape& shape, Tensor* keep) {
  const TensorEntry* e = checkpoint.Find(name);
  if (e == nullptr) {
    std::string where = "checkpoint";
    if (checkpoint.files().size() == 1) where = BaseName(checkpoint.files()[0]->path());
    else if (!checkpoint.files().empty()) where = "model.safetensors.index.json";
    return NotFound(where + ": tensor '" + name + "' is missing (config.json expects it)");
  }
  const std::string file = BaseName(checkpoint.FileOf(name));
  if (shape.empty()) return Internal("MapWeight: empty shape for '" + name + "'");
  const int64_t n = shape[0];
  const int64_t k = NumElements(shape) / (n > 0 ? n : 1);
  const QuantizedTensor* q = quant != nullptr ? quant->Find(name) : nullptr;
  kernels::WeightView w;
  w.n = n;
  w.k = k;
  if (q != nullptr) {
    const std::string src = quant->source.empty() ? "config.json" : BaseName(quant->source);
    if (q->n != n || q->k != k) {
      return InvalidArgument(src + ": quantization_config gives '" + name + "' the shape [" + std::to_string(q->n) +
                             ", " + std::to_string(q->k) + "] but the model config implies " + ShapeToString(shape));
    }
    const Shape bytes = {n, static_cast<int64_t>(q->row_bytes())};
    if (e->dtype != DType::kU8) {
      return InvalidArgument(file + ": '" + name + "' has dtype " + std::string(DTypeName(e->dtype)) +
                             " but quantization_config says it is " + q->format->name + " (stored as U8 " +
                             ShapeToString(bytes) + ")");
    }
    if (e->shape != bytes) {
      return InvalidArgument(file + ": '" + name + "' is U8 " + ShapeToString(e->shape) + " but " + q->format->name +
                             " [" + std::to_string(n) + ", " + std::to_string(k) + "] packs to U8 " +
                             ShapeToString(bytes));
    }
    w.dtype = DType::kU8;
    w.format = q->format;
  } else {
    if (e->dtype == DType::kU8) {
      return InvalidArgument(file + ": '" + name + "' is U8 (packed) but config.json's quantization_config has no "
                             "entry for it");
    }
    if (!IsFloat(e->dtype)) {
      return Unsupported(file + ": '" + name + "' has dtype " + std::string(DTypeName(e->dtype)) +
                         "; weights are F32, F16, BF16 or U8 listed in quantization_config");
    }
    if (e->shape != shape) {
      return InvalidArgument(file + ": '" + name + "' is " + ShapeToString(e->shape) + " but config.json implies " +
                             ShapeToString(shape));
    }
    w.dtype = e->dtype;
  }
  BL_ASSIGN_OR_RETURN(Tensor t, checkpoint.Get(name));
  w.data = t.data();
  *keep = std::move(t);
  return w;
}

Status CheckQuantizedTensorsPresent(const Checkpoint& checkpoint, const QuantizationConfig& quant) {
  for (const auto& [name, q] : quant.tensors) {
    if (!checkpoint.Has(name)) {
      return InvalidArgument(BaseName(quant.source) + ": quantization_config lists '" + name +
                             "' but no safetensors file holds it");
    }
  }
  return Status::Ok();
}

void DequantizeWeightRows(const kernels::WeightView& w, int64_t row0, int64_t rows, float* out) {
  const size_t stride = kernels::WeightRowBytes(w);
  const uint8_t* base = static_cast<const uint8_t*>(w.data) + static_cast<size_t>(row0) * stride;
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t* row = base + static_cast<size_t>(r) * stride;
    float* y = out + r * w.k;
    if (w.format != nullptr) {
      w.format->dequantize_row_ref(*w.format, row, w.k, y);
    } else if (w.dtype == DType::kF32) {
      const float* src = reinterpret_cast<const float*>(row);
      for (int64_t i = 0; i < w.k; ++i) y[i] = src[i];
    } else if (w.dtype == DType::kF16) {
      F16ToF32(reinterpret_cast<const uint16_t*>(row), y, static_cast<size_t>(w.k));
    } else {
      Bf16ToF32(reinterpret_cast<const uint16_t*>(row), y, static_cast<size_t>(w.k));
    }
  }
}

}  // namespace bitlens::quant
