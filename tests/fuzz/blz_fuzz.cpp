// Fuzz target: the .blz container parser must reject any byte string cleanly
// (a Status, never a crash or an out-of-bounds read), and whatever it
// accepts must lie inside the buffer with tensor data 4096-aligned.
#include <cstddef>
#include <cstdint>

#include "formats/blz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto contents = bitlens::blz::Parse(data, size);
  if (contents.ok()) {
    for (const auto& s : contents->sections) {
      if (s.offset > size || s.size > size - s.offset) __builtin_trap();
    }
    for (const auto& t : contents->tensors) {
      if (t.offset % bitlens::blz::kTensorAlignment != 0) __builtin_trap();
      if (t.offset > size || t.nbytes > size - t.offset) __builtin_trap();
    }
    uint64_t sum = 0;  // touch every accepted metadata byte
    for (char c : contents->metadata_json) sum += static_cast<uint8_t>(c);
    if (sum == 1) return 1;
  }
  return 0;
}
