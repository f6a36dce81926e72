#!/usr/bin/env bash
# The main job on the bundled reference model: synthesize a tiny LLaVA
# (CLIP + Llama) checkpoint in the exact Hugging Face layout, quantize it
# (decoder 2-bit, vision tower 4-bit), then answer a question about an image
# with both models, streaming tokens and printing a timing table.
set -euo pipefail
cd "$(dirname "$0")/.."
bitlens=${1:-build/bitlens}
model=out/demo-llava-tiny
quantized=out/demo-llava-tiny-w2g64
image=assets/shapes.png

mkdir -p out
if [ ! -f "$model/config.json" ]; then
  "$bitlens" synth --family llava --preset tiny -o "$model"
fi
"$bitlens" inspect "$model"
echo
echo "== bitlens run --model $model --image $image"
"$bitlens" run --model "$model" --image "$image" --prompt "Describe the image." --max-tokens 16
echo
echo "== bitlens quantize --model $model --decoder w2g64 --vision w4g32 -o $quantized"
"$bitlens" quantize --model "$model" --decoder w2g64 --vision w4g32 -o "$quantized" --force
"$bitlens" inspect "$quantized"
echo
echo "== bitlens run --model $quantized --image $image"
"$bitlens" run --model "$quantized" --image "$image" --prompt "Describe the image." --max-tokens 16
echo
echo "report: $quantized/report.html"
