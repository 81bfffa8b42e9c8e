# lib.sh: what the guest tests share (sourced: `. /tests/lib.sh`; busybox ash).
#
# Where guest kernel code is emulated (a PVM host), every new process costs seconds of guest
# time: fork and exec are page faults, each a trip through the emulator. So the tests use
# shell builtins wherever they can (read for files, parameter expansion for text, `bsleep`
# for waits) and write a command's output to a file rather than capture it with $(...),
# which costs a subshell on top of the command (docs/guest.md, "Boot time").

# stamp STEP: prints "KILN_T STEP UPTIME", when STEP began, so the host's log shows where the
# guest's time goes.
# uptime_now: sets $up to the guest's uptime in seconds.
uptime_now() { read -r up _ </proc/uptime; }

stamp() {
	uptime_now
	echo "KILN_T $1 $up"
}

# bsleep N: sleeps N seconds without a process: read with a timeout on a FIFO that nobody
# writes (made once, on the first call).
bsleep() {
	if [ ! -p /tmp/.kiln-sleep ]; then
		mkfifo /tmp/.kiln-sleep
		exec 9<>/tmp/.kiln-sleep
	fi
	read -r -t "$1" _ <&9
	return 0
}

# wait_dev PATH...: waits (up to 300 s each) for each PATH to appear; prints
# KILN_MISSING=NAME for one that does not.
wait_dev() {
	local d n
	for d in "$@"; do
		n=0
		while [ ! -e "$d" ] && [ $n -lt 300 ]; do
			bsleep 1
			n=$((n + 1))
		done
		[ -e "$d" ] || echo "KILN_MISSING=${d##*/}"
	done
}

# sha FILE: sets $sha to FILE's sha256 (one process, no subshell).
sha() {
	sha=
	sha256sum "$1" >/tmp/.kiln-sha 2>/dev/null && read -r sha _ </tmp/.kiln-sha
}

# fsize FILE: sets $size to FILE's size in bytes.
fsize() {
	size=
	stat -c %s "$1" >/tmp/.kiln-size 2>/dev/null && read -r size </tmp/.kiln-size
}

# hexrand N: sets $hex to N bytes of /dev/urandom in hex.
hexrand() {
	local line
	hex=
	od -An -tx1 -N "$1" /dev/urandom >/tmp/.kiln-hex || return
	while read -r line; do hex=$hex${line// /}; done </tmp/.kiln-hex
}

# arg NAME: sets $val to the value of NAME=... on the kernel command line (empty if absent).
arg() {
	local a cmdline
	val=
	read -r cmdline </proc/cmdline
	set -f # no globbing of command-line words
	for a in $cmdline; do
		case $a in
		"$1"=*) val=${a#*=} ;;
		esac
	done
	set +f
}

# dhcp IFACE: brings IFACE up and takes a lease through udhcpc (its event script, net-dhcp,
# applies it and writes the address to /tmp/dhcp-ip); sets $leased to the address, or to
# "failed".
dhcp() {
	leased=failed
	ip link set "$1" up
	udhcpc -i "$1" -n -q -t 10 -T 3 -s /tests/net-dhcp >/dev/null 2>&1 &&
		read -r leased </tmp/dhcp-ip
}

# http_get URL: sets $body to the first line at URL (empty if it gives nothing in 120 s).
# (no wget -T: busybox-static 1.35 wget crashes on it, on any host)
http_get() {
	body=
	rm -f /tmp/.kiln-http
	timeout 120 wget -q -O /tmp/.kiln-http "$1" 2>/dev/null
	[ -s /tmp/.kiln-http ] && read -r body </tmp/.kiln-http
	return 0
}
