// train/qat_e2e: end-to-end QAT. The teacher (the checkpoint in fp32) runs
// once over every example and keeps only what the loss reads (logits at the
// answer positions, hidden states when matched); the student is the same
// model with every packed linear fake-quantized. Master weights of those
// linears and their grids' scales/offsets train with AdamW; everything else
// is frozen at the value the deployed checkpoint stores, so the student's
// forward is the deployed model's.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>

#include "model/synth_layout.h"
#include "train/ops.h"
#include "train/optim.h"
#include "train/qat_run.h"
#include "train/train_state.h"
#include "train/vlm.h"

namespace bitlens::train {
namespace {

struct TeacherOut {
  std::vector<int64_t> rows;   // answer positions (targets >= 0)
  std::vector<float> logits;   // [rows, vocab]
  std::vector<float> hidden;   // [layers, T, hidden] when hidden states are matched
};

struct StudentWeight {
  const quant::PlannedTensor* planned = nullptr;
  Param* param = nullptr;
  FakeQuantGrids grids;
  bool linear = false;         // trained through SetFakeQuant; else frozen at wq (embedding)
  std::vector<float> master;   // non-linear only: the values packed at the end
  Param* scale = nullptr;      // in the grid ParamSet (linear only)
  Param* offset = nullptr;
};

// v4 parameter name of every source tensor name (Load maps layouts index by index).
Result<std::map<std::string, std::string>> V4Names(const ModelConfig& config, const Checkpoint& source) {
  BL_ASSIGN_OR_RETURN(std::vector<TensorSpec> src, HfTensorLayout(config, DetectHfLayout(source.Names())));
  BL_ASSIGN_OR_RETURN(std::vector<TensorSpec> v4, HfTensorLayout(config, HfLayout::kV4));
  if (src.size() != v4.size()) return Internal("tensor layouts disagree in length");
  std::map<std::string, std::string> out;
  for (size_t i = 0; i < src.size(); ++i) out[src[i].name] = v4[i].name;
  return out;
}

TeacherOut RunTeacher(TrainableVlm& teacher, const VlmExample& ex, bool hidden) {
  TeacherOut t;
  const float* logits = teacher.Forward(ex);
  const int64_t V = teacher.config().text.vocab_size;
  for (size_t r = 0; r < ex.targets.size(); ++r) {
    if (ex.targets[r] < 0) continue;
    t.rows.push_back(static_cast<int64_t>(r));
    t.logits.insert(t.logits.end(), logits + r * V, logits + (r + 1) * V);
  }
  if (hidden) {
    const int64_t L = teacher.config().text.num_hidden_layers, h = teacher.config().text.hidden_size;
    const int64_t T = static_cast<int64_t>(ex.input_ids.size());
    for (int l = 0; l < L; ++l) {
      const float* hs = teacher.DecoderHidden(l);
      t.hidden.insert(t.hidden.end(), hs, hs + T * h);
    }
  }
  return t;
}

struct LossParts {
  double kl = 0;     // Σ KL over answer rows
  int64_t rows = 0;
};

// Forward (and, when weight > 0, backward scaled by `weight`) of one example.
LossParts StudentStep(TrainableVlm& s, const VlmExample& ex, const TeacherOut& t, const QatOptions& o, float weight,
                      std::vector<float>& dlogits, std::vector<std::vector<float>>& dhidden) {
  LossParts parts;
  const float* logits = s.Forward(ex);
  if (logits == nullptr) return parts;
  const int64_t V = s.config().text.vocab_size, T = static_cast<int64_t>(ex.input_ids.size());
  const int64_t rows = static_cast<int64_t>(t.rows.size());
  const bool backward = weight > 0;
  if (backward) dlogits.assign(static_cast<size_t>(T * V), 0.0f);
  const float row_scale = rows > 0 ? weight / static_cast<float>(rows) : 0.0f;
  for (int64_t i = 0; i < rows; ++i) {
    const int64_t r = t.rows[static_cast<size_t>(i)];
    parts.kl += KlDivForwardBackward(logits + r * V, t.logits.data() + i * V, nullptr, 1, V, o.temperature,
                                     row_scale * o.kl_weight, backward ? dlogits.data() + r * V : nullptr);
  }
  parts.rows = rows;
  if (!backward) return parts;
  if (o.ce_weight > 0) {
    CrossEntropyForwardBackward(logits, ex.targets.data(), T, V, row_scale * o.ce_weight, dlogits.data());
  }
  std::vector<const float*> dh;
  if (o.hidden_weight > 0) {
    const int64_t L = s.config().text.num_hidden_layers, h = s.config().text.hidden_size;
    dhidden.resize(static_cast<size_t>(L));
    const float scale = weight * o.hidden_weight / static_cast<float>(L * T * h);
    for (int64_t l = 0; l < L; ++l) {
      dhidden[l].assign(static_cast<size_t>(T * h), 0.0f);
      MseForwardBackward(s.DecoderHidden(static_cast<int>(l)), t.hidden.data() + l * T * h, T * h, scale,
                         dhidden[l].data());
      dh.push_back(dhidden[l].data());
    }
  }
  s.Backward(dlogits.data(), dh);
  return parts;
}

// Mean KL per answer token (temperature 1) of the student on `examples`.
double EvalKl(TrainableVlm& s, const std::vector<VlmExample>& examples, const std::vector<TeacherOut>& teacher) {
  QatOptions plain;
  plain.temperature = 1.0f;
  std::vector<float> dl;
  std::vector<std::vector<float>> dh;
  double kl = 0;
  int64_t rows = 0;
  for (size_t i = 0; i < examples.size(); ++i) {
    const LossParts p = StudentStep(s, examples[i], teacher[i], plain, 0.0f, dl, dh);
    kl += p.kl;
    rows += p.rows;
  }
  return rows > 0 ? kl / static_cast<double>(rows) : 0.0;
}

// The trained tensors in a fixed order: student linears' master weights, then grid params.
std::vector<Param*> StateParams(std::vector<StudentWeight>& weights) {
  std::vector<Param*> out;
  for (StudentWeight& w : weights) {
    if (w.linear) out.push_back(w.param);
  }
  for (StudentWeight& w : weights) {
    if (w.linear) {
      out.push_back(w.scale);
      out.push_back(w.offset);
    }
  }
  return out;
}

// Moments of p in the optimizer that owns it.
std::pair<std::vector<float>*, std::vector<float>*> Moments(AdamW& adam, const ParamSet& set, const Param* p) {
  for (size_t i = 0; i < set.size(); ++i) {
    if (&set[i] == p) {
      if (adam.m()[i].size() != p->value.size()) adam.m()[i].assign(p->value.size(), 0.0f);
      if (adam.v()[i].size() != p->value.size()) adam.v()[i].assign(p->value.size(), 0.0f);
      return {&adam.m()[i], &adam.v()[i]};
    }
  }
  return {nullptr, nullptr};
}

struct Optimizers {
  ParamSet* student;
  ParamSet* grids;
  AdamW* adam_w;
  AdamW* adam_g;
  std::pair<std::vector<float>*, std::vector<float>*> MomentsOf(const Param* p) {
    auto m = Moments(*adam_w, *student, p);
    return m.first != nullptr ? m : Moments(*adam_g, *grids, p);
  }
};

Status SaveState(const std::string& path, const std::string& fingerprint, int64_t step, std::vector<Param*> params,
                 Optimizers& opt) {
  TrainState s;
  s.step = step;
  s.optimizer_step = opt.adam_w->step();
  s.recipe_json = fingerprint;
  for (Param* p : params) {
    s.tensors.push_back({p->name, p->shape});
    auto [m, v] = opt.MomentsOf(p);
    s.values.insert(s.values.end(), p->value.begin(), p->value.end());
    s.adam_m.insert(s.adam_m.end(), m->begin(), m->end());
    s.adam_v.insert(s.adam_v.end(), v->begin(), v->end());
  }
  return WriteTrainState(s, path);
}

Result<int64_t> LoadState(const std::string& path, const std::string& fingerprint, std::vector<Param*> params,
                          Optimizers& opt) {
  BL_ASSIGN_OR_RETURN(TrainState s, ReadTrainState(path));
  if (s.recipe_json != fingerprint) {
    return InvalidArgument(path + " was written by a qat run with other settings (model, formats, data, steps, ...); "
                                  "rerun without --resume or with the original flags");
  }
  if (s.tensors.size() != params.size()) return InvalidArgument(path + ": holds " + std::to_string(s.tensors.size()) +
                                                                " tensors, this run trains " + std::to_string(params.size()));
  size_t at = 0;
  for (size_t i = 0; i < params.size(); ++i) {
    Param* p = params[i];
    if (s.tensors[i].name != p->name || s.tensors[i].shape != p->shape) {
      return InvalidArgument(path + ": tensor " + std::to_string(i) + " is '" + s.tensors[i].name + "', expected '" +
                             p->name + "'");
    }
    auto [m, v] = opt.MomentsOf(p);
    const size_t n = p->value.size();
    std::copy_n(s.values.begin() + at, n, p->value.begin());
    m->assign(s.adam_m.begin() + at, s.adam_m.begin() + at + n);
    v->assign(s.adam_v.begin() + at, s.adam_v.begin() + at + n);
    at += n;
  }
  opt.adam_w->set_step(s.optimizer_step);
  opt.adam_g->set_step(s.optimizer_step);
  return s.step;
}

}  // namespace

Status RunEndToEnd(const QatContext& c, QatPackedWeights* out, QatResult* result) {
  const QatOptions& o = *c.options;
  const quant::QuantPlan& plan = *c.plan;
  const QatData& data = *c.data;
  const bool match_hidden = o.hidden_weight > 0;

  // Teacher pass, then the teacher is freed: only the loss inputs stay.
  std::vector<TeacherOut> teacher_train, teacher_eval;
  {
    BL_ASSIGN_OR_RETURN(std::unique_ptr<TrainableVlm> teacher, TrainableVlm::Load(o.model_dir));
    for (const VlmExample& ex : data.train) {
      BL_TRY(teacher->CheckExample(ex));
      teacher_train.push_back(RunTeacher(*teacher, ex, match_hidden));
    }
    for (const VlmExample& ex : data.eval) teacher_eval.push_back(RunTeacher(*teacher, ex, false));
  }

  BL_ASSIGN_OR_RETURN(std::unique_ptr<TrainableVlm> student, TrainableVlm::Load(o.model_dir));
  BL_ASSIGN_OR_RETURN(auto v4, V4Names(plan.config, *c.source));
  ParamSet& sp = student->params();
  for (size_t i = 0; i < sp.size(); ++i) sp[i].trainable = false;
  ParamSet grid_params;
  std::vector<StudentWeight> weights;
  weights.reserve(plan.tensors.size());
  for (const quant::PlannedTensor& t : plan.tensors) {
    auto it = v4.find(t.name);
    if (it == v4.end()) return Internal("qat: no parameter for " + t.name);
    Param* p = sp.Find(it->second);
    if (p == nullptr) return Internal("qat: no parameter " + it->second);
    if (!t.weight) continue;  // norms, biases, position tables: stored as the source stores them
    if (!t.packed) {          // kept, or written as f16/bf16: the student sees the stored rounding
      RoundToDType(p->value, t.out_dtype);
      continue;
    }
    StudentWeight w;
    w.planned = &t;
    w.param = p;
    BL_ASSIGN_OR_RETURN(w.grids, c.init->Grids(t, p->value));
    const Status linear = student->SetFakeQuant(p->name, &w.grids);
    w.linear = linear.ok();
    if (!w.linear && linear.code() != StatusCode::kInvalidArgument) return linear;
    weights.push_back(std::move(w));
  }
  for (StudentWeight& w : weights) {
    // Registered again: the vector no longer moves, so the grids' addresses are final.
    if (w.linear) {
      BL_TRY(student->SetFakeQuant(w.param->name, &w.grids));
      w.param->trainable = true;
      w.param->decay = false;  // decay would pull weights off their grid points
      w.scale = &grid_params.Add(w.param->name + ".qat_scale", {static_cast<int64_t>(w.grids.scale.size())}, false);
      w.offset = &grid_params.Add(w.param->name + ".qat_offset", {static_cast<int64_t>(w.grids.offset.size())}, false);
      w.scale->value = w.grids.scale;
      w.offset->value = w.grids.offset;
    } else {
      // An embedding table: looked up, not multiplied, so it stays at its
      // initial grid, frozen; the student reads its fake-quantized rows.
      w.master = w.param->value;
      FakeQuantForward(w.grids, w.master.data(), w.param->value.data());
    }
  }
  const std::vector<Param*> state_params = StateParams(weights);

  AdamWConfig adam_config;
  adam_config.weight_decay = 0.0f;
  AdamW adam_w(sp, adam_config);
  AdamW adam_g(grid_params, adam_config);
  Optimizers opt{&sp, &grid_params, &adam_w, &adam_g};

  result->eval_kl_init = EvalKl(*student, data.eval, teacher_eval);
  const std::string state_path = QatStatePath(o.output_dir);
  int64_t step = 0;
  if (o.resume) {
    if (!std::filesystem::exists(state_path)) {
      return InvalidArgument("--resume: " + state_path + " does not exist (nothing to resume)");
    }
    BL_ASSIGN_OR_RETURN(step, LoadState(state_path, c.fingerprint, state_params, opt));
    for (StudentWeight& w : weights) {
      if (!w.linear) continue;
      w.grids.scale = w.scale->value;
      w.grids.offset = w.offset->value;
    }
  }

  const int64_t warmup = std::max<int64_t>(1, o.steps / 20);
  std::vector<float> dlogits;
  std::vector<std::vector<float>> dhidden;
  const int64_t first = step;
  for (; step < o.steps; ++step) {
    if (o.cancel != nullptr && o.cancel->load()) {
      BL_TRY(SaveState(state_path, c.fingerprint, step, state_params, opt));
      return Cancelled("interrupted at step " + std::to_string(step) + "; state saved to " + state_path +
                       " (rerun with --resume)");
    }
    sp.ZeroGrad();
    grid_params.ZeroGrad();
    for (StudentWeight& w : weights) {
      std::fill(w.grids.dscale.begin(), w.grids.dscale.end(), 0.0f);
      std::fill(w.grids.doffset.begin(), w.grids.doffset.end(), 0.0f);
    }
    double kl = 0;
    int64_t rows = 0;
    for (int64_t j = 0; j < o.batch; ++j) {
      const size_t i = QatExampleIndex(o.seed, step, o.batch, j, data.train.size());
      const LossParts parts = StudentStep(*student, data.train[i], teacher_train[i], o, 1.0f / o.batch, dlogits, dhidden);
      kl += parts.kl;
      rows += parts.rows;
    }
    for (StudentWeight& w : weights) {
      if (!w.linear) continue;
      w.scale->grad = w.grids.dscale;
      w.offset->grad = w.grids.doffset;
    }
    // One global norm over master weights and grids.
    const double n1 = ClipGradNorm(sp, 0.0), n2 = ClipGradNorm(grid_params, 0.0);
    const double norm = std::sqrt(n1 * n1 + n2 * n2);
    if (!std::isfinite(norm)) continue;  // a non-finite step is skipped, not applied
    if (o.clip > 0 && norm > o.clip) {
      const float f = static_cast<float>(o.clip / norm);
      for (Param* p : state_params) {
        for (float& g : p->grad) g *= f;
      }
    }
    const float lr = WarmupCosineLr(step, warmup, o.steps, o.lr, o.lr * 0.1f);
    adam_w.Step(sp, lr);
    adam_g.Step(grid_params, lr);
    for (StudentWeight& w : weights) {
      if (!w.linear) continue;
      // Scales stay positive: a non-positive scale has no grid.
      for (float& s : w.scale->value) s = std::max(s, 1e-8f);
      w.grids.scale = w.scale->value;
      w.grids.offset = w.offset->value;
    }
    if (o.on_progress) {
      char detail[64];
      std::snprintf(detail, sizeof(detail), "KL %.5f lr %.2e", rows > 0 ? kl / rows : 0.0, lr);
      o.on_progress(step + 1, o.steps, detail);
    }
    if (o.save_every > 0 && (step + 1) % o.save_every == 0 && step + 1 < o.steps) {
      BL_TRY(SaveState(state_path, c.fingerprint, step + 1, state_params, opt));
    }
  }
  result->steps = o.steps - first;
  result->eval_kl_final = EvalKl(*student, data.eval, teacher_eval);
  const int64_t V = plan.config.text.vocab_size;
  for (const VlmExample& ex : data.eval) {
    const float* logits = student->Forward(ex);
    if (logits == nullptr) return Internal("qat: held-out example failed");
    for (size_t r = 0; r < ex.targets.size(); ++r) {
      if (ex.targets[r] >= 0) result->eval_answer_logits.insert(result->eval_answer_logits.end(), logits + r * V, logits + (r + 1) * V);
    }
  }

  for (StudentWeight& w : weights) {
    out->Set(w.planned->name, PackRows(w.grids, w.linear ? w.param->value.data() : w.master.data()));
  }
  return Status::Ok();
}

}  // namespace bitlens::train
