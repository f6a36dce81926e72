// `bitlens synth` output read back through the loaders: every tiny family in
// every dtype parses (ParseModelConfig) and loads (Checkpoint) with the
// shapes config.json implies; values follow the init rules; bytes are a
// function of the seed alone; sharding, cancellation and errors behave.
#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "base/f16.h"
#include "formats/hf_config.h"
#include "formats/safetensors.h"
#include "model/synth.h"
#include "model/synth_layout.h"
#include "test_paths.h"
#include "vision/image.h"

namespace bitlens {
namespace {

namespace fs = std::filesystem;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Result<SynthResult> SynthTiny(SynthFamily family, DType dtype, const std::string& dir, uint64_t seed = 0) {
  SynthOptions o;
  o.family = family;
  o.dtype = dtype;
  o.seed = seed;
  o.output_dir = dir;
  return Synthesize(o);
}

struct Case {
  SynthFamily family;
  DType dtype;
};

class SynthEveryFamily : public ::testing::TestWithParam<Case> {};

TEST_P(SynthEveryFamily, LoadsBackWithTheShapesConfigJsonImplies) {
  const Case c = GetParam();
  const std::string dir = testing::ScratchDir() + "/m";
  auto r = SynthTiny(c.family, c.dtype, dir);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_FALSE(fs::exists(dir + ".tmp"));

  auto config = LoadModelConfig(dir);
  ASSERT_TRUE(config.ok()) << config.status().message();
  const bool vlm = c.family == SynthFamily::kLlava || c.family == SynthFamily::kLlavaSiglip;
  EXPECT_EQ(config->is_vlm(), vlm);
  EXPECT_EQ(config->text.hidden_size, 64);
  EXPECT_EQ(config->text.num_hidden_layers, 2);
  EXPECT_EQ(config->text.vocab_size, 512);
  EXPECT_EQ(config->torch_dtype, c.dtype == DType::kF32 ? "float32" : c.dtype == DType::kBF16 ? "bfloat16" : "float16");
  if (c.family == SynthFamily::kPhi3) {
    EXPECT_EQ(config->text.rope.type, "longrope");
    EXPECT_DOUBLE_EQ(config->text.partial_rotary_factor, 0.75);
    EXPECT_EQ(config->text.rope.short_factor.size(), 6u);  // head_dim 16 * 0.75 / 2
    EXPECT_TRUE(config->text.tie_word_embeddings);
  }

  auto ckpt = Checkpoint::Open(dir);
  ASSERT_TRUE(ckpt.ok()) << ckpt.status().message();
  auto expected = HfTensorLayout(*config, HfLayout::kV4);
  ASSERT_TRUE(expected.ok()) << expected.status().message();
  EXPECT_EQ(ckpt->Names().size(), expected->size());
  for (const auto& spec : *expected) {
    const TensorEntry* e = ckpt->Find(spec.name);
    ASSERT_NE(e, nullptr) << "missing " << spec.name;
    EXPECT_EQ(ShapeToString(e->shape), ShapeToString(spec.shape)) << spec.name;
    EXPECT_EQ(e->dtype, c.dtype) << spec.name;
    // Init rules: norm scales 1, biases 0, everything else N(0, 0.02).
    Tensor t = ckpt->Get(spec.name)->ToF32();
    const float* v = t.data_as<float>();
    const int64_t n = t.numel();
    double sum = 0, sq = 0;
    for (int64_t i = 0; i < n; ++i) {
      sum += v[i];
      sq += double(v[i]) * v[i];
    }
    if (spec.init == TensorInit::kOnes) {
      EXPECT_EQ(sum, double(n)) << spec.name;
      EXPECT_EQ(sq, double(n)) << spec.name;
    } else if (spec.init == TensorInit::kZeros) {
      EXPECT_EQ(sq, 0.0) << spec.name;
    } else if (n >= 4096) {
      const double mean = sum / n, sd = std::sqrt(sq / n - mean * mean);
      // Sampling error of the mean is 0.02/sqrt(n) <= 3e-4; of the std, 0.02/sqrt(2n) <= 2.2e-4.
      EXPECT_NEAR(mean, 0.0, 1.5e-3) << spec.name;
      EXPECT_NEAR(sd, 0.02, 1.5e-3) << spec.name;
    }
  }
  if (vlm) {
    auto ip = LoadImageProcessorConfig(dir);
    ASSERT_TRUE(ip.ok()) << ip.status().message();
    if (c.family == SynthFamily::kLlava) {
      EXPECT_EQ(ip->processor_type, "CLIPImageProcessor");
      EXPECT_EQ(ip->shortest_edge, 32);
      EXPECT_TRUE(ip->do_center_crop);
      EXPECT_EQ(ip->crop_height, 32);
    } else {
      EXPECT_EQ(ip->processor_type, "SiglipImageProcessor");
      EXPECT_EQ(ip->resize_height, 32);
      EXPECT_EQ(ip->resize_width, 32);
      EXPECT_FLOAT_EQ(ip->image_mean[0], 0.5f);
    }
  } else {
    EXPECT_FALSE(fs::exists(dir + "/preprocessor_config.json"));
  }
  for (const char* f : {"tokenizer.json", "tokenizer_config.json", "generation_config.json"}) {
    EXPECT_TRUE(fs::exists(dir + "/" + f)) << f;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Tiny, SynthEveryFamily,
    ::testing::Values(Case{SynthFamily::kLlava, DType::kF32}, Case{SynthFamily::kLlava, DType::kBF16},
                      Case{SynthFamily::kLlava, DType::kF16}, Case{SynthFamily::kLlavaSiglip, DType::kF32},
                      Case{SynthFamily::kLlavaSiglip, DType::kBF16}, Case{SynthFamily::kLlavaSiglip, DType::kF16},
                      Case{SynthFamily::kLlama, DType::kF32}, Case{SynthFamily::kLlama, DType::kBF16},
                      Case{SynthFamily::kLlama, DType::kF16}, Case{SynthFamily::kPhi3, DType::kF32},
                      Case{SynthFamily::kPhi3, DType::kBF16}, Case{SynthFamily::kPhi3, DType::kF16}),
    [](const auto& info) {
      std::string name = std::string(SynthFamilyName(info.param.family)) + "_" + std::string(DTypeName(info.param.dtype));
      for (char& ch : name) {
        if (ch == '-') ch = '_';
      }
      return name;
    });

TEST(SynthDeterminism, SameSeedSameBytesOtherSeedOtherBytes) {
  const std::string root = testing::ScratchDir();
  ASSERT_TRUE(SynthTiny(SynthFamily::kLlava, DType::kBF16, root + "/a", 7).ok());
  ASSERT_TRUE(SynthTiny(SynthFamily::kLlava, DType::kBF16, root + "/b", 7).ok());
  ASSERT_TRUE(SynthTiny(SynthFamily::kLlava, DType::kBF16, root + "/c", 8).ok());
  for (const char* f : {"model.safetensors", "config.json", "tokenizer.json"}) {
    EXPECT_EQ(ReadAll(root + "/a/" + f), ReadAll(root + "/b/" + f)) << f;
  }
  EXPECT_NE(ReadAll(root + "/a/model.safetensors"), ReadAll(root + "/c/model.safetensors"));
  // Only random tensors change with the seed; norms stay 1.
  auto a = Checkpoint::Open(root + "/a");
  auto c = Checkpoint::Open(root + "/c");
  ASSERT_TRUE(a.ok() && c.ok());
  const std::string norm = "language_model.model.norm.weight";
  EXPECT_EQ(0, std::memcmp(a->Get(norm)->data(), c->Get(norm)->data(), a->Get(norm)->nbytes()));
}

TEST(SynthShards, ShardedCheckpointHoldsTheSameTensorsAsOneFile) {
  const std::string root = testing::ScratchDir();
  ASSERT_TRUE(SynthTiny(SynthFamily::kLlava, DType::kF32, root + "/one").ok());
  SynthOptions o;
  o.family = SynthFamily::kLlava;
  o.max_shard_bytes = 150'000;
  o.output_dir = root + "/many";
  auto r = Synthesize(o);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_FALSE(fs::exists(root + "/many/model.safetensors"));
  ASSERT_TRUE(fs::exists(root + "/many/model.safetensors.index.json"));
  auto one = Checkpoint::Open(root + "/one");
  auto many = Checkpoint::Open(root + "/many");
  ASSERT_TRUE(one.ok() && many.ok()) << many.status().message();
  // 679,168 tensor bytes at <= 150,000 per shard (the 131,072-byte embeddings
  // fit alone): at least 5 shards, each within the limit.
  EXPECT_GE(many->files().size(), 5u);
  for (const auto& f : many->files()) {
    uint64_t bytes = 0;
    for (const auto& e : f->entries()) bytes += e.end - e.begin;
    EXPECT_LE(bytes, 150'000u) << f->path();
    EXPECT_NE(f->path().find("-of-0000"), std::string::npos) << f->path();
  }
  ASSERT_EQ(one->Names(), many->Names());
  for (const auto& name : one->Names()) {
    Tensor x = *one->Get(name), y = *many->Get(name);
    ASSERT_EQ(x.nbytes(), y.nbytes()) << name;
    EXPECT_EQ(0, std::memcmp(x.data(), y.data(), x.nbytes())) << name << " differs between sharded and single file";
  }
  const std::string index = ReadAll(root + "/many/model.safetensors.index.json");
  EXPECT_NE(index.find("\"total_size\": 679168"), std::string::npos) << index.substr(0, 200);
}

TEST(SynthAtomic, CancelMidWriteLeavesNothing) {
  const std::string dir = testing::ScratchDir() + "/cancelled";
  std::atomic<bool> cancel{false};
  SynthOptions o;
  o.preset = "smolvlm-256m";  // ~0.5 GB; cancelled after the first progress report
  o.output_dir = dir;
  o.cancel = &cancel;
  int reports = 0;
  o.on_progress = [&](const SynthProgress& p) {
    ++reports;
    EXPECT_TRUE(fs::exists(dir + ".tmp"));
    cancel.store(true);
  };
  auto r = Synthesize(o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kCancelled) << r.status().message();
  EXPECT_EQ(reports, 1);
  EXPECT_FALSE(fs::exists(dir));
  EXPECT_FALSE(fs::exists(dir + ".tmp"));
}

TEST(SynthAtomic, UnwritableOutputLeavesNothingAndNamesThePath) {
  const std::string root = testing::ScratchDir();
  { std::ofstream(root + "/file") << "x"; }
  const std::string dir = root + "/file/model";  // parent is a regular file
  auto r = SynthTiny(SynthFamily::kLlama, DType::kF32, dir);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find(dir + ".tmp"), std::string::npos) << r.status().message();
  EXPECT_FALSE(fs::exists(dir));
}

TEST(SynthAtomic, ExistingDirectoryIsKeptUnlessForced) {
  const std::string dir = testing::ScratchDir() + "/m";
  fs::create_directories(dir);
  { std::ofstream(dir + "/keep.txt") << "mine"; }
  auto r = SynthTiny(SynthFamily::kLlama, DType::kF32, dir);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(fs::exists(dir + "/keep.txt"));
  EXPECT_FALSE(fs::exists(dir + ".tmp"));

  SynthOptions o;
  o.family = SynthFamily::kLlama;
  o.output_dir = dir;
  o.overwrite = true;
  ASSERT_TRUE(Synthesize(o).ok());
  EXPECT_FALSE(fs::exists(dir + "/keep.txt"));
  EXPECT_TRUE(fs::exists(dir + "/model.safetensors"));
  EXPECT_FALSE(fs::exists(dir + ".old"));
}

TEST(SynthAtomic, StaleStagingDirectoryFromAKilledRunIsReplaced) {
  const std::string dir = testing::ScratchDir() + "/m";
  fs::create_directories(dir + ".tmp");
  { std::ofstream(dir + ".tmp/model.safetensors.tmp") << "half"; }
  ASSERT_TRUE(SynthTiny(SynthFamily::kLlama, DType::kF32, dir).ok());
  EXPECT_FALSE(fs::exists(dir + ".tmp"));
  EXPECT_FALSE(fs::exists(dir + "/model.safetensors.tmp"));
}

TEST(SynthPresets, FamilyAndPresetMustAgree) {
  auto r = FindSynthPreset(SynthFamily::kLlama, "phi-4-mini");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("phi3"), std::string::npos) << r.status().message();
  EXPECT_FALSE(FindSynthPreset(std::nullopt, "tiny").ok());
  EXPECT_FALSE(FindSynthPreset(SynthFamily::kLlava, "gpt-5").ok());
  EXPECT_TRUE(FindSynthPreset(std::nullopt, "llava-1.5-7b").ok());
}

TEST(SynthOptions, ParseByteSizeUsesTransformersUnits) {
  EXPECT_EQ(*ParseByteSize("2GB"), 2'000'000'000u);
  EXPECT_EQ(*ParseByteSize("500MB"), 500'000'000u);
  EXPECT_EQ(*ParseByteSize("1GiB"), 1073741824u);
  EXPECT_EQ(*ParseByteSize("4096"), 4096u);
  EXPECT_FALSE(ParseByteSize("2 parsecs").ok());
  EXPECT_FALSE(ParseByteSize("0").ok());
  EXPECT_FALSE(ParseByteSize("GB").ok());
}

}  // namespace
}  // namespace bitlens

namespace bitlens {
namespace {

// The chunked writer synth streams through: pieces add up to the declared
// tensor, more than declared is refused, and a half-written tensor cannot be
// finished or overwritten by Write.
TEST(SynthStreaming, WritePartAssemblesTensorsAndRefusesOverruns) {
  const std::string path = testing::ScratchDir() + "/parts.safetensors";
  {
    SafetensorsWriter w(path);
    w.Declare("a", DType::kF32, {3});
    w.Declare("empty", DType::kF32, {0});
    w.Declare("b", DType::kBF16, {2});
    ASSERT_TRUE(w.Begin().ok());
    const float a[3] = {1, 2, 3};
    ASSERT_TRUE(w.WritePart(a, 4).ok());
    EXPECT_FALSE(w.Finish().ok()) << "finished with 'a' half written";
    EXPECT_FALSE(w.Write(a + 1, 8).ok()) << "Write in the middle of a WritePart tensor";
    ASSERT_TRUE(w.WritePart(a + 1, 8).ok());
    ASSERT_TRUE(w.WritePart(nullptr, 0).ok());  // "empty" is complete at once
    const uint16_t b[3] = {F32ToBf16(0.5f), F32ToBf16(-2.0f), 0};
    EXPECT_FALSE(w.WritePart(b, 6).ok()) << "6 bytes into a 4-byte tensor";
    ASSERT_TRUE(w.WritePart(b, 4).ok());
    const Status done = w.Finish();
    ASSERT_TRUE(done.ok()) << done.message();
  }
  auto f = SafetensorsFile::Open(path);
  ASSERT_TRUE(f.ok()) << f.status().message();
  Tensor a = f.value()->View(*f.value()->Find("a"));
  EXPECT_EQ(a.data_as<float>()[0], 1.0f);
  EXPECT_EQ(a.data_as<float>()[2], 3.0f);
  Tensor b = f.value()->View(*f.value()->Find("b")).ToF32();
  EXPECT_EQ(b.data_as<float>()[0], 0.5f);
  EXPECT_EQ(b.data_as<float>()[1], -2.0f);
}

}  // namespace
}  // namespace bitlens
