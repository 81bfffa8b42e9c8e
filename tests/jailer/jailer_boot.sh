#!/bin/bash
# jailer_boot.sh KILN GUEST: a tiny guest (tick: prints a line every 100 ms until stopped) boots
# through `kiln jailer` the way Firecracker's callers drive it: --daemonize, cgroup v1 memory
# and pids limits, a network namespace of its own, uid/gid 65534/65533, `kiln api` on /api.sock
# inside the chroot, the kernel copied in and the VM configured over the socket. From outside,
# the test checks that kiln sees only its chroot, runs as the ids with no capability, no
# inherited fd and no environment, is in the cgroups with the limits, and in the namespace.
set -u
kiln=${1:?usage: jailer_boot.sh KILN GUEST}
guest=${2:?usage: jailer_boot.sh KILN GUEST}
[ "$(id -u)" = 0 ] || { echo "SKIP: kiln jailer needs root"; exit 77; }
[ -c /dev/kvm ] || { echo "SKIP: no /dev/kvm"; exit 77; }
for t in ip curl setpriv; do
	command -v $t >/dev/null || { echo "SKIP: $t not found"; exit 77; }
done
grep -q '^cgroup .* cgroup .*memory' /proc/mounts && grep -q '^cgroup .* cgroup .*pids' /proc/mounts ||
	{ echo "SKIP: no cgroup v1 memory and pids hierarchies"; exit 77; }

id=kiln-jail-test-$$
ns=kiln-jail-test-$$
uid=65534
gid=65533
mem_limit=268435456
pids_limit=64
base=$(mktemp -d "${TMPDIR:-/tmp}/kiln-jail.XXXXXX") || exit 2
chmod 755 "$base" # the API client runs as $uid: it must reach the socket
root=$base/kiln/$id/root
pid=
cleanup() {
	[ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
	for i in $(seq 50); do [ -n "$pid" ] && [ -d /proc/$pid ] && sleep 0.1; done
	rmdir /sys/fs/cgroup/memory/kiln/$id /sys/fs/cgroup/pids/kiln/$id 2>/dev/null
	ip netns del $ns 2>/dev/null
	rm -rf "$base"
}
trap cleanup EXIT
fail() {
	echo "FAIL: $*"
	[ -f "$root/serial.log" ] && { echo "--- serial.log (tail)"; tail -5 "$root/serial.log"; }
	exit 1
}
ip netns add $ns || exit 2

# --daemonize: the jailer returns once kiln is exec'd (or with the failing step's line).
out=$("$kiln" jailer --id $id --exec-file "$kiln" --uid $uid --gid $gid --chroot-base-dir "$base" \
	--cgroup memory.limit_in_bytes=$mem_limit --cgroup pids.max=$pids_limit \
	--netns /var/run/netns/$ns --resource-limit no-file=512 --daemonize \
	-- --api-sock /api.sock 2>&1) || fail "kiln jailer exited $?: $out"
for i in $(seq 100); do
	[ -S "$root/api.sock" ] && [ -s "$root/kiln.pid" ] && break
	sleep 0.05
done
[ -S "$root/api.sock" ] || fail "no $root/api.sock after 5 s (jailer said '$out')"
pid=$(cat "$root/kiln.pid")
[ -d /proc/$pid ] || fail "kiln (pid $pid from kiln.pid) is not running"
st=/proc/$pid/status

# The chroot is kiln's root: the same directory, and the jail's contents seen through it.
[ "$(stat -L -c %d:%i /proc/$pid/root)" = "$(stat -c %d:%i "$root")" ] ||
	fail "/proc/$pid/root is not $root"
[ "$(readlink /proc/$pid/exe)" = /kiln ] || fail "kiln runs $(readlink /proc/$pid/exe), not /kiln"
for f in kiln api.sock dev/kvm dev/net/tun; do
	[ -e /proc/$pid/root/$f ] || fail "/$f missing in kiln's root"
done
[ "$(stat -c '%F %t:%T %u:%g %a' "$root/dev/kvm")" = "character special file a:e8 $uid:$gid 600" ] ||
	fail "/dev/kvm in the jail: $(stat -c '%F %t:%T %u:%g %a' "$root/dev/kvm")"
[ "$(stat -c '%t:%T %u:%g' "$root/dev/net/tun")" = "a:c8 $uid:$gid" ] ||
	fail "/dev/net/tun in the jail: $(stat -c '%t:%T %u:%g' "$root/dev/net/tun")"

# The ids and no capability in any set; no new privileges; no supplementary group.
grep -q "^Uid:	$uid	$uid	$uid	$uid$" $st || fail "$(grep ^Uid $st)"
grep -q "^Gid:	$gid	$gid	$gid	$gid$" $st || fail "$(grep ^Gid $st)"
grep -Eq '^Groups:\s*$' $st || fail "$(grep ^Groups $st)"
for c in CapInh CapPrm CapEff CapBnd CapAmb; do
	grep -q "^$c:	0000000000000000$" $st || fail "$(grep ^$c $st)"
done
grep -q '^NoNewPrivs:	1$' $st || fail "$(grep ^NoNewPrivs $st)"
[ "$(grep -c . /proc/$pid/environ)" = 0 ] || fail "kiln has an environment: $(tr '\0' ' ' </proc/$pid/environ)"
grep -q '^Max open files *512 *512' /proc/$pid/limits || fail "$(grep 'Max open files' /proc/$pid/limits)"
# Nothing of the jailer's is open in kiln: no path of the host, only stdio on /dev/null.
leaked=$(for f in /proc/$pid/fd/*; do
	t=$(readlink "$f")
	case $t in /dev/null | anon_inode:* | socket:*) ;; *) echo "${f##*/} -> $t" ;; esac
done)
[ -z "$leaked" ] || fail "kiln has the jailer's fds: $leaked"
[ "$(readlink /proc/$pid/fd/1)" = /dev/null ] || fail "--daemonize: stdout is $(readlink /proc/$pid/fd/1)"

# The cgroups, with the limits; the network namespace.
grep -q "^[0-9]*:memory:/kiln/$id$" /proc/$pid/cgroup || fail "not in memory:/kiln/$id: $(cat /proc/$pid/cgroup)"
grep -q "^[0-9]*:pids:/kiln/$id$" /proc/$pid/cgroup || fail "not in pids:/kiln/$id: $(cat /proc/$pid/cgroup)"
[ "$(cat /sys/fs/cgroup/memory/kiln/$id/memory.limit_in_bytes)" = $mem_limit ] || fail "memory limit"
[ "$(cat /sys/fs/cgroup/pids/kiln/$id/pids.max)" = $pids_limit ] || fail "pids limit"
[ "$(stat -L -c %i /proc/$pid/ns/net)" = "$(stat -L -c %i /var/run/netns/$ns)" ] ||
	fail "kiln is not in the network namespace $ns"

# Boot: the API's client runs as kiln's uid (kiln answers its own uid only).
cp "$guest" "$root/guest.elf" && chmod 644 "$root/guest.elf"
mkdir "$base/client" && chown $uid:$gid "$base/client" # where the client keeps the bodies
api() { # METHOD PATH [BODY]: prints the HTTP status
	setpriv --reuid $uid --regid $gid --clear-groups curl -sS --max-time 10 -o "$base/client/body" \
		-w '%{http_code}' --unix-socket "$root/api.sock" -X "$1" \
		-H 'Content-Type: application/json' ${3:+--data "$3"} "http://localhost$2"
}
for req in "/boot-source|{\"kernel_image_path\": \"/guest.elf\"}" \
	"/machine-config|{\"vcpu_count\": 1, \"mem_size_mib\": 64}" \
	"/serial|{\"serial_out_path\": \"/serial.log\"}" \
	"/actions|{\"action_type\": \"InstanceStart\"}"; do
	code=$(api PUT "${req%%|*}" "${req#*|}")
	[ "$code" = 204 ] || fail "PUT ${req%%|*}: HTTP $code $(cat "$base/client/body" 2>/dev/null)"
done
for i in $(seq 100); do
	grep -q '^tick 3 ' "$root/serial.log" 2>/dev/null && break
	sleep 0.1
done
grep -q '^tick 3 ' "$root/serial.log" 2>/dev/null || fail "the guest printed no 'tick 3' in 10 s"
code=$(api GET /)
grep -q '"state": *"Running"' "$base/client/body" || fail "GET /: HTTP $code $(cat "$base/client/body")"
# The running VM's threads count against the jail's pids cgroup, its memory against memory.
[ "$(cat /sys/fs/cgroup/pids/kiln/$id/pids.current)" -ge 2 ] || fail "pids.current < 2"
[ "$(cat /sys/fs/cgroup/memory/kiln/$id/memory.usage_in_bytes)" -gt 0 ] || fail "no memory use"

kill -TERM "$pid"
for i in $(seq 50); do [ -d /proc/$pid ] || break; sleep 0.1; done
[ -d /proc/$pid ] && fail "kiln did not end on SIGTERM"
pid=
echo "PASS jailer_boot: $(grep -c '^tick' "$root/serial.log") ticks from a jailed kiln"
