// Fuzz target: config.json's quantization_config must parse into a config or
// a one-line Status naming the file — never a crash — and whatever it accepts
// must be usable: known formats, positive shapes, row sizes that fit, and a
// serialization that parses back to the same tensors.
#include <cstddef>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "quant/checkpoint.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace bitlens;
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto config = quant::ParseQuantizationConfig(text, "config.json");
  if (!config.ok()) {
    const std::string& m = config.status().message();
    if (m.rfind("config.json: ", 0) != 0 || m.find('\n') != std::string::npos) __builtin_trap();
    return 0;
  }
  for (const auto& [name, q] : config->tensors) {
    if (q.format == nullptr || q.n <= 0 || q.k <= 0) __builtin_trap();
    if (q.row_bytes() == 0) __builtin_trap();
  }
  nlohmann::json wrapped = nlohmann::json::object();
  wrapped["quantization_config"] = quant::QuantizationConfigToJson(*config);
  auto back = quant::ParseQuantizationConfig(wrapped.dump(), "config.json");
  if (!back.ok() && !config->tensors.empty()) __builtin_trap();
  if (back.ok()) {
    if (back->tensors.size() != config->tensors.size()) __builtin_trap();
    for (const auto& [name, q] : config->tensors) {
      const quant::QuantizedTensor* b = back->Find(name);
      if (b == nullptr || b->format != q.format || b->n != q.n || b->k != q.k) __builtin_trap();
    }
  }
  return 0;
}
