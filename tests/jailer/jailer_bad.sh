#!/bin/bash
# jailer_bad.sh KILN: `kiln jailer` refuses bad input with one line naming the flag (or path),
# exits nonzero and makes nothing: no directory under the chroot base, no cgroup. A failure in
# a late step (--netns naming a file that is no network namespace: setns fails after the
# chroot, the cgroups and pivot_root) removes the chroot and the cgroups it made. As root only.
set -u
kiln=${1:?usage: jailer_bad.sh KILN}
[ "$(id -u)" = 0 ] || { echo "SKIP: kiln jailer needs root"; exit 77; }
grep -q '^cgroup .* cgroup .*memory' /proc/mounts && grep -q '^cgroup .* cgroup .*pids' /proc/mounts ||
	{ echo "SKIP: no cgroup v1 memory and pids hierarchies"; exit 77; }

base=$(mktemp -d "${TMPDIR:-/tmp}/kiln-jail-bad.XXXXXX") || exit 2
parent=kiln-jail-bad-$$ # our own parent cgroup: other runs cannot disturb the counts
mem=/sys/fs/cgroup/memory/$parent
pids=/sys/fs/cgroup/pids/$parent
cleanup() {
	rmdir "$mem"/* "$pids"/* "$mem" "$pids" 2>/dev/null
	rm -rf "$base"
}
trap cleanup EXIT
touch "$base/not-a-netns"
failures=0

# What the jailer could leave behind: everything under the base, the parent cgroups.
snap() { find "$base" ! -name .err | sort; ls -d "$mem" "$pids" "$mem"/* "$pids"/* 2>/dev/null; }

# check NAME WANT-REGEX ARGS...: exit status nonzero, exactly one line on stderr that
# matches WANT-REGEX, nothing on stdout, and nothing new under $base or in the cgroups.
check() {
	local name=$1 want=$2 out err status lines before left
	shift 2
	before=$(snap)
	out=$("$kiln" jailer "$@" 2>"$base/.err")
	status=$?
	err=$(cat "$base/.err")
	rm -f "$base/.err"
	lines=$(printf '%s' "$err" | grep -c '')
	left=$(diff <(echo "$before") <(snap) | grep '^>' | head -5)
	if [ "$status" -eq 0 ] || [ "$lines" -ne 1 ] || ! printf '%s' "$err" | grep -Eq -- "$want" ||
		[ -n "$out" ] || [ -n "$left" ]; then
		echo "FAIL $name: status $status, stderr ($lines lines) '$err' (want /$want/)," \
			"stdout '$out', left behind: '$left'"
		failures=$((failures + 1))
	else
		echo "ok   $name: $err"
	fi
}

good=(--exec-file "$kiln" --uid 65534 --gid 65534 --chroot-base-dir "$base"
	--parent-cgroup "$parent" --cgroup memory.limit_in_bytes=268435456 --cgroup pids.max=64)
check "bad --id" '--id' --id 'bad/id' "${good[@]}"
check "--id too long" '--id' --id "$(printf 'a%.0s' {1..65})" "${good[@]}"
check "--id missing" '--id is required' "${good[@]}"
check "unknown flag" "unknown option '--bogus'" --id t1 "${good[@]}" --bogus
check "--cgroup without =" "--cgroup: 'memory.limit_in_bytes'" --id t1 "${good[@]}" \
	--cgroup memory.limit_in_bytes
check "--cgroup a path" "--cgroup: 'memory/../x.y=1'" --id t1 "${good[@]}" --cgroup memory/../x.y=1
check "--cgroup no controller" "--cgroup nosuchctl.max.*nosuchctl" --id t1 "${good[@]}" \
	--cgroup nosuchctl.max=1
check "--cgroup-version 3" '--cgroup-version' --id t1 "${good[@]}" --cgroup-version 3
check "--parent-cgroup with .." "--parent-cgroup: 'a/../b'" --id t1 --exec-file "$kiln" --uid 1 \
	--gid 1 --chroot-base-dir "$base" --parent-cgroup a/../b --cgroup pids.max=64
check "--resource-limit unknown" "--resource-limit: unknown resource 'nproc'" --id t1 \
	"${good[@]}" --resource-limit nproc=5
check "--resource-limit not a number" "--resource-limit: 'fsize=12k'" --id t1 "${good[@]}" \
	--resource-limit fsize=12k
check "--uid not a number" "--uid: 'nobody'" --id t1 --exec-file "$kiln" --uid nobody --gid 1 \
	--chroot-base-dir "$base" --parent-cgroup "$parent" --cgroup pids.max=64
check "--gid out of range" "--gid: '4294967296'" --id t1 --exec-file "$kiln" --uid 1 \
	--gid 4294967296 --chroot-base-dir "$base" --parent-cgroup "$parent" --cgroup pids.max=64
check "--exec-file missing" "--exec-file: $base/no-such-kiln" --id t1 --exec-file \
	"$base/no-such-kiln" --uid 1 --gid 1 --chroot-base-dir "$base" --parent-cgroup "$parent" \
	--cgroup pids.max=64
check "--netns missing" "--netns: $base/no-such-ns" --id t1 "${good[@]}" --netns "$base/no-such-ns"
check "--uid twice" '--uid given twice' --id t1 "${good[@]}" --uid 5

# A value the kernel refuses: found while writing it (the chroot and cgroups exist by then),
# undone all the same.
check "--cgroup value refused" "cgroup: write pids.max=lots to .*$parent/t1: Invalid argument" \
	--id t1 "${good[@]}" --cgroup pids.max=lots

# An existing chroot for the id: refused, and what is in it stays as it was.
mkdir -p "$base/kiln/taken/root"
echo keep >"$base/kiln/taken/root/file"
check "existing chroot" "--id: the chroot $base/kiln/taken already exists" --id taken "${good[@]}"
if [ "$(cat "$base/kiln/taken/root/file" 2>/dev/null)" != keep ] ||
	[ "$(find "$base/kiln/taken" | wc -l)" -ne 3 ]; then
	echo "FAIL existing chroot: its contents changed: $(find "$base/kiln/taken")"
	failures=$((failures + 1))
fi
rm -rf "$base/kiln"

# An existing cgroup for the id: refused before anything is made; the cgroup stays.
mkdir -p "$pids/taken2"
check "existing cgroup" "--id: the cgroup $pids/taken2 already exists" --id taken2 "${good[@]}"
[ -d "$pids/taken2" ] || { echo "FAIL existing cgroup: removed"; failures=$((failures + 1)); }
rmdir "$pids/taken2" "$pids"

# A late failure: setns on a plain file fails after the chroot, the cgroups and pivot_root.
# The jailer names the step and removes the chroot tree, its own cgroups and the directories
# it made on the way (here <base>/kiln and the parent cgroups).
# (LeakSanitizer cannot run in a process that left /proc behind: off for these two runs.)
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0
err=$("$kiln" jailer --id late "${good[@]}" --netns "$base/not-a-netns" -- --api-sock /a.sock 2>&1)
status=$?
left=$( (find "$base" -mindepth 1 ! -name not-a-netns; ls -d "$mem" "$pids") 2>/dev/null | head -5)
if [ "$status" -eq 0 ] || ! printf '%s' "$err" | grep -q 'join network namespace.*setns.*Invalid' ||
	[ "$(printf '%s' "$err" | grep -c '')" -ne 1 ] || [ -n "$left" ]; then
	echo "FAIL late failure: status $status, output '$err', left behind: '$left'"
	failures=$((failures + 1))
else
	echo "ok   late failure (setns) undone: $err"
fi

# The same late failure under an existing parent cgroup: the parent stays, the jail's goes.
mkdir "$mem" "$pids"
"$kiln" jailer --id late2 "${good[@]}" --netns "$base/not-a-netns" 2>/dev/null
left=$(ls -A "$mem" "$pids" | grep -c late2)
if [ "$left" -ne 0 ] || ! [ -d "$mem" ] || [ -e "$base/kiln" ]; then
	echo "FAIL late failure with an existing parent cgroup: left $(ls "$mem" "$pids" "$base")"
	failures=$((failures + 1))
else
	echo "ok   late failure under an existing parent cgroup: the parent stays"
fi

[ "$failures" -eq 0 ] || { echo "$failures check(s) failed"; exit 1; }
echo "PASS jailer_bad"
