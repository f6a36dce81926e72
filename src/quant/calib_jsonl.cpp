// quant/calib_jsonl: line-by-line JSON parsing of calibration samples with
// one-line errors that name the file, the line and the field.
#include "quant/calib_jsonl.h"

#include <filesystem>
#include <fstream>
#include <iterator>

#include <nlohmann/json.hpp>

namespace bitlens::quant {
namespace {

using json = nlohmann::json;

const char* KindOf(const json& v) {
  switch (v.type()) {
    case json::value_t::null: return "null";
    case json::value_t::boolean: return "boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float: return "number";
    case json::value_t::string: return "string";
    case json::value_t::array: return "array";
    case json::value_t::object: return "object";
    default: return "invalid value";
  }
}

// The string value of an optional field: nullopt when absent or null.
Result<std::optional<std::string>> OptionalString(const json& obj, const char* field, const std::string& where) {
  const auto it = obj.find(field);
  if (it == obj.end() || it->is_null()) return std::optional<std::string>();
  if (!it->is_string()) {
    return InvalidArgument(where + "'" + field + "' must be a string (got " + KindOf(*it) + ")");
  }
  return std::optional<std::string>(it->get<std::string>());
}

bool IsBlank(std::string_view s) {
  for (char c : s) {
    if (c != ' ' && c != '\t' && c != '\r') return false;
  }
  return true;
}

}  // namespace

Result<std::vector<CalibSample>> ParseCalibJsonl(std::string_view text, const std::string& name,
                                                 const std::string& base_dir) {
  std::vector<CalibSample> samples;
  int64_t line_no = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (IsBlank(line)) continue;
    const std::string where = name + ":" + std::to_string(line_no) + ": ";
    const json obj = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (obj.is_discarded()) {
      return InvalidArgument(where + "not valid JSON (each line must be one object like " +
                             "{\"image\": \"a.png\", \"prompt\": \"...\", \"answer\": \"...\"})");
    }
    if (!obj.is_object()) return InvalidArgument(where + "expected a JSON object, got " + KindOf(obj));
    CalibSample s;
    s.line = line_no;
    const auto prompt = obj.find("prompt");
    if (prompt == obj.end()) return InvalidArgument(where + "missing 'prompt' (the text of the user turn)");
    if (!prompt->is_string()) {
      return InvalidArgument(where + "'prompt' must be a string (got " + KindOf(*prompt) + ")");
    }
    s.prompt = prompt->get<std::string>();
    BL_ASSIGN_OR_RETURN(std::optional<std::string> image, OptionalString(obj, "image", where));
    BL_ASSIGN_OR_RETURN(s.answer, OptionalString(obj, "answer", where));
    if (image) {
      if (image->empty()) return InvalidArgument(where + "'image' is an empty path (leave the field out for text only)");
      if (image->find('\0') != std::string::npos) return InvalidArgument(where + "'image' holds a NUL byte");
      const std::filesystem::path p(*image);
      s.image = p.is_absolute() || base_dir.empty() ? p.string() : (std::filesystem::path(base_dir) / p).string();
    }
    if (s.prompt.empty() && s.image.empty() && !s.answer) {
      return InvalidArgument(where + "'prompt' is empty and there is no image or answer: the sample has no tokens");
    }
    samples.push_back(std::move(s));
  }
  if (samples.empty()) {
    return InvalidArgument(name + ": no calibration samples (expected one JSON object per line with a 'prompt')");
  }
  return samples;
}

Result<std::vector<CalibSample>> ReadCalibJsonl(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return NotFound(path + ": calibration file not found");
  std::ifstream in(path, std::ios::binary);
  if (!in) return IoError(path + ": cannot open the calibration file");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return IoError(path + ": read failed");
  const std::string base = std::filesystem::path(path).parent_path().string();
  BL_ASSIGN_OR_RETURN(std::vector<CalibSample> samples, ParseCalibJsonl(text, path, base));
  for (const CalibSample& s : samples) {
    if (!s.image.empty() && !std::filesystem::is_regular_file(s.image, ec)) {
      return NotFound(path + ":" + std::to_string(s.line) + ": 'image' " + s.image + " not found");
    }
  }
  return samples;
}

}  // namespace bitlens::quant
