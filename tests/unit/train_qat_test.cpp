// bitlens qat (train/qat) on a tiny LLaVA: QAT lowers the held-out KL against
// the teacher below the RTN start, the written checkpoint runs in the runtime
// with the trained student's logits, block mode lowers every block's
// reconstruction error, bad flags exit 2 with one line, and an interrupted
// run resumed gives the same checkpoint as an uninterrupted one.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <cstring>

#include "formats/safetensors.h"
#include "model/model.h"
#include "model/synth.h"
#include "quant/checkpoint.h"
#include "runtime/session.h"
#include "test_paths.h"
#include "train/qat.h"
#include "train/data/vqa_data.h"
#include "train/qat_data.h"
#include "train/vlm.h"

namespace bitlens {
namespace {

namespace fs = std::filesystem;

std::string ReadBytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// A tiny synthesized LLaVA whose weights are scaled up so the teacher's
// answers are peaked (random N(0, 0.02) weights give near-uniform logits and
// a KL too small to mean anything).
// The test's scratch directory (ScratchDir() wipes it on every call, so it is asked once per test).
std::string& Scratch() {
  static std::string dir;
  return dir;
}

// Built in the test's scratch directory, once per test.
std::string MakeTeacher() {
  {
    const std::string synth_dir = Scratch() + "/qat_synth";
    const std::string out = Scratch() + "/qat_teacher";
    SynthOptions s;
    s.family = SynthFamily::kLlava;
    s.preset = "tiny";
    s.seed = 4;
    s.output_dir = synth_dir;
    s.overwrite = true;
    auto synth = Synthesize(s);
    if (!synth.ok()) return std::string("synth failed: ") + synth.status().message();
    auto model = train::TrainableVlm::Load(synth_dir);
    if (!model.ok()) return std::string("load failed: ") + model.status().message();
    train::ParamSet& params = (*model)->params();
    for (size_t i = 0; i < params.size(); ++i) {
      if (params[i].shape.size() < 2) continue;
      for (float& v : params[i].value) v *= 4.0f;
    }
    fs::remove_all(out);
    const Status saved = train::SaveVlmCheckpoint(**model, DType::kF32, out);
    if (!saved.ok()) return std::string("save failed: ") + saved.message();
    for (const char* f : {"tokenizer.json", "tokenizer_config.json", "preprocessor_config.json",
                          "processor_config.json", "generation_config.json"}) {
      fs::copy_file(fs::path(synth_dir) / f, fs::path(out) / f, fs::copy_options::overwrite_existing);
    }
    return out;
  }
}

std::string& TeacherSlot() {
  static std::string dir;
  return dir;
}
const std::string& TeacherDir() { return TeacherSlot(); }

class TrainQat : public ::testing::Test {
 protected:
  void SetUp() override {
    Scratch() = testing::ScratchDir();
    TeacherSlot() = MakeTeacher();
  }
};

train::QatOptions BaseOptions(const std::string& out) {
  train::QatOptions o;
  o.model_dir = TeacherDir();
  o.output_dir = out;
  o.plan.vision = "w2g32";
  o.plan.projector = "w4g32";
  o.plan.decoder = "w2g32";
  o.plan.embed = "w4g32";
  o.plan.lm_head = "w4g32";
  o.synthetic = 32;
  o.eval_samples = 12;
  o.seed = 7;
  o.steps = 80;
  o.batch = 4;
  o.lr = 2e-3f;
  o.overwrite = true;
  return o;
}

TEST_F(TrainQat, LowersHeldOutKlBelowTheRtnStartAndDeploysWhatItTrained) {
  ASSERT_TRUE(fs::exists(TeacherDir())) << TeacherDir();
  const std::string out = Scratch() + "/qat_e2e";
  train::QatOptions o = BaseOptions(out);
  auto r = train::RunQat(o);
  ASSERT_TRUE(r.ok()) << r.status().message();
  std::printf("held-out KL per answer token: RTN start %.6f -> QAT %.6f (%lld steps, %lld samples)\n",
              r->eval_kl_init, r->eval_kl_final, (long long)r->steps, (long long)r->train_samples);
  EXPECT_GT(r->eval_kl_init, 1e-3) << "the RTN start is too close to the teacher for the test to mean anything";
  EXPECT_LT(r->eval_kl_final, 0.7 * r->eval_kl_init) << "QAT did not lower the held-out KL by 30 %";
  EXPECT_FALSE(fs::exists(train::QatStatePath(out))) << "state file left after a complete run";

  // The runtime on the written checkpoint reproduces the student's logits on the held-out answers.
  auto model = LoadModel(out);
  ASSERT_TRUE(model.ok()) << model.status().message();
  ASSERT_FALSE((*model)->quantization.empty());
  auto session = Session::Create(**model, SessionOptions{});
  ASSERT_TRUE(session.ok()) << session.status().message();
  train::QatDataOptions d;
  d.synthetic = 0;
  d.eval_samples = o.eval_samples;
  d.seed = o.seed;
  d.calib = "";
  auto data = train::BuildQatData(o.model_dir, (*model)->config, d);
  // BuildQatData insists on training data; the held-out samples are what we need here.
  if (!data.ok()) {
    d.synthetic = 1;
    data = train::BuildQatData(o.model_dir, (*model)->config, d);
  }
  ASSERT_TRUE(data.ok()) << data.status().message();
  const int64_t V = (*model)->config.text.vocab_size, h = (*model)->config.text.hidden_size;
  double max_diff = 0, max_ref = 0, max_gap = 0;
  size_t row = 0;
  std::vector<float> teacher_logits;
  auto teacher = train::TrainableVlm::Load(o.model_dir);
  ASSERT_TRUE(teacher.ok());
  for (const train::VlmExample& ex : data->eval) {
    std::vector<float> image((*model)->vision->num_image_tokens() * h);
    const int64_t s = (*model)->config.vision->image_size;
    const Tensor pixels = Tensor::FromF32({1, 3, s, s}, ex.pixel_values);
    ASSERT_TRUE((*model)->vision->Encode(pixels, image.data()).ok());
    auto got = (*session)->EvaluateLogits(ex.input_ids, image.data());
    ASSERT_TRUE(got.ok()) << got.status().message();
    const float* tl = (*teacher)->Forward(ex);
    for (size_t t = 0; t < ex.targets.size(); ++t) {
      if (ex.targets[t] < 0) continue;
      ASSERT_LT((row + 1) * V, r->eval_answer_logits.size() + 1);
      const float* student = r->eval_answer_logits.data() + row * V;
      for (int64_t v = 0; v < V; ++v) {
        const double deployed = (*got)[t * V + v];
        max_diff = std::max(max_diff, std::fabs(deployed - student[v]));
        max_ref = std::max(max_ref, std::fabs(static_cast<double>(student[v])));
        max_gap = std::max(max_gap, std::fabs(static_cast<double>(student[v]) - tl[t * V + v]));
      }
      ++row;
    }
  }
  ASSERT_EQ(row * V, r->eval_answer_logits.size());
  std::printf("deployed vs trained student: max |logit diff| %.3g (largest |logit| %.3g); student vs teacher %.3g\n",
              max_diff, max_ref, max_gap);
  EXPECT_GT(max_ref, 1.0) << "logits too small to compare meaningfully";
  // Same weights, different summation order (runtime kernels vs train ops): float noise only.
  EXPECT_LE(max_diff, 1e-4 * max_ref) << "the runtime does not compute what QAT trained";
  EXPECT_LT(max_diff, 0.1 * max_gap) << "deployed-vs-trained difference is not small against the quantization gap";
}

// The optional loss terms reach the weights on their own: hidden-state
// matching alone lowers the KL; the answer cross-entropy alone moves the
// student (towards the data's answers, which this random teacher does not
// know, so away from the teacher).
TEST_F(TrainQat, HiddenStateAndCrossEntropyTermsTrainOnTheirOwn) {
  train::QatOptions o = BaseOptions(Scratch() + "/qat_hidden");
  o.steps = 40;
  o.kl_weight = 0;
  o.hidden_weight = 1;
  auto hidden = train::RunQat(o);
  ASSERT_TRUE(hidden.ok()) << hidden.status().message();
  std::printf("hidden-state MSE only: held-out KL %.6f -> %.6f\n", hidden->eval_kl_init, hidden->eval_kl_final);
  EXPECT_LT(hidden->eval_kl_final, 0.8 * hidden->eval_kl_init);

  o.output_dir = Scratch() + "/qat_ce";
  o.hidden_weight = 0;
  o.ce_weight = 1;
  auto ce = train::RunQat(o);
  ASSERT_TRUE(ce.ok()) << ce.status().message();
  std::printf("answer cross-entropy only: held-out KL %.6f -> %.6f\n", ce->eval_kl_init, ce->eval_kl_final);
  EXPECT_NE(ce->eval_kl_final, ce->eval_kl_init) << "the cross-entropy term did not change the student";
}

// --stretched trains and writes the symmetric 2-bit grid (w2g32 -> w2sg32).
TEST_F(TrainQat, StretchedGridTrainsAndIsWritten) {
  train::QatOptions o = BaseOptions(Scratch() + "/qat_stretched");
  o.stretched = true;
  o.steps = 60;
  auto r = train::RunQat(o);
  ASSERT_TRUE(r.ok()) << r.status().message();
  std::printf("stretched w2sg32: held-out KL %.6f -> %.6f\n", r->eval_kl_init, r->eval_kl_final);
  EXPECT_LT(r->eval_kl_final, 0.7 * r->eval_kl_init);
  auto quant = quant::LoadQuantizationConfig(o.output_dir);
  ASSERT_TRUE(quant.ok()) << quant.status().message();
  int stretched = 0, other_2bit = 0;
  for (const auto& [name, t] : quant->tensors) {
    stretched += std::string(t.format->name) == "w2sg32";
    other_2bit += t.format->bits == 2 && std::string(t.format->name) != "w2sg32";
  }
  EXPECT_GT(stretched, 0);
  EXPECT_EQ(other_2bit, 0);
}

TEST_F(TrainQat, BlockModeLowersEveryBlocksReconstructionError) {
  const std::string out = Scratch() + "/qat_block";
  train::QatOptions o = BaseOptions(out);
  o.mode = train::QatMode::kBlock;
  o.steps = 60;
  o.eval_samples = 0;
  auto r = train::RunQat(o);
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_EQ(r->block_mse_init.size(), 2u);
  ASSERT_EQ(r->block_mse_final.size(), 2u);
  for (size_t b = 0; b < r->block_mse_init.size(); ++b) {
    std::printf("decoder block %zu: relative reconstruction error %.5f -> %.5f\n", b, r->block_mse_init[b],
                r->block_mse_final[b]);
    EXPECT_GT(r->block_mse_init[b], 1e-3) << "block " << b << ": the start is already exact";
    EXPECT_LT(r->block_mse_final[b], 0.7 * r->block_mse_init[b]) << "block " << b << " did not improve by 30 %";
  }
  // The output is an ordinary quantized checkpoint the runtime runs.
  auto model = LoadModel(out);
  ASSERT_TRUE(model.ok()) << model.status().message();
  EXPECT_FALSE((*model)->quantization.empty());
  auto session = Session::Create(**model, SessionOptions{});
  ASSERT_TRUE(session.ok()) << session.status().message();
  auto logits = (*session)->EvaluateLogits({1, 5, 9, 14, 27, 2});
  ASSERT_TRUE(logits.ok()) << logits.status().message();
  for (float v : *logits) ASSERT_TRUE(std::isfinite(v));
}

// --init gptq --init-from DIR starts exactly at DIR: zero steps give back its
// packed weights byte for byte; training from there lowers the held-out KL.
// --init hqq runs HQQ in-process and leaves nothing behind.
TEST_F(TrainQat, StartsFromGptqAndHqqCheckpoints) {
  const std::string data_dir = Scratch() + "/calib";
  train::DataOptions data;
  data.image_size = 32;
  data.seed = 3;
  ASSERT_TRUE(train::WriteSplit(data, train::Split::kTrain, 12, data_dir).ok());
  const std::string calib = data_dir + "/train.jsonl";
  const std::string gptq = Scratch() + "/gptq";
  const testing::CliResult q = testing::RunCli("quantize --model " + TeacherDir() + " -o " + gptq +
                                               " --method gptq --calib " + calib +
                                               " --vision w2g32 --projector w4g32 --decoder w2g32 --embed w4g32 "
                                               "--lm-head w4g32");
  ASSERT_EQ(q.exit_code, 0) << q.err;

  train::QatOptions o = BaseOptions(Scratch() + "/from_gptq0");
  o.init = "gptq";
  o.init_from = gptq;
  o.calib = calib;
  o.steps = 0;
  auto zero = train::RunQat(o);
  ASSERT_TRUE(zero.ok()) << zero.status().message();
  auto a = Checkpoint::Open(gptq);
  auto b = Checkpoint::Open(o.output_dir);
  ASSERT_TRUE(a.ok() && b.ok());
  auto quant = quant::LoadQuantizationConfig(gptq);
  ASSERT_TRUE(quant.ok());
  ASSERT_FALSE(quant->tensors.empty());
  for (const auto& [name, t] : quant->tensors) {
    auto ta = a->Get(name);
    auto tb = b->Get(name);
    ASSERT_TRUE(ta.ok() && tb.ok()) << name;
    ASSERT_EQ(ta->nbytes(), tb->nbytes()) << name;
    EXPECT_EQ(std::memcmp(ta->data_as<uint8_t>(), tb->data_as<uint8_t>(), ta->nbytes()), 0)
        << name << ": zero QAT steps from GPTQ changed the packed weight";
  }

  // A start this close to the teacher takes smaller steps than the RTN one.
  o.output_dir = Scratch() + "/from_gptq";
  o.steps = 80;
  o.lr = 1e-4f;
  auto trained = train::RunQat(o);
  ASSERT_TRUE(trained.ok()) << trained.status().message();
  std::printf("held-out KL per answer token: GPTQ start %.6f -> QAT %.6f\n", trained->eval_kl_init,
              trained->eval_kl_final);
  EXPECT_LT(trained->eval_kl_final, 0.9 * trained->eval_kl_init) << "QAT did not improve on GPTQ by 10 %";

  o.init = "hqq";
  o.init_from = "";
  o.calib = "";
  o.output_dir = Scratch() + "/from_hqq";
  o.lr = 2e-3f;
  auto hqq = train::RunQat(o);
  ASSERT_TRUE(hqq.ok()) << hqq.status().message();
  std::printf("held-out KL per answer token: HQQ start %.6f -> QAT %.6f\n", hqq->eval_kl_init, hqq->eval_kl_final);
  EXPECT_LT(hqq->eval_kl_final, 0.7 * hqq->eval_kl_init) << "QAT did not improve on HQQ by 30 %";
  EXPECT_FALSE(fs::exists(o.output_dir + ".init")) << "the in-process HQQ checkpoint was left behind";
}

TEST_F(TrainQat, BadFlagsExitTwoWithOneLine) {
  ASSERT_TRUE(fs::exists(TeacherDir())) << TeacherDir();
  const std::string out = Scratch() + "/qat_bad";
  const std::string base = "qat --model " + TeacherDir() + " -o " + out + " ";
  for (const std::string& args : {base + "--synthetic 4 --mode sideways", base + "--synthetic 4 --init awq",
                                  base + "--synthetic 4 --decoder w9g7", base, base + "--synthetic 4 --batch 0",
                                  base + "--synthetic 4 --init gptq", base + "--synthetic 4 --resume",
                                  base + "--synthetic 4 --mode block --resume", base + "--synthetic 4 --lr -1",
                                  base + "--synthetic 4 --init-from /nonexistent"}) {
    const testing::CliResult r = testing::RunCli(args);
    EXPECT_EQ(r.exit_code, 2) << args << "\n" << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << args << ": " << r.err;
    EXPECT_FALSE(fs::exists(out)) << args;
  }
}

TEST_F(TrainQat, InterruptedRunResumesToTheSameCheckpoint) {
  ASSERT_TRUE(fs::exists(TeacherDir())) << TeacherDir();
  const std::string full = Scratch() + "/qat_full";
  const std::string resumed = Scratch() + "/qat_resumed";
  train::QatOptions o = BaseOptions(full);
  o.steps = 12;
  o.synthetic = 8;
  o.eval_samples = 0;
  auto a = train::RunQat(o);
  ASSERT_TRUE(a.ok()) << a.status().message();

  std::atomic<bool> stop{false};
  o.output_dir = resumed;
  o.cancel = &stop;
  o.on_progress = [&](int64_t step, int64_t, const std::string&) {
    if (step == 5) stop.store(true);
  };
  fs::remove_all(resumed);
  fs::remove(train::QatStatePath(resumed));
  auto b = train::RunQat(o);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), StatusCode::kCancelled) << b.status().message();
  EXPECT_FALSE(fs::exists(resumed));
  ASSERT_TRUE(fs::exists(train::QatStatePath(resumed)));

  stop.store(false);
  o.on_progress = nullptr;
  o.resume = true;
  auto c = train::RunQat(o);
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->steps, 12 - 5);
  EXPECT_FALSE(fs::exists(train::QatStatePath(resumed)));
  EXPECT_TRUE(ReadBytes(full + "/model.safetensors") == ReadBytes(resumed + "/model.safetensors"))
      << "resumed checkpoint differs from the uninterrupted one";

  // A state from other settings is refused.
  o.on_progress = [&](int64_t step, int64_t, const std::string&) {
    if (step == 3) stop.store(true);
  };
  o.resume = false;
  ASSERT_FALSE(train::RunQat(o).ok());
  o.on_progress = nullptr;
  stop.store(false);
  o.resume = true;
  o.lr = 1e-3f;
  auto d = train::RunQat(o);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), StatusCode::kInvalidArgument) << d.status().message();
  fs::remove(train::QatStatePath(resumed));
}

}  // namespace
}  // namespace bitlens
