# The two commands of the README's Quick start, and the build they share.
#   make demo   builds ferry and runs a push/clone/pull round trip on a throw-away repository
#   make test   builds ferry and runs every test (unit and end-to-end with the real git-lfs)
#   make fuzz   builds the libFuzzer harnesses with clang (ASan + UBSan) in their own
#               directory and runs each for FUZZ_SECONDS (docs/fuzzing.md)
BUILD_DIR ?= build
FERRY_WERROR ?= OFF
JOBS ?= $(shell nproc)
FUZZ_DIR ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_JOBS ?= $(JOBS)
# Areas to fuzz (tests/fuzz/<area>_fuzz.cpp); empty: all of them.
FUZZ_AREAS ?=

.PHONY: deps build demo test fuzz clean

deps:
	@bash .ci/install-deps

build: deps
	@cmake -S . -B $(BUILD_DIR) -G Ninja -DFERRY_WERROR=$(FERRY_WERROR) > /dev/null
	@cmake --build $(BUILD_DIR) -j $(JOBS)

demo: build
	@bash simulations/roundtrip.sh $(BUILD_DIR)/ferry

test: build
	@cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS)

fuzz: deps
	@cmake -S . -B $(FUZZ_DIR) -G Ninja -DCMAKE_CXX_COMPILER=clang++-14 \
	  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFERRY_FUZZ=ON > /dev/null
	@bash tests/fuzz/run.sh $(FUZZ_DIR) $(FUZZ_SECONDS) $(FUZZ_JOBS) $(FUZZ_AREAS)

clean:
	rm -rf $(BUILD_DIR)
