// `bitlens export --to pte` end to end on the tiny LLaVA: the written file is
// read back by bitlens' own .pte reader (every offset validated) and its
// structure checked: identifier, eh00 header, segment alignment, the runner's
// methods, one BitlensBackend delegate per compute method whose segment is the
// model's .blz image, and the metadata methods' constants. Then corrupted
// copies (truncated, wrong identifier, offsets past the end, misaligned
// segments) are refused with one line.
#include <cstring>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "formats/blz.h"
#include "formats/hf_config.h"
#include "formats/pte.h"
#include "test_paths.h"

namespace bitlens {
namespace {

namespace fs = std::filesystem;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

class PteExport : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(testing::ScratchDir() + "/pte_export");
    fs::remove_all(*dir_);
    fs::create_directories(*dir_);
    auto r = testing::RunCli("synth --family llava --preset tiny -o " + *dir_ + "/src");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    r = testing::RunCli("export --model " + *dir_ + "/src --to pte -q -o " + *dir_ + "/tiny.pte");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    bytes_ = new std::string(ReadAll(*dir_ + "/tiny.pte"));
  }
  static void TearDownTestSuite() {
    delete dir_;
    delete bytes_;
  }
  static Result<pte::Contents> ParseBytes(const std::string& b) {
    return pte::Parse(reinterpret_cast<const uint8_t*>(b.data()), b.size());
  }
  void ExpectRefused(const std::string& b, const std::string& message) {
    auto r = ParseBytes(b);
    ASSERT_FALSE(r.ok()) << "accepted; expected: " << message;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status().message();
    EXPECT_NE(r.status().message().find(message), std::string::npos) << r.status().message();
    EXPECT_EQ(r.status().message().find('\n'), std::string::npos) << r.status().message();
  }
  static std::string* dir_;
  static std::string* bytes_;
};
std::string* PteExport::dir_ = nullptr;
std::string* PteExport::bytes_ = nullptr;

TEST_F(PteExport, StructureReadsBack) {
  ASSERT_FALSE(bytes_->empty());
  EXPECT_EQ(bytes_->substr(4, 4), "ET12");
  EXPECT_EQ(bytes_->substr(8, 4), "eh00");
  EXPECT_FALSE(fs::exists(*dir_ + "/tiny.pte.tmp"));
  EXPECT_FALSE(fs::exists(*dir_ + "/tiny.pte.blz-image.tmp"));
  auto file = pte::PteFile::Open(*dir_ + "/tiny.pte");
  ASSERT_TRUE(file.ok()) << file.status().message();
  const pte::Contents& c = (*file)->contents();
  EXPECT_EQ(c.segment_base_offset % 4096, 0u) << c.segment_base_offset;
  EXPECT_EQ(c.segment_base_offset + c.segment_data_size, bytes_->size());
  ASSERT_EQ(c.segments.size(), 2u);
  for (const pte::Segment& s : c.segments) EXPECT_EQ(s.offset % 128, 0u) << s.offset;
  ASSERT_TRUE(c.has_constant_segment);
  EXPECT_EQ(c.constant_segment, 1u);
  ASSERT_EQ(c.constant_offsets, std::vector<uint64_t>{0});

  std::vector<std::string> names;
  for (const pte::Method& m : c.methods) names.push_back(m.name);
  const std::vector<std::string> want = {"vision_encoder",  "token_embedding",     "text_decoder",
                                         "get_max_seq_len", "get_max_context_len", "get_bos_id",
                                         "get_eos_ids",     "get_vocab_size",      "use_kv_cache"};
  EXPECT_EQ(names, want);

  for (const char* name : {"vision_encoder", "token_embedding", "text_decoder"}) {
    const pte::Method* m = c.Find(name);
    ASSERT_NE(m, nullptr) << name;
    ASSERT_EQ(m->delegates.size(), 1u) << name;
    EXPECT_EQ(m->delegate_calls, 1) << name;
    const pte::Delegate& d = m->delegates[0];
    EXPECT_EQ(d.id, "BitlensBackend");
    ASSERT_TRUE(d.in_segment) << name;
    const pte::Segment& seg = c.segments.at(d.index);
    EXPECT_EQ(seg.offset % 4096, 0u) << name << " at " << seg.offset;
    ASSERT_EQ(d.compile_specs.at(0).first, "method");
    EXPECT_EQ(d.compile_specs.at(0).second, name);
    // The blob is a complete .blz image: parse it where it lies.
    const uint8_t* blob = (*file)->mapping()->data() + seg.offset;
    auto image = blz::Parse(blob, static_cast<size_t>(seg.size));
    ASSERT_TRUE(image.ok()) << name << ": " << image.status().message();
    EXPECT_GT(image->tensors.size(), 10u);
    EXPECT_FALSE(m->inputs.empty());
    EXPECT_EQ(m->outputs.size(), 1u);
  }

  auto config = LoadModelConfig(*dir_ + "/src");
  ASSERT_TRUE(config.ok()) << config.status().message();
  auto constant = [&](const char* name) {
    const pte::Method* m = c.Find(name);
    EXPECT_NE(m, nullptr) << name;
    return m == nullptr ? std::vector<pte::Constant>() : m->output_constants;
  };
  EXPECT_EQ(constant("get_vocab_size").at(0).value, config->text.vocab_size);
  EXPECT_EQ(constant("get_max_seq_len").at(0).value, std::min<int64_t>(4096, config->text.max_position_embeddings));
  EXPECT_EQ(constant("get_max_context_len").at(0).value, constant("get_max_seq_len").at(0).value);
  EXPECT_TRUE(constant("use_kv_cache").at(0).is_bool);
  EXPECT_EQ(constant("use_kv_cache").at(0).value, 1);
  EXPECT_EQ(constant("get_bos_id").at(0).value, config->text.bos_token_id);
  ASSERT_EQ(constant("get_eos_ids").size(), config->text.eos_token_ids.size());
  EXPECT_EQ(constant("get_eos_ids").at(0).value, config->text.eos_token_ids.at(0));
}

TEST_F(PteExport, BadFilesAreRefusedWithOneLine) {
  const std::string& good = *bytes_;
  ASSERT_TRUE(ParseBytes(good).ok());
  ExpectRefused(good.substr(0, 20), "truncated");
  ExpectRefused(good.substr(0, 2000), "past the end of the file");
  ExpectRefused(good.substr(0, good.size() - 4096), "past the end: truncated");
  std::string b = good;
  std::memcpy(b.data() + 4, "ET11", 4);
  ExpectRefused(b, "file identifier is not ET12");
  b = good;
  std::memcpy(b.data() + 8, "xh00", 4);
  ExpectRefused(b, "no eh00 extended header");
  b = good;
  const uint64_t misaligned = 4096 + 64;
  std::memcpy(b.data() + 24, &misaligned, 8);
  ExpectRefused(b, "not 128-byte aligned");
  b = good;
  const uint32_t root = 1u << 30;
  std::memcpy(b.data(), &root, 4);
  ExpectRefused(b, "program root offset");
  // A program whose segment lies past the segment data: re-encode with a bad table.
  pte::ProgramSpec spec;
  pte::MethodSpec m;
  m.name = "forward";
  m.segment = 0;
  m.outputs = {{pte::ScalarType::kFloat, {1, 4}}};
  spec.methods.push_back(m);
  spec.segments = {{0, 1 << 20}};
  std::string program = pte::EncodeProgram(spec);
  const uint64_t base = (program.size() + 4095) / 4096 * 4096;
  pte::SetSegmentBase(&program, base, 4096);
  program.resize(base + 4096, '\0');
  ExpectRefused(program, "past the end of the segment data");
  spec.segments = {{64, 128}};
  program = pte::EncodeProgram(spec);
  pte::SetSegmentBase(&program, base, 4096);
  program.resize(base + 4096, '\0');
  ExpectRefused(program, "segment 0 offset 64 is not 128-byte aligned");
  spec.segments = {{128, 128}};
  program = pte::EncodeProgram(spec);
  pte::SetSegmentBase(&program, base, 4096);
  program.resize(base + 4096, '\0');
  ExpectRefused(program, "BitlensBackend segment is not 4096-byte aligned");
  spec.segments = {{0, 128}};
  program = pte::EncodeProgram(spec);
  pte::SetSegmentBase(&program, base, 4096);
  program.resize(base + 4096, '\0');
  EXPECT_TRUE(ParseBytes(program).ok());
  // Every prefix of the real file is refused without a crash.
  for (size_t n = 0; n < 4096 + 64; n += 7) {
    EXPECT_FALSE(ParseBytes(good.substr(0, n)).ok()) << n;
  }
}

}  // namespace
}  // namespace bitlens
