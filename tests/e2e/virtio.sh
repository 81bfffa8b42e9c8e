#!/usr/bin/env bash
# Real-guest e2e test: virtio-blk (both engines, read-only, discard), virtio-rng and virtio-console in one boot.
#
# Usage: tests/e2e/virtio.sh KILN GUESTDIR
#   KILN      the kiln executable
#   GUESTDIR  holds vmlinux, initramfs.cpio and kernel-release from guest/build.sh
# Environment: E2E_TIMEOUT  seconds before kiln is killed (default 2400, 40 minutes)
#              E2E_LOGDIR   where the logs and images go (default: the meson-logs
#                           directory beside GUESTDIR, else a temporary directory)
# The guest side is guest/tests/virtio; it prints KEY=VALUE lines checked here, next to
# host-side checks on the image files and on what the guest wrote to hvc0.
set -euo pipefail

if [ $# -ne 2 ]; then
	echo "usage: $0 KILN GUESTDIR" >&2
	exit 2
fi
kiln=$1
guest=$2
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
timeout_s=${E2E_TIMEOUT:-2400}
cpus=1
memory=256M
test_name=virtio
pattern_bytes=1048576
host_line=KILN_HOST_LINE

fail_setup() {
	echo "e2e $test_name: $*" >&2
	exit 1
}
[ -x "$kiln" ] || fail_setup "kiln '$kiln' is not an executable"
for f in vmlinux initramfs.cpio kernel-release; do
	[ -s "$guest/$f" ] || fail_setup "guest '$guest': no $f (run guest/build.sh $guest)"
done
[ -r "$repo/guest/cmdline-extra" ] || fail_setup "no $repo/guest/cmdline-extra"
[ -c /dev/kvm ] || fail_setup "/dev/kvm is missing: this test needs KVM"
[[ $timeout_s =~ ^[0-9]+$ ]] || fail_setup "E2E_TIMEOUT '$timeout_s' is not a number of seconds"

if [ -n "${E2E_LOGDIR:-}" ]; then
	logdir=$E2E_LOGDIR
	keep_log=1
elif [ -d "$guest/../meson-logs" ]; then
	logdir=$guest/../meson-logs
	keep_log=1
else
	logdir=$(mktemp -d "${TMPDIR:-/tmp}/kiln-e2e.XXXXXX")
	keep_log=0
fi
mkdir -p "$logdir"
logdir=$(cd "$logdir" && pwd)
log=$logdir/e2e-$test_name.log          # serial console + kiln's messages
hvc=$logdir/e2e-$test_name.hvc0.log     # kiln's stdout: what the guest wrote to hvc0
img=$(mktemp -d "$logdir/e2e-$test_name-img.XXXXXX")
trap 'rm -rf "$img"' EXIT

# --- images ----------------------------------------------------------------------
# vda: random content the guest hashes; vdb: zeroes the guest overwrites; vdc: read-only
# (no write permission, readonly=on); vdd: fully allocated data the guest discards.
head -c 1048576 /dev/urandom >"$img/vda.img"
vda_sha=$(sha256sum "$img/vda.img" | cut -d' ' -f1)
truncate -s 2M "$img/vdb.img"
head -c 65536 /dev/urandom >"$img/vdc.img"
vdc_sha=$(sha256sum "$img/vdc.img" | cut -d' ' -f1)
chmod 0444 "$img/vdc.img"
head -c 4194304 /dev/urandom >"$img/vdd.img"
sync "$img/vdd.img"
vdd_blocks_before=$(stat -c %b "$img/vdd.img")
# What the guest writes to vdb (`yes` ends on SIGPIPE: not an error here).
pattern() { yes kiln-virtio-pattern | head -c "$pattern_bytes" || true; }
pattern_sha=$(pattern | sha256sum | cut -d' ' -f1)

cmdline="console=ttyS0 reboot=k panic=-1 $(tr '\n' ' ' <"$repo/guest/cmdline-extra")kiln.test=$test_name"
kiln_args=(run --kernel "$guest/vmlinux" --initrd "$guest/initramfs.cpio"
	--cmdline "$cmdline" --cpus "$cpus" --memory "$memory"
	--serial "file=$log" --console stdio --rng on
	--disk "path=$img/vda.img,engine=uring,serial=kiln-vda"
	--disk "path=$img/vdb.img,engine=sync"
	--disk "path=$img/vdc.img,readonly=on"
	--disk "path=$img/vdd.img,engine=uring")

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

# --- boot ----------------------------------------------------------------------------
echo "e2e $test_name: $kiln ${kiln_args[*]}" >"$log"
: >"$hvc"
t_start=$(now)
# stdin: one line for the guest to read from hvc0, then end of file.
printf '%s\n' "$host_line" | "$kiln" "${kiln_args[@]}" >"$hvc" 2>>"$log" &
pid=$!
trap 'kill -KILL "$pid" 2>/dev/null || true; rm -rf "$img"' EXIT
trap 'exit 143' TERM INT

banner='kiln-guest: init started'
t_init=
timed_out=0
deadline=$(($(date +%s) + timeout_s))
while kill -0 "$pid" 2>/dev/null; do
	if [ -z "$t_init" ] && grep -aq "$banner" "$log"; then
		t_init=$(now)
	fi
	if [ "$(date +%s)" -ge "$deadline" ]; then
		timed_out=1
		kill -TERM "$pid" 2>/dev/null || true
		for _ in $(seq 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.2
		done
		kill -KILL "$pid" 2>/dev/null || true
		break
	fi
	sleep 0.2
done
rc=0
wait "$pid" || rc=$?
t_end=$(now)
if [ -z "$t_init" ] && grep -aq "$banner" "$log"; then
	t_init=$t_end
fi

# --- checks ----------------------------------------------------------------------------
passed=0
failed=0
ok() {
	passed=$((passed + 1))
	echo "ok   $*"
}
not_ok() {
	failed=$((failed + 1))
	echo "FAIL $*"
}
clean_log=$(tr -d '\r' <"$log")
clean_hvc=$(tr -d '\r' <"$hvc")

expect() {
	local what=$1
	shift
	if "$@"; then ok "$what"; else not_ok "$what"; fi
}
expect_line() {
	if grep -Eq -- "$1" <<<"$clean_log"; then ok "output has /$1/"; else not_ok "output has /$1/"; fi
}
expect_no_line() {
	local hit
	hit=$(grep -E -m1 -- "$1" <<<"$clean_log" || true)
	if [ -z "$hit" ]; then ok "output lacks /$1/"; else not_ok "output lacks /$1/: $hit"; fi
}
expect_value() {
	local got
	got=$(sed -n "s/^.*$1=//p" <<<"$clean_log" | head -n1)
	if [ "$got" = "$2" ]; then ok "$1=$2"; else not_ok "$1: want '$2', got '${got:-<none>}'"; fi
}
# shellcheck disable=SC2317 # called through expect
same_pattern() {
	cmp -s <(pattern) <(head -c "$pattern_bytes" "$img/vdb.img")
}
# shellcheck disable=SC2317
vdb_tail_zero() {
	cmp -s <(head -c "$pattern_bytes" /dev/zero) <(tail -c +$((pattern_bytes + 1)) "$img/vdb.img")
}
vdd_blocks_after=$(stat -c %b "$img/vdd.img")

expect "kiln exited before E2E_TIMEOUT=${timeout_s}s" [ "$timed_out" = 0 ]
expect "kiln exit status 0 (got $rc)" [ "$rc" = 0 ]
expect_line "$banner, kernel [^ ]+, $cpus cpus"
expect_no_line 'KILN_MISSING='
# vda (io_uring): the guest read exactly the host's bytes.
expect_value KILN_VDA_SIZE 1048576
expect_value KILN_VDA_SHA256 "$vda_sha"
# vdb (sync): the pattern is on the host file byte for byte, and nothing beyond it.
expect_value KILN_VDB_WRITE ok
expect_value KILN_VDB_READBACK "$pattern_sha"
expect "vdb.img holds the guest's pattern byte for byte" same_pattern
expect "vdb.img is untouched after the pattern" vdb_tail_zero
# vdc: read-only to the guest, unchanged on the host.
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
expect "hvc0 output reached kiln's stdout" grep -q '^KILN_HVC0_FROM_GUEST$' <<<"$clean_hvc"
expect_value KILN_HVC0_READ "$host_line"
expect_line "^KILN_TEST_PASS $test_name\$"
expect_line "^kiln-guest: test $test_name exited with status 0\$"
expect_no_line 'kiln-guest: unknown test'
expect_no_line 'Kernel panic|BUG:|Oops|general protection fault|double fault'
expect_no_line 'needs reset|I/O error'

# --- report ------------------------------------------------------------------------------
if [ -n "$t_init" ]; then
	to_init="$(elapsed "$t_start" "$t_init") s"
else
	to_init="n/a"
fi
echo "e2e $test_name: exec->/init $to_init, total $(elapsed "$t_start" "$t_end") s"
echo "e2e $test_name: checks: $passed passed, $failed failed"
if [ "$failed" -gt 0 ]; then
	echo "e2e $test_name: log $log, last 60 lines:"
	tail -n 60 "$log" | tr -d '\r' | sed 's/^/  | /'
	echo "e2e $test_name: hvc0 output $hvc:"
	tr -d '\r' <"$hvc" | tail -n 20 | sed 's/^/  | /'
	exit 1
fi
if [ "$keep_log" = 0 ]; then
	rm -rf "$logdir"
else
	echo "e2e $test_name: logs $log $hvc"
fi
exit 0
