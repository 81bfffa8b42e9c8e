#!/bin/sh
# linkage.sh KILN: fail if KILN links a library that kiln opens only when needed (util/dynlib.h).
set -eu
kiln=${1:?usage: linkage.sh KILN}
needed=$(readelf -d "$kiln" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
[ -n "$needed" ] || { echo "linkage: no NEEDED entries read from $kiln" >&2; exit 1; }
bad=0
for lib in $needed; do
	case $lib in
	libslirp.so* | libmicrohttpd.so* | libglib-2.0.so* | libgnutls.so*)
		echo "linkage: $kiln links $lib, which it should open only when needed" >&2
		bad=1
		;;
	esac
done
[ $bad = 0 ] && echo "linkage: $kiln needs only: $(echo $needed)"
exit $bad
