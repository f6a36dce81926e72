// Fuzz target: the .pte (ExecuTorch program) parser must reject any byte
// string cleanly (a Status, never a crash or an out-of-bounds read), and the
// segments of whatever it accepts must lie inside the buffer.
#include <cstddef>
#include <cstdint>

#include "formats/pte.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto contents = bitlens::pte::Parse(data, size);
  if (contents.ok()) {
    for (const auto& s : contents->segments) {
      if (s.offset > size || s.size > size - s.offset) __builtin_trap();
    }
    size_t names = 0;  // touch every accepted method and delegate
    for (const auto& m : contents->methods) {
      names += m.name.size();
      for (const auto& d : m.delegates) names += d.id.size() + d.compile_specs.size();
    }
    if (names == 1) return 1;
  }
  return 0;
}
