// tokenizer/split: see split.h.
#include "tokenizer/split.h"

#include <algorithm>

namespace bitlens {

Pattern Pattern::Literal(std::string s) {
  Pattern p;
  p.literal_ = std::move(s);
  return p;
}

Pattern Pattern::FromRegex(std::shared_ptr<const Regex> regex) {
  Pattern p;
  p.regex_ = std::move(regex);
  return p;
}

Result<Pattern> Pattern::Parse(const json_fields::Json& j, const std::string& where) {
  if (!j.is_object()) return json_fields::Bad(where, "expected {\"String\": ...} or {\"Regex\": ...}");
  if (auto it = j.find("String"); it != j.end()) {
    if (!it->is_string()) return json_fields::Bad(where + ".String", "expected a string");
    return Literal(it->get<std::string>());
  }
  if (auto it = j.find("Regex"); it != j.end()) {
    if (!it->is_string()) return json_fields::Bad(where + ".Regex", "expected a string");
    auto regex = Regex::Compile(it->get<std::string>());
    if (!regex.ok()) return regex.status().WithContext(where + ".Regex");
    return FromRegex(std::move(regex).value());
  }
  return json_fields::Bad(where, "expected {\"String\": ...} or {\"Regex\": ...}");
}

std::vector<Span> Pattern::FindAll(std::string_view text) const {
  if (regex_) return regex_->FindAll(text);
  std::vector<Span> out;
  if (literal_.empty()) return out;
  for (size_t pos = text.find(literal_); pos != std::string_view::npos; pos = text.find(literal_, pos)) {
    out.emplace_back(pos, pos + literal_.size());
    pos += literal_.size();
  }
  return out;
}

std::string Pattern::ReplaceAll(std::string_view text, std::string_view content) const {
  std::string out;
  size_t prev = 0;
  for (const auto& [b, e] : FindAll(text)) {
    out.append(text.substr(prev, b - prev));
    out.append(content);
    prev = e;
  }
  out.append(text.substr(prev));
  return out;
}

Result<SplitBehavior> ParseSplitBehavior(const json_fields::Json& j, const std::string& where) {
  if (!j.is_string()) return json_fields::Bad(where, "expected a split behaviour name");
  const std::string s = j.get<std::string>();
  if (s == "Removed") return SplitBehavior::kRemoved;
  if (s == "Isolated") return SplitBehavior::kIsolated;
  if (s == "MergedWithPrevious") return SplitBehavior::kMergedWithPrevious;
  if (s == "MergedWithNext") return SplitBehavior::kMergedWithNext;
  if (s == "Contiguous") return SplitBehavior::kContiguous;
  return json_fields::Bad(where, "unknown split behaviour '" + s + "'");
}

std::vector<Span> SplitByMatches(size_t size, const std::vector<Span>& matches, SplitBehavior behavior, bool invert) {
  // Cover [0, size) with (span, is_delimiter) parts.
  struct Part {
    Span span;
    bool delimiter;
  };
  std::vector<Part> parts;
  parts.reserve(matches.size() * 2 + 1);
  size_t prev = 0;
  for (const auto& m : matches) {
    if (m.first != prev) parts.push_back({{prev, m.first}, invert});
    parts.push_back({m, !invert});
    prev = m.second;
  }
  if (prev != size) parts.push_back({{prev, size}, invert});

  std::vector<Span> pieces;
  pieces.reserve(parts.size());
  switch (behavior) {
    case SplitBehavior::kRemoved:
      for (const auto& p : parts)
        if (!p.delimiter) pieces.push_back(p.span);
      break;
    case SplitBehavior::kIsolated:
      for (const auto& p : parts) pieces.push_back(p.span);
      break;
    case SplitBehavior::kContiguous: {
      bool previous = false;
      for (const auto& p : parts) {
        if (p.delimiter == previous && !pieces.empty()) {
          pieces.back().second = p.span.second;
        } else {
          pieces.push_back(p.span);
        }
        previous = p.delimiter;
      }
      break;
    }
    case SplitBehavior::kMergedWithPrevious: {
      bool previous = false;
      for (const auto& p : parts) {
        if (p.delimiter && !previous && !pieces.empty()) {
          pieces.back().second = p.span.second;
        } else {
          pieces.push_back(p.span);
        }
        previous = p.delimiter;
      }
      break;
    }
    case SplitBehavior::kMergedWithNext: {
      bool previous = false;
      for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
        if (it->delimiter && !previous && !pieces.empty()) {
          pieces.back().first = it->span.first;
        } else {
          pieces.push_back(it->span);
        }
        previous = it->delimiter;
      }
      std::reverse(pieces.begin(), pieces.end());
      break;
    }
  }
  std::vector<Span> nonempty;
  nonempty.reserve(pieces.size());
  for (const auto& s : pieces)
    if (s.second > s.first) nonempty.push_back(s);
  return nonempty;
}

}  // namespace bitlens
