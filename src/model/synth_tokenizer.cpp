// model/synth_tokenizer: BPE training (Sennrich et al. 2016, over GPT-2's
// byte-level alphabet) and the tokenizer.json / tokenizer_config.json writers.
#include "model/synth_tokenizer.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

namespace bitlens {
namespace {

using json = nlohmann::json;

std::string Utf8(uint32_t cp) {
  std::string s;
  if (cp < 0x80) {
    s.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    s.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    s.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    s.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
  return s;
}

bool IsSpace(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }
bool IsLetter(char c) { return std::isalpha(static_cast<unsigned char>(c)) != 0; }
bool IsDigit(char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; }

// GPT-2's pre-tokenizer pattern on ASCII text:
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
std::vector<std::string> PreTokenize(std::string_view text) {
  std::vector<std::string> words;
  size_t i = 0;
  const size_t n = text.size();
  while (i < n) {
    bool matched = false;
    for (std::string_view c : {"'s", "'t", "'re", "'ve", "'m", "'ll", "'d"}) {
      if (text.substr(i, c.size()) == c) {
        words.emplace_back(c);
        i += c.size();
        matched = true;
        break;
      }
    }
    if (matched) continue;
    size_t j = i;
    if (text[j] == ' ' && j + 1 < n && !IsSpace(text[j + 1])) ++j;
    if (j < n && !IsSpace(text[j])) {
      auto same_class = [&](char c) {
        if (IsLetter(text[j])) return IsLetter(c);
        if (IsDigit(text[j])) return IsDigit(c);
        return !IsSpace(c) && !IsLetter(c) && !IsDigit(c);
      };
      size_t k = j + 1;
      while (k < n && same_class(text[k])) ++k;
      words.emplace_back(text.substr(i, k - i));
      i = k;
      continue;
    }
    size_t k = i;
    while (k < n && IsSpace(text[k])) ++k;
    if (k < n && k - i > 1) --k;  // \s+(?!\S): leave one space for the next word
    words.emplace_back(text.substr(i, k - i));
    i = k;
  }
  return words;
}

constexpr std::string_view kCorpus =
    "The image shows a small red circle next to a blue square on a white background. "
    "A green triangle is above the square, and a yellow star is in the corner of the picture. "
    "Describe the image. The picture shows a cat sitting on a wooden table near a window. "
    "The cat is looking at the camera. There is a cup of coffee on the table and a plant in the corner. "
    "What is in the image? The image contains a person standing in front of a building with many windows. "
    "The sky is blue and there are white clouds. A rocket is on the launch pad and smoke rises from the engines. "
    "An astronaut in a white suit is holding a flag. The photo was taken outside on a sunny day. "
    "USER: Describe the image. ASSISTANT: The image shows a red circle and a blue square. "
    "USER: What color is the circle? ASSISTANT: The circle is red. "
    "USER: How many shapes are there? ASSISTANT: There are three shapes in the picture. "
    "The user asks a question about the picture and the assistant answers with a short description. "
    "The colors in the image are red, green, blue, yellow, orange, purple, black, white and gray. "
    "The shapes are a circle, a square, a triangle, a rectangle, a line and a star. "
    "The left side of the image is darker than the right side. The top of the picture is bright. "
    "A woman is reading a book in the park. A man is riding a bicycle along the street. "
    "Two children are playing with a ball on the grass. A dog is running after them. "
    "The coffee cup is white and the coffee is dark brown. The camera is black and silver. "
    "There is text at the bottom of the image that says hello world. The numbers 1, 2, 3 and 42 appear too. "
    "This is a photograph of a city at night with lights in the windows and cars on the road. "
    "The mountains in the distance are covered with snow, and the lake in front reflects the sky. "
    "It's a simple picture: the background is white, the objects are colorful, and nothing else is there. "
    "Question: what does the image show? Answer: it shows shapes and colors on a plain background. "
    "The model looks at the image, reads the question, and writes an answer one token at a time. "
    "Small models run quickly on phones; larger models are slower but they describe images better. ";

}  // namespace

std::string ByteLevelSymbol(uint8_t byte) {
  // Printable Latin-1 bytes stand for themselves; the other 68 bytes map, in
  // order, to code points 256, 257, ... (GPT-2's bytes_to_unicode).
  auto printable = [](int b) { return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF); };
  if (printable(byte)) return Utf8(byte);
  uint32_t n = 0;
  for (int b = 0; b < byte; ++b) {
    if (!printable(b)) ++n;
  }
  return Utf8(256 + n);
}

std::string_view SynthTokenizerCorpus() { return kCorpus; }

Result<ByteLevelBpe> LearnByteLevelBpe(std::string_view corpus, int num_new_tokens) {
  ByteLevelBpe bpe;
  std::set<std::string> known;
  for (int b = 0; b < 256; ++b) {
    bpe.tokens.push_back(ByteLevelSymbol(static_cast<uint8_t>(b)));
    known.insert(bpe.tokens.back());
  }
  // Distinct words with their counts, each a sequence of symbols.
  std::map<std::string, int64_t> counts;
  for (const auto& w : PreTokenize(corpus)) ++counts[w];
  std::vector<std::pair<std::vector<std::string>, int64_t>> words;
  for (const auto& [w, c] : counts) {
    std::vector<std::string> symbols;
    for (unsigned char ch : w) symbols.push_back(ByteLevelSymbol(ch));
    words.emplace_back(std::move(symbols), c);
  }
  int added = 0;
  while (added < num_new_tokens) {
    std::map<std::pair<std::string, std::string>, int64_t> pairs;
    for (const auto& [symbols, c] : words) {
      for (size_t i = 0; i + 1 < symbols.size(); ++i) pairs[{symbols[i], symbols[i + 1]}] += c;
    }
    if (pairs.empty()) {
      return Internal("tokenizer corpus yields only " + std::to_string(added) + " merges, " +
                      std::to_string(num_new_tokens) + " needed");
    }
    // Highest count; std::map order makes the first of equals the smallest pair.
    auto best = pairs.begin();
    for (auto it = pairs.begin(); it != pairs.end(); ++it) {
      if (it->second > best->second) best = it;
    }
    const auto [left, right] = best->first;
    const std::string merged = left + right;
    for (auto& [symbols, c] : words) {
      std::vector<std::string> out;
      for (size_t i = 0; i < symbols.size(); ++i) {
        if (i + 1 < symbols.size() && symbols[i] == left && symbols[i + 1] == right) {
          out.push_back(merged);
          ++i;
        } else {
          out.push_back(symbols[i]);
        }
      }
      symbols = std::move(out);
    }
    bpe.merges.emplace_back(left, right);
    if (known.insert(merged).second) {
      bpe.tokens.push_back(merged);
      ++added;
    }
  }
  return bpe;
}

Result<std::string> SynthTokenizerJson(const SynthTokenizerSpec& spec, int64_t vocab_size) {
  BL_ASSIGN_OR_RETURN(ByteLevelBpe bpe, LearnByteLevelBpe(kCorpus, spec.num_merges));
  json vocab = json::object();
  std::set<int64_t> used;
  auto claim = [&](const std::string& token, int64_t id) -> Status {
    if (id < 0 || id >= vocab_size) {
      return Internal("token '" + token + "' id " + std::to_string(id) + " is outside the vocabulary of " +
                      std::to_string(vocab_size));
    }
    if (!used.insert(id).second) return Internal("token id " + std::to_string(id) + " is used twice");
    if (vocab.contains(token)) return Internal("token '" + token + "' appears twice");
    vocab[token] = id;
    return Status::Ok();
  };
  for (size_t i = 0; i < bpe.tokens.size(); ++i) BL_TRY(claim(bpe.tokens[i], spec.first_byte_id + static_cast<int64_t>(i)));
  // Special tokens live in the model vocabulary too, so HF tokenizers keeps
  // their ids (an added token missing from it would be renumbered).
  json added = json::array();
  std::vector<SpecialToken> specials = spec.special_tokens;
  std::sort(specials.begin(), specials.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  for (const auto& s : specials) {
    BL_TRY(claim(s.content, s.id));
    added.push_back({{"id", s.id}, {"content", s.content}, {"single_word", false}, {"lstrip", false},
                     {"rstrip", false}, {"normalized", false}, {"special", true}});
  }
  json merges = json::array();
  for (const auto& [a, b] : bpe.merges) merges.push_back(json::array({a, b}));

  json post = nullptr;
  if (spec.add_bos && !spec.bos_token.empty()) {
    int64_t bos_id = -1;
    for (const auto& s : specials) {
      if (s.content == spec.bos_token) bos_id = s.id;
    }
    const json bos = {{"SpecialToken", {{"id", spec.bos_token}, {"type_id", 0}}}};
    const json bos_b = {{"SpecialToken", {{"id", spec.bos_token}, {"type_id", 1}}}};
    post = {{"type", "TemplateProcessing"},
            {"single", json::array({bos, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}})},
            {"pair", json::array({bos, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}, bos_b,
                                  {{"Sequence", {{"id", "B"}, {"type_id", 1}}}}})},
            {"special_tokens", {{spec.bos_token, {{"id", spec.bos_token}, {"ids", {bos_id}}, {"tokens", {spec.bos_token}}}}}}};
  } else {
    post = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", true}};
  }
  json tok = {
      {"version", "1.0"},
      {"truncation", nullptr},
      {"padding", nullptr},
      {"added_tokens", added},
      {"normalizer", nullptr},
      {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}}},
      {"post_processor", post},
      {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}}},
      {"model",
       {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr}, {"continuing_subword_prefix", nullptr},
        {"end_of_word_suffix", nullptr}, {"fuse_unk", false}, {"byte_fallback", false}, {"ignore_merges", false},
        {"vocab", vocab}, {"merges", merges}}}};
  return tok.dump(2) + "\n";
}

std::string SynthTokenizerConfigJson(const SynthTokenizerSpec& spec, int64_t model_max_length) {
  json decoder = json::object();
  for (const auto& s : spec.special_tokens) {
    decoder[std::to_string(s.id)] = {{"content", s.content}, {"lstrip", false}, {"normalized", false},
                                     {"rstrip", false}, {"single_word", false}, {"special", true}};
  }
  auto token_or_null = [](const std::string& t) { return t.empty() ? json(nullptr) : json(t); };
  json cfg = {{"add_bos_token", spec.add_bos},
              {"add_eos_token", false},
              {"added_tokens_decoder", decoder},
              {"bos_token", token_or_null(spec.bos_token)},
              {"eos_token", token_or_null(spec.eos_token)},
              {"pad_token", token_or_null(spec.pad_token)},
              {"unk_token", token_or_null(spec.unk_token)},
              {"chat_template", spec.chat_template},
              {"clean_up_tokenization_spaces", false},
              {"model_max_length", model_max_length},
              {"tokenizer_class", "PreTrainedTokenizerFast"}};
  return cfg.dump(2) + "\n";
}

}  // namespace bitlens
