# lib.sh: what the guest scripts share (flood.sh, console_flood.sh, blk_crash.sh,
# passt_killed.sh). Source it, then call guest_setup.
#
# guest_setup NAME GUEST: meson's SKIP (77) when there is no usable /dev/kvm (no guest can
# run); else a scratch directory in $dir, removed at exit, after kiln ($pid, SIGKILL) and a
# reader the script started ($reader, SIGTERM) when those are set.
guest_setup() {
	if ! [ -c /dev/kvm ] || ! [ -r /dev/kvm ] || ! [ -w /dev/kvm ]; then
		echo "SKIP: guest $(basename "$2") needs /dev/kvm, which this host does not have"
		exit 77
	fi
	dir=$(mktemp -d "${TMPDIR:-/tmp}/kiln-$1.XXXXXX") || exit 2
	pid="" reader=""
	trap guest_cleanup EXIT
}

guest_cleanup() {
	[ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
	[ -n "$reader" ] && kill "$reader" 2>/dev/null
	rm -rf "$dir"
}

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# term_kiln: SIGTERM to kiln ($pid) and wait for it, SIGKILL after 5 s (a kiln that hangs is
# ended, and the caller fails it on $status). Sets $status and $took (ms); clears $pid.
term_kiln() {
	local start killer
	start=$(now_ms)
	kill -TERM "$pid"
	(sleep 5; kill -KILL "$pid") >/dev/null 2>&1 &
	killer=$!
	wait "$pid"
	status=$?
	took=$(($(now_ms) - start))
	pid=""
	kill "$killer" 2>/dev/null
}
