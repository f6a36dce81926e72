// Fuzz target: the safetensors header parser must reject any byte string
// cleanly (a Status, never a crash or out-of-bounds read).
#include <cstddef>
#include <cstdint>

#include "formats/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::map<std::string, std::string> metadata;
  auto entries = bitlens::SafetensorsFile::ParseHeader(data, size, &metadata);
  if (entries.ok()) {
    // Every accepted entry must lie inside the buffer.
    for (const auto& e : *entries) {
      if (e.end < e.begin) __builtin_trap();
    }
  }
  return 0;
}
