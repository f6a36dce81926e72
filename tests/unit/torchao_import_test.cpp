// quant/torchao_import: checkpoints written by torchao's QAT convert step
// (tests/conformance/torchao_qat_export.py, goldens in tests/golden/torchao_qat)
// import into bitlens checkpoints whose logits equal PyTorch's; the mapping of
// (q, scale, zero_point) onto bitlens grids is exact where f16 can hold the
// grid and its error is reported honestly where not; bad inputs give exit 2.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "base/f16.h"
#include "base/mmap_file.h"
#include "formats/safetensors.h"
#include "model/model.h"
#include "quant/formats.h"
#include "quant/rtn.h"
#include "quant/torchao_import.h"
#include "runtime/session.h"
#include "test_paths.h"

namespace bitlens {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string GoldenRoot() { return testing::SourceDir() + "/tests/golden/torchao_qat"; }

// bitlens and PyTorch compute with the same f32 weights here, so the logits
// differ by f32 summation order only (measured: under 5e-6 at |logit| ≤ 6);
// 1e-4 is 10× tighter than the model goldens' 1e-3 and still 25× above that,
// and below the f16-scale effect (~4e-3) the test must tell apart.
constexpr double kF32Tolerance = 1e-4;

double MaxAbsDiff(const float* a, const float* b, size_t n, size_t* at = nullptr) {
  double worst = 0.0;
  for (size_t i = 0; i < n; ++i) {
    const double d = std::fabs(static_cast<double>(a[i]) - b[i]);
    if (d > worst) {
      worst = d;
      if (at != nullptr) *at = i;
    }
  }
  return worst;
}

TEST(TorchaoImport, LogitsMatchPyTorchOnTorchaoQatCheckpoints) {
  auto meta_text = ReadTextFile(GoldenRoot() + "/torchao_golden.json");
  ASSERT_TRUE(meta_text.ok()) << meta_text.status().message();
  const json meta = json::parse(*meta_text);
  auto golden = Checkpoint::Open(GoldenRoot() + "/logits.safetensors");
  ASSERT_TRUE(golden.ok()) << golden.status().message();
  ASSERT_GE(meta["cases"].size(), 3u);
  for (const auto& [name, info] : meta["cases"].items()) {
    SCOPED_TRACE(name);
    const std::string out = testing::ScratchDir() + "-torchao/" + name;
    fs::remove_all(out);
    quant::TorchaoImportOptions options;
    options.input_dir = GoldenRoot() + "/" + name;
    options.output_dir = out;
    auto imported = quant::ImportTorchaoCheckpoint(options);
    ASSERT_TRUE(imported.ok()) << imported.status().message();
    std::printf("%s: %s\n", name.c_str(), quant::TorchaoImportSummary(*imported).c_str());
    // Every linear of the Llama (7 per layer, 2 layers, and the head) is packed.
    EXPECT_EQ(imported->packed, 15);
    // f16 rounds a normal scale by at most 2^-11 of itself.
    EXPECT_LE(imported->error.max_rel_scale, std::ldexp(1.0, -11));
    if (info["scale_dtype"] == "torch.float16") {
      EXPECT_EQ(imported->error.exact_groups, imported->error.groups) << "f16 scales must map exactly";
      EXPECT_EQ(imported->error.max_abs, 0.0);
    }

    auto model = LoadModel(out);
    ASSERT_TRUE(model.ok()) << model.status().message();
    auto session = Session::Create(**model, SessionOptions{});
    ASSERT_TRUE(session.ok()) << session.status().message();
    auto ids_t = golden->Get(name + ".input_ids");
    auto want_t = golden->Get(name + ".logits_torchao");
    auto f16_t = golden->Get(name + ".logits_f16_scales");
    ASSERT_TRUE(ids_t.ok() && want_t.ok() && f16_t.ok());
    const Tensor ids = ids_t->ToF32();
    const int64_t prompts = ids.dim(0), t = ids.dim(1), vocab = want_t->dim(2);
    for (int64_t p = 0; p < prompts; ++p) {
      std::vector<int32_t> prompt(static_cast<size_t>(t));
      for (int64_t i = 0; i < t; ++i) prompt[i] = static_cast<int32_t>(ids.data_as<float>()[p * t + i]);
      auto logits = (*session)->EvaluateLogits(prompt);
      ASSERT_TRUE(logits.ok()) << logits.status().message();
      ASSERT_EQ(logits->size(), static_cast<size_t>(t * vocab));
      const size_t count = static_cast<size_t>(t * vocab);
      const float* torchao = want_t->data_as<float>() + p * t * vocab;
      const float* f16_scales = f16_t->data_as<float>() + p * t * vocab;
      size_t at = 0;
      // 1. What bitlens stores is the torchao model with f16 scales: equal up to f32 summation.
      const double vs_f16 = MaxAbsDiff(logits->data(), f16_scales, count, &at);
      EXPECT_LE(vs_f16, kF32Tolerance) << "prompt " << p << " position " << at / vocab << " token " << at % vocab
                                       << ": bitlens " << (*logits)[at] << ", PyTorch (f16 scales) " << f16_scales[at];
      // 2. Against torchao's own logits, the only further difference allowed is the f16
      //    rounding of the scales, as PyTorch itself measures it.
      const double f16_effect = MaxAbsDiff(torchao, f16_scales, count);
      const double vs_torchao = MaxAbsDiff(logits->data(), torchao, count, &at);
      EXPECT_LE(vs_torchao, f16_effect + kF32Tolerance)
          << "prompt " << p << ": bitlens " << (*logits)[at] << ", torchao " << torchao[at];
      std::printf("  prompt %lld: max |bitlens - torchao| = %.3g (f16 scale rounding in PyTorch: %.3g), "
                  "max |bitlens - torchao with f16 scales| = %.3g, max |logit| %.3g\n",
                  static_cast<long long>(p), vs_torchao, f16_effect, vs_f16,
                  MaxAbsDiff(torchao, std::vector<float>(count, 0.0f).data(), count));
    }
  }
}

// Random torchao weights of every supported width: qdata in range and
// per-group scale/zero_point of the kinds torchao writes.
struct Generated {
  quant::TorchaoWeight w;
  std::vector<int8_t> q;
};
Generated Generate(int bits, int64_t group, int zp_kind, bool f16_scales, uint32_t seed) {
  Generated g;
  const int qmin = -(1 << (bits - 1)), qmax = (1 << (bits - 1)) - 1;
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> code(qmin, qmax);
  std::uniform_real_distribution<float> u(0.2f, 2.0f);
  g.w.name = "w";
  g.w.bits = bits, g.w.n = 6, g.w.k = 4 * group, g.w.group_size = group;
  g.q.resize(static_cast<size_t>(g.w.n * g.w.k));
  for (int8_t& v : g.q) v = static_cast<int8_t>(code(rng));
  g.w.qdata = g.q.data();
  const size_t groups = static_cast<size_t>(g.w.n * 4);
  for (size_t j = 0; j < groups; ++j) {
    float s = 0.01f * u(rng);
    if (f16_scales) s = F16ToF32(F32ToF16(s));
    g.w.scale.push_back(s);
    // 0: symmetric (zero point 0); 1: asymmetric integer zero point; 2: float (range learning).
    g.w.zero_point.push_back(zp_kind == 0 ? 0.0f : zp_kind == 1 ? static_cast<float>(code(rng)) : 0.37f * u(rng));
  }
  return g;
}

TEST(TorchaoImport, PackedWeightsDequantizeToTorchaoValues) {
  for (int bits : {2, 3, 4}) {
    for (int64_t group : {32, 64}) {
      auto format = quant::TorchaoFormat(bits, group);
      ASSERT_TRUE(format.ok()) << format.status().message();
      for (int zp_kind : {0, 1, 2}) {
        for (bool f16_scales : {true, false}) {
          SCOPED_TRACE(std::string((*format)->name) + " zero point kind " + std::to_string(zp_kind) +
                       (f16_scales ? " f16 scales" : " f32 scales"));
          Generated g = Generate(bits, group, zp_kind, f16_scales, 17 * bits + zp_kind);
          const quant::TorchaoWeight& w = g.w;
          std::vector<uint8_t> packed(static_cast<size_t>(w.n) * quant::RowBytes(**format, w.k));
          quant::TorchaoMappingError err;
          ASSERT_TRUE(quant::PackTorchaoWeight(w, **format, packed.data(), &err).ok());
          std::vector<float> deq(static_cast<size_t>(w.n * w.k));
          ASSERT_TRUE(quant::DequantizeRowsRef(**format, packed, w.n, w.k, deq.data()).ok());
          const int qmin = -(1 << (bits - 1));
          double worst = 0.0, worst_bound_excess = -1.0;
          for (int64_t r = 0; r < w.n; ++r) {
            for (int64_t i = 0; i < w.k; ++i) {
              const size_t gi = static_cast<size_t>(r * (w.k / group) + i / group);
              const float s = w.scale[gi], zp = w.zero_point[gi];
              const float theirs = (static_cast<float>(g.q[r * w.k + i]) - zp) * s;
              const double d = std::fabs(static_cast<double>(deq[r * w.k + i]) - theirs);
              worst = std::max(worst, d);
              // f16 keeps scale and min to within half an ulp (≤ 2^-11 relative each):
              // |Δw| ≤ 2^-11 (|min| + |scale|·c) plus f32 rounding.
              const double min = (qmin - static_cast<double>(zp)) * s;
              const double c = g.q[r * w.k + i] - qmin;
              const double bound = std::ldexp(1.0, -11) * (std::fabs(min) + s * c) + 1e-6 * s;
              worst_bound_excess = std::max(worst_bound_excess, d - bound);
            }
          }
          EXPECT_EQ(err.max_abs, worst) << "the reported error must be the measured one";
          EXPECT_LE(worst_bound_excess, 0.0) << "largest error " << worst;
          if (f16_scales && zp_kind == 0) {
            // Symmetric torchao grids with f16 scales: min = qmin·scale is f16 too, every value exact.
            EXPECT_EQ(worst, 0.0);
            EXPECT_EQ(err.exact_groups, err.groups);
          }
          if (!f16_scales) {
            EXPECT_GT(worst, 0.0) << "f32 scales cannot all be f16-exact";
          }
        }
      }
    }
  }
}

// ---- Bad inputs through `bitlens convert --from torchao`.

struct FakeTorchao {
  int bits = 4;
  int64_t n = 4, k = 64, group = 32;
  bool with_scale = true;
  bool with_metadata = true;
  Shape scale_shape;  // default [n, k / group]
  std::string type = "IntxUnpackedToInt8Tensor";
  int8_t bad_code = 0;  // nonzero: written into qdata[0]
};

std::string WriteFake(const std::string& dir, const FakeTorchao& f) {
  fs::create_directories(dir);
  std::ofstream(dir + "/config.json") << R"({"architectures": ["LlamaForCausalLM"], "model_type": "llama"})";
  const int64_t groups = f.k / f.group;
  std::vector<int8_t> q(static_cast<size_t>(f.n * f.k), 1);
  if (f.bad_code != 0) q[0] = f.bad_code;
  std::vector<float> scale(static_cast<size_t>(f.n * groups), 0.01f);
  std::vector<int8_t> zp(scale.size(), 0);
  const Shape grid = f.scale_shape.empty() ? Shape{f.n, groups} : f.scale_shape;
  scale.resize(static_cast<size_t>(NumElements(grid)), 0.01f);
  std::vector<std::pair<std::string, Tensor>> tensors;
  tensors.emplace_back("layer._weight_qdata", Tensor(DType::kI8, {f.n, f.k}, q.data()));
  if (f.with_scale) tensors.emplace_back("layer._weight_scale", Tensor(DType::kF32, grid, scale.data()));
  tensors.emplace_back("layer._weight_zero_point", Tensor(DType::kI8, {f.n, groups}, zp.data()));
  std::vector<float> norm(static_cast<size_t>(f.k), 1.0f);
  tensors.emplace_back("norm.weight", Tensor::FromF32({f.k}, norm));
  std::map<std::string, std::string> metadata;
  if (f.with_metadata) {
    metadata["tensor_names"] = R"(["layer.weight", "norm.weight"])";
    metadata["norm.weight"] = R"({"_type": "Tensor"})";
    metadata["layer.weight"] =
        json{{"_type", f.type},
             {"_data",
              {{"target_dtype", {{"_type", "torch.dtype"}, {"_data", "int" + std::to_string(f.bits)}}},
               {"block_size", {1, f.group}},
               {"dtype", {{"_type", "torch.dtype"}, {"_data", "float32"}}},
               {"activation_quantization", nullptr}}},
             {"_tensor_data_names", {"qdata", "scale", "zero_point"}}}
            .dump();
  }
  EXPECT_TRUE(WriteSafetensors(dir + "/model.safetensors", tensors, metadata).ok());
  return dir;
}

testing::CliResult Convert(const std::string& dir) {
  return testing::RunCli("convert --from torchao " + dir + " -o " + dir + "-out");
}

void ExpectOneLineError(const testing::CliResult& r, const std::string& needle) {
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << "stderr: " << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "stderr: " << r.err;
}

TEST(TorchaoImport, WellFormedFixtureImports) {
  const std::string dir = WriteFake(testing::ScratchDir() + "/good", {});
  const auto r = Convert(dir);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  auto q = quant::LoadQuantizationConfig(dir + "-out");
  ASSERT_TRUE(q.ok()) << q.status().message();
  ASSERT_NE(q->Find("layer.weight"), nullptr);
  EXPECT_STREQ(q->Find("layer.weight")->format->name, "w4g32");
}

TEST(TorchaoImport, BadInputsGiveOneLineErrors) {
  const std::string root = testing::ScratchDir();
  FakeTorchao missing_scale;
  missing_scale.with_scale = false;
  ExpectOneLineError(Convert(WriteFake(root + "/missing_scale", missing_scale)), "layer._weight_scale");
  FakeTorchao bad_shape;
  bad_shape.scale_shape = {4, 3};
  ExpectOneLineError(Convert(WriteFake(root + "/bad_shape", bad_shape)), "shape [4, 3], expected [4, 2]");
  FakeTorchao int5;
  int5.bits = 5;
  ExpectOneLineError(Convert(WriteFake(root + "/int5", int5)), "int5");
  FakeTorchao group16;
  group16.group = 16;
  ExpectOneLineError(Convert(WriteFake(root + "/group16", group16)), "groups of 16");
  FakeTorchao out_of_range;
  out_of_range.bits = 2;
  out_of_range.bad_code = 5;
  ExpectOneLineError(Convert(WriteFake(root + "/out_of_range", out_of_range)), "outside int2");
  FakeTorchao no_metadata;
  no_metadata.with_metadata = false;
  ExpectOneLineError(Convert(WriteFake(root + "/no_metadata", no_metadata)), "tensor_names");
  FakeTorchao other_type;
  other_type.type = "Int4Tensor";
  ExpectOneLineError(Convert(WriteFake(root + "/other_type", other_type)), "Int4Tensor");
  ExpectOneLineError(Convert(root + "/does_not_exist"), "not a directory");
  // Nothing half-written.
  EXPECT_FALSE(fs::exists(root + "/missing_scale-out"));
}

}  // namespace
}  // namespace bitlens
