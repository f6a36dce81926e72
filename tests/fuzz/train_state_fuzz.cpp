// Fuzz target: the train_state reader must turn any byte string into a state
// or a one-line Status naming the source — never a crash or a huge
// allocation — and a state it accepts must be self-consistent and re-serialize
// to the very same bytes.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "train/train_state.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace bitlens::train;
  auto state = ParseTrainState(data, size, "state.bin");
  if (!state.ok()) {
    const std::string& m = state.status().message();
    if (m.rfind("state.bin: ", 0) != 0 || m.find('\n') != std::string::npos) __builtin_trap();
    return 0;
  }
  const int64_t n = state->NumElements();
  if (n < 0 || static_cast<int64_t>(state->values.size()) != n || static_cast<int64_t>(state->adam_m.size()) != n ||
      static_cast<int64_t>(state->adam_v.size()) != n) {
    __builtin_trap();
  }
  // Re-serializing what was read gives a file the reader accepts with the same contents.
  const std::string again = SerializeTrainState(*state);
  auto back = ParseTrainState(reinterpret_cast<const uint8_t*>(again.data()), again.size(), "state.bin");
  if (!back.ok() || back->step != state->step || back->values.size() != state->values.size() ||
      back->tokenizer_json != state->tokenizer_json || back->log_jsonl != state->log_jsonl) {
    __builtin_trap();
  }
  if (!state->values.empty() &&
      std::memcmp(back->values.data(), state->values.data(), state->values.size() * sizeof(float)) != 0) {
    __builtin_trap();
  }
  return 0;
}
