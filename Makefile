# bitlens entry points. Every target installs what it needs first.
#   make demo   synthesize a tiny VLM and answer a question about a bundled image
#   make test   install, build, run all tests (Release, then unit tests under ASan+UBSan)

BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc)
CMAKE_GEN  := -G Ninja

.PHONY: all deps build test test-release test-asan demo conformance fuzz clean results

all: build

deps:
	@bash scripts/install-deps.sh

build: deps
	@cmake -S . -B $(BUILD) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

test: test-release test-asan

test-release: build
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)

test-asan: deps
	@cmake -S . -B $(ASAN_BUILD) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBITLENS_SANITIZE=ON >/dev/null
	@cmake --build $(ASAN_BUILD) -j $(JOBS)
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --test-dir $(ASAN_BUILD) --output-on-failure -j $(JOBS) -LE slow

demo: build
	@bash scripts/demo.sh $(BUILD)/bitlens

# Regenerates docs/results.md: full precision vs RTN/HQQ/GPTQ/QAT at w2g32, w2g64, mixed and t1 on the
# reference VLM, and the stories260K table (`bitlens eval-suite`; tens of minutes on 2 cores).
RESULTS_MODEL   ?= models/ref-vlm
RESULTS_STORIES ?= ../shared/data/stories260K
results: build
	$(BUILD)/bitlens eval-suite --model $(RESULTS_MODEL) --stories $(RESULTS_STORIES) -o docs/results.md \
	  --json $(BUILD)/results.json $(RESULTS_FLAGS)

# Regenerates tests/golden/ with HF transformers/tokenizers (PyPI, CPU only).
conformance: build
	@bash scripts/conformance.sh

# libFuzzer targets built with clang; `make fuzz FUZZ_SECONDS=60` runs each.
FUZZ_SECONDS ?= 30
fuzz: deps
	@CC=clang CXX=clang++ cmake -S . -B build-fuzz $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DBITLENS_FUZZ=ON -DBITLENS_SANITIZE=ON >/dev/null
	@cmake --build build-fuzz -j $(JOBS)
	@for t in build-fuzz/tests/*_fuzz; do \
	  name=$$(basename $$t _fuzz); \
	  echo "fuzzing $$name for $(FUZZ_SECONDS)s"; \
	  $$t -max_total_time=$(FUZZ_SECONDS) tests/fuzz/corpus/$$name || exit 1; \
	done

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) build-fuzz
