// Parity with the reference tokenizers: bitlens' ids for every line of
// tests/golden/tokenizers/corpus.txt must equal the ids HF tokenizers /
// transformers / sentencepiece produced (tests/conformance/tokenizer_parity.py),
// and decoding those ids must give the reference text.
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "test_paths.h"
#include "tokenizer/tokenizer.h"

namespace bitlens {
namespace {

std::string ReadAll(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::vector<std::string> SplitLines(const std::string& text) {
  std::vector<std::string> lines;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    lines.push_back(text.substr(pos, end - pos));
    pos = end + 1;
  }
  return lines;
}

// The corpus escapes: \n \t \r \\ (same rule as tokenizer_parity.py).
std::string Unescape(const std::string& line) {
  std::string out;
  for (size_t i = 0; i < line.size(); ++i) {
    if (line[i] == '\\' && i + 1 < line.size()) {
      const char c = line[i + 1];
      if (c == 'n' || c == 't' || c == 'r' || c == '\\') {
        out.push_back(c == 'n' ? '\n' : c == 't' ? '\t' : c == 'r' ? '\r' : '\\');
        ++i;
        continue;
      }
    }
    out.push_back(line[i]);
  }
  return out;
}

std::string GoldenDir() { return testing::SourceDir() + "/tests/golden/tokenizers"; }

std::vector<std::string> Corpus() {
  std::vector<std::string> lines;
  for (const auto& l : SplitLines(ReadAll(GoldenDir() + "/corpus.txt"))) lines.push_back(Unescape(l));
  return lines;
}

std::vector<int32_t> ParseIds(const std::string& line) {
  std::vector<int32_t> ids;
  std::istringstream in(line);
  int32_t id;
  while (in >> id) ids.push_back(id);
  return ids;
}

std::string Join(const std::vector<int32_t>& ids) {
  std::string s;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i != 0) s += ' ';
    s += std::to_string(ids[i]);
  }
  return s;
}

struct Case {
  const char* name;  // golden file stem
  const char* dir;   // under the test data, or under the golden dir when fixture
  bool fixture = false;
};

// The tokenizer directory of a case; empty when the shared test data is absent.
std::string CaseDir(const Case& c) {
  return c.fixture ? GoldenDir() + "/" + c.dir : testing::TestDataPath(c.dir);
}

#define BL_REQUIRE_CASE_DIR(var, c)                                                   \
  const std::string var = CaseDir(c);                                                 \
  if (var.empty()) GTEST_SKIP() << "test data '" << (c).dir << "' not found (set BITLENS_TEST_DATA)"

class TokenizerParity : public ::testing::TestWithParam<Case> {};

TEST_P(TokenizerParity, EncodeMatchesReferenceOnEveryCorpusLine) {
  const Case c = GetParam();
  BL_REQUIRE_CASE_DIR(dir, c);
  auto tok = Tokenizer::Load(dir);
  ASSERT_TRUE(tok.ok()) << tok.status().message();
  const auto corpus = Corpus();
  const auto golden = SplitLines(ReadAll(GoldenDir() + "/" + c.name + ".ids"));
  ASSERT_EQ(golden.size(), corpus.size()) << c.name << ".ids is stale: re-run tests/conformance/tokenizer_parity.py";
  int mismatches = 0;
  for (size_t i = 0; i < corpus.size(); ++i) {
    const auto want = ParseIds(golden[i]);
    const auto got = (*tok)->Encode(corpus[i], /*add_bos=*/false);
    if (got != want) {
      if (mismatches == 0) {
        ADD_FAILURE() << c.name << ": corpus line " << i + 1 << " differs: '" << corpus[i] << "'\n  reference: ["
                      << Join(want) << "]\n  bitlens:   [" << Join(got) << "]";
      }
      ++mismatches;
    }
  }
  EXPECT_EQ(mismatches, 0) << c.name << ": " << mismatches << " of " << corpus.size() << " lines differ";
}

TEST_P(TokenizerParity, DecodeMatchesReference) {
  const Case c = GetParam();
  BL_REQUIRE_CASE_DIR(dir, c);
  auto tok = Tokenizer::Load(dir);
  ASSERT_TRUE(tok.ok()) << tok.status().message();
  const auto golden = SplitLines(ReadAll(GoldenDir() + "/" + c.name + ".ids"));
  const auto decoded = SplitLines(ReadAll(GoldenDir() + "/" + c.name + ".decoded"));
  ASSERT_EQ(golden.size(), decoded.size());
  int mismatches = 0;
  for (size_t i = 0; i < golden.size(); ++i) {
    const std::string want = nlohmann::json::parse(decoded[i]).get<std::string>();
    const std::string got = (*tok)->Decode(ParseIds(golden[i]));
    if (got != want) {
      if (mismatches == 0) {
        ADD_FAILURE() << c.name << ": decode of line " << i + 1 << " differs\n  reference: '" << want
                      << "'\n  bitlens:   '" << got << "'";
      }
      ++mismatches;
    }
  }
  EXPECT_EQ(mismatches, 0) << c.name << ": " << mismatches << " of " << golden.size() << " decodes differ";
}

TEST_P(TokenizerParity, DefaultSpecialTokensMatchReference) {
  const Case c = GetParam();
  BL_REQUIRE_CASE_DIR(dir, c);
  auto tok = Tokenizer::Load(dir);
  ASSERT_TRUE(tok.ok()) << tok.status().message();
  const auto meta = nlohmann::json::parse(ReadAll(GoldenDir() + "/" + c.name + ".meta"));
  const auto want = meta["first_line_with_specials"].get<std::vector<int32_t>>();
  const auto got = (*tok)->Encode(Corpus()[0], (*tok)->add_bos_by_default());
  EXPECT_EQ(got, want) << c.name << ": reference [" << Join(want) << "] bitlens [" << Join(got) << "]";
}

INSTANTIATE_TEST_SUITE_P(RealTokenizers, TokenizerParity,
                         ::testing::Values(Case{"llama2-spm", "tokenizers/llama2-spm"}, Case{"o200k", "tokenizers/o200k"},
                                           Case{"gpt2", "tokenizers/gpt2"}, Case{"smolvlm", "tokenizers/smolvlm"},
                                           Case{"llava-1.5", "tokenizers/llava-1.5"},
                                           Case{"qwen2-vl", "tokenizers/qwen2-vl"},
                                           Case{"tiny-spm", "tiny-spm", true},
                                           Case{"tiny-spm-model", "tiny-spm-model", true},
                                           Case{"tiny-bytelevel", "tiny-bytelevel", true},
                                           Case{"tiny-metaspace", "tiny-metaspace", true},
                                           Case{"tiny-splits", "tiny-splits", true}),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           std::string n = info.param.name;
                           for (char& ch : n)
                             if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return n;
                         });

// The same checkpoint read through its tokenizer.model (libsentencepiece plus
// the added tokens of tokenizer_config.json) and through its tokenizer.json
// must give the same ids and text, special-token strings included.
TEST(TokenizerSpmModel, AgreesWithTheCheckpointsTokenizerJson) {
  BL_REQUIRE_TEST_DATA(model, "tokenizers/llava-1.5/tokenizer.model");
  BL_REQUIRE_TEST_DATA(json, "tokenizers/llava-1.5/tokenizer.json");
  auto spm = Tokenizer::Load(model);
  ASSERT_TRUE(spm.ok()) << spm.status().message();
  auto bpe = Tokenizer::Load(json);
  ASSERT_TRUE(bpe.ok()) << bpe.status().message();
  EXPECT_EQ((*spm)->bos_id(), (*bpe)->bos_id());
  EXPECT_EQ((*spm)->eos_ids(), (*bpe)->eos_ids());
  EXPECT_EQ((*spm)->vocab_size(), (*bpe)->vocab_size());
  EXPECT_EQ((*spm)->TokenId("<image>"), 32000);
  int mismatches = 0;
  for (const auto& line : Corpus()) {
    const auto a = (*spm)->Encode(line, true);
    const auto b = (*bpe)->Encode(line, true);
    if ((a != b || (*spm)->Decode(a) != (*bpe)->Decode(b)) && mismatches++ == 0) {
      ADD_FAILURE() << "'" << line << "'\n  tokenizer.model: [" << Join(a) << "] '" << (*spm)->Decode(a)
                    << "'\n  tokenizer.json:  [" << Join(b) << "] '" << (*bpe)->Decode(b) << "'";
    }
  }
  EXPECT_EQ(mismatches, 0);
}

// llama.cpp's tokenizer test vectors for the Llama SentencePiece vocabulary
// (edge cases of spaces, newlines and tabs), checked through both the
// Llama-style tokenizer.json and the tokenizer.model.
TEST(TokenizerLlamaCppVectors, LlamaSpmThroughJsonAndModel) {
  BL_REQUIRE_TEST_DATA(inp_path, "tokenizers/llamacpp-vectors/ggml-vocab-llama-spm.gguf.inp");
  BL_REQUIRE_TEST_DATA(out_path, "tokenizers/llamacpp-vectors/ggml-vocab-llama-spm.gguf.out");
  const std::string inp = ReadAll(inp_path);
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> texts;
  for (size_t pos = 0;;) {
    const size_t next = inp.find(sep, pos);
    if (next == std::string::npos) {
      texts.push_back(inp.substr(pos));
      break;
    }
    texts.push_back(inp.substr(pos, next - pos));
    pos = next + sep.size();
  }
  std::vector<std::string> outs;
  {
    std::string all = ReadAll(out_path);
    size_t pos = 0;
    while (pos <= all.size() && outs.size() < texts.size()) {
      size_t end = all.find('\n', pos);
      if (end == std::string::npos) end = all.size();
      outs.push_back(all.substr(pos, end - pos));
      pos = end + 1;
    }
  }
  ASSERT_EQ(texts.size(), outs.size());
  ASSERT_GT(texts.size(), 40u);
  for (const char* rel : {"tokenizers/llava-1.5", "tokenizers/llama2-spm"}) {
    BL_REQUIRE_TEST_DATA(dir, rel);
    auto tok = Tokenizer::Load(dir);
    ASSERT_TRUE(tok.ok()) << tok.status().message();
    int mismatches = 0;
    for (size_t i = 0; i < texts.size(); ++i) {
      const auto want = ParseIds(outs[i]);
      const auto got = (*tok)->Encode(texts[i], false);
      if (got != want && mismatches++ == 0) {
        ADD_FAILURE() << rel << ": vector " << i << " '" << texts[i] << "'\n  llama.cpp: [" << Join(want)
                      << "]\n  bitlens:   [" << Join(got) << "]";
      }
    }
    EXPECT_EQ(mismatches, 0) << rel << ": " << mismatches << " of " << texts.size() << " vectors differ";
  }
}

}  // namespace
}  // namespace bitlens
