#!/usr/bin/env bash
# passt.sh DIR: build passt, the user-mode network stack `--net user` runs, from the source
# package of Debian's current stable release (13, trixie), with Debian's patches; prints the
# path of the passt binary (passt.avx2 lies beside it). docs/design.md, "passt".
#
# Why not Debian 12's passt package: its passt (2023.03) never completes the TCP handshake
# towards the guest for a forwarded port until the host side sends data, so a server that
# speaks first (SSH, SMTP, a database greeting) hangs (tests/unit/test_usernet.c,
# test_hostfwd_server_first). Debian 13's passt is a plain C program with no build
# dependencies beyond a C compiler, so it builds here in seconds.
#
# The source is checked as apt would check it, by hand because a Debian 12 apt cannot be
# pointed at one package of another release without a sources entry for all of it:
# dists/trixie/InRelease is verified with gpgv against Debian's archive keyring, the Sources
# index against InRelease's SHA-256, and the tarballs against the index's. The result is cached
# in DIR/passt-VERSION_RECIPE (RECIPE: a hash of this script), so a second run costs nothing and
# needs no network.
set -euo pipefail
dir=${1:?usage: passt.sh DIR}
suite=${KILN_PASST_SUITE:-trixie}
mirror=${KILN_DEBIAN_MIRROR:-http://deb.debian.org/debian}
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
log() { echo "passt.sh: $*" >&2; }
die() { log "$*"; exit 1; }

recipe=$(sha256sum "${BASH_SOURCE[0]}" | cut -c1-8)
dir=$(realpath -m "$dir")
cached() { # the newest finished build of this recipe, if any
	local d
	for d in $(ls -d "$dir"/passt-*_"$recipe" 2>/dev/null | sort -r); do
		if [ -f "$d/.done" ] && [ -x "$d/passt" ]; then
			echo "$d/passt"
			return 0
		fi
	done
	return 1
}
cached && exit 0
mkdir -p "$dir"
exec 9>"$dir/.lock"
flock 9
cached && exit 0

for t in curl gpgv xz make cc patch; do
	command -v "$t" >/dev/null || die "$t not found (scripts/deps.sh installs it)"
done
[ -f "$keyring" ] || die "$keyring not found (Debian debian-archive-keyring)"

work=$dir/src
rm -rf "$work"
mkdir -p "$work"
cd "$work"
fetch() { # URL FILE
	curl -fsS --retry 3 -m 120 -o "$2" "$1" || die "cannot download $1"
}
fetch "$mirror/dists/$suite/InRelease" InRelease
gpgv --keyring "$keyring" --output Release InRelease 2>gpgv.log ||
	{ cat gpgv.log >&2; die "$suite InRelease: bad signature"; }
sources_sha=$(awk '/^SHA256:/{s=1; next} /^[^ ]/{s=0} s && $3 == "main/source/Sources.xz" {print $1}' Release)
[ -n "$sources_sha" ] || die "$suite Release names no main/source/Sources.xz"
fetch "$mirror/dists/$suite/main/source/Sources.xz" Sources.xz
echo "$sources_sha  Sources.xz" | sha256sum -c --quiet - || die "Sources.xz: SHA-256 mismatch"
# The passt stanza: its version, its directory and its files' SHA-256 sums.
xz -dc Sources.xz | awk -v RS= '/(^|\n)Package: passt\n/' >stanza
version=$(sed -n 's/^Version: //p' stanza)
pool=$(sed -n 's/^Directory: //p' stanza)
[ -n "$version" ] && [ -n "$pool" ] || die "$suite has no passt source package"
awk '/^Checksums-Sha256:/{s=1; next} /^[^ ]/{s=0} s && NF == 3 {print $1 "  " $3}' stanza |
	grep -E '\.(orig|debian)\.tar\.xz$' >sums || die "passt $version: no tarballs in the index"
[ "$(wc -l <sums)" -eq 2 ] || die "passt $version: expected an orig and a debian tarball"
while read -r _ f; do
	# The pool's names are URL paths: ~ and + escaped.
	fetch "$mirror/$pool/$(printf '%s' "$f" | sed 's/~/%7E/g; s/+/%2B/g')" "$f"
done <sums
sha256sum -c --quiet sums || die "passt $version: tarball SHA-256 mismatch"

mkdir tree
tar -C tree -xf "$(grep -o '[^ ]*\.orig\.tar\.xz$' sums)"
tar -C tree -xf "$(grep -o '[^ ]*\.debian\.tar\.xz$' sums)"
src=$(find tree -mindepth 1 -maxdepth 1 -type d ! -name debian | head -n 1)
[ -n "$src" ] && [ -f "$src/Makefile" ] || die "passt $version: no source tree in the tarball"
if [ -f tree/debian/patches/series ]; then
	grep -v '^\s*\(#\|$\)' tree/debian/patches/series | while read -r p _; do
		patch -d "$src" -p1 -s <"tree/debian/patches/$p" >>build.log 2>&1 ||
			die "passt $version: patch $p does not apply"
	done
fi
log "building passt $version"
# The AVX2 build beside the plain one: passt re-executes itself as <its path>.avx2 where the
# CPU has AVX2, and complains on every start if it is missing. Two runs of make: passt.avx2's
# target-specific flags (-Ofast -mavx2) reach passt too when make builds it as passt.avx2's
# prerequisite.
jobs=$(nproc 2>/dev/null || echo 1)
for t in passt passt.avx2; do
	make -C "$src" -j"$jobs" VERSION="$version" "$t" >>build.log 2>&1 ||
		{ tail -n 30 build.log >&2; die "passt $version: build of $t failed"; }
done
cmp -s "$src/passt" "$src/passt.avx2" && die "passt $version: passt was built with AVX2 flags"
out=$dir/passt-${version}_$recipe
stage=$out.tmp
rm -rf "$stage" "$out"
mkdir -p "$stage"
install -m 755 "$src/passt" "$src/passt.avx2" "$stage/"
"$stage/passt" --version >/dev/null 2>&1 || die "passt $version: the build does not run"
touch "$stage/.done"
mv "$stage" "$out"
cd /
rm -rf "$work"
echo "$out/passt"
