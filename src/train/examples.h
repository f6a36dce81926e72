// train/examples: a synthetic VqaSample turned into the token sequence and
// pixel values the VLM trains on, exactly as `bitlens run` would present the
// same question: LLaVA-1.5 chat turn, BOS, image placeholder expanded, and
// the processor's pixel_values.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"
#include "formats/hf_config.h"
#include "tokenizer/tokenizer.h"
#include "train/data/vqa_data.h"
#include "train/vlm.h"
#include "vision/image.h"

namespace bitlens::train {

// What the examples need besides the sample: the trained tokenizer (loaded
// from its folder as the runtime loads it), the model config (image token,
// image_seq_length) and the checkpoint's image processor settings.
struct ExampleContext {
  const Tokenizer* tokenizer = nullptr;
  const ModelConfig* config = nullptr;
  ImageProcessorConfig image_processor;
  int32_t eos_id = 2;
};

// Sequence layout, for sample (question Q, answer A):
//   ids     = Encode("USER: <image>\nQ ASSISTANT:", add_bos as the tokenizer says)
//             with <image> expanded to image_seq_length copies,
//             then Encode(" A") and </s>
//   targets = ids[t + 1] where ids[t + 1] is an answer token or </s>, else -100.
// The prompt half is byte for byte what Session::TokenizePrompt produces for
// `bitlens run --image ... --prompt Q`, so greedy decoding continues with " A</s>".
Result<VlmExample> BuildExample(const VqaSample& sample, const ExampleContext& context);

// The image half alone: pixel_values [3, size, size] of the checkpoint's processor.
Result<std::vector<float>> SamplePixels(const Image& image, const ImageProcessorConfig& config);

// The LLaVA-1.5 user turn for `question` (with the "<image>" placeholder).
std::string ChatPrompt(const std::string& question);

}  // namespace bitlens::train
