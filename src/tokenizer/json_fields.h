// tokenizer/json_fields: typed reads of tokenizer JSON fields that turn every
// missing or mistyped field into one InvalidArgument line naming the file and
// the field path (e.g. "tokenizer.json: model.merges[3]: expected a string").
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "base/status.h"

namespace bitlens::json_fields {

using Json = nlohmann::json;

inline Status Bad(const std::string& where, const std::string& what) { return InvalidArgument(where + ": " + what); }

inline const char* TypeName(const Json& j) { return j.type_name(); }

// Parses `text` without exceptions; `file` names it in the error.
Result<Json> Parse(const std::string& text, const std::string& file);

// Required string field `key` of object `j` at path `where`.
Result<std::string> String(const Json& j, const char* key, const std::string& where);
// Optional string field: nullopt when absent or null.
Result<std::optional<std::string>> OptString(const Json& j, const char* key, const std::string& where);
// Optional bool field with a default when absent or null.
Result<bool> Bool(const Json& j, const char* key, bool fallback, const std::string& where);
// Optional unsigned integer field with a default when absent or null.
Result<int64_t> Int(const Json& j, const char* key, int64_t fallback, const std::string& where);

// A special-token field written either as "<s>" or as {"content": "<s>", ...}.
std::optional<std::string> TokenContent(const Json& j);

}  // namespace bitlens::json_fields
