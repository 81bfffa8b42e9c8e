#!/usr/bin/env bash
# deps.sh: install the Debian packages kiln needs to build, test and build its default guest.
set -euo pipefail

PKGS=(
	gcc make meson ninja-build pkg-config python3 musl-tools
	dpkg-dev cmake # scripts/static-libs.sh: the static kiln's libmicrohttpd and jansson
	libcmocka-dev liburing-dev libmicrohttpd-dev libjansson-dev curl
	clang
	libseccomp-dev # the seccomp filters, compiled at build time (tools/seccomp_gen.c)
	# user-mode networking (--net user) is a passt process: scripts/passt.sh builds Debian 13's
	# from source (Debian 12's stalls server-first forwards); the package is the fallback
	gpgv debian-archive-keyring passt
	cpio lz4 xz-utils zstd kmod
	acpica-tools
	flex bison bc libelf-dev libssl-dev patch iproute2
)

missing=()
for p in "${PKGS[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing+=("$p")
	fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null || { echo "deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
	SUDO=sudo
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
	$SUDO apt-get update -q >/dev/null
	$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi
