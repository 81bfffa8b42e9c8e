#!/usr/bin/env bash
# build.sh: build the benchmark harnesses and guest images into OUTDIR (no kiln, no KVM needed).
#
# Usage: bench/build.sh OUTDIR [EXIT_BYTES]
#   startup density rawkvm   C harnesses (host compiler, warnings are errors)
#   rawkvm-static            rawkvm linked statically with musl-gcc, when it is installed: the
#                            floor for the static kiln (docs/design.md, "Two builds")
#   tiny.bzImage tiny.elf    'K' on COM1 from every entry, then halt with interrupts off
#   flood-N.bzImage          N bytes to COM1 (one OUT each), then i8042 reset (EXIT_BYTES
#                            and 1, for the exit-throughput benchmark and its baseline)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=${1:?usage: bench/build.sh OUTDIR [EXIT_BYTES]}
exit_bytes=${2:-1048576}
cc=${CC:-cc}
mkdir -p "$out"

cflags=(-std=gnu11 -O2 -g -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes
	-Wmissing-prototypes -D_FILE_OFFSET_BITS=64 -I"$here/../src") # bench.h: util/compiler.h
for prog in startup density; do
	"$cc" "${cflags[@]}" -o "$out/$prog" "$here/$prog.c" "$here/vmmproc.c"
done
"$cc" "${cflags[@]}" -o "$out/rawkvm" "$here/rawkvm.c"
if command -v musl-gcc >/dev/null; then
	"$here/../scripts/musl-headers.sh" "$out/musl-include"
	musl-gcc "${cflags[@]}" -static -isystem "$out/musl-include" -o "$out/rawkvm-static" \
		"$here/rawkvm.c"
else
	rm -f "$out/rawkvm-static"
fi

# tiny.S -> bzImage (.setup then .pm, raw) and ELF (elf.ld: .pm at 1 MiB + PVH note)
guest() { # NAME [CPPFLAGS...]
	local name=$1
	shift
	"$cc" "$@" -c -o "$out/$name.o" "$here/guests/tiny.S"
	objcopy -O binary -j .setup "$out/$name.o" "$out/$name.setup"
	objcopy -O binary -j .pm "$out/$name.o" "$out/$name.pm"
	[ "$(stat -c %s "$out/$name.setup")" = 1024 ] || { echo "bench/build.sh: $name: setup is not 1024 bytes" >&2; exit 1; }
	cat "$out/$name.setup" "$out/$name.pm" >"$out/$name.bzImage"
	rm -f "$out/$name.setup" "$out/$name.pm"
}
guest tiny
ld -nostdlib -static -T "$here/guests/elf.ld" --build-id=none -z noexecstack --fatal-warnings \
	-o "$out/tiny.elf" "$out/tiny.o"
guest "flood-$exit_bytes" "-DFLOOD_BYTES=$exit_bytes"
guest flood-1 -DFLOOD_BYTES=1
rm -f "$out"/*.o
