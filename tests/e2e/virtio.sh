#!/usr/bin/env bash
# Real-guest e2e test: virtio-blk (both engines, read-only, discard), virtio-rng and virtio-console in one boot.
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
e2e_cleanup() { rm -rf "$img"; }
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
head -c 4194304 /dev/urandom >"$img/vdd.img"
sync "$img/vdd.img"
vdd_blocks_before=$(stat -c %b "$img/vdd.img")
# What the guest writes to vdb (`yes` ends on SIGPIPE: not an error here).
pattern() { yes kiln-virtio-pattern | head -c "$pattern_bytes" || true; }
pattern_sha=$(pattern | sha256sum | cut -d' ' -f1)

cmdline=$(e2e_cmdline "$test_name")
kiln_args=(run --kernel "$kernel" --initrd "$initrd"
	--cmdline "$cmdline" --cpus "$cpus" --memory "$memory"
	--serial "file=$log" --console stdio --rng on
	--disk "path=$img/vda.img,engine=uring,serial=kiln-vda"
	--disk "path=$img/vdb.img,engine=sync"
	--disk "path=$img/vdc.img,readonly=on,engine=sync"
	--disk "path=$img/vdd.img,engine=uring"
	--disk "path=$img/vde.img,engine=uring")

# --- boot ----------------------------------------------------------------------------
# stdin: one line for the guest to read from hvc0, then end of file. It is written only once
# the guest has hvc0 open (its first line there says so): input that reaches the console
# before anyone has the tty open waits in the guest driver for an interrupt that never comes.
: >"$log"
: >"$hvc"
mkfifo "$img/stdin"
(
	exec 4>"$img/stdin"
	deadline=$(($(date +%s) + timeout_s))
	until grep -aq KILN_HVC0_FROM_GUEST "$hvc"; do
		[ "$(date +%s)" -lt "$deadline" ] || exit 0
		sleep 1
	done
	printf '%s\n' "$host_line" >&4
	sleep 300 # EOF only after the guest had time to read
) &
e2e_run "$img/stdin" "$hvc" "${kiln_args[@]}"
kill %1 2>/dev/null || true

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

expect_test_passed "$test_name" "$cpus"
expect_no_line 'KILN_MISSING='
# vda (io_uring): the guest read exactly the host's bytes.
expect_value KILN_VDA_SIZE 1048576
expect_value KILN_VDA_SHA256 "$vda_sha"
# vdb (sync): the pattern is on the host file byte for byte, and nothing beyond it.
expect_value KILN_VDB_WRITE ok
expect_value KILN_VDB_READBACK "$pattern_sha"
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
e2e_finish "$hvc"

