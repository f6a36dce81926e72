// The calibration JSONL reader: samples and their resolved image paths, and
// one-line errors naming file:line and the field for every kind of bad line.
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "quant/calib_jsonl.h"
#include "test_paths.h"

namespace bitlens::quant {
namespace {

TEST(QuantCalibJsonl, ParsesSamplesAndResolvesImagesAgainstTheFileDirectory) {
  const std::string text =
      "{\"image\": \"img/a.png\", \"prompt\": \"Describe.\", \"answer\": \"A cat.\"}\n"
      "\n"
      "{\"prompt\": \"Only text\", \"answer\": null}\r\n"
      "{\"image\": \"/abs/b.png\", \"prompt\": \"\", \"extra\": 1}";
  auto s = ParseCalibJsonl(text, "c.jsonl", "/data/calib");
  ASSERT_TRUE(s.ok()) << s.status().message();
  ASSERT_EQ(s->size(), 3u);
  EXPECT_EQ((*s)[0].image, "/data/calib/img/a.png");
  EXPECT_EQ((*s)[0].prompt, "Describe.");
  ASSERT_TRUE((*s)[0].answer.has_value());
  EXPECT_EQ(*(*s)[0].answer, "A cat.");
  EXPECT_EQ((*s)[0].line, 1);
  EXPECT_EQ((*s)[1].image, "");
  EXPECT_FALSE((*s)[1].answer.has_value());
  EXPECT_EQ((*s)[1].line, 3);
  EXPECT_EQ((*s)[2].image, "/abs/b.png");
  EXPECT_EQ((*s)[2].line, 4);
}

struct BadCase {
  const char* text;
  const char* want;  // substring of the message
};

TEST(QuantCalibJsonl, BadLinesGiveOneLineErrorsNamingFileLineAndField) {
  const BadCase cases[] = {
      {"{\"prompt\": \"ok\"}\n{\"prompt\": 3}\n", "c.jsonl:2: 'prompt' must be a string (got number)"},
      {"{\"image\": \"a.png\"}\n", "c.jsonl:1: missing 'prompt'"},
      {"{\"prompt\": \"x\", \"image\": 5}\n", "c.jsonl:1: 'image' must be a string (got number)"},
      {"{\"prompt\": \"x\", \"answer\": [1]}\n", "c.jsonl:1: 'answer' must be a string (got array)"},
      {"{\"prompt\": \"x\", \"image\": \"\"}\n", "c.jsonl:1: 'image' is an empty path"},
      {"\n\n{\"prompt\": \"x\"\n", "c.jsonl:3: not valid JSON"},
      {"[1, 2]\n", "c.jsonl:1: expected a JSON object, got array"},
      {"{\"prompt\": \"\"}\n", "c.jsonl:1: 'prompt' is empty and there is no image or answer"},
      {"\n  \n", "c.jsonl: no calibration samples"},
      {"", "c.jsonl: no calibration samples"},
  };
  for (const BadCase& c : cases) {
    auto s = ParseCalibJsonl(c.text, "c.jsonl", "");
    ASSERT_FALSE(s.ok()) << "accepted: " << c.text;
    EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument) << s.status().message();
    EXPECT_NE(s.status().message().find(c.want), std::string::npos)
        << "input: " << c.text << "\nmessage: " << s.status().message() << "\nwanted: " << c.want;
    EXPECT_EQ(s.status().message().find('\n'), std::string::npos) << s.status().message();
  }
}

TEST(QuantCalibJsonl, ReadChecksThatImagesExist) {
  const std::string dir = testing::ScratchDir();
  std::ofstream(dir + "/a.png") << "not really a png";
  std::ofstream(dir + "/calib.jsonl") << "{\"image\": \"a.png\", \"prompt\": \"x\"}\n"
                                      << "{\"image\": \"missing.png\", \"prompt\": \"y\"}\n";
  auto s = ReadCalibJsonl(dir + "/calib.jsonl");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kNotFound);
  EXPECT_NE(s.status().message().find("calib.jsonl:2: 'image' " + dir + "/missing.png not found"), std::string::npos)
      << s.status().message();

  std::ofstream(dir + "/good.jsonl") << "{\"image\": \"a.png\", \"prompt\": \"x\"}\n";
  auto good = ReadCalibJsonl(dir + "/good.jsonl");
  ASSERT_TRUE(good.ok()) << good.status().message();
  EXPECT_EQ((*good)[0].image, dir + "/a.png");

  auto absent = ReadCalibJsonl(dir + "/nope.jsonl");
  EXPECT_EQ(absent.status().code(), StatusCode::kNotFound);
  EXPECT_NE(absent.status().message().find("nope.jsonl: calibration file not found"), std::string::npos);
}

}  // namespace
}  // namespace bitlens::quant
