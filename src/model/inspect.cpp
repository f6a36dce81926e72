// model/inspect: component accounting over tensor names, and the report in
// text and JSON.
#include "model/inspect.h"

#include <filesystem>
#include <set>

#include <nlohmann/json.hpp>

#include "formats/safetensors.h"
#include "model/synth_layout.h"
#include "quant/checkpoint.h"

namespace bitlens {
namespace {

using json = nlohmann::json;

constexpr const char* kComponentOrder[] = {"vision tower", "projector", "decoder layers", "embeddings", "lm head", "other"};

bool EndsWith(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Component of a tensor, from transformers' module names (v4 and v5 alike).
const char* ComponentOf(const std::string& name) {
  if (name.find("vision_tower.") != std::string::npos) return "vision tower";
  if (name.find("multi_modal_projector.") != std::string::npos) return "projector";
  if (EndsWith(name, "embed_tokens.weight")) return "embeddings";
  if (name.find("lm_head.") != std::string::npos) return "lm head";
  if (name.find("layers.") != std::string::npos || EndsWith(name, "norm.weight")) return "decoder layers";
  return "other";
}

std::string FamilyOf(const ModelConfig& c) {
  if (c.is_vlm()) return c.vision->model_type == "siglip_vision_model" ? "llava-siglip" : "llava";
  return c.text.model_type;
}

std::string HumanCount(int64_t n) {
  char buf[32];
  if (n >= 1'000'000'000) std::snprintf(buf, sizeof(buf), "%.2f B", n / 1e9);
  else if (n >= 1'000'000) std::snprintf(buf, sizeof(buf), "%.2f M", n / 1e6);
  else if (n >= 1'000) std::snprintf(buf, sizeof(buf), "%.1f K", n / 1e3);
  else std::snprintf(buf, sizeof(buf), "%lld", static_cast<long long>(n));
  return buf;
}

std::string HumanBytes(uint64_t n) {
  char buf[32];
  if (n >= 1'000'000'000) std::snprintf(buf, sizeof(buf), "%.2f GB", n / 1e9);
  else if (n >= 1'000'000) std::snprintf(buf, sizeof(buf), "%.2f MB", n / 1e6);
  else if (n >= 1'000) std::snprintf(buf, sizeof(buf), "%.1f KB", n / 1e3);
  else std::snprintf(buf, sizeof(buf), "%llu B", static_cast<unsigned long long>(n));
  return buf;
}

// Bytes a tensor takes in the file, and its format name (or dtype).
uint64_t StoredBytes(const ModelReport& r, const TensorInfo& t) {
  auto it = r.packed.find(t.name);
  if (it != r.packed.end()) return it->second.stored_bytes;
  return static_cast<uint64_t>(NumElements(t.shape)) * DTypeSize(t.dtype);
}
std::string KindOf(const ModelReport& r, const TensorInfo& t) {
  auto it = r.packed.find(t.name);
  return it != r.packed.end() ? it->second.format : std::string(DTypeName(t.dtype));
}

void CheckLayout(const std::vector<TensorInfo>& tensors, ModelReport* r) {
  std::vector<std::string> names;
  for (const auto& t : tensors) names.push_back(t.name);
  const HfLayout layout = DetectHfLayout(names);
  if (r->config.is_vlm()) r->layout = std::string(HfLayoutName(layout));
  auto expected = HfTensorLayout(r->config, layout);
  if (!expected.ok()) {
    r->layout_error = expected.status().message();
    return;
  }
  r->layout_checked = true;
  std::map<std::string, const Shape*> want;
  for (const auto& spec : *expected) want[spec.name] = &spec.shape;
  std::set<std::string> seen;
  for (const auto& t : tensors) {
    auto it = want.find(t.name);
    if (it == want.end()) {
      r->unexpected.push_back(t.name);
      continue;
    }
    seen.insert(t.name);
    if (*it->second != t.shape) {
      r->wrong_shape.push_back(t.name + " is " + ShapeToString(t.shape) + ", expected " + ShapeToString(*it->second));
    }
  }
  for (const auto& spec : *expected) {
    if (!seen.count(spec.name)) r->missing.push_back(spec.name);
  }
}

}  // namespace

std::string WithThousands(uint64_t n) {
  std::string digits = std::to_string(n), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out.push_back(',');
    out.push_back(digits[i]);
  }
  return out;
}

ModelReport InspectTensors(const ModelConfig& config, const std::vector<TensorInfo>& tensors,
                           const std::map<std::string, PackedTensorInfo>* packed) {
  ModelReport r;
  if (packed != nullptr) r.packed = *packed;
  r.config = config;
  r.family = FamilyOf(config);
  std::map<std::string, ComponentStats> by_name;
  for (const auto& t : tensors) {
    ComponentStats& c = by_name[ComponentOf(t.name)];
    const int64_t n = NumElements(t.shape);
    const uint64_t bytes = StoredBytes(r, t);
    const std::string kind = KindOf(r, t);
    c.tensors += 1;
    c.params += n;
    c.bytes += bytes;
    c.params_by_dtype[kind] += n;
    r.total_tensors += 1;
    r.total_params += n;
    r.total_bytes += bytes;
    FormatStats& f = r.formats[kind];
    f.tensors += 1;
    f.params += n;
    f.bytes += bytes;
  }
  r.tensors = tensors;
  for (const char* name : kComponentOrder) {
    auto it = by_name.find(name);
    if (it != by_name.end()) {
      it->second.name = name;
      r.components.push_back(it->second);
    } else if (std::string(name) == "lm head" && config.text.tie_word_embeddings) {
      ComponentStats tied;
      tied.name = name;
      tied.note = "tied to embeddings (not stored)";
      r.components.push_back(tied);
    }
  }
  CheckLayout(tensors, &r);
  return r;
}

Result<ModelReport> InspectCheckpoint(const std::string& dir) {
  BL_ASSIGN_OR_RETURN(ModelConfig config, LoadModelConfig(dir));
  BL_ASSIGN_OR_RETURN(Checkpoint ckpt, Checkpoint::Open(dir));
  BL_ASSIGN_OR_RETURN(quant::QuantizationConfig quant, quant::LoadQuantizationConfig(dir));
  BL_TRY(quant::CheckQuantizedTensorsPresent(ckpt, quant));
  std::vector<TensorInfo> tensors;
  std::map<std::string, PackedTensorInfo> packed;
  std::vector<ShardStats> shards;
  std::string origin;
  for (const auto& file : ckpt.files()) {
    ShardStats s;
    s.file = std::filesystem::path(file->path()).filename().string();
    s.tensors = static_cast<int64_t>(file->entries().size());
    std::error_code ec;
    s.file_bytes = std::filesystem::file_size(file->path(), ec);
    shards.push_back(s);
    for (const auto& e : file->entries()) {
      TensorInfo info{e.name, e.dtype, e.shape};
      if (const quant::QuantizedTensor* q = quant.Find(e.name)) {
        // Packed rows: account the logical [n, k] weight and the bytes stored.
        info.shape = {q->n, q->k};
        packed[e.name] = {q->format->name, e.end - e.begin};
      }
      tensors.push_back(std::move(info));
    }
    if (auto it = file->metadata().find("bitlens.synth"); it != file->metadata().end()) origin = it->second;
  }
  ModelReport r = InspectTensors(config, tensors, &packed);
  r.dir = dir;
  r.synth_origin = origin;
  r.quantized = !quant.empty();
  if (auto it = quant.extra_json.find("method"); it != quant.extra_json.end()) {
    const json m = json::parse(it->second, nullptr, /*allow_exceptions=*/false);
    if (m.is_string()) r.quant_method = m.get<std::string>();
  }
  r.shards = std::move(shards);
  return r;
}

std::string FormatReportText(const ModelReport& r) {
  const ModelConfig& c = r.config;
  const TextConfig& t = c.text;
  std::string out;
  auto line = [&](const std::string& s) { out += s + "\n"; };
  if (!r.dir.empty()) line("model         " + r.dir);
  if (!r.synth_origin.empty()) line("weights       random, written by bitlens synth (" + r.synth_origin + ")");
  std::string arch = c.architecture.empty() ? c.model_type : c.architecture;
  line("family        " + r.family + " (" + arch + (r.layout.empty() ? "" : ", tensor names " + r.layout) +
       (c.torch_dtype.empty() ? "" : ", " + c.torch_dtype) + ")");
  char buf[512];
  std::snprintf(buf, sizeof(buf),
                "decoder       %s: hidden %lld, %lld layers, %lld heads (%lld KV), head_dim %lld, intermediate %lld, vocab %lld",
                t.model_type.c_str(), (long long)t.hidden_size, (long long)t.num_hidden_layers,
                (long long)t.num_attention_heads, (long long)t.num_key_value_heads, (long long)t.head_dim,
                (long long)t.intermediate_size, (long long)t.vocab_size);
  line(buf);
  if (t.rope.type != "default" || t.partial_rotary_factor != 1.0) {
    std::snprintf(buf, sizeof(buf), "rope          %s, theta %g, partial_rotary_factor %g", t.rope.type.c_str(),
                  t.rope.theta, t.partial_rotary_factor);
    line(buf);
  }
  if (c.vision) {
    const VisionConfig& v = *c.vision;
    std::snprintf(buf, sizeof(buf),
                  "vision        %s: hidden %lld, %lld layers, %lld heads, image %lld px, patch %lld, %lld image tokens",
                  v.model_type.c_str(), (long long)v.hidden_size, (long long)v.num_hidden_layers,
                  (long long)v.num_attention_heads, (long long)v.image_size, (long long)v.patch_size,
                  (long long)c.image_seq_length());
    line(buf);
  }
  line("");
  std::snprintf(buf, sizeof(buf), "%-16s %8s %16s %10s %16s  %s", "component", "tensors", "parameters", "", "bytes", "dtypes");
  line(buf);
  for (const auto& comp : r.components) {
    std::string dtypes;
    for (const auto& [d, n] : comp.params_by_dtype) dtypes += (dtypes.empty() ? "" : " ") + d;
    if (!comp.note.empty()) dtypes = comp.note;
    std::snprintf(buf, sizeof(buf), "%-16s %8lld %16s %10s %16s  %s", comp.name.c_str(), (long long)comp.tensors,
                  WithThousands(comp.params).c_str(), ("(" + HumanCount(comp.params) + ")").c_str(),
                  WithThousands(comp.bytes).c_str(), dtypes.c_str());
    line(buf);
  }
  std::snprintf(buf, sizeof(buf), "%-16s %8lld %16s %10s %16s  %s", "total", (long long)r.total_tensors,
                WithThousands(r.total_params).c_str(), ("(" + HumanCount(r.total_params) + ")").c_str(),
                WithThousands(r.total_bytes).c_str(), HumanBytes(r.total_bytes).c_str());
  line(buf);
  if (r.quantized) {
    line("");
    std::snprintf(buf, sizeof(buf), "%.3f", r.total_params > 0 ? 8.0 * r.total_bytes / r.total_params : 0.0);
    line("quantized     bitlens" + (r.quant_method.empty() ? std::string() : ", method " + r.quant_method) + "; " +
         HumanBytes(r.total_bytes) + " of tensors, " + buf + " bpw over all parameters (--tensors lists each)");
    std::snprintf(buf, sizeof(buf), "%-16s %8s %16s %16s  %s", "format", "tensors", "parameters", "bytes", "bpw");
    line(buf);
    for (const auto& [name, f] : r.formats) {
      std::snprintf(buf, sizeof(buf), "%-16s %8lld %16s %16s  %.3f", name.c_str(), (long long)f.tensors,
                    WithThousands(f.params).c_str(), WithThousands(f.bytes).c_str(),
                    f.params > 0 ? 8.0 * f.bytes / f.params : 0.0);
      line(buf);
    }
  }
  if (!r.shards.empty()) {
    line("");
    std::string files;
    for (const auto& s : r.shards) files += "  " + s.file + " (" + HumanBytes(s.file_bytes) + ", " + std::to_string(s.tensors) + " tensors)\n";
    out += "shards        " + std::to_string(r.shards.size()) + "\n" + files;
  }
  if (!r.layout_checked) {
    line("layout check  skipped: " + r.layout_error);
  } else if (r.missing.empty() && r.unexpected.empty() && r.wrong_shape.empty()) {
    line("layout check  ok: every tensor named and shaped as transformers saves it");
  } else {
    line("layout check  " + std::to_string(r.missing.size()) + " missing, " + std::to_string(r.unexpected.size()) +
         " unexpected, " + std::to_string(r.wrong_shape.size()) + " wrong shape");
    auto list = [&](const char* what, const std::vector<std::string>& v) {
      for (size_t i = 0; i < v.size() && i < 5; ++i) line(std::string("  ") + what + " " + v[i]);
      if (v.size() > 5) line("  ... and " + std::to_string(v.size() - 5) + " more");
    };
    list("missing", r.missing);
    list("unexpected", r.unexpected);
    list("shape", r.wrong_shape);
  }
  return out;
}

std::string FormatReportJson(const ModelReport& r) {
  const ModelConfig& c = r.config;
  const TextConfig& t = c.text;
  json j;
  if (!r.dir.empty()) j["dir"] = r.dir;
  if (!r.synth_origin.empty()) j["synth"] = r.synth_origin;
  j["family"] = r.family;
  j["model_type"] = c.model_type;
  j["architecture"] = c.architecture;
  j["dtype"] = c.torch_dtype;
  if (!r.layout.empty()) j["layout"] = r.layout;
  j["text"] = {{"model_type", t.model_type},     {"hidden_size", t.hidden_size},
               {"num_hidden_layers", t.num_hidden_layers}, {"num_attention_heads", t.num_attention_heads},
               {"num_key_value_heads", t.num_key_value_heads}, {"head_dim", t.head_dim},
               {"intermediate_size", t.intermediate_size}, {"vocab_size", t.vocab_size},
               {"tie_word_embeddings", t.tie_word_embeddings}, {"rope_type", t.rope.type},
               {"partial_rotary_factor", t.partial_rotary_factor}};
  if (c.vision) {
    const VisionConfig& v = *c.vision;
    j["vision"] = {{"model_type", v.model_type}, {"hidden_size", v.hidden_size},
                   {"num_hidden_layers", v.num_hidden_layers}, {"image_size", v.image_size},
                   {"patch_size", v.patch_size}, {"image_tokens", c.image_seq_length()}};
  }
  json comps = json::array();
  for (const auto& comp : r.components) {
    json cj = {{"name", comp.name}, {"tensors", comp.tensors}, {"parameters", comp.params}, {"bytes", comp.bytes},
               {"dtypes", comp.params_by_dtype}};
    if (!comp.note.empty()) cj["note"] = comp.note;
    comps.push_back(cj);
  }
  j["components"] = comps;
  j["total_tensors"] = r.total_tensors;
  j["total_parameters"] = r.total_params;
  j["total_bytes"] = r.total_bytes;
  if (r.quantized) {
    json formats = json::object();
    for (const auto& [name, f] : r.formats) {
      formats[name] = {{"tensors", f.tensors}, {"parameters", f.params}, {"bytes", f.bytes},
                       {"bpw", f.params > 0 ? 8.0 * f.bytes / f.params : 0.0}};
    }
    json tensors = json::array();
    for (const TensorInfo& t : r.tensors) {
      const int64_t n = NumElements(t.shape);
      const uint64_t bytes = StoredBytes(r, t);
      tensors.push_back({{"name", t.name},
                         {"format", KindOf(r, t)},
                         {"shape", t.shape},
                         {"bytes", bytes},
                         {"bpw", n > 0 ? 8.0 * bytes / n : 0.0}});
    }
    j["quantization"] = {{"method", r.quant_method},
                         {"bpw", r.total_params > 0 ? 8.0 * r.total_bytes / r.total_params : 0.0},
                         {"formats", formats},
                         {"tensors", tensors}};
  }
  json shards = json::array();
  for (const auto& s : r.shards) shards.push_back({{"file", s.file}, {"tensors", s.tensors}, {"file_bytes", s.file_bytes}});
  j["shards"] = shards;
  json check = {{"checked", r.layout_checked}, {"missing", r.missing}, {"unexpected", r.unexpected},
                {"wrong_shape", r.wrong_shape}};
  if (!r.layout_error.empty()) check["error"] = r.layout_error;
  check["ok"] = r.layout_checked && r.missing.empty() && r.unexpected.empty() && r.wrong_shape.empty();
  j["layout_check"] = check;
  return j.dump(2) + "\n";
}

std::string FormatTensorListText(const ModelReport& r) {
  std::string out;
  char buf[512];
  std::snprintf(buf, sizeof(buf), "%-64s %-8s %-16s %14s  %s\n", "tensor", "format", "shape", "bytes", "bpw");
  out += buf;
  for (const TensorInfo& t : r.tensors) {
    const int64_t n = NumElements(t.shape);
    const uint64_t bytes = StoredBytes(r, t);
    std::snprintf(buf, sizeof(buf), "%-64s %-8s %-16s %14s  %.3f\n", t.name.c_str(), KindOf(r, t).c_str(),
                  ShapeToString(t.shape).c_str(), WithThousands(bytes).c_str(), n > 0 ? 8.0 * bytes / n : 0.0);
    out += buf;
  }
  return out;
}

}  // namespace bitlens
