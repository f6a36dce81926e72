// tokenizer/normalizer: see normalizer.h.
#include "tokenizer/normalizer.h"

#include <vector>

#include <unicode/locid.h>
#include <unicode/normalizer2.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>

#include "tokenizer/split.h"

namespace bitlens {
namespace {

using json_fields::Json;

class PrependNormalizer : public Normalizer {
 public:
  explicit PrependNormalizer(std::string prepend) : prepend_(std::move(prepend)) {}
  // HF prepends only to non-empty text.
  void Apply(std::string* text) const override {
    if (!text->empty()) text->insert(0, prepend_);
  }

 private:
  std::string prepend_;
};

class ReplaceNormalizer : public Normalizer {
 public:
  ReplaceNormalizer(Pattern pattern, std::string content) : pattern_(std::move(pattern)), content_(std::move(content)) {}
  void Apply(std::string* text) const override { *text = pattern_.ReplaceAll(*text, content_); }

 private:
  Pattern pattern_;
  std::string content_;
};

class SequenceNormalizer : public Normalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> steps) : steps_(std::move(steps)) {}
  void Apply(std::string* text) const override {
    for (const auto& s : steps_) s->Apply(text);
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> steps_;
};

// ASCII-only lowercase would differ from HF on other scripts, so use ICU's
// full Unicode lowercase mapping (Rust's str::to_lowercase is the same
// context-free mapping except for final sigma).
class LowercaseNormalizer : public Normalizer {
 public:
  void Apply(std::string* text) const override {
    icu::UnicodeString u = icu::UnicodeString::fromUTF8(*text);
    u.toLower(icu::Locale::getRoot());
    text->clear();
    u.toUTF8String(*text);
  }
};

class StripNormalizer : public Normalizer {
 public:
  StripNormalizer(bool left, bool right) : left_(left), right_(right) {}
  void Apply(std::string* text) const override {
    icu::UnicodeString u = icu::UnicodeString::fromUTF8(*text);
    int32_t begin = 0, end = u.length();
    if (left_)
      while (begin < end && u_isUWhiteSpace(u.char32At(begin))) begin = u.moveIndex32(begin, 1);
    if (right_)
      while (end > begin && u_isUWhiteSpace(u.char32At(u.moveIndex32(end, -1)))) end = u.moveIndex32(end, -1);
    text->clear();
    u.tempSubStringBetween(begin, end).toUTF8String(*text);
  }

 private:
  bool left_, right_;
};

class UnicodeNormalizer : public Normalizer {
 public:
  explicit UnicodeNormalizer(const icu::Normalizer2* n) : n_(n) {}
  void Apply(std::string* text) const override {
    UErrorCode status = U_ZERO_ERROR;
    icu::UnicodeString u = icu::UnicodeString::fromUTF8(*text);
    icu::UnicodeString out = n_->normalize(u, status);
    if (U_FAILURE(status)) return;  // leave the text as it was
    text->clear();
    out.toUTF8String(*text);
  }

 private:
  const icu::Normalizer2* n_;
};

}  // namespace

Result<std::unique_ptr<Normalizer>> MakeUnicodeNormalizer(const std::string& form) {
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* n = nullptr;
  if (form == "NFC") n = icu::Normalizer2::getNFCInstance(status);
  else if (form == "NFD") n = icu::Normalizer2::getNFDInstance(status);
  else if (form == "NFKC") n = icu::Normalizer2::getNFKCInstance(status);
  else if (form == "NFKD") n = icu::Normalizer2::getNFKDInstance(status);
  else return Unsupported("unknown Unicode normalization form '" + form + "'");
  if (U_FAILURE(status) || n == nullptr) return Internal("ICU has no " + form + " normalizer data");
  return std::unique_ptr<Normalizer>(new UnicodeNormalizer(n));
}

Result<std::unique_ptr<Normalizer>> ParseNormalizer(const Json& j, const std::string& where) {
  if (!j.is_object()) return json_fields::Bad(where, std::string("expected an object, got ") + j.type_name());
  BL_ASSIGN_OR_RETURN(const std::string type, json_fields::String(j, "type", where));
  if (type == "Prepend") {
    BL_ASSIGN_OR_RETURN(std::string prepend, json_fields::String(j, "prepend", where));
    return std::unique_ptr<Normalizer>(new PrependNormalizer(std::move(prepend)));
  }
  if (type == "Replace") {
    auto it = j.find("pattern");
    if (it == j.end()) return json_fields::Bad(where, "missing field 'pattern'");
    BL_ASSIGN_OR_RETURN(Pattern pattern, Pattern::Parse(*it, where + ".pattern"));
    BL_ASSIGN_OR_RETURN(std::string content, json_fields::String(j, "content", where));
    return std::unique_ptr<Normalizer>(new ReplaceNormalizer(std::move(pattern), std::move(content)));
  }
  if (type == "Sequence") {
    auto it = j.find("normalizers");
    if (it == j.end() || !it->is_array()) return json_fields::Bad(where, "'normalizers' must be an array");
    std::vector<std::unique_ptr<Normalizer>> steps;
    for (size_t i = 0; i < it->size(); ++i) {
      BL_ASSIGN_OR_RETURN(auto step, ParseNormalizer((*it)[i], where + ".normalizers[" + std::to_string(i) + "]"));
      steps.push_back(std::move(step));
    }
    return std::unique_ptr<Normalizer>(new SequenceNormalizer(std::move(steps)));
  }
  if (type == "Lowercase") return std::unique_ptr<Normalizer>(new LowercaseNormalizer());
  if (type == "Strip") {
    BL_ASSIGN_OR_RETURN(bool left, json_fields::Bool(j, "strip_left", true, where));
    BL_ASSIGN_OR_RETURN(bool right, json_fields::Bool(j, "strip_right", true, where));
    return std::unique_ptr<Normalizer>(new StripNormalizer(left, right));
  }
  if (type == "NFC" || type == "NFD" || type == "NFKC" || type == "NFKD") return MakeUnicodeNormalizer(type);
  return Unsupported(where + ".type: normalizer '" + type + "' is not supported");
}

}  // namespace bitlens
