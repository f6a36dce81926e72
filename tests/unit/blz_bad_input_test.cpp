// Bad .blz files: each is refused by `bitlens run` with exit code 2 and one
// line naming the file and what is wrong; plus the reader's own checks on
// images the writer produced and then corrupted (checksums recomputed so the
// check under test is the one that fires).
#include <cstring>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "formats/blz.h"
#include "model/export.h"
#include "test_paths.h"

namespace bitlens {
namespace {

namespace fs = std::filesystem;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}
void WriteAll(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

template <typename T>
T Get(const std::string& b, size_t at) {
  T v;
  std::memcpy(&v, b.data() + at, sizeof(T));
  return v;
}
template <typename T>
void Set(std::string* b, size_t at, T v) {
  std::memcpy(b->data() + at, &v, sizeof(T));
}

// Recomputes the header checksum (after the header was edited).
void Reseal(std::string* b) {
  Set<uint64_t>(b, 48, 0);
  Set<uint64_t>(b, 48, blz::Fnv1a64(reinterpret_cast<const uint8_t*>(b->data()), blz::kHeaderBytes));
}

// Byte position of section `kind`'s table entry.
size_t SectionEntry(const std::string& b, blz::SectionKind kind) {
  const uint64_t table = Get<uint64_t>(b, 32);
  const uint32_t count = Get<uint32_t>(b, 40);
  for (uint32_t i = 0; i < count; ++i) {
    const size_t e = table + i * blz::kSectionEntryBytes;
    if (Get<uint32_t>(b, e) == static_cast<uint32_t>(kind)) return e;
  }
  ADD_FAILURE() << "no section of kind " << static_cast<int>(kind);
  return 0;
}

// Position of the first tensor record's offset field in the tensor table.
size_t FirstTensorOffsetField(const std::string& b) {
  const size_t e = SectionEntry(b, blz::SectionKind::kTensorTable);
  size_t p = Get<uint64_t>(b, e + 8) + 8;
  p += 4 + Get<uint32_t>(b, p);             // name
  p += 4 + Get<uint32_t>(b, p);             // type
  const uint8_t rank = Get<uint8_t>(b, p + 1);
  return p + 4 + 8 * rank;
}

// Recomputes the tensor table's checksum after it was edited.
void ResealTable(std::string* b) {
  const size_t e = SectionEntry(*b, blz::SectionKind::kTensorTable);
  const uint64_t off = Get<uint64_t>(*b, e + 8), size = Get<uint64_t>(*b, e + 16);
  Set<uint64_t>(b, e + 24, blz::Fnv1a64(reinterpret_cast<const uint8_t*>(b->data() + off), size));
}

class BlzBadInput : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(testing::ScratchDir() + "-work/blz-bad");
    fs::remove_all(*dir_);
    fs::create_directories(*dir_);
    auto r = testing::RunCli("synth --family llava --preset tiny -o " + *dir_ + "/src");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    r = testing::RunCli("export --model " + *dir_ + "/src --to blz -q -o " + *dir_ + "/good.blz");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    good_ = new std::string(ReadAll(*dir_ + "/good.blz"));
  }
  static void TearDownTestSuite() {
    delete dir_;
    delete good_;
  }

  // Writes `bytes` as <name>.blz, runs it, and expects exit 2 with one line
  // containing `message`.
  void ExpectRefused(const std::string& name, const std::string& bytes, const std::string& message) {
    const std::string path = *dir_ + "/" + name + ".blz";
    WriteAll(path, bytes);
    auto r = testing::RunCli("run --model " + path + " --prompt hi --max-tokens 2");
    EXPECT_EQ(r.exit_code, 2) << name << ": " << r.err;
    EXPECT_NE(r.err.find(message), std::string::npos) << name << ": expected '" << message << "' in: " << r.err;
    EXPECT_NE(r.err.find(path), std::string::npos) << name << ": the message should name the file: " << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << name << ": not one line: " << r.err;
  }

  static std::string* dir_;
  static std::string* good_;
};
std::string* BlzBadInput::dir_ = nullptr;
std::string* BlzBadInput::good_ = nullptr;

TEST_F(BlzBadInput, TheGoodFileRuns) {
  auto r = testing::RunCli("run --model " + *dir_ + "/good.blz --prompt hi --max-tokens 2 -v");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("load: "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("resident"), std::string::npos) << r.err;
}

TEST_F(BlzBadInput, TruncatedFile) {
  ExpectRefused("truncated", good_->substr(0, good_->size() / 2), "truncated: the header says");
  ExpectRefused("tiny", good_->substr(0, 20), "truncated: 20 bytes is shorter than the 64-byte header");
}

TEST_F(BlzBadInput, WrongMagic) {
  std::string b = *good_;
  b[0] = 'X';
  ExpectRefused("magic", b, "not a .blz file (wrong magic)");
}

TEST_F(BlzBadInput, SectionPastTheEnd) {
  std::string b = *good_;
  const size_t e = SectionEntry(b, blz::SectionKind::kMetadata);
  Set<uint64_t>(&b, e + 8, b.size() - 4);  // offset near the end, size unchanged
  ExpectRefused("section-past-end", b, "run past the end of the file");
}

TEST_F(BlzBadInput, TensorPastTheEnd) {
  std::string b = *good_;
  Set<uint64_t>(&b, FirstTensorOffsetField(b), (b.size() / blz::kTensorAlignment + 1) * blz::kTensorAlignment);
  ResealTable(&b);
  ExpectRefused("tensor-past-end", b, "lie outside the tensor data section");
  b = *good_;
  Set<uint64_t>(&b, FirstTensorOffsetField(b) + 8, uint64_t{1} << 62);  // size
  ResealTable(&b);
  ExpectRefused("tensor-size-past-end", b, "lie outside the tensor data section");
}

TEST_F(BlzBadInput, MisalignedTensorData) {
  std::string b = *good_;
  const size_t f = FirstTensorOffsetField(b);
  Set<uint64_t>(&b, f, Get<uint64_t>(b, f) + 8);
  ResealTable(&b);
  ExpectRefused("misaligned", b, "is not aligned to 4096 bytes");
}

TEST_F(BlzBadInput, OtherTargetIsaFamily) {
  std::string b = *good_;
  const bool x86 = blz::HostFamily() == "x86";
  Set<uint32_t>(&b, 12, static_cast<uint32_t>(x86 ? blz::Target::kArm64Neon : blz::Target::kX86Avx2));
  Reseal(&b);
  ExpectRefused("other-isa", b, x86 ? "built for arm64-neon; this is an x86 build" : "built for x86-avx2");
}

TEST_F(BlzBadInput, NewerFormatVersion) {
  std::string b = *good_;
  Set<uint32_t>(&b, 8, blz::kFormatVersion + 1);
  Reseal(&b);
  ExpectRefused("newer", b, "format version 2 is newer than this build reads (1)");
}

TEST_F(BlzBadInput, CorruptHeaderAndTable) {
  std::string b = *good_;
  Set<uint64_t>(&b, 16, 0);  // flags edited without resealing
  b[16] = 1;
  b[17] = 1;
  ExpectRefused("header-checksum", b, "header checksum mismatch");
  b = *good_;
  Set<uint64_t>(&b, FirstTensorOffsetField(b), 0);
  ExpectRefused("table-checksum", b, "checksum mismatch (corrupt section)");
}

TEST_F(BlzBadInput, UnknownContainerAndTarget) {
  auto r = testing::RunCli("export --model " + *dir_ + "/src --to onnx -o " + *dir_ + "/x.onnx");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("--to 'onnx' is not blz or pte"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(*dir_ + "/x.onnx"));
  r = testing::RunCli("export --model " + *dir_ + "/src --target riscv -o " + *dir_ + "/x.blz");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("--target 'riscv' is not one of"), std::string::npos) << r.err;
}

// The writer's layout, read back by the parser: alignment and contents.
TEST(BlzFormat, WriterRoundTrip) {
  const std::string path = testing::ScratchDir() + "/t.blz";
  blz::BlzWriter w(path, blz::Target::kArm64Dotprod);
  w.SetMetadataJson("{\"a\":1}");
  w.AddFile("config.json", "{}");
  w.AddFile("tokenizer.model", std::string("\0\1\2", 3));
  w.DeclareTensor("x", "F32", false, {2, 3}, 24);
  w.DeclareTensor("empty", "BF16", false, {0}, 0);
  w.DeclareTensor("p", "w2g64", true, {4, 64}, 4 * 20);
  ASSERT_TRUE(w.Begin().ok());
  const float x[6] = {1, 2, 3, 4, 5, 6};
  ASSERT_TRUE(w.WritePart(x, 12).ok());
  ASSERT_TRUE(w.WritePart(reinterpret_cast<const char*>(x) + 12, 12).ok());
  const std::string packed(80, '\x5a');
  ASSERT_TRUE(w.WritePart(packed.data(), packed.size()).ok());
  ASSERT_TRUE(w.Finish().ok());
  EXPECT_FALSE(fs::exists(path + ".tmp"));
  auto f = blz::BlzFile::Open(path);
  ASSERT_TRUE(f.ok()) << f.status().message();
  const blz::Contents& c = (*f)->contents();
  EXPECT_EQ(c.header.target, blz::Target::kArm64Dotprod);
  EXPECT_EQ(c.metadata_json, "{\"a\":1}");
  ASSERT_NE((*f)->FindFile("tokenizer.model"), nullptr);
  EXPECT_EQ(*(*f)->FindFile("tokenizer.model"), std::string_view("\0\1\2", 3));
  ASSERT_EQ(c.tensors.size(), 3u);
  for (const auto& t : c.tensors) EXPECT_EQ(t.offset % blz::kTensorAlignment, 0u) << t.name;
  EXPECT_EQ(std::memcmp((*f)->mapping()->data() + c.tensors[0].offset, x, 24), 0);
  EXPECT_EQ(c.tensors[2].type, "w2g64");
  EXPECT_TRUE(c.tensors[2].packed);
  EXPECT_EQ(c.tensors[2].shape, (Shape{4, 64}));
  EXPECT_EQ(std::memcmp((*f)->mapping()->data() + c.tensors[2].offset, packed.data(), 80), 0);
  EXPECT_EQ((*f)->CheckTargetRunsHere().ok(), blz::HostFamily() == "arm64");
}

// The fuzz seeds were written from docs/export.md alone (not by BlzWriter):
// the valid ones parse, the broken ones are refused.
TEST(BlzFormat, DocumentedLayoutSeedsParse) {
  const std::string dir = testing::SourceDir() + "/tests/fuzz/corpus/blz/";
  for (const char* name : {"minimal.blz", "packed.blz", "arm64.blz"}) {
    const std::string b = ReadAll(dir + name);
    auto c = blz::Parse(reinterpret_cast<const uint8_t*>(b.data()), b.size());
    ASSERT_TRUE(c.ok()) << name << ": " << c.status().message();
    EXPECT_FALSE(c->tensors.empty()) << name;
    ASSERT_EQ(c->files.size(), 1u) << name;
    EXPECT_EQ(c->files[0].first, "config.json");
  }
  for (const char* name : {"truncated.blz", "header_only.blz"}) {
    const std::string b = ReadAll(dir + name);
    auto c = blz::Parse(reinterpret_cast<const uint8_t*>(b.data()), b.size());
    EXPECT_FALSE(c.ok()) << name;
  }
}

}  // namespace
}  // namespace bitlens
