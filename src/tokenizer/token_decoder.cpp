// tokenizer/token_decoder: see token_decoder.h.
#include "tokenizer/token_decoder.h"

#include "tokenizer/byte_level.h"
#include "tokenizer/split.h"
#include "tokenizer/utf8.h"

namespace bitlens {
namespace {

using json_fields::Json;

// All tokens become one byte string; a token containing a code point that is
// not a byte spelling contributes its own UTF-8 bytes (as HF does).
class ByteLevelDecoder : public TokenDecoder {
 public:
  void Apply(std::vector<std::string>* tokens, bool raw) const override {
    std::string bytes;
    for (const auto& t : *tokens) {
      if (auto b = byte_level::Decode(t)) {
        bytes += *b;
      } else {
        bytes += t;
      }
    }
    tokens->assign(1, std::move(bytes));
  }
};

class ReplaceDecoder : public TokenDecoder {
 public:
  ReplaceDecoder(Pattern pattern, std::string content) : pattern_(std::move(pattern)), content_(std::move(content)) {}
  void Apply(std::vector<std::string>* tokens, bool raw) const override {
    for (auto& t : *tokens) t = pattern_.ReplaceAll(t, content_);
  }

 private:
  Pattern pattern_;
  std::string content_;
};

// Runs of "<0xXX>" tokens become the bytes they name. HF replaces a run that
// is not valid UTF-8 by one U+FFFD per byte token.
class ByteFallbackDecoder : public TokenDecoder {
 public:
  void Apply(std::vector<std::string>* tokens, bool raw) const override {
    std::vector<std::string> out;
    out.reserve(tokens->size());
    std::string run;
    size_t run_tokens = 0;
    auto flush = [&] {
      if (run_tokens == 0) return;
      if (raw || utf8::IsValid(run)) {
        out.push_back(run);
      } else {
        for (size_t i = 0; i < run_tokens; ++i) out.push_back("\xEF\xBF\xBD");
      }
      run.clear();
      run_tokens = 0;
    };
    for (auto& t : *tokens) {
      int byte = -1;
      if (t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>') byte = HexByte(t[3], t[4]);
      if (byte >= 0) {
        run.push_back(static_cast<char>(byte));
        ++run_tokens;
      } else {
        flush();
        out.push_back(std::move(t));
      }
    }
    flush();
    *tokens = std::move(out);
  }

 private:
  static int HexDigit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }
  static int HexByte(char hi, char lo) {
    const int h = HexDigit(hi), l = HexDigit(lo);
    return (h < 0 || l < 0) ? -1 : h * 16 + l;
  }
};

class FuseDecoder : public TokenDecoder {
 public:
  void Apply(std::vector<std::string>* tokens, bool raw) const override {
    std::string all;
    for (const auto& t : *tokens) all += t;
    tokens->assign(1, std::move(all));
  }
};

// Removes up to `start` leading and `stop` trailing copies of one character
// from every token.
class StripDecoder : public TokenDecoder {
 public:
  StripDecoder(std::string content, size_t start, size_t stop) : content_(std::move(content)), start_(start), stop_(stop) {}
  void Apply(std::vector<std::string>* tokens, bool raw) const override {
    if (content_.empty()) return;
    for (auto& t : *tokens) {
      size_t begin = 0;
      for (size_t i = 0; i < start_ && t.compare(begin, content_.size(), content_) == 0; ++i) begin += content_.size();
      size_t end = t.size();
      for (size_t i = 0; i < stop_ && end >= begin + content_.size() &&
                         t.compare(end - content_.size(), content_.size(), content_) == 0;
           ++i) {
        end -= content_.size();
      }
      t = t.substr(begin, end - begin);
    }
  }

 private:
  std::string content_;
  size_t start_, stop_;
};

class MetaspaceDecoder : public TokenDecoder {
 public:
  MetaspaceDecoder(std::string replacement, bool strip_first) : replacement_(std::move(replacement)), strip_first_(strip_first) {}
  void Apply(std::vector<std::string>* tokens, bool raw) const override {
    const Pattern p = Pattern::Literal(replacement_);
    for (size_t i = 0; i < tokens->size(); ++i) {
      std::string& t = (*tokens)[i];
      t = p.ReplaceAll(t, " ");
      if (i == 0 && strip_first_ && !t.empty() && t[0] == ' ') t.erase(0, 1);
    }
  }

 private:
  std::string replacement_;
  bool strip_first_;
};

class SequenceDecoder : public TokenDecoder {
 public:
  explicit SequenceDecoder(std::vector<std::unique_ptr<TokenDecoder>> steps) : steps_(std::move(steps)) {}
  void Apply(std::vector<std::string>* tokens, bool raw) const override {
    for (const auto& s : steps_) s->Apply(tokens, raw);
  }

 private:
  std::vector<std::unique_ptr<TokenDecoder>> steps_;
};

}  // namespace

std::unique_ptr<TokenDecoder> MakeByteLevelDecoder() { return std::make_unique<ByteLevelDecoder>(); }

Result<std::unique_ptr<TokenDecoder>> ParseTokenDecoder(const Json& j, const std::string& where) {
  if (!j.is_object()) return json_fields::Bad(where, std::string("expected an object, got ") + j.type_name());
  BL_ASSIGN_OR_RETURN(const std::string type, json_fields::String(j, "type", where));
  if (type == "ByteLevel") return MakeByteLevelDecoder();
  if (type == "ByteFallback") return std::unique_ptr<TokenDecoder>(new ByteFallbackDecoder());
  if (type == "Fuse") return std::unique_ptr<TokenDecoder>(new FuseDecoder());
  if (type == "Replace") {
    auto it = j.find("pattern");
    if (it == j.end()) return json_fields::Bad(where, "missing field 'pattern'");
    BL_ASSIGN_OR_RETURN(Pattern pattern, Pattern::Parse(*it, where + ".pattern"));
    BL_ASSIGN_OR_RETURN(std::string content, json_fields::String(j, "content", where));
    return std::unique_ptr<TokenDecoder>(new ReplaceDecoder(std::move(pattern), std::move(content)));
  }
  if (type == "Strip") {
    BL_ASSIGN_OR_RETURN(std::string content, json_fields::String(j, "content", where));
    BL_ASSIGN_OR_RETURN(int64_t start, json_fields::Int(j, "start", 0, where));
    BL_ASSIGN_OR_RETURN(int64_t stop, json_fields::Int(j, "stop", 0, where));
    if (start < 0 || stop < 0) return json_fields::Bad(where, "start and stop must not be negative");
    return std::unique_ptr<TokenDecoder>(
        new StripDecoder(std::move(content), static_cast<size_t>(start), static_cast<size_t>(stop)));
  }
  if (type == "Metaspace") {
    BL_ASSIGN_OR_RETURN(std::string replacement, json_fields::String(j, "replacement", where));
    BL_ASSIGN_OR_RETURN(auto scheme, json_fields::OptString(j, "prepend_scheme", where));
    bool strip_first = true;
    if (scheme) {
      strip_first = *scheme != "never";
    } else {
      BL_ASSIGN_OR_RETURN(strip_first, json_fields::Bool(j, "add_prefix_space", true, where));
    }
    return std::unique_ptr<TokenDecoder>(new MetaspaceDecoder(std::move(replacement), strip_first));
  }
  if (type == "Sequence") {
    auto it = j.find("decoders");
    if (it == j.end() || !it->is_array()) return json_fields::Bad(where, "'decoders' must be an array");
    std::vector<std::unique_ptr<TokenDecoder>> steps;
    for (size_t i = 0; i < it->size(); ++i) {
      BL_ASSIGN_OR_RETURN(auto step, ParseTokenDecoder((*it)[i], where + ".decoders[" + std::to_string(i) + "]"));
      steps.push_back(std::move(step));
    }
    return std::unique_ptr<TokenDecoder>(new SequenceDecoder(std::move(steps)));
  }
  return Unsupported(where + ".type: decoder '" + type + "' is not supported");
}

}  // namespace bitlens
