#!/bin/bash
# jailer_v2.sh KILN: `kiln jailer --cgroup-version 2 --new-pid-ns`: the jail's cgroup in the
# unified hierarchy with its controllers enabled down the path and the values written; kiln
# runs as pid 1 of a PID namespace of its own while the jailer waits for it and passes
# SIGTERM on. The limits are memory.max and pids.max where the v2 hierarchy has those
# controllers; a host whose v2 hierarchy has only hugetlb (cgroup v1 for the rest) is checked
# with hugetlb.2MB.max; a v2 hierarchy with neither is a SKIP. As root only; no guest runs.
set -u
kiln=${1:?usage: jailer_v2.sh KILN}
[ "$(id -u)" = 0 ] || { echo "SKIP: kiln jailer needs root"; exit 77; }
v2=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
[ -n "$v2" ] || { echo "SKIP: no cgroup2 hierarchy mounted"; exit 77; }
ctrls=" $(cat "$v2/cgroup.controllers") "
case $ctrls in
*" memory "*" pids "* | *" pids "*" memory "*)
	limits=(memory.max=268435456 pids.max=64) ;;
*" hugetlb "*)
	[ -d /sys/kernel/mm/hugepages/hugepages-2048kB ] ||
		{ echo "SKIP: v2 has hugetlb only, and no 2 MiB pages"; exit 77; }
	limits=(hugetlb.2MB.max=4194304) ;;
*)
	echo "SKIP: the cgroup v2 hierarchy at $v2 has neither memory+pids nor hugetlb ($ctrls)"
	exit 77 ;;
esac

id=kiln-jail-v2-$$
base=$(mktemp -d "${TMPDIR:-/tmp}/kiln-jail-v2.XXXXXX") || exit 2
root=$base/kiln/$id/root
cg=$v2/kiln/$id
jpid=
cleanup() {
	[ -n "$jpid" ] && kill -KILL "$jpid" 2>/dev/null
	[ -s "$root/kiln.pid" ] && kill -KILL "$(cat "$root/kiln.pid")" 2>/dev/null
	for i in $(seq 50); do rmdir "$cg" 2>/dev/null && break; [ -d "$cg" ] || break; sleep 0.1; done
	rm -rf "$base"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; [ -f "$base/log" ] && cat "$base/log"; exit 1; }

"$kiln" jailer --id $id --exec-file "$kiln" --uid 65534 --gid 65534 --chroot-base-dir "$base" \
	--cgroup-version 2 ${limits[@]/#/--cgroup } --new-pid-ns -- --api-sock /api.sock \
	>"$base/log" 2>&1 &
jpid=$!
for i in $(seq 100); do
	[ -S "$root/api.sock" ] && [ -s "$root/kiln.pid" ] && break
	kill -0 $jpid 2>/dev/null || fail "the jailer exited early"
	sleep 0.05
done
[ -S "$root/api.sock" ] || fail "no $root/api.sock after 5 s"
pid=$(cat "$root/kiln.pid")
[ "$pid" != "$jpid" ] || fail "--new-pid-ns: kiln has the jailer's pid"
grep -q "^NSpid:	$pid	1$" /proc/$pid/status || fail "kiln is not pid 1 of a namespace: $(grep NSpid /proc/$pid/status)"
grep -q "^0::/kiln/$id$" /proc/$pid/cgroup || fail "not in 0::/kiln/$id: $(cat /proc/$pid/cgroup)"
for kv in "${limits[@]}"; do
	c=${kv%%.*}
	grep -qw "$c" "$v2/kiln/cgroup.subtree_control" || fail "$c not enabled in $v2/kiln"
	got=$(cat "$cg/${kv%%=*}")
	[ "$got" = "${kv#*=}" ] || fail "$cg/${kv%%=*} holds '$got', not '${kv#*=}'"
done
grep -q '^Uid:	65534	65534	65534	65534$' /proc/$pid/status || fail "$(grep ^Uid /proc/$pid/status)"
grep -q '^CapEff:	0000000000000000$' /proc/$pid/status || fail "$(grep ^CapEff /proc/$pid/status)"

# The waiting jailer passes SIGTERM on and ends with kiln.
kill -TERM $jpid
for i in $(seq 50); do [ -d /proc/$pid ] || break; sleep 0.1; done
[ -d /proc/$pid ] && fail "kiln did not end on SIGTERM to the jailer"
wait $jpid
status=$?
jpid=
# kiln api ends with 128+15 on SIGTERM; a jailer killed by the signal would have left kiln
# running (checked above).
[ "$status" = 143 ] || fail "the jailer exited $status, not kiln's 143 (SIGTERM)"
echo "PASS jailer_v2: ${limits[*]} in $cg, kiln pid 1 of its namespace, jailer exit $status"
