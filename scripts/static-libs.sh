#!/usr/bin/env bash
# static-libs.sh DIR: build libmicrohttpd (no TLS) and jansson as static musl archives for the
# static kiln, from Debian's source packages; prints the install prefix (docs/design.md).
#
# The prefix is DIR/mhd-VERSION_jansson-VERSION_RECIPE, named after the versions of the -dev
# packages installed (their source packages are the ones built) and a hash of this script (how
# they are built), so a second run with the prefix in place costs nothing and a changed recipe
# builds a new prefix. Needs musl-gcc, cmake, dpkg-source, network access to Debian's archive, and
# root (or sudo) the first time if no deb-src entry exists: one is added for the suites the
# binary entries name.
set -euo pipefail
dir=${1:?usage: static-libs.sh DIR}
log() { echo "static-libs: $*" >&2; }
die() { log "$*"; exit 1; }

srcver() { # binary -dev package -> version of its installed source package
	dpkg-query -W -f='${source:Version}' "$1" 2>/dev/null ||
		die "$1 is not installed (scripts/deps.sh installs it)"
}
mhd_ver=$(srcver libmicrohttpd-dev)
jansson_ver=$(srcver libjansson-dev)
[ -n "$mhd_ver" ] && [ -n "$jansson_ver" ] || die "cannot read the -dev packages' versions"
recipe=$(sha256sum "${BASH_SOURCE[0]}" | cut -c1-8)
prefix=$(realpath -m "$dir")/mhd-${mhd_ver}_jansson-${jansson_ver}_$recipe
if [ -f "$prefix/.done" ]; then
	echo "$prefix"
	exit 0
fi
# One builder at a time (build dirs configured side by side share the cache).
mkdir -p "$dir"
exec 9>"$dir/.lock"
flock 9
if [ -f "$prefix/.done" ]; then
	echo "$prefix"
	exit 0
fi

command -v musl-gcc >/dev/null || die "musl-gcc not found (Debian musl-tools)"
command -v dpkg-source >/dev/null || die "dpkg-source not found (Debian dpkg-dev)"
command -v cmake >/dev/null || die "cmake not found (Debian cmake; jansson builds with it)"

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo

# A deb-src entry for every deb one in the deb822 files (Debian 12's default layout) and in the
# one-line files, unless there is one already.
add_deb_src() {
	local f=/etc/apt/sources.list.d/kiln-deb-src.sources tmp
	tmp=$(mktemp)
	for s in /etc/apt/sources.list.d/*.sources; do
		[ -f "$s" ] && [ "$s" != "$f" ] || continue
		awk -v RS= -v ORS='\n\n' '/Types:[^\n]*deb/ && !/Types:[^\n]*deb-src/ && /URIs:[^\n]*debian/ {
			sub(/Types:[^\n]*/, "Types: deb-src"); print }' "$s" >>"$tmp"
	done
	for s in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -f "$s" ] || continue
		grep -E '^deb [^[]*debian' "$s" | sed 's/^deb //' |
			awk '{ n = split($0, a, " "); printf "Types: deb-src\nURIs: %s\nSuites: %s\nComponents:", a[1], a[2];
				for (i = 3; i <= n; i++) printf " %s", a[i]; printf "\n\n"; next }' >>"$tmp" || true
	done
	[ -s "$tmp" ] || { rm -f "$tmp"; die "no Debian deb entry in /etc/apt to derive a deb-src one from"; }
	log "adding $f"
	$SUDO install -m 644 "$tmp" "$f"
	rm -f "$tmp"
}

work=$(realpath -m "$dir")/src
rm -rf "$work"
mkdir -p "$work"
cd "$work"
get_source() {
	apt-get source -q --download-only "libmicrohttpd=$mhd_ver" "jansson=$jansson_ver" >fetch.log 2>&1
}
if ! get_source; then
	if ! grep -rqs '^Types:.*deb-src\|^deb-src ' /etc/apt/sources.list /etc/apt/sources.list.d/; then
		add_deb_src
	fi
	log "apt-get update (for the deb-src lists)"
	$SUDO apt-get update -q >update.log 2>&1 || { cat update.log >&2; die "apt-get update failed"; }
	get_source || { cat fetch.log >&2; die "apt-get source libmicrohttpd=$mhd_ver jansson=$jansson_ver failed"; }
fi
# apt checked the files' hashes against the signed Release file; dpkg-source's warning that it
# has no key for the .dsc signature goes to the log.
dpkg-source -x libmicrohttpd_*.dsc mhd >>fetch.log 2>&1 || { cat fetch.log >&2; die "dpkg-source libmicrohttpd failed"; }
dpkg-source -x jansson_*.dsc jansson >>fetch.log 2>&1 || { cat fetch.log >&2; die "dpkg-source jansson failed"; }

stage=$prefix.tmp
rm -rf "$stage" "$prefix"
jobs=$(nproc 2>/dev/null || echo 1)
run() { # name, commands (a shell string) run in its source tree, output to name.log
	log "building $1 with musl-gcc"
	(cd "$1" && eval "$2") >"$1.log" 2>&1 ||
		{ tail -n 30 "$1.log" >&2; die "$1: build failed (log: $work/$1.log)"; }
}
# A section per function and object, as kiln's own code: --gc-sections drops what kiln does not
# call.
export CC=musl-gcc CFLAGS="-O2 -fPIE -ffunction-sections -fdata-sections"
# libmicrohttpd's release tarball carries configure. TLS off: the API listens on a Unix socket
# only (no gnutls, the bulk of the dynamic build's library tree). No library constructor
# (autoinit_funcs.h takes the macro as "the compiler has none"): MHD_init would run in every
# `kiln run` and fault in pages of code and data that a plain VM never needs
# (docs/design.md, "One static binary"); MHD_start_daemon runs it on first use instead.
run mhd 'CPPFLAGS=-D_GNUC_ATTR_CONSTR_NOT_SUPPORTED=1 ./configure -q --prefix="$stage" \
	--enable-static --disable-shared --disable-https --without-gnutls --disable-curl \
	--disable-doc --disable-examples --disable-tools --disable-nls && \
	make -j"$jobs" -s && make -s install'
# jansson's Debian source is a git export without configure: its CMake build.
run jansson 'cmake -S . -B musl -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$stage" \
	-DCMAKE_INSTALL_LIBDIR=lib -DJANSSON_BUILD_SHARED_LIBS=OFF -DJANSSON_BUILD_DOCS=OFF \
	-DJANSSON_EXAMPLES=OFF -DJANSSON_WITHOUT_TESTS=ON -DUSE_URANDOM=ON && \
	cmake --build musl -j"$jobs" && cmake --install musl'
[ -f "$stage/lib/libmicrohttpd.a" ] && [ -f "$stage/lib/libjansson.a" ] ||
	die "no archives under $stage/lib"
if nm "$stage/lib/libmicrohttpd.a" 2>/dev/null | grep -q ' T _GNUC_init_helper'; then
	die "libmicrohttpd was built with its constructor (autoinit_funcs.h changed?)"
fi
touch "$stage/.done"
mv "$stage" "$prefix"
rm -rf "$work"
echo "$prefix"
