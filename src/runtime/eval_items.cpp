// runtime/eval_items: where `bitlens eval` gets its questions — the synthetic
// generator's splits, or a calibration-format JSONL file with answers.
#include <filesystem>
#include <fstream>
#include <iterator>

#include <nlohmann/json.hpp>

#include "quant/calib_jsonl.h"
#include "runtime/eval.h"

namespace bitlens {

Result<train::Split> ParseSplit(const std::string& name) {
  if (name == "test") return train::Split::kTest;
  if (name == "validation") return train::Split::kValidation;
  if (name == "train") return train::Split::kTrain;
  return InvalidArgument("unknown split '" + name + "' (expected test, validation or train)");
}

Result<std::vector<EvalItem>> SyntheticEvalItems(const train::DataOptions& data, train::Split split, int64_t count) {
  if (count <= 0) return InvalidArgument("the sample count must be positive, got " + std::to_string(count));
  if (data.image_size <= 0) return InvalidArgument("the image size must be positive, got " + std::to_string(data.image_size));
  std::vector<EvalItem> items;
  items.reserve(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) {
    train::VqaSample s = train::MakeSample(data, split, i);
    EvalItem item;
    item.question = std::move(s.question);
    item.answer = std::move(s.answer);
    item.kind = std::string(train::QuestionKindName(s.kind));
    item.image = std::move(s.image);
    items.push_back(std::move(item));
  }
  return items;
}

Result<std::vector<EvalItem>> ReadEvalJsonl(const std::string& path, int64_t count) {
  BL_ASSIGN_OR_RETURN(std::vector<quant::CalibSample> samples, quant::ReadCalibJsonl(path));
  // The calibration reader knows no "kind": read it from the same lines.
  std::ifstream in(path, std::ios::binary);
  if (!in) return IoError(path + ": cannot open");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string_view> lines;
  for (size_t pos = 0; pos <= text.size();) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    lines.push_back(std::string_view(text).substr(pos, end - pos));
    pos = end + 1;
  }
  std::vector<EvalItem> items;
  for (const quant::CalibSample& s : samples) {
    if (count > 0 && static_cast<int64_t>(items.size()) >= count) break;
    const std::string where = path + ":" + std::to_string(s.line) + ": ";
    if (!s.answer) return InvalidArgument(where + "missing 'answer' (evaluation needs the expected reply)");
    EvalItem item;
    item.question = s.prompt;
    item.answer = *s.answer;
    item.image_path = s.image;
    item.kind = "other";
    if (s.line >= 1 && static_cast<size_t>(s.line) <= lines.size()) {
      const auto obj = nlohmann::json::parse(lines[s.line - 1], nullptr, /*allow_exceptions=*/false);
      if (obj.is_object()) {
        const auto k = obj.find("kind");
        if (k != obj.end() && !k->is_null()) {
          if (!k->is_string() || k->get<std::string>().empty()) {
            return InvalidArgument(where + "'kind' must be a non-empty string such as \"color\"");
          }
          item.kind = k->get<std::string>();
        }
      }
    }
    items.push_back(std::move(item));
  }
  return items;
}

}  // namespace bitlens
