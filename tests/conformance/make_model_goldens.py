#!/usr/bin/env python3
"""Reference goldens for the model families bitlens runs, written by HF transformers itself.

Each case builds a tiny random checkpoint with transformers (fp32, eager attention), saves it with
save_pretrained(safe_serialization=True) into tests/golden/<case>/model/, runs it and writes
tests/golden/<case>/golden.safetensors + golden.json. LLaVA cases also get model_v4/: the same
weights under the tensor names of checkpoints written by transformers 4.x.

Usage: python3 tests/conformance/make_model_goldens.py [--out tests/golden] [case ...]
"""

import argparse
import copy
import json
import math
import os
import platform
import shutil
import sys
import tempfile

import numpy as np
import safetensors
import safetensors.torch
import torch
import transformers
from PIL import Image
from transformers import (
    CLIPVisionConfig,
    GenerationConfig,
    LlamaConfig,
    LlamaForCausalLM,
    LlavaConfig,
    LlavaForConditionalGeneration,
    Phi3Config,
    Phi3ForCausalLM,
    SiglipVisionConfig,
)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Shared test data, found as the C++ tests find it: $BITLENS_TEST_DATA, else <root>/../shared/data.
DATA = os.environ.get("BITLENS_TEST_DATA") or os.path.join(ROOT, "..", "shared", "data")
IMAGE = os.path.join(DATA, "images", "astronaut.png")
NEW_TOKENS = 16
TOLERANCE = 1e-3  # absolute, fp32 logits
# Greedy picks must win by at least this logit margin at every step, so an implementation within
# TOLERANCE cannot flip a token; a seed that gives a closer race is replaced by the next one.
MIN_TOP2_GAP = 10 * TOLERANCE
# ... and the 16 new tokens must not collapse into one repeated token (a weak test of decoding).
MIN_DISTINCT_NEW = 4

# Hand-picked prompt ids (no tokenizer): BOS then arbitrary ids below every vocab used here.
TEXT_PROMPT = [1, 57, 203, 9, 144, 88, 251, 17, 190, 33, 120, 65]
# LLaVA prompt as "USER: <image>\n... ASSISTANT:" would look: BOS, a few ids, the image
# placeholder (expanded to n_image_tokens copies, as LlavaProcessor does), a few more ids.
VLM_PROMPT_BEFORE = [1, 57, 203, 9]
VLM_PROMPT_AFTER = [144, 88, 251, 17, 190, 33]


# --------------------------------------------------------------------------- weights

def randomize_(model, seed):
    """Re-draws every parameter so that a wrong norm weight, bias or scale shows in the logits.

    transformers' own init sets norm weights to 1 and biases to 0 and uses std 0.02, which gives
    near-uniform logits where many bugs hide. Here: matrices ~ N(0, 1/fan_in) (O(1) activations),
    norm weights ~ 1 + 0.2 N(0,1), biases and class/position embeddings non-zero.
    """
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1:
                if "norm" in name or "layrnorm" in name:
                    if name.endswith("weight"):
                        v = 1.0 + 0.2 * torch.randn(p.shape, generator=gen)
                    else:
                        v = 0.1 * torch.randn(p.shape, generator=gen)
                elif "class_embedding" in name:
                    v = torch.randn(p.shape, generator=gen)
                else:  # linear / conv biases
                    v = 0.1 * torch.randn(p.shape, generator=gen)
            else:
                fan_in = int(np.prod(p.shape[1:]))
                if "embed_tokens" in name or "position_embedding" in name:
                    fan_in = 16  # embeddings: entries of size ~0.25 (larger makes tied heads echo the input)
                v = torch.randn(p.shape, generator=gen) / math.sqrt(fan_in)
                if name.endswith("lm_head.weight"):
                    v = v * 2.0  # wider logit spread, so greedy picks are not near-ties
            p.copy_(v.to(p.dtype))


# --------------------------------------------------------------------------- cases

def llama_text(vocab, **kw):
    base = dict(vocab_size=vocab, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                rms_norm_eps=1e-5, bos_token_id=1, eos_token_id=2, pad_token_id=None)
    base.update(kw)
    return LlamaConfig(**base)


def phi3_text(vocab, **kw):
    base = dict(vocab_size=vocab, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                rms_norm_eps=1e-5, bos_token_id=1, eos_token_id=2, pad_token_id=None,
                partial_rotary_factor=0.5)
    base.update(kw)
    return Phi3Config(**base)


# longrope with partial_rotary_factor 0.75 as in Phi-4-mini: head_dim 16 -> rotary_dim 12 (not a
# power of two), 6 frequencies, one factor each, deliberately uneven.
LONGROPE_PARTIAL_ROTARY = 0.75
LONGROPE = dict(rope_type="longrope", rope_theta=10000.0,
                short_factor=[1.0, 1.1, 1.25, 1.7, 2.3, 3.1], long_factor=[1.5, 2.2, 3.0, 7.5, 19.0, 41.0])


def case_specs():
    """name -> dict(kind, build(), prompt, notes). build() returns (model, image_processor | None)."""
    specs = {}

    def llava_clip_llama():
        vc = CLIPVisionConfig(hidden_size=48, intermediate_size=96, num_hidden_layers=3,
                              num_attention_heads=3, image_size=48, patch_size=8,
                              hidden_act="quick_gelu", projection_dim=48, layer_norm_eps=1e-5)
        tc = llama_text(300, tie_word_embeddings=False,
                        rope_parameters={"rope_type": "default", "rope_theta": 10000.0})
        n_img = (48 // 8) ** 2  # default strategy drops the class token
        cfg = LlavaConfig(vision_config=vc, text_config=tc, image_token_id=299,
                          vision_feature_layer=-2, vision_feature_select_strategy="default",
                          projector_hidden_act="gelu", image_seq_length=n_img,
                          tie_word_embeddings=False)
        from transformers import CLIPImageProcessorPil
        proc = CLIPImageProcessorPil(size={"shortest_edge": 48}, crop_size={"height": 48, "width": 48})
        return cfg, LlavaForConditionalGeneration, proc, n_img

    def llava_siglip_phi3():
        vc = SiglipVisionConfig(hidden_size=32, intermediate_size=80, num_hidden_layers=2,
                                num_attention_heads=2, image_size=32, patch_size=8,
                                hidden_act="gelu_pytorch_tanh", layer_norm_eps=1e-6,
                                vision_use_head=False)
        tc = phi3_text(320, tie_word_embeddings=True,
                       rope_parameters={"rope_type": "default", "rope_theta": 10000.0})
        n_img = (32 // 8) ** 2  # full strategy: SigLIP has no class token
        cfg = LlavaConfig(vision_config=vc, text_config=tc, image_token_id=310,
                          vision_feature_layer=-1, vision_feature_select_strategy="full",
                          projector_hidden_act="gelu", image_seq_length=n_img,
                          tie_word_embeddings=True)
        from transformers import SiglipImageProcessorPil
        proc = SiglipImageProcessorPil(size={"height": 32, "width": 32})
        return cfg, LlavaForConditionalGeneration, proc, n_img

    def phi3_longrope():
        cfg = phi3_text(320, max_position_embeddings=128, original_max_position_embeddings=32,
                        tie_word_embeddings=False, partial_rotary_factor=LONGROPE_PARTIAL_ROTARY,
                        rope_parameters=dict(LONGROPE, partial_rotary_factor=LONGROPE_PARTIAL_ROTARY))
        return cfg, Phi3ForCausalLM, None, 0

    def llama_llama3rope_tied():
        cfg = llama_text(300, tie_word_embeddings=True, max_position_embeddings=256,
                         rope_parameters={"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
                                          "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                          "original_max_position_embeddings": 64})
        return cfg, LlamaForCausalLM, None, 0

    def llama_bf16_weights():
        cfg = llama_text(300, tie_word_embeddings=False,
                         rope_parameters={"rope_type": "default", "rope_theta": 10000.0})
        return cfg, LlamaForCausalLM, None, 0

    def phi3_f16_weights():
        cfg = phi3_text(320, tie_word_embeddings=False, partial_rotary_factor=1.0,
                        rope_parameters={"rope_type": "default", "rope_theta": 10000.0,
                                         "partial_rotary_factor": 1.0})
        return cfg, Phi3ForCausalLM, None, 0

    def llama_linear_rope():
        cfg = llama_text(300, tie_word_embeddings=False, num_key_value_heads=4,
                         rope_parameters={"rope_type": "linear", "rope_theta": 10000.0, "factor": 2.5})
        return cfg, LlamaForCausalLM, None, 0

    def random_prompt(n, attempt):
        rng = np.random.default_rng(1234 + attempt)
        return [1] + [int(x) for x in rng.integers(3, 300, size=n - 1)]

    # The three phi3 cases share one checkpoint (same seed, byte-identical files that git stores
    # once); when a greedy race is too close they draw another prompt instead of another seed.
    long_prompt = lambda attempt: random_prompt(44, attempt)  # 44 > 32
    cross_prompt = lambda attempt: random_prompt(24, attempt)  # 24 + 16 crosses 32

    specs["llava_clip_llama"] = dict(family="llava-clip-llama", build=llava_clip_llama, seed=101,
                                     notes=["CLIP tower has 3 layers so that vision_feature_layer=-2 "
                                            "runs two encoder layers; the last layer is computed by "
                                            "transformers but unused."])
    specs["llava_siglip_phi3"] = dict(family="llava-siglip-phi3", build=llava_siglip_phi3, seed=102,
                                      notes=["tie_word_embeddings=true: lm_head shares embed_tokens and "
                                             "no lm_head tensor is written.",
                                             "SigLIP vision_use_head=false: no attention-pooling head."])
    specs["phi3_longrope_short"] = dict(family="phi3", build=phi3_longrope, seed=103, fixed_seed=True, prompt=TEXT_PROMPT,
                                        notes=["prompt + 16 new tokens = 28 <= original_max_position_"
                                               "embeddings (32): short factors throughout."])
    specs["phi3_longrope_long"] = dict(family="phi3", build=phi3_longrope, seed=103, fixed_seed=True, prompt=long_prompt,
                                       notes=["prompt of 44 > 32 positions: long factors from the first "
                                              "forward pass on."])
    specs["phi3_longrope_cross"] = dict(family="phi3", build=phi3_longrope, seed=103, fixed_seed=True, prompt=cross_prompt,
                                        notes=["prompt of 24 (short factors); the sequence passes 32 at "
                                               "greedy step 9 (0-based), where transformers drops the KV cache "
                                               "and recomputes the whole sequence with long factors."])
    specs["llama_llama3rope_tied"] = dict(family="llama", build=llama_llama3rope_tied, seed=104,
                                          prompt=TEXT_PROMPT,
                                          notes=["tie_word_embeddings=true: no lm_head tensor is written.",
                                                 "original_max_position_embeddings=64 with head_dim 16 and theta 5e5 "
                                                 "so the llama3 low/high/interpolated bands all occur."])
    specs["llama_bf16_weights"] = dict(family="llama", build=llama_bf16_weights, seed=106, prompt=TEXT_PROMPT,
                                       weights_dtype=torch.bfloat16,
                                       notes=["model.safetensors holds BF16 weights (as Llama/Phi-3 hub "
                                              "checkpoints do); goldens are computed in fp32 from those "
                                              "exact values"])
    specs["phi3_f16_weights"] = dict(family="phi3", build=phi3_f16_weights, seed=107, prompt=TEXT_PROMPT,
                                     weights_dtype=torch.float16,
                                     notes=["model.safetensors holds F16 weights (as llava-1.5-7b-hf does); "
                                            "goldens are computed in fp32 from those exact values",
                                            "partial_rotary_factor 1.0 (full rotary, as Phi-3-mini)"])
    specs["llama_linear_rope"] = dict(family="llama", build=llama_linear_rope, seed=105, prompt=TEXT_PROMPT,
                                      notes=["num_key_value_heads == num_attention_heads (plain MHA)."])
    return specs


# --------------------------------------------------------------------------- helpers

def rope_inv_freq(rp, rotary_dim, long=False):
    """Inverse frequencies from the written rope_parameters, by the formulas docs/conformance.md
    gives; the generator checks them against transformers' own tables. Returns (inv_freq, scale)."""
    theta = rp["rope_theta"]
    base = 1.0 / theta ** (np.arange(0, rotary_dim, 2, dtype=np.float64) / rotary_dim)
    kind = rp["rope_type"]
    if kind == "default":
        return base, 1.0, None
    if kind == "linear":
        return base / rp["factor"], 1.0, None
    if kind == "llama3":
        factor, lo, hi = rp["factor"], rp["low_freq_factor"], rp["high_freq_factor"]
        omax = rp["original_max_position_embeddings"]
        wavelen = 2 * math.pi / base
        smooth = (omax / wavelen - lo) / (hi - lo)
        out = np.where(wavelen > omax / lo, base / factor,
                       np.where(wavelen < omax / hi, base, (1 - smooth) * base / factor + smooth * base))
        bands = {"low (divided by factor)": int((wavelen > omax / lo).sum()),
                 "high (unchanged)": int((wavelen < omax / hi).sum())}
        bands["interpolated"] = len(base) - sum(bands.values())
        return out, 1.0, bands
    if kind == "longrope":
        ext = np.array(rp["long_factor"] if long else rp["short_factor"], dtype=np.float64)
        return base / ext, None, None  # scale filled in by the caller (needs max_position_embeddings)
    raise ValueError(kind)


def rope_table_np(inv_freq, positions, scale):
    freqs = np.outer(np.arange(positions, dtype=np.float64), inv_freq)
    emb = np.concatenate([freqs, freqs], axis=1)
    return np.cos(emb) * scale, np.sin(emb) * scale


def v4_name(written):
    """Tensor name of a transformers-4.x LLaVA checkpoint for a name transformers 5 writes."""
    if written.startswith("vision_tower.") and not written.startswith("vision_tower.vision_model."):
        return "vision_tower.vision_model." + written[len("vision_tower."):]
    return written


def state_dict_name(written):
    """In-memory (transformers 5 module tree) name for a written LLaVA tensor name."""
    if written.startswith("language_model.lm_head."):
        return written[len("language_model."):]
    if written.startswith("language_model.model."):
        return "model.language_model." + written[len("language_model.model."):]
    for p in ("vision_tower.", "multi_modal_projector."):
        if written.startswith(p):
            return "model." + written
    return written


def v4_config(c):
    """config.json as transformers 4.x spelled it: rope_theta + rope_scaling (null for default;
    'type' for linear/longrope and 'rope_type' for llama3, as the hub configs of those families
    have it), torch_dtype, and for phi3 original_max_position_embeddings at the top level only."""
    c = dict(c)
    c.pop("transformers_version", None)
    if "dtype" in c:
        c["torch_dtype"] = c.pop("dtype")
    if isinstance(c.get("text_config"), dict):
        c["text_config"] = v4_config(c["text_config"])
    rp = c.pop("rope_parameters", None)
    if rp is not None:
        rp = dict(rp)
        c["rope_theta"] = rp.pop("rope_theta")
        prf = rp.pop("partial_rotary_factor", None)
        if prf is not None and prf != 1.0:
            c["partial_rotary_factor"] = prf
        kind = rp.pop("rope_type")
        if c.get("model_type") == "phi3":
            rp.pop("original_max_position_embeddings", None)
        c["rope_scaling"] = None if kind == "default" else {("rope_type" if kind == "llama3" else "type"): kind, **rp}
    return dict(sorted(c.items()))


def save_model(model, dest):
    tmp = tempfile.mkdtemp(dir=os.path.dirname(dest))
    model.save_pretrained(tmp, safe_serialization=True)
    if os.path.exists(dest):
        shutil.rmtree(dest)
    os.rename(tmp, dest)


def dir_bytes(path):
    total = 0
    for d, _, files in os.walk(path):
        for f in files:
            total += os.path.getsize(os.path.join(d, f))
    return total


def max_abs(a, b):
    return float((a - b).abs().max())


# --------------------------------------------------------------------------- one case

def make_case(name, spec, out_root, seed, attempt=0):
    """Writes the case; returns None (to retry with another seed) when a greedy step is a near-tie."""
    torch.manual_seed(seed)
    np.random.seed(seed)
    cfg, cls, proc, n_img = spec["build"]()
    cfg._attn_implementation = "eager"
    model = cls(cfg).eval()
    model.config._attn_implementation = "eager"
    randomize_(model, seed)
    weights_dtype = spec.get("weights_dtype", torch.float32)
    if weights_dtype != torch.float32:
        # Hub checkpoints ship bf16/f16: round the weights to that dtype, then compute in fp32 as a
        # loader that widens them exactly (bf16/f16 -> f32 is exact) must. Parameters only: the
        # rotary inv_freq buffers stay fp32 (model.to() would round them too).
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(p.to(weights_dtype).to(torch.float32))
    is_vlm = isinstance(cfg, LlavaConfig)

    case_dir = os.path.join(out_root, name)
    os.makedirs(case_dir, exist_ok=True)
    model_dir = os.path.join(case_dir, "model")
    if weights_dtype != torch.float32:
        save_model(copy.deepcopy(model).to(weights_dtype), model_dir)
    else:
        save_model(model, model_dir)
    if os.path.exists(os.path.join(model_dir, "generation_config.json")):
        os.remove(os.path.join(model_dir, "generation_config.json"))  # generation is described in golden.json
    caveats = list(spec.get("notes", []))

    tensors = {}
    info = {}
    if is_vlm:
        image_token = cfg.image_token_id
        ids = VLM_PROMPT_BEFORE + [image_token] * n_img + VLM_PROMPT_AFTER
        image = Image.open(IMAGE).convert("RGB")
        pixel_values = proc(images=image, return_tensors="pt")["pixel_values"].to(torch.float32)
        proc.save_pretrained(model_dir)
        tensors["pixel_values"] = pixel_values.contiguous()
        info["pixel_values_source"] = ("shared/data/images/astronaut.png (512x512 RGB) through "
                                       f"transformers.{type(proc).__name__} (PIL backend; "
                                       "model/preprocessor_config.json holds its settings)")
    else:
        ids = list(spec["prompt"](attempt) if callable(spec["prompt"]) else spec["prompt"])
    input_ids = torch.tensor([ids], dtype=torch.long)
    T = input_ids.shape[1]

    with torch.no_grad():
        kwargs = dict(input_ids=input_ids, use_cache=False)
        if is_vlm:
            kwargs["pixel_values"] = pixel_values
        out = model(**kwargs, output_hidden_states=True)
        logits = out.logits[0].float()
        tensors["logits"] = logits.contiguous()
        # [L+1, T, hidden]: 0 = input embeddings (image features merged), i = output of decoder
        # layer i-1, L = the final RMSNorm of the last layer's output (lm_head input).
        text_hs = torch.stack([h[0] for h in out.hidden_states])
        head_in = model.lm_head(text_hs[-1])
        assert max_abs(head_in, logits) < 1e-5, "last hidden state is not the lm_head input"
        tensors["text_hidden_states_all"] = text_hs.contiguous()

        if is_vlm:
            vt = model.model.vision_tower(pixel_values, output_hidden_states=True, return_dict=True)
            hs = torch.stack([h[0] for h in vt.hidden_states])  # [L+1, P, vision_hidden]
            sel = vt.hidden_states[cfg.vision_feature_layer][0]
            feats = model.model.get_image_features(
                pixel_values=pixel_values, vision_feature_layer=cfg.vision_feature_layer,
                vision_feature_select_strategy=cfg.vision_feature_select_strategy).pooler_output
            feats = torch.cat(list(feats), dim=0) if isinstance(feats, (list, tuple)) else feats[0]
            assert feats.shape[0] == n_img, (feats.shape, n_img)
            tensors["vision_hidden_states"] = sel.contiguous()
            tensors["vision_hidden_states_all"] = hs.contiguous()
            tensors["image_features"] = feats.contiguous()

        # eos must not end generation early: clear it on the model's own generation config too,
        # which generate() merges with the one passed in.
        model.generation_config.eos_token_id = None
        gen_cfg = GenerationConfig(do_sample=False, max_new_tokens=NEW_TOKENS, min_new_tokens=0,
                                   eos_token_id=None, pad_token_id=0, bos_token_id=1,
                                   num_beams=1, use_cache=True)
        gkw = dict(input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
                   generation_config=gen_cfg, return_dict_in_generate=True, output_logits=True)
        if is_vlm:
            gkw["pixel_values"] = pixel_values
        g = model.generate(**gkw)
        new_ids = g.sequences[0, T:]
        assert new_ids.numel() == NEW_TOKENS, new_ids
        tensors["greedy_ids"] = new_ids.to(torch.long).contiguous()
        tensors["greedy_logits"] = torch.stack([l[0] for l in g.logits]).float().contiguous()
        tensors["input_ids"] = input_ids[0].contiguous()

        # RoPE tables [positions, rotary_dim] as transformers applies them (attention scaling
        # included; rotate_half layout: the first and second halves repeat the same frequencies).
        rotary = (model.model.language_model if is_vlm else model.model).rotary_emb
        text = cfg.text_config if is_vlm else cfg

        def rope_tables(n):
            pos = torch.arange(n)[None]
            x = torch.zeros(1, n, text.hidden_size)
            cos, sin = rotary(x, pos)
            return cos[0].float().contiguous(), sin[0].float().contiguous()

        rp = text.rope_parameters
        rope_type = rp["rope_type"]
        head_dim = getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads
        rotary_dim = int(head_dim * rp.get("partial_rotary_factor", 1.0))
        if rope_type == "longrope":
            omax = rp["original_max_position_embeddings"]
            # a call whose positions stay <= omax selects the short factors, a longer one the long
            tensors["rope_cos_short"], tensors["rope_sin_short"] = rope_tables(omax)
            tensors["rope_cos_long"], tensors["rope_sin_long"] = rope_tables(text.max_position_embeddings)
            scale = math.sqrt(1 + math.log(text.max_position_embeddings / omax) / math.log(omax))
            checks = [("_short", rope_inv_freq(rp, rotary_dim)[0], omax),
                      ("_long", rope_inv_freq(rp, rotary_dim, long=True)[0], text.max_position_embeddings)]
        else:
            tensors["rope_cos"], tensors["rope_sin"] = rope_tables(T + NEW_TOKENS)
            inv, scale, bands = rope_inv_freq(rp, rotary_dim)
            checks = [("", inv, T + NEW_TOKENS)]
            if bands:
                info["llama3_bands"] = bands
                assert all(v > 0 for v in bands.values()), bands
        worst = 0.0
        for suffix, inv, n in checks:
            cos_np, sin_np = rope_table_np(inv, n, scale)
            worst = max(worst, float(np.abs(cos_np - tensors["rope_cos" + suffix].numpy()).max()),
                        float(np.abs(sin_np - tensors["rope_sin" + suffix].numpy()).max()))
        assert worst < 1e-4, f"{name}: documented rope formula differs from transformers by {worst}"
        info["rope_formula_max_abs_diff"] = worst

        # Self-checks: the prompt logits from generate() match the plain forward pass, and each
        # greedy step equals a cache-free forward over its prefix (this is also what the longrope
        # cache reset guarantees; see the longrope notes in golden.json).
        d0 = max_abs(tensors["greedy_logits"][0], logits[-1])
        assert d0 < 1e-4, f"{name}: generate's first logits differ from forward by {d0}"
        worst = 0.0
        for i in range(NEW_TOKENS):
            fkw = dict(input_ids=g.sequences[:, :T + i], use_cache=False)
            if is_vlm:
                fkw["pixel_values"] = pixel_values
            step = model(**fkw).logits[0, -1]
            worst = max(worst, max_abs(step, tensors["greedy_logits"][i]))
        assert worst < 1e-4, f"{name}: greedy step logits differ from a cache-free prefix forward by {worst}"
        info["prefix_forward_max_abs_diff"] = worst
        gaps = []
        for row in tensors["greedy_logits"]:
            top2 = torch.topk(row, 2).values
            gaps.append(float(top2[0] - top2[1]))
        info["greedy_min_top2_gap"] = min(gaps)
        if min(gaps) < MIN_TOP2_GAP or len(set(new_ids.tolist())) < MIN_DISTINCT_NEW:
            return None

    # Reload the written checkpoint (and the v4-named copy) and check they give the same logits.
    def reload_check(path):
        m2, li = cls.from_pretrained(path, attn_implementation="eager", output_loading_info=True,
                                     dtype=torch.float32)
        bad = {k: v for k, v in li.items() if v and k in ("missing_keys", "unexpected_keys", "mismatched_keys")}
        assert not bad, f"{path}: {bad}"
        with torch.no_grad():
            l2 = m2.eval()(**kwargs).logits[0]
        d = max_abs(l2, logits)
        assert d == 0.0, f"{path}: reloaded logits differ by {d}"

    reload_check(model_dir)
    saved_cfg = json.load(open(os.path.join(model_dir, "config.json")))
    cfg_v4 = v4_config(saved_cfg)
    with open(os.path.join(case_dir, "config_v4.json"), "w") as f:
        json.dump(cfg_v4, f, indent=2)
        f.write("\n")

    with safetensors.safe_open(os.path.join(model_dir, "model.safetensors"), "pt") as f:
        written = {k: f.get_tensor(k) for k in f.keys()}
        file_meta = f.metadata()
    name_map = None
    if is_vlm:
        v4_dir = os.path.join(case_dir, "model_v4")
        tmp = tempfile.mkdtemp(dir=case_dir)
        shutil.copy(os.path.join(model_dir, "config.json"), tmp)
        safetensors.torch.save_file({v4_name(k): v for k, v in written.items()},
                                    os.path.join(tmp, "model.safetensors"), metadata=file_meta)
        if os.path.exists(v4_dir):
            shutil.rmtree(v4_dir)
        os.rename(tmp, v4_dir)
        reload_check(v4_dir)
    # The v4 spelling describes the same model: transformers 5 loads it (with the v4 tensor names
    # for LLaVA) to bit-identical logits.
    with tempfile.TemporaryDirectory(dir=case_dir) as tmp:
        shutil.copy(os.path.join(case_dir, "config_v4.json"), os.path.join(tmp, "config.json"))
        weights_dir = os.path.join(case_dir, "model_v4") if is_vlm else model_dir
        shutil.copy(os.path.join(weights_dir, "model.safetensors"), tmp)
        reload_check(tmp)
        name_map = [{"written": k, "v4": v4_name(k), "state_dict": state_dict_name(k),
                     "shape": list(written[k].shape)} for k in sorted(written)]
        sd_names = set(model.state_dict().keys())
        for e in name_map:
            assert e["state_dict"] in sd_names, e

    golden_path = os.path.join(case_dir, "golden.safetensors")
    safetensors.torch.save_file({k: v.contiguous() for k, v in sorted(tensors.items())}, golden_path,
                                metadata={"case": name})  # one key: safetensors orders several at random

    text_cfg = saved_cfg.get("text_config", saved_cfg)
    g = {
        "case": name,
        "family": spec["family"],
        "architecture": saved_cfg["architectures"][0],
        "versions": {"transformers": transformers.__version__, "torch": torch.__version__,
                     "safetensors": safetensors.__version__, "numpy": np.__version__,
                     "python": platform.python_version()},
        "dtype": "float32",  # of the computation and of every golden tensor
        "weights_dtype": {torch.float32: "F32", torch.bfloat16: "BF16", torch.float16: "F16"}[weights_dtype],
        "attn_implementation": "eager",
        "seed": seed,
        "attempt": attempt,
        "tolerance_abs": TOLERANCE,
        "input": {
            "input_ids": ids,
            "n_tokens": T,
            "description": ("hand-picked ids, BOS=1; no tokenizer" if not is_vlm else
                            f"hand-picked ids {VLM_PROMPT_BEFORE} + image_token_id x {n_img} + "
                            f"{VLM_PROMPT_AFTER}, the image placeholder expanded as LlavaProcessor does"),
        },
        "generation": {
            "method": "generate(do_sample=False, num_beams=1, max_new_tokens=16, eos_token_id=None, use_cache=True)",
            "new_tokens": NEW_TOKENS,
            "eos_disabled": True,
            "greedy_min_top2_gap": info["greedy_min_top2_gap"],
            "checked": ("each step's logits equal a cache-free forward over prompt + earlier new tokens "
                        f"(max abs diff {info['prefix_forward_max_abs_diff']:.2e})"),
        },
        "golden_tensors": {k: {"dtype": str(v.dtype).replace("torch.", ""), "shape": list(v.shape)}
                           for k, v in sorted(tensors.items())},
        "tensor_notes": {
            "logits": "prompt forward pass (use_cache=False), every position",
            "greedy_logits": "row i: the logits greedy step i picked greedy_ids[i] from (row 0 = logits[-1])",
            "text_hidden_states_all": ("[num_hidden_layers+1, T, hidden]: 0 = input embeddings (VLM: image "
                                       "features merged), i = output of decoder layer i-1, last = final "
                                       "RMSNorm of the last layer's output (the lm_head input)"),
            "rope_cos/rope_sin": ("[positions, rotary_dim] cos/sin as applied to q and k (attention factor "
                                  "included), rotate_half layout: columns j and j+rotary_dim/2 share a "
                                  "frequency; longrope cases have _short (positions < original_max) and "
                                  "_long (max_position_embeddings positions) tables instead"),
        },
        "rope_check": ("rope tables recomputed in float64 from rope_parameters by the formulas of "
                       f"docs/conformance.md: max abs diff {info['rope_formula_max_abs_diff']:.2e}"),
        "config_keys": {
            "rope": "rope_parameters" if "rope_parameters" in text_cfg else
                    ("rope_scaling" if "rope_scaling" in text_cfg else None),
            "rope_parameters": text_cfg.get("rope_parameters", text_cfg.get("rope_scaling")),
            "dtype_key": "dtype" if "dtype" in saved_cfg else ("torch_dtype" if "torch_dtype" in saved_cfg else None),
            "tie_word_embeddings": bool(text_cfg.get("tie_word_embeddings", saved_cfg.get("tie_word_embeddings"))),
        },
        "weights": {
            "model_dir": "model",
            "layout": "transformers-5 save_pretrained" + (" (LLaVA: see name_layout)" if is_vlm else ""),
            "tensor_count": len(written),
            "has_lm_head": any(k.endswith("lm_head.weight") for k in written),
            "config_v4": ("config_v4.json: the same config in transformers 4.x spelling (rope_theta + "
                          "rope_scaling, torch_dtype); transformers 5 loads it"
                          + (" with model_v4/ weights" if is_vlm else "") + " to bit-identical logits"),
        },
        "caveats": caveats,
    }
    if "llama3_bands" in info:
        g["llama3_bands"] = info["llama3_bands"]
    if is_vlm:
        g["vlm"] = {
            "n_image_tokens": n_img,
            "image_token_index": cfg.image_token_id,
            "image_token_key_in_config": "image_token_index" if "image_token_index" in saved_cfg else "image_token_id",
            "vision_feature_layer": cfg.vision_feature_layer,
            "vision_feature_select_strategy": cfg.vision_feature_select_strategy,
            "vision_model_type": saved_cfg["vision_config"]["model_type"],
            "pixel_values_source": info["pixel_values_source"],
            "vision_hidden_states": ("hidden_states[vision_feature_layer] of the vision tower, before the "
                                     "strategy drops any class token; [positions, vision_hidden]. "
                                     "post_layernorm is NOT applied (hidden_states[-1] is the last encoder "
                                     "layer's output, not last_hidden_state)."),
            "vision_hidden_states_all": ("[num_hidden_layers+1, positions, vision_hidden]: index 0 is the "
                                         "embeddings (after pre_layrnorm for CLIP), index i the output of "
                                         "encoder layer i-1"),
            "image_features": "multi_modal_projector output, [n_image_tokens, text_hidden]",
        }
        g["weights"]["model_v4_dir"] = "model_v4"
        g["weights"]["name_layout"] = {
            "model/": ("what transformers 5 save_pretrained writes: language_model.model.*, "
                       "language_model.lm_head.weight, vision_tower.<tower without 'vision_model.'>*, "
                       "multi_modal_projector.*"),
            "model_v4/": ("transformers 4.x hub layout: as model/ but the tower under "
                          "vision_tower.vision_model.*"),
            "state_dict": ("transformers 5 in-memory names (never written by save_pretrained 5.x): "
                           "model.language_model.*, lm_head.weight, model.vision_tower.*, "
                           "model.multi_modal_projector.*"),
            "checked": "transformers reloads both model/ and model_v4/ with no missing or unexpected keys "
                       "and bit-identical logits",
        }
        g["weights"]["names"] = name_map
    if saved_cfg.get("model_type") == "phi3" and text_cfg.get("rope_parameters", {}).get("rope_type") == "longrope":
        rp = text_cfg["rope_parameters"]
        omax = rp["original_max_position_embeddings"]
        factor = saved_cfg["max_position_embeddings"] / omax
        total = T + NEW_TOKENS
        g["longrope"] = {
            "original_max_position_embeddings": omax,
            "max_position_embeddings": saved_cfg["max_position_embeddings"],
            "attention_factor": math.sqrt(1 + math.log(factor) / math.log(omax)),
            "attention_factor_rule": ("sqrt(1 + ln(max_position_embeddings/original_max_position_embeddings)"
                                      " / ln(original_max_position_embeddings)); multiplies cos and sin for "
                                      "short AND long factors"),
            "factor_rule": ("per forward call, seq_len = max(position_ids)+1; long_factor if seq_len > "
                            "original_max_position_embeddings else short_factor, for all positions of that call"),
            "generation_rule": ("Phi3ForCausalLM.prepare_inputs_for_generation: when the sequence (prompt + "
                                "generated so far, including the token being fed) first reaches "
                                "original_max_position_embeddings+1 tokens while the cache holds <= "
                                "original_max_position_embeddings, the cache is dropped and the whole "
                                "sequence is recomputed (with long factors). Net effect: every greedy step "
                                "equals a cache-free forward over the prefix."),
            "prompt_uses": "long" if T > omax else "short",
            "generation_crosses": bool(T <= omax < total),
            "first_long_step": (max(0, omax + 1 - T) if T <= omax < total else (0 if T > omax else None)),
        }
    with open(os.path.join(case_dir, "golden.json"), "w") as f:
        json.dump(g, f, indent=1)
        f.write("\n")
    return dir_bytes(case_dir)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "golden"))
    ap.add_argument("cases", nargs="*")
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    specs = case_specs()
    names = args.cases or list(specs)
    unknown = [n for n in names if n not in specs]
    if unknown:
        sys.exit(f"unknown case(s) {unknown}; known: {list(specs)}")
    if not os.path.exists(IMAGE) and any(n.startswith("llava") for n in names):
        sys.exit(f"{IMAGE} not found: set BITLENS_TEST_DATA to the shared test data folder")
    os.makedirs(args.out, exist_ok=True)
    for n in names:
        for attempt in range(20):
            seed = specs[n]["seed"] + (0 if specs[n].get("fixed_seed") else 1000 * attempt)
            size = make_case(n, specs[n], args.out, seed, attempt)
            if size is not None:
                break
        else:
            sys.exit(f"{n}: no seed gave greedy steps with a top-2 logit gap >= {MIN_TOP2_GAP} "
                     f"and >= {MIN_DISTINCT_NEW} distinct new tokens")
        print(f"{n:24s} {size / 1024:8.1f} KiB")
    total = sum(dir_bytes(os.path.join(args.out, n)) for n in specs if os.path.isdir(os.path.join(args.out, n)))
    print(f"{'model cases total':24s} {total / 1024:8.1f} KiB")


if __name__ == "__main__":
    main()
