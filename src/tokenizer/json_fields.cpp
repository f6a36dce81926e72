// tokenizer/json_fields: see json_fields.h.
#include "tokenizer/json_fields.h"

namespace bitlens::json_fields {

Result<Json> Parse(const std::string& text, const std::string& file) {
  Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return InvalidArgument(file + ": not valid JSON");
  return j;
}

Result<std::string> String(const Json& j, const char* key, const std::string& where) {
  auto it = j.find(key);
  if (it == j.end()) return Bad(where, std::string("missing field '") + key + "'");
  if (!it->is_string()) return Bad(where + "." + key, std::string("expected a string, got ") + TypeName(*it));
  return it->get<std::string>();
}

Result<std::optional<std::string>> OptString(const Json& j, const char* key, const std::string& where) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::optional<std::string>();
  if (!it->is_string()) return Bad(where + "." + key, std::string("expected a string, got ") + TypeName(*it));
  return std::optional<std::string>(it->get<std::string>());
}

Result<bool> Bool(const Json& j, const char* key, bool fallback, const std::string& where) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) return Bad(where + "." + key, std::string("expected true or false, got ") + TypeName(*it));
  return it->get<bool>();
}

Result<int64_t> Int(const Json& j, const char* key, int64_t fallback, const std::string& where) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if (!it->is_number_integer()) return Bad(where + "." + key, std::string("expected an integer, got ") + TypeName(*it));
  return it->get<int64_t>();
}

std::optional<std::string> TokenContent(const Json& j) {
  if (j.is_string()) return j.get<std::string>();
  if (j.is_object()) {
    auto it = j.find("content");
    if (it != j.end() && it->is_string()) return it->get<std::string>();
  }
  return std::nullopt;
}

}  // namespace bitlens::json_fields
