# holoscope - front door to the CMake build.
#
#   make demo       build and start `holoscope demo` (a simulated fleet, observed)
#   make run        build and start `holoscope serve` with defaults
#   make test       install dependencies, build (gcc release + clang ASan/UBSan
#                   with fuzz instrumentation) and run every test with CTest
#   make install    install the binary under PREFIX (default /usr/local)
#   make bench      side-by-side benchmarks against the peers (see bench/)
#   make deps       install Debian and npm dependencies (automatic)
#   make format / check-format / lint / clean
#
# Build trees: build/release (gcc, -O2), build/test (clang, ASan+UBSan,
# libFuzzer harnesses).  JOBS defaults to the number of CPUs.

PREFIX ?= /usr/local
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
FUZZ_SECONDS ?= 4
CMAKE ?= cmake
RELEASE := build/release
TEST := build/test
STAMP := build/.deps-ok

.PHONY: all build run demo test check test-build install bench deps format check-format lint clean

all: build

# Dependencies are checked (cheaply) before any build; installed only when missing.
$(STAMP): scripts/deps.sh $(wildcard package-lock.json)
	@./scripts/deps.sh
	@mkdir -p build && touch $@

deps:
	@./scripts/deps.sh
	@mkdir -p build && touch $(STAMP)

$(RELEASE)/CMakeCache.txt: $(STAMP)
	@$(CMAKE) -S . -B $(RELEASE) -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_COMPILER=gcc >/dev/null

build: $(RELEASE)/CMakeCache.txt
	@$(CMAKE) --build $(RELEASE) -j$(JOBS) --target holoscope

run: build
	./$(RELEASE)/holoscope serve

# The README's first command: a simulated fleet, observed end to end.
demo: build
	./$(RELEASE)/holoscope demo

$(TEST)/CMakeCache.txt: $(STAMP)
	@$(CMAKE) -S . -B $(TEST) -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=clang \
		-DHS_SANITIZE=ON -DHS_FUZZ=ON -DHS_FUZZ_SECONDS=$(FUZZ_SECONDS) >/dev/null

test-build: $(TEST)/CMakeCache.txt
	@$(CMAKE) --build $(TEST) -j$(JOBS)

# The release build runs first so gcc's warnings are checked on every test run.
test: build test-build
	@./scripts/check-banned.sh
	@$(MAKE) --no-print-directory check-format
	@cd $(TEST) && ctest -j$(JOBS) --output-on-failure --timeout 600

check: test

install: build
	$(CMAKE) --install $(RELEASE) --prefix $(PREFIX)

bench: build
	@HS_DEPS_BENCH=1 ./scripts/deps.sh
	@HOLOSCOPE_BIN=$(CURDIR)/$(RELEASE)/holoscope ./bench/run.sh

format:
	@clang-format -i $$(git ls-files '*.c' '*.h')

check-format:
	@if command -v clang-format >/dev/null 2>&1; then \
		clang-format --dry-run --Werror $$(git ls-files '*.c' '*.h' 2>/dev/null || \
			find src tests -name '*.[ch]'); \
	else echo "check-format: clang-format is not installed (make deps installs it)"; exit 1; fi

lint:
	@./scripts/check-banned.sh

clean:
	rm -rf build
