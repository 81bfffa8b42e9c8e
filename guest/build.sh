#!/usr/bin/env bash
# Builds the default kiln guest: Debian's cloud kernel as vmlinux plus a busybox initramfs.
#
# Usage: guest/build.sh [OUTDIR]        (OUTDIR defaults to build/guest in the repo)
# Outputs: OUTDIR/vmlinux (uncompressed ELF), OUTDIR/initramfs.cpio (uncompressed
# newc cpio), OUTDIR/initramfs-kiln.cpio (the same without modules, for the kernel of
# guest/build-kernel.sh), OUTDIR/kernel-release. Downloaded packages are cached in OUTDIR/dl.
# Does nothing when the outputs are up to date with this script, init, tests/* and
# the package versions apt would pick.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=${1:-$here/../build/guest}
mkdir -p "$out/dl"
out=$(cd "$out" && pwd)
dl=$out/dl

# Kernel meta-package (its Depends names the real image package), busybox, and
# the virtio drivers put in the initramfs (their dependencies are added from
# modules.dep). /init loads them only for devices that are present.
meta_pkg="linux-image-cloud-amd64"
bb_pkg="busybox-static"
modules=(virtio_pci virtio_mmio virtio_blk virtio_net virtio_console virtio-rng
	virtio_balloon vmw_vsock_virtio_transport)
host_pkgs=(cpio lz4 xz-utils zstd bzip2)

me=guest/build.sh
# shellcheck source=guest/lib.sh
. "$here/lib.sh"

# One build per OUTDIR at a time (meson tests and make may race).
exec 9>"$out/.lock"
flock 9

# Resolve the package versions to use, as apt would pick them (one apt-cache
# call: it is the slow part of an up-to-date check). Sets kpkg, kver_pkg, bbver.
resolve() {
	local records
	records=$(apt-cache show --no-all-versions "$meta_pkg" "$bb_pkg" 2>/dev/null) || return 1
	# The meta-package's Depends pins the image package: "linux-image-X (= V)".
	read -r kpkg kver_pkg < <(awk -v p="$meta_pkg" '
		/^Package: / { cur = $2 }
		cur == p && /^Depends: / {
			sub(/^Depends: /, "")
			n = split($0, dep, /[,|]/)
			for (i = 1; i <= n; i++)
				if (match(dep[i], /linux-image-[0-9][^ ]* \(= [^)]+\)/)) {
					s = substr(dep[i], RSTART, RLENGTH)
					gsub(/[()=]/, "", s)
					print s
					exit
				}
		}' <<<"$records") || true
	bbver=$(awk -v p="$bb_pkg" '/^Package: / { cur = $2 } cur == p && /^Version: / { print $2; exit }' <<<"$records")
	[ -n "${kpkg:-}" ] && [ -n "${kver_pkg:-}" ] && [ -n "$bbver" ]
}

if ! resolve; then
	apt_update
	resolve || die "apt cannot resolve $meta_pkg and $bb_pkg (is Debian's archive reachable?)"
fi

# Everything the outputs depend on, hashed into the stamp.
inputs_hash() {
	(
		cd "$here"
		sha256sum build.sh init
		find tests -type f | sort | xargs -r sha256sum
		echo "$kpkg $kver_pkg $bb_pkg $bbver"
	) | sha256sum | cut -d' ' -f1
}
stamp=$(inputs_hash)
if [ -f "$out/vmlinux" ] && [ -f "$out/initramfs.cpio" ] && [ -f "$out/initramfs-kiln.cpio" ] &&
	[ -f "$out/kernel-release" ] &&
	[ "$(cat "$out/.stamp" 2>/dev/null)" = "$stamp" ]; then
	log "up to date ($kpkg $kver_pkg, $(cat "$out/kernel-release"))"
	exit 0
fi
log "building guest from $kpkg $kver_pkg and $bb_pkg $bbver into $out"

need_host_pkgs "${host_pkgs[@]}"

# fetch PKG VERSION: print the path of the cached .deb, downloading it if needed.
fetch() {
	local pkg=$1 ver=$2 f tmp
	f=$dl/${pkg}_${ver//:/%3a}_amd64.deb
	if [ ! -s "$f" ]; then
		tmp=$(mktemp -d "$dl/.tmp.XXXXXX")
		if ! (cd "$tmp" && apt-get download -qq -o APT::Sandbox::User=root "$pkg=$ver" >&2); then
			rm -rf "$tmp"
			return 1
		fi
		mv "$tmp"/*.deb "$f"
		rm -rf "$tmp"
	fi
	echo "$f"
}

if ! kdeb=$(fetch "$kpkg" "$kver_pkg") || ! bbdeb=$(fetch "$bb_pkg" "$bbver"); then
	# The lists may name a version the archive has already replaced.
	apt_update
	resolve || die "apt cannot resolve $meta_pkg and $bb_pkg after apt-get update"
	stamp=$(inputs_hash)
	kdeb=$(fetch "$kpkg" "$kver_pkg") || die "apt-get download $kpkg=$kver_pkg failed"
	bbdeb=$(fetch "$bb_pkg" "$bbver") || die "apt-get download $bb_pkg=$bbver failed"
fi
# Drop cached packages that are no longer used.
find "$dl" -maxdepth 1 -name '*.deb' ! -path "$kdeb" ! -path "$bbdeb" -delete

work=$(mktemp -d "$out/.work.XXXXXX")
trap 'rm -rf "$work"' EXIT
dpkg-deb -x "$kdeb" "$work/pkg"
dpkg-deb -x "$bbdeb" "$work/bb"

mods=("$work"/pkg/lib/modules/*)
if [ "${#mods[@]}" != 1 ] || [ ! -d "${mods[0]}" ]; then
	die "$kdeb: expected one lib/modules/<release>"
fi
krel=$(basename "${mods[0]}")
bzimage=$work/pkg/boot/vmlinuz-$krel
[ -f "$bzimage" ] || die "$kdeb: no boot/vmlinuz-$krel"

# --- vmlinux: decompress the bzImage payload -------------------------------
# le NBYTES OFFSET FILE: unsigned little-endian integer from the file.
le() { od -An -tu"$1" --endian=little -j "$2" -N "$1" "$3" | tr -d ' \n'; }

[ "$(od -An -c -j $((0x202)) -N4 "$bzimage" | tr -d ' \n')" = HdrS ] ||
	die "$bzimage: no bzImage setup header"
proto=$(le 2 $((0x206)) "$bzimage")
[ "$proto" -ge $((0x208)) ] || die "$bzimage: boot protocol $proto has no payload fields"
setup_sects=$(le 1 $((0x1f1)) "$bzimage")
[ "$setup_sects" -ne 0 ] || setup_sects=4
payload_offset=$(le 4 $((0x248)) "$bzimage")
payload_length=$(le 4 $((0x24c)) "$bzimage")
start=$(((setup_sects + 1) * 512 + payload_offset))
if [ "$payload_length" -le 4 ] || [ $((start + payload_length)) -gt "$(stat -c %s "$bzimage")" ]; then
	die "$bzimage: payload ($start + $payload_length) out of range"
fi

payload=$work/payload
dd if="$bzimage" of="$payload" bs=1M iflag=skip_bytes,count_bytes \
	skip="$start" count="$payload_length" status=none
# The build appends the uncompressed size (le32) to every format; for gzip the
# stream's own trailer already ends with it. The other tools want it cut off.
usize=$(le 4 $((payload_length - 4)) "$payload")
magic=$(od -An -tx1 -N6 "$payload" | tr -d ' \n')
case $magic in
1f8b*) fmt=gzip ;;
02214c18*) fmt=lz4 ;;
fd377a585a00) fmt=xz ;;
28b52ffd*) fmt=zstd ;;
425a68*) fmt=bzip2 ;;
5d0000*) fmt=lzma ;;
*) die "$bzimage: unknown payload compression (magic $magic)" ;;
esac
if [ "$fmt" != gzip ]; then
	truncate -s $((payload_length - 4)) "$payload"
fi
case $fmt in
gzip) gzip -dc <"$payload" >"$work/vmlinux" ;;
lz4) lz4 -dc <"$payload" >"$work/vmlinux" ;;
xz) xz -dc <"$payload" >"$work/vmlinux" ;;
zstd) zstd -qdc <"$payload" >"$work/vmlinux" ;;
bzip2) bzip2 -dc <"$payload" >"$work/vmlinux" ;;
lzma) xz --format=lzma -dc <"$payload" >"$work/vmlinux" ;;
esac
[ "$(od -An -tx1 -N4 "$work/vmlinux" | tr -d ' \n')" = 7f454c46 ] ||
	die "$bzimage: decompressed $fmt payload is not an ELF file"
[ "$(stat -c %s "$work/vmlinux")" = "$usize" ] ||
	die "$bzimage: decompressed $(stat -c %s "$work/vmlinux") bytes, header says $usize"
rm -f "$payload"

# --- initramfs ---------------------------------------------------------------
root=$work/root
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,run,root,etc,tests,mnt}
chmod 1777 "$root/tmp"
busybox=$work/bb/bin/busybox
[ -x "$busybox" ] || die "$bbdeb: no bin/busybox"
cp "$busybox" "$root/bin/busybox"
# One symlink per applet, at the path busybox gives for it.
while read -r applet; do
	applet=${applet#/}
	[ "$applet" = bin/busybox ] && continue
	[ -e "$root/$applet" ] || ln -s /bin/busybox "$root/$applet"
done < <("$busybox" --list-full)
[ -L "$root/bin/sh" ] || die "busybox has no sh applet"
# No /sbin/modprobe: the kernel runs CONFIG_MODPROBE_PATH for every request_module() during
# boot, and each run (exec of busybox, emulated page faults) blocks an initcall for seconds
# when guest kernel code is emulated. /init loads what the devices need with `busybox modprobe`.
rm -f "$root/sbin/modprobe"

cp "$here/init" "$root/init"
chmod 755 "$root/init"
for t in "$here"/tests/*; do
	[ -f "$t" ] || continue
	cp "$t" "$root/tests/"
	# lib.sh is sourced by the tests, not one itself
	case $t in *.sh) chmod 644 "$root/tests/${t##*/}" ;; *) chmod 755 "$root/tests/${t##*/}" ;; esac
done
echo kiln-guest >"$root/etc/hostname"
# /init mounts these with one `mount -a`
printf '%s\n' 'proc /proc proc defaults 0 0' 'sysfs /sys sysfs defaults 0 0' \
	'devtmpfs /dev devtmpfs defaults 0 0' >"$root/etc/fstab"
# The kernel opens /dev/console before /init runs, so the node must exist.
if ! mknod -m 600 "$root/dev/console" c 5 1 || ! mknod -m 666 "$root/dev/null" c 1 3; then
	die "mknod failed: building the initramfs needs root"
fi

# Modules: the closure of $modules over the full modules.dep, then a
# modules.dep/modules.alias for just that subset (busybox depmod's format is
# what busybox modprobe reads).
kmods=$work/pkg/lib/modules/$krel
"$busybox" depmod -b "$work/pkg" "$krel"
declare -A want=()
for m in "${modules[@]}"; do
	line=$(grep -E "(^|/)$m\.ko:" "$kmods/modules.dep" || true)
	[ -n "$line" ] || die "$kpkg has no module $m"
	for f in ${line/:/}; do want[$f]=1; done
done
dst=$root/lib/modules/$krel
for f in "${!want[@]}"; do
	mkdir -p "$dst/$(dirname "$f")"
	cp "$kmods/$f" "$dst/$f"
done
cp "$kmods/modules.builtin" "$dst/"
"$busybox" depmod -b "$root" "$krel"

(cd "$root" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) >"$work/initramfs.cpio"
# The same without the modules, for guest/build-kernel.sh's kernel (drivers built in): every
# byte of an initramfs costs guest time to unpack when guest kernel code is emulated.
(cd "$root" && find . -mindepth 1 ! -path './lib/modules*' | LC_ALL=C sort |
	cpio -o -H newc -R 0:0 --quiet) >"$work/initramfs-kiln.cpio"

# --- install outputs, stamp last ------------------------------------------
echo "$krel" >"$work/kernel-release"
rm -f "$out/.stamp"
for f in vmlinux initramfs.cpio initramfs-kiln.cpio kernel-release; do
	mv "$work/$f" "$out/$f"
done
echo "$stamp" >"$out/.stamp"
log "done: $krel, vmlinux $(stat -c %s "$out/vmlinux") bytes, initramfs.cpio $(stat -c %s "$out/initramfs.cpio") bytes"
