#!/usr/bin/env bash
# The main job on the bundled reference model: synthesize a tiny LLaVA
# (CLIP + Llama) checkpoint in the exact Hugging Face layout, then answer a
# question about an image with streamed tokens and a timing table.
set -euo pipefail
cd "$(dirname "$0")/.."
bitlens=${1:-build/bitlens}
model=out/demo-llava-tiny
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
