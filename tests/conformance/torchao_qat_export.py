#!/usr/bin/env python3
"""Goldens for importing torchao QAT checkpoints (bitlens convert --from torchao).

For each case, a tiny Llama (transformers LlamaForCausalLM, fp32, fixed seed) goes through torchao's
QAT flow: QATConfig(IntxWeightOnlyConfig(int4 | int2, PerGroup(32)), step="prepare") swaps every
nn.Linear for a FakeQuantizedLinear; a few AdamW steps on a fixed token pattern train it; then
QATConfig(..., step="convert") replaces each weight by torchao's IntxUnpackedToInt8Tensor
(qdata int8, scale, zero_point). The model is saved exactly as torchao / HF transformers save a
torchao model with safetensors: flatten_tensor_state_dict(model.state_dict()) — tensors
"<module>._weight_qdata" / "_weight_scale" / "_weight_zero_point" plus per-tensor JSON in the
safetensors metadata — and config.json with HF's TorchAoConfig quantization_config. The script
reloads that directory with transformers.from_pretrained as a self-check.

Writes tests/golden/torchao_qat/<case>/ (config.json, model.safetensors) and
tests/golden/torchao_qat/logits.safetensors + torchao_golden.json:
  <case>.input_ids         [P, T] int64  fixed prompts
  <case>.logits_torchao    [P, T, V]     the converted model's logits in PyTorch (fp32)
  <case>.logits_f16_scales [P, T, V]     the same with every group scale rounded to f16 (what a
                                         bitlens f16-scale grid stores; equal to the above when
                                         every scale is f16-representable)
torchao_golden.json also records, per case, how far the prepared (fake-quantized) model's logits
are from the converted model's, how many group scales are f16-exact, and the training loss.

Usage: python3 tests/conformance/torchao_qat_export.py [--out tests/golden/torchao_qat]
"""

import argparse
import json
import math
import os
import platform
import shutil
import struct
import sys

import safetensors
import safetensors.torch
import torch
import torchao
import transformers
from torchao.prototype.safetensors.safetensors_support import flatten_tensor_state_dict
from torchao.quantization import IntxUnpackedToInt8Tensor, IntxWeightOnlyConfig, PerGroup, quantize_
from torchao.quantization.qat import QATConfig
from transformers import LlamaConfig, LlamaForCausalLM, TorchAoConfig

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROMPTS = [[1, 57, 203, 9, 144, 88, 251, 17, 190, 33, 120, 65],
           [1, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]]
CASES = {
    # name: (torch weight dtype, group size, scale dtype at convert (None: the model's, fp32), seed)
    "int4_g32": (torch.int4, 32, None, 1234),
    "int2_g32": (torch.int2, 32, None, 4321),
    # IntxWeightOnlyConfig(scale_dtype=torch.float16) at convert: torchao rounds each scale to f16
    # and re-derives qdata with it, so every grid is one bitlens stores exactly.
    "int2_g32_f16_scales": (torch.int2, 32, torch.float16, 2468),
}
TRAIN_STEPS = 30


def save_safetensors(tensors, path, metadata):
    """safetensors.torch.save, with the header's metadata in sorted order: the library writes the
    metadata map in hash order, which would make the goldens change bytes on every run."""
    blob = safetensors.torch.save({k: v.contiguous() for k, v in sorted(tensors.items())}, metadata=metadata)
    n = struct.unpack("<Q", blob[:8])[0]
    header = json.loads(blob[8:8 + n])
    header["__metadata__"] = dict(sorted(header["__metadata__"].items()))
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the data buffer stays 8-byte aligned, as the library keeps it
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + blob[8 + n:])


def build_model(seed):
    cfg = LlamaConfig(vocab_size=256, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                      rms_norm_eps=1e-5, bos_token_id=1, eos_token_id=2, pad_token_id=None,
                      tie_word_embeddings=False)
    cfg._attn_implementation = "eager"
    torch.manual_seed(seed)
    model = LlamaForCausalLM(cfg)
    # Weights of unit-ish fan-in variance (not HF's 0.02 init): the logits then spread widely
    # enough that a comparison means something.
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1:
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=gen))
            else:
                fan_in = 16 if "embed_tokens" in name else p.shape[1]
                p.copy_(torch.randn(p.shape, generator=gen) / math.sqrt(fan_in))
    return model


def batches(seed):
    """A learnable pattern: runs of consecutive ids from random starts (next id = id + 1)."""
    gen = torch.Generator().manual_seed(seed + 1)
    for _ in range(TRAIN_STEPS):
        start = torch.randint(3, 200, (8, 1), generator=gen)
        yield start + torch.arange(24).unsqueeze(0)


def logits_of(model, ids):
    with torch.no_grad():
        return model(input_ids=ids).logits.float().contiguous()


def round_scales_to_f16(model):
    """Every IntxUnpackedToInt8Tensor scale rounded to f16 (stored back in its own dtype)."""
    for module in model.modules():
        w = getattr(module, "weight", None)
        if isinstance(w, IntxUnpackedToInt8Tensor):
            w.scale = w.scale.to(torch.float16).to(w.scale.dtype)


def w_scale_dtype(model):
    return model.model.layers[0].self_attn.q_proj.weight.scale.dtype


def scale_stats(model):
    n = exact = 0
    worst = 0.0
    for module in model.modules():
        w = getattr(module, "weight", None)
        if isinstance(w, IntxUnpackedToInt8Tensor):
            s = w.scale.double()
            h = w.scale.to(torch.float16).double()
            n += s.numel()
            exact += int((s == h).sum())
            worst = max(worst, float(((h - s).abs() / s.abs()).max()))
    return n, exact, worst


def make_case(name, out_root):
    dtype, group, scale_dtype, seed = CASES[name]
    model = build_model(seed)
    # The prepare step infers the fake quantizer from the base config, which must not name a
    # scale dtype; the convert step applies the base config as given.
    base = IntxWeightOnlyConfig(weight_dtype=dtype, granularity=PerGroup(group))
    final = IntxWeightOnlyConfig(weight_dtype=dtype, granularity=PerGroup(group), scale_dtype=scale_dtype)
    quantize_(model, QATConfig(base, step="prepare"))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    losses = []
    for ids in batches(seed):
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(float(loss))
    model.eval()
    ids = torch.tensor(PROMPTS, dtype=torch.int64)
    fake = logits_of(model, ids)
    quantize_(model, QATConfig(final, step="convert"))
    real = logits_of(model, ids)

    case_dir = os.path.join(out_root, name)
    shutil.rmtree(case_dir, ignore_errors=True)
    os.makedirs(case_dir)
    tensors, metadata = flatten_tensor_state_dict(model.state_dict())
    save_safetensors(tensors, os.path.join(case_dir, "model.safetensors"), metadata)
    model.config.quantization_config = TorchAoConfig(quant_type=final)
    model.config.save_pretrained(case_dir)

    # Self-check: transformers reloads the directory as a torchao checkpoint, with the same logits.
    again = LlamaForCausalLM.from_pretrained(case_dir, attn_implementation="eager", dtype=torch.float32)
    reloaded = logits_of(again.eval(), ids)
    if not torch.equal(reloaded, real):
        sys.exit(f"{name}: transformers' reload differs by {float((reloaded - real).abs().max())}")
    if not isinstance(again.model.layers[0].self_attn.q_proj.weight, IntxUnpackedToInt8Tensor):
        sys.exit(f"{name}: transformers did not reload the weights as IntxUnpackedToInt8Tensor")

    n, exact, worst = scale_stats(model)
    round_scales_to_f16(model)
    f16 = logits_of(model, ids)
    info = {
        "torchao_config": f"QATConfig(IntxWeightOnlyConfig(weight_dtype={dtype}, granularity=PerGroup({group})), "
                          f"step='prepare') -> {TRAIN_STEPS} AdamW steps -> QATConfig(IntxWeightOnlyConfig(..., "
                          f"scale_dtype={scale_dtype}), step='convert')",
        "scale_dtype": str(w_scale_dtype(model)),
        "train_loss_first_last": [losses[0], losses[-1]],
        "groups": n,
        "groups_with_f16_exact_scale": exact,
        "max_rel_scale_error_f16": worst,
        "max_abs_logit": float(real.abs().max()),
        "max_abs_diff_torchao_vs_f16_scales": float((real - f16).abs().max()),
        "max_abs_diff_fake_quant_vs_converted": float((real - fake).abs().max()),
    }
    tensors = {f"{name}.input_ids": ids, f"{name}.logits_torchao": real, f"{name}.logits_f16_scales": f16}
    return tensors, info


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "golden", "torchao_qat"))
    args = ap.parse_args()
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    os.makedirs(args.out, exist_ok=True)
    all_tensors, cases = {}, {}
    for name in CASES:
        tensors, info = make_case(name, args.out)
        all_tensors.update(tensors)
        cases[name] = info
        print(f"torchao_qat: {name}: {json.dumps(info)}")
    safetensors.torch.save_file(all_tensors, os.path.join(args.out, "logits.safetensors"))
    meta = {
        "generator": "tests/conformance/torchao_qat_export.py",
        "versions": {"torch": torch.__version__.split("+")[0], "torchao": torchao.__version__,
                     "transformers": transformers.__version__, "safetensors": safetensors.__version__,
                     "python": platform.python_version()},
        "prompts": PROMPTS,
        "cases": cases,
    }
    with open(os.path.join(args.out, "torchao_golden.json"), "w") as f:
        json.dump(meta, f, indent=2, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
