#!/bin/sh
# api_alone.sh KILN: `kiln api` from a directory that holds only the binary, as a jail would
# (docs/design.md, "Two builds"): GET / answers. As root the directory is also the root
# (chroot): no loader, no library, no /proc, no /dev, so nothing but the binary can serve.
set -u
kiln=${1:?usage: api_alone.sh KILN}
command -v curl >/dev/null || { echo "api_alone: curl not found" >&2; exit 77; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kiln-alone.XXXXXX") || exit 2
pid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
mkdir "$tmp/jail"
cp "$kiln" "$tmp/jail/kiln"
if [ "$(id -u)" = 0 ] && command -v chroot >/dev/null; then
	how="chroot into a directory holding only the binary"
	env -i "$(command -v chroot)" "$tmp/jail" /kiln api --api-sock /api.sock --id alone >"$tmp/log" 2>&1 &
else
	how="an empty directory holding only the binary (not root: no chroot)"
	(cd "$tmp/jail" && exec env -i ./kiln api --api-sock api.sock --id alone) >"$tmp/log" 2>&1 &
fi
pid=$!
i=0
while [ ! -S "$tmp/jail/api.sock" ]; do
	i=$((i + 1))
	if [ $i -gt 200 ] || ! kill -0 "$pid" 2>/dev/null; then
		echo "api_alone: no API socket after $((i * 25)) ms ($how); kiln said:" >&2
		cat "$tmp/log" >&2
		exit 1
	fi
	sleep 0.025
done
body=$(curl -sS --max-time 5 --unix-socket "$tmp/jail/api.sock" http://localhost/) || {
	echo "api_alone: GET / failed ($how); kiln said:" >&2
	cat "$tmp/log" >&2
	exit 1
}
case $body in
*'"id"'*'"alone"'*) echo "api_alone: GET / from $how: $body" ;;
*)
	echo "api_alone: GET / answered '$body', want the instance id 'alone' ($how)" >&2
	exit 1
	;;
esac
# The jail holds what it held: the binary and the socket kiln made.
extra=$(ls -A "$tmp/jail" | grep -v -x -e kiln -e api.sock)
[ -z "$extra" ] || { echo "api_alone: kiln left in the jail: $extra" >&2; exit 1; }
