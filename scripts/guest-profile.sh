#!/usr/bin/env bash
# guest-profile.sh: where a running guest's vCPUs spend their time, by sampling.
#
# Usage: scripts/guest-profile.sh KILN_PID KILN_LOG VMLINUX [SECONDS] [INTERVAL]
#   KILN_PID  a running `kiln run` (or `kiln api`) process
#   KILN_LOG  the file its log lines go to (its stderr, or PUT /logger's log_path)
#   VMLINUX   the guest kernel with symbols (build/guest/vmlinux-kiln, or Debian's vmlinux)
#   SECONDS   how long to sample (default 60); INTERVAL between samples (default 0.2)
#
# Each SIGUSR1 makes kiln log every vCPU's registers ("vcpu N: rip 0x... ", src/vmm/vcpu.c).
# This sends one every INTERVAL, then maps the RIPs the log gained to the kernel's symbols
# (nm) and prints a histogram: samples, share, function. User-mode RIPs count as "[user]".
# Where guest kernel code is emulated (a PVM host) a sample lands where the emulator spends
# its time, which is what a boot-time investigation wants (docs/guest.md, "Boot time").
set -euo pipefail
if [ $# -lt 3 ]; then
	sed -n '3,8p' "$0" >&2
	exit 2
fi
pid=$1 log=$2 vmlinux=$3 seconds=${4:-60} interval=${5:-0.2}
kill -0 "$pid" 2>/dev/null || { echo "guest-profile: no process $pid" >&2; exit 1; }
[ -r "$log" ] || { echo "guest-profile: cannot read $log" >&2; exit 1; }
[ -r "$vmlinux" ] || { echo "guest-profile: cannot read $vmlinux" >&2; exit 1; }
command -v nm >/dev/null || { echo "guest-profile: nm is missing (binutils)" >&2; exit 1; }

start=$(wc -c <"$log")
end_t=$(($(date +%s) + seconds))
while [ "$(date +%s)" -lt "$end_t" ] && kill -USR1 "$pid" 2>/dev/null; do
	sleep "$interval"
done
sleep 1 # the last dumps

syms=$(mktemp)
trap 'rm -f "$syms"' EXIT
nm -n "$vmlinux" | awk '$2 ~ /^[tTwW]$/ { print $1, $3 }' >"$syms"
tail -c +$((start + 1)) "$log" | grep -ao 'vcpu [0-9]*: rip 0x[0-9a-f]*' |
	awk -v syms="$syms" '
	BEGIN {
		while ((getline line < syms) > 0) {
			split(line, f, " ")
			n++
			addr[n] = f[1]
			name[n] = f[2]
		}
	}
	function hex2num(h,    i, c, v) {
		v = 0
		h = tolower(h)
		for (i = 1; i <= length(h); i++) {
			c = index("0123456789abcdef", substr(h, i, 1)) - 1
			v = v * 16 + c
		}
		return v
	}
	function lookup(r,    lo, hi, mid) {
		# user-mode addresses are below the kernel half
		if (length(r) < 16 || substr(r, 1, 4) != "ffff")
			return "[user]"
		lo = 1
		hi = n
		if (n == 0 || r < addr[1])
			return "[unknown]"
		while (lo < hi) {
			mid = int((lo + hi + 1) / 2)
			if (addr[mid] <= r) lo = mid; else hi = mid - 1
		}
		return name[lo]
	}
	{
		r = $4
		sub(/^0x/, "", r)
		while (length(r) < 16) r = "0" r
		hits[lookup(r)]++
		total++
	}
	END {
		if (total == 0) { print "guest-profile: no samples in the log" > "/dev/stderr"; exit 1 }
		for (fn in hits) printf "%6d %5.1f%% %s\n", hits[fn], 100 * hits[fn] / total, fn
	}' | sort -rn | head -40
