// tokenizer/chat_template: the chat formats, written out per family. The
// expected strings in tests/golden/tokenizers/chat_templates.json are
// rendered by transformers' apply_chat_template from each family's template.
#include "tokenizer/chat_template.h"

#include <algorithm>
#include <cctype>
#include <string>

#include "tokenizer/tokenizer.h"

namespace bitlens {
namespace {

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// Jinja's `trim` (Python str.strip): leading and trailing whitespace.
std::string_view Trim(std::string_view s) {
  const auto ws = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; };
  while (!s.empty() && ws(s.front())) s.remove_prefix(1);
  while (!s.empty() && ws(s.back())) s.remove_suffix(1);
  return s;
}

}  // namespace

ChatFamily ChatFamilyFor(const std::string& text_model_type, const Tokenizer& tokenizer) {
  const std::string type = Lower(text_model_type);
  if (type == "llava" || type == "llava_next") return ChatFamily::kLlava15;
  if (type == "idefics3" || type == "smolvlm") return ChatFamily::kSmolVlm;
  if (type == "phi4mm" || type == "phi4_multimodal") return ChatFamily::kPhi4;
  if (type == "phi3" || type == "phi3_v" || type == "phi3v") {
    // Phi-4-mini is model_type "phi3" too; its o200k tokenizer tells it apart.
    return tokenizer.TokenId("<|endofprompt|>") ? ChatFamily::kPhi4 : ChatFamily::kPhi3;
  }
  // A Llama decoder: the special tokens say which chat format it was tuned on.
  if (tokenizer.TokenId("<|start_header_id|>") && tokenizer.TokenId("<|eot_id|>")) return ChatFamily::kLlama3;
  if (tokenizer.TokenId("<|user|>") && tokenizer.TokenId("<|end|>")) {
    return tokenizer.TokenId("<|endofprompt|>") ? ChatFamily::kPhi4 : ChatFamily::kPhi3;
  }
  if (tokenizer.TokenId("<end_of_utterance>") && tokenizer.TokenId("<|im_start|>")) return ChatFamily::kSmolVlm;
  if (type == "llama" && tokenizer.TokenId("<image>")) return ChatFamily::kLlava15;
  return ChatFamily::kNone;
}

std::string FormatUserTurn(ChatFamily family, std::string_view user_text, bool has_image, std::string_view image_token) {
  std::string out;
  const std::string text(user_text);
  const std::string image(image_token);
  switch (family) {
    case ChatFamily::kNone:
      if (has_image) out += image + "\n";
      out += text;
      break;
    case ChatFamily::kLlava15:
      // llava-hf chat_template.json: images first, then "text " per text part.
      out = "USER: ";
      if (has_image) out += image + "\n";
      out += text + " ASSISTANT:";
      break;
    case ChatFamily::kPhi3:
      // Phi-3.5-vision writes the numbered image tag on its own line.
      out = "<|user|>\n";
      if (has_image) out += image + "\n";
      out += text + "<|end|>\n<|assistant|>\n";
      break;
    case ChatFamily::kPhi4:
      out = "<|user|>";
      if (has_image) out += image;
      out += text + "<|end|><|assistant|>";
      break;
    case ChatFamily::kLlama3:
      // The Llama-3 template trims message content.
      out = "<|start_header_id|>user<|end_header_id|>\n\n";
      if (has_image) out += image;
      out += std::string(Trim(text));
      out += "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n";
      break;
    case ChatFamily::kSmolVlm:
      // "User:" is followed by ": " only when the first content part is text.
      out = "<|im_start|>User";
      if (has_image) {
        out += ":" + image;
      } else {
        out += ": ";
      }
      out += text + "<end_of_utterance>\nAssistant:";
      break;
  }
  return out;
}

}  // namespace bitlens
