#!/usr/bin/env python3
"""Goldens for src/vision: HF transformers' PIL-backend image processors.

transformers v5 has no separate "slow" classes; the PIL backend classes
CLIPImageProcessorPil and SiglipImageProcessorPil are the former slow
processors (PIL Image.resize, numpy crop/rescale/normalize), which is what
`use_fast=False` selects (checked at start: AutoImageProcessor with
use_fast=False on the LLaVA-1.5 config is CLIPImageProcessorPil). This
script runs them on the shared test images and on small synthetic PNGs and
JPEGs it writes itself (alpha, palette transparency, 1/4/16-bit, interlaced,
progressive, greyscale), and stores per case:
  <case>/resized_u8    U8  [H, W, 3]  the image after resize + center crop
  <case>/pixel_values  F32 [3, H, W]  the processor's output (the 336 case
                       and cases up to 48x64; to stay small the 64x64 cases
                       rely on the tables below)
  <case>/decoded_crop  U8  [64, 64, 3] for JPEG inputs: a window of Pillow's
                       decode (libjpeg), to measure the decoder difference alone
and, for the CLIP and SigLIP mean/std, the exhaustive map u8 -> f32 of
transformers' rescale + normalize:
  normalize_table/clip, normalize_table/siglip  F32 [3, 256]
into tests/golden/vision/image_preprocess.safetensors, with the list of cases
(image, config) as JSON in the metadata key "cases".

Usage: python3 tests/conformance/image_preprocess.py [--data DIR]
"""
import argparse
import json
import os
import struct
import sys
import zlib

import numpy as np
from PIL import Image
from safetensors.numpy import save_file
import transformers
from transformers import image_transforms
from transformers import CLIPImageProcessorPil, SiglipImageProcessorPil

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GOLDEN = os.path.join(ROOT, "tests", "golden", "vision")
INPUTS = os.path.join(GOLDEN, "inputs")

LLAVA_CLIP = {  # llava-1.5-7b-hf/preprocessor_config.json
    "image_processor_type": "CLIPImageProcessor",
    "size": {"shortest_edge": 336}, "crop_size": {"height": 336, "width": 336},
    "do_center_crop": True, "do_convert_rgb": True, "do_normalize": True, "do_rescale": True,
    "do_resize": True, "resample": 3, "rescale_factor": 0.00392156862745098,
    "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_std": [0.26862954, 0.26130258, 0.27577711],
}


def clip(shortest, crop, resample=3):
    c = dict(LLAVA_CLIP)
    c.update(size={"shortest_edge": shortest}, crop_size={"height": crop[0], "width": crop[1]}, resample=resample)
    return c


def siglip(h, w, resample=3):
    return {"image_processor_type": "SiglipImageProcessor", "size": {"height": h, "width": w},
            "resample": resample, "do_resize": True, "do_rescale": True, "do_normalize": True,
            "rescale_factor": 0.00392156862745098, "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]}


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def write_png_raw(path, arr, color_type, bit_depth, interlace=False):
    """Minimal PNG writer for what Pillow cannot write (16-bit RGB, 4-bit
    grey, Adam7 interlacing); every row uses filter type 0."""
    if interlace:
        passes = [arr[y0::dy, x0::dx] for x0, y0, dx, dy in ADAM7]
        raw = b"".join(png_rows(p, bit_depth) for p in passes if p.shape[0] and p.shape[1])
    else:
        raw = png_rows(arr, bit_depth)
    write_png_chunks(path, arr.shape[1], arr.shape[0], bit_depth, color_type, int(interlace), raw)


def png_rows(arr, bit_depth):
    h, w = arr.shape[:2]
    if bit_depth < 8:  # greyscale or palette indices, packed MSB first
        per = 8 // bit_depth
        rows = []
        for y in range(h):
            row = np.zeros((w + per - 1) // per * per, np.uint8)
            row[:w] = arr[y]
            row = row.reshape(-1, per)
            rows.append(sum(row[:, i] << (8 - bit_depth * (i + 1)) for i in range(per)).astype(np.uint8).tobytes())
        raw = b"".join(b"\x00" + r for r in rows)
    else:
        dt = ">u2" if bit_depth == 16 else "u1"
        raw = b"".join(b"\x00" + np.ascontiguousarray(arr[y]).astype(dt).tobytes() for y in range(h))
    return raw


def write_png_chunks(path, w, h, bit_depth, color_type, interlace, raw):
    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0, interlace)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def make_inputs():
    """Small deterministic images that exercise convert_to_rgb's branches."""
    os.makedirs(INPUTS, exist_ok=True)
    h, w = 23, 37
    y, x = np.mgrid[0:h, 0:w]
    r = (x * 255 // (w - 1)).astype(np.uint8)
    g = (y * 255 // (h - 1)).astype(np.uint8)
    b = ((x * 7 + y * 13) % 256).astype(np.uint8)
    a = ((x + y) * 255 // (w + h - 2)).astype(np.uint8)  # 0 at the top-left corner, 255 at the bottom-right
    Image.fromarray(np.stack([r, g, b, a], -1), "RGBA").save(os.path.join(INPUTS, "rgba.png"))
    Image.fromarray(np.stack([b, a], -1), "LA").save(os.path.join(INPUTS, "grey_alpha.png"))
    pal = Image.fromarray(((x // 5 + y // 4) % 6).astype(np.uint8), "P")
    pal.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255, 250, 200, 10, 20, 30, 40, 128, 128, 128])
    pal.save(os.path.join(INPUTS, "palette_trns.png"), transparency=bytes([255, 0, 128, 255, 64, 255]))
    grey16 = (x * 2000 + y * 97).astype(np.uint16)  # spans 0..72000 clipped to 16 bits: mostly > 255
    grey16[0, :10] = np.arange(10) * 30  # a few values below 256, which Pillow keeps as they are
    write_png_raw(os.path.join(INPUTS, "grey16.png"), grey16, 0, 16)
    rgb16 = np.stack([x * 1771, y * 2833, (x * y * 97) % 65536], -1).astype(np.uint16)
    write_png_raw(os.path.join(INPUTS, "rgb16.png"), rgb16, 2, 16)
    write_png_raw(os.path.join(INPUTS, "grey4.png"), ((x + 2 * y) % 16).astype(np.uint8), 0, 4)
    Image.fromarray(((x * 3 + y * 5) % 7) < 3).save(os.path.join(INPUTS, "bilevel.png"))
    pal.save(os.path.join(INPUTS, "palette4.png"), bits=4)
    rgba16 = np.stack([x * 1771, y * 2833, (x * y * 97) % 65536, (x + y) * 65535 // (w + h - 2)], -1).astype(np.uint16)
    write_png_raw(os.path.join(INPUTS, "rgba16.png"), rgba16, 6, 16)
    write_png_raw(os.path.join(INPUTS, "grey_alpha16.png"), rgba16[..., 2:], 4, 16)
    write_png_raw(os.path.join(INPUTS, "interlaced_rgb.png"), np.stack([r, g, b], -1), 2, 8, interlace=True)
    write_png_raw(os.path.join(INPUTS, "interlaced_rgba.png"), np.stack([r, g, b, a], -1), 6, 8, interlace=True)


def make_jpeg_inputs(data):
    """Small JPEGs of other kinds than the shared ones: progressive and greyscale."""
    with Image.open(os.path.join(data, "images", "chelsea.png")) as im:
        im.convert("RGB").resize((151, 100), Image.BICUBIC).save(
            os.path.join(INPUTS, "progressive.jpg"), quality=85, progressive=True)
    with Image.open(os.path.join(data, "images", "camera.png")) as im:
        im.resize((128, 128), Image.BICUBIC).save(os.path.join(INPUTS, "grey.jpg"), quality=85)


def make_fuzz_corpus():
    """Seeds for tests/fuzz/image_decode_fuzz.cpp: tiny valid files of each
    kind plus the broken ones the unit tests also use."""
    d = os.path.join(ROOT, "tests", "fuzz", "corpus", "image_decode")
    os.makedirs(d, exist_ok=True)
    h, w = 6, 8
    y, x = np.mgrid[0:h, 0:w]
    rgb = np.stack([x * 32, y * 40, (x * y * 9) % 256], -1).astype(np.uint8)
    Image.fromarray(rgb, "RGB").save(os.path.join(d, "rgb.png"))
    Image.fromarray(rgb[..., 0], "L").save(os.path.join(d, "grey.png"))
    Image.fromarray(np.dstack([rgb, (x * 36).astype(np.uint8)]), "RGBA").save(os.path.join(d, "rgba.png"))
    Image.fromarray(np.dstack([rgb[..., 1], rgb[..., 2]]), "LA").save(os.path.join(d, "grey_alpha.png"))
    pal = Image.fromarray(((x + y) % 4).astype(np.uint8), "P")
    pal.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255, 9, 9, 9])
    pal.save(os.path.join(d, "palette_trns.png"), transparency=bytes([0, 128, 255, 40]))
    Image.fromarray(rgb[..., 0] > 100).save(os.path.join(d, "bilevel.png"))
    write_png_raw(os.path.join(d, "grey16.png"), (x * 9000 + y).astype(np.uint16), 0, 16)
    write_png_raw(os.path.join(d, "rgb16.png"), (rgb.astype(np.uint16) * 257), 2, 16)
    big = np.kron(rgb, np.ones((3, 3, 1), np.uint8))  # 18x24: more than one JPEG block
    Image.fromarray(big).save(os.path.join(d, "baseline_420.jpg"), quality=80)
    Image.fromarray(big).save(os.path.join(d, "baseline_444.jpg"), quality=90, subsampling=0)
    Image.fromarray(big).save(os.path.join(d, "progressive.jpg"), quality=75, progressive=True)
    Image.fromarray(big[..., 0]).save(os.path.join(d, "grey.jpg"), quality=75)
    Image.fromarray(big).save(os.path.join(d, "restart.jpg"), quality=75, restart_marker_blocks=1)
    png = open(os.path.join(d, "rgb.png"), "rb").read()
    jpg = open(os.path.join(d, "baseline_420.jpg"), "rb").read()
    open(os.path.join(d, "truncated.png"), "wb").write(png[: len(png) // 2])
    open(os.path.join(d, "truncated.jpg"), "wb").write(jpg[: len(jpg) * 2 // 3])
    open(os.path.join(d, "text.png"), "wb").write(b"this is a text file, not an image\n")
    open(os.path.join(d, "empty.png"), "wb").write(b"")
    # 100000 x 100000 declared in IHDR (valid CRC), then no pixel data.
    ihdr = struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0)
    huge = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    open(os.path.join(d, "huge_dims.png"), "wb").write(huge + png[33:])
    # The JPEG's SOF0 frame size patched to 60000 x 60000.
    sof = jpg.index(b"\xff\xc0")
    open(os.path.join(d, "huge_dims.jpg"), "wb").write(jpg[: sof + 5] + struct.pack(">HH", 60000, 60000) + jpg[sof + 9:])


def cases():
    d = "data:images/"
    g = "golden:inputs/"
    out = [("llava_chelsea_336", d + "chelsea.png", LLAVA_CLIP)]
    for img in ["astronaut.png", "chelsea.png", "coffee.png", "camera.png", "grace_hopper.jpg", "rocket.jpg"]:
        out.append(("clip64_" + img.split(".")[0], d + img, clip(64, (64, 64))))
    for img in ["coffee.png", "camera.png", "rocket.jpg"]:
        out.append(("siglip_48x64_" + img.split(".")[0], d + img, siglip(48, 64)))
    out.append(("siglip_bilinear_40x56_astronaut", d + "astronaut.png", siglip(40, 56, resample=2)))
    out.append(("clip_bilinear_50_chelsea", d + "chelsea.png", clip(50, (48, 44), resample=2)))
    for name, res in [("lanczos", 1), ("box", 4), ("hamming", 5)]:
        out.append((f"siglip_{name}_37x29_coffee", d + "coffee.png", siglip(37, 29, resample=res)))
    # Upscaling (inputs are 37x23) and every transparency/bit-depth branch.
    for img in ["rgba.png", "grey_alpha.png", "palette_trns.png", "grey16.png", "rgb16.png", "grey4.png",
                "bilevel.png", "palette4.png", "rgba16.png", "grey_alpha16.png", "interlaced_rgb.png",
                "interlaced_rgba.png"]:
        out.append(("clip64_" + img.split(".")[0], g + img, clip(64, (64, 64))))
    out.append(("siglip_upscale_71x53_rgba", g + "rgba.png", siglip(71, 53)))
    out.append(("clip64_progressive_jpeg", g + "progressive.jpg", clip(64, (64, 64))))
    out.append(("siglip_48x64_grey_jpeg", g + "grey.jpg", siglip(48, 64)))
    # shortest_edge with longest_edge (get_size_with_aspect_ratio): capped, and not.
    capped = clip(48, (40, 48))
    capped["size"] = {"shortest_edge": 48, "longest_edge": 60}
    out.append(("clip_se48_le60_chelsea", d + "chelsea.png", capped))
    uncapped = clip(48, (48, 48))
    uncapped["size"] = {"shortest_edge": 48, "longest_edge": 80}
    out.append(("clip_se48_le80_coffee", d + "coffee.png", uncapped))
    # Crop larger than the resized image: transformers pads with zeros.
    out.append(("clip_pad_30_to_40x36_chelsea", d + "chelsea.png", clip(30, (40, 36))))
    return out


def processor_for(config):
    kwargs = {k: v for k, v in config.items() if k != "image_processor_type"}
    cls = CLIPImageProcessorPil if config["image_processor_type"] == "CLIPImageProcessor" else SiglipImageProcessorPil
    return cls(**kwargs)


def normalize_table(config):
    """[3, 256]: transformers' rescale then normalize of every u8 value, per channel."""
    values = np.tile(np.arange(256, dtype=np.uint8), (3, 1))[:, None, :]  # CHW: [3, 1, 256]
    x = image_transforms.rescale(values, config["rescale_factor"], input_data_format="channels_first")
    x = image_transforms.normalize(x, config["image_mean"], config["image_std"], input_data_format="channels_first")
    assert x.dtype == np.float32
    return np.ascontiguousarray(x[:, 0, :])


def normalize_lookup(u8_chw, config):
    t = normalize_table(config)
    return np.stack([t[c][u8_chw[c]] for c in range(3)])


def check_auto_processor_is_pil(data):
    """The goldens claim to be what AutoImageProcessor(use_fast=False) gives
    for a real checkpoint: check the class and the output on one image."""
    import tempfile
    from transformers import AutoImageProcessor
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "preprocessor_config.json"), "w") as f:
            json.dump(LLAVA_CLIP, f)
        auto = AutoImageProcessor.from_pretrained(tmp, use_fast=False)
    assert type(auto) is CLIPImageProcessorPil, type(auto)
    with Image.open(os.path.join(data, "images", "chelsea.png")) as im:
        a = auto(images=im, return_tensors="np")["pixel_values"]
        b = processor_for(LLAVA_CLIP)(images=im, return_tensors="np")["pixel_values"]
    assert np.array_equal(a, b)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.environ.get("BITLENS_TEST_DATA", os.path.join(ROOT, "..", "shared", "data")))
    args = ap.parse_args()
    check_auto_processor_is_pil(args.data)
    make_inputs()
    make_jpeg_inputs(args.data)
    make_fuzz_corpus()

    tensors = {}
    meta = []
    for name, src, config in cases():
        kind, rel = src.split(":", 1)
        path = os.path.join(args.data if kind == "data" else GOLDEN, rel)
        proc = processor_for(config)
        with Image.open(path) as im:
            u8 = proc(images=im, return_tensors="np", do_rescale=False, do_normalize=False)["pixel_values"][0]
            pv = proc(images=im, return_tensors="np")["pixel_values"][0]
            decoded = np.array(im.convert("RGB")) if path.endswith(".jpg") else None
        assert u8.dtype == np.uint8 and pv.dtype == np.float32, (u8.dtype, pv.dtype)
        tensors[name + "/resized_u8"] = np.ascontiguousarray(u8.transpose(1, 2, 0))
        if name.startswith("llava") or pv.size <= 3 * 48 * 64:
            tensors[name + "/pixel_values"] = np.ascontiguousarray(pv)
        else:  # the table must reproduce what was not stored
            assert np.array_equal(pv, normalize_lookup(u8, config)), name
        entry = {"name": name, "image": src, "config": config}
        if decoded is not None:
            y0, x0 = decoded.shape[0] // 2 - 32, decoded.shape[1] // 2 - 32
            tensors[name + "/decoded_crop"] = np.ascontiguousarray(decoded[y0:y0 + 64, x0:x0 + 64])
            entry["decoded_crop_origin"] = [y0, x0]
        meta.append(entry)
        print(f"{name:36s} {src:32s} -> {tuple(pv.shape)}")

    tensors["normalize_table/clip"] = normalize_table(LLAVA_CLIP)
    tensors["normalize_table/siglip"] = normalize_table(siglip(1, 1))
    out = os.path.join(GOLDEN, "image_preprocess.safetensors")
    save_file(tensors, out, metadata={
        "cases": json.dumps(meta),
        "generator": f"tests/conformance/image_preprocess.py; transformers {transformers.__version__}, "
                     f"Pillow {Image.__version__}, numpy {np.__version__}",
    })
    total = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(GOLDEN) for f in fs)
    print(f"wrote {out} ({os.path.getsize(out)} bytes); tests/golden/vision holds {total} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
