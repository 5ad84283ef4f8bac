# logproc: the front of the CMake build. The two commands are `make demo` and `make test`.
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
RELEASE_DIR := build/release
TEST_DIR := build/asan
LOCAL_DIR ?= ./local

.PHONY: all build deps deps-build demo test test-release bench clean format fuzz

all: build

deps-build:
	@bash scripts/deps.sh --build

deps:
	@bash scripts/deps.sh

build: deps-build
	@cmake -S . -B $(RELEASE_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Release -DLOGPROC_TESTS=OFF >/dev/null
	@cmake --build $(RELEASE_DIR) -j $(JOBS)
	@ln -sf $(RELEASE_DIR)/logproc logproc

# Test suite under AddressSanitizer + UndefinedBehaviorSanitizer: unit, integration
# (real services started on loopback by the tests) and acceptance tests, through ctest.
test: deps
	@cmake -S . -B $(TEST_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DLOGPROC_SANITIZE=ON >/dev/null
	@cmake --build $(TEST_DIR) -j $(JOBS)
	@cd $(TEST_DIR) && ctest --output-on-failure -j $(JOBS)

# The same suite on the optimised build (no sanitizers).
test-release: deps
	@cmake -S . -B build/release-tests -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build build/release-tests -j $(JOBS)
	@cd build/release-tests && ctest --output-on-failure -j $(JOBS)

demo: build
	@bash scripts/demo.sh

bench: deps build
	@bash scripts/deps.sh bench
	@bash bench/run.sh

# libFuzzer targets (clang), time-boxed: FUZZ_SECONDS per target (default 60), FUZZ_TARGETS subset.
fuzz: deps
	@bash scripts/fuzz.sh

format:
	@clang-format -i $$(git ls-files 'src/*.c' 'src/*.h' 'tests/*.c')

clean:
	@if [ -d "$(LOCAL_DIR)" ]; then LOCAL_DIR=$(LOCAL_DIR) bash scripts/local.sh down; fi
	rm -rf build logproc out

# The local stack (scripts/local.sh, docs/OPERATIONS.md): Kafka, S3 server, Redis, the four jobs
# and the generators on loopback, pid files and logs in $(LOCAL_DIR).
.PHONY: local clean-local local-status

local: deps build
	@LOCAL_DIR=$(LOCAL_DIR) bash scripts/local.sh up

clean-local:
	@LOCAL_DIR=$(LOCAL_DIR) bash scripts/local.sh down

local-status:
	@LOCAL_DIR=$(LOCAL_DIR) bash scripts/local.sh status

local-%-setup: deps build
	@LOCAL_DIR=$(LOCAL_DIR) bash scripts/local.sh setup $*

local-%-clean:
	@LOCAL_DIR=$(LOCAL_DIR) bash scripts/local.sh clean $*
