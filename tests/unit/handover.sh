#!/bin/sh
# handover.sh KILN KILN_FULL: the static kiln hands `kiln api` and `--net user` to kiln-full,
# found next to itself (docs/design.md, "Two builds"), and names it when it is missing.
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

# Without kiln-full: one line naming it, exit 1, for both paths.
"$tmp/kiln" api --api-sock "$tmp/sock" >"$tmp/out" 2>&1
check "api without kiln-full" $? 1 "$tmp/out" '^kiln: the REST API \(kiln api\) needs kiln-full'
[ "$(wc -l <"$tmp/out")" = 1 ] || { echo "handover: more than one line" >&2; fail=1; }
"$tmp/kiln" run --kernel "$tmp/junk" --net user >"$tmp/out" 2>&1
check "--net user without kiln-full" $? 1 "$tmp/out" '^kiln: user-mode networking \(--net user\) needs kiln-full'
[ -e "$tmp/sock" ] && { echo "handover: a socket was created without kiln-full" >&2; fail=1; }

# With kiln-full next to it: kiln-full answers, with the same arguments.
cp "$full" "$tmp/kiln-full"
"$tmp/kiln" api --help >"$tmp/out" 2>&1
check "api --help through kiln-full" $? 0 "$tmp/out" '^usage: kiln api --api-sock PATH'
"$tmp/kiln" api --bogus >"$tmp/out" 2>&1
check "kiln-full parses the api arguments" $? 1 "$tmp/out" "^kiln api: unknown option '--bogus'"
"$tmp/kiln" run --kernel "$tmp/junk" --net user >"$tmp/out" 2>&1
check "--net user reaches kiln-full" $? 1 "$tmp/out" '^kiln: '
grep -q 'needs kiln-full' "$tmp/out" && { echo "handover: kiln-full was not run" >&2; fail=1; }
# Without a user-mode interface the static build does the work: no hand-over message.
rm "$tmp/kiln-full"
"$tmp/kiln" run --kernel "$tmp/junk" >"$tmp/out" 2>&1
check "no user-mode interface, no hand-over" $? 1 "$tmp/out" '^kiln: '
grep -q 'kiln-full' "$tmp/out" && { echo "handover: tried kiln-full" >&2; fail=1; }
exit $fail
