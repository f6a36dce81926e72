// Real-shape presets planned without writing (`synth --dry-run`): parameter
// counts against sums worked out by hand from the published shapes, bytes,
// shard limits, and the special-token ids config.json relies on.
#include <filesystem>

#include <gtest/gtest.h>

#include "model/synth.h"
#include "test_paths.h"

namespace bitlens {
namespace {

// Llama/Phi-3 decoder: embeddings + layers x (attention + MLP + 2 norms) +
// final norm (+ lm_head when untied).
int64_t DecoderParams(int64_t vocab, int64_t h, int64_t inter, int64_t layers, int64_t heads, int64_t kv_heads,
                      int64_t head_dim, bool tied) {
  const int64_t attn = h * heads * head_dim + 2 * h * kv_heads * head_dim + heads * head_dim * h;
  const int64_t mlp = 3 * h * inter;
  return vocab * h + layers * (attn + mlp + 2 * h) + h + (tied ? 0 : vocab * h);
}

// CLIP (class token, pre_layrnorm, no patch bias) or SigLIP (patch bias).
int64_t VisionParams(bool clip, int64_t d, int64_t inter, int64_t layers, int64_t image, int64_t patch) {
  const int64_t patches = (image / patch) * (image / patch);
  int64_t n = d * 3 * patch * patch + (patches + (clip ? 1 : 0)) * d;
  n += clip ? d /*class*/ + 2 * d /*pre_layrnorm*/ : d /*patch bias*/;
  n += layers * (4 * (d * d + d) + 2 * (2 * d) + (inter * d + inter) + (d * inter + d));
  return n + 2 * d;  // post_layernorm
}

int64_t ProjectorParams(int64_t vision_d, int64_t text_h) { return vision_d * text_h + text_h + text_h * text_h + text_h; }

SynthPlan Plan(const std::string& preset) {
  SynthOptions o;
  o.preset = preset;
  auto plan = PlanSynth(o);
  EXPECT_TRUE(plan.ok()) << plan.status().message();
  return plan.ok() ? *plan : SynthPlan{};
}

TEST(SynthPlan, Phi4MiniIs3Point8BillionParameters) {
  const SynthPlan p = Plan("phi-4-mini");
  // 200064 x 3072 embeddings (tied) + 32 x (qkv 5120x3072 + o 3072x3072 +
  // gate_up 16384x3072 + down 3072x8192 + 2 x 3072) + 3072.
  EXPECT_EQ(DecoderParams(200064, 3072, 8192, 32, 24, 8, 128, true), 3'836'021'760);
  EXPECT_EQ(p.total_params, 3'836'021'760);
  EXPECT_EQ(p.dtype, DType::kBF16);
  EXPECT_EQ(p.total_bytes, uint64_t{2} * 3'836'021'760u);
  EXPECT_EQ(p.tensors.size(), 1u + 32 * 6 + 1);
  EXPECT_EQ(p.shards.size(), 4u);
  for (const auto& s : p.shards) EXPECT_LE(s.bytes, 2'000'000'000u) << s.file;
  EXPECT_EQ(p.shards[0].file, "model-00001-of-00004.safetensors");
  // Phi-4-mini's rope: partial rotary 0.75 of head_dim 128 -> 48 factor pairs.
  EXPECT_EQ(p.config.text.rope.type, "longrope");
  EXPECT_EQ(p.config.text.rope.long_factor.size(), 48u);
  EXPECT_EQ(p.config.text.rope.short_factor.size(), 48u);
  EXPECT_DOUBLE_EQ(p.config.text.rope.long_factor.back(), 47.77);
  EXPECT_EQ(p.config.text.rope.original_max_position_embeddings, 4096);
  EXPECT_TRUE(p.config.text.tie_word_embeddings);
  EXPECT_EQ(p.config.text.bos_token_id, 199999);
}

TEST(SynthPlan, Llava15_7bMatchesItsPublishedShapes) {
  const SynthPlan p = Plan("llava-1.5-7b");
  const int64_t want = VisionParams(true, 1024, 4096, 24, 336, 14) + ProjectorParams(1024, 4096) +
                       DecoderParams(32064, 4096, 11008, 32, 32, 32, 128, false);
  EXPECT_EQ(p.total_params, want);
  EXPECT_EQ(p.total_params, 7'063'427'072);
  EXPECT_EQ(p.dtype, DType::kF16);
  EXPECT_EQ(p.config.image_token_index, 32000);
  EXPECT_EQ(p.config.image_seq_length(), 576);
}

TEST(SynthPlan, Phi35VisionIsClipLargePlusPhi3Mini) {
  const SynthPlan p = Plan("phi-3.5-vision");
  const int64_t want = VisionParams(true, 1024, 4096, 24, 336, 14) + ProjectorParams(1024, 3072) +
                       DecoderParams(32064, 3072, 8192, 32, 32, 32, 96, false);
  EXPECT_EQ(p.total_params, want);
  EXPECT_EQ(p.total_params, 4'137'176'064);  // as in docs/cli.md
  EXPECT_EQ(p.config.text.model_type, "phi3");
  EXPECT_EQ(p.config.text.rope.short_factor.size(), 48u);  // head_dim 96, full rotary
}

TEST(SynthPlan, SmolVlm256mIsSiglipPlusSmolLm2) {
  const SynthPlan p = Plan("smolvlm-256m");
  const int64_t want = VisionParams(false, 768, 3072, 12, 512, 16) + ProjectorParams(768, 576) +
                       DecoderParams(49280, 576, 1536, 30, 9, 3, 64, false);
  EXPECT_EQ(p.total_params, want);
  EXPECT_EQ(p.total_params, 250'182'336);  // as in docs/cli.md
  EXPECT_EQ(p.config.image_seq_length(), 1024);
  EXPECT_EQ(p.config.image_token_index, 49190);
}

TEST(SynthPlan, DryRunCliPrintsTheCountAndWritesNothing) {
  // A sibling of the scratch directory that must never be created.
  const std::string dir = testing::ScratchDir() + "-never";
  auto r = testing::RunCli("synth --preset phi-4-mini --dry-run -o " + dir);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("3,836,021,760"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("(3.84 B)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("tied to embeddings"), std::string::npos) << r.out;
  EXPECT_FALSE(std::filesystem::exists(dir));
  auto j = testing::RunCli("synth --preset phi-4-mini --dry-run --json");
  EXPECT_EQ(j.exit_code, 0) << j.err;
  EXPECT_NE(j.out.find("\"total_parameters\": 3836021760"), std::string::npos) << j.out;
}

TEST(SynthPlan, CliRejectsBadFlagsWithExitCode2) {
  for (const char* args : {"synth --family gpt --preset tiny --dry-run", "synth --family llama --preset tiny --dtype f8 --dry-run",
                           "synth --preset phi-4-mini --family llava --dry-run", "synth --family llama --preset tiny"}) {
    auto r = testing::RunCli(args);
    EXPECT_EQ(r.exit_code, 2) << args << "\n" << r.err;
    EXPECT_NE(r.err.find("bitlens: "), std::string::npos) << args << "\n" << r.err;
  }
}

}  // namespace
}  // namespace bitlens
