#!/usr/bin/env bash
# Real-guest e2e test: boots the default guest (guest/build.sh) under kiln once and checks its output.
#
# Usage: tests/e2e/boot.sh KILN GUESTDIR
#   KILN      the kiln executable
#   GUESTDIR  holds vmlinux, initramfs.cpio and kernel-release from guest/build.sh
# Environment: E2E_TIMEOUT  seconds before kiln is killed (default 2400, 40 minutes)
#              E2E_LOGDIR   where the serial log goes (default: the meson-logs
#                           directory beside GUESTDIR, else a temporary directory)
# To check something more in the same boot, add an `expect...` line below.
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
cpus=2
memory=256M
test_name=boot

fail_setup() {
	echo "e2e boot: $*" >&2
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
log=$(cd "$logdir" && pwd)/e2e-$test_name.log

cmdline="console=ttyS0 reboot=k panic=-1 $(tr '\n' ' ' <"$repo/guest/cmdline-extra")kiln.test=$test_name"
kiln_args=(run --kernel "$guest/vmlinux" --initrd "$guest/initramfs.cpio"
	--cmdline "$cmdline" --cpus "$cpus" --memory "$memory" --serial stdio)

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

# --- boot ----------------------------------------------------------------------
echo "e2e boot: $kiln ${kiln_args[*]}" >"$log"
t_start=$(now)
"$kiln" "${kiln_args[@]}" </dev/null >>"$log" 2>&1 &
pid=$!
trap 'kill -KILL "$pid" 2>/dev/null || true' EXIT
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
trap - EXIT
t_end=$(now)
if [ -z "$t_init" ] && grep -aq "$banner" "$log"; then
	t_init=$t_end # appeared between the last poll and the exit
fi

# --- checks --------------------------------------------------------------------
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
# Serial lines end in \r\n; printk from another CPU may share a line.
clean_log=$(tr -d '\r' <"$log")

# expect DESCRIPTION CONDITION...: the condition command succeeds.
expect() {
	local what=$1
	shift
	if "$@"; then ok "$what"; else not_ok "$what"; fi
}
# expect_line REGEX: some line of the guest output matches (grep -E).
expect_line() {
	if grep -Eq -- "$1" <<<"$clean_log"; then ok "output has /$1/"; else not_ok "output has /$1/"; fi
}
# expect_no_line REGEX: no line of the guest output matches.
expect_no_line() {
	local hit
	hit=$(grep -E -m1 -- "$1" <<<"$clean_log" || true)
	if [ -z "$hit" ]; then ok "output lacks /$1/"; else not_ok "output lacks /$1/: $hit"; fi
}
# expect_value KEY WANT: the guest printed KEY=WANT (first KEY= line wins).
expect_value() {
	local got
	got=$(sed -n "s/^.*$1=//p" <<<"$clean_log" | head -n1)
	if [ "$got" = "$2" ]; then ok "$1=$2"; else not_ok "$1: want '$2', got '${got:-<none>}'"; fi
}

expect "kiln exited before E2E_TIMEOUT=${timeout_s}s" [ "$timed_out" = 0 ]
expect "kiln exit status 0 (got $rc)" [ "$rc" = 0 ]
expect_line "$banner, kernel [^ ]+, $cpus cpus"
expect_value KILN_UNAME "$(cat "$guest/kernel-release")"
expect_value KILN_NPROC "$cpus"
expect_line "^KILN_TEST_PASS $test_name\$"
expect_line "^kiln-guest: test $test_name exited with status 0\$"
expect_no_line 'kiln-guest: unknown test'
expect_no_line 'Kernel panic|BUG:|Oops|general protection fault|double fault'

# --- report --------------------------------------------------------------------
if [ -n "$t_init" ]; then
	to_init="$(elapsed "$t_start" "$t_init") s"
else
	to_init="n/a"
fi
echo "e2e boot: exec->/init $to_init, total $(elapsed "$t_start" "$t_end") s"
echo "e2e boot: checks: $passed passed, $failed failed"
if [ "$failed" -gt 0 ]; then
	echo "e2e boot: serial log $log, last 60 lines:"
	tail -n 60 "$log" | tr -d '\r' | sed 's/^/  | /'
	exit 1
fi
if [ "$keep_log" = 0 ]; then
	rm -rf "$logdir"
else
	echo "e2e boot: serial log $log"
fi
exit 0
