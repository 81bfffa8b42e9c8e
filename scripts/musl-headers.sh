#!/bin/sh
# musl-headers.sh DIR: the kernel UAPI and liburing headers for musl-gcc, which searches only
# musl's own include directory: DIR gets a link to each (the static build, docs/design.md).
set -eu
dir=${1:?usage: musl-headers.sh DIR}
multiarch=$(${CC:-cc} -print-multiarch 2>/dev/null || true)
mkdir -p "$dir"
for h in linux asm asm-generic liburing liburing.h; do
	src=
	for d in "/usr/include/$multiarch" /usr/include; do
		[ -e "$d/$h" ] && { src=$d/$h; break; }
	done
	[ -n "$src" ] || { echo "musl-headers: no $h under /usr/include" >&2; exit 1; }
	ln -sfn "$src" "$dir/$h"
done
