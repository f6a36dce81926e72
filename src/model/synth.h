// model/synth: writes a random-weight checkpoint in the exact Hugging Face
// layout of a preset (config.json, safetensors shards + index, tokenizer,
// generation and processor configs) — streamed in bounded chunks, into
// DIR.tmp, renamed to DIR only when complete.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "formats/hf_config.h"
#include "model/presets.h"
#include "model/synth_layout.h"

namespace bitlens {

struct SynthProgress {
  uint64_t bytes_done = 0;   // tensor bytes written so far
  uint64_t bytes_total = 0;
  size_t shard = 0;          // 0-based shard being written
  size_t num_shards = 0;
};

struct SynthOptions {
  std::optional<SynthFamily> family;  // may be omitted for real-shape presets
  std::string preset = "tiny";
  std::optional<DType> dtype;         // default: the preset's (tiny f32, real shapes bf16/f16)
  uint64_t seed = 0;
  HfLayout layout = HfLayout::kV4;
  uint64_t max_shard_bytes = 2'000'000'000;  // "2GB" as transformers counts it
  std::string output_dir;
  bool overwrite = false;                    // replace an existing output_dir
  const std::atomic<bool>* cancel = nullptr;  // set (e.g. by SIGINT) to stop; nothing is left behind
  std::function<void(const SynthProgress&)> on_progress;  // called every few MB
};

struct SynthShard {
  std::string file;             // model.safetensors or model-0000i-of-0000n.safetensors
  std::vector<size_t> tensors;  // indices into SynthPlan::tensors
  uint64_t bytes = 0;           // tensor bytes (headers excluded)
};

// Everything Synthesize will write, computed without writing.
struct SynthPlan {
  SynthPreset preset;
  DType dtype = DType::kF32;
  HfLayout layout = HfLayout::kV4;
  uint64_t seed = 0;
  std::string config_json;
  ModelConfig config;  // config_json parsed back by ParseModelConfig
  std::vector<TensorSpec> tensors;
  std::vector<SynthShard> shards;
  int64_t total_params = 0;
  uint64_t total_bytes = 0;  // tensor bytes
};

Result<SynthPlan> PlanSynth(const SynthOptions& options);

struct SynthResult {
  std::string output_dir;
  std::vector<std::string> files;  // relative to output_dir
  uint64_t bytes_written = 0;      // all files, headers and JSON included
  int64_t total_params = 0;
};

Result<SynthResult> Synthesize(const SynthOptions& options);

// Parses "2GB", "500MB", "1.5GiB", "4096" (bytes) as transformers'
// max_shard_size does (GB = 10^9, GiB = 2^30).
Result<uint64_t> ParseByteSize(const std::string& text);
std::optional<DType> SynthDTypeFromName(const std::string& name);  // f32 | bf16 | f16

}  // namespace bitlens
