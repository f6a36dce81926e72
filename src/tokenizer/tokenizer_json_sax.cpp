// tokenizer/tokenizer_json_sax: see tokenizer_json_sax.h.
#include "tokenizer/tokenizer_json_sax.h"

namespace bitlens {
namespace {

using json_fields::Json;

class Reader : public nlohmann::json_sax<Json> {
 public:
  explicit Reader(TokenizerJsonContents* out) : out_(out) {}
  const std::string& error() const { return error_; }

  bool null() override { return Value(Json()); }
  bool boolean(bool v) override { return Value(Json(v)); }
  bool number_integer(number_integer_t v) override { return Integer(v); }
  bool number_unsigned(number_unsigned_t v) override {
    return Integer(v > static_cast<number_unsigned_t>(INT64_MAX) ? INT64_MAX : static_cast<int64_t>(v));
  }
  bool number_float(number_float_t v, const string_t&) override { return Value(Json(v)); }
  bool binary(binary_t&) override { return Fail("unexpected binary value"); }

  bool string(string_t& v) override {
    switch (mode_) {
      case Mode::kVocab: return Fail("model.vocab['" + key_ + "']: expected an integer id, got a string");
      case Mode::kMerges: {
        const size_t space = v.find(' ');
        if (space == std::string::npos || v.find(' ', space + 1) != std::string::npos) {
          return Fail(MergeAt() + ": expected \"<a> <b>\" with exactly one space, got '" + v + "'");
        }
        out_->merges.emplace_back(v.substr(0, space), v.substr(space + 1));
        return true;
      }
      case Mode::kMergePair:
        if (pair_.size() >= 2) return Fail(MergeAt() + ": expected exactly two tokens");
        pair_.push_back(std::move(v));
        return true;
      case Mode::kDom: return Value(Json(std::move(v)));
    }
    return true;
  }

  bool key(string_t& k) override {
    key_ = std::move(k);
    return true;
  }

  bool start_object(std::size_t) override {
    if (mode_ != Mode::kDom) return Fail(ModeField() + ": unexpected object");
    if (IsModelField("vocab")) {
      mode_ = Mode::kVocab;
      out_->has_vocab = true;
      return true;
    }
    const bool is_model = stack_.size() == 1 && stack_.back()->is_object() && key_ == "model";
    if (!Value(Json::object())) return false;
    stack_.push_back(last_);
    model_depth_ = is_model ? stack_.size() : model_depth_;
    return true;
  }
  bool end_object() override {
    if (mode_ == Mode::kVocab) {
      mode_ = Mode::kDom;
      return true;
    }
    if (stack_.size() == model_depth_) model_depth_ = 0;
    stack_.pop_back();
    return true;
  }
  bool start_array(std::size_t) override {
    if (mode_ == Mode::kVocab) return Fail("model.vocab['" + key_ + "']: expected an integer id, got an array");
    if (mode_ == Mode::kMergePair) return Fail(MergeAt() + ": unexpected nested array");
    if (mode_ == Mode::kMerges) {
      mode_ = Mode::kMergePair;
      pair_.clear();
      return true;
    }
    if (IsModelField("merges")) {
      mode_ = Mode::kMerges;
      out_->has_merges = true;
      return true;
    }
    if (!Value(Json::array())) return false;
    stack_.push_back(last_);
    return true;
  }
  bool end_array() override {
    if (mode_ == Mode::kMergePair) {
      if (pair_.size() != 2) return Fail(MergeAt() + ": expected exactly two tokens");
      out_->merges.emplace_back(std::move(pair_[0]), std::move(pair_[1]));
      mode_ = Mode::kMerges;
      return true;
    }
    if (mode_ == Mode::kMerges) {
      mode_ = Mode::kDom;
      return true;
    }
    stack_.pop_back();
    return true;
  }
  bool parse_error(std::size_t position, const std::string&, const nlohmann::detail::exception&) override {
    if (error_.empty()) error_ = "not valid JSON (syntax error at byte " + std::to_string(position) + ")";
    return false;
  }

 private:
  enum class Mode { kDom, kVocab, kMerges, kMergePair };

  bool Fail(std::string message) {
    if (error_.empty()) error_ = std::move(message);
    return false;
  }
  std::string MergeAt() const { return "model.merges[" + std::to_string(out_->merges.size()) + "]"; }
  std::string ModeField() const { return mode_ == Mode::kVocab ? "model.vocab['" + key_ + "']" : MergeAt(); }

  // True when the next value is field `name` of the top-level "model" object.
  bool IsModelField(const char* name) const {
    return model_depth_ != 0 && stack_.size() == model_depth_ && key_ == name;
  }

  bool Integer(int64_t v) {
    if (mode_ == Mode::kVocab) {
      if (v < 0 || v > INT32_MAX) return Fail("model.vocab['" + key_ + "']: id " + std::to_string(v) + " is out of range");
      out_->vocab.emplace_back(std::move(key_), static_cast<int32_t>(v));
      return true;
    }
    if (mode_ != Mode::kDom) return Fail(MergeAt() + ": expected a string, got a number");
    return Value(Json(v));
  }

  // Places a DOM value in the current container; last_ points at it.
  bool Value(Json v) {
    if (mode_ == Mode::kVocab) return Fail("model.vocab['" + key_ + "']: expected an integer id");
    if (mode_ != Mode::kDom) return Fail(MergeAt() + ": expected a string or a pair of strings");
    if (stack_.empty()) {
      out_->root = std::move(v);
      last_ = &out_->root;
    } else if (stack_.back()->is_object()) {
      Json& slot = (*stack_.back())[key_];
      slot = std::move(v);
      last_ = &slot;
    } else {
      stack_.back()->push_back(std::move(v));
      last_ = &stack_.back()->back();
    }
    return true;
  }

  TokenizerJsonContents* out_;
  std::vector<Json*> stack_;  // open DOM containers; pointers stay valid while open
  Json* last_ = nullptr;
  std::string key_;
  size_t model_depth_ = 0;  // stack size while inside the top-level "model" object
  Mode mode_ = Mode::kDom;
  std::vector<std::string> pair_;
  std::string error_;
};

// vocab.json: {"token": id, ...} and nothing else.
class VocabReader : public nlohmann::json_sax<Json> {
 public:
  explicit VocabReader(std::vector<std::pair<std::string, int32_t>>* out) : out_(out) {}
  const std::string& error() const { return error_; }

  bool null() override { return Fail("expected an integer id, got null"); }
  bool boolean(bool) override { return Fail("expected an integer id, got a boolean"); }
  bool number_integer(number_integer_t v) override { return Id(v); }
  bool number_unsigned(number_unsigned_t v) override {
    return Id(v > static_cast<number_unsigned_t>(INT64_MAX) ? INT64_MAX : static_cast<int64_t>(v));
  }
  bool number_float(number_float_t, const string_t&) override { return Fail("expected an integer id, got a number"); }
  bool string(string_t&) override { return Fail("expected an integer id, got a string"); }
  bool binary(binary_t&) override { return Fail("unexpected binary value"); }
  bool key(string_t& k) override {
    key_ = std::move(k);
    return true;
  }
  bool start_object(std::size_t) override {
    if (depth_++ != 0) return Fail("expected an integer id, got an object");
    return true;
  }
  bool end_object() override {
    --depth_;
    return true;
  }
  bool start_array(std::size_t) override {
    return Fail(depth_ == 0 ? "expected an object of token -> id" : "expected an integer id, got an array");
  }
  bool end_array() override { return true; }
  bool parse_error(std::size_t position, const std::string&, const nlohmann::detail::exception&) override {
    if (error_.empty()) error_ = "not valid JSON (syntax error at byte " + std::to_string(position) + ")";
    return false;
  }

 private:
  bool Fail(const std::string& what) {
    if (error_.empty()) error_ = depth_ == 0 ? "expected an object of token -> id" : "'" + key_ + "': " + what;
    return false;
  }
  bool Id(int64_t v) {
    if (depth_ == 0) return Fail("");
    if (v < 0 || v > INT32_MAX) return Fail("id " + std::to_string(v) + " is out of range");
    out_->emplace_back(std::move(key_), static_cast<int32_t>(v));
    return true;
  }

  std::vector<std::pair<std::string, int32_t>>* out_;
  std::string key_;
  int depth_ = 0;
  std::string error_;
};

}  // namespace

Result<std::vector<std::pair<std::string, int32_t>>> ReadVocabJson(const std::string& text, const std::string& file) {
  std::vector<std::pair<std::string, int32_t>> vocab;
  VocabReader reader(&vocab);
  if (!Json::sax_parse(text, &reader, nlohmann::json::input_format_t::json, /*strict=*/true)) {
    return InvalidArgument(file + ": " + (reader.error().empty() ? std::string("not valid JSON") : reader.error()));
  }
  return vocab;
}

Result<TokenizerJsonContents> ReadTokenizerJson(const std::string& text, const std::string& file) {
  TokenizerJsonContents out;
  Reader reader(&out);
  const bool ok = Json::sax_parse(text, &reader, nlohmann::json::input_format_t::json, /*strict=*/true);
  if (!ok) {
    return InvalidArgument(file + ": " + (reader.error().empty() ? std::string("not valid JSON") : reader.error()));
  }
  return out;
}

}  // namespace bitlens
