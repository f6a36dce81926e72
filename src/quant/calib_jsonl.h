// quant/calib_jsonl: the calibration file of `bitlens quantize --calib FILE`.
// One JSON object per line: {"image": path?, "prompt": text, "answer": text?};
// image paths are relative to the file's directory. Blank lines are skipped.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace bitlens::quant {

struct CalibSample {
  std::string image;                  // resolved path; empty when the line has no image
  std::string prompt;                 // the user turn
  std::optional<std::string> answer;  // appended after the assistant prompt when present
  int64_t line = 0;                   // 1-based line in the file, for messages
};

// Parses `text` (the file's bytes). `name` prefixes every error ("calib.jsonl:3:
// 'prompt' must be a string (got number)"); image paths are joined to
// `base_dir` unless absolute. Files are not touched. InvalidArgument on any
// malformed line and when no line holds a sample.
Result<std::vector<CalibSample>> ParseCalibJsonl(std::string_view text, const std::string& name,
                                                 const std::string& base_dir);

// Reads and parses `path`, then checks that every image file exists
// (NotFound naming file:line and the image path).
Result<std::vector<CalibSample>> ReadCalibJsonl(const std::string& path);

}  // namespace bitlens::quant
