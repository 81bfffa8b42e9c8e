# lib.sh: what guest/build.sh and guest/build-kernel.sh share (sourced; bash).
# The sourcing script sets `me` (its name in messages) first.

export DEBIAN_FRONTEND=noninteractive LC_ALL=C

log() { echo "$me: $*" >&2; }
die() {
	log "error: $*"
	exit 1
}

apt_updated=0
apt_update() {
	[ "$apt_updated" = 1 ] && return 0
	log "apt-get update"
	apt-get update -qq >&2 || die "apt-get update failed"
	apt_updated=1
}

# need_host_pkgs PKG...: apt-get install the ones that are missing (needs root then).
need_host_pkgs() {
	local p missing=()
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
	done
	[ "${#missing[@]}" -gt 0 ] || return 0
	[ "$(id -u)" = 0 ] || die "missing packages ${missing[*]} (run as root or install them)"
	log "apt-get install ${missing[*]}"
	if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2; then
		apt_update
		apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 ||
			die "apt-get install ${missing[*]} failed"
	fi
}
