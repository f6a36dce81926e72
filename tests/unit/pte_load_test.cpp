// .pte load end to end: a tiny LLaVA quantized to 2 bits is exported to .pte,
// loaded back from the mapped file (the BitlensBackend delegate's .blz image,
// in place) and must give exactly the logits and the generated text of its
// checkpoint folder; every weight lies inside the .pte's mapping; damaged
// files are refused by `bitlens run` with exit code 2 and one line.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "formats/blz.h"
#include "formats/pte.h"
#include "model/export.h"
#include "model/model.h"
#include "quant/pipeline.h"
#include "runtime/session.h"
#include "test_paths.h"

namespace bitlens {
namespace {

namespace fs = std::filesystem;

std::string Work(const std::string& name) { return testing::ScratchDir() + "-work/pte-" + name; }

std::string SynthQuantized() {
  const std::string src = Work("src");
  fs::remove_all(src);
  auto r = testing::RunCli("synth --family llava --preset tiny -o " + src);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  quant::PipelineOptions options;
  options.model_dir = src;
  options.output_dir = Work("q");
  options.overwrite = true;
  options.plan.decoder = "w2g64";
  options.plan.vision = "w2g32";
  options.plan.projector = "w4g32";
  options.plan.embed = "w2g64";
  options.plan.lm_head = "w4g64";
  auto quantizer = quant::MakeCalibrationFreeQuantizer("rtn");
  EXPECT_TRUE(quantizer.ok()) << quantizer.status().message();
  options.quantizer = quantizer->get();
  auto result = quant::QuantizeCheckpoint(options);
  EXPECT_TRUE(result.ok()) << result.status().message();
  return options.output_dir;
}

// Prompt logits then one decode step's logits, with a fixed synthetic image.
std::vector<float> Logits(const Model& model) {
  auto session = Session::Create(model, SessionOptions{});
  EXPECT_TRUE(session.ok()) << session.status().message();
  auto ids = (*session)->TokenizePrompt("Describe the image in detail.", true, ChatMode::kAuto);
  EXPECT_TRUE(ids.ok()) << ids.status().message();
  const VisionConfig& v = *model.config.vision;
  std::vector<float> px(static_cast<size_t>(3 * v.image_size * v.image_size));
  for (size_t i = 0; i < px.size(); ++i) px[i] = std::sin(0.37f * static_cast<float>(i)) * 1.5f;
  std::vector<float> rows(static_cast<size_t>(model.config.image_seq_length() * model.config.text.hidden_size));
  EXPECT_TRUE(model.vision->Encode(Tensor::FromF32({3, v.image_size, v.image_size}, px), rows.data()).ok());
  auto logits = (*session)->EvaluateLogits(*ids, rows.data());
  EXPECT_TRUE(logits.ok()) << logits.status().message();
  std::vector<float> out = logits.ok() ? *logits : std::vector<float>{};
  auto s2 = Session::Create(model, SessionOptions{});
  EXPECT_TRUE((*s2)->Prefill(ids->data(), static_cast<int64_t>(ids->size()) - 1, rows.data()).ok());
  EXPECT_TRUE((*s2)->DecodeStep(ids->back()).ok());
  const float* l = (*s2)->logits();
  out.insert(out.end(), l, l + model.config.text.vocab_size);
  return out;
}

TEST(PteLoad, QuantizedRoundTripIsExactAndInPlace) {
  const std::string qdir = SynthQuantized();
  const std::string file = Work("tiny-q.pte");
  auto e = testing::RunCli("export --model " + qdir + " --to pte -q -o " + file);
  ASSERT_EQ(e.exit_code, 0) << e.err;

  auto folder = LoadModel(qdir);
  ASSERT_TRUE(folder.ok()) << folder.status().message();
  auto pte = LoadModel(file);
  ASSERT_TRUE(pte.ok()) << pte.status().message();
  const std::vector<float> want = Logits(**folder);
  const std::vector<float> got = Logits(**pte);
  ASSERT_EQ(got.size(), want.size());
  ASSERT_FALSE(want.empty());
  size_t differ = 0;
  for (size_t i = 0; i < want.size(); ++i) differ += std::memcmp(&want[i], &got[i], sizeof(float)) != 0;
  EXPECT_EQ(differ, 0u) << "logit[0] folder " << want[0] << " pte " << got[0];

  // Every checkpoint tensor is a view into the .pte's mapping, page-aligned.
  auto mapping = MappedFile::Open(file);
  ASSERT_TRUE(mapping.ok());
  std::ifstream maps("/proc/self/maps");
  const std::string canonical = fs::canonical(file).string();
  std::vector<std::pair<uintptr_t, uintptr_t>> ranges;
  for (std::string line; std::getline(maps, line);) {
    if (line.size() < canonical.size() || line.compare(line.size() - canonical.size(), canonical.size(), canonical) != 0) {
      continue;
    }
    const size_t dash = line.find('-'), space = line.find(' ');
    ranges.emplace_back(std::stoull(line.substr(0, dash), nullptr, 16),
                        std::stoull(line.substr(dash + 1, space - dash - 1), nullptr, 16));
  }
  ASSERT_FALSE(ranges.empty());
  int checked = 0;
  for (const std::string& name : (*pte)->checkpoint.Names()) {
    auto t = (*pte)->checkpoint.Get(name);
    ASSERT_TRUE(t.ok());
    const auto a = reinterpret_cast<uintptr_t>(t->data());
    bool inside = false;
    for (const auto& [lo, hi] : ranges) inside = inside || (a >= lo && a < hi);
    EXPECT_TRUE(inside) << name << " at " << t->data() << " is outside the mapping of " << file;
    EXPECT_EQ(a % blz::kTensorAlignment, 0u) << name;
    ++checked;
  }
  EXPECT_GT(checked, 50);

  // The CLI generates the same text from the folder and the .pte.
  const std::string args = " --prompt \"Describe the image.\" --max-tokens 8 --temperature 0";
  auto a = testing::RunCli("run --model " + qdir + args);
  auto b = testing::RunCli("run --model " + file + args);
  ASSERT_EQ(a.exit_code, 0) << a.err;
  ASSERT_EQ(b.exit_code, 0) << b.err;
  EXPECT_FALSE(a.out.empty());
  EXPECT_EQ(a.out, b.out);
}

TEST(PteLoad, DamagedFilesExitTwoWithOneLine) {
  const std::string src = Work("bad-src");
  fs::remove_all(src);
  ASSERT_EQ(testing::RunCli("synth --family llava --preset tiny -o " + src).exit_code, 0);
  const std::string good = Work("good.pte");
  ASSERT_EQ(testing::RunCli("export --model " + src + " --to pte -q -o " + good).exit_code, 0);
  std::string bytes;
  {
    std::ifstream in(good, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  auto expect = [&](const std::string& name, const std::string& content, const std::string& message) {
    const std::string path = Work(name);
    std::ofstream(path, std::ios::binary).write(content.data(), static_cast<std::streamsize>(content.size()));
    auto r = testing::RunCli("run --model " + path + " --prompt hi --max-tokens 1");
    EXPECT_EQ(r.exit_code, 2) << name << ": " << r.err;
    EXPECT_NE(r.err.find(path + ": not a valid .pte: " + message), std::string::npos) << name << ": " << r.err;
    const size_t nl = r.err.find('\n');
    EXPECT_TRUE(nl == std::string::npos || nl + 1 == r.err.size()) << name << ": more than one line: " << r.err;
  };
  expect("truncated.pte", bytes.substr(0, bytes.size() / 2), "segment data");
  expect("short.pte", bytes.substr(0, 30), "truncated (30 bytes)");
  std::string wrong = bytes;
  std::memcpy(wrong.data() + 4, "ET11", 4);
  expect("wrong-id.pte", wrong, "file identifier is not ET12");
}

}  // namespace
}  // namespace bitlens
