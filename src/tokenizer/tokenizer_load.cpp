// tokenizer/tokenizer_load: Tokenizer::Load. Picks the tokenizer file of a
// checkpoint directory (tokenizer.json > tokenizer.model > vocab.json +
// merges.txt) and resolves BOS / EOS / add-BOS from the configs around it.
#include <algorithm>
#include <filesystem>

#include "base/mmap_file.h"
#include "tokenizer/added_tokens_config.h"
#include "tokenizer/bpe_tokenizer.h"
#include "tokenizer/json_fields.h"
#include "tokenizer/spm_tokenizer.h"

namespace bitlens {
namespace {

using json_fields::Bad;
using json_fields::Json;
namespace fs = std::filesystem;

// A JSON config next to the tokenizer, or null when the file is absent.
Result<Json> ReadOptionalJson(const std::string& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return Json();
  BL_ASSIGN_OR_RETURN(const std::string text, ReadTextFile(path));
  BL_ASSIGN_OR_RETURN(Json j, json_fields::Parse(text, path));
  if (!j.is_object()) return Bad(path, "expected a JSON object at the top level");
  return j;
}

// `key` as one id or a list of ids (config.json / generation_config.json).
Status AppendIds(const Json& j, const char* key, const std::string& where, std::vector<int32_t>* ids) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return Status::Ok();
  auto add = [&](const Json& v) -> Status {
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() >= (1 << 24)) {
      return Bad(where + "." + key, "expected a token id or a list of token ids");
    }
    const int32_t id = static_cast<int32_t>(v.get<int64_t>());
    if (std::find(ids->begin(), ids->end(), id) == ids->end()) ids->push_back(id);
    return Status::Ok();
  };
  if (it->is_array()) {
    for (const auto& v : *it) BL_TRY(add(v));
    return Status::Ok();
  }
  return add(*it);
}

// The id of a special token named by `key` in a tokenizer config
// ("bos_token": "<s>" or {"content": "<s>"}); nullopt when absent.
std::optional<int32_t> NamedTokenId(const Json& j, const char* key, const Tokenizer& t) {
  if (!j.is_object()) return std::nullopt;
  auto it = j.find(key);
  if (it == j.end()) return std::nullopt;
  auto content = json_fields::TokenContent(*it);
  if (!content) return std::nullopt;
  return t.TokenId(*content);
}

// Added tokens that transformers registers for a tokenizer.model checkpoint.
Result<AddedVocabulary> SpmAddedTokens(const Json& tokenizer_config, const std::string& dir) {
  AddedVocabulary added;
  const std::string config_name = dir + "/tokenizer_config.json";
  if (tokenizer_config.is_object() && tokenizer_config.contains("added_tokens_decoder")) {
    BL_TRY(AddTokensFromDecoderConfig(tokenizer_config["added_tokens_decoder"], config_name + ": added_tokens_decoder",
                                      /*read_normalized=*/false, &added));
  }
  const std::string added_path = dir + "/added_tokens.json";
  BL_ASSIGN_OR_RETURN(const Json extra, ReadOptionalJson(added_path));
  if (extra.is_object()) {
    for (auto it = extra.begin(); it != extra.end(); ++it) {
      if (!it.value().is_number_integer() || it.value().get<int64_t>() < 0 || it.value().get<int64_t>() >= (1 << 24)) {
        return Bad(added_path + ": '" + it.key() + "'", "expected a token id");
      }
      if (added.FindByContent(it.key())) continue;
      added.Add({it.key(), static_cast<int32_t>(it.value().get<int64_t>()), true, false, false, false, false});
    }
  }
  return added;
}

}  // namespace

Result<std::unique_ptr<Tokenizer>> Tokenizer::Load(const std::string& model_dir) {
  std::error_code ec;
  std::string dir = model_dir;
  std::string explicit_file;
  if (fs::is_regular_file(model_dir, ec)) {
    // A tokenizer file given directly: its directory holds the configs.
    explicit_file = model_dir;
    const fs::path parent = fs::path(model_dir).parent_path();
    dir = parent.empty() ? fs::path(".").string() : parent.string();
  } else if (!fs::is_directory(model_dir, ec)) {
    return NotFound(model_dir + ": no such directory");
  }
  BL_ASSIGN_OR_RETURN(const Json tokenizer_config, ReadOptionalJson(dir + "/tokenizer_config.json"));
  BL_ASSIGN_OR_RETURN(const Json special_map, ReadOptionalJson(dir + "/special_tokens_map.json"));
  BL_ASSIGN_OR_RETURN(const Json config, ReadOptionalJson(dir + "/config.json"));
  BL_ASSIGN_OR_RETURN(const Json generation_config, ReadOptionalJson(dir + "/generation_config.json"));

  auto pick = [&](const char* name) {
    if (!explicit_file.empty()) return std::string();
    const std::string p = dir + "/" + name;
    return fs::is_regular_file(p, ec) ? p : std::string();
  };

  const bool explicit_model = !explicit_file.empty() && fs::path(explicit_file).extension() == ".model";
  const bool explicit_json = !explicit_file.empty() && fs::path(explicit_file).extension() == ".json";
  const std::string json_path = explicit_json ? explicit_file : pick("tokenizer.json");
  const std::string model_path = explicit_model ? explicit_file : pick("tokenizer.model");

  std::unique_ptr<Tokenizer> tokenizer;
  std::optional<int32_t> fallback_bos;
  bool default_add_bos = false;
  bool use_model = json_path.empty();
  if (!json_path.empty()) {
    BL_ASSIGN_OR_RETURN(const std::string text, ReadTextFile(json_path));
    auto bpe = BpeTokenizer::FromTokenizerJson(text, json_path);
    if (bpe.ok()) {
      fallback_bos = bpe.value()->parts().template_bos;
      default_add_bos = fallback_bos.has_value();
      tokenizer = std::move(bpe).value();
    } else if (bpe.status().code() == StatusCode::kUnsupported && !model_path.empty()) {
      use_model = true;  // e.g. a Unigram tokenizer.json next to its SentencePiece model
    } else {
      return bpe.status();
    }
  }
  if (!tokenizer && use_model && !model_path.empty()) {
    BL_ASSIGN_OR_RETURN(AddedVocabulary added, SpmAddedTokens(tokenizer_config, dir));
    BL_ASSIGN_OR_RETURN(auto spm, SpmTokenizer::Load(model_path, std::move(added)));
    if (spm->spm_bos_id() >= 0) fallback_bos = spm->spm_bos_id();
    // Llama-family SentencePiece checkpoints add BOS unless told otherwise.
    default_add_bos = fallback_bos.has_value();
    tokenizer = std::move(spm);
  }
  if (!tokenizer) {
    if (!explicit_file.empty()) {
      return InvalidArgument(explicit_file + ": not a tokenizer file (expected tokenizer.json or a .model file)");
    }
    if (!fs::is_regular_file(dir + "/vocab.json", ec) || !fs::is_regular_file(dir + "/merges.txt", ec)) {
      return NotFound(dir + ": no tokenizer.json, tokenizer.model or vocab.json + merges.txt");
    }
    BL_ASSIGN_OR_RETURN(tokenizer, BpeTokenizer::FromVocabMerges(dir, tokenizer_config));
  }

  // BOS: the tokenizer config names it; else the post-processor / model's own.
  std::optional<int32_t> bos = NamedTokenId(tokenizer_config, "bos_token", *tokenizer);
  if (!bos) bos = NamedTokenId(special_map, "bos_token", *tokenizer);
  if (!bos) bos = fallback_bos;
  if (!bos && config.is_object()) {
    std::vector<int32_t> ids;
    BL_TRY(AppendIds(config, "bos_token_id", dir + "/config.json", &ids));
    if (!ids.empty()) bos = ids[0];
  }
  bool add_bos = default_add_bos && bos.has_value();
  if (tokenizer_config.is_object()) {
    BL_ASSIGN_OR_RETURN(add_bos, json_fields::Bool(tokenizer_config, "add_bos_token", add_bos,
                                                   dir + "/tokenizer_config.json"));
  }

  // EOS: every id that ends a turn: the tokenizer's eos_token, then the ids
  // config.json and generation_config.json list (Phi-3 stops on <|end|> too).
  std::vector<int32_t> eos;
  auto add_eos = [&](std::optional<int32_t> id) {
    if (id && std::find(eos.begin(), eos.end(), *id) == eos.end()) eos.push_back(*id);
  };
  add_eos(NamedTokenId(tokenizer_config, "eos_token", *tokenizer));
  add_eos(NamedTokenId(special_map, "eos_token", *tokenizer));
  if (auto* spm = dynamic_cast<SpmTokenizer*>(tokenizer.get()); spm != nullptr && eos.empty() && spm->spm_eos_id() >= 0) {
    add_eos(spm->spm_eos_id());
  }
  if (config.is_object()) {
    BL_TRY(AppendIds(config, "eos_token_id", dir + "/config.json", &eos));
    if (auto text = config.find("text_config"); text != config.end() && text->is_object()) {
      BL_TRY(AppendIds(*text, "eos_token_id", dir + "/config.json: text_config", &eos));
    }
  }
  if (generation_config.is_object()) {
    BL_TRY(AppendIds(generation_config, "eos_token_id", dir + "/generation_config.json", &eos));
  }
  tokenizer->SetSpecialTokens(bos, std::move(eos), add_bos);
  return tokenizer;
}

}  // namespace bitlens
