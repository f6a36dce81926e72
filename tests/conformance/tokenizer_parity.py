#!/usr/bin/env python3
"""Writes the tokenizer goldens that tests/unit/tokenizer_parity_test.cpp checks.

For every real tokenizer in ../shared/data/tokenizers it runs the reference
implementation (HF `tokenizers` for tokenizer.json, transformers for
vocab.json + merges.txt, `sentencepiece` for tokenizer.model) over
tests/golden/tokenizers/corpus.txt and writes, per tokenizer <name>:

  <name>.ids      one line of space-separated ids per corpus line (no BOS)
  <name>.decoded  one JSON string per line: the reference decode of those ids
  <name>.meta     one JSON object: ids of line 1 with the default specials

Small tokenizers that exercise what the real files do not (a 512-piece
SentencePiece BPE with byte fallback like stories260K's, pair-style merges,
ignore_merges, lstrip/rstrip/single_word added tokens, Metaspace, NFKC,
Lowercase, Digits, Punctuation) are trained here once on the corpus and kept
as fixtures in tests/golden/tokenizers/tiny-*/ (delete them to retrain); their
ids are regenerated like the others.

It also renders each chat family's template with transformers'
apply_chat_template into chat_templates.json.

Corpus lines are unescaped before use: "\\n", "\\t", "\\r" and "\\\\" stand for
newline, tab, carriage return and backslash (the C++ test does the same).

Usage: python3 tests/conformance/tokenizer_parity.py [--data DIR] [--out DIR]
"""
import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


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


def read_corpus(path):
    with open(path, encoding="utf-8", newline="") as f:
        text = f.read()
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [unescape(l) for l in lines]


class HfJson:
    """tokenizer.json through HF tokenizers."""

    def __init__(self, path):
        from tokenizers import Tokenizer

        self.tok = Tokenizer.from_file(path)
        self.source = "tokenizers %s Tokenizer.from_file" % __import__("tokenizers").__version__

    def encode(self, text, specials):
        return self.tok.encode(text, add_special_tokens=specials).ids

    def decode(self, ids):
        return self.tok.decode(ids, skip_special_tokens=False)


class Transformers:
    """vocab.json + merges.txt through the transformers tokenizer class."""

    def __init__(self, path, cls_name):
        import transformers

        cls = getattr(transformers, cls_name)
        self.tok = cls.from_pretrained(path)
        self.source = "transformers %s %s.from_pretrained" % (transformers.__version__, cls_name)

    def encode(self, text, specials):
        return self.tok(text, add_special_tokens=specials)["input_ids"]

    def decode(self, ids):
        return self.tok.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)


class Spm:
    """tokenizer.model through the sentencepiece package."""

    def __init__(self, path):
        import sentencepiece

        self.sp = sentencepiece.SentencePieceProcessor(model_file=path)
        self.source = "sentencepiece %s" % sentencepiece.__version__

    def encode(self, text, specials):
        return self.sp.encode(text, add_bos=specials)

    def decode(self, ids):
        return self.sp.decode(ids)


LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                r"|\s*[\r\n]+|\s+(?!\S)|\s+")


def training_lines(corpus):
    # Latin-script lines only: everything else reaches the tiny models as
    # byte fallback or unknown characters, which is what they should test.
    return [l for l in corpus if all(ord(c) < 0x180 for c in l)] * 4


def make_tiny_spm(out_dir, corpus):
    """A 512-piece SentencePiece BPE with byte fallback (the stories260K shape),
    as tokenizer.model and as the Llama-style tokenizer.json HF converts it to."""
    import sentencepiece as spm
    from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, processors

    os.makedirs(out_dir, exist_ok=True)
    train = os.path.join(out_dir, "train.tmp")
    with open(train, "w", encoding="utf-8") as f:
        f.write("\n".join(training_lines(corpus)))
    spm.SentencePieceTrainer.train(
        input=train, model_prefix=os.path.join(out_dir, "tokenizer"), vocab_size=512, model_type="bpe",
        byte_fallback=True, character_coverage=1.0, num_threads=1, split_digits=True,
        normalization_rule_name="identity", remove_extra_whitespaces=False, minloglevel=2)
    os.remove(train)
    os.remove(os.path.join(out_dir, "tokenizer.vocab"))
    sp = spm.SentencePieceProcessor(model_file=os.path.join(out_dir, "tokenizer.model"))
    vocab = {sp.id_to_piece(i): i for i in range(sp.get_piece_size())}
    # Merges as HF's SentencePieceExtractor derives them: every split of a
    # piece into two pieces, ordered by the merged piece's rank.
    merges = []
    for piece, pid in vocab.items():
        if sp.is_control(pid) or sp.is_byte(pid) or sp.is_unknown(pid):
            continue
        local = [(vocab[piece[:k]], vocab[piece[k:]], piece[:k], piece[k:])
                 for k in range(1, len(piece)) if piece[:k] in vocab and piece[k:] in vocab]
        merges += [(a, b) for _, _, a, b in sorted(local)]
    tok = Tokenizer(models.BPE(vocab, merges, unk_token="<unk>", fuse_unk=True, byte_fallback=True))
    tok.add_special_tokens([AddedToken(t, normalized=False, special=True) for t in ("<unk>", "<s>", "</s>")])
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("\u2581"), normalizers.Replace(" ", "\u2581")])
    tok.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse(),
                                     decoders.Strip(" ", 1, 0)])
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    tok.save(os.path.join(out_dir, "tokenizer.json"))
    # Load(dir) prefers tokenizer.json: keep the .model in its own folder too.
    os.makedirs(out_dir + "-model", exist_ok=True)
    os.replace(os.path.join(out_dir, "tokenizer.model"), os.path.join(out_dir + "-model", "tokenizer.model"))


def make_tiny_bytelevel(out_dir, corpus):
    """Llama-3-style byte-level BPE with ignore_merges, pair-style merges and
    added tokens that use lstrip / rstrip / single_word / normalized."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE(ignore_merges=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_SPLIT), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=600, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=["<|begin_of_text|>", "<|eot_id|>"], show_progress=False)
    tok.train_from_iterator(training_lines(corpus), trainer)
    tok.add_special_tokens([AddedToken("<|image|>", lstrip=True, rstrip=True, normalized=False)])
    tok.add_tokens([AddedToken("<w>", single_word=True), AddedToken("[SEP]", rstrip=True),
                    AddedToken("welcome", normalized=True)])
    tok.post_processor = processors.TemplateProcessing(single="<|begin_of_text|> $A",
                                                       special_tokens=[("<|begin_of_text|>", 0)])
    os.makedirs(out_dir, exist_ok=True)
    tok.save(os.path.join(out_dir, "tokenizer.json"))


def make_tiny_metaspace(out_dir, corpus):
    """BPE behind NFKC + Lowercase, Digits, Punctuation and Metaspace, with an
    unknown token for characters outside the alphabet."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token="[UNK]"))
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=False), pre_tokenizers.Punctuation(),
        pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first", split=True)])
    tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="first")
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["[UNK]"], show_progress=False)
    tok.train_from_iterator(training_lines(corpus), trainer)
    os.makedirs(out_dir, exist_ok=True)
    tok.save(os.path.join(out_dir, "tokenizer.json"))


def make_tiny_splits(out_dir, corpus):
    """Byte-level BPE behind the less common split behaviours (string and regex
    patterns, MergedWithPrevious / MergedWithNext / Contiguous / Removed,
    invert, WhitespaceSplit) and ByteLevel with add_prefix_space."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.Replace(Regex(r"[ ]{3,}"), "  ")
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split("-", behavior="merged_with_previous"),
        pre_tokenizers.Split(Regex(r"[.,;:]"), behavior="merged_with_next"),
        pre_tokenizers.Split(Regex(r"\p{N}"), behavior="contiguous"),
        pre_tokenizers.Split(Regex(r"\p{L}+|[^\p{L}]+"), behavior="removed", invert=True),
        pre_tokenizers.Split(Regex(r"\t"), behavior="removed"),
        pre_tokenizers.WhitespaceSplit(),
        pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=True)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=450, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=["<|endoftext|>"], show_progress=False)
    tok.train_from_iterator(training_lines(corpus), trainer)
    tok.add_special_tokens([AddedToken("<image>", normalized=False)])
    os.makedirs(out_dir, exist_ok=True)
    tok.save(os.path.join(out_dir, "tokenizer.json"))


TINY = [
    ("tiny-spm", make_tiny_spm),
    ("tiny-bytelevel", make_tiny_bytelevel),
    ("tiny-metaspace", make_tiny_metaspace),
    ("tiny-splits", make_tiny_splits),
]

TOKENIZERS = [
    # name, relative path (test data, or "golden:" for the tiny fixtures), reference
    ("llama2-spm", "tokenizers/llama2-spm/tokenizer.model", lambda p: Spm(p)),
    ("o200k", "tokenizers/o200k/tokenizer.json", lambda p: HfJson(p)),
    ("gpt2", "tokenizers/gpt2", lambda p: Transformers(p, "GPT2Tokenizer")),
    ("smolvlm", "tokenizers/smolvlm/tokenizer.json", lambda p: HfJson(p)),
    ("llava-1.5", "tokenizers/llava-1.5/tokenizer.json", lambda p: HfJson(p)),
    ("qwen2-vl", "tokenizers/qwen2-vl", lambda p: Transformers(p, "Qwen2Tokenizer")),
    ("tiny-spm", "golden:tiny-spm/tokenizer.json", lambda p: HfJson(p)),
    ("tiny-spm-model", "golden:tiny-spm-model/tokenizer.model", lambda p: Spm(p)),
    ("tiny-bytelevel", "golden:tiny-bytelevel/tokenizer.json", lambda p: HfJson(p)),
    ("tiny-metaspace", "golden:tiny-metaspace/tokenizer.json", lambda p: HfJson(p)),
    ("tiny-splits", "golden:tiny-splits/tokenizer.json", lambda p: HfJson(p)),
]


# Chat templates. LLaVA-1.5 and SmolVLM come from the shared checkpoint files;
# the others are the templates published with the models, transcribed here.
PHI3_TEMPLATE = (
    "{% for message in messages %}{{'<|' + message['role'] + '|>' + '\\n' + message['content'] + '<|end|>\\n' }}"
    "{% endfor %}{% if add_generation_prompt and messages[-1]['role'] != 'assistant' %}"
    "{{- '<|assistant|>\\n' -}}{% endif %}"
)
PHI4_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] == 'system' and 'tools' in message and message['tools'] "
    "is not none %}{{ '<|' + message['role'] + '|>' + message['content'] + '<|tool|>' + message['tools'] + "
    "'<|/tool|>' + '<|end|>' }}{% else %}{{ '<|' + message['role'] + '|>' + message['content'] + '<|end|>' }}"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>' }}{% else %}{{ eos_token }}{% endif %}"
)
LLAMA3_TEMPLATE = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
    "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + "
    "'<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"
)


def chat_goldens(data):
    import transformers

    tok = transformers.PreTrainedTokenizerFast(
        tokenizer_file=os.path.join(data, "tokenizers/smolvlm/tokenizer.json"))

    def render(template, messages, **extra):
        return tok.apply_chat_template(messages, chat_template=template, tokenize=False,
                                       add_generation_prompt=True, **extra)

    with open(os.path.join(data, "configs/llava-1.5-7b-hf/chat_template.json"), encoding="utf-8") as f:
        llava = json.load(f)["chat_template"]
    with open(os.path.join(data, "tokenizers/smolvlm/tokenizer_config.json"), encoding="utf-8") as f:
        smol = json.load(f)["chat_template"]

    texts = ["What is shown in this image?", "  Describe it.\nBriefly. "]
    cases = []
    for text in texts:
        for has_image in (False, True):
            parts = ([{"type": "image"}] if has_image else []) + [{"type": "text", "text": text}]
            cases.append(("llava15", "<image>", text, has_image, render(llava, [{"role": "user", "content": parts}])))
            cases.append(("smolvlm", "<image>", text, has_image, render(smol, [{"role": "user", "content": parts}])))
            # Phi-3.5-vision / Phi-4-mm / Llama-3 take plain string content; the
            # processor's convention puts the image tag in front of the text.
            phi3_content = ("<|image_1|>\n" if has_image else "") + text
            cases.append(("phi3", "<|image_1|>", text, has_image,
                          render(PHI3_TEMPLATE, [{"role": "user", "content": phi3_content}])))
            phi4_content = ("<|image_1|>" if has_image else "") + text
            cases.append(("phi4", "<|image_1|>", text, has_image,
                          render(PHI4_TEMPLATE, [{"role": "user", "content": phi4_content}])))
            if not has_image:
                # bos_token is added by the tokenizer in bitlens, so render it empty.
                cases.append(("llama3", "", text, False,
                              render(LLAMA3_TEMPLATE, [{"role": "user", "content": text}], bos_token="")))
    # The prompt as the family's own tokenizer encodes it (with its default
    # special tokens), where the shared data has that tokenizer.
    from tokenizers import Tokenizer
    family_tokenizers = {"llava15": "tokenizers/llava-1.5/tokenizer.json",
                         "smolvlm": "tokenizers/smolvlm/tokenizer.json"}
    loaded = {f: Tokenizer.from_file(os.path.join(data, p)) for f, p in family_tokenizers.items()}
    out = []
    for f, it, t, h, e in cases:
        case = {"family": f, "image_token": it, "text": t, "has_image": h, "expected": e}
        if f in loaded:
            case["tokenizer"] = family_tokenizers[f].rsplit("/", 1)[0]
            case["ids"] = loaded[f].encode(e, add_special_tokens=True).ids
        out.append(case)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.environ.get("BITLENS_TEST_DATA", os.path.join(ROOT, "..", "shared", "data")))
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "golden", "tokenizers"))
    args = ap.parse_args()
    if not os.path.isdir(args.data):
        print("tokenizer_parity: no test data at %s; only the tiny fixtures are checked" % args.data)
    corpus = read_corpus(os.path.join(args.out, "corpus.txt"))
    for name, make in TINY:
        if not os.path.exists(os.path.join(args.out, name, "tokenizer.json")):
            print("tokenizer_parity: training fixture %s" % name)
            make(os.path.join(args.out, name), corpus)
    for name, rel, make in TOKENIZERS:
        if rel.startswith("golden:"):
            path = os.path.join(args.out, rel[len("golden:"):])
        else:
            path = os.path.join(args.data, rel)
        if not os.path.exists(path):
            print("tokenizer_parity: skip %s (%s missing)" % (name, path))
            continue
        ref = make(path)
        ids = [ref.encode(line, False) for line in corpus]
        with open(os.path.join(args.out, name + ".ids"), "w", encoding="utf-8") as f:
            for row in ids:
                f.write(" ".join(str(i) for i in row) + "\n")
        with open(os.path.join(args.out, name + ".decoded"), "w", encoding="utf-8") as f:
            for row in ids:
                f.write(json.dumps(ref.decode(row), ensure_ascii=False) + "\n")
        meta = {"reference": ref.source, "lines": len(corpus), "first_line_with_specials": ref.encode(corpus[0], True)}
        with open(os.path.join(args.out, name + ".meta"), "w", encoding="utf-8") as f:
            f.write(json.dumps(meta, ensure_ascii=False) + "\n")
        print("tokenizer_parity: %-11s %4d lines, %6d ids  (%s)" % (name, len(ids), sum(map(len, ids)), ref.source))
    needed = ["configs/llava-1.5-7b-hf/chat_template.json", "tokenizers/smolvlm/tokenizer_config.json",
              "tokenizers/smolvlm/tokenizer.json", "tokenizers/llava-1.5/tokenizer.json"]
    missing = [p for p in needed if not os.path.exists(os.path.join(args.data, p))]
    if missing:
        print("tokenizer_parity: chat templates kept as they are (%s missing)" % ", ".join(missing))
        return 0
    chat = chat_goldens(args.data)
    with open(os.path.join(args.out, "chat_templates.json"), "w", encoding="utf-8") as f:
        json.dump(chat, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print("tokenizer_parity: %d chat template cases" % len(chat))
    return 0


if __name__ == "__main__":
    sys.exit(main())
