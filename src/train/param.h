// train/param: a trainable tensor (fp32 master value + gradient) and the
// ordered set of them a model owns. Names are the Hugging Face tensor names
// the checkpoint is saved under, so one set drives optimization, checkpointing
// and export alike.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace bitlens::train {

struct Param {
  std::string name;            // HF tensor name, e.g. "language_model.model.layers.0.mlp.up_proj.weight"
  std::vector<int64_t> shape;  // torch shape
  std::vector<float> value;    // fp32 master weights, numel entries
  std::vector<float> grad;     // same size; backward passes accumulate here
  bool decay = true;           // AdamW weight decay applies (false for norms, biases)
  bool trainable = true;       // frozen parameters keep their gradient unused

  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
};

// Owns the parameters in a fixed order (the order of creation); pointers to
// Params stay valid because entries are never moved after Add.
class ParamSet {
 public:
  // Adds a zero-initialized parameter and returns it.
  Param& Add(std::string name, std::vector<int64_t> shape, bool decay = true) {
    params_.push_back(std::make_unique<Param>());
    Param& p = *params_.back();
    p.name = std::move(name);
    p.shape = std::move(shape);
    p.value.assign(static_cast<size_t>(p.numel()), 0.0f);
    p.grad.assign(p.value.size(), 0.0f);
    p.decay = decay;
    return p;
  }
  size_t size() const { return params_.size(); }
  Param& operator[](size_t i) { return *params_[i]; }
  const Param& operator[](size_t i) const { return *params_[i]; }
  Param* Find(const std::string& name) {
    for (auto& p : params_) {
      if (p->name == name) return p.get();
    }
    return nullptr;
  }
  int64_t NumElements() const {
    int64_t n = 0;
    for (const auto& p : params_) n += p->numel();
    return n;
  }
  void ZeroGrad() {
    for (auto& p : params_) std::fill(p->grad.begin(), p->grad.end(), 0.0f);
  }

 private:
  std::vector<std::unique_ptr<Param>> params_;
};

}  // namespace bitlens::train
