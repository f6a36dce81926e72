#include "tokenizer/added_tokens_config.h"

#include <cstdlib>

namespace bitlens {

using json_fields::Bad;

Status AddTokensFromDecoderConfig(const json_fields::Json& decoder, const std::string& where, bool read_normalized,
                                  AddedVocabulary* added) {
  if (decoder.is_null()) return Status::Ok();
  if (!decoder.is_object()) return Bad(where, "expected an object");
  for (auto e = decoder.begin(); e != decoder.end(); ++e) {
    const std::string at = where + "['" + e.key() + "']";
    char* end = nullptr;
    const long id = std::strtol(e.key().c_str(), &end, 10);
    if (e.key().empty() || *end != '\0' || id < 0 || id >= (1 << 24)) return Bad(at, "the key must be a token id");
    if (!e.value().is_object()) return Bad(at, "expected an object");
    AddedToken t;
    t.id = static_cast<int32_t>(id);
    BL_ASSIGN_OR_RETURN(t.content, json_fields::String(e.value(), "content", at));
    BL_ASSIGN_OR_RETURN(t.special, json_fields::Bool(e.value(), "special", false, at));
    BL_ASSIGN_OR_RETURN(t.lstrip, json_fields::Bool(e.value(), "lstrip", false, at));
    BL_ASSIGN_OR_RETURN(t.rstrip, json_fields::Bool(e.value(), "rstrip", false, at));
    BL_ASSIGN_OR_RETURN(t.single_word, json_fields::Bool(e.value(), "single_word", false, at));
    if (read_normalized) {
      BL_ASSIGN_OR_RETURN(t.normalized, json_fields::Bool(e.value(), "normalized", !t.special, at));
    }
    added->Add(std::move(t));
  }
  return Status::Ok();
}

}  // namespace bitlens
