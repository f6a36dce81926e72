#!/usr/bin/env bash
# Regenerates tests/golden/ with the reference implementations (HF transformers, tokenizers; PyPI,
# CPU only): installs the pinned Python packages when missing, then runs every generator in
# tests/conformance/*.py. `make conformance` calls this. Usage: scripts/conformance.sh [build-dir]
set -euo pipefail

cd "$(dirname "$0")/.."
BUILD_DIR="${1:-build}"
PYTHON="${PYTHON:-python3}"

# Pinned so regenerated goldens are byte-stable; bump together and regenerate. torch comes from
# PyPI (its default Linux wheel); the models run on the CPU either way. torchvision is NOT
# installed on purpose: the generators use the PIL image processors, whose numerics they document.
PINS=(
  "torch==2.15.0"
  "transformers==5.24.0"
  "tokenizers==0.23.3"
  "safetensors==0.8.0"
  "numpy==2.4.6"
  "pillow==13.0.0"
  "sentencepiece==0.2.3"
  "torchao==0.18.0"
)

missing=()
for pin in "${PINS[@]}"; do
  name="${pin%%==*}"
  want="${pin##*==}"
  have="$("$PYTHON" -m pip show "$name" 2>/dev/null | sed -n 's/^Version: //p')"
  # torch's PyPI wheel reports e.g. 2.15.0+cu132: compare the release part only.
  if [[ "${have%%+*}" != "$want" ]]; then missing+=("$pin"); fi
done
if ((${#missing[@]})); then
  echo "conformance: installing ${missing[*]} from PyPI"
  "$PYTHON" -m pip install --quiet "${missing[@]}"
fi

# ExecuTorch's deserializer for tests/conformance/pte_deserialize.py. executorch is installed
# without its dependencies (they would pull coremltools, pandas, scikit-learn and another torch
# pin); its serializer needs only these three. The script runs build/bitlens (BUILD_DIR).
ET_PIN="executorch==1.5.1"
if [[ "$("$PYTHON" -m pip show executorch 2>/dev/null | sed -n 's/^Version: //p')" != "${ET_PIN##*==}" ]]; then
  echo "conformance: installing $ET_PIN (no deps) and ruamel.yaml, flatbuffers, tabulate from PyPI"
  "$PYTHON" -m pip install --quiet --no-deps "$ET_PIN"
  "$PYTHON" -m pip install --quiet ruamel.yaml flatbuffers tabulate
fi
export BUILD_DIR

# Every generator in tests/conformance/ (model goldens, and tokenizer / image goldens as they are
# added); each writes its own cases under tests/golden/ and exits non-zero on any self-check.
shopt -s nullglob
scripts=(tests/conformance/*.py)
if ((${#scripts[@]} == 0)); then
  echo "conformance: no generators in tests/conformance/" >&2
  exit 1
fi
for script in "${scripts[@]}"; do
  echo "conformance: $script"
  "$PYTHON" "$script"
done

echo "conformance: tests/golden is $(du -sh tests/golden | cut -f1)"
du -sh tests/golden/*/ | sed 's/^/  /'

# The goldens must still be readable by bitlens (config parser, names, shapes).
if [[ -x "$BUILD_DIR/tests/bitlens_tests" ]]; then
  "$BUILD_DIR/tests/bitlens_tests" --gtest_filter='Models/GoldenFormat.*' --gtest_brief=1
fi

# Generators are byte-stable for fixed versions: any change listed here is a change of reference.
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  changed="$(git status --porcelain -- tests/golden)"
  if [[ -n "$changed" ]]; then
    echo "conformance: tests/golden differs from the last commit:"
    echo "$changed" | sed 's/^/  /'
  else
    echo "conformance: tests/golden is byte-identical to the last commit"
  fi
fi
