#!/bin/sh
# console_flood.sh: kiln whose stdout is a pipe that nobody reads, and a guest flooding hvc0
# (virtio-console) and COM1 (console_flood.c). For each output on the pipe kiln must say that
# it drops bytes (the reader is too slow) and count them, the guest must keep running, and
# SIGTERM must end kiln within 1 s with status 143 (issue 12: a guest flooding serial and hvc0
# must not make kiln unkillable).
#
# Two runs, on a fresh pipe each:
#   hvc0       --console stdio --serial file=F: only hvc0 floods the pipe; COM1 goes to F, where
#              the guest's own lines show it keeps running while kiln drops
#   hvc0+com1  --console stdio, the serial port left at its default (it writes to stdout too):
#              both flood the same pipe (kiln refuses an explicit --serial stdio next to
#              --console stdio: one terminal, one reader)
#
# usage: console_flood.sh KILN GUEST
set -u
kiln=$1 guest=$2

. "$(dirname "$0")/lib.sh"
guest_setup console-flood "$guest"
what=""
fail() {
	echo "guest console_flood ($what): FAILED: $*"
	echo "---- kiln's stderr ----"
	cat "$dir/err"
	if [ -f "$dir/com1" ]; then
		echo "---- COM1 (last lines) ----"
		tail -n 5 "$dir/com1"
	fi
	exit 1
}
size() { wc -c <"$1"; }

# The bytes an output's drop warning reports (its first one), or nothing.
dropped() {
	sed -n "s/.*$1: output: the reader is too slow; output dropped (\([0-9]*\) bytes so far).*/\1/p" \
		"$dir/err" | head -n 1
}

# run CASE OUTPUTS KILN-ARGS...: OUTPUTS are the kiln output names that must report drops.
run() {
	what=$1 outputs=$2
	shift 2
	rm -f "$dir/out" "$dir/err" "$dir/com1"
	mkfifo "$dir/out" || exit 2
	sleep 120 <"$dir/out" >/dev/null 2>&1 & # holds the read end, never reads
	reader=$!
	KILN_LOG=warn "$kiln" run --kernel "$guest" --memory 64M "$@" \
		</dev/null >"$dir/out" 2>"$dir/err" &
	pid=$!

	# The pipe (64 KiB) and kiln's ring (4 KiB per output) fill; then kiln drops and says so.
	start=$(now_ms)
	for _ in $(seq 600); do
		missing=""
		for o in $outputs; do
			[ -n "$(dropped "$o")" ] || missing="$missing $o"
		done
		[ -z "$missing" ] && break
		kill -0 "$pid" 2>/dev/null || fail "kiln ended on its own"
		sleep 0.1
	done
	[ -z "$missing" ] || fail "no drop reported within 60 s by:$missing"
	waited=$(($(now_ms) - start))
	grep -Eq 'needs reset|refused' "$dir/err" && fail "kiln logged a virtio protocol error"
	report=""
	for o in $outputs; do
		n=$(dropped "$o")
		[ "$n" -gt 0 ] || fail "$o reports $n bytes dropped"
		report="$report $o dropped $n bytes at the first warning;"
	done

	# Keep flooding into the full pipe for a while; the guest must not be held up by it.
	c1=0
	[ -f "$dir/com1" ] && c1=$(size "$dir/com1")
	sleep 0.5
	if [ -f "$dir/com1" ]; then
		grep -q '^READY console_flood' "$dir/com1" || fail "the guest's driver did not start"
		grep -q '^FAIL' "$dir/com1" && fail "the guest printed a FAIL line"
		[ "$(size "$dir/com1")" -gt "$c1" ] ||
			fail "COM1 output stopped growing while hvc0 was dropped: the guest is stuck"
	fi

	term_kiln
	kill "$reader" 2>/dev/null
	wait "$reader" 2>/dev/null
	reader=""
	[ "$status" -eq 143 ] || fail "exit status $status after SIGTERM, expected 143"
	[ "$took" -le 1000 ] || fail "SIGTERM took $took ms to end kiln (at most 1000)"
	echo "guest console_flood ($what): ok (drops after $waited ms;$report" \
		"SIGTERM ended kiln in $took ms, exit $status)"
}

run hvc0 console --console stdio --serial "file=$dir/com1"
run hvc0+com1 "console serial" --console stdio
exit 0
