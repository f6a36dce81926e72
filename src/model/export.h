// model/export: what goes into a .blz file and how a Model comes back out of
// one. Export writes every checkpoint tensor in the layout the kernels read
// (packed rows as they are, small float vectors widened to F32 so they are
// used in place too), the side files verbatim, and the memory plan for the
// chosen context. Loading maps the file and binds the weights in place.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "formats/blz.h"
#include "formats/hf_config.h"

namespace bitlens {

struct Model;

// Activation memory for one session at `max_context` positions (f32 KV cache
// plus the per-row decode scratch the Session allocates), planned at export.
struct MemoryPlan {
  int64_t max_context = 0;
  uint64_t kv_cache_bytes = 0;
  uint64_t decode_scratch_bytes = 0;
  uint64_t arena_bytes = 0;  // kv_cache_bytes + decode_scratch_bytes
};
MemoryPlan PlanMemory(const ModelConfig& config, int64_t max_context);

struct ExportOptions {
  std::string model_dir;  // float or quantized checkpoint folder
  std::string output;     // .blz path
  blz::Target target = blz::Target::kX86Avx2;
  int64_t max_context = 4096;  // clamped to max_position_embeddings
  bool progress = true;        // progress bar on stderr
};

struct ExportComponent {
  std::string name;  // "vision", "projector", "embeddings", "decoder", "lm_head", "side files", "tables"
  uint64_t bytes = 0;
  int64_t tensors = 0;
};

struct ExportResult {
  std::string output;
  std::string target;
  uint64_t file_bytes = 0;
  bool quantized = false;
  MemoryPlan plan;
  std::vector<ExportComponent> components;
  double seconds = 0;
};

// Loads `model_dir` (validating every tensor), then writes options.output
// atomically (temporary name, then rename).
Result<ExportResult> ExportBlz(const ExportOptions& options);
// Writes options.output as an ExecuTorch program (.pte): the model's .blz
// image is the BitlensBackend delegate blob of every compute method.
Result<ExportResult> ExportPte(const ExportOptions& options);
// The per-component size table printed by `bitlens export`.
std::string FormatExportSummary(const ExportResult& result);

// Maps a .blz file and builds the Model: the target must be of this build's
// ISA family; every tensor is validated against config.json and its
// quantization_config before use; weights are views into the mapping.
Result<std::unique_ptr<Model>> LoadBlzModel(const std::string& path);
// The same for a parsed image (a .blz file, or the image inside a .pte).
Result<std::unique_ptr<Model>> LoadBlzModel(const std::shared_ptr<blz::BlzFile>& file);
// Maps a .pte written by ExportPte, validates it, and builds the Model from
// the BitlensBackend delegate's .blz image in place (weights stay views into
// the .pte mapping).
Result<std::unique_ptr<Model>> LoadPteModel(const std::string& path);

// Resident set size of this process in bytes (0 where unknown).
uint64_t ResidentBytes();

}  // namespace bitlens
