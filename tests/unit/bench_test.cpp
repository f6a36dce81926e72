// bitlens bench: the bytes-per-token accounting against the checkpoint's own
// tensor sizes, the JSON report's documented keys, and flag errors (exit 2).
// No timing is asserted.
#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "bench/bench.h"
#include "bench/kernel_bench.h"
#include "bench/model_bench.h"
#include "model/model.h"
#include "model/synth.h"
#include "test_paths.h"

namespace bitlens {
namespace {

using testing::RunCli;
using testing::ScratchDir;

std::string SynthTiny(SynthFamily family, const std::string& dir) {
  SynthOptions o;
  o.family = family;
  o.dtype = DType::kF32;  // norms are read as f32: file bytes equal runtime bytes
  o.output_dir = dir;
  auto r = Synthesize(o);
  EXPECT_TRUE(r.ok()) << r.status().message();
  return dir;
}

// Sum over the checkpoint's decoder tensors: everything but the vision tower,
// the projector and the embedding, plus one embedding row, plus the whole
// embedding again when the LM head is tied to it.
struct Expected {
  int64_t total = 0;
  int64_t embed_bytes = 0;
  int64_t tensors = 0;
};
Expected ExpectedBytes(const Model& model) {
  Expected e;
  int64_t embed_rows = 0;
  for (const std::string& name : model.checkpoint.Names()) {
    if (name.find("vision_tower") != std::string::npos || name.find("multi_modal_projector") != std::string::npos) continue;
    const TensorEntry* t = model.checkpoint.Find(name);
    const auto bytes = static_cast<int64_t>(t->end - t->begin);
    ++e.tensors;
    if (name.find("embed_tokens") != std::string::npos) {
      e.embed_bytes = bytes;
      embed_rows = t->shape[0];
      continue;
    }
    e.total += bytes;
  }
  e.total += e.embed_bytes / embed_rows;
  if (model.config.text.tie_word_embeddings) e.total += e.embed_bytes;
  return e;
}

class BenchBytes : public ::testing::TestWithParam<SynthFamily> {};

TEST_P(BenchBytes, BytesPerTokenEqualsSumOfTensorSizes) {
  const std::string dir = SynthTiny(GetParam(), ScratchDir() + "/tiny");
  auto model = LoadModel(dir);
  ASSERT_TRUE(model.ok()) << model.status().message();
  const Expected e = ExpectedBytes(**model);
  const bench::DecodeWeightBytes b = bench::CountDecodeWeightBytes(*(*model)->decoder);
  EXPECT_EQ(b.total(), e.total) << "layer matrices " << b.layer_matrices << ", vectors " << b.layer_vectors
                                << ", final norm " << b.final_norm << ", lm_head " << b.lm_head << ", embed row "
                                << b.embed_row << " over " << e.tensors << " decoder tensors";
  const int64_t hidden = (*model)->config.text.hidden_size;
  EXPECT_EQ(b.embed_row, hidden * 4) << "one f32 row of the embedding";
  if ((*model)->config.text.tie_word_embeddings) {
    EXPECT_EQ(b.lm_head, e.embed_bytes) << "tied head reads the whole table";
  }
}

INSTANTIATE_TEST_SUITE_P(Bench, BenchBytes,
                         ::testing::Values(SynthFamily::kLlama, SynthFamily::kPhi3, SynthFamily::kLlava),
                         [](const ::testing::TestParamInfo<SynthFamily>& info) {
                           switch (info.param) {
                             case SynthFamily::kLlama: return std::string("llama");
                             case SynthFamily::kPhi3: return std::string("phi3");
                             case SynthFamily::kLlava: return std::string("llava");
                             default: return std::string("other");
                           }
                         });

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void ExpectKeys(const nlohmann::json& j, const std::vector<std::string>& keys, const std::string& where) {
  ASSERT_TRUE(j.is_object()) << where << " is not an object: " << j.dump();
  for (const std::string& k : keys) EXPECT_TRUE(j.contains(k)) << where << " lacks \"" << k << "\": " << j.dump();
  EXPECT_EQ(j.size(), keys.size()) << where << " has undocumented keys: " << j.dump();
}

TEST(BenchCli, JsonReportHasTheDocumentedKeys) {
  const std::string dir = ScratchDir();
  const std::string model = SynthTiny(SynthFamily::kPhi3, dir + "/tiny");
  const std::string json_path = dir + "/bench.json";
  const auto r = RunCli("bench --threads 2 --array-mib 2 --reps 2 --kernels --formats w2g64,bf16 --shapes 16x128 "
                        "--batch 1,3 --min-time 0 --model " + model + " --prompt-tokens 5 --decode-tokens 3 --profile --json " +
                        json_path);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("decode"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("triad"), std::string::npos) << r.out;
  const auto j = nlohmann::json::parse(ReadAll(json_path), nullptr, /*allow_exceptions=*/false);
  ASSERT_FALSE(j.is_discarded()) << "not JSON: " << ReadAll(json_path);
  ExpectKeys(j, {"bitlens_bench_version", "started_utc", "command", "activations", "machine", "bandwidth", "kernels", "model", "profile"},
             "report");
  ExpectKeys(j["machine"], {"cpu_model", "logical_cores", "llc_bytes", "ram_bytes", "hwy_target", "compiler", "build_type",
                            "git_describe", "kernel", "load_average_1min"},
             "machine");
  ASSERT_TRUE(j["bandwidth"].is_array());
  ASSERT_EQ(j["bandwidth"].size(), 2u) << "1 and 2 threads: " << j["bandwidth"].dump();
  EXPECT_EQ(j["bandwidth"][0]["threads"], 1);
  EXPECT_EQ(j["bandwidth"][1]["threads"], 2);
  for (const auto& b : j["bandwidth"]) {
    ExpectKeys(b, {"threads", "array_bytes", "repetitions", "triad_gb_per_s", "triad_median_gb_per_s", "read_gb_per_s",
                   "load_average_1min"},
               "bandwidth[]");
    EXPECT_EQ(b["array_bytes"], 2 << 20);
  }
  ASSERT_TRUE(j["kernels"].is_array());
  EXPECT_EQ(j["kernels"].size(), 2u * 2u * 2u) << "2 formats x 2 batch sizes x 2 thread counts";
  for (const auto& k : j["kernels"]) {
    ExpectKeys(k, {"format", "m", "n", "k", "threads", "weight_bytes", "copies", "calls", "best_s", "median_s", "gb_per_s",
                   "gflop_per_s", "bandwidth_ratio"},
               "kernels[]");
  }
  EXPECT_EQ(j["kernels"][0]["format"], "w2g64");
  EXPECT_EQ(j["kernels"][0]["weight_bytes"], 16 * 2 * 20) << "16 rows of two 20-byte w2g64 blocks";
  const auto& m = j["model"];
  ASSERT_TRUE(m.is_object()) << "--model wrote no model section: " << m.dump();
  ExpectKeys(m, {"model_dir", "architecture", "threads", "parameters", "weight_formats", "bytes_per_token",
                 "prompt_tokens", "decode_tokens", "warmup_s", "prefill_s", "prefill_tokens_per_s", "decode_s",
                 "decode_tokens_per_s", "decode_step_median_ms", "decode_step_best_ms", "decode_cpu_s", "decode_tokens_per_cpu_s", "matmul_pass_ms",
                 "matmul_gb_per_s", "kv_bytes_per_token", "bandwidth_gb_per_s", "bandwidth_after_gb_per_s", "ceiling_tokens_per_s", "ceiling_ratio",
                 "ceiling_ratio_median", "load_average_1min"},
             "model");
  ExpectKeys(m["bytes_per_token"], {"layer_matrices", "layer_vectors", "final_norm", "lm_head", "embed_row", "total"},
             "model.bytes_per_token");
  EXPECT_EQ(m["prompt_tokens"], 5);
  EXPECT_EQ(m["decode_tokens"], 3);
  EXPECT_EQ(m["threads"], 2);
  const auto& p = j["profile"];
  ASSERT_TRUE(p.is_object()) << "--profile wrote no profile: " << p.dump();
  ExpectKeys(p, {"position", "steps", "step_ms", "rows"}, "profile");
  ASSERT_TRUE(p["rows"].is_array() && !p["rows"].empty()) << p.dump();
  int64_t profiled_matrix_bytes = 0;
  for (const auto& row : p["rows"]) {
    ExpectKeys(row, {"op", "ms_per_step", "calls_per_step", "weight_bytes"}, "profile.rows[]");
    profiled_matrix_bytes += row["weight_bytes"].get<int64_t>();
  }
  EXPECT_EQ(profiled_matrix_bytes, m["bytes_per_token"]["layer_matrices"].get<int64_t>() +
                                       m["bytes_per_token"]["lm_head"].get<int64_t>())
      << "the profile's matmul rows stream every matrix once";
  auto loaded = LoadModel(model);
  ASSERT_TRUE(loaded.ok()) << loaded.status().message();
  EXPECT_EQ(m["bytes_per_token"]["total"], ExpectedBytes(**loaded).total);
}

TEST(BenchCli, ReportWithoutKernelsOrModelHasEmptySections) {
  const std::string json_path = ScratchDir() + "/bench.json";
  const auto r = RunCli("bench --threads 1 --array-mib 1 --reps 1 --json " + json_path);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(ReadAll(json_path), nullptr, false);
  ASSERT_FALSE(j.is_discarded());
  EXPECT_EQ(j["bandwidth"].size(), 1u) << "--threads 1 measures one thread count: " << j["bandwidth"].dump();
  EXPECT_TRUE(j["kernels"].is_array() && j["kernels"].empty()) << j["kernels"].dump();
  EXPECT_TRUE(j["model"].is_null()) << j["model"].dump();
  EXPECT_TRUE(j["profile"].is_null()) << j["profile"].dump();
  EXPECT_EQ(j["activations"], "a16");
}

TEST(BenchCli, BadFlagsExitTwoWithOneLine) {
  const std::string dir = ScratchDir();
  const char* cases[] = {
      "--threads -1",
      "--threads abc",
      "--reps 0",
      "--array-mib -3",
      "--no-such-flag",
      "--formats w2g64",  // needs --kernels
      "--kernels --formats nosuch",
      "--kernels --shapes 12",
      "--kernels --shapes 0x64",
      "--kernels --shapes 64x",
      "--kernels --batch 0",
      "--kernels --batch 1,x",
      "--kernels --min-time -1",
      "--model /nonexistent/bitlens-model",
      "--prompt-tokens 0",
      "--decode-tokens 0",
      "--profile",  // needs --model
      "--activations a4",
  };
  for (const char* flags : cases) {
    const auto r = RunCli(std::string("bench ") + flags + " --json " + dir + "/never.json");
    EXPECT_EQ(r.exit_code, 2) << "bench " << flags << "\nstdout: " << r.out << "\nstderr: " << r.err;
    EXPECT_FALSE(r.err.empty()) << "bench " << flags << " printed no error";
    EXPECT_EQ(r.out.find("triad"), std::string::npos) << "bench " << flags << " measured before failing: " << r.out;
  }
  std::ifstream never(dir + "/never.json");
  EXPECT_FALSE(never.good()) << "a failed run wrote its JSON";
}

TEST(BenchParse, ShapesFormatsAndLists) {
  auto shapes = bench::ParseShapes("3072x3072,8192x3072");
  ASSERT_TRUE(shapes.ok()) << shapes.status().message();
  ASSERT_EQ(shapes->size(), 2u);
  EXPECT_EQ((*shapes)[1].n, 8192);
  EXPECT_EQ((*shapes)[1].k, 3072);
  EXPECT_FALSE(bench::ParseShapes("3072").ok());
  EXPECT_FALSE(bench::ParseShapes("").ok());
  auto all = bench::ParseFormats("");
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), quant::AllFormats().size());
  auto two = bench::ParseFormats("bf16,w2g64");
  ASSERT_TRUE(two.ok()) << two.status().message();
  EXPECT_STREQ((*two)[0]->name, "bf16");
  EXPECT_STREQ((*two)[1]->name, "w2g64");
  auto list = bench::ParsePositiveList("1,64", "--batch");
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(*list, (std::vector<int64_t>{1, 64}));
  auto bad = bench::ParsePositiveList("1,-2", "--batch");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("--batch"), std::string::npos) << bad.status().message();
}

}  // namespace
}  // namespace bitlens
