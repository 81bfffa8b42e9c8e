#!/bin/sh
# passt_killed.sh: `kiln run --net user` with a guest that runs on (tick.elf), and its passt
# killed with SIGKILL mid-run. kiln must log why the interface went down (passt's end and how
# it ended), keep running the guest (its COM1 output goes on), and still stop on SIGTERM with
# status 143. Issue 13: user-mode networking is a passt process; its death is not kiln's.
#
# usage: passt_killed.sh KILN GUEST
set -u
kiln=$1 guest=$2
# The passt kiln runs: $KILN_PASST, else the one the build put beside kiln, else passt in PATH.
beside=$(dirname "$(realpath "$kiln")")/passt
if [ -z "${KILN_PASST:-}" ] && [ -x "$beside" ]; then
	want=$beside
elif ! command -v "${KILN_PASST:-passt}" >/dev/null 2>&1; then
	echo "SKIP: no passt (the build makes one beside kiln: meson -Dpasst_from_source=true)"
	exit 77
fi

. "$(dirname "$0")/lib.sh"
guest_setup passt-killed "$guest"
fail() {
	echo "passt killed: FAILED: $*"
	echo "---- kiln's stderr ----"
	cat "$dir/err"
	exit 1
}

KILN_LOG=info "$kiln" run --kernel "$guest" --serial "file=$dir/out" --net user \
	</dev/null >/dev/null 2>"$dir/err" &
pid=$!

# passt is ready, and the guest prints: then find kiln's passt among its children.
for _ in $(seq 100); do
	grep -q "passt (pid [0-9]*) is ready" "$dir/err" && [ -s "$dir/out" ] && break
	kill -0 "$pid" 2>/dev/null || fail "kiln ended on its own"
	sleep 0.1
done
passt=$(sed -n 's/.*passt (pid \([0-9]*\)) is ready.*/\1/p' "$dir/err" | head -n1)
[ -n "$passt" ] || fail "no 'passt ... is ready' line"
[ "$(cat "/proc/$passt/status" 2>/dev/null | sed -n 's/^PPid:[[:space:]]*//p')" = "$pid" ] ||
	fail "pid $passt is not kiln's child"
# Where the CPU has AVX2, passt re-executes itself as passt.avx2.
if [ -n "${want:-}" ]; then
	exe=$(readlink "/proc/$passt/exe")
	[ "$exe" = "$want" ] || [ "$exe" = "$want.avx2" ] ||
		fail "kiln ran $exe, not the passt beside it ($want)"
fi

kill -KILL "$passt"
for _ in $(seq 50); do
	grep -q "was killed by signal 9" "$dir/err" && grep -q "the interface is down" "$dir/err" &&
		break
	sleep 0.1
done
grep -q "net 'net0': passt (pid $passt) was killed by signal 9" "$dir/err" ||
	fail "no log line saying how passt ended"
grep -q "net 'net0': passt (pid $passt) closed its socket: the interface is down (the VM runs on)" \
	"$dir/err" || fail "no log line saying the interface is down"
# reaped: no zombie left behind
if [ -e "/proc/$passt" ]; then
	fail "passt $passt was not reaped ($(sed -n 's/^State:[[:space:]]*//p' "/proc/$passt/status"))"
fi

# The guest runs on: its output keeps growing for a second.
size1=$(wc -c <"$dir/out")
sleep 1
size2=$(wc -c <"$dir/out")
kill -0 "$pid" 2>/dev/null || fail "kiln ended after passt died"
[ "$size2" -gt "$size1" ] || fail "the guest stopped printing after passt died ($size1 bytes)"

term_kiln
[ "$status" -eq 143 ] || fail "exit status $status after SIGTERM, expected 143"
echo "passt killed: ok (guest output $size1 -> $size2 bytes after passt's death, exit $status)"
exit 0
