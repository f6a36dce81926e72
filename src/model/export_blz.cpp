// model/export_blz: `bitlens export --to blz`. Validates the checkpoint by
// loading it, then streams every tensor into the container in the kernels'
// layout with the side files and the memory plan in the metadata.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>

#include <nlohmann/json.hpp>

#include "base/f16.h"
#include "base/mmap_file.h"
#include "base/progress.h"
#include "model/export.h"
#include "model/model.h"
#include "quant/formats.h"

namespace bitlens {
namespace {

namespace fs = std::filesystem;

// Side files embedded verbatim when the folder has them (config.json always).
constexpr const char* kSideFiles[] = {
    "config.json",          "generation_config.json", "preprocessor_config.json", "tokenizer.json",
    "tokenizer.model",      "tokenizer_config.json",  "special_tokens_map.json",  "added_tokens.json",
    "vocab.json",           "merges.txt",             "chat_template.json",       "chat_template.jinja",
};

std::string ComponentOf(const std::string& name) {
  if (name.find("vision_tower") != std::string::npos) return "vision";
  if (name.find("multi_modal_projector") != std::string::npos) return "projector";
  if (name.find("embed_tokens") != std::string::npos) return "embeddings";
  if (name.find("lm_head") != std::string::npos) return "lm_head";
  return "decoder";
}

std::string Bytes(uint64_t b) {
  char buf[32];
  if (b >= (uint64_t{1} << 30)) std::snprintf(buf, sizeof(buf), "%.2f GiB", static_cast<double>(b) / (1 << 30));
  else if (b >= (uint64_t{1} << 20)) std::snprintf(buf, sizeof(buf), "%.2f MiB", static_cast<double>(b) / (1 << 20));
  else if (b >= 1024) std::snprintf(buf, sizeof(buf), "%.1f KiB", static_cast<double>(b) / 1024);
  else std::snprintf(buf, sizeof(buf), "%llu B", static_cast<unsigned long long>(b));
  return buf;
}

bool IsHalf(DType t) { return t == DType::kF16 || t == DType::kBF16; }

}  // namespace

MemoryPlan PlanMemory(const ModelConfig& config, int64_t max_context) {
  const TextConfig& t = config.text;
  MemoryPlan p;
  p.max_context = std::max<int64_t>(1, std::min(max_context, t.max_position_embeddings));
  const uint64_t kv_dim = static_cast<uint64_t>(t.num_key_value_heads * t.head_dim);
  const uint64_t q_dim = static_cast<uint64_t>(t.num_attention_heads * t.head_dim);
  p.kv_cache_bytes = 2ull * static_cast<uint64_t>(t.num_hidden_layers) * static_cast<uint64_t>(p.max_context) * kv_dim *
                     sizeof(float);
  // One decode row: residual, normed input, q, k, v, attention output,
  // gate/up/down activations, the logits, and one row of attention scores.
  const uint64_t floats = 4ull * static_cast<uint64_t>(t.hidden_size) + q_dim * 2 + kv_dim * 2 +
                          3ull * static_cast<uint64_t>(t.intermediate_size) + static_cast<uint64_t>(t.vocab_size) +
                          static_cast<uint64_t>(t.num_attention_heads * p.max_context);
  p.decode_scratch_bytes = floats * sizeof(float);
  p.arena_bytes = p.kv_cache_bytes + p.decode_scratch_bytes;
  return p;
}

Result<ExportResult> ExportBlz(const ExportOptions& o) {
  const auto start = std::chrono::steady_clock::now();
  std::error_code ec;
  if (!fs::is_directory(o.model_dir, ec)) {
    return NotFound("--model " + o.model_dir + ": not a checkpoint folder (config.json and *.safetensors)");
  }
  if (o.output.empty()) return InvalidArgument("-o: an output .blz path is required");
  if (o.max_context <= 0) return InvalidArgument("--max-context " + std::to_string(o.max_context) + " must be positive");
  // Loading binds and checks every tensor the runtime will use, so a broken
  // checkpoint fails here instead of in the exported file.
  BL_ASSIGN_OR_RETURN(std::unique_ptr<Model> model, LoadModel(o.model_dir));

  ExportResult result;
  result.output = o.output;
  result.target = std::string(blz::TargetName(o.target));
  result.plan = PlanMemory(model->config, o.max_context);
  blz::BlzWriter writer(o.output, o.target);

  std::map<std::string, ExportComponent> components;
  std::vector<std::string> embedded;
  for (const char* name : kSideFiles) {
    const fs::path p = fs::path(o.model_dir) / name;
    if (!fs::is_regular_file(p, ec)) continue;
    BL_ASSIGN_OR_RETURN(std::string bytes, ReadTextFile(p.string()));
    components["side files"].bytes += bytes.size();
    components["side files"].tensors += 1;
    embedded.push_back(name);
    writer.AddFile(name, std::move(bytes));
  }

  // Tensor plan: packed rows as stored (already the kernels' layout); 1-D
  // half vectors (norms, biases) widened to F32 so they too are used in place.
  struct Item {
    std::string name;
    Tensor source;
    bool widen = false;
  };
  std::vector<Item> items;
  uint64_t total = 0;
  const Checkpoint& ckpt = model->checkpoint;
  for (const std::string& name : ckpt.Names()) {
    const TensorEntry* e = ckpt.Find(name);
    BL_ASSIGN_OR_RETURN(Tensor t, ckpt.Get(name));
    Item item{name, t, false};
    uint64_t nbytes = t.nbytes();
    if (const quant::QuantizedTensor* q = model->quantization.Find(name)) {
      const uint64_t expect = static_cast<uint64_t>(q->n) * q->row_bytes();
      if (e->dtype != DType::kU8 || nbytes != expect) {
        return InvalidArgument(ckpt.FileOf(name) + ": '" + name + "' does not hold " + std::to_string(expect) +
                               " packed bytes for " + q->format->name);
      }
      writer.DeclareTensor(name, q->format->name, true, {q->n, q->k}, nbytes);
      result.quantized = true;
    } else if (t.rank() == 1 && IsHalf(e->dtype)) {
      item.widen = true;
      nbytes = static_cast<uint64_t>(t.numel()) * sizeof(float);
      writer.DeclareTensor(name, "F32", false, t.shape(), nbytes);
    } else {
      writer.DeclareTensor(name, std::string(DTypeName(e->dtype)), false, t.shape(), nbytes);
    }
    ExportComponent& c = components[ComponentOf(name)];
    c.bytes += nbytes;
    c.tensors += 1;
    total += nbytes;
    items.push_back(std::move(item));
  }
  writer.SetFlags(result.quantized ? blz::kFlagQuantized : 0);

  nlohmann::ordered_json md;
  md["format"] = "blz";
  md["format_version"] = blz::kFormatVersion;
  md["producer"] = "bitlens export";
  md["source"] = fs::path(o.model_dir).lexically_normal().filename().string();
  md["target"] = result.target;
  md["model_type"] = model->config.model_type;
  md["vlm"] = model->config.is_vlm();
  md["quantized"] = result.quantized;
  md["memory_plan"] = {{"max_context", result.plan.max_context},
                       {"kv_cache_bytes", result.plan.kv_cache_bytes},
                       {"decode_scratch_bytes", result.plan.decode_scratch_bytes},
                       {"arena_bytes", result.plan.arena_bytes}};
  md["generation"] = {{"bos_id", model->bos_id}, {"eos_ids", model->eos_ids}};
  md["files"] = embedded;
  nlohmann::ordered_json sizes = nlohmann::ordered_json::object();
  for (const auto& [name, c] : components) sizes[name] = {{"bytes", c.bytes}, {"tensors", c.tensors}};
  md["components"] = sizes;
  writer.SetMetadataJson(md.dump(2));

  BL_TRY(writer.Begin());
  ProgressBar bar("export", std::max<uint64_t>(total, 1));
  uint64_t done = 0;
  constexpr size_t kChunk = size_t{64} << 20;
  std::vector<float> widened;
  for (const Item& it : items) {
    const uint8_t* p = static_cast<const uint8_t*>(it.source.data());
    size_t n = it.source.nbytes();
    if (it.widen) {
      widened.resize(static_cast<size_t>(it.source.numel()));
      if (it.source.dtype() == DType::kF16) F16ToF32(it.source.data_as<uint16_t>(), widened.data(), widened.size());
      else Bf16ToF32(it.source.data_as<uint16_t>(), widened.data(), widened.size());
      p = reinterpret_cast<const uint8_t*>(widened.data());
      n = widened.size() * sizeof(float);
    }
    for (size_t off = 0; off < n || (n == 0 && off == 0); off += kChunk) {
      const size_t len = std::min(kChunk, n - off);
      BL_TRY(writer.WritePart(p + off, len));
      done += len;
      if (o.progress) bar.Update(done, it.name);
      if (n == 0) break;
    }
  }
  BL_TRY(writer.Finish());
  if (o.progress) bar.Finish(Bytes(writer.file_size()));

  result.file_bytes = writer.file_size();
  uint64_t accounted = 0;
  for (const auto& [name, c] : components) {
    result.components.push_back(c);
    result.components.back().name = name;
    accounted += c.bytes;
  }
  result.components.push_back({"tables+padding", result.file_bytes - std::min(accounted, result.file_bytes), 0});
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

std::string FormatExportSummary(const ExportResult& r) {
  std::string s;
  char line[512];
  std::snprintf(line, sizeof(line), "%s: %s, target %s%s, max context %lld (arena %s)\n", r.output.c_str(),
                Bytes(r.file_bytes).c_str(), r.target.c_str(), r.quantized ? ", quantized" : "",
                static_cast<long long>(r.plan.max_context), Bytes(r.plan.arena_bytes).c_str());
  s += line;
  std::snprintf(line, sizeof(line), "  %-16s %8s %12s %7s\n", "component", "tensors", "bytes", "share");
  s += line;
  for (const auto& c : r.components) {
    const double share = r.file_bytes ? 100.0 * static_cast<double>(c.bytes) / static_cast<double>(r.file_bytes) : 0;
    std::snprintf(line, sizeof(line), "  %-16s %8lld %12s %6.1f%%\n", c.name.c_str(), static_cast<long long>(c.tensors),
                  Bytes(c.bytes).c_str(), share);
    s += line;
  }
  return s;
}

}  // namespace bitlens
