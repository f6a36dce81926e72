#!/usr/bin/env python3
"""Writes the goldens that BpeTrainerParity (tests/unit/bpe_trainer_test.cpp) checks:
a tokenizer.json trained by bitlens' byte-level BPE trainer, and the ids HF
`tokenizers` gives for a set of strings with that file.

Steps, all under tests/golden/bpe_trainer/:
  cases.json      the training corpus, the trainer options and the probe strings
                  (written here, deterministic);
  tokenizer.json  written by bitlens: the hidden gtest
                  BpeTrainerParity.DISABLED_WriteTokenizerJson trains on cases.json;
  hf_ids.json     HF tokenizers' Tokenizer.from_file(tokenizer.json) ids of every
                  probe (no special tokens added), after checking that HF decodes
                  each back to the probe and sees the special tokens at their ids.

The C++ test retrains, expects the same tokenizer.json byte for byte, and expects
bitlens' own Tokenizer to give HF's ids for every probe.

Usage: python3 tests/conformance/bpe_trainer_parity.py [--build DIR] [--out DIR]
"""
import argparse
import json
import os
import random
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

SPECIALS = ["<s>", "</s>", "<unk>", "<pad>", "<image>"]


def unescape(line):
    out, i = [], 0
    while i < len(line):
        c = line[i]
        if c == "\\" and i + 1 < len(line) and line[i + 1] in "ntr\\":
            out.append({"n": "\n", "t": "\t", "r": "\r", "\\": "\\"}[line[i + 1]])
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def tokenizer_corpus():
    """The multilingual / code / emoji lines of the tokenizer goldens."""
    with open(os.path.join(ROOT, "tests", "golden", "tokenizers", "corpus.txt"), encoding="utf-8", newline="") as f:
        lines = f.read().split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [unescape(l) for l in lines]


def scene_lines(rng, n):
    colors = ["red", "green", "blue", "yellow", "purple", "orange", "white", "black", "gray", "pink"]
    shapes = ["circle", "square", "triangle", "star", "heart", "diamond", "cross", "hexagon"]
    places = ["top left", "top right", "bottom left", "bottom right", "center", "middle left"]
    counts = ["one", "two", "three", "four", "five", "six"]
    patterns = ["striped", "dotted", "plain", "checkered"]
    items = ["shirt", "mug", "lamp", "backpack", "sock", "hat"]
    out = []
    for i in range(n):
        c, s, p = rng.choice(colors), rng.choice(shapes), rng.choice(places)
        k = i % 7
        if k == 0:
            out.append("What color is the %s?" % s)
        elif k == 1:
            out.append("How many %ss are there? %s" % (s, rng.choice(counts)))
        elif k == 2:
            out.append("Where is the %s %s? %s" % (c, s, p))
        elif k == 3:
            out.append("Is there a %s %s? %s" % (c, s, rng.choice(["yes", "no"])))
        elif k == 4:
            out.append("A %s %s in the %s and a %s %s below it." % (c, s, p, rng.choice(colors), rng.choice(shapes)))
        elif k == 5:
            out.append("What is this item? %s %s %s" % (c, rng.choice(patterns), rng.choice(items)))
        else:
            out.append("USER: <image>\nWhat shape is the %s object? ASSISTANT: %s</s>" % (c, s))
    return out


def make_cases():
    rng = random.Random(4)
    extra = tokenizer_corpus()
    corpus = scene_lines(rng, 2500) + extra + extra  # twice: their pairs can reach min_frequency
    probes = list(extra) + scene_lines(random.Random(5), 60) + [
        "USER: <image>\nDescribe the image. ASSISTANT: A red star in the top left.</s>",
        "<s><pad><unk></s><image><image>",
        "unseen words: zebra quixotic fjord 42 GHz",
        "  double  spaces\tand tabs\n\nnewlines ",
        "<imag <image <image>> </ s>",
        "",
    ]
    options = {"vocab_size": 700, "min_frequency": 2, "special_tokens": SPECIALS}
    return {"options": options, "corpus": corpus, "probes": probes}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=os.environ.get("BITLENS_BUILD_DIR", os.path.join(ROOT, "build")))
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "golden", "bpe_trainer"))
    args = ap.parse_args()

    tests_bin = os.path.join(args.build, "tests", "bitlens_tests")
    if not os.access(tests_bin, os.X_OK):
        sys.exit("bpe_trainer_parity: %s not found (build first, or pass --build)" % tests_bin)
    os.makedirs(args.out, exist_ok=True)
    cases = make_cases()
    with open(os.path.join(args.out, "cases.json"), "w", encoding="utf-8", newline="\n") as f:
        json.dump(cases, f, ensure_ascii=False, indent=1)
        f.write("\n")

    # bitlens trains and writes tokenizer.json next to cases.json.
    tok_path = os.path.join(args.out, "tokenizer.json")
    if os.path.exists(tok_path):
        os.remove(tok_path)
    env = dict(os.environ, BITLENS_BPE_PARITY_DIR=os.path.abspath(args.out))
    subprocess.run([tests_bin, "--gtest_also_run_disabled_tests",
                    "--gtest_filter=BpeTrainerParity.DISABLED_WriteTokenizerJson", "--gtest_brief=1"],
                   env=env, check=True)
    if not os.path.exists(tok_path):
        sys.exit("bpe_trainer_parity: %s did not write %s (is the test binary up to date?)" % (tests_bin, tok_path))

    import tokenizers
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(tok_path)
    with open(tok_path, encoding="utf-8") as f:
        written = json.load(f)
    n_vocab = len(written["model"]["vocab"])
    errors = []
    if tok.get_vocab_size(with_added_tokens=True) != n_vocab:
        errors.append("HF vocab size %d != %d" % (tok.get_vocab_size(with_added_tokens=True), n_vocab))
    for i, s in enumerate(SPECIALS):
        want = n_vocab - len(SPECIALS) + i
        if tok.token_to_id(s) != want:
            errors.append("HF id of %r is %r, expected %d" % (s, tok.token_to_id(s), want))
        if tok.encode(s, add_special_tokens=False).ids != [want]:
            errors.append("HF encodes %r as %r" % (s, tok.encode(s, add_special_tokens=False).ids))
    ids = []
    for p in cases["probes"]:
        e = tok.encode(p, add_special_tokens=False).ids
        back = tok.decode(e, skip_special_tokens=False)
        if back != p:
            errors.append("HF decode of %r gave %r" % (p, back))
        ids.append(e)
    if errors:
        for e in errors:
            print("bpe_trainer_parity: " + e, file=sys.stderr)
        sys.exit(1)

    with open(os.path.join(args.out, "hf_ids.json"), "w", encoding="utf-8", newline="\n") as f:
        json.dump({"reference": "tokenizers %s Tokenizer.from_file(tokenizer.json).encode(p, add_special_tokens=False)"
                   % tokenizers.__version__, "ids": ids}, f, separators=(",", ":"))
        f.write("\n")
    total = sum(len(e) for e in ids)
    print("bpe_trainer_parity: %d probes, %d tokens, vocab %d, merges %d" %
          (len(ids), total, n_vocab, len(written["model"]["merges"])))


if __name__ == "__main__":
    main()
