#!/bin/sh
# linkage.sh KILN [KILN_FULL]: check how kiln's binaries are linked (docs/design.md, "Two builds").
# A binary that has NEEDED entries must not list a library that kiln opens only when needed
# (util/dynlib.h): it would load that library, and gnutls or glib with it, into every
# `kiln run`. With two arguments KILN is the static build and must have no NEEDED entry and no
# interpreter at all, it must have the REST API linked in (libmicrohttpd and jansson, built
# statically by scripts/static-libs.sh), and KILN_FULL is the dynamic one.
set -eu
kiln=${1:?usage: linkage.sh KILN [KILN_FULL]}
full=${2:-}

needed() { readelf -d "$1" 2>/dev/null | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'; }

check_dynamic() {
	libs=$(needed "$1")
	[ -n "$libs" ] || { echo "linkage: no NEEDED entries read from $1" >&2; return 1; }
	for lib in $libs; do
		case $lib in
		libslirp.so* | libmicrohttpd.so* | libglib-2.0.so* | libgnutls.so*)
			echo "linkage: $1 links $lib, which it should open only when needed" >&2
			return 1
			;;
		esac
	done
	echo "linkage: $1 needs only: $(echo $libs)"
}

if [ -z "$full" ]; then
	check_dynamic "$kiln"
	exit
fi
[ -n "$(needed "$full")" ] || { echo "linkage: $full is static: kiln-full must load libraries" >&2; exit 1; }
if [ -n "$(needed "$kiln")" ] || readelf -l "$kiln" | grep -q INTERP; then
	echo "linkage: $kiln is not static: it needs $(needed "$kiln" | tr '\n' ' ')" >&2
	exit 1
fi
echo "linkage: $kiln is static"
# The API inside the static kiln: its server and the two libraries' entry points are defined
# (T) in it, libmicrohttpd without TLS (no gnutls symbol came with it).
syms=$(nm "$kiln" 2>/dev/null) || { echo "linkage: cannot read the symbols of $kiln" >&2; exit 1; }
for sym in api_run api_server_start MHD_start_daemon json_pack json_dumps; do
	echo "$syms" | grep -Eq "^[0-9a-f]+ T $sym\$" ||
		{ echo "linkage: $kiln does not define $sym: the API is not linked in" >&2; exit 1; }
done
if echo "$syms" | grep -Eq ' [TtUu] (gnutls|gcry)_'; then
	echo "linkage: $kiln carries TLS code (gnutls/libgcrypt symbols): libmicrohttpd must be built without it" >&2
	exit 1
fi
echo "linkage: $kiln has the REST API (libmicrohttpd without TLS, jansson)"
check_dynamic "$full"
