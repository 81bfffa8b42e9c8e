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
