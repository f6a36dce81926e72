// train/recipe: the recipe.json of `bitlens train` — data, tokenizer, model
// shape, optimizer, evaluation and checkpoint settings — parsed strictly
// (every key known, every type checked), and the ModelConfig it describes.
#pragma once

#include <cstdint>
#include <string>

#include "base/status.h"
#include "formats/hf_config.h"
#include "tensor/dtype.h"
#include <vector>

#include "train/data/vqa_data.h"

namespace bitlens::train {

// Recipe file (all keys optional except where noted; unknown keys are errors):
// {
//   "seed": 1,
//   "data": {"image_size": 64, "train_samples": 20000, "validation_samples": 256,
//            "test_samples": 1000, "catalog_fraction": 0.15,
//            "kinds": ["color", ...]   (optional: only these question kinds, for experiments)},
//   "tokenizer": {"vocab_size": 1024, "min_frequency": 2},
//   "model": {"vision": {"hidden_size", "intermediate_size", "num_layers", "num_heads", "patch_size"},
//             "text": {"hidden_size", "intermediate_size", "num_layers", "num_heads", "num_kv_heads",
//                      "max_position_embeddings", "rope_theta"},
//             "dtype": "f32" | "bf16"},
//   "optimizer": {"lr", "min_lr", "warmup_steps", "steps", "batch_size", "weight_decay",
//                 "beta1", "beta2", "eps", "grad_clip"},
//   "eval": {"interval": 250, "samples": 256},
//   "checkpoint_interval": 500,
//   "threads": 1
// }
struct RecipeVision {
  int64_t hidden_size = 128;
  int64_t intermediate_size = 512;
  int64_t num_layers = 4;
  int64_t num_heads = 4;
  int64_t patch_size = 8;
};

struct RecipeText {
  int64_t hidden_size = 256;
  int64_t intermediate_size = 704;
  int64_t num_layers = 4;
  int64_t num_heads = 8;
  int64_t num_kv_heads = 4;
  int64_t max_position_embeddings = 256;
  double rope_theta = 10000.0;
};

struct RecipeOptimizer {
  double lr = 1e-3;
  double min_lr = 1e-4;
  int64_t warmup_steps = 100;
  int64_t steps = 2000;
  int64_t batch_size = 16;  // samples per optimizer step (gradient accumulation, one sequence each)
  double weight_decay = 0.1;
  double beta1 = 0.9;
  double beta2 = 0.95;
  double eps = 1e-8;
  double grad_clip = 1.0;  // global L2 norm; 0 = off
};

struct Recipe {
  uint64_t seed = 1;
  DataOptions data;  // image_size, seed (= recipe seed), catalog_fraction
  std::vector<QuestionKind> kinds;  // data.kinds: train and evaluate only these; empty = every kind
  int64_t train_samples = 20000;
  int64_t validation_samples = 256;
  int64_t test_samples = 1000;
  int vocab_size = 1024;
  int min_frequency = 2;
  RecipeVision vision;
  RecipeText text;
  DType dtype = DType::kF32;  // of the saved weights (training is fp32)
  RecipeOptimizer optimizer;
  int64_t eval_interval = 250;    // steps between validation runs; 0 = only at the end
  int64_t eval_samples = 256;     // validation samples per run (≤ validation_samples)
  int64_t checkpoint_interval = 0;  // steps between train_state saves; 0 = only on Ctrl-C
  int threads = 1;                // 0 = all cores
};

// Parses recipe.json text; `source` names the file in the one-line errors.
Result<Recipe> ParseRecipe(const std::string& json_text, const std::string& source);
Result<Recipe> LoadRecipe(const std::string& path);

// Special token ids of the trained tokenizer the config refers to.
struct SpecialTokenIds {
  int64_t bos = 1, eos = 2, pad = 3, image = 4;
};

// The LLaVA-1.5-layout config (CLIP tower, default strategy, feature layer -2,
// gelu projector with biases, Llama decoder, untied head) of `recipe` over a
// vocabulary of `vocab_size` tokens.
ModelConfig RecipeModelConfig(const Recipe& recipe, int64_t vocab_size, const SpecialTokenIds& ids);

}  // namespace bitlens::train
