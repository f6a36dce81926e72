// quant/calib_quantize: AWQ fold + GPTQ for one calibration block.
#include "quant/calib_quantize.h"

#include <algorithm>

#include "base/f16.h"
#include "quant/grid.h"

namespace bitlens::quant {
namespace {

bool Packs(const FormatInfo* f) { return f != nullptr && HasGrid(*f); }

}  // namespace

Result<std::vector<float>> WeightToF32(const kernels::WeightView& w) {
  if (w.format != nullptr) return InvalidArgument("calibrated quantization needs a float source weight, not a packed one");
  std::vector<float> out(static_cast<size_t>(w.n * w.k));
  const size_t count = out.size();
  switch (w.dtype) {
    case DType::kF32: std::copy_n(static_cast<const float*>(w.data), count, out.data()); break;
    case DType::kF16: F16ToF32(static_cast<const uint16_t*>(w.data), out.data(), count); break;
    case DType::kBF16: Bf16ToF32(static_cast<const uint16_t*>(w.data), out.data(), count); break;
    default: return InvalidArgument("weight dtype " + std::string(DTypeName(w.dtype)) + " cannot be calibrated");
  }
  return out;
}

Status BlockQuantizer::Quantize(CalibBlock& block, const FormatFor& format_of,
                                std::vector<kernels::WeightView>& replace) {
  packed_.clear();
  error_.clear();
  norms_.clear();
  scaled_.clear();
  const size_t nt = block.tensors.size();
  std::vector<const FormatInfo*> fmt(nt, nullptr);
  std::vector<std::vector<float>> w(nt);  // f32 copies of the tensors quantized here
  for (size_t i = 0; i < nt; ++i) {
    const FormatInfo* f = format_of(block.tensors[i].name);
    if (!Packs(f)) continue;
    fmt[i] = f;
    BL_ASSIGN_OR_RETURN(w[i], WeightToF32(block.tensors[i].weight));
  }
  // Statistics each tensor is quantized against (AWQ rescales them).
  std::vector<LayerStats> scaled(block.inputs.size());
  std::vector<bool> is_scaled(block.inputs.size(), false);
  std::vector<bool> rescaled(nt, false);  // weights AWQ changed

  if (options_.awq) {
    // Inputs whose scale folds into a norm; down_proj's folds into up_proj rows.
    for (int input = 0; input < static_cast<int>(block.inputs.size()); ++input) {
      std::vector<size_t> members;
      for (size_t i = 0; i < nt; ++i) {
        if (block.tensors[i].input == input) members.push_back(i);
      }
      if (members.empty() || block.inputs[input].rows_seen == 0) continue;
      const FormatInfo* f = fmt[members[0]];
      bool same = f != nullptr;
      for (size_t i : members) same = same && fmt[i] == f;
      if (!same) continue;  // a shared scale needs every reader quantized alike
      CalibNorm* norm = nullptr;
      for (CalibNorm& n : block.norms) {
        if (n.input == input) norm = &n;
      }
      // down_proj (decoder input 3): x = act(gate) * up, so x_j / s_j is up's
      // row j divided by s_j. Only when up is packed here too (its rows are rewritten).
      size_t up = nt, up_row0 = 0;
      if (norm == nullptr && block.component == CalibComponent::kDecoder && input == 3) {
        for (size_t i = 0; i < nt; ++i) {
          const std::string& name = block.tensors[i].name;
          if (name.find("mlp.up_proj.weight") != std::string::npos) up = i;
          if (name.find("mlp.gate_up_proj.weight") != std::string::npos) {
            up = i;
            up_row0 = static_cast<size_t>(block.tensors[i].weight.n / 2);
          }
        }
        if (up < nt && fmt[up] == nullptr) up = nt;
      }
      if (norm == nullptr && up == nt) continue;
      const int64_t k = block.inputs[input].k;
      std::vector<AwqWeight> ws;
      for (size_t i : members) ws.push_back({w[i].data(), block.tensors[i].weight.n});
      AwqResult r;
      BL_TRY(AwqSearchScales(*f, ws, k, block.inputs[input], options_.awq_options, &r));
      const float* s = r.scales.data();
      for (size_t i : members) {
        ScaleInputChannels(w[i].data(), block.tensors[i].weight.n, k, s);
        rescaled[i] = true;
      }
      if (norm != nullptr) {
        for (int64_t j = 0; j < k; ++j) norm->weight[j] /= s[j];
        for (size_t j = 0; j < norm->bias.size(); ++j) norm->bias[j] /= s[j];
        norms_[norm->weight_name] = norm->weight;
        if (!norm->bias_name.empty()) norms_[norm->bias_name] = norm->bias;
      } else {
        const int64_t uk = block.tensors[up].weight.k;
        for (int64_t j = 0; j < k; ++j) {
          float* row = w[up].data() + (up_row0 + j) * uk;
          for (int64_t c = 0; c < uk; ++c) row[c] /= s[j];
        }
        rescaled[up] = true;
      }
      scaled[input] = ScaledStats(block.inputs[input], s);
      is_scaled[input] = true;
    }
  }

  replace.assign(nt, kernels::WeightView{});
  for (size_t i = 0; i < nt; ++i) {
    if (fmt[i] == nullptr) continue;
    const CalibTensor& t = block.tensors[i];
    const int input = t.input;
    const LayerStats* stats = is_scaled[input] ? &scaled[input] : &block.inputs[input];
    if (stats->rows_seen == 0) stats = nullptr;  // e.g. a tower layer no image reached
    const QuantMethod method = options_.method == QuantMethod::kGptq && stats == nullptr ? QuantMethod::kRtn : options_.method;
    std::vector<uint8_t>& out = packed_[t.name];
    out.assign(RowBytes(*fmt[i], t.weight.k) * static_cast<size_t>(t.weight.n), 0);
    LinearQuantResult result;
    const Status st = QuantizeLinear(method, *fmt[i], w[i].data(), t.weight.n, t.weight.k, stats, options_.quantize, out,
                                     &result);
    if (!st.ok()) return st.WithContext(t.name);
    if (result.rel_output_error >= 0) error_[t.name] = result.rel_output_error;
    replace[i] = {DType::kU8, out.data(), t.weight.n, t.weight.k, fmt[i]};
    if (rescaled[i]) scaled_[t.name] = std::move(w[i]);  // the pipeline compares the packed rows with these
    else std::vector<float>().swap(w[i]);
  }
  return Status::Ok();
}

const std::vector<float>* BlockQuantizer::Scaled(const std::string& name) const {
  auto it = scaled_.find(name);
  return it == scaled_.end() ? nullptr : &it->second;
}

const std::vector<uint8_t>* BlockQuantizer::Packed(const std::string& name) const {
  auto it = packed_.find(name);
  return it == packed_.end() ? nullptr : &it->second;
}

std::optional<double> BlockQuantizer::OutputError(const std::string& name) const {
  auto it = error_.find(name);
  if (it == error_.end()) return std::nullopt;
  return it->second;
}

const std::vector<float>* BlockQuantizer::Norm(const std::string& name) const {
  auto it = norms_.find(name);
  return it == norms_.end() ? nullptr : &it->second;
}

}  // namespace bitlens::quant
