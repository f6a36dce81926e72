// tokenizer/pre_tokenizer: see pre_tokenizer.h.
#include "tokenizer/pre_tokenizer.h"

#include <algorithm>

#include "tokenizer/byte_level.h"
#include "tokenizer/split.h"

namespace bitlens {

const char kGpt2SplitRegex[] = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
const char kQwen2SplitRegex[] =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

namespace {

using json_fields::Json;

// Cuts every piece with `pattern` matches and `behavior`.
void SplitPieces(const Pattern& pattern, SplitBehavior behavior, bool invert, std::vector<PreToken>* pieces) {
  std::vector<PreToken> out;
  out.reserve(pieces->size() * 2);
  for (auto& piece : *pieces) {
    const auto spans = SplitByMatches(piece.text.size(), pattern.FindAll(piece.text), behavior, invert);
    for (const auto& [b, e] : spans) {
      const size_t origin_zero = b < piece.origin_zero ? std::min(e, piece.origin_zero) - b : 0;
      out.push_back({piece.text.substr(b, e - b), origin_zero});
    }
  }
  *pieces = std::move(out);
}

class SplitPreTokenizer : public PreTokenizer {
 public:
  SplitPreTokenizer(Pattern pattern, SplitBehavior behavior, bool invert)
      : pattern_(std::move(pattern)), behavior_(behavior), invert_(invert) {}
  void Apply(std::vector<PreToken>* pieces) const override { SplitPieces(pattern_, behavior_, invert_, pieces); }

 private:
  Pattern pattern_;
  SplitBehavior behavior_;
  bool invert_;
};

class ByteLevelPreTokenizer : public PreTokenizer {
 public:
  ByteLevelPreTokenizer(bool add_prefix_space, std::shared_ptr<const Regex> regex)
      : add_prefix_space_(add_prefix_space), regex_(std::move(regex)) {}
  void Apply(std::vector<PreToken>* pieces) const override {
    if (add_prefix_space_) {
      for (auto& p : *pieces) {
        if (!p.text.empty() && p.text[0] == ' ') continue;
        p.text = " " + p.text;
        if (p.origin_zero != 0) ++p.origin_zero;  // the new space aligns with the first character
      }
    }
    if (regex_) SplitPieces(Pattern::FromRegex(regex_), SplitBehavior::kIsolated, false, pieces);
    for (auto& p : *pieces) {
      p.origin_zero = byte_level::Encode(std::string_view(p.text).substr(0, p.origin_zero)).size();
      p.text = byte_level::Encode(p.text);
    }
  }

 private:
  bool add_prefix_space_;
  std::shared_ptr<const Regex> regex_;  // null without use_regex
};

class MetaspacePreTokenizer : public PreTokenizer {
 public:
  enum class Prepend { kAlways, kFirst, kNever };
  MetaspacePreTokenizer(std::string replacement, Prepend prepend, bool split)
      : replacement_(std::move(replacement)), prepend_(prepend), split_(split) {}
  void Apply(std::vector<PreToken>* pieces) const override {
    const Pattern space = Pattern::Literal(" ");
    for (auto& p : *pieces) {
      p.origin_zero = space.ReplaceAll(std::string_view(p.text).substr(0, p.origin_zero), replacement_).size();
      p.text = space.ReplaceAll(p.text, replacement_);
      const bool starts = p.text.compare(0, replacement_.size(), replacement_) == 0;
      if (!starts && (prepend_ == Prepend::kAlways || (prepend_ == Prepend::kFirst && p.origin_zero != 0))) {
        p.text = replacement_ + p.text;
        if (p.origin_zero != 0) p.origin_zero += replacement_.size();
      }
    }
    if (split_) SplitPieces(Pattern::Literal(replacement_), SplitBehavior::kMergedWithNext, false, pieces);
  }

 private:
  std::string replacement_;
  Prepend prepend_;
  bool split_;
};

class SequencePreTokenizer : public PreTokenizer {
 public:
  explicit SequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> steps) : steps_(std::move(steps)) {}
  void Apply(std::vector<PreToken>* pieces) const override {
    for (const auto& s : steps_) s->Apply(pieces);
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> steps_;
};

Result<std::unique_ptr<PreTokenizer>> RegexSplit(const char* regex, SplitBehavior behavior, bool invert,
                                                 const std::string& where) {
  auto compiled = Regex::Compile(regex);
  if (!compiled.ok()) return compiled.status().WithContext(where);
  return std::unique_ptr<PreTokenizer>(
      new SplitPreTokenizer(Pattern::FromRegex(std::move(compiled).value()), behavior, invert));
}

}  // namespace

Result<std::unique_ptr<PreTokenizer>> MakeByteLevelPreTokenizer(bool add_prefix_space, bool use_regex) {
  std::shared_ptr<const Regex> regex;
  if (use_regex) {
    // Compiled once per process: every byte-level tokenizer shares it.
    static const Result<std::shared_ptr<const Regex>> gpt2 = Regex::Compile(kGpt2SplitRegex);
    if (!gpt2.ok()) return gpt2.status();
    regex = gpt2.value();
  }
  return std::unique_ptr<PreTokenizer>(new ByteLevelPreTokenizer(add_prefix_space, std::move(regex)));
}

Result<std::unique_ptr<PreTokenizer>> MakeRegexByteLevelPreTokenizer(const std::string& regex) {
  std::vector<std::unique_ptr<PreTokenizer>> steps;
  BL_ASSIGN_OR_RETURN(auto split, RegexSplit(regex.c_str(), SplitBehavior::kIsolated, false, "split regex"));
  steps.push_back(std::move(split));
  BL_ASSIGN_OR_RETURN(auto byte_level, MakeByteLevelPreTokenizer(false, false));
  steps.push_back(std::move(byte_level));
  return std::unique_ptr<PreTokenizer>(new SequencePreTokenizer(std::move(steps)));
}

Result<std::unique_ptr<PreTokenizer>> ParsePreTokenizer(const Json& j, const std::string& where) {
  if (!j.is_object()) return json_fields::Bad(where, std::string("expected an object, got ") + j.type_name());
  BL_ASSIGN_OR_RETURN(const std::string type, json_fields::String(j, "type", where));
  if (type == "Sequence") {
    auto it = j.find("pretokenizers");
    if (it == j.end() || !it->is_array()) return json_fields::Bad(where, "'pretokenizers' must be an array");
    std::vector<std::unique_ptr<PreTokenizer>> steps;
    for (size_t i = 0; i < it->size(); ++i) {
      BL_ASSIGN_OR_RETURN(auto step, ParsePreTokenizer((*it)[i], where + ".pretokenizers[" + std::to_string(i) + "]"));
      steps.push_back(std::move(step));
    }
    return std::unique_ptr<PreTokenizer>(new SequencePreTokenizer(std::move(steps)));
  }
  if (type == "Split") {
    auto pattern_it = j.find("pattern");
    if (pattern_it == j.end()) return json_fields::Bad(where, "missing field 'pattern'");
    BL_ASSIGN_OR_RETURN(Pattern pattern, Pattern::Parse(*pattern_it, where + ".pattern"));
    auto behavior_it = j.find("behavior");
    if (behavior_it == j.end()) return json_fields::Bad(where, "missing field 'behavior'");
    BL_ASSIGN_OR_RETURN(SplitBehavior behavior, ParseSplitBehavior(*behavior_it, where + ".behavior"));
    BL_ASSIGN_OR_RETURN(bool invert, json_fields::Bool(j, "invert", false, where));
    return std::unique_ptr<PreTokenizer>(new SplitPreTokenizer(std::move(pattern), behavior, invert));
  }
  if (type == "ByteLevel") {
    BL_ASSIGN_OR_RETURN(bool add_prefix_space, json_fields::Bool(j, "add_prefix_space", true, where));
    BL_ASSIGN_OR_RETURN(bool use_regex, json_fields::Bool(j, "use_regex", true, where));
    return MakeByteLevelPreTokenizer(add_prefix_space, use_regex);
  }
  if (type == "Digits") {
    // Rust's char::is_numeric is the Unicode N categories, i.e. \p{N}.
    BL_ASSIGN_OR_RETURN(bool individual, json_fields::Bool(j, "individual_digits", false, where));
    return RegexSplit(R"(\p{N})", individual ? SplitBehavior::kIsolated : SplitBehavior::kContiguous, false, where);
  }
  if (type == "Metaspace") {
    BL_ASSIGN_OR_RETURN(std::string replacement, json_fields::String(j, "replacement", where));
    BL_ASSIGN_OR_RETURN(bool split, json_fields::Bool(j, "split", true, where));
    MetaspacePreTokenizer::Prepend prepend = MetaspacePreTokenizer::Prepend::kAlways;
    BL_ASSIGN_OR_RETURN(auto scheme, json_fields::OptString(j, "prepend_scheme", where));
    if (scheme) {
      if (*scheme == "always") prepend = MetaspacePreTokenizer::Prepend::kAlways;
      else if (*scheme == "first") prepend = MetaspacePreTokenizer::Prepend::kFirst;
      else if (*scheme == "never") prepend = MetaspacePreTokenizer::Prepend::kNever;
      else return json_fields::Bad(where + ".prepend_scheme", "unknown scheme '" + *scheme + "'");
    } else {
      // Older files spell it as add_prefix_space.
      BL_ASSIGN_OR_RETURN(bool add_prefix_space, json_fields::Bool(j, "add_prefix_space", true, where));
      prepend = add_prefix_space ? MetaspacePreTokenizer::Prepend::kAlways : MetaspacePreTokenizer::Prepend::kNever;
    }
    return std::unique_ptr<PreTokenizer>(new MetaspacePreTokenizer(std::move(replacement), prepend, split));
  }
  if (type == "WhitespaceSplit") return RegexSplit(R"(\s+)", SplitBehavior::kRemoved, false, where);
  if (type == "Whitespace") return RegexSplit(R"(\w+|[^\w\s]+)", SplitBehavior::kRemoved, true, where);
  if (type == "Punctuation") {
    return RegexSplit(R"([\p{P}!-/:-@\[-`{-~])", SplitBehavior::kIsolated, false, where);
  }
  return Unsupported(where + ".type: pre-tokenizer '" + type + "' is not supported");
}

}  // namespace bitlens
