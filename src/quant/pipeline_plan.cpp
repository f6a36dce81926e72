// quant/pipeline_plan: tensor classification, format choice and shard layout
// of a quantization run, computed from headers only.
#include "quant/pipeline_plan.h"

#include <fnmatch.h>

#include <algorithm>
#include <cctype>
#include <filesystem>

#include "base/mmap_file.h"
#include "quant/checkpoint.h"

namespace bitlens::quant {
namespace {

namespace fs = std::filesystem;

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
bool Contains(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }

// "....layers.12.mlp..." -> 12, else -1.
int LayerIndex(const std::string& name) {
  const size_t p = name.find("layers.");
  if (p == std::string::npos) return -1;
  size_t i = p + 7;
  int v = 0;
  bool any = false;
  while (i < name.size() && std::isdigit(static_cast<unsigned char>(name[i]))) {
    v = v * 10 + (name[i] - '0');
    any = true;
    ++i;
  }
  return any ? v : -1;
}

Component ClassifyComponent(const std::string& name) {
  if (Contains(name, "vision_tower.")) return Component::kVision;
  if (Contains(name, "multi_modal_projector.")) return Component::kProjector;
  if (EndsWith(name, "embed_tokens.weight")) return Component::kEmbed;
  if (EndsWith(name, "lm_head.weight")) return Component::kLmHead;
  return Component::kDecoder;
}

// Linear (and embedding) weights: the matrices a MatMul or lookup reads.
// Norms, biases, position/class embeddings and the patch conv stay as stored.
bool IsWeight(Component c, const std::string& name, const Shape& shape) {
  if (shape.size() != 2 || !EndsWith(name, ".weight")) return false;
  switch (c) {
    case Component::kVision:
      return Contains(name, "layers.") && (EndsWith(name, "_proj.weight") || Contains(name, "mlp.fc"));
    case Component::kProjector: return Contains(name, "linear_");
    case Component::kEmbed:
    case Component::kLmHead: return true;
    case Component::kDecoder: return Contains(name, "layers.") && EndsWith(name, "_proj.weight");
  }
  return false;
}

std::string ShardName(size_t i, size_t n) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "model-%05zu-of-%05zu.safetensors", i + 1, n);
  return buf;
}

}  // namespace

const char* ComponentName(Component c) {
  switch (c) {
    case Component::kVision: return "vision";
    case Component::kProjector: return "projector";
    case Component::kEmbed: return "embed";
    case Component::kDecoder: return "decoder";
    case Component::kLmHead: return "lm-head";
  }
  return "?";
}

Result<const FormatInfo*> ParseFormatSpec(const std::string& spec, const std::string& what) {
  if (spec == "keep") return static_cast<const FormatInfo*>(nullptr);
  auto f = FindFormat(spec);
  if (!f.ok()) return InvalidArgument(what + ": " + f.status().message() + " (or 'keep')");
  return *f;
}

Result<QuantPlan> PlanQuantization(const std::string& model_dir, const Checkpoint& checkpoint,
                                   const PlanOptions& options) {
  QuantPlan plan;
  plan.source_dir = model_dir;
  const std::string config_path = (fs::path(model_dir) / "config.json").string();
  BL_ASSIGN_OR_RETURN(plan.config_json, ReadTextFile(config_path));
  BL_ASSIGN_OR_RETURN(plan.config, ParseModelConfig(plan.config_json, config_path));
  BL_ASSIGN_OR_RETURN(QuantizationConfig existing, ParseQuantizationConfig(plan.config_json, config_path));
  if (!existing.empty()) {
    return InvalidArgument(config_path + ": the checkpoint is already quantized (quantization_config lists " +
                           std::to_string(existing.tensors.size()) + " tensors); quantize the full-precision one");
  }

  const std::pair<Component, const std::string*> defaults[] = {
      {Component::kVision, &options.vision},   {Component::kProjector, &options.projector},
      {Component::kEmbed, &options.embed},     {Component::kDecoder, &options.decoder},
      {Component::kLmHead, &options.lm_head},
  };
  const FormatInfo* component_format[5] = {};
  for (const auto& [c, spec] : defaults) {
    BL_ASSIGN_OR_RETURN(component_format[static_cast<int>(c)],
                        ParseFormatSpec(*spec, std::string("--") + ComponentName(c)));
  }
  std::vector<const FormatInfo*> override_format;
  for (const auto& [glob, spec] : options.overrides) {
    BL_ASSIGN_OR_RETURN(const FormatInfo* f, ParseFormatSpec(spec, "--override '" + glob + "=" + spec + "'"));
    override_format.push_back(f);
  }
  std::vector<bool> override_used(options.overrides.size(), false);

  const std::vector<std::string> names = checkpoint.Names();
  for (size_t i = 0; i < names.size(); ++i) {
    const TensorEntry* e = checkpoint.Find(names[i]);
    PlannedTensor t;
    t.name = names[i];
    t.src_dtype = e->dtype;
    t.shape = e->shape;
    t.source_index = i;
    t.component = ClassifyComponent(t.name);
    t.layer = LayerIndex(t.name);
    t.weight = IsWeight(t.component, t.name, t.shape) &&
               (e->dtype == DType::kF32 || e->dtype == DType::kF16 || e->dtype == DType::kBF16);
    plan.total_params += NumElements(t.shape);
    plan.source_bytes += e->end - e->begin;
    t.out_dtype = t.src_dtype;
    t.out_shape = t.shape;
    t.out_bytes = e->end - e->begin;
    if (t.weight) {
      t.n = t.shape[0];
      t.k = t.shape[1];
      t.format = component_format[static_cast<int>(t.component)];
      for (size_t o = 0; o < options.overrides.size(); ++o) {
        if (fnmatch(options.overrides[o].first.c_str(), t.name.c_str(), 0) == 0) {
          t.format = override_format[o];
          override_used[o] = true;
        }
      }
      if (t.format != nullptr && t.format->encoding == ScaleEncoding::kNone) {
        // f16 / bf16 passthrough: a plain float tensor (nothing to pack).
        const DType d = std::string(t.format->name) == "bf16" ? DType::kBF16 : DType::kF16;
        if (d == t.src_dtype) t.format = nullptr;  // already stored that way
        else {
          t.out_dtype = d;
          t.out_bytes = static_cast<uint64_t>(NumElements(t.shape)) * 2;
        }
      } else if (t.format != nullptr) {
        if (Status st = CheckRowLength(*t.format, t.k); !st.ok()) {
          return InvalidArgument("'" + t.name + "' [" + std::to_string(t.n) + ", " + std::to_string(t.k) +
                                 "] cannot be " + t.format->name + ": " + st.message() +
                                 " (choose another format with --override)");
        }
        t.packed = true;
        t.out_dtype = DType::kU8;
        t.out_shape = {t.n, static_cast<int64_t>(RowBytes(*t.format, t.k))};
        t.out_bytes = static_cast<uint64_t>(t.n) * RowBytes(*t.format, t.k);
      }
    }
    plan.tensors.push_back(std::move(t));
  }
  for (size_t o = 0; o < options.overrides.size(); ++o) {
    if (!override_used[o]) {
      return InvalidArgument("--override '" + options.overrides[o].first + "' matches no weight tensor of " +
                             model_dir + " (globs match full names, e.g. 'model.layers.0.*')");
    }
  }
  plan.tied_lm_head = plan.config.text.tie_word_embeddings;

  // Module order, layers ascending: what a layer-by-layer calibrated pass needs.
  std::stable_sort(plan.tensors.begin(), plan.tensors.end(), [](const PlannedTensor& a, const PlannedTensor& b) {
    if (a.component != b.component) return a.component < b.component;
    if (a.layer != b.layer) {
      // Tensors outside the layers (embeddings before, final norms after) keep
      // their place relative to the layers by name: "embeddings"/"pre_" first.
      auto key = [](const PlannedTensor& t) {
        if (t.layer >= 0) return static_cast<int64_t>(t.layer);
        const bool before = t.name.find("embeddings") != std::string::npos || t.name.find("pre_") != std::string::npos;
        return before ? int64_t{-1} : int64_t{1} << 40;
      };
      return key(a) < key(b);
    }
    return a.source_index < b.source_index;
  });
  for (size_t i = 0; i < plan.tensors.size(); ++i) {
    const PlannedTensor& t = plan.tensors[i];
    if (plan.units.empty() || plan.units.back().component != t.component || plan.units.back().layer != t.layer) {
      plan.units.push_back({t.component, t.layer, i, 0});
    }
    ++plan.units.back().count;
  }

  // Shards in order, split like save_pretrained: start a new one when the next
  // tensor would pass the limit.
  std::vector<uint64_t> shard_bytes;
  for (PlannedTensor& t : plan.tensors) {
    if (shard_bytes.empty() || (shard_bytes.back() > 0 && shard_bytes.back() + t.out_bytes > options.max_shard_bytes)) {
      shard_bytes.push_back(0);
    }
    t.shard = shard_bytes.size() - 1;
    shard_bytes.back() += t.out_bytes;
    plan.output_bytes += t.out_bytes;
  }
  plan.shard_bytes = shard_bytes;
  for (size_t s = 0; s < shard_bytes.size(); ++s) {
    plan.shard_files.push_back(shard_bytes.size() == 1 ? "model.safetensors" : ShardName(s, shard_bytes.size()));
  }
  for (const auto& [c, spec] : defaults) {
    if (c == Component::kLmHead && plan.tied_lm_head) continue;
    plan.component_formats.emplace_back(ComponentName(c), *spec);
  }
  return plan;
}

}  // namespace bitlens::quant
