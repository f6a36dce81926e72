// train/examples: the prompt goes through tokenizer/chat_template and the
// tokenizer's own BOS rule (as runtime/session does); the answer is encoded
// separately with its leading space, which the byte-level pre-tokenizer
// splits from "ASSISTANT:" anyway, so prompt + answer tokenize as one text would.
#include "train/examples.h"

#include <algorithm>

#include "tokenizer/chat_template.h"

namespace bitlens::train {

std::string ChatPrompt(const std::string& question) {
  return FormatUserTurn(ChatFamily::kLlava15, question, /*has_image=*/true, "<image>");
}

Result<std::vector<float>> SamplePixels(const Image& image, const ImageProcessorConfig& config) {
  BL_ASSIGN_OR_RETURN(Tensor pixels, PreprocessImage(image, config));
  const float* p = pixels.data_as<float>();
  return std::vector<float>(p, p + pixels.numel());
}

Result<VlmExample> BuildExample(const VqaSample& sample, const ExampleContext& context) {
  const Tokenizer& tok = *context.tokenizer;
  const ModelConfig& cfg = *context.config;
  const int32_t image_id = static_cast<int32_t>(cfg.image_token_index);
  const int64_t image_tokens = cfg.image_seq_length();

  const std::vector<int32_t> prompt = tok.Encode(ChatPrompt(sample.question), tok.add_bos_by_default());
  const std::vector<int32_t> answer = tok.Encode(" " + sample.answer, /*add_bos=*/false);
  if (std::count(prompt.begin(), prompt.end(), image_id) != 1) {
    return InvalidArgument("question '" + sample.question + "' does not tokenize to exactly one image token");
  }
  if (std::count(answer.begin(), answer.end(), image_id) != 0 || answer.empty()) {
    return InvalidArgument("answer '" + sample.answer + "' tokenizes to an image token or nothing");
  }

  VlmExample ex;
  ex.input_ids.reserve(prompt.size() + image_tokens + answer.size() + 1);
  for (int32_t id : prompt) {
    if (id == image_id) ex.input_ids.insert(ex.input_ids.end(), image_tokens, image_id);
    else ex.input_ids.push_back(id);
  }
  const size_t answer_start = ex.input_ids.size();
  ex.input_ids.insert(ex.input_ids.end(), answer.begin(), answer.end());
  ex.input_ids.push_back(context.eos_id);
  const int64_t n = static_cast<int64_t>(ex.input_ids.size());
  if (n > cfg.text.max_position_embeddings) {
    return OutOfRange("sample '" + sample.question + "' -> '" + sample.answer + "' is " + std::to_string(n) +
                      " tokens; max_position_embeddings is " + std::to_string(cfg.text.max_position_embeddings));
  }
  // Position t predicts ids[t + 1]: scored only where that is an answer token or </s>.
  ex.targets.assign(static_cast<size_t>(n), -100);
  for (size_t t = answer_start; t < static_cast<size_t>(n); ++t) ex.targets[t - 1] = ex.input_ids[t];
  BL_ASSIGN_OR_RETURN(ex.pixel_values, SamplePixels(sample.image, context.image_processor));
  return ex;
}

}  // namespace bitlens::train
