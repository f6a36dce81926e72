// tokenizer/added_tokens: the tokens a checkpoint adds on top of its model
// vocabulary ("<image>", "<|user|>", "<s>", ...). They are cut out of the text
// before normalization, leftmost-longest first, honouring lstrip / rstrip /
// single_word, as HF's AddedVocabulary does.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace bitlens {

struct AddedToken {
  std::string content;
  int32_t id = -1;
  bool special = false;
  bool lstrip = false;
  bool rstrip = false;
  bool single_word = false;
  bool normalized = false;
};

class AddedVocabulary {
 public:
  // A later token with the same content replaces the earlier one.
  void Add(AddedToken token);

  // One piece of input: either plain text or an added token's id.
  struct Segment {
    size_t begin = 0;  // byte offset of the text in the input
    size_t end = 0;
    int32_t id = -1;   // >= 0: an added token
  };
  // Cuts `text` at the tokens with normalized == `normalized`.
  std::vector<Segment> Split(std::string_view text, bool normalized) const;

  bool empty() const { return tokens_.empty(); }
  bool has_normalized() const { return has_normalized_; }
  const AddedToken* FindById(int32_t id) const;
  const AddedToken* FindByContent(std::string_view content) const;
  const std::vector<AddedToken>& tokens() const { return tokens_; }

 private:
  std::vector<AddedToken> tokens_;
  std::unordered_map<std::string, size_t> by_content_;
  std::unordered_map<int32_t, size_t> by_id_;
  // Candidates by first byte, longest content first.
  std::vector<std::vector<size_t>> by_first_byte_ = std::vector<std::vector<size_t>>(256);
  bool has_normalized_ = false;
};

}  // namespace bitlens
