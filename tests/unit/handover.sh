#!/bin/sh
# handover.sh KILN KILN_FULL: the static kiln hands `--net user` to kiln-full, found next to
# itself (docs/design.md, "Two builds"), and names it when it is missing; `kiln api` it serves
# itself, with or without kiln-full.
set -u
kiln=${1:?usage: handover.sh KILN KILN_FULL}
full=${2:?usage: handover.sh KILN KILN_FULL}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kiln-handover.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT
fail=0
check() { # NAME COMMAND-STATUS EXPECTED-STATUS FILE REGEX
	if [ "$2" != "$3" ] || ! grep -Eq "$5" "$4"; then
		echo "handover: $1: exit $2 (want $3), output:" >&2
		cat "$4" >&2
		fail=1
	else
		echo "handover: $1: ok"
	fi
}

cp "$kiln" "$tmp/kiln"
head -c 4096 /dev/zero >"$tmp/junk" # a "kernel" the command line takes and the loader refuses
"$tmp/kiln" --version >"$tmp/out" 2>&1
check "static build says so" $? 0 "$tmp/out" '^kiln [0-9.]+ \(static\)$'

# Without kiln-full: the static kiln answers `kiln api` itself; --net user is one line naming
# kiln-full, exit 1.
"$tmp/kiln" api --help >"$tmp/out" 2>&1
check "api --help without kiln-full" $? 0 "$tmp/out" '^usage: kiln api --api-sock PATH'
"$tmp/kiln" api --bogus >"$tmp/out" 2>&1
check "the static kiln parses the api arguments" $? 1 "$tmp/out" "^kiln api: unknown option '--bogus'"
[ "$(wc -l <"$tmp/out")" = 1 ] || { echo "handover: more than one line" >&2; fail=1; }
"$tmp/kiln" run --kernel "$tmp/junk" --net user >"$tmp/out" 2>&1
check "--net user without kiln-full" $? 1 "$tmp/out" '^kiln: user-mode networking \(--net user\) needs kiln-full'
[ "$(wc -l <"$tmp/out")" = 1 ] || { echo "handover: more than one line" >&2; fail=1; }

# A kiln-full that only says it ran: `kiln api` must not reach it, --net user must.
printf '#!/bin/sh\necho "fake kiln-full ran: $*"\nexit 3\n' >"$tmp/kiln-full"
chmod +x "$tmp/kiln-full"
"$tmp/kiln" api --help >"$tmp/out" 2>&1
check "api --help with a kiln-full beside it" $? 0 "$tmp/out" '^usage: kiln api --api-sock PATH'
grep -q 'fake kiln-full' "$tmp/out" && { echo "handover: kiln api ran kiln-full" >&2; fail=1; }
"$tmp/kiln" run --kernel "$tmp/junk" --net user >"$tmp/out" 2>&1
check "--net user runs kiln-full with the same arguments" $? 3 "$tmp/out" \
	"^fake kiln-full ran: run --kernel $tmp/junk --net user\$"

# With the real kiln-full next to it: kiln-full answers --net user.
cp "$full" "$tmp/kiln-full"
"$tmp/kiln" run --kernel "$tmp/junk" --net user >"$tmp/out" 2>&1
check "--net user reaches kiln-full" $? 1 "$tmp/out" '^kiln: '
grep -q 'needs kiln-full' "$tmp/out" && { echo "handover: kiln-full was not run" >&2; fail=1; }
# Without a user-mode interface the static build does the work: no hand-over message.
rm "$tmp/kiln-full"
"$tmp/kiln" run --kernel "$tmp/junk" >"$tmp/out" 2>&1
check "no user-mode interface, no hand-over" $? 1 "$tmp/out" '^kiln: '
grep -q 'kiln-full' "$tmp/out" && { echo "handover: tried kiln-full" >&2; fail=1; }
exit $fail
