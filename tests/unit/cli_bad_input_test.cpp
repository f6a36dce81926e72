// Bad input through the CLI: every damaged file a user may hand to
// `bitlens run` gives exit code 2 and one line on stderr that names the file
// and what is wrong — never a crash and never a half-written output.
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "test_paths.h"

namespace bitlens {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void Spit(const std::string& path, const std::string& bytes) { std::ofstream(path, std::ios::binary) << bytes; }

// Splits a safetensors file into its JSON header and data buffer.
void SplitSafetensors(const std::string& bytes, json* header, std::string* data) {
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  *header = json::parse(bytes.substr(8, n));
  *data = bytes.substr(8 + n);
}

std::string JoinSafetensors(const json& header, const std::string& data) {
  const std::string text = header.dump();
  std::string out(8, '\0');
  const uint64_t n = text.size();
  std::memcpy(out.data(), &n, 8);
  return out + text + data;
}

class CliBadInput : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = testing::ScratchDir();
    good_ = root_ + "/good";
    auto r = testing::RunCli("synth --family llava --preset tiny -o " + good_);
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }

  // A copy of the good model in which `edit` damages something.
  std::string Damaged(const std::string& name, const std::function<void(const std::string& dir)>& edit) {
    const std::string dir = root_ + "/" + name;
    fs::copy(good_, dir, fs::copy_options::recursive);
    edit(dir);
    return dir;
  }

  // Runs `bitlens run` and checks exit code 2 and one line containing every needle.
  void ExpectRejected(const std::string& args, const std::vector<std::string>& needles) {
    auto r = testing::RunCli("run " + args + " --prompt hi --max-tokens 2");
    EXPECT_EQ(r.exit_code, 2) << args << "\nstderr: " << r.err;
    EXPECT_TRUE(r.out.empty()) << "no text may be generated from bad input, got: " << r.out;
    std::string last_line = r.err;
    while (!last_line.empty() && last_line.back() == '\n') last_line.pop_back();
    EXPECT_EQ(last_line.find('\n'), std::string::npos) << "expected one line, got:\n" << r.err;
    for (const auto& needle : needles) {
      EXPECT_NE(r.err.find(needle), std::string::npos) << "missing '" << needle << "' in: " << r.err;
    }
  }

  std::string root_, good_;
};

TEST_F(CliBadInput, TruncatedSafetensors) {
  const auto dir = Damaged("truncated", [](const std::string& d) {
    const std::string bytes = Slurp(d + "/model.safetensors");
    Spit(d + "/model.safetensors", bytes.substr(0, bytes.size() * 2 / 3));
  });
  ExpectRejected("--model " + dir, {"model.safetensors", "truncated"});
}

TEST_F(CliBadInput, CorruptedHeaderJson) {
  const auto dir = Damaged("corrupted", [](const std::string& d) {
    std::string bytes = Slurp(d + "/model.safetensors");
    bytes[8] = '#';  // the header's opening brace
    Spit(d + "/model.safetensors", bytes);
  });
  ExpectRejected("--model " + dir, {"model.safetensors", "not valid JSON"});
}

TEST_F(CliBadInput, OffsetsPastTheEnd) {
  const auto dir = Damaged("past_end", [](const std::string& d) {
    json header;
    std::string data;
    SplitSafetensors(Slurp(d + "/model.safetensors"), &header, &data);
    for (auto& [name, entry] : header.items()) {
      if (name == "__metadata__") continue;
      const uint64_t size = entry["data_offsets"][1].get<uint64_t>() - entry["data_offsets"][0].get<uint64_t>();
      entry["data_offsets"] = {data.size() - size + 64, data.size() + 64};
      break;
    }
    Spit(d + "/model.safetensors", JoinSafetensors(header, data));
  });
  ExpectRejected("--model " + dir, {"model.safetensors", "truncated download"});
}

TEST_F(CliBadInput, OverlappingTensors) {
  const auto dir = Damaged("overlap", [](const std::string& d) {
    json header;
    std::string data;
    SplitSafetensors(Slurp(d + "/model.safetensors"), &header, &data);
    // Point the second tensor at the first one's bytes (same size: two norm weights).
    std::vector<std::string> norms;
    for (auto& [name, entry] : header.items()) {
      if (name.find("input_layernorm.weight") != std::string::npos) norms.push_back(name);
    }
    ASSERT_GE(norms.size(), 2u);
    header[norms[1]]["data_offsets"] = header[norms[0]]["data_offsets"];
    Spit(d + "/model.safetensors", JoinSafetensors(header, data));
  });
  ExpectRejected("--model " + dir, {"model.safetensors", "overlap"});
}

TEST_F(CliBadInput, ShapeDisagreesWithConfig) {
  const auto dir = Damaged("shape", [](const std::string& d) {
    json config = json::parse(Slurp(d + "/config.json"));
    config["text_config"]["intermediate_size"] = config["text_config"]["intermediate_size"].get<int>() * 2;
    Spit(d + "/config.json", config.dump(2));
  });
  ExpectRejected("--model " + dir, {"model.safetensors", "mlp", "config.json"});
}

TEST_F(CliBadInput, MissingTensor) {
  const auto dir = Damaged("missing", [](const std::string& d) {
    json header;
    std::string data;
    SplitSafetensors(Slurp(d + "/model.safetensors"), &header, &data);
    header.erase("language_model.model.norm.weight");
    Spit(d + "/model.safetensors", JoinSafetensors(header, data));
  });
  ExpectRejected("--model " + dir, {"language_model.model.norm.weight", "missing"});
}

TEST_F(CliBadInput, UnknownModelType) {
  const auto dir = Damaged("model_type", [](const std::string& d) {
    json config = json::parse(Slurp(d + "/config.json"));
    config["model_type"] = "mamba";
    Spit(d + "/config.json", config.dump(2));
  });
  ExpectRejected("--model " + dir, {"config.json", "model_type 'mamba'"});
}

TEST_F(CliBadInput, MalformedConfigJson) {
  const auto dir = Damaged("malformed", [](const std::string& d) {
    const std::string text = Slurp(d + "/config.json");
    Spit(d + "/config.json", text.substr(0, text.size() / 2));
  });
  ExpectRejected("--model " + dir, {"config.json", "malformed JSON"});
}

TEST_F(CliBadInput, ImageThatIsNotAnImage) {
  const std::string fake = root_ + "/photo.png";
  Spit(fake, "this is a text file, not a picture\n");
  ExpectRejected("--model " + good_ + " --image " + fake, {"photo.png", "not a PNG or JPEG"});
}

TEST_F(CliBadInput, PromptLongerThanTheContext) {
  std::string prompt;
  for (int i = 0; i < 200; ++i) prompt += "word ";
  auto r = testing::RunCli("run --model " + good_ + " --prompt '" + prompt + "' --max-context 64 --max-tokens 4");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("context"), std::string::npos) << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
}

TEST_F(CliBadInput, FailedSynthLeavesNoOutput) {
  const std::string out = root_ + "/never";
  auto r = testing::RunCli("synth --family llava --preset no-such-preset -o " + out);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_FALSE(fs::exists(out));
  EXPECT_FALSE(fs::exists(out + ".tmp"));
}

}  // namespace
}  // namespace bitlens
