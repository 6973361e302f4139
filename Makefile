# The two commands of the README's Quick start, and the build they share.
#   make demo   builds ferry and runs a push/clone/pull round trip on a throw-away repository
#   make test   builds ferry and runs every test (unit and end-to-end with the real git-lfs)
BUILD_DIR ?= build
FERRY_WERROR ?= OFF
JOBS ?= $(shell nproc)

.PHONY: deps build demo test clean

deps:
	@bash .ci/install-deps

build: deps
	@cmake -S . -B $(BUILD_DIR) -G Ninja -DFERRY_WERROR=$(FERRY_WERROR) > /dev/null
	@cmake --build $(BUILD_DIR) -j $(JOBS)

demo: build
	@bash simulations/roundtrip.sh $(BUILD_DIR)/ferry

test: build
	@cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS)

clean:
	rm -rf $(BUILD_DIR)
