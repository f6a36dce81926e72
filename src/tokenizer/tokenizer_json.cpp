// tokenizer/tokenizer_json: BpeTokenizer::FromTokenizerJson, the reader of HF
// tokenizer.json files (model.type "BPE"; byte-level and SentencePiece-style).
// Every field is type-checked; a bad file gives one line naming the field.
#include "tokenizer/bpe_tokenizer.h"
#include "tokenizer/tokenizer_json_sax.h"

namespace bitlens {
namespace {

using json_fields::Bad;
using json_fields::Json;

// `m` is the model object; its vocab and merges were collected by the
// streaming reader into `contents`.
Result<BpeModel> ParseBpeModel(const Json& m, TokenizerJsonContents* contents, const std::string& where) {
  if (!m.is_object()) return Bad(where, std::string("expected an object, got ") + m.type_name());
  BL_ASSIGN_OR_RETURN(auto type, json_fields::OptString(m, "type", where));
  if (type && *type != "BPE") {
    if (*type == "WordPiece" || *type == "Unigram" || *type == "WordLevel") {
      return Unsupported(where + ".type: model '" + *type + "' is not supported (only BPE)");
    }
    return InvalidArgument(where + ".type: unknown model type '" + *type + "'");
  }
  if (auto d = m.find("dropout"); d != m.end() && !d->is_null()) {
    if (!d->is_number()) return Bad(where + ".dropout", "expected a number or null");
    if (d->get<double>() > 0.0) return Unsupported(where + ".dropout: BPE dropout is not supported");
  }

  if (!contents->has_vocab) {
    if (auto it = m.find("vocab"); it != m.end()) {
      return Bad(where + ".vocab", std::string("expected an object of token -> id, got ") + it->type_name());
    }
    return Bad(where, "missing field 'vocab'");
  }
  if (!contents->has_merges) {
    if (auto it = m.find("merges"); it != m.end() && !it->is_null()) {
      return Bad(where + ".merges", std::string("expected an array, got ") + it->type_name());
    }
  }

  BpeModel::Options options;
  BL_ASSIGN_OR_RETURN(options.unk_token, json_fields::OptString(m, "unk_token", where));
  BL_ASSIGN_OR_RETURN(options.fuse_unk, json_fields::Bool(m, "fuse_unk", false, where));
  BL_ASSIGN_OR_RETURN(options.byte_fallback, json_fields::Bool(m, "byte_fallback", false, where));
  BL_ASSIGN_OR_RETURN(options.ignore_merges, json_fields::Bool(m, "ignore_merges", false, where));
  BL_ASSIGN_OR_RETURN(auto prefix, json_fields::OptString(m, "continuing_subword_prefix", where));
  BL_ASSIGN_OR_RETURN(auto suffix, json_fields::OptString(m, "end_of_word_suffix", where));
  options.continuing_subword_prefix = prefix.value_or("");
  options.end_of_word_suffix = suffix.value_or("");
  return BpeModel::Build(std::move(contents->vocab), contents->merges, std::move(options), where);
}

Status ParseAddedTokens(const Json& j, const std::string& where, AddedVocabulary* added) {
  if (j.is_null()) return Status::Ok();
  if (!j.is_array()) return Bad(where, "expected an array");
  for (size_t i = 0; i < j.size(); ++i) {
    const Json& e = j[i];
    const std::string at = where + "[" + std::to_string(i) + "]";
    if (!e.is_object()) return Bad(at, "expected an object");
    AddedToken t;
    BL_ASSIGN_OR_RETURN(t.content, json_fields::String(e, "content", at));
    BL_ASSIGN_OR_RETURN(int64_t id, json_fields::Int(e, "id", -1, at));
    if (id < 0 || id >= (1 << 24)) return Bad(at + ".id", "missing or out of range (" + std::to_string(id) + ")");
    t.id = static_cast<int32_t>(id);
    BL_ASSIGN_OR_RETURN(t.special, json_fields::Bool(e, "special", false, at));
    BL_ASSIGN_OR_RETURN(t.lstrip, json_fields::Bool(e, "lstrip", false, at));
    BL_ASSIGN_OR_RETURN(t.rstrip, json_fields::Bool(e, "rstrip", false, at));
    BL_ASSIGN_OR_RETURN(t.single_word, json_fields::Bool(e, "single_word", false, at));
    BL_ASSIGN_OR_RETURN(t.normalized, json_fields::Bool(e, "normalized", !t.special, at));
    added->Add(std::move(t));
  }
  return Status::Ok();
}

// TemplateProcessing's "single" template: the id of a leading SpecialToken.
Result<std::optional<int32_t>> ParseTemplateBos(const Json& p, const std::string& where) {
  if (p.is_null()) return std::optional<int32_t>();
  if (!p.is_object()) return Bad(where, "expected an object");
  BL_ASSIGN_OR_RETURN(const std::string type, json_fields::String(p, "type", where));
  if (type == "Sequence") {
    auto it = p.find("processors");
    if (it == p.end() || !it->is_array()) return Bad(where, "'processors' must be an array");
    for (size_t i = 0; i < it->size(); ++i) {
      BL_ASSIGN_OR_RETURN(auto bos, ParseTemplateBos((*it)[i], where + ".processors[" + std::to_string(i) + "]"));
      if (bos) return bos;
    }
    return std::optional<int32_t>();
  }
  if (type != "TemplateProcessing") return std::optional<int32_t>();  // ByteLevel etc. add no ids
  auto single = p.find("single");
  if (single == p.end() || !single->is_array()) return Bad(where + ".single", "expected an array");
  if (single->empty()) return std::optional<int32_t>();
  auto first = (*single)[0].find("SpecialToken");
  if (first == (*single)[0].end()) return std::optional<int32_t>();
  BL_ASSIGN_OR_RETURN(const std::string name, json_fields::String(*first, "id", where + ".single[0].SpecialToken"));
  auto specials = p.find("special_tokens");
  if (specials == p.end() || !specials->is_object()) return Bad(where + ".special_tokens", "expected an object");
  auto entry = specials->find(name);
  if (entry == specials->end()) return Bad(where + ".special_tokens", "no entry for '" + name + "'");
  auto ids = entry->find("ids");
  if (ids == entry->end() || !ids->is_array() || ids->empty() || !(*ids)[0].is_number_integer()) {
    return Bad(where + ".special_tokens['" + name + "'].ids", "expected a non-empty array of ids");
  }
  const int64_t id = (*ids)[0].get<int64_t>();
  if (id < 0 || id >= (1 << 24)) return Bad(where + ".special_tokens['" + name + "'].ids", "id out of range");
  return std::optional<int32_t>(static_cast<int32_t>(id));
}

}  // namespace

Result<std::unique_ptr<BpeTokenizer>> BpeTokenizer::FromTokenizerJson(const std::string& text, const std::string& file) {
  BL_ASSIGN_OR_RETURN(TokenizerJsonContents contents, ReadTokenizerJson(text, file));
  const Json& j = contents.root;
  if (!j.is_object()) return Bad(file, "expected a JSON object at the top level");
  auto model_it = j.find("model");
  if (model_it == j.end()) return Bad(file, "missing field 'model'");

  Parts parts;
  BL_ASSIGN_OR_RETURN(parts.model, ParseBpeModel(*model_it, &contents, file + ": model"));
  if (auto it = j.find("added_tokens"); it != j.end()) {
    BL_TRY(ParseAddedTokens(*it, file + ": added_tokens", &parts.added));
  }
  if (auto it = j.find("normalizer"); it != j.end() && !it->is_null()) {
    BL_ASSIGN_OR_RETURN(parts.normalizer, ParseNormalizer(*it, file + ": normalizer"));
  }
  if (auto it = j.find("pre_tokenizer"); it != j.end() && !it->is_null()) {
    BL_ASSIGN_OR_RETURN(parts.pre_tokenizer, ParsePreTokenizer(*it, file + ": pre_tokenizer"));
  }
  if (auto it = j.find("decoder"); it != j.end() && !it->is_null()) {
    BL_ASSIGN_OR_RETURN(parts.decoder, ParseTokenDecoder(*it, file + ": decoder"));
  }
  if (auto it = j.find("post_processor"); it != j.end()) {
    BL_ASSIGN_OR_RETURN(parts.template_bos, ParseTemplateBos(*it, file + ": post_processor"));
  }
  return std::make_unique<BpeTokenizer>(std::move(parts));
}

}  // namespace bitlens
