// model/decoder_weights: one table of names per family; every tensor is
// checked for presence, dtype and shape before the decoder touches its data.
#include "model/decoder_weights.h"

#include <filesystem>

#include "base/f16.h"
#include "quant/checkpoint.h"

namespace bitlens {
namespace {

struct NameScheme {
  const char* prefix;   // before "layers.N", "embed_tokens", "norm"
  const char* lm_head;  // full name of the output projection
};

// text-only, LLaVA transformers v4, LLaVA transformers v5.
constexpr NameScheme kSchemes[] = {
    {"model.", "lm_head.weight"},
    {"language_model.model.", "language_model.lm_head.weight"},
    {"model.language_model.", "lm_head.weight"},
};

std::string BaseName(const std::string& path) { return std::filesystem::path(path).filename().string(); }

class Mapper {
 public:
  Mapper(const Checkpoint& ckpt, const quant::QuantizationConfig* quant) : ckpt_(ckpt), quant_(quant) {
    if (ckpt.files().size() == 1) where_ = BaseName(ckpt.files()[0]->path());
    else where_ = "model.safetensors.index.json";
  }

  // The entry for `name` with exactly `shape` and a float dtype.
  Result<const TensorEntry*> Check(const std::string& name, const Shape& shape) const {
    const TensorEntry* e = ckpt_.Find(name);
    if (e == nullptr) return NotFound(where_ + ": tensor '" + name + "' is missing (config.json expects it)");
    const std::string file = BaseName(ckpt_.FileOf(name));
    if (e->dtype != DType::kF32 && e->dtype != DType::kF16 && e->dtype != DType::kBF16) {
      return Unsupported(file + ": '" + name + "' has dtype " + std::string(DTypeName(e->dtype)) +
                         "; the decoder reads F32, F16 or BF16");
    }
    if (e->shape != shape) {
      return InvalidArgument(file + ": '" + name + "' is " + ShapeToString(e->shape) + " but config.json implies " +
                             ShapeToString(shape));
    }
    return e;
  }

  Result<Tensor> Get(const std::string& name, const Shape& shape) const {
    BL_TRY(Check(name, shape).status());
    return ckpt_.Get(name);
  }

  // A [rows, cols] weight: float in place, or packed rows when quantization_config lists it.
  Result<kernels::WeightView> Matrix(const std::string& name, int64_t rows, int64_t cols, Tensor* keep = nullptr) const {
    Tensor t;
    kernels::WeightView w;
    if (IsPacked(name)) {
      BL_ASSIGN_OR_RETURN(w, quant::MapWeight(ckpt_, quant_, name, {rows, cols}, &t));
    } else {
      BL_ASSIGN_OR_RETURN(t, Get(name, {rows, cols}));
      w = {t.dtype(), t.data(), rows, cols};
    }
    if (keep != nullptr) *keep = std::move(t);
    return w;
  }

  // A [length] vector as f32: in place for F32, converted once otherwise.
  Result<F32Vector> Vector(const std::string& name, int64_t length) const {
    BL_ASSIGN_OR_RETURN(Tensor t, Get(name, {length}));
    F32Vector v;
    if (t.dtype() == DType::kF32) {
      v.data = t.data_as<float>();
      v.source = std::move(t);
    } else {
      v.owned.resize(length);
      if (t.dtype() == DType::kF16) F16ToF32(t.data_as<uint16_t>(), v.owned.data(), length);
      else Bf16ToF32(t.data_as<uint16_t>(), v.owned.data(), length);
      v.data = v.owned.data();
    }
    return v;
  }

  const std::string& where() const { return where_; }

  // Listed in quantization_config, or stored as U8 (MapWeight then explains what is missing).
  bool IsPacked(const std::string& name) const {
    if (quant_ != nullptr && quant_->Find(name) != nullptr) return true;
    const TensorEntry* e = ckpt_.Find(name);
    return e != nullptr && e->dtype == DType::kU8;
  }

 private:
  const Checkpoint& ckpt_;
  const quant::QuantizationConfig* quant_;
  std::string where_;
};

// Row range [begin, begin + rows) of a fused [*, cols] matrix, as its own view.
kernels::WeightView RowRange(const kernels::WeightView& w, int64_t begin, int64_t rows) {
  kernels::WeightView r = w;
  r.data = static_cast<const uint8_t*>(w.data) + static_cast<size_t>(begin) * kernels::WeightRowBytes(w);
  r.n = rows;
  return r;
}

}  // namespace

Result<DecoderWeights> MapDecoderWeights(const Checkpoint& checkpoint, const TextConfig& c,
                                         const quant::QuantizationConfig* quant) {
  Mapper m(checkpoint, quant);
  const NameScheme* scheme = nullptr;
  for (const NameScheme& s : kSchemes) {
    if (checkpoint.Has(std::string(s.prefix) + "embed_tokens.weight")) {
      scheme = &s;
      break;
    }
  }
  if (scheme == nullptr) {
    return NotFound(m.where() + ": no token embedding found (looked for 'model.embed_tokens.weight', "
                    "'language_model.model.embed_tokens.weight', 'model.language_model.embed_tokens.weight'); "
                    "is this a Llama or Phi-3 checkpoint?");
  }
  const std::string p = scheme->prefix;
  const int64_t hidden = c.hidden_size, vocab = c.vocab_size, inter = c.intermediate_size;
  const int64_t q_rows = c.num_attention_heads * c.head_dim, kv_rows = c.num_key_value_heads * c.head_dim;
  const bool phi3 = c.model_type == "phi3";

  DecoderWeights w;
  w.prefix = p;
  BL_ASSIGN_OR_RETURN(w.embed, m.Matrix(p + "embed_tokens.weight", vocab, hidden, &w.embed_tokens));
  BL_ASSIGN_OR_RETURN(w.final_norm, m.Vector(p + "norm.weight", hidden));
  if (c.tie_word_embeddings) {
    w.lm_head = w.embed;  // a packed table serves both the lookup and the head
  } else {
    BL_ASSIGN_OR_RETURN(w.lm_head, m.Matrix(scheme->lm_head, vocab, hidden));
  }

  w.layers.reserve(c.num_hidden_layers);
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const std::string lp = p + "layers." + std::to_string(l) + ".";
    DecoderLayerWeights L;
    BL_ASSIGN_OR_RETURN(L.input_norm, m.Vector(lp + "input_layernorm.weight", hidden));
    BL_ASSIGN_OR_RETURN(L.post_attn_norm, m.Vector(lp + "post_attention_layernorm.weight", hidden));
    BL_ASSIGN_OR_RETURN(L.o, m.Matrix(lp + "self_attn.o_proj.weight", hidden, q_rows));
    BL_ASSIGN_OR_RETURN(L.down, m.Matrix(lp + "mlp.down_proj.weight", hidden, inter));
    if (phi3) {
      // Phi3Attention: qkv_proj rows are [q | k | v]; Phi3MLP: gate_up_proj rows are [gate | up].
      BL_ASSIGN_OR_RETURN(kernels::WeightView qkv,
                          m.Matrix(lp + "self_attn.qkv_proj.weight", q_rows + 2 * kv_rows, hidden));
      L.q = RowRange(qkv, 0, q_rows);
      L.k = RowRange(qkv, q_rows, kv_rows);
      L.v = RowRange(qkv, q_rows + kv_rows, kv_rows);
      BL_ASSIGN_OR_RETURN(kernels::WeightView gate_up, m.Matrix(lp + "mlp.gate_up_proj.weight", 2 * inter, hidden));
      L.gate = RowRange(gate_up, 0, inter);
      L.up = RowRange(gate_up, inter, inter);
    } else {
      BL_ASSIGN_OR_RETURN(L.q, m.Matrix(lp + "self_attn.q_proj.weight", q_rows, hidden));
      BL_ASSIGN_OR_RETURN(L.k, m.Matrix(lp + "self_attn.k_proj.weight", kv_rows, hidden));
      BL_ASSIGN_OR_RETURN(L.v, m.Matrix(lp + "self_attn.v_proj.weight", kv_rows, hidden));
      BL_ASSIGN_OR_RETURN(L.gate, m.Matrix(lp + "mlp.gate_proj.weight", inter, hidden));
      BL_ASSIGN_OR_RETURN(L.up, m.Matrix(lp + "mlp.up_proj.weight", inter, hidden));
      if (c.attention_bias) {
        BL_ASSIGN_OR_RETURN(L.q_bias, m.Vector(lp + "self_attn.q_proj.bias", q_rows));
        BL_ASSIGN_OR_RETURN(L.k_bias, m.Vector(lp + "self_attn.k_proj.bias", kv_rows));
        BL_ASSIGN_OR_RETURN(L.v_bias, m.Vector(lp + "self_attn.v_proj.bias", kv_rows));
        BL_ASSIGN_OR_RETURN(L.o_bias, m.Vector(lp + "self_attn.o_proj.bias", hidden));
      }
      if (c.mlp_bias) {
        BL_ASSIGN_OR_RETURN(L.gate_bias, m.Vector(lp + "mlp.gate_proj.bias", inter));
        BL_ASSIGN_OR_RETURN(L.up_bias, m.Vector(lp + "mlp.up_proj.bias", inter));
        BL_ASSIGN_OR_RETURN(L.down_bias, m.Vector(lp + "mlp.down_proj.bias", hidden));
      }
    }
    w.layers.push_back(std::move(L));
  }
  return w;
}

}  // namespace bitlens
