#!/usr/bin/env python3
"""Reference goldens for a VLM that bitlens trained itself: HF transformers loads the checkpoint
`bitlens train` wrote (LlavaForConditionalGeneration, its tokenizer through AutoTokenizer and its
processor through AutoProcessor) and records, for a few image + question + answer samples, the chat
prompt text, the processor's input_ids and pixel_values, and the logits at every position of the
teacher-forced sequence. tests/unit/train_trainer_test.cpp (RefVlmParity) checks that bitlens
builds the same prompt, ids and pixels and that both its runtime and its trainable model give the
same logits.

By default a micro model is trained with the bitlens CLI (a few seconds) into <out>/model; with
--model DIR an existing checkpoint (e.g. the full reference model) is described instead, and the
golden names that directory.

Usage: python3 tests/conformance/ref_vlm_parity.py [--bitlens build/bitlens (or $BITLENS_CLI)] [--out tests/golden/ref_vlm]
                                                   [--model DIR]
"""

import argparse
import json
import os
import platform
import subprocess
import sys

import numpy as np
import safetensors
import safetensors.torch
import torch
import transformers
from PIL import Image, ImageDraw
from transformers import AutoProcessor, AutoTokenizer, LlavaForConditionalGeneration

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOLERANCE = 1e-3  # absolute, fp32 logits

# The micro recipe: the whole bitlens train path (BPE tokenizer, CLIP tower, projector, Llama
# decoder, side files) at a size that trains in seconds.
MICRO_RECIPE = {
    "seed": 11,
    "data": {"image_size": 32, "train_samples": 512, "validation_samples": 16, "test_samples": 16,
             "catalog_fraction": 0.15},
    "tokenizer": {"vocab_size": 400, "min_frequency": 2},
    "model": {"vision": {"hidden_size": 32, "intermediate_size": 64, "num_layers": 2, "num_heads": 2,
                         "patch_size": 8},
              "text": {"hidden_size": 48, "intermediate_size": 96, "num_layers": 2, "num_heads": 4,
                       "num_kv_heads": 2, "max_position_embeddings": 256, "rope_theta": 10000.0},
              "dtype": "f32"},
    "optimizer": {"lr": 0.004, "min_lr": 0.0004, "warmup_steps": 5, "steps": 60, "batch_size": 4,
                  "weight_decay": 0.01, "beta1": 0.9, "beta2": 0.95, "eps": 1e-8, "grad_clip": 1.0},
    "eval": {"interval": 0, "samples": 8},
    "checkpoint_interval": 0,
    "threads": 1,
}

# Questions in the data's own words; the answers are what the sequence is teacher-forced with.
SAMPLES = [
    {"image": "shapes.png", "question": "What color is the circle?", "answer": "red"},
    {"image": "shapes.png", "question": "How many squares are there?", "answer": "one"},
    {"image": "stripes.png", "question": "Describe the image.",
     "answer": "A large green striped triangle in the top left."},
]


def shapes_image(path):
    """A 64x64 scene in the synthetic data's style: a red circle and a blue square on white."""
    img = Image.new("RGB", (64, 64), (255, 255, 255))
    d = ImageDraw.Draw(img)
    d.ellipse((6, 6, 26, 26), fill=(220, 30, 30))
    d.rectangle((36, 36, 56, 56), fill=(30, 60, 220))
    img.save(path)


def stripes_image(path):
    """A 96x80 (non-square: the processor resizes the short side and center-crops) striped
    green triangle in the top left, on grey."""
    img = Image.new("RGB", (96, 80), (128, 128, 128))
    d = ImageDraw.Draw(img)
    d.polygon([(20, 8), (4, 36), (36, 36)], fill=(40, 180, 60))
    for y in range(10, 36, 4):
        d.line([(0, y), (40, y)], fill=(255, 255, 255), width=1)
    img.save(path)


def train_micro(bitlens, out):
    recipe = os.path.join(out, "recipe.json")
    with open(recipe, "w") as f:
        json.dump(MICRO_RECIPE, f, indent=2)
        f.write("\n")
    model = os.path.join(out, "model")
    cmd = [bitlens, "train", "--recipe", recipe, "-o", model, "--force"]
    print("ref_vlm_parity:", " ".join(cmd))
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    # Training outputs beside the weights that a golden need not keep (they hold wall times).
    for name in ("train_log.jsonl", "eval.json"):
        p = os.path.join(model, name)
        if os.path.exists(p):
            os.remove(p)
    return model


def max_abs(a, b):
    return float((a - b).abs().max())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bitlens", default=os.environ.get("BITLENS_CLI") or os.path.join(ROOT, "build", "bitlens"))
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "golden", "ref_vlm"))
    ap.add_argument("--model", default=None, help="describe this checkpoint instead of training the micro one")
    args = ap.parse_args()

    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    if args.model:
        model_dir = os.path.abspath(args.model)
    else:
        if not os.access(args.bitlens, os.X_OK):
            print(f"ref_vlm_parity: {args.bitlens} not found; build bitlens first (cmake --build build)",
                  file=sys.stderr)
            sys.exit(1)
        model_dir = train_micro(args.bitlens, out)

    images = os.path.join(out, "images")
    os.makedirs(images, exist_ok=True)
    shapes_image(os.path.join(images, "shapes.png"))
    stripes_image(os.path.join(images, "stripes.png"))

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    processor = AutoProcessor.from_pretrained(model_dir)
    model = LlavaForConditionalGeneration.from_pretrained(model_dir, attn_implementation="eager",
                                                          dtype=torch.float32).eval()
    cfg = model.config
    eos = tokenizer.eos_token

    tensors = {}
    cases = []
    for i, s in enumerate(SAMPLES):
        image = Image.open(os.path.join(images, s["image"])).convert("RGB")
        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": s["question"]}]}]
        prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        # The training sequence: the chat prompt, the answer after one space, then </s>.
        text = prompt + " " + s["answer"] + eos
        enc = processor(images=image, text=text, return_tensors="pt")
        ids = enc["input_ids"]
        pixels = enc["pixel_values"].to(torch.float32)
        assert ids[0, 0].item() == tokenizer.bos_token_id, "the tokenizer must add <s>"
        assert ids[0, -1].item() == tokenizer.eos_token_id
        assert int((ids == cfg.image_token_index).sum()) == cfg.image_seq_length
        prompt_ids = processor(images=image, text=prompt, return_tensors="pt")["input_ids"]
        assert torch.equal(ids[0, :prompt_ids.shape[1]], prompt_ids[0]), "prompt ids are not a prefix"
        with torch.no_grad():
            logits = model(input_ids=ids, pixel_values=pixels, use_cache=False).logits[0].float()
            again = model(input_ids=prompt_ids, pixel_values=pixels, use_cache=False).logits[0].float()
        d = max_abs(again, logits[:prompt_ids.shape[1]])
        assert d < 1e-4, f"causal prefix logits differ by {d}"
        answer_positions = list(range(prompt_ids.shape[1] - 1, ids.shape[1] - 1))
        greedy = logits[answer_positions].argmax(-1)
        targets = ids[0, prompt_ids.shape[1]:]
        tensors[f"input_ids_{i}"] = ids[0].to(torch.long).contiguous()
        tensors[f"pixel_values_{i}"] = pixels.contiguous()
        tensors[f"logits_{i}"] = logits.contiguous()
        cases.append({
            "image": "images/" + s["image"],
            "question": s["question"],
            "answer": s["answer"],
            "prompt_text": prompt,
            "n_tokens": int(ids.shape[1]),
            "n_prompt_tokens": int(prompt_ids.shape[1]),
            "teacher_forced_greedy_matches": int((greedy == targets).sum()),
            "answer_tokens": int(targets.numel()),
        })

    golden_path = os.path.join(out, "parity.safetensors")
    safetensors.torch.save_file(dict(sorted(tensors.items())), golden_path, metadata={"case": "ref_vlm"})
    rel_model = os.path.relpath(model_dir, out)
    meta = {
        "case": "ref_vlm",
        "what": ("a checkpoint written by `bitlens train`, loaded by transformers' LlavaForConditionalGeneration "
                 "(eager attention, fp32) with AutoTokenizer and AutoProcessor"),
        "model_dir": rel_model,
        "micro_recipe": None if args.model else "recipe.json",
        "versions": {"transformers": transformers.__version__, "torch": torch.__version__,
                     "safetensors": safetensors.__version__, "numpy": np.__version__,
                     "python": platform.python_version()},
        "tolerance_abs": TOLERANCE,
        "image_token_index": cfg.image_token_index,
        "image_seq_length": cfg.image_seq_length,
        "tokenizer_class": type(tokenizer).__name__,
        "processor_class": type(processor).__name__,
        "sequence": "processor(images=image, text=chat_prompt + ' ' + answer + '</s>'): BOS, prompt with the "
                    "image placeholder expanded, answer tokens, </s>",
        "tensors": {"input_ids_i": "int64 [T]", "pixel_values_i": "float32 [1, 3, H, W]",
                    "logits_i": "float32 [T, vocab], use_cache=False"},
        "cases": cases,
    }
    with open(os.path.join(out, "parity.json"), "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")
    print(f"ref_vlm_parity: {len(cases)} cases, model {rel_model}, wrote {golden_path}")


if __name__ == "__main__":
    main()
