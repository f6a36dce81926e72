// Fuzz target: config.json parsing must turn any byte string into a config
// or a Status — never a crash, overflow or hang — and whatever it accepts
// must be safe to use: image token count, the transformers tensor layout in
// both spellings, and the inspect report over that layout.
#include <cstddef>
#include <cstdint>
#include <string>

#include "formats/hf_config.h"
#include "model/inspect.h"
#include "model/synth_layout.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace bitlens;
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto config = ParseModelConfig(text, "config.json");
  if (!config.ok()) {
    if (config.status().message().rfind("config.json: ", 0) != 0) __builtin_trap();  // errors name the file
    return 0;
  }
  if (config->is_vlm() && config->image_seq_length() < 0) __builtin_trap();
  for (HfLayout layout : {HfLayout::kV4, HfLayout::kV5, HfLayout::kV5Module, HfLayout::kV5Saved}) {
    auto specs = HfTensorLayout(*config, layout);
    if (!specs.ok()) continue;
    std::vector<TensorInfo> tensors;
    for (const auto& s : *specs) tensors.push_back({s.name, DType::kBF16, s.shape});
    ModelReport report = InspectTensors(*config, tensors);
    // The layout checked against itself has no differences.
    if (!report.missing.empty() || !report.unexpected.empty() || !report.wrong_shape.empty()) __builtin_trap();
    if (report.total_params < 0) __builtin_trap();
  }
  return 0;
}
