#!/usr/bin/env bash
# fuzz.sh: the fuzzing campaign behind `make fuzz`: every libFuzzer target in fuzz/ for
# FUZZ_SECONDS each, its corpus kept in fuzz/corpus/<target>/.
#
#   FUZZ_SECONDS  seconds per target (default 60)
#   FUZZ_JOBS     targets run side by side (default 1)
#   FUZZ_TARGETS  names to run (default: every fuzz_* built), e.g. "fuzz_blk fuzz_api"
#
# Each run starts from the kept corpus and adds what it finds; at the end the corpus is
# minimised (libFuzzer -merge=1), so fuzz/corpus/ holds one input per coverage feature. A
# crash leaves its input in fuzz/crashes/<target>/ and fails the run: fix the bug, then copy
# the input into fuzz/corpus/<target>/ so that every later run (and CI's smoke run, which
# replays the corpus) checks it again. Executions per target go to build-fuzz/fuzz-stats.tsv.
set -uo pipefail
cd "$(dirname "$0")/.."

SECONDS_EACH=${FUZZ_SECONDS:-60}
JOBS=${FUZZ_JOBS:-1}
BUILD_FUZZ=${BUILD_FUZZ:-build-fuzz}
[[ $SECONDS_EACH =~ ^[1-9][0-9]*$ ]] || { echo "fuzz.sh: FUZZ_SECONDS '$SECONDS_EACH' is not a positive number" >&2; exit 2; }
[[ $JOBS =~ ^[1-9][0-9]*$ ]] || { echo "fuzz.sh: FUZZ_JOBS '$JOBS' is not a positive number" >&2; exit 2; }
command -v clang >/dev/null || { echo "fuzz.sh: clang not found (scripts/deps.sh installs it)" >&2; exit 1; }

if [ ! -f "$BUILD_FUZZ/build.ninja" ]; then
	CC=clang meson setup "$BUILD_FUZZ" -Dfuzz=true -Dguest_tests=false \
		-Db_sanitize=address,undefined -Db_lundef=false -Dstatic_kiln=disabled >/dev/null || exit 1
fi
ninja -C "$BUILD_FUZZ" >"$BUILD_FUZZ.ninja.log" 2>&1 || { cat "$BUILD_FUZZ.ninja.log"; exit 1; }

targets=${FUZZ_TARGETS:-$(find "$BUILD_FUZZ/fuzz" -maxdepth 1 -type f -executable -name 'fuzz_*' -printf '%f\n' | sort)}
stats=$BUILD_FUZZ/fuzz-stats.tsv
: >"$stats"

# One target: fuzz into a scratch corpus seeded from the kept one, then merge back minimised.
run_one() {
	local name=$1 bin=$BUILD_FUZZ/fuzz/$1
	local kept=fuzz/corpus/$name crashes=fuzz/crashes/$name log=$BUILD_FUZZ/$name.campaign.log
	local work
	[ -x "$bin" ] || { echo "$name: not built" >&2; return 1; }
	mkdir -p "$kept" "$crashes"
	work=$(mktemp -d)
	cp -a "$kept/." "$work/" 2>/dev/null
	local rc=0
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 "$bin" -max_total_time="$SECONDS_EACH" \
		-print_final_stats=1 -artifact_prefix="$crashes/" "$work" >"$log" 2>&1 || rc=$?
	local execs
	execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | tail -1 | awk '{print $2}')
	local merged
	merged=$(mktemp -d)
	"$bin" -merge=1 "$merged" "$kept" "$work" >>"$log" 2>&1
	rm -rf "$kept" && mkdir -p "$kept" && cp -a "$merged/." "$kept/"
	rm -rf "$work" "$merged"
	rmdir "$crashes" 2>/dev/null
	printf '%s\t%s\t%s\t%s\n' "$name" "$SECONDS_EACH" "${execs:-0}" "$(ls "$kept" | wc -l)" >>"$stats"
	if [ $rc -ne 0 ]; then
		echo "$name: FAILED after ${execs:-?} executions (input in $crashes/, log $log):"
		grep -m5 -E 'ERROR|SUMMARY|runtime error' "$log"
		return 1
	fi
	echo "$name: ${execs:-?} executions in ${SECONDS_EACH}s, corpus $(ls "$kept" | wc -l) inputs"
}

failed=0
running=0
pids=()
for t in $targets; do
	run_one "$t" &
	pids+=($!)
	running=$((running + 1))
	if [ $running -ge "$JOBS" ]; then
		wait -n || failed=$((failed + 1))
		running=$((running - 1))
	fi
done
while [ $running -gt 0 ]; do
	wait -n || failed=$((failed + 1))
	running=$((running - 1))
done
echo
printf 'target\tseconds\texecutions\tcorpus\n'
cat "$stats"
[ $failed -eq 0 ]
