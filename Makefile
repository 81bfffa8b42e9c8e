# Makefile: the README's two commands (`make run`, `make check`) and a few shortcuts.
BUILD       ?= build
BUILD_ASAN  ?= build-asan
BUILD_FUZZ  ?= build-fuzz
GUEST_DIR   ?= $(BUILD)/guest
KILN        := $(BUILD)/kiln
# Guests on this kind of host need the extra arguments in guest/cmdline-extra (see
# guest/README.md): they are host quirks, so they live here and not in kiln's defaults.
RUN_CMDLINE ?= console=ttyS0 reboot=k panic=-1 $(shell cat guest/cmdline-extra 2>/dev/null)
RUN_ARGS    ?= --cpus 2 --memory 256M

.PHONY: all deps build guest run check check-fast check-e2e unit asan fuzz clean bench

all: build

deps:
	@scripts/deps.sh

$(BUILD)/build.ninja:
	meson setup $(BUILD)

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

guest: deps
	guest/build.sh $(GUEST_DIR)
	guest/build-kernel.sh $(GUEST_DIR)

# Install dependencies, build kiln and the default guest, boot it with the shell on this terminal.
run: build guest
	KILN_GUEST_DIR=$(GUEST_DIR) $(KILN) run --cmdline "$(RUN_CMDLINE)" $(RUN_ARGS)

# The test suite: unit (plain and ASan/UBSan), fuzz smoke, tiny guests, API, default guest build.
check: deps
	tests/run.sh all

# Fast tier only (no Linux guest).
check-fast: deps
	tests/run.sh fast

# Fuzzing campaign: every target for FUZZ_SECONDS (default 60), corpus kept in fuzz/corpus/
# (scripts/fuzz.sh; FUZZ_JOBS runs targets side by side). CI runs only the short smoke run.
fuzz: deps
	FUZZ_SECONDS=$(or $(FUZZ_SECONDS),60) scripts/fuzz.sh

# Benchmarks: kiln next to QEMU microvm (and BENCH_PEERS), table in bench/results.md. Slow, and
# never part of `make check`. Knobs (BENCH_RUNS, BENCH_LINUX=1, ...): docs/benchmarks.md.
bench: build
	bench/deps.sh
	KILN=$(KILN) BENCH_OUT=$(BUILD)/bench BENCH_GUEST_DIR=$(GUEST_DIR) bench/run.sh

# The real-guest tier only (Linux boots, one at a time; see tests/e2e).
check-e2e: build guest
	meson test -C $(BUILD) --suite e2e --num-processes 1 --print-errorlogs

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) $(BUILD_FUZZ)
