// train/train_state: the resumable state of `bitlens train` (step, fp32
// parameters, AdamW moments, the tokenizer, the recipe and the log so far) in
// one versioned, checksummed file, and its strict reader.
//
// Byte layout (little-endian):
//   header, 32 bytes:
//     0  char[8] magic "BLTSTATE"
//     8  u32     version (kTrainStateVersion; a reader refuses newer files)
//     12 u32     section_count (≤ kMaxSections)
//     16 u64     file_bytes (the whole file; a shorter file is truncated)
//     24 u32     CRC-32 (zlib polynomial) of the section table
//     28 u32     reserved, 0
//   section table, section_count × 32 bytes:
//     0  u32 kind      (TrainStateSection; unknown kinds are skipped, so later
//                       versions may append sections)
//     4  u32 reserved, 0
//     8  u64 offset    (from the start of the file)
//     16 u64 bytes
//     24 u32 CRC-32 of the payload
//     28 u32 reserved, 0
//   payloads: kMeta is JSON {"step", "optimizer_step", "seconds", "tokens",
//   "tensors": [{"name", "shape"}]}; kRecipe/kTokenizer are JSON text, kLog is
//   JSONL; kValues/kAdamM/kAdamV are f32 arrays of Σ numel(tensors) values each,
//   tensors concatenated in the meta's order.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"

namespace bitlens::train {

inline constexpr uint32_t kTrainStateVersion = 1;
inline constexpr uint32_t kMaxSections = 64;

enum class TrainStateSection : uint32_t {
  kMeta = 1,
  kRecipe = 2,
  kTokenizer = 3,
  kLog = 4,
  kValues = 5,
  kAdamM = 6,
  kAdamV = 7,
};

struct TrainStateTensor {
  std::string name;
  std::vector<int64_t> shape;
};

struct TrainState {
  int64_t step = 0;            // optimizer steps done
  int64_t optimizer_step = 0;  // AdamW's own step counter (bias correction)
  double seconds = 0;          // training wall time so far
  int64_t tokens = 0;          // tokens processed so far
  std::string recipe_json;     // the recipe the run started with
  std::string tokenizer_json;  // the trained tokenizer.json
  std::string log_jsonl;       // train_log.jsonl lines so far
  std::vector<TrainStateTensor> tensors;
  std::vector<float> values, adam_m, adam_v;  // Σ numel each, tensors concatenated

  int64_t NumElements() const;
};

// CRC-32 (IEEE 802.3 / zlib) of bytes.
uint32_t Crc32(const uint8_t* data, size_t size, uint32_t crc = 0);

// The file's bytes.
std::string SerializeTrainState(const TrainState& state);
// Writes `path` atomically (path.tmp, then rename).
Status WriteTrainState(const TrainState& state, const std::string& path);

// Validates every size, offset and checksum before use; any defect is one
// InvalidArgument line starting with `source` (or Unsupported for a newer version).
Result<TrainState> ParseTrainState(const uint8_t* data, size_t size, const std::string& source);
Result<TrainState> ReadTrainState(const std::string& path);

}  // namespace bitlens::train
