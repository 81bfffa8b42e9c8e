#!/bin/sh
# run.sh: run one test guest under kiln and check its exit status and serial output.
#
# usage: run.sh [--also REGEX]... [--reject REGEX]... [--socket-out] KILN GUEST EXPECT_EXIT
#               EXPECT_REGEX [extra kiln args...]
#
# Runs `KILN run --kernel GUEST --serial stdio [extra args]` under `timeout 60` with stdin from
# /dev/null, stdout and stderr together (--socket-out: into a Unix stream socket, as under a
# supervisor or journald, instead of a file; kiln's log then goes out with sendmsg). Passes when the exit status is EXPECT_EXIT, a line
# matches EXPECT_REGEX (and every --also REGEX; grep -E, CRs stripped), no line matches a
# --reject REGEX and no line starts with "FAIL". Prints the whole output when it fails.
set -u

also=""
reject=""
socket_out=""
while [ $# -gt 0 ]; do
	case "$1" in
	--socket-out)
		socket_out=1
		shift ;;
	--also)
		[ $# -ge 2 ] || { echo "run.sh: --also needs a regex" >&2; exit 2; }
		also="$also
$2"
		shift 2 ;;
	--reject)
		[ $# -ge 2 ] || { echo "run.sh: --reject needs a regex" >&2; exit 2; }
		reject="$reject
$2"
		shift 2 ;;
	*) break ;;
	esac
done
if [ $# -lt 4 ]; then
	echo "usage: run.sh [--also REGEX]... [--reject REGEX]... KILN GUEST EXPECT_EXIT EXPECT_REGEX [kiln args...]" >&2
	exit 2
fi
kiln=$1 guest=$2 expect_exit=$3 expect_re=$4
shift 4
# Without KVM no guest can run: meson's SKIP (77), which tests/run.sh counts and lists.
if ! [ -c /dev/kvm ] || ! [ -r /dev/kvm ] || ! [ -w /dev/kvm ]; then
	echo "SKIP: guest $(basename "$guest") needs /dev/kvm, which this host does not have"
	exit 77
fi

out=$(mktemp "${TMPDIR:-/tmp}/kiln-guest.XXXXXX") || exit 2
trap 'rm -f "$out" "$out.clean"' EXIT INT TERM

if [ -n "$socket_out" ]; then
	# kiln's stdout and stderr: one end of a socketpair; this reader copies the other to $out.
	# Exit status as the shell gives it (128 + a signal's number).
	timeout -k 5 60 python3 -c '
import socket, subprocess, sys
a, b = socket.socketpair()
p = subprocess.Popen(sys.argv[2:], stdin=subprocess.DEVNULL, stdout=b, stderr=b)
b.close()
with open(sys.argv[1], "wb") as f:
    while True:
        d = a.recv(65536)
        if not d:
            break
        f.write(d)
rc = p.wait()
sys.exit(128 - rc if rc < 0 else rc)
' "$out" "$kiln" run --kernel "$guest" --serial stdio "$@" </dev/null
else
	timeout -k 5 60 "$kiln" run --kernel "$guest" --serial stdio "$@" </dev/null >"$out" 2>&1
fi
status=$?
tr -d '\r' <"$out" >"$out.clean"

problems=""
if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
	problems="$problems
timed out after 60 s (exit status $status)"
elif [ "$status" -ne "$expect_exit" ]; then
	problems="$problems
exit status $status, expected $expect_exit"
fi
if ! grep -Eq -- "$expect_re" "$out.clean"; then
	problems="$problems
no line matches /$expect_re/"
fi
if [ -n "$also" ]; then
	# one regex per line of $also (the first line is empty)
	while IFS= read -r re; do
		[ -n "$re" ] || continue
		grep -Eq -- "$re" "$out.clean" || problems="$problems
no line matches /$re/"
	done <<EOF_ALSO
$also
EOF_ALSO
fi
if [ -n "$reject" ]; then
	while IFS= read -r re; do
		[ -n "$re" ] || continue
		grep -Eq -- "$re" "$out.clean" && problems="$problems
a line matches /$re/, which must not appear"
	done <<EOF_REJECT
$reject
EOF_REJECT
fi
if grep -q '^FAIL' "$out.clean"; then
	problems="$problems
the guest printed a FAIL line"
fi

name=$(basename "$guest")
if [ -n "$problems" ]; then
	echo "guest $name ($*): FAILED:$problems"
	echo "---- output of: $kiln run --kernel $guest --serial stdio $* ----"
	cat "$out.clean"
	echo "---- end of output ----"
	exit 1
fi
echo "guest $name: ok (exit $status)"
cat "$out.clean"
exit 0
