#!/usr/bin/env bash
# Builds kiln's minimal guest kernel from Debian's linux-source package.
#
# Usage: guest/build-kernel.sh [OUTDIR]     (OUTDIR defaults to build/guest in the repo)
# Outputs: OUTDIR/vmlinux-kiln (uncompressed ELF with the PVH note), OUTDIR/kernel-kiln-release.
# The source package is cached in OUTDIR/dl-src. Does nothing when the outputs are up to date
# with this script, kernel/kiln.config, kernel/*.patch and the package version apt would pick.
#
# Why a second kernel (docs/guest.md): it boots in a fraction of the Debian cloud kernel's time
# when guest kernel code is emulated, has the virtio drivers built in, and carries
# kernel/0001-*.patch, which completes a user-mode SYSCALL that a PVM-backed /dev/kvm leaves
# half done. Without that patch no user process can make a system call on such a host.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=${1:-$here/../build/guest}
mkdir -p "$out/dl-src"
out=$(cd "$out" && pwd)
dl=$out/dl-src

src_meta="linux-source"
host_pkgs=(make gcc flex bison bc libelf-dev libssl-dev xz-utils patch)

me=guest/build-kernel.sh
# shellcheck source=guest/lib.sh
. "$here/lib.sh"

exec 9>"$out/.lock-kernel"
flock 9

# The meta-package's Depends names the versioned source package: "linux-source-6.1 (= V)"
# or just "linux-source-6.1". Sets spkg and sver.
resolve() {
	local dep
	dep=$(apt-cache show --no-all-versions "$src_meta" 2>/dev/null |
		sed -n 's/^Depends: //p' | grep -o 'linux-source-[0-9.]*' | head -n1) || return 1
	[ -n "$dep" ] || return 1
	spkg=$dep
	sver=$(apt-cache show --no-all-versions "$spkg" 2>/dev/null | sed -n 's/^Version: //p' |
		head -n1)
	[ -n "$sver" ]
}
if ! resolve; then
	apt_update
	resolve || die "apt cannot resolve $src_meta (is Debian's archive reachable?)"
fi

inputs_hash() {
	(
		cd "$here"
		sha256sum build-kernel.sh kernel/kiln.config kernel/*.patch
		echo "$spkg $sver"
	) | sha256sum | cut -d' ' -f1
}
stamp=$(inputs_hash)
if [ -f "$out/vmlinux-kiln" ] && [ -f "$out/kernel-kiln-release" ] &&
	[ "$(cat "$out/.stamp-kernel" 2>/dev/null)" = "$stamp" ]; then
	log "up to date ($spkg $sver, $(cat "$out/kernel-kiln-release"))"
	exit 0
fi
log "building the kiln guest kernel from $spkg $sver into $out"

need_host_pkgs "${host_pkgs[@]}"

deb=$dl/${spkg}_${sver//:/%3a}_all.deb
if [ ! -s "$deb" ]; then
	tmp=$(mktemp -d "$dl/.tmp.XXXXXX")
	if ! (cd "$tmp" && apt-get download -qq -o APT::Sandbox::User=root "$spkg=$sver" >&2); then
		apt_update
		(cd "$tmp" && apt-get download -qq -o APT::Sandbox::User=root "$spkg=$sver" >&2) ||
			{ rm -rf "$tmp"; die "apt-get download $spkg=$sver failed"; }
	fi
	mv "$tmp"/*.deb "$deb"
	rm -rf "$tmp"
fi
find "$dl" -maxdepth 1 -name '*.deb' ! -path "$deb" -delete

work=$(mktemp -d "$out/.kwork.XXXXXX")
trap 'rm -rf "$work"' EXIT
log "unpacking $(basename "$deb")"
dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$work" --wildcards './usr/src/linux-source-*.tar.xz'
tarball=$(echo "$work"/usr/src/linux-source-*.tar.xz)
[ -f "$tarball" ] || die "$deb: no usr/src/linux-source-*.tar.xz"
tar -xf "$tarball" -C "$work"
rm -f "$tarball"
srcdir=$(echo "$work"/linux-source-*/)
[ -f "$srcdir/Makefile" ] || die "$deb: no kernel tree in the tarball"

for p in "$here"/kernel/*.patch; do
	log "applying $(basename "$p")"
	patch -d "$srcdir" -p1 --quiet --forward <"$p" || die "$(basename "$p") does not apply"
done

obj=$work/obj
mkdir -p "$obj"
kmake() { make -C "$srcdir" O="$obj" ARCH=x86_64 -s "$@"; }
kmake tinyconfig >/dev/null
"$srcdir/scripts/kconfig/merge_config.sh" -m -O "$obj" "$obj/.config" \
	"$here/kernel/kiln.config" >/dev/null
kmake olddefconfig >/dev/null
# Every option the fragment asks for must have stuck (a renamed or dependent option would
# silently drop a driver otherwise).
bad=
while IFS= read -r line; do
	case $line in
	CONFIG_*=*)
		grep -qxF "$line" "$obj/.config" || bad="$bad ${line%%=*}" ;;
	"# CONFIG_"*" is not set")
		opt=${line#\# }
		opt=${opt%% *}
		grep -q "^$opt=" "$obj/.config" && bad="$bad $opt(off)" ;;
	esac
done <"$here/kernel/kiln.config"
[ -z "$bad" ] || die "kernel/kiln.config options that did not take:$bad"

jobs=$(nproc 2>/dev/null || echo 2)
log "make -j$jobs vmlinux (a few minutes)"
kmake -j"$jobs" vmlinux >&2 || die "kernel build failed"
krel=$(kmake kernelrelease)

rm -f "$out/.stamp-kernel"
cp "$obj/vmlinux" "$out/vmlinux-kiln"
echo "$krel" >"$out/kernel-kiln-release"
echo "$stamp" >"$out/.stamp-kernel"
log "done: $krel, vmlinux-kiln $(stat -c %s "$out/vmlinux-kiln") bytes"
