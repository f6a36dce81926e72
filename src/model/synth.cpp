// model/synth: plan (shapes, shards) and the streamed, atomic write of a
// random-weight checkpoint. Peak memory is one chunk of values (a few MB)
// plus the tensor list, whatever the model size.
#include "model/synth.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <cstdio>
#include <filesystem>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/f16.h"
#include "base/log.h"
#include "base/staging_dir.h"
#include "formats/safetensors.h"
#include "model/synth_config.h"
#include "model/synth_random.h"
#include "model/synth_tokenizer.h"

namespace bitlens {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr size_t kChunkElements = size_t{1} << 20;  // 4 MiB of f32 per chunk
constexpr uint64_t kProgressEveryBytes = 64u << 20;
constexpr float kInitStd = 0.02f;  // transformers' initializer_range

std::string ShardName(size_t i, size_t n) {
  if (n == 1) return "model.safetensors";
  char buf[64];
  std::snprintf(buf, sizeof(buf), "model-%05zu-of-%05zu.safetensors", i + 1, n);
  return buf;
}

Status WriteTextFile(const fs::path& path, const std::string& text, uint64_t* bytes) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return IoError(path.string() + ": cannot open for writing");
  const bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  if (std::fclose(f) != 0 || !ok) return IoError(path.string() + ": write failed (disk full?)");
  *bytes += text.size();
  return Status::Ok();
}

bool IsCancelled(const SynthOptions& o) { return o.cancel != nullptr && o.cancel->load(std::memory_order_relaxed); }

// Streams one tensor's values: N(0, 0.02) weights, ones, or zeros.
class TensorFiller {
 public:
  explicit TensorFiller(DType dtype) : dtype_(dtype), values_(kChunkElements), bytes_(kChunkElements * 4) {}

  Status Write(const TensorSpec& spec, uint64_t seed, const SynthOptions& options, SafetensorsWriter* writer,
               SynthProgress* progress) {
    NormalStream stream(seed, spec.name);
    const size_t count = static_cast<size_t>(NumElements(spec.shape));
    if (count == 0) return writer->WritePart(nullptr, 0);  // completes a zero-size tensor
    for (size_t done = 0; done < count;) {
      if (IsCancelled(options)) return Cancelled("interrupted");
      const size_t n = std::min(kChunkElements, count - done);
      switch (spec.init) {
        case TensorInit::kNormal: stream.Fill(values_.data(), n, kInitStd); break;
        case TensorInit::kOnes: std::fill_n(values_.data(), n, 1.0f); break;
        case TensorInit::kZeros: std::fill_n(values_.data(), n, 0.0f); break;
      }
      const size_t nbytes = n * DTypeSize(dtype_);
      if (dtype_ == DType::kF32) {
        std::memcpy(bytes_.data(), values_.data(), nbytes);
      } else {
        auto* out = reinterpret_cast<uint16_t*>(bytes_.data());
        if (dtype_ == DType::kBF16) {
          for (size_t i = 0; i < n; ++i) out[i] = F32ToBf16(values_[i]);
        } else {
          for (size_t i = 0; i < n; ++i) out[i] = F32ToF16(values_[i]);
        }
      }
      BL_TRY(writer->WritePart(bytes_.data(), nbytes));
      done += n;
      const uint64_t before = progress->bytes_done;
      progress->bytes_done += nbytes;
      if (options.on_progress && (before / kProgressEveryBytes != progress->bytes_done / kProgressEveryBytes)) {
        options.on_progress(*progress);
      }
    }
    return Status::Ok();
  }

 private:
  DType dtype_;
  std::vector<float> values_;
  std::vector<uint8_t> bytes_;
};

Status WriteShard(const SynthPlan& plan, const SynthShard& shard, const fs::path& dir, const SynthOptions& options,
                  SynthProgress* progress, uint64_t* bytes_written) {
  const fs::path path = dir / shard.file;
  SafetensorsWriter writer(path.string());
  writer.SetMetadata("format", "pt");  // as torch's save_pretrained marks its files
  // Extra string metadata is allowed by the format and ignored by transformers;
  // it tells `inspect` (and people) that these weights are random.
  writer.SetMetadata("bitlens.synth", "preset=" + plan.preset.name + " family=" +
                                          std::string(SynthFamilyName(plan.preset.family)) +
                                          " seed=" + std::to_string(plan.seed));
  for (size_t i : shard.tensors) writer.Declare(plan.tensors[i].name, plan.dtype, plan.tensors[i].shape);
  BL_TRY(writer.Begin());
  TensorFiller filler(plan.dtype);
  for (size_t i : shard.tensors) BL_TRY(filler.Write(plan.tensors[i], plan.seed, options, &writer, progress));
  BL_TRY(writer.Finish());
  std::error_code ec;
  *bytes_written += fs::file_size(path, ec);
  return Status::Ok();
}

std::string IndexJson(const SynthPlan& plan) {
  json map = json::object();
  for (const auto& shard : plan.shards) {
    for (size_t i : shard.tensors) map[plan.tensors[i].name] = shard.file;
  }
  json meta = {{"total_size", plan.total_bytes}};
  if (plan.layout != HfLayout::kV4) meta["total_parameters"] = plan.total_params;
  return json({{"metadata", meta}, {"weight_map", map}}).dump(2) + "\n";
}

Status WriteAll(const SynthPlan& plan, const SynthOptions& options, const fs::path& dir, SynthResult* result) {
  uint64_t& bytes = result->bytes_written;
  auto text_file = [&](const std::string& name, const std::string& text) -> Status {
    if (text.empty()) return Status::Ok();
    BL_TRY(WriteTextFile(dir / name, text, &bytes));
    result->files.push_back(name);
    return Status::Ok();
  };
  const SynthPreset& p = plan.preset;
  BL_TRY(text_file("config.json", plan.config_json));
  BL_TRY(text_file("generation_config.json", SynthGenerationConfigJson(p, plan.layout)));
  BL_ASSIGN_OR_RETURN(std::string tokenizer, SynthTokenizerJson(p.tokenizer, plan.config.text.vocab_size));
  BL_TRY(text_file("tokenizer.json", tokenizer));
  BL_TRY(text_file("tokenizer_config.json", SynthTokenizerConfigJson(p.tokenizer, plan.config.text.max_position_embeddings)));
  BL_TRY(text_file("preprocessor_config.json", SynthPreprocessorConfigJson(p)));
  BL_TRY(text_file("processor_config.json", SynthProcessorConfigJson(p)));

  SynthProgress progress;
  progress.bytes_total = plan.total_bytes;
  progress.num_shards = plan.shards.size();
  for (size_t s = 0; s < plan.shards.size(); ++s) {
    progress.shard = s;
    BL_TRY(WriteShard(plan, plan.shards[s], dir, options, &progress, &bytes));
    result->files.push_back(plan.shards[s].file);
  }
  if (options.on_progress) options.on_progress(progress);
  if (plan.shards.size() > 1) BL_TRY(text_file("model.safetensors.index.json", IndexJson(plan)));
  return Status::Ok();
}

}  // namespace

std::optional<DType> SynthDTypeFromName(const std::string& name) {
  if (name == "f32" || name == "float32") return DType::kF32;
  if (name == "bf16" || name == "bfloat16") return DType::kBF16;
  if (name == "f16" || name == "float16") return DType::kF16;
  return std::nullopt;
}

Result<uint64_t> ParseByteSize(const std::string& text) {
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  if (end == text.c_str()) return InvalidArgument("'" + text + "' is not a size (e.g. 2GB, 500MB, 1GiB)");
  const std::string unit(end);
  double scale = 1;
  if (unit.empty() || unit == "B") scale = 1;
  else if (unit == "KB") scale = 1e3;
  else if (unit == "MB") scale = 1e6;
  else if (unit == "GB") scale = 1e9;
  else if (unit == "KiB") scale = 1024.0;
  else if (unit == "MiB") scale = 1024.0 * 1024;
  else if (unit == "GiB") scale = 1024.0 * 1024 * 1024;
  else return InvalidArgument("'" + text + "': unknown unit '" + unit + "' (B, KB, MB, GB, KiB, MiB, GiB)");
  const double bytes = value * scale;
  if (!(bytes >= 1) || bytes > 1e15) return InvalidArgument("'" + text + "' is not a sensible shard size");
  return static_cast<uint64_t>(bytes);
}

Result<SynthPlan> PlanSynth(const SynthOptions& options) {
  SynthPlan plan;
  BL_ASSIGN_OR_RETURN(plan.preset, FindSynthPreset(options.family, options.preset));
  plan.dtype = options.dtype.value_or(plan.preset.default_dtype);
  plan.layout = options.layout;
  plan.seed = options.seed;
  plan.config_json = SynthConfigJson(plan.preset, plan.dtype, plan.layout);
  // Shapes come from config.json as a loader reads it, so what is written
  // and what config.json says cannot drift apart.
  auto parsed = ParseModelConfig(plan.config_json, "synthesized config.json");
  if (!parsed.ok()) return Internal(parsed.status().message());
  plan.config = std::move(parsed).value();
  BL_ASSIGN_OR_RETURN(plan.tensors, HfTensorLayout(plan.config, plan.layout));
  if (options.max_shard_bytes == 0) return InvalidArgument("max shard size must be positive");

  // transformers' sharding: tensors in module order; a new shard starts when
  // the next tensor would push the current one over the limit.
  std::vector<SynthShard> shards;
  for (size_t i = 0; i < plan.tensors.size(); ++i) {
    const int64_t n = NumElements(plan.tensors[i].shape);
    const uint64_t bytes = static_cast<uint64_t>(n) * DTypeSize(plan.dtype);
    if (shards.empty() || (shards.back().bytes > 0 && shards.back().bytes + bytes > options.max_shard_bytes)) {
      shards.emplace_back();
    }
    shards.back().tensors.push_back(i);
    shards.back().bytes += bytes;
    plan.total_params += n;
    plan.total_bytes += bytes;
  }
  for (size_t s = 0; s < shards.size(); ++s) shards[s].file = ShardName(s, shards.size());
  plan.shards = std::move(shards);
  return plan;
}

Result<SynthResult> Synthesize(const SynthOptions& options) {
  BL_ASSIGN_OR_RETURN(SynthPlan plan, PlanSynth(options));
  std::string out = options.output_dir;
  while (out.size() > 1 && out.back() == '/') out.pop_back();
  if (out.empty()) return InvalidArgument("no output directory given (-o DIR)");
  const fs::path final_dir(out);
  std::error_code ec;
  if (fs::exists(final_dir, ec) && !options.overwrite) {
    return InvalidArgument(out + ": already exists (choose another -o or pass --force to replace it)");
  }
  BL_ASSIGN_OR_RETURN(std::unique_ptr<StagingDir> staging, StagingDir::Create(final_dir));
  const fs::path& tmp = staging->path();

  SynthResult result;
  result.total_params = plan.total_params;
  BL_TRY(WriteAll(plan, options, tmp, &result));
  if (IsCancelled(options)) return Cancelled("interrupted");

  BL_TRY(staging->Commit());
  result.output_dir = out;
  return result;
}

}  // namespace bitlens
