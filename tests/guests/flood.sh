#!/bin/sh
# flood.sh: kiln whose stdout is a pipe that nobody reads, and a guest flooding COM1 (flood.c).
# kiln must say that it drops output (the reader is too slow) and SIGTERM must end it within
# 1 s, with status 143. Before issue 12 the vCPU blocked in write() under the UART lock and
# only SIGKILL ended kiln.
#
# usage: flood.sh KILN GUEST
set -u
kiln=$1 guest=$2

. "$(dirname "$0")/lib.sh"
guest_setup flood "$guest"
fail() {
	echo "guest flood: FAILED: $*"
	echo "---- kiln's stderr ----"
	cat "$dir/err"
	exit 1
}

mkfifo "$dir/out" || exit 2
sleep 120 <"$dir/out" >/dev/null 2>&1 & # holds the read end, never reads
reader=$!
KILN_LOG=warn "$kiln" run --kernel "$guest" --serial stdio </dev/null >"$dir/out" 2>"$dir/err" &
pid=$!

# The pipe (64 KiB) and kiln's ring (4 KiB) fill; then kiln drops and says so.
for _ in $(seq 600); do
	grep -q 'the reader is too slow' "$dir/err" && break
	kill -0 "$pid" 2>/dev/null || fail "kiln ended on its own"
	sleep 0.1
done
grep -q 'the reader is too slow' "$dir/err" || fail "no drop reported within 60 s"
sleep 0.5 # keep flooding into the full pipe for a while

term_kiln
[ "$status" -eq 143 ] || fail "exit status $status after SIGTERM, expected 143"
[ "$took" -le 1000 ] || fail "SIGTERM took $took ms to end kiln (at most 1000)"
echo "guest flood: ok (SIGTERM ended kiln in $took ms, exit $status)"
exit 0
