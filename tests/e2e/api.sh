#!/usr/bin/env bash
# Real-guest API test: configures and boots the default guest through `kiln api` (Firecracker's
# getting-started sequence), pauses and resumes it, ends it with SendCtrlAltDel, then starts the
# same guest from GET /vm/config's file with --no-api (until its kernel has found the drive).
#
# Usage: tests/e2e/api.sh KILN GUESTDIR [debian|kiln|auto]    (see lib.sh)
# Environment: E2E_TIMEOUT  seconds allowed for each boot to reach the guest's ticks
#                           (default 2400); E2E_LOGDIR as in boot.sh. Needs curl.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/e2e/lib.sh
. "$here/lib.sh"
e2e_init api "$@"
command -v curl >/dev/null || e2e_fail_setup "curl is missing (scripts/deps.sh installs it)"
pause_s=10
work=$(mktemp -d "${TMPDIR:-/tmp}/kiln-e2e-api.XXXXXX")
sock=$work/api.sock
serial=$log                      # the guest's console (kiln's stdout)
vmm_log=$logdir/e2e-api-kiln.log # PUT /logger
metrics=$work/metrics.json
pid=
e2e_cleanup() {
	[ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null || true
	rm -rf "$work"
}
trap e2e_cleanup EXIT
trap 'exit 143' TERM INT

# api METHOD PATH [BODY]: prints "STATUS BODY".
api() {
	local args=(-s --unix-socket "$sock" -X "$1" -w ' %{http_code}' "http://localhost$2")
	[ $# -ge 3 ] && args+=(-H 'Content-Type: application/json' -d "$3")
	local out
	out=$(curl "${args[@]}") || out="curl-failed 000"
	echo "${out##* } ${out% *}"
}
# expect_api WHAT STATUS METHOD PATH [BODY]
expect_api() {
	local what=$1 want=$2
	shift 2
	local got
	got=$(api "$@")
	if [ "${got%% *}" = "$want" ]; then ok "$what ($want)"; else not_ok "$what: want $want, got $got"; fi
}
ticks() { tr -d '\r' <"$serial" | grep -c '^KILN_TICK ' || true; }
# uptime printed with tick N
tick_uptime() { tr -d '\r' <"$serial" | awk -v n="$1" '$1 == "KILN_TICK" && $2 == n { print $3 }'; }
wait_ticks() { # N TIMEOUT_S
	local deadline=$(($(date +%s) + $2))
	while [ "$(ticks)" -lt "$1" ]; do
		kill -0 "$pid" 2>/dev/null || return 1
		[ "$(date +%s)" -lt "$deadline" ] || return 1
		sleep 1
	done
}
wait_exit() { # TIMEOUT_S: sets rc
	local deadline=$(($(date +%s) + $1))
	while kill -0 "$pid" 2>/dev/null && [ "$(date +%s)" -lt "$deadline" ]; do sleep 0.5; done
	kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
	rc=0
	wait "$pid" || rc=$?
	pid=
}

# Guests on this kind of host need guest/cmdline-extra. Their TSC runs on while kiln is paused
# on hosts that ignore TSC offsets, so the guest reads time from kvm-clock, which kiln stops.
boot_args=$(e2e_cmdline api clocksource=kvm-clock)
printf 'KILN-API-DISK-OK' >"$work/rootfs.img"
truncate -s 1M "$work/rootfs.img"

# --- 1. through the API --------------------------------------------------------------
"$kiln" api --api-sock "$sock" --id e2e-api </dev/null >"$serial" 2>&1 &
pid=$!
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done
t0=$(date +%s)
expect_api "PUT /logger" 204 PUT /logger \
	"{\"log_path\": \"$vmm_log\", \"level\": \"Info\", \"show_level\": true, \"show_log_origin\": true}"
expect_api "PUT /metrics" 204 PUT /metrics "{\"metrics_path\": \"$metrics\"}"
expect_api "PUT /boot-source" 204 PUT /boot-source \
	"{\"kernel_image_path\": \"$kernel\", \"initrd_path\": \"$initrd\", \"boot_args\": \"$boot_args\"}"
expect_api "PUT /drives/rootfs" 204 PUT /drives/rootfs \
	"{\"drive_id\": \"rootfs\", \"path_on_host\": \"$work/rootfs.img\", \"is_root_device\": true, \"is_read_only\": false}"
expect_api "PUT /machine-config" 204 PUT /machine-config '{"vcpu_count": 2, "mem_size_mib": 256}'
expect_api "PUT /entropy" 204 PUT /entropy '{}'
expect_api "InstanceStart" 204 PUT /actions '{"action_type": "InstanceStart"}'
expect "GET / says Running" grep -q '"state":"Running"' <<<"$(api GET /)"
expect_api "pre-boot route refused after boot" 400 PUT /machine-config '{"vcpu_count": 1, "mem_size_mib": 256}'

if wait_ticks 5 "$timeout_s"; then
	ok "guest ticking after $(($(date +%s) - t0)) s"
	expect_api "pause" 204 PATCH /vm '{"state": "Paused"}'
	expect "GET / says Paused" grep -q '"state":"Paused"' <<<"$(api GET /)"
	before=$(ticks)
	sleep "$pause_s"
	after=$(ticks)
	expect "no output while paused ($before -> $after ticks)" [ "$before" = "$after" ]
	expect_api "resume" 204 PATCH /vm '{"state": "Resumed"}'
	if wait_ticks $((before + 3)) 120; then
		ok "ticks again after resume"
		# The guest's tick interval is 1 s of sleep plus however long the emulated guest
		# takes to print (seconds on a loaded host), so compare the interval across the
		# pause with the one just before it: a clock that ran on would add the whole pause.
		up=$(tick_uptime $((before - 1)))
		u0=$(tick_uptime "$before")
		u1=$(tick_uptime $((before + 1)))
		expect "guest clock stood still across the ${pause_s} s pause (uptime $up -> $u0 -> $u1)" \
			awk -v z="$up" -v a="$u0" -v b="$u1" -v p="$pause_s" \
			'BEGIN { exit !(z != "" && a != "" && b != "" && (b - a) - (a - z) < p / 2) }'
	else
		not_ok "no ticks after resume"
	fi
	expect_api "FlushMetrics" 204 PUT /actions '{"action_type": "FlushMetrics"}'
	api GET /vm/config | cut -d' ' -f2- >"$work/vm.json"
	expect_api "SendCtrlAltDel" 204 PUT /actions '{"action_type": "SendCtrlAltDel"}'
else
	not_ok "guest never ticked (within ${timeout_s} s)"
fi
wait_exit 60
expect "kiln exited 0 after SendCtrlAltDel (got $rc)" [ "$rc" = 0 ]
expect "the guest read the drive" grep -aq 'KILN_API_VDA=KILN-API-DISK-OK' "$serial"
last=$(tail -n 1 "$metrics" 2>/dev/null || true)
expect "final metrics line with UART bytes" grep -Eq '"uart":\{"tx_bytes":[1-9]' <<<"$last"
expect "the VMM log has the pause" grep -q 'vm: paused' "$vmm_log"

# --- 2. the same guest from GET /vm/config, no API ------------------------------------
# A second Linux boot to the end would double this test's time on a host that emulates guest
# kernel code (docs/guest.md, "Boot time"), so this one runs until the kernel has taken the
# file's command line (without `quiet`, so that it prints) and found the file's drive, then
# SIGTERM stops it: kiln must stop on the signal (exit 143) and log why.
if [ -s "$work/vm.json" ]; then
	sed -i 's/kiln.test=api/kiln.test=api kiln.api_ticks=3/; s/ quiet / /' "$work/vm.json"
	: >"$serial.2"
	"$kiln" api --no-api --config-file "$work/vm.json" </dev/null >"$serial.2" 2>&1 &
	pid=$!
	found_vda='\[vda\] 2048 512-byte logical blocks' # the 1 MiB rootfs.img
	deadline=$(($(date +%s) + timeout_s))
	until grep -aq "$found_vda" "$serial.2"; do
		kill -0 "$pid" 2>/dev/null && [ "$(date +%s)" -lt "$deadline" ] || break
		sleep 1
	done
	kill -TERM "$pid" 2>/dev/null || true
	wait_exit 60
	expect "--no-api --config-file: the kernel took the file's command line" \
		grep -aq 'Kernel command line: .*kiln.test=api kiln.api_ticks=3' "$serial.2"
	expect "--no-api --config-file: the guest found the file's drive" \
		grep -aq "$found_vda" "$serial.2"
	expect "--no-api --config-file: kiln stopped on SIGTERM with 143 (got $rc)" [ "$rc" = 143 ]
	# the file's logger section: the same log as run 1, which ended on SendCtrlAltDel
	expect "--no-api --config-file: the file's log says why it stopped" \
		grep -q 'signal 15: stopping the VM' "$vmm_log"
	cat "$serial.2" >>"$serial"
else
	not_ok "no GET /vm/config to boot from"
fi

e2e_finish
