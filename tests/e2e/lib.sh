# lib.sh: shared parts of the real-guest tests (sourced by boot.sh, virtio.sh, api.sh, ...).
#
# A test script does:
#   . "$here/lib.sh"
#   e2e_init NAME "$@"            # parses KILN GUESTDIR [FLAVOR], sets the variables below
#   ... prepare, then e2e_run ARGS... (or its own launch, as api.sh does)
#   e2e_checks_begin; expect...; e2e_finish
#
# FLAVOR picks the guest kernel from GUESTDIR (both built by `make guest`):
#   debian  vmlinux, initramfs.cpio, kernel-release: Debian's unmodified cloud kernel
#   kiln    vmlinux-kiln, initramfs-kiln.cpio, kernel-kiln-release: guest/build-kernel.sh's
#           minimal kernel (drivers built in; works on PVM hosts, see docs/guest.md)
#   auto    (default) kiln on a PVM host, debian elsewhere
# Environment: E2E_TIMEOUT  seconds before kiln is killed (default 2400)
#              E2E_LOGDIR   where logs go (default: meson-logs beside GUESTDIR, else a
#                           temporary directory removed on success)
# Sets: kiln guest flavor kernel initrd krel repo timeout_s logdir keep_log log host_pvm

e2e_fail_setup() {
	echo "e2e $e2e_name: $*" >&2
	exit 1
}

e2e_init() {
	e2e_name=$1
	shift
	if [ $# -lt 2 ] || [ $# -gt 3 ]; then
		echo "usage: $0 KILN GUESTDIR [debian|kiln|auto]" >&2
		exit 2
	fi
	kiln=$1
	guest=$2
	flavor=${3:-auto}
	repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
	timeout_s=${E2E_TIMEOUT:-2400}
	host_pvm=0
	[ -d /sys/module/kvm_pvm ] && host_pvm=1
	if [ "$flavor" = auto ]; then
		flavor=debian
		[ "$host_pvm" = 1 ] && flavor=kiln
	fi
	case $flavor in
	debian) kernel=$guest/vmlinux initrd=$guest/initramfs.cpio krel=$guest/kernel-release ;;
	kiln)
		kernel=$guest/vmlinux-kiln initrd=$guest/initramfs-kiln.cpio
		krel=$guest/kernel-kiln-release
		;;
	*) e2e_fail_setup "unknown guest flavor '$flavor' (debian, kiln or auto)" ;;
	esac
	[ -x "$kiln" ] || e2e_fail_setup "kiln '$kiln' is not an executable"
	for f in "$kernel" "$initrd" "$krel"; do
		[ -s "$f" ] || e2e_fail_setup "no $f (run: make guest)"
	done
	[ -r "$repo/guest/cmdline-extra" ] || e2e_fail_setup "no $repo/guest/cmdline-extra"
	if ! [ -c /dev/kvm ]; then
		# meson's SKIP: tests/run.sh counts and lists it
		echo "SKIP: e2e $e2e_name needs /dev/kvm, which this host does not have"
		exit 77
	fi
	[[ $timeout_s =~ ^[0-9]+$ ]] || e2e_fail_setup "E2E_TIMEOUT '$timeout_s' is not a number"

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
	log=$logdir/e2e-$e2e_name.log
	echo "e2e $e2e_name: $flavor kernel $(cat "$krel")"
}

# e2e_cmdline TEST [WORDS...]: the guest command line for kiln.test=TEST.
e2e_cmdline() {
	local t=$1
	shift
	echo "console=ttyS0 reboot=k panic=-1 $(tr '\n' ' ' <"$repo/guest/cmdline-extra")$* kiln.test=$t"
}

e2e_now() { date +%s.%N; }
e2e_elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

e2e_banner='kiln-guest: init started'
e2e_prefix=()

# e2e_run STDIN STDOUT ARGS...: run "${e2e_prefix[@]} $kiln ARGS..." (e2e_prefix: a command
# such as `ip netns exec NS`, empty by default) with stdin from STDIN and stdout to STDOUT
# (stderr to $log), until it exits or E2E_TIMEOUT. Sets rc, timed_out, t_start, t_init, t_end.
# The guest's serial console must go to $log (--serial file=$log, or STDOUT=$log).
e2e_run() {
	local in=$1 out=$2
	shift 2
	echo "e2e $e2e_name: $kiln $*" >>"$log"
	t_start=$(e2e_now)
	"${e2e_prefix[@]}" "$kiln" "$@" <"$in" >>"$out" 2>>"$log" &
	e2e_pid=$!
	trap 'kill -KILL "$e2e_pid" 2>/dev/null || true; e2e_cleanup' EXIT
	trap 'exit 143' TERM INT
	t_init=
	timed_out=0
	local deadline=$(($(date +%s) + timeout_s))
	while kill -0 "$e2e_pid" 2>/dev/null; do
		if [ -z "$t_init" ] && grep -aq "$e2e_banner" "$log"; then
			t_init=$(e2e_now)
		fi
		if [ "$(date +%s)" -ge "$deadline" ]; then
			timed_out=1
			kill -TERM "$e2e_pid" 2>/dev/null || true
			for _ in $(seq 50); do
				kill -0 "$e2e_pid" 2>/dev/null || break
				sleep 0.2
			done
			kill -KILL "$e2e_pid" 2>/dev/null || true
			break
		fi
		sleep 0.2
	done
	rc=0
	wait "$e2e_pid" || rc=$?
	t_end=$(e2e_now)
	if [ -z "$t_init" ] && grep -aq "$e2e_banner" "$log"; then
		t_init=$t_end # appeared between the last poll and the exit
	fi
}

# Scripts may redefine this (temporary files to remove on exit).
e2e_cleanup() { :; }

# --- checks ---------------------------------------------------------------------------
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
e2e_checks_begin() { clean_log=$(tr -d '\r' <"$log"); }
# expect DESCRIPTION COMMAND...: the command succeeds.
expect() {
	local what=$1
	shift
	if "$@"; then ok "$what"; else not_ok "$what"; fi
}
# expect_line REGEX: some line of the log matches (grep -E).
expect_line() {
	if grep -Eq -- "$1" <<<"$clean_log"; then ok "output has /$1/"; else not_ok "output has /$1/"; fi
}
# expect_no_line REGEX: no line of the log matches.
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
# The checks every boot that ran kiln.test=TEST with CPUS vCPUs to the end makes.
expect_test_passed() {
	local t=$1 cpus=$2
	expect "kiln exited before E2E_TIMEOUT=${timeout_s}s" [ "$timed_out" = 0 ]
	expect "kiln exit status 0 (got $rc)" [ "$rc" = 0 ]
	expect_line "$e2e_banner, kernel [^ ]+, $cpus cpus"
	expect_value KILN_UNAME "$(cat "$krel")"
	expect_value KILN_NPROC "$cpus"
	expect_line "^KILN_TEST_PASS $t\$"
	expect_line "^kiln-guest: test $t exited with status 0\$"
	expect_no_line 'kiln-guest: unknown test'
	expect_no_line 'Kernel panic|BUG:|Oops|general protection fault|double fault'
}

# e2e_finish [EXTRA_LOG...]: report, print the logs' tails on failure, exit.
e2e_finish() {
	local to_init=n/a f
	[ -n "${t_init:-}" ] && to_init="$(e2e_elapsed "$t_start" "$t_init") s"
	if [ -n "${t_start:-}" ] && [ -n "${t_end:-}" ]; then
		echo "e2e $e2e_name: exec->/init $to_init, total $(e2e_elapsed "$t_start" "$t_end") s"
	fi
	echo "e2e $e2e_name: checks: $passed passed, $failed failed"
	if [ "$failed" -gt 0 ]; then
		for f in "$log" "$@"; do
			echo "e2e $e2e_name: $f, last 60 lines:"
			tail -n 60 "$f" | tr -d '\r' | sed 's/^/  | /'
		done
		exit 1
	fi
	if [ "$keep_log" = 0 ]; then
		rm -rf "$logdir"
	else
		echo "e2e $e2e_name: logs in $logdir"
	fi
	exit 0
}
