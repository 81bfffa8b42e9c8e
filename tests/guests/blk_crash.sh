#!/bin/sh
# blk_crash.sh: kill kiln at random moments while a guest writes and flushes numbered blocks
# (blk_crash.c), and check that every block up to the last `FLUSHED n` the guest printed is in
# the image with the right content (issue 12).
#
# KILLS runs (20) on a fresh 64 MiB image each, alternating engine=uring and engine=sync, all
# with cache=writeback (the mode that offers FLUSH and makes it an fdatasync). kiln gets SIGKILL
# 100-1500 ms after the guest's READY line. Its COM1 goes to a file: a FLUSHED line there was
# printed after the guest saw the flush complete. The expected image is text (blk_crash.c says
# how it is laid out), built here with awk and compared with cmp.
#
# What a SIGKILL can show: kiln completes a write or a flush only once the data is in the host
# kernel (the page cache survives the process). It cannot show that the fdatasync reached the
# disk: that needs a host crash, not a process kill.
#
# Then once per engine with cache=unsafe, where nothing is durable: the guest must see no FLUSH
# feature and get UNSUPP for a FLUSH it sends anyway (it says PASS and ends).
#
# usage: blk_crash.sh KILN GUEST (KILLS=N in the environment for a shorter run)
set -u
kiln=$1 guest=$2
KILLS=${KILLS:-20}
IMAGE_MIB=64
BLOCK=4096

. "$(dirname "$0")/lib.sh"
guest_setup blk-crash "$guest"
run=""
fail() {
	echo "guest blk_crash ($run): FAILED: $*"
	echo "---- kiln's output (last lines) ----"
	tail -n 8 "$dir/out" 2>/dev/null | tr -d '\r'
	exit 1
}
random_below() { # a number in [0, $1), from /dev/urandom
	echo $(($(od -An -N4 -tu4 /dev/urandom) % $1))
}

# The expected image, grown on demand to hold blocks 0..$1 (blk_crash.c: 64 lines of 64 bytes).
have=0
expect_upto() {
	[ "$1" -lt "$have" ] && return
	awk -v from="$have" -v to="$1" 'BEGIN {
		a = "abcdefghijklmnopqrstuvwxyz"; a = a a a
		for (b = from; b <= to; b++)
			for (r = 0; r < 64; r++)
				printf "B%08d R%02d %s\n", b, r, substr(a, (b + r) % 26 + 1, 49)
	}' >>"$dir/expect"
	have=$(($1 + 1))
}

cr=$(printf '\r') # kprintf ends lines with CR LF

# start ENGINE CACHE: kiln on a fresh image, COM1 to $dir/out; waits for the guest's READY.
start() {
	rm -f "$dir/img" "$dir/out" "$dir/err"
	truncate -s "${IMAGE_MIB}M" "$dir/img" || exit 2
	: >"$dir/out"
	"$kiln" run --kernel "$guest" --memory 64M --serial stdio \
		--disk "path=$dir/img,engine=$1,cache=$2" </dev/null >"$dir/out" 2>"$dir/err" &
	pid=$!
	for _ in $(seq 500); do
		# the whole line: COM1 output arrives a byte at a time
		grep -q "^READY blk_crash: .*flush=[01]$cr\$" "$dir/out" && return
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.02
	done
	fail "no READY line within 10 s"
}

# Blocks 0..n of the image must be the expected ones.
check_blocks() {
	n=$1
	[ "$n" -ge 0 ] || return 0
	expect_upto "$n"
	bytes=$(((n + 1) * BLOCK))
	if ! diff=$(cmp -n "$bytes" "$dir/img" "$dir/expect" 2>&1); then
		at=$(echo "$diff" | sed -n 's/.* byte \([0-9]*\).*/\1/p')
		[ -n "$at" ] && fail "block $(((at - 1) / BLOCK)) of 0..$n is not what the guest" \
			"wrote and flushed ($diff)"
		fail "blocks 0..$n: $diff"
	fi
}

kills=0 landed=0 summary=""
t0=$(now_ms)
while [ "$kills" -lt "$KILLS" ]; do
	engine=uring
	[ $((kills % 2)) -eq 1 ] && engine=sync
	run="kill $((kills + 1))/$KILLS, engine=$engine, cache=writeback"
	start "$engine" writeback
	grep -q '^READY blk_crash: .* flush=1' "$dir/out" ||
		fail "cache=writeback, but the guest saw no FLUSH feature"
	delay=$((100 + $(random_below 1400)))
	sleep "$(printf '%d.%03d' $((delay / 1000)) $((delay % 1000)))"
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null # no "Killed" from the shell
	status=$?
	pid=""
	[ "$status" -eq 137 ] || fail "kiln ended with status $status before the kill"
	grep -q '^FAIL' "$dir/out" && fail "the guest printed a FAIL line"
	grep -Eq 'needs reset|refused' "$dir/err" && fail "kiln logged a virtio protocol error: $(cat "$dir/err")"
	# Whole lines only (kprintf ends them with CR LF): a line cut by the kill is not counted.
	n=$(sed -n 's/^FLUSHED \([0-9]*\)\r$/\1/p' "$dir/out" | tail -n 1)
	[ -n "$n" ] || n=-1
	check_blocks "$n"
	[ "$n" -ge 0 ] && landed=$((landed + 1))
	kills=$((kills + 1))
	summary="$summary $engine:${delay}ms:$n"
done
# A kill before the first flush checks nothing: most must come after some.
[ "$landed" -ge $((KILLS / 2)) ] ||
	fail "only $landed of $KILLS kills came after a completed flush"
echo "guest blk_crash: ok ($kills kills in $(($(now_ms) - t0)) ms, $landed after a flush;" \
	"engine:delay:last FLUSHED, all blocks up to it present:$summary)"

for engine in uring sync; do
	run="engine=$engine, cache=unsafe"
	start "$engine" unsafe
	grep -q '^READY blk_crash: .* flush=0' "$dir/out" ||
		fail "cache=unsafe promises nothing, but the guest was offered FLUSH"
	for _ in $(seq 500); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.02
	done
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null # no "Killed" from the shell
	status=$?
	pid=""
	[ "$status" -eq 0 ] || fail "exit status $status, expected 0 (the guest ends by itself)"
	grep -q '^PASS blk_crash unsafe: no FLUSH feature, a FLUSH request is answered UNSUPP' \
		"$dir/out" || fail "no PASS line from the guest"
	grep -q '^FAIL' "$dir/out" && fail "the guest printed a FAIL line"
	echo "guest blk_crash ($run): ok (no FLUSH offered, FLUSH answered UNSUPP)"
done
exit 0
