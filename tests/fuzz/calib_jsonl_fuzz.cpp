// Fuzz target: any byte string is either a list of calibration samples or one
// InvalidArgument naming the file — never a crash or hang — and every accepted
// sample has something to tokenize.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "quant/calib_jsonl.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace bitlens;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto samples = quant::ParseCalibJsonl(text, "calib.jsonl", "dir");
  if (!samples.ok()) {
    if (samples.status().code() != StatusCode::kInvalidArgument) __builtin_trap();
    if (samples.status().message().rfind("calib.jsonl", 0) != 0) __builtin_trap();  // errors name the file
    return 0;
  }
  if (samples->empty()) __builtin_trap();
  int64_t last_line = 0;
  for (const quant::CalibSample& s : *samples) {
    if (s.line <= last_line) __builtin_trap();
    last_line = s.line;
    if (s.prompt.empty() && s.image.empty() && !s.answer) __builtin_trap();
  }
  return 0;
}
