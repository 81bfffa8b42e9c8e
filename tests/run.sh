#!/usr/bin/env bash
# run.sh: build and run kiln's test tiers and print one summary line "N passed, N failed".
#   tests/run.sh fast   unit tests (plain + ASan/UBSan), fuzz smoke runs, tiny test guests, API
#   tests/run.sh all    fast tier, then the real-guest tier: the guest builds and the Linux
#                       boots of tests/e2e (KILN_E2E=0 skips the boots)
set -uo pipefail
cd "$(dirname "$0")/.."

TIER=${1:-all}
BUILD=${BUILD:-build}
BUILD_ASAN=${BUILD_ASAN:-build-asan}
BUILD_FUZZ=${BUILD_FUZZ:-build-fuzz}
FUZZ_SECONDS=${FUZZ_SECONDS:-10}
passed=0
failed=0
skipped=0
failures=()
skips=()

note() { printf '\n=== %s\n' "$*"; }
pass() { passed=$((passed + 1)); }
skip() { skipped=$((skipped + 1)); skips+=("$1"); }
fail() { failed=$((failed + 1)); failures+=("$1"); echo "FAILED: $1"; }

# Add a meson test run's results (from its JSON log) to the totals.
count_meson() {
	local dir=$1 label=$2
	local log=$dir/meson-logs/testlog.json
	[ -f "$log" ] || { fail "$label: no test log"; return; }
	while IFS=$'\t' read -r name result; do
		case "$result" in
		OK | EXPECTEDFAIL) pass ;;
		SKIP) skip "$label: $name" ;;
		*) fail "$label: $name ($result)" ;;
		esac
	done < <(python3 -c '
import json, sys
for line in open(sys.argv[1]):
    t = json.loads(line)
    print(t["name"] + "\t" + t["result"])
' "$log")
}

setup() { # dir, extra meson args...
	local dir=$1
	shift
	if [ ! -f "$dir/build.ninja" ]; then
		meson setup "$dir" "$@" >/dev/null || return 1
	elif [ $# -gt 0 ]; then
		meson setup --reconfigure "$dir" "$@" >/dev/null || return 1
	fi
	ninja -C "$dir" >"$dir.ninja.log" 2>&1 || { cat "$dir.ninja.log"; return 1; }
}

run_suite() { # dir, label, suite, extra meson test args...
	local dir=$1 label=$2 suite=$3
	shift 3
	rm -f "$dir/meson-logs/testlog.json"
	meson test -C "$dir" --suite "$suite" --print-errorlogs "$@"
	count_meson "$dir" "$label"
}

note "build ($BUILD)"
if setup "$BUILD" -Dtest_hooks=true; then
	note "unit tests"
	run_suite "$BUILD" unit unit

	note "tiny test guests"
	run_suite "$BUILD" guests guests --num-processes 1

	note "REST API (kiln api over its socket)"
	run_suite "$BUILD" api api --num-processes 1
else
	fail "build $BUILD"
fi

note "unit tests under ASan + UBSan ($BUILD_ASAN)"
if setup "$BUILD_ASAN" -Db_sanitize=address,undefined -Db_lundef=false -Dguest_tests=false -Dstatic_kiln=disabled; then
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		run_suite "$BUILD_ASAN" asan unit
else
	fail "build $BUILD_ASAN"
fi

note "fuzz smoke runs (${FUZZ_SECONDS}s each, $BUILD_FUZZ)"
if command -v clang >/dev/null; then
	if CC=clang setup "$BUILD_FUZZ" -Dfuzz=true -Dguest_tests=false -Db_sanitize=address,undefined -Db_lundef=false -Dstatic_kiln=disabled; then
		for f in "$BUILD_FUZZ"/fuzz/fuzz_*; do
			[ -f "$f" ] && [ -x "$f" ] || continue
			name=$(basename "$f")
			corpus=$(mktemp -d)
			# Replay the kept corpus (make fuzz), crash regressions included, then explore.
			[ -d "fuzz/corpus/$name" ] && cp -a "fuzz/corpus/$name/." "$corpus/"
			if "$f" -max_total_time="$FUZZ_SECONDS" -print_final_stats=1 "$corpus" \
				>"$BUILD_FUZZ/$name.log" 2>&1; then
				pass
				echo "$name: ok ($(grep -o 'stat::number_of_executed_units: [0-9]*' "$BUILD_FUZZ/$name.log" | head -1 || true))"
			else
				tail -40 "$BUILD_FUZZ/$name.log"
				fail "fuzz: $name"
			fi
			rm -rf "$corpus"
		done
	else
		fail "build $BUILD_FUZZ"
	fi
else
	echo "clang not found: fuzz smoke runs skipped"
fi

if [ "$TIER" = all ]; then
	note "real-guest tier: guest builds (Debian cloud kernel + initramfs, kiln kernel)"
	if guest/build.sh "$BUILD/guest" && guest/build-kernel.sh "$BUILD/guest"; then
		pass
		if [ "${KILN_E2E:-1}" = 1 ]; then
			note "real-guest tier: Linux boots (one at a time)"
			run_suite "$BUILD" e2e e2e --num-processes 1
		else
			echo "real-guest tier: Linux boots skipped (KILN_E2E=0)"
		fi
	else
		fail "guest build"
	fi
fi

echo
if [ ${#failures[@]} -gt 0 ]; then
	echo "failures:"
	printf '  %s\n' "${failures[@]}"
fi
if [ ${#skips[@]} -gt 0 ]; then
	# A skipped test did not run: on a host without /dev/kvm that is every test that boots
	# a guest. They are listed so that nobody mistakes this run for a full one.
	echo "skipped (did not run):"
	printf '  %s\n' "${skips[@]}"
	[ -c /dev/kvm ] || echo "this host has no /dev/kvm: the tests that boot a guest could not run"
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
