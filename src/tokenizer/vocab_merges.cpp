// tokenizer/vocab_merges: BpeTokenizer::FromVocabMerges, for checkpoints that
// ship GPT-2-style vocab.json + merges.txt instead of tokenizer.json. The
// pipeline is the one transformers builds for the tokenizer_class named in
// tokenizer_config.json (GPT-2 byte-level by default, Qwen2's regex + NFC).
#include <filesystem>

#include "base/mmap_file.h"
#include "tokenizer/added_tokens_config.h"
#include "tokenizer/bpe_tokenizer.h"
#include "tokenizer/tokenizer_json_sax.h"

namespace bitlens {
namespace {

using json_fields::Bad;
using json_fields::Json;

Result<std::vector<std::pair<std::string, std::string>>> ParseMergesTxt(const std::string& text,
                                                                        const std::string& file) {
  std::vector<std::pair<std::string, std::string>> merges;
  size_t line_no = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line.rfind("#version", 0) == 0) continue;
    const size_t space = line.find(' ');
    if (space == std::string::npos || line.find(' ', space + 1) != std::string::npos) {
      return InvalidArgument(file + ": line " + std::to_string(line_no) + ": expected \"<a> <b>\", got '" + line + "'");
    }
    merges.emplace_back(line.substr(0, space), line.substr(space + 1));
  }
  return merges;
}

}  // namespace

Result<std::unique_ptr<BpeTokenizer>> BpeTokenizer::FromVocabMerges(const std::string& dir, const Json& tokenizer_config) {
  const std::string vocab_path = dir + "/vocab.json";
  const std::string merges_path = dir + "/merges.txt";
  BL_ASSIGN_OR_RETURN(const std::string vocab_text, ReadTextFile(vocab_path));
  BL_ASSIGN_OR_RETURN(auto vocab, ReadVocabJson(vocab_text, vocab_path));
  BL_ASSIGN_OR_RETURN(const std::string merges_text, ReadTextFile(merges_path));
  BL_ASSIGN_OR_RETURN(const auto merges, ParseMergesTxt(merges_text, merges_path));

  Parts parts;
  BL_ASSIGN_OR_RETURN(parts.model, BpeModel::Build(std::move(vocab), merges, BpeModel::Options{}, vocab_path));

  const std::string config_name = dir + "/tokenizer_config.json";
  std::string tokenizer_class;
  bool add_prefix_space = false;
  if (tokenizer_config.is_object()) {
    BL_ASSIGN_OR_RETURN(auto cls, json_fields::OptString(tokenizer_config, "tokenizer_class", config_name));
    tokenizer_class = cls.value_or("");
    BL_ASSIGN_OR_RETURN(add_prefix_space, json_fields::Bool(tokenizer_config, "add_prefix_space", false, config_name));
    if (tokenizer_config.contains("added_tokens_decoder")) {
      BL_TRY(AddTokensFromDecoderConfig(tokenizer_config["added_tokens_decoder"], config_name + ".added_tokens_decoder",
                                        /*read_normalized=*/true, &parts.added));
    }
  }
  if (tokenizer_class.rfind("Qwen2", 0) == 0) {
    BL_ASSIGN_OR_RETURN(parts.normalizer, MakeUnicodeNormalizer("NFC"));
    BL_ASSIGN_OR_RETURN(parts.pre_tokenizer, MakeRegexByteLevelPreTokenizer(kQwen2SplitRegex));
  } else {
    BL_ASSIGN_OR_RETURN(parts.pre_tokenizer, MakeByteLevelPreTokenizer(add_prefix_space, /*use_regex=*/true));
  }
  parts.decoder = MakeByteLevelDecoder();

  // added_tokens.json: {"<token>": id}, tokens added after training.
  const std::string added_path = dir + "/added_tokens.json";
  std::error_code ec;
  if (std::filesystem::is_regular_file(added_path, ec)) {
    BL_ASSIGN_OR_RETURN(const std::string text, ReadTextFile(added_path));
    BL_ASSIGN_OR_RETURN(const Json added, json_fields::Parse(text, added_path));
    if (!added.is_object()) return Bad(added_path, "expected an object of token -> id");
    for (auto it = added.begin(); it != added.end(); ++it) {
      if (!it.value().is_number_integer()) return Bad(added_path + ": '" + it.key() + "'", "expected an integer id");
      const int64_t id = it.value().get<int64_t>();
      if (id < 0 || id >= (1 << 24)) return Bad(added_path + ": '" + it.key() + "'", "id out of range");
      if (parts.added.FindByContent(it.key())) continue;
      parts.added.Add({it.key(), static_cast<int32_t>(id), false, false, false, false, false});
    }
  }
  // GPT-2's files carry no config: its one special token is <|endoftext|>.
  if (!tokenizer_config.is_object()) {
    if (auto id = parts.model.TokenToId("<|endoftext|>")) {
      parts.added.Add({"<|endoftext|>", *id, true, false, false, false, false});
    }
  }
  return std::make_unique<BpeTokenizer>(std::move(parts));
}

}  // namespace bitlens
