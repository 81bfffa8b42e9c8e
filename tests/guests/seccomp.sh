#!/bin/bash
# seccomp.sh: the seccomp allowlists of a running kiln (issue 14, docs/security.md), for each
# build given (the static kiln and the glibc one):
#  - `kiln run` and `kiln api` (a VM started over the API, a client connection held open):
#    every thread shows "Seccomp: 2" in /proc/PID/task/*/status, and "Seccomp_filters: 1"
#    where the kernel counts them: one list each, none inherited from the thread that created
#    it (the vCPU threads' creator, the set-up thread, has a list of its own);
#  - `--seccomp off`: none does;
#  - with the test hooks compiled in (-Dtest_hooks=true): each thread kind makes a call outside
#    its list (KILN_TEST_SECCOMP=vcpu|vmm|api|setup; setup: the short-lived thread that creates
#    the vCPUs) and kiln stops with status 159 and one line naming the thread and the call;
#    under `--seccomp log` the same call goes through and kiln runs on.
#
# usage: seccomp.sh HOOKS(yes|no) GUEST KILN...   (GUEST: tick.elf, which runs until stopped)
set -u
hooks=$1 guest=$2
shift 2

. "$(dirname "$0")/lib.sh"
guest_setup seccomp "$guest"
fail() {
	echo "seccomp: FAILED: $*"
	for f in "$dir"/err*; do
		[ -s "$f" ] && { echo "---- $f ----"; tail -n 20 "$f"; }
	done
	exit 1
}

# A new kiln's serial output, none of the last one's left for wait_for to find.
fresh_out() { rm -f "$dir/out"; }

# wait_for FILE REGEX: up to 10 s, while kiln ($pid) runs.
wait_for() {
	for _ in $(seq 200); do
		grep -Eq "$2" "$1" 2>/dev/null && return 0
		kill -0 "$pid" 2>/dev/null || return 1
		sleep 0.05
	done
	return 1
}

# every_thread WANT MIN: each thread of $pid has "Seccomp: WANT" and, with a filter, exactly
# one ("Seccomp_filters: 1", where the kernel shows the count); at least MIN threads.
every_thread() {
	local want=$1 min=$2 n=0 t mode filters name
	for t in /proc/"$pid"/task/*; do
		mode=$(sed -n 's/^Seccomp:[[:space:]]*//p' "$t/status" 2>/dev/null) || continue
		[ -n "$mode" ] || continue
		filters=$(sed -n 's/^Seccomp_filters:[[:space:]]*//p' "$t/status" 2>/dev/null)
		name=$(cat "$t/comm" 2>/dev/null)
		[ "$mode" = "$want" ] || fail "$label: thread $name (${t##*/}) has Seccomp: $mode, not $want"
		[ "$want" = 2 ] && [ -n "$filters" ] && [ "$filters" != 1 ] &&
			fail "$label: thread $name (${t##*/}) runs under $filters filters, not 1"
		n=$((n + 1))
	done
	[ "$n" -ge "$min" ] || fail "$label: $n threads, expected at least $min"
	echo "$label: $n threads, all Seccomp: $want ($(cat /proc/"$pid"/task/*/comm | sort | uniq -c | tr -s ' \n' ' '))"
}

stop_kiln() { # SIGTERM ends kiln with 143
	term_kiln
	[ "$status" = 143 ] || fail "$label: SIGTERM: exit status $status, not 143"
}

api() { # METHOD PATH [BODY]
	curl -s -f --max-time 5 --unix-socket "$dir/api.sock" -X "$1" "http://localhost$2" \
		${3:+-H 'Content-Type: application/json' -d "$3"} >/dev/null
}

# start_api KILN [env...]: `kiln api` on $dir/api.sock, the tick guest started over it.
start_api() {
	local kiln=$1
	shift
	rm -f "$dir/api.sock"
	fresh_out
	env "$@" "$kiln" api --api-sock "$dir/api.sock" </dev/null >"$dir/out" 2>"$dir/err" &
	pid=$!
	for _ in $(seq 100); do [ -S "$dir/api.sock" ] && break; sleep 0.05; done
	kill -0 "$pid" 2>/dev/null || return 1
	api PUT /boot-source "{\"kernel_image_path\": \"$guest\"}" &&
		api PUT /machine-config '{"vcpu_count": 2, "mem_size_mib": 64}' &&
		api PUT /actions '{"action_type": "InstanceStart"}'
}

# expect_stop LABEL REGEX: kiln ($pid) stops by itself with 159 and the line.
expect_stop() {
	for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
	kill -0 "$pid" 2>/dev/null && fail "$1: kiln still runs after a call outside its list"
	wait "$pid"
	status=$?
	pid=""
	[ "$status" = 159 ] || fail "$1: exit status $status, not 159"
	grep -Eq "$2" "$dir/err" || fail "$1: no line matching '$2'"
	echo "$1: $(grep 'kiln: seccomp' "$dir/err" | head -n1 | cut -c1-110)..."
}

for kiln in "$@"; do
	b=$(basename "$kiln")
	run=("$kiln" run --kernel "$guest" --cpus 2 --memory 64M --serial "file=$dir/out")

	label="$b run"
	fresh_out
	"${run[@]}" </dev/null >/dev/null 2>"$dir/err" &
	pid=$!
	wait_for "$dir/out" '^tick 2 ' || fail "$label: the guest did not tick"
	every_thread 2 3 # main (event loop), vcpu0, vcpu1
	stop_kiln

	label="$b run --seccomp off"
	fresh_out
	"${run[@]}" --seccomp off </dev/null >/dev/null 2>"$dir/err" &
	pid=$!
	wait_for "$dir/out" '^tick 2 ' || fail "$label: the guest did not tick"
	every_thread 0 3
	stop_kiln

	label="$b api"
	start_api "$kiln" || fail "$label: the VM did not start over the API"
	wait_for "$dir/out" '^tick 2 ' || fail "$label: the guest did not tick"
	# A connection held open has a thread of its own (libmicrohttpd).
	python3 -c 'import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); time.sleep(3)' "$dir/api.sock" &
	holder=$!
	sleep 0.5
	# main, vcpu0, vcpu1, the watchdog, libmicrohttpd's listener and the held connection
	every_thread 2 6
	kill "$holder" 2>/dev/null
	wait "$holder" 2>/dev/null
	stop_kiln

	if [ "$hooks" != yes ]; then
		echo "$b: test hooks not compiled in (-Dtest_hooks=false): violations not tried"
		continue
	fi
	KILN_TEST_SECCOMP=vcpu "${run[@]}" </dev/null >/dev/null 2>"$dir/err" &
	pid=$!
	expect_stop "$b vcpu" \
		'^kiln: seccomp: thread vcpu[01] made system call 16 \(ioctl, arguments 0x[0-9a-f]+, 0xae01\), which its allowlist does not allow'
	KILN_TEST_SECCOMP=vmm "${run[@]}" </dev/null >/dev/null 2>"$dir/err" &
	pid=$!
	expect_stop "$b event loop" '^kiln: seccomp: thread event-loop made system call 59 \(execve'
	# The set-up thread: KVM_CREATE_VM (0xae01) is the main thread's alone.
	KILN_TEST_SECCOMP=setup "${run[@]}" </dev/null >/dev/null 2>"$dir/err" &
	pid=$!
	expect_stop "$b set-up" \
		'^kiln: seccomp: thread vcpu-setup made system call 16 \(ioctl, arguments 0x[0-9a-f]+, 0xae01\), which its allowlist does not allow'
	# ... and over the API: InstanceStart's set-up thread.
	start_api "$kiln" KILN_TEST_SECCOMP=setup
	expect_stop "$b api set-up" '^kiln: seccomp: thread vcpu-setup made system call 16 \(ioctl'
	rm -f "$dir/api.sock"
	KILN_TEST_SECCOMP=api "$kiln" api --api-sock "$dir/api.sock" </dev/null >/dev/null 2>"$dir/err" &
	pid=$!
	expect_stop "$b api" '^kiln: seccomp: thread api made system call 59 \(execve'

	label="$b run --seccomp log"
	fresh_out
	KILN_TEST_SECCOMP=vmm "${run[@]}" --seccomp log </dev/null >/dev/null 2>"$dir/err" &
	pid=$!
	wait_for "$dir/out" '^tick 2 ' || fail "$label: the guest did not tick"
	grep -q "the event loop's forbidden call went through\|the vmm thread's forbidden call went through" "$dir/err" ||
		fail "$label: the call did not go through"
	grep -q 'kiln: seccomp: thread' "$dir/err" && fail "$label: stopped on the call"
	every_thread 2 3
	stop_kiln
	echo "$label: the call went through, kiln ran on"

	label="$b run --seccomp log (set-up thread)"
	fresh_out
	KILN_TEST_SECCOMP=setup "${run[@]}" --seccomp log </dev/null >/dev/null 2>"$dir/err" &
	pid=$!
	wait_for "$dir/out" '^tick 2 ' || fail "$label: the guest did not tick"
	grep -q "the setup thread's forbidden call went through" "$dir/err" ||
		fail "$label: the call did not go through"
	grep -q 'kiln: seccomp: thread' "$dir/err" && fail "$label: stopped on the call"
	stop_kiln
	echo "$label: the call went through, kiln ran on"
done
echo "PASS seccomp"
