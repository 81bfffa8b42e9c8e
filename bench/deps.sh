#!/usr/bin/env bash
# deps.sh: install the benchmark's peer VMM from Debian (qemu-system-x86 for QEMU microvm) if missing.
#
# A peer that cannot be installed is not an error: bench/run.sh then skips it with a note.
set -euo pipefail

PKGS=(qemu-system-x86 qemu-system-data seabios)
missing=()
for p in "${PKGS[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing+=("$p")
	fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	if ! command -v sudo >/dev/null; then
		echo "bench/deps.sh: no root or sudo to install ${missing[*]}: QEMU will be skipped" >&2
		exit 0
	fi
	SUDO=sudo
fi
echo "bench/deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
	$SUDO apt-get update -q >/dev/null || true
	$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null ||
		echo "bench/deps.sh: could not install ${missing[*]}: QEMU will be skipped" >&2
fi
exit 0
