#!/usr/bin/env bash
# Real-guest e2e test: virtio-blk (both engines, read-only, discard), virtio-rng and virtio-console in one boot.
# Then a snapshot of that guest (ext2 with unsynced data on vdf, a user-mode network lease,
# hvc0 open), restored twice in new kiln processes (`kiln snapshot`, `kiln restore`).
#
# Usage: tests/e2e/virtio.sh KILN GUESTDIR [debian|kiln|auto]    (see lib.sh)
#   KILN      the kiln executable
#   GUESTDIR  holds vmlinux, initramfs.cpio and kernel-release from guest/build.sh
# Environment: E2E_TIMEOUT  seconds before kiln is killed (default 2400, 40 minutes)
#              E2E_LOGDIR   where the logs and images go (default: the meson-logs
#                           directory beside GUESTDIR, else a temporary directory)
# The guest side is guest/tests/virtio; it prints KEY=VALUE lines checked here, next to
# host-side checks on the image files and on what the guest wrote to hvc0.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/e2e/lib.sh
. "$here/lib.sh"
e2e_init virtio "$@"
cpus=2
memory=256M
test_name=virtio
pattern_bytes=1048576
host_line=KILN_HOST_LINE
hvc=$logdir/e2e-$test_name.hvc0.log # kiln's stdout: what the guest wrote to hvc0
img=$(mktemp -d "$logdir/e2e-$test_name-img.XXXXXX")
sock=$img/api.sock
http_pid=
e2e_cleanup() {
	[ -z "$http_pid" ] || kill "$http_pid" 2>/dev/null || true
	rm -rf "$img"
}
trap e2e_cleanup EXIT

# --- images ----------------------------------------------------------------------
# vda: random content the guest hashes; vdb: zeroes the guest overwrites; vdc: read-only
# (no write permission, readonly=on, sync engine); vdd: fully allocated data the guest
# discards; vde: zeroes the guest overwrites through io_uring.
head -c 1048576 /dev/urandom >"$img/vda.img"
vda_sha=$(sha256sum "$img/vda.img" | cut -d' ' -f1)
truncate -s 2M "$img/vdb.img"
truncate -s 2M "$img/vde.img"
head -c 65536 /dev/urandom >"$img/vdc.img"
vdc_sha=$(sha256sum "$img/vdc.img" | cut -d' ' -f1)
chmod 0444 "$img/vdc.img"
truncate -s 16M "$img/vdf.img"
head -c 4194304 /dev/urandom >"$img/vdd.img"
sync "$img/vdd.img"
vdd_blocks_before=$(stat -c %b "$img/vdd.img")
# What the guest writes to vdb (`yes` ends on SIGPIPE: not an error here).
pattern() { yes kiln-virtio-pattern | head -c "$pattern_bytes" || true; }
# the guest hashes the whole of vdb: the pattern, then zeroes
disk_sha=$( (pattern && head -c $(($(stat -c %s "$img/vdb.img") - pattern_bytes)) /dev/zero) |
	sha256sum | cut -d' ' -f1)

# The snapshot phase's HTTP server, on the host's loopback (host_loopback=on).
mkdir "$img/www"
echo "kiln-e2e-snap-$$" >"$img/www/hello.txt"
http_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 -m http.server --bind 127.0.0.1 "$http_port" --directory "$img/www" >"$img/http.log" 2>&1 &
http_pid=$!

# kvm-clock: on hosts that ignore TSC offsets (PVM) the raw TSC runs on across a restore.
cmdline=$(e2e_cmdline "$test_name" clocksource=kvm-clock "kiln.http=$http_port")
kiln_args=(run --kernel "$kernel" --initrd "$initrd"
	--cmdline "$cmdline" --cpus "$cpus" --memory "$memory"
	--serial "file=$log" --console stdio --rng on --api-sock "$sock"
	--disk "path=$img/vda.img,engine=uring,serial=kiln-vda"
	--disk "path=$img/vdb.img,engine=sync"
	--disk "path=$img/vdc.img,readonly=on,engine=sync"
	--disk "path=$img/vdd.img,engine=uring"
	--disk "path=$img/vde.img,engine=uring"
	--disk "path=$img/vdf.img,engine=uring"
	--net "user,host_loopback=on")
snap=$img/snap.state
mem=$img/snap.mem
snap_log=$logdir/e2e-$test_name.snapshot.log

# --- boot ----------------------------------------------------------------------------
# stdin: one line for the guest to read from hvc0, then end of file. It is written only once
# the guest has hvc0 open (its first line there says so): input that reaches the console
# before anyone has the tty open waits in the guest driver for an interrupt that never comes.
: >"$log"
: >"$hvc"
mkfifo "$img/stdin"
# Once the guest says KILN_SNAP_READY on hvc0: snapshot it (left paused), keep a copy of vdf as
# it is at that moment (the restores need the disk that matches the memory), resume it and
# tell it "orig". The snapshot's time goes to $img/snap.time.
wait_for() { # FILE TEXT DEADLINE
	until grep -aq "$2" "$1"; do
		[ "$(date +%s)" -lt "$3" ] || return 1
		sleep 1
	done
}
(
	exec 4>"$img/stdin"
	deadline=$(($(date +%s) + timeout_s))
	wait_for "$hvc" KILN_HVC0_FROM_GUEST "$deadline" || exit 0
	printf '%s\n' "$host_line" >&4
	wait_for "$hvc" KILN_SNAP_READY "$deadline" || exit 0
	if "$kiln" snapshot --api-sock "$sock" --snapshot-path "$snap" --mem-file-path "$mem" \
		--leave-paused >"$snap_log" 2>&1; then
		date +%s >"$img/snap.time"
		cp --sparse=always "$img/vdf.img" "$img/vdf.snap.img"
	fi
	curl -s --unix-socket "$sock" -X PATCH -d '{"state": "Resumed"}' http://localhost/vm \
		>>"$snap_log" 2>&1
	printf 'orig\n' >&4
	sleep 300 # EOF only after the guest had time to read
) &
feeder=$!
e2e_run "$img/stdin" "$hvc" "${kiln_args[@]}"
kill "$feeder" 2>/dev/null || true
orig_rc=$rc orig_timed_out=$timed_out
# on_vdf MARKER: how many lines of vdf.img hold MARKER (0 for an empty one)
on_vdf() { if [ -n "$1" ]; then grep -ac -- "$1" "$img/vdf.img" || true; else echo 0; fi; }
vdf_orig_marker=$(on_vdf "$(tr -d '\r' <"$log" | sed -n 's/^.*KILN_SNAP_AFTER=//p' | head -n1)")

# --- restores ------------------------------------------------------------------------
# restore NAME: vdf back to its state at the snapshot, then `kiln restore` with the line NAME
# for the guest on hvc0 (both its consoles go to $logdir/e2e-virtio.NAME.log). Sets rc_NAME,
# gap_NAME (seconds from the snapshot to the restore) and vdf_NAME (how often the guest's
# after-restore marker is on vdf.img).
restore() {
	local name=$1 out=$logdir/e2e-$test_name.$1.log t_snap rrc=0
	: >"$out"
	[ -s "$img/snap.time" ] || { eval "rc_$name=none"; return; }
	cp --sparse=always "$img/vdf.snap.img" "$img/vdf.img"
	rm -f "$img/stdin"
	mkfifo "$img/stdin"
	t_snap=$(cat "$img/snap.time")
	# at least 40 s after the snapshot, so that a clock that ran on would show it
	while [ $(($(date +%s) - t_snap)) -lt 40 ]; do sleep 1; done
	eval "gap_$name=$(($(date +%s) - t_snap))"
	(
		exec 4>"$img/stdin"
		sleep 1
		printf '%s\n' "$name" >&4
		sleep 300
	) &
	local feeder=$!
	timeout -s KILL "$timeout_s" "$kiln" restore --snapshot "$snap" --mem-file "$mem" \
		<"$img/stdin" >"$out" 2>&1 || rrc=$?
	kill "$feeder" 2>/dev/null || true
	eval "rc_$name=$rrc"
	local count
	count=$(on_vdf "$(tr -d '\r' <"$out" | sed -n 's/^.*KILN_SNAP_AFTER=//p' | head -n1)")
	eval "vdf_$name=$count"
}
restore r1
restore r2

# --- checks ----------------------------------------------------------------------------
e2e_checks_begin
clean_hvc=$(tr -d '\r' <"$hvc")
# shellcheck disable=SC2317 # called through expect
same_pattern() { # IMAGE
	cmp -s <(pattern) <(head -c "$pattern_bytes" "$1")
}
# shellcheck disable=SC2317
tail_zero() { # IMAGE
	cmp -s <(head -c "$pattern_bytes" /dev/zero) <(tail -c +$((pattern_bytes + 1)) "$1")
}
vdd_blocks_after=$(stat -c %b "$img/vdd.img")

rc=$orig_rc timed_out=$orig_timed_out
expect_test_passed "$test_name" "$cpus"
expect_no_line 'KILN_MISSING='
# vda (io_uring): the guest read exactly the host's bytes.
expect_value KILN_VDA_SIZE 1048576
expect_value KILN_VDA_SHA256 "$vda_sha"
# vdb (sync): the pattern is on the host file byte for byte, and nothing beyond it.
expect_value KILN_VDB_WRITE ok
expect_value KILN_VDB_READBACK "$disk_sha"
expect "vdb.img holds the guest's pattern byte for byte" same_pattern "$img/vdb.img"
expect "vdb.img is untouched after the pattern" tail_zero "$img/vdb.img"
# vde (io_uring): the same write through the other engine.
expect_value KILN_VDE_WRITE ok
expect "vde.img holds the guest's pattern byte for byte" same_pattern "$img/vde.img"
expect "vde.img is untouched after the pattern" tail_zero "$img/vde.img"
# vdc: read-only to the guest, unchanged on the host.
expect_value KILN_VDC_SHA256 "$vdc_sha"
expect_value KILN_VDC_GETRO 1
expect_value KILN_VDC_WRITE refused
expect "vdc.img unchanged" [ "$(sha256sum "$img/vdc.img" | cut -d' ' -f1)" = "$vdc_sha" ]
# vdd (io_uring): discard freed the host file's blocks.
expect_value KILN_VDD_DISCARD ok
expect "vdd.img blocks shrank ($vdd_blocks_before -> $vdd_blocks_after)" \
	[ "$vdd_blocks_after" -lt $((vdd_blocks_before / 4)) ]
# rng and console.
expect_value KILN_HWRNG_CURRENT virtio_rng.0
expect_value KILN_HWRNG_BYTES 64
expect_value KILN_VMGENID "KILN0001:00"
expect_value KILN_GED "ACPI0013:00"
expect "hvc0 output reached kiln's stdout" grep -q '^KILN_HVC0_FROM_GUEST$' <<<"$clean_hvc"
expect_value KILN_HVC0_READ "$host_line"
expect_no_line 'needs reset|I/O error'

# --- snapshot and restores ---------------------------------------------------------------
# value FILE KEY: what the guest printed as KEY= in FILE (first line wins)
value() { tr -d '\r' <"$1" | sed -n "s/^.*$2=//p" | head -n1; }
not() { ! "$@"; }
expect_value KILN_SNAP_DHCP 10.0.2.15
expect_value KILN_SNAP_NET_BEFORE "kiln-e2e-snap-$$"
expect_value KILN_SNAP_MOUNT ok
expect "kiln snapshot wrote the state and memory files" [ -s "$img/snap.time" ]
expect_value KILN_SNAP_RUN orig
data_sha=$(value "$log" KILN_SNAP_DATA_SHA256)
marker=$(value "$log" KILN_SNAP_MARKER)
u0=$(value "$log" KILN_SNAP_UPTIME0)
expect "the original synced its after-snapshot marker to vdf.img" [ "${vdf_orig_marker:-0}" -ge 1 ]
urandom_orig=$(value "$log" KILN_SNAP_URANDOM)
for r in r1 r2; do
	out=$logdir/e2e-$test_name.$r.log
	rrc=$(eval echo "\${rc_$r:-none}")
	gap=$(eval echo "\${gap_$r:-0}")
	expect "$r: kiln restore exited 0 (got $rrc)" [ "$rrc" = 0 ]
	expect "$r: the restored guest read '$r' on hvc0" [ "$(value "$out" KILN_SNAP_RUN)" = "$r" ]
	expect "$r: and wrote to hvc0" grep -aq "^KILN_SNAP_HVC0=$r" <(tr -d '\r' <"$out")
	expect "$r: the test ran to its end" grep -aq '^KILN_TEST_PASS virtio' <(tr -d '\r' <"$out")
	expect "$r: the unsynced file is intact, read back from vdf" \
		[ "$(value "$out" KILN_SNAP_DATA_SHA256_AFTER)" = "${data_sha:-none}" ]
	expect "$r: the unsynced marker is intact" \
		[ "$(value "$out" KILN_SNAP_MARKER_AFTER)" = "${marker:-none}" ]
	expect "$r: the new write reached vdf.img" [ "$(eval echo "\${vdf_$r:-0}")" -ge 1 ]
	expect "$r: /dev/hwrng gave 32 bytes" [ "$(value "$out" KILN_SNAP_HWRNG)" = 32 ]
	expect "$r: user-mode network works again (a new passt)" \
		[ "$(value "$out" KILN_SNAP_NET_AFTER)" = "kiln-e2e-snap-$$" ]
	expect "$r: unmounted cleanly" [ "$(value "$out" KILN_SNAP_UMOUNT)" = ok ]
	# The guest's clock must not count the $gap s (at least 40) between the snapshot and the
	# restore: it may advance by the seconds the emulated guest needs to read the line and
	# print its uptime (7.5 s on a PVM host), not by half the gap.
	u1=$(value "$out" KILN_SNAP_UPTIME1)
	expect "$r: uptime did not jump over the ${gap} s gap (${u0} -> ${u1})" \
		awk -v a="$u0" -v b="$u1" -v g="$gap" 'BEGIN { exit !(a != "" && b != "" && b >= a && b - a < g / 2 && g >= 40) }'
	expect "$r: no panic, oops, reset or I/O error" \
		not grep -aEq 'Kernel panic|BUG:|Oops|needs reset|I/O error' "$out"
done
u1=$(value "$logdir/e2e-$test_name.r1.log" KILN_SNAP_URANDOM)
u2=$(value "$logdir/e2e-$test_name.r2.log" KILN_SNAP_URANDOM)
differ=no
[[ ${#u1} = 64 && ${#u2} = 64 && $u1 != "$u2" && $u1 != "$urandom_orig" ]] && differ=yes
expect "two restores read different /dev/urandom ($u1 / $u2)" [ "$differ" = yes ]
e2e_finish "$hvc" "$snap_log" "$logdir/e2e-$test_name.r1.log" "$logdir/e2e-$test_name.r2.log"

