#!/usr/bin/env bash
# Real-guest e2e test: virtio-net over a TAP and over user-mode networking (passt), one boot.
#
# Usage: tests/e2e/net.sh KILN GUESTDIR [debian|kiln|auto]    (see lib.sh)
# Environment: E2E_NET_MIB  MiB sent each way over the TAP (default 2); lib.sh's variables.
#   The default is small because of this test host, not kiln: with guest kernel code emulated
#   (PVM), the guest's TCP stack copies 20-90 KB/s: on the Intel PVM host 4 MiB took 141 s
#   in and 181 s out (guest time); on the AMD one 64 MiB took 763 s in and 1364 s out.
#   E2E_NET_MIB=64 runs the full size.
# Needs root (a network namespace with a TAP in it), ip(8) and python3. Everything runs inside
# that namespace: kiln, the TAP (host side 10.77.0.1/24), a server that sends and receives
# E2E_NET_MIB MiB (netserve.py), an HTTP server on the namespace's loopback, and the client of
# the hostfwd port. The guest side is guest/tests/net.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/e2e/lib.sh
. "$here/lib.sh"
e2e_init net "$@"
cpus=2
memory=256M
mib=${E2E_NET_MIB:-2}
mtu=1400
[ "$(id -u)" = 0 ] || e2e_fail_setup "needs root for a network namespace and a TAP"
command -v ip >/dev/null || e2e_fail_setup "ip(8) is missing (iproute2)"
command -v python3 >/dev/null || e2e_fail_setup "python3 is missing"
[ -c /dev/net/tun ] || e2e_fail_setup "/dev/net/tun is missing"

ns=kiln-e2e-net-$$
work=$(mktemp -d "${TMPDIR:-/tmp}/kiln-e2e-net.XXXXXX")
pids=()
e2e_cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	# and whatever still runs in the namespace (the servers started through in_ns)
	ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null || true
	ip netns del "$ns" 2>/dev/null || true
	rm -rf "$work"
}
trap e2e_cleanup EXIT
in_ns() { ip netns exec "$ns" "$@"; }

ip netns add "$ns"
in_ns ip link set lo up
in_ns ip tuntap add dev ktap0 mode tap
in_ns ip addr add 10.77.0.1/24 dev ktap0
in_ns ip link set ktap0 up

head -c $((mib * 1048576)) /dev/urandom >"$work/blob"
blob_sha=$(sha256sum "$work/blob" | cut -d' ' -f1)
in_ns python3 "$here/netserve.py" 10.77.0.1 5001 5002 "$work/blob" "$work/recv" "$timeout_s" &
pids+=($!)
mkdir "$work/www"
echo "kiln-e2e-http-$$" >"$work/www/hello.txt"
in_ns python3 -m http.server --bind 127.0.0.1 8000 --directory "$work/www" \
	>"$work/http.log" 2>&1 &
pids+=($!)

# The guest fetches from that server through 10.0.2.2, so the user-mode interface has
# host_loopback=on (off by default).
# hostfwd: once the guest listens, connect to the forwarded port, say a line, and keep what the
# guest says. The host speaks first: Debian 12's passt (2023.03) completes a forwarded
# connection's handshake towards the guest only when it has data to send (docs/guest.md).
: >"$log"
(
	deadline=$(($(date +%s) + timeout_s))
	until grep -aq KILN_NET_LISTENING "$log"; do
		[ "$(date +%s)" -lt "$deadline" ] || exit 1
		sleep 1
	done
	for _ in $(seq 30); do
		in_ns python3 -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", 2222), timeout=60)
s.sendall(b"hello\n")
sys.stdout.write(s.makefile().readline())' >"$work/fwd" 2>/dev/null && [ -s "$work/fwd" ] && exit 0
		sleep 2
	done
) &
pids+=($!)

cmdline=$(e2e_cmdline net "kiln.net_mib=$mib kiln.net_http=8000")
e2e_prefix=(ip netns exec "$ns")
e2e_run /dev/null "$log" run --kernel "$kernel" --initrd "$initrd" --cmdline "$cmdline" \
	--cpus "$cpus" --memory "$memory" --serial "file=$log" \
	--net "tap=ktap0,mtu=$mtu,id=tap0" \
	--net "user,id=user0,host_loopback=on,hostfwd=tcp:127.0.0.1:2222-:8080"
sleep 1 # the hostfwd client writes its file as the guest's nc ends

e2e_checks_begin
expect_test_passed net "$cpus"
expect_no_line 'KILN_MISSING='
expect_value KILN_NET_MTU "$mtu"
expect_value KILN_NET_PING ok
expect_value KILN_NET_RX_BYTES $((mib * 1048576))
expect_value KILN_NET_RX_SHA256 "$blob_sha"
expect_value KILN_NET_TX_DONE 1
expect "the host received the guest's $mib MiB intact" \
	[ "$(cat "$work/recv" 2>/dev/null)" = "$((mib * 1048576)) $blob_sha" ]
expect_value KILN_NET_DHCP 10.0.2.15
expect_value KILN_NET_HTTP "kiln-e2e-http-$$"
expect "hostfwd 127.0.0.1:2222 reached the guest's listener" \
	[ "$(cat "$work/fwd" 2>/dev/null)" = KILN-FWD-OK ]
expect_value KILN_NET_FWD_DONE 0
# guest uptime stamps: receive and send rates over the TAP
read -r _ _ t0 t1 _ t2 < <(grep -a '^KILN_NET_SECONDS' <<<"$clean_log" | head -n1) || true
if [ -n "${t2:-}" ]; then
	awk -v a="$t0" -v b="$t1" -v c="$t2" -v m="$mib" 'BEGIN {
		printf "e2e net: TAP %d MiB in %.1f s (%.2f MiB/s), out %.1f s (%.2f MiB/s), guest time\n",
			m, b - a, m / (b - a + 1e-9), c - b, m / (c - b + 1e-9) }'
fi
e2e_finish
