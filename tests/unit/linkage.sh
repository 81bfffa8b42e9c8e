#!/bin/sh
# linkage.sh static|dynamic KILN: check how kiln is linked (docs/design.md, "One static binary").
#   static   KILN has no NEEDED entry and no interpreter, carries the REST API (libmicrohttpd
#            without TLS, and jansson, built statically by scripts/static-libs.sh), and no
#            network stack (user-mode networking is a passt process);
#   dynamic  KILN (the glibc build of tests and hosts without musl) does not list a library it
#            opens only when needed (util/dynlib.h): it would load it, and gnutls with it, into
#            every `kiln run`.
set -eu
kind=${1:?usage: linkage.sh static|dynamic KILN}
kiln=${2:?usage: linkage.sh static|dynamic KILN}

needed() { readelf -d "$1" 2>/dev/null | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'; }

if [ "$kind" = dynamic ]; then
	libs=$(needed "$kiln")
	[ -n "$libs" ] || { echo "linkage: no NEEDED entries read from $kiln" >&2; exit 1; }
	for lib in $libs; do
		case $lib in
		libslirp.so* | libmicrohttpd.so* | libglib-2.0.so* | libgnutls.so*)
			echo "linkage: $kiln links $lib" >&2
			exit 1
			;;
		esac
	done
	echo "linkage: $kiln needs only: $(echo $libs)"
	exit 0
fi
if [ -n "$(needed "$kiln")" ] || readelf -l "$kiln" | grep -q INTERP; then
	echo "linkage: $kiln is not static: it needs $(needed "$kiln" | tr '\n' ' ')" >&2
	exit 1
fi
echo "linkage: $kiln is static"
# The API inside the static kiln: its server and the two libraries' entry points are defined
# (T) in it, libmicrohttpd without TLS (no gnutls symbol came with it).
syms=$(nm "$kiln" 2>/dev/null) || { echo "linkage: cannot read the symbols of $kiln" >&2; exit 1; }
for sym in api_run api_server_start MHD_start_daemon json_pack json_dumps net_passt_create; do
	echo "$syms" | grep -Eq "^[0-9a-f]+ T $sym\$" ||
		{ echo "linkage: $kiln does not define $sym" >&2; exit 1; }
done
if echo "$syms" | grep -Eq ' [TtUu] (gnutls|gcry)_'; then
	echo "linkage: $kiln carries TLS code (gnutls/libgcrypt symbols): libmicrohttpd must be built without it" >&2
	exit 1
fi
# No network stack in the process: libslirp (or glib) must not have come back.
if echo "$syms" | grep -Eq ' [TtUu] (slirp|g_main|g_malloc)'; then
	echo "linkage: $kiln carries libslirp or glib: user-mode networking belongs to passt" >&2
	exit 1
fi
echo "linkage: $kiln has the REST API (libmicrohttpd without TLS, jansson) and no network stack"

# Memory at the first guest byte (docs/design.md, "One static binary"): the kernel maps pages of
# the binary around each one `kiln run` touches, up to the end of a mapping. So the cold code
# and data (src/cold.ld: the API, its libraries, the passt backend) start 2 MiB-aligned in
# PT_LOADs of their own, the cold entry points are there and main() is not.
layout_fail() { echo "linkage: $kiln: $*: cold code and data must be in segments of their own (src/cold.ld)" >&2; exit 1; }
sections=$(readelf -SW "$kiln" | sed -n 's/^ *\[ *[0-9]*\] //p')
sec_field() { # NAME FIELD(2 = address, 4 = size) -> hex, empty if there is no such section
	echo "$sections" | awk -v n="$1" -v f="$2" '$1 == n { print $(f + 1) }'
}
seg_map=$(readelf -lW "$kiln" | sed -n '/Segment Sections/,$p')
for pair in text:.cold.text rodata:.cold.rodata data:.cold.data; do
	hot=.${pair%%:*} cold=${pair#*:}
	addr=$(sec_field "$cold" 2)
	[ -n "$addr" ] || layout_fail "no $cold section"
	[ $((0x$addr % 0x200000)) -eq 0 ] || layout_fail "$cold at 0x$addr, not 2 MiB-aligned"
	echo "$seg_map" | grep -q -- " $cold\( \|\$\)" || layout_fail "$cold is in no segment"
	if echo "$seg_map" | grep -- " $cold\( \|\$\)" | grep -q -- " $hot\( \|\$\)"; then
		layout_fail "$cold shares a segment with $hot"
	fi
done
cold_lo=$((0x$(sec_field .cold.text 2)))
cold_hi=$((cold_lo + 0x$(sec_field .cold.text 4)))
in_cold() { # SYMBOL: is it defined in .cold.text?
	local a
	a=$(echo "$syms" | awk -v s="$1" '$3 == s { print $1; exit }')
	[ -n "$a" ] && [ $((0x$a)) -ge "$cold_lo" ] && [ $((0x$a)) -lt "$cold_hi" ]
}
for sym in api_run api_server_start MHD_start_daemon json_pack net_passt_create; do
	in_cold "$sym" || layout_fail "$sym is not in .cold.text"
done
! in_cold main || layout_fail "main is in .cold.text"
# libmicrohttpd without its constructor (scripts/static-libs.sh): MHD_init runs when the API
# server starts, not in every `kiln run`.
if echo "$syms" | grep -Eq ' T _GNUC_init_helper_'; then
	echo "linkage: $kiln runs libmicrohttpd's constructor at every start (scripts/static-libs.sh builds it without)" >&2
	exit 1
fi
# No large object in the hot read-only data, where it would sit between pages every start
# touches (a 64 KiB zero buffer did): large zeroed buffers belong in .bss.
ro_lo=$((0x$(sec_field .rodata 2)))
ro_hi=$((ro_lo + 0x$(sec_field .rodata 4)))
big=$(nm -S "$kiln" | while read -r a size _ name; do
	[ -n "$name" ] && [ $((0x$size)) -ge 16384 ] && [ $((0x$a)) -ge "$ro_lo" ] &&
		[ $((0x$a)) -lt "$ro_hi" ] && echo "$name"
done || true)
[ -z "$big" ] || { echo "linkage: $kiln: 16 KiB or more in the hot .rodata: $big" >&2; exit 1; }
echo "linkage: $kiln keeps its cold code and data in 2 MiB-aligned segments of their own"
