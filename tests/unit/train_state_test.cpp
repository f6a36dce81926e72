// train/train_state: the state file round-trips exactly, and every kind of
// bad file (truncated, wrong magic, newer version, size mismatch, corrupted
// bytes, missing section) is one error line naming the file — never a crash.
#include "train/train_state.h"

#include <cstring>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "test_paths.h"

namespace bitlens::train {
namespace {

TrainState SmallState() {
  TrainState s;
  s.step = 7;
  s.optimizer_step = 7;
  s.seconds = 12.5;
  s.tokens = 4321;
  s.recipe_json = "{\"seed\": 3}";
  s.tokenizer_json = "{\"model\": {\"type\": \"BPE\"}}";
  s.log_jsonl = "{\"step\":1,\"loss\":3.1}\n{\"step\":2,\"loss\":2.9}\n";
  s.tensors = {{"a.weight", {2, 3}}, {"a.bias", {3}}, {"empty", {0, 5}}};
  for (int i = 0; i < 9; ++i) {
    s.values.push_back(0.5f * i - 1.0f);
    s.adam_m.push_back(1e-3f * i);
    s.adam_v.push_back(1e-6f * i * i);
  }
  return s;
}

Result<TrainState> Parse(const std::string& bytes) {
  return ParseTrainState(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "state.bin");
}

void ExpectOneLineError(const Result<TrainState>& r, const std::string& needle) {
  ASSERT_FALSE(r.ok()) << "accepted a bad state; expected an error containing '" << needle << "'";
  const std::string& m = r.status().message();
  EXPECT_EQ(m.rfind("state.bin: ", 0), 0u) << m;
  EXPECT_EQ(m.find('\n'), std::string::npos) << m;
  EXPECT_NE(m.find(needle), std::string::npos) << m;
}

void PutU32(std::string* s, size_t at, uint32_t v) { std::memcpy(&(*s)[at], &v, 4); }
void PutU64(std::string* s, size_t at, uint64_t v) { std::memcpy(&(*s)[at], &v, 8); }

// Rewrites the table checksum after a test edits the section table on purpose.
void FixTableCrc(std::string* s) {
  uint32_t count;
  std::memcpy(&count, s->data() + 12, 4);
  PutU32(s, 24, Crc32(reinterpret_cast<const uint8_t*>(s->data()) + 32, 32u * count));
}

TEST(TrainState, RoundTripsExactly) {
  const TrainState s = SmallState();
  const std::string bytes = SerializeTrainState(s);
  auto r = Parse(bytes);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->step, 7);
  EXPECT_EQ(r->optimizer_step, 7);
  EXPECT_EQ(r->seconds, 12.5);
  EXPECT_EQ(r->tokens, 4321);
  EXPECT_EQ(r->recipe_json, s.recipe_json);
  EXPECT_EQ(r->tokenizer_json, s.tokenizer_json);
  EXPECT_EQ(r->log_jsonl, s.log_jsonl);
  ASSERT_EQ(r->tensors.size(), 3u);
  EXPECT_EQ(r->tensors[0].name, "a.weight");
  EXPECT_EQ(r->tensors[0].shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(r->tensors[2].shape, (std::vector<int64_t>{0, 5}));
  EXPECT_EQ(r->values, s.values);
  EXPECT_EQ(r->adam_m, s.adam_m);
  EXPECT_EQ(r->adam_v, s.adam_v);
  EXPECT_EQ(SerializeTrainState(*r), bytes);
}

TEST(TrainState, WritesAtomicallyAndReadsBack) {
  const std::string dir = testing::ScratchDir();
  const std::string path = dir + "/run.state";
  ASSERT_TRUE(WriteTrainState(SmallState(), path).ok());
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  auto r = ReadTrainState(path);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->values, SmallState().values);
  auto missing = ReadTrainState(dir + "/absent.state");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
}

TEST(TrainState, Crc32MatchesTheStandardCheckValue) {
  const char* text = "123456789";
  EXPECT_EQ(Crc32(reinterpret_cast<const uint8_t*>(text), 9), 0xCBF43926u);
}

TEST(TrainState, TruncatedFileIsRejectedAtEveryLength) {
  const std::string bytes = SerializeTrainState(SmallState());
  for (size_t n = 0; n < bytes.size(); ++n) {
    auto r = Parse(bytes.substr(0, n));
    ASSERT_FALSE(r.ok()) << "accepted the first " << n << " of " << bytes.size() << " bytes";
    EXPECT_EQ(r.status().message().rfind("state.bin: ", 0), 0u) << r.status().message();
  }
  ExpectOneLineError(Parse(bytes.substr(0, 20)), "truncated");
  ExpectOneLineError(Parse(bytes.substr(0, bytes.size() - 1)), "truncated");
}

TEST(TrainState, WrongMagicIsRejected) {
  std::string bytes = SerializeTrainState(SmallState());
  bytes[0] = 'X';
  ExpectOneLineError(Parse(bytes), "wrong magic");
  ExpectOneLineError(Parse(std::string(64, '\0')), "wrong magic");
}

TEST(TrainState, NewerVersionIsUnsupported) {
  std::string bytes = SerializeTrainState(SmallState());
  PutU32(&bytes, 8, kTrainStateVersion + 1);
  auto r = Parse(bytes);
  ExpectOneLineError(r, "newer");
  EXPECT_EQ(r.status().code(), StatusCode::kUnsupported);
}

TEST(TrainState, SizeMismatchesAreRejected) {
  const std::string good = SerializeTrainState(SmallState());
  {  // header file size larger than the file
    std::string bytes = good;
    PutU64(&bytes, 16, bytes.size() + 100);
    ExpectOneLineError(Parse(bytes), "truncated");
  }
  {  // trailing garbage
    ExpectOneLineError(Parse(good + "xx"), "bytes but the file has");
  }
  {  // a section claiming more bytes than the file holds (table checksum kept valid)
    std::string bytes = good;
    PutU64(&bytes, 32 + 32 * 4 + 16, uint64_t{1} << 62);
    FixTableCrc(&bytes);
    ExpectOneLineError(Parse(bytes), "outside the file");
  }
  {  // values section one float short of what the tensor shapes need
    TrainState s = SmallState();
    s.values.pop_back();
    ExpectOneLineError(Parse(SerializeTrainState(s)), "'values' has 32 bytes but the tensors need 36");
  }
  {  // a shape whose element count overflows
    TrainState s = SmallState();
    s.tensors[0].shape = {int64_t{1} << 40, int64_t{1} << 40};
    ExpectOneLineError(Parse(SerializeTrainState(s)), "impossibly large");
  }
  {  // absurd section count
    std::string bytes = good;
    PutU32(&bytes, 12, 1000000);
    ExpectOneLineError(Parse(bytes), "section count");
  }
}

TEST(TrainState, CorruptedBytesFailTheChecksums) {
  const std::string good = SerializeTrainState(SmallState());
  {
    std::string bytes = good;
    bytes[bytes.size() - 3] ^= 0x40;  // inside adam_v
    ExpectOneLineError(Parse(bytes), "checksum mismatch");
  }
  {
    std::string bytes = good;
    bytes[32 + 8] ^= 0x01;  // inside the section table
    ExpectOneLineError(Parse(bytes), "section table checksum");
  }
}

TEST(TrainState, MissingOrDuplicateSectionsAreRejected) {
  std::string bytes = SerializeTrainState(SmallState());
  // Relabel the tokenizer section (index 2) as a second meta section.
  PutU32(&bytes, 32 + 32 * 2, static_cast<uint32_t>(TrainStateSection::kMeta));
  FixTableCrc(&bytes);
  ExpectOneLineError(Parse(bytes), "'meta' appears twice");
  // Relabel it as a kind a later version might add: then the tokenizer is missing.
  PutU32(&bytes, 32 + 32 * 2, 40);
  FixTableCrc(&bytes);
  ExpectOneLineError(Parse(bytes), "'tokenizer' is missing");
}

TEST(TrainState, BadMetaIsRejected) {
  std::string bytes = SerializeTrainState(SmallState());
  // Overwrite the meta payload's first byte (keeping its checksum right) so it is not JSON.
  uint64_t offset;
  std::memcpy(&offset, bytes.data() + 32 + 8, 8);
  uint64_t size;
  std::memcpy(&size, bytes.data() + 32 + 16, 8);
  bytes[offset] = '[';
  PutU32(&bytes, 32 + 24, Crc32(reinterpret_cast<const uint8_t*>(bytes.data()) + offset, size));
  FixTableCrc(&bytes);
  ExpectOneLineError(Parse(bytes), "meta");
}

}  // namespace
}  // namespace bitlens::train
