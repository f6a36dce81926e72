// tokenizer/chat_template: the chat formats of the supported families,
// written out in C++ (no template engine). Each matches the family's
// chat_template.json as rendered by transformers' apply_chat_template.
#pragma once

#include <string>
#include <string_view>

namespace bitlens {

enum class ChatFamily {
  kNone,     // raw text, no template
  kLlava15,  // "USER: <image>\n{text} ASSISTANT:"
  kPhi3,     // "<|user|>\n{text}<|end|>\n<|assistant|>\n" (Phi-3, Phi-3.5, Phi-3.5-vision)
  kLlama3,   // "<|start_header_id|>user<|end_header_id|>\n\n{text}<|eot_id|>..."
  kPhi4,     // "<|user|>{text}<|end|><|assistant|>" (Phi-4-mini, Phi-4-multimodal: no newlines)
  kSmolVlm,  // "<|im_start|>User:<image>{text}<end_of_utterance>\nAssistant:" (SmolVLM / Idefics3)
};

// The family to use for a checkpoint, from its config model_type and the
// special tokens its tokenizer knows.
class Tokenizer;
ChatFamily ChatFamilyFor(const std::string& text_model_type, const Tokenizer& tokenizer);

// One user turn followed by the assistant prompt. When has_image, the
// family's image placeholder (`image_token`, e.g. "<image>") is placed where
// the family puts it. The BOS token is not part of the string: Encode adds
// it (add_bos), as the families' tokenizers do.
std::string FormatUserTurn(ChatFamily family, std::string_view user_text, bool has_image, std::string_view image_token);

}  // namespace bitlens
