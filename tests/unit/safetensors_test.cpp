#include "formats/safetensors.h"

#include <cstring>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "test_paths.h"

namespace bitlens {
namespace {

std::string WriteBytes(const std::string& dir, const std::string& name, const std::string& bytes) {
  const std::string path = dir + "/" + name;
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

// Builds a safetensors image from a raw JSON header and data bytes.
std::string Image(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  const uint64_t n = header.size();
  std::memcpy(out.data(), &n, 8);
  return out + header + data;
}

TEST(Safetensors, RoundTripsEveryDtypeZeroCopy) {
  const std::string dir = testing::ScratchDir();
  std::vector<std::pair<std::string, Tensor>> tensors;
  tensors.emplace_back("a.f32", Tensor::FromF32({2, 3}, {1, 2, 3, 4, 5, 6}));
  for (DType t : {DType::kF16, DType::kBF16, DType::kI8, DType::kU8, DType::kI32, DType::kI64}) {
    tensors.emplace_back(std::string("b.") + std::string(DTypeName(t)), Tensor::Zeros(t, {4, 5}));
  }
  const std::string path = dir + "/model.safetensors";
  ASSERT_TRUE(WriteSafetensors(path, tensors, {{"format", "pt"}}).ok());
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));

  auto ckpt = Checkpoint::Open(dir);
  ASSERT_TRUE(ckpt.ok()) << ckpt.status().message();
  EXPECT_EQ(ckpt->Names().size(), tensors.size());
  auto a = ckpt->Get("a.f32");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->shape(), (Shape{2, 3}));
  EXPECT_EQ(a->data_as<float>()[5], 6.f);
  // Zero copy: the view points into the mapping that storage keeps alive.
  const auto& file = ckpt->files()[0];
  EXPECT_EQ(file->metadata().at("format"), "pt");
  auto i64 = ckpt->Get("b.I64");
  ASSERT_TRUE(i64.ok());
  EXPECT_EQ(i64->nbytes(), 4u * 5u * 8u);
}

TEST(Safetensors, ShardedCheckpointJoinsShardsThroughIndex) {
  const std::string dir = testing::ScratchDir();
  ASSERT_TRUE(WriteSafetensors(dir + "/model-00001-of-00002.safetensors", {{"x", Tensor::FromF32({1}, {7})}}).ok());
  ASSERT_TRUE(WriteSafetensors(dir + "/model-00002-of-00002.safetensors", {{"y", Tensor::FromF32({2}, {8, 9})}}).ok());
  std::ofstream(dir + "/model.safetensors.index.json")
      << R"({"metadata": {"total_size": 12}, "weight_map": {"x": "model-00001-of-00002.safetensors", "y": "model-00002-of-00002.safetensors"}})";
  auto ckpt = Checkpoint::Open(dir);
  ASSERT_TRUE(ckpt.ok()) << ckpt.status().message();
  EXPECT_EQ(ckpt->Get("y")->data_as<float>()[1], 9.f);
  EXPECT_NE(ckpt->FileOf("x"), ckpt->FileOf("y"));
  EXPECT_EQ(ckpt->Get("z").status().code(), StatusCode::kNotFound);
}

struct BadCase {
  const char* name;
  std::string bytes;
  const char* expect;  // substring of the error message
};

TEST(Safetensors, RejectsBadHeadersWithClearMessages) {
  const std::string dir = testing::ScratchDir();
  const std::vector<BadCase> cases = {
      {"short", "abc", "too short"},
      {"huge_header", std::string("\xff\xff\xff\xff\xff\x00\x00\x00", 8), "exceeds"},
      {"truncated_header", Image(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", "").substr(0, 20), "truncated"},
      {"not_json", Image("{not json", ""), "not valid JSON"},
      {"not_object", Image("[1,2]", ""), "not a JSON object"},
      {"past_end", Image(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", std::string(8, '\0')), "truncated download"},
      {"shape_mismatch", Image(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", std::string(8, '\0')), "needs 12 bytes"},
      {"overlap", Image(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", std::string(12, '\0')), "overlap"},
      {"bad_dtype", Image(R"({"a":{"dtype":"F8","shape":[1],"data_offsets":[0,1]}})", std::string(1, '\0')), "unsupported dtype"},
      {"negative_shape", Image(R"({"a":{"dtype":"U8","shape":[-1],"data_offsets":[0,1]}})", std::string(1, '\0')), "non-negative"},
      {"reversed_offsets", Image(R"({"a":{"dtype":"U8","shape":[0],"data_offsets":[1,0]}})", std::string(1, '\0')), "begin 1 > end 0"},
  };
  for (const auto& c : cases) {
    const std::string path = WriteBytes(dir, std::string(c.name) + ".safetensors", c.bytes);
    auto f = SafetensorsFile::Open(path);
    ASSERT_FALSE(f.ok()) << c.name;
    EXPECT_NE(f.status().message().find(c.expect), std::string::npos) << c.name << ": " << f.status().message();
    EXPECT_NE(f.status().message().find(path), std::string::npos) << "message must name the file: " << f.status().message();
    EXPECT_EQ(f.status().ExitCode(), 2) << c.name;
  }
}

TEST(Safetensors, WriterLeavesNoFileWhenAbandoned) {
  const std::string dir = testing::ScratchDir();
  {
    SafetensorsWriter w(dir + "/x.safetensors");
    w.Declare("a", DType::kF32, {4});
    ASSERT_TRUE(w.Begin().ok());
    // destroyed before Finish
  }
  EXPECT_FALSE(std::filesystem::exists(dir + "/x.safetensors"));
  EXPECT_FALSE(std::filesystem::exists(dir + "/x.safetensors.tmp"));
}

}  // namespace
}  // namespace bitlens
