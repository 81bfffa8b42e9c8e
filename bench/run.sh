#!/usr/bin/env bash
# run.sh: run every benchmark, kiln and its peers interleaved; print a table and write bench/results.md.
#
# Usage: bench/run.sh            (`make bench` builds kiln first and runs this)
# Environment (defaults in brackets; docs/benchmarks.md says what each benchmark measures):
#   KILN                    kiln binary [build/kiln]
#   BENCH_OUT               build dir for harnesses and images [build/bench]
#   BENCH_RUNS              runs per benchmark, interleaved across VMMs [10]
#   BENCH_EXIT_BYTES        bytes the exit-throughput guest writes [262144]
#   BENCH_EXIT_RUNS         runs of the exit-throughput benchmark [BENCH_RUNS]
#   BENCH_DENSITY_SECONDS   density window [10];  BENCH_DENSITY_MAX  cap on VMs [5000]
#   BENCH_DENSITY_RUNS      density runs, interleaved across VMMs [BENCH_RUNS]
#   BENCH_PEERS             more VMM binaries, space-separated: firecracker, cloud-hypervisor,
#                           lkvm (kvmtool), qemu-system-x86_64 (kind from the file name)
#   BENCH_QEMU              QEMU binary, "off" to leave it out [qemu-system-x86_64 on PATH]
#   BENCH_LINUX=1           also boot the default guest (minutes per boot on slow hosts)
#   BENCH_LINUX_RUNS [1]  BENCH_LINUX_TIMEOUT seconds [3600]  BENCH_GUEST_DIR [build/guest]
#   BENCH_LINUX_CPUS        vCPUs of the Linux guest [2, as `make run` and the e2e tests]
#   BENCH_BLK               the in-process virtio-blk benchmark [bench/blk in kiln's build dir];
#                           "off" leaves it out
#   BENCH_BLK_FILE [BENCH_OUT/blk.img]  BENCH_BLK_MIB [1024]  BENCH_BLK_SECONDS per run [1]
#   BENCH_NET               the in-process virtio-net benchmark on a TAP [bench/net in kiln's
#                           build dir]; "off" leaves it out (needs root: skipped without)
#   BENCH_USERNET           guest <-> host TCP through passt (user-mode networking) [bench/usernet
#                           in kiln's build dir]; "off" leaves it out (needs root and passt)
#   BENCH_SECCOMP_PAIRS     kiln vs kiln --seccomp off start-up pairs [60]
#   BENCH_NOTE              a line for the results header (e.g. "host shared, under load")
#   BENCH_RESULTS           where the table goes [bench/results.md]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)

kiln=${KILN:-$root/build/kiln}
out=${BENCH_OUT:-$root/build/bench}
runs=${BENCH_RUNS:-10}
exit_bytes=${BENCH_EXIT_BYTES:-262144}
exit_runs=${BENCH_EXIT_RUNS:-$runs}
density_s=${BENCH_DENSITY_SECONDS:-10}
density_max=${BENCH_DENSITY_MAX:-5000}
density_runs=${BENCH_DENSITY_RUNS:-$runs}
linux=${BENCH_LINUX:-0}
linux_runs=${BENCH_LINUX_RUNS:-1}
linux_timeout=${BENCH_LINUX_TIMEOUT:-3600}
guest_dir=${BENCH_GUEST_DIR:-$root/build/guest}
results=${BENCH_RESULTS:-$here/results.md}
blk=${BENCH_BLK:-$(dirname "$kiln")/bench/blk}
blk_file=${BENCH_BLK_FILE:-$out/blk.img}
blk_mib=${BENCH_BLK_MIB:-1024}
blk_s=${BENCH_BLK_SECONDS:-1}
netb=${BENCH_NET:-$(dirname "$kiln")/bench/net}
usernetb=${BENCH_USERNET:-$(dirname "$kiln")/bench/usernet}
# The passt that kiln runs: the one the build put beside it (bench/usernet is not beside it).
if [ -z "${KILN_PASST:-}" ] && [ -x "$(dirname "$kiln")/passt" ]; then
	export KILN_PASST=$(dirname "$kiln")/passt
fi
mem_mib=128       # tiny-image VMs: 128 MiB, 1 vCPU
linux_mem_mib=256 # the default guest, as `make run` boots it
linux_cpus=${BENCH_LINUX_CPUS:-2}
# The Linux guest: the default guest's Debian kernel, or on a PVM host (where its user space
# cannot make system calls, docs/guest.md) kiln's kernel; BENCH_LINUX_KERNEL=debian|kiln forces.
linux_flavor=${BENCH_LINUX_KERNEL:-}
if [ -z "$linux_flavor" ]; then
	linux_flavor=debian
	[ -d /sys/module/kvm_pvm ] && linux_flavor=kiln
fi
case $linux_flavor in
debian) linux_kernel=$guest_dir/vmlinux linux_initrd=$guest_dir/initramfs.cpio ;;
kiln) linux_kernel=$guest_dir/vmlinux-kiln linux_initrd=$guest_dir/initramfs-kiln.cpio ;;
*) echo "bench: BENCH_LINUX_KERNEL must be debian or kiln" >&2; exit 1 ;;
esac

die() { echo "bench: $*" >&2; exit 1; }
[ -x "$kiln" ] || die "no kiln at $kiln (run 'make build' or set KILN)"
[ -r /dev/kvm ] || die "/dev/kvm is not there: nothing can be measured"
for n in "$runs" "$exit_runs" "$exit_bytes" "$density_max" "$density_runs" "$linux_runs" "$linux_cpus" "$blk_mib"; do
	[[ $n =~ ^[1-9][0-9]*$ ]] || die "counts must be positive integers (got '$n')"
done
[ "$exit_bytes" -ge 2 ] || die "BENCH_EXIT_BYTES must be at least 2"

# --- clean up whatever is running if we are stopped: the harnesses kill their VMMs -------------
current=
cleanup() {
	if [ -n "$current" ]; then
		kill -TERM "$current" 2>/dev/null || true
		wait "$current" 2>/dev/null || true
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
# run_bg OUTFILE CMD...: run a harness in the background, its stdout to OUTFILE, and wait for it
# here (not in a $(...) subshell), so that a signal reaches the trap at once.
run_bg() {
	local outfile=$1 rc=0
	shift
	"$@" >"$outfile" &
	current=$!
	wait "$current" || rc=$?
	current=
	return "$rc"
}
line_of() { cat "$out/line"; } # the last harness output

echo "bench: building harnesses and guest images in $out"
"$here/build.sh" "$out" "$exit_bytes"
startup=$out/startup
res=$out/results
rm -rf "$res" "$out/logs"
mkdir -p "$res" "$out/logs"

notes=()
note() { notes+=("$*"); echo "bench: note: $*" >&2; }

# --- VMMs: name, kind, binary -----------------------------------------------------------------
# rawkvm is not a peer but the floor: a minimal KVM program (bench/rawkvm.c) that echoes COM1;
# rawkvm-static is the same linked statically with musl, the floor for a static kiln. Both are
# measured for start-up and memory only.
names=(kiln rawkvm) kinds=(kiln raw) bins=("$kiln" "$out/rawkvm")
add_peer() { # NAME KIND BIN
	names+=("$1") kinds+=("$2") bins+=("$3")
}
# kiln with --seccomp off, interleaved with kiln in the start-up runs only: what the seccomp
# filters cost at start (docs/security.md).
add_peer kiln-seccomp-off kiln-nosc "$kiln"
[ -x "$out/rawkvm-static" ] && add_peer rawkvm-static raw "$out/rawkvm-static"
qemu=${BENCH_QEMU:-$(command -v qemu-system-x86_64 || true)}
if [ "$qemu" = off ]; then
	note "QEMU left out (BENCH_QEMU=off)"
elif [ -z "$qemu" ] || [ ! -x "$qemu" ]; then
	note "QEMU microvm skipped: qemu-system-x86_64 not found (apt-get install qemu-system-x86)"
else
	add_peer qemu-microvm qemu "$qemu"
fi
for p in ${BENCH_PEERS:-}; do
	if [ ! -x "$p" ]; then
		note "peer $p skipped: not an executable file"
		continue
	fi
	case $(basename "$p") in
	firecracker*) add_peer firecracker firecracker "$p" ;;
	cloud-hypervisor*) add_peer cloud-hypervisor cloud-hypervisor "$p" ;;
	lkvm* | kvmtool*) add_peer kvmtool lkvm "$p" ;;
	qemu-system-x86_64*) add_peer "qemu-microvm($(basename "$p"))" qemu "$p" ;;
	*) note "peer $p skipped: unknown VMM (known: firecracker, cloud-hypervisor, lkvm, qemu-system-x86_64)" ;;
	esac
done

linux_cmdline="console=ttyS0 reboot=k panic=-1 $(cat "$root/guest/cmdline-extra" 2>/dev/null || true)"

# vmm_cmd KIND BIN WHAT MEM_MIB -> CMD (array) and IMG (what it boots). WHAT: tiny, flood, linux.
# Return 1 (with WHY set) when this VMM cannot boot that.
vmm_cmd() {
	local kind=$1 bin=$2 what=$3 mem=$4 bz elf cpus=1
	[ "$what" = linux ] && cpus=$linux_cpus
	case $what in
	tiny) bz=$out/tiny.bzImage elf=$out/tiny.elf ;;
	flood) bz=$out/flood-$exit_bytes.bzImage elf='' ;;
	linux) bz='' elf=$linux_kernel ;;
	esac
	local initrd=$linux_initrd
	CMD=() IMG='' WHY=''
	case $kind in
	raw)
		[ "$what" = tiny ] || { WHY="the floor is measured for start-up and memory only"; return 1; }
		IMG=$bz
		CMD=("$bin" --echo "$bz" "$mem")
		;;
	kiln)
		IMG=${bz:-$elf}
		CMD=("$bin" run --kernel "$IMG" --memory "${mem}M" --cpus "$cpus" --serial stdio)
		[ "$what" = linux ] && CMD+=(--initrd "$initrd" --cmdline "$linux_cmdline")
		;;
	kiln-nosc)
		[ "$what" = tiny ] || { WHY="measured for start-up and memory only"; return 1; }
		IMG=$bz
		CMD=("$bin" run --kernel "$IMG" --memory "${mem}M" --cpus "$cpus" --serial stdio --seccomp off)
		;;
	qemu)
		# bzImage: QEMU's firmware (qboot) runs the real-mode setup entry; vmlinux: PVH entry.
		# Default CPU model: -cpu host fails on some hosts (MSR 0x10a on a PVM-backed KVM).
		IMG=${bz:-$elf}
		CMD=("$bin" -M microvm -enable-kvm -m "${mem}M" -smp "$cpus" -nodefaults -no-user-config
			-display none -serial stdio -no-reboot -name "bench,debug-threads=on" -kernel "$IMG")
		[ "$what" = linux ] && CMD+=(-initrd "$initrd" -append "$linux_cmdline")
		[ "$what" = flood ] && { WHY="enters the bzImage in real mode, where the flood guest cannot end the VM (no i8042 on microvm)"; return 1; }
		;;
	firecracker)
		# Firecracker loads ELF kernels only; its own JSON config, no API socket.
		[ -n "$elf" ] || { WHY="loads ELF kernels only and the exit-throughput guest is a bzImage"; return 1; }
		IMG=$elf
		local cfg=$out/firecracker-$what.json
		{
			printf '{"boot-source": {"kernel_image_path": "%s", "boot_args": "%s"' "$elf" \
				"$([ "$what" = linux ] && echo "$linux_cmdline" || echo console=ttyS0)"
			[ "$what" = linux ] && printf ', "initrd_path": "%s"' "$initrd"
			printf '},\n "drives": [],\n "machine-config": {"vcpu_count": %s, "mem_size_mib": %s}}\n' "$cpus" "$mem"
		} >"$cfg"
		CMD=("$bin" --no-api --config-file "$cfg")
		;;
	cloud-hypervisor)
		[ -n "$elf" ] || { WHY="boots ELF (PVH) kernels and the exit-throughput guest is a bzImage"; return 1; }
		IMG=$elf
		CMD=("$bin" --kernel "$elf" --cpus "boot=$cpus" --memory "size=${mem}M" --serial tty --console off)
		[ "$what" = linux ] && CMD+=(--initramfs "$initrd" --cmdline "$linux_cmdline")
		;;
	lkvm)
		[ -n "$bz" ] || { WHY="loads bzImage or flat kernels, not the default guest's vmlinux ELF"; return 1; }
		IMG=$bz
		CMD=("$bin" run -k "$bz" -m "$mem" -c "$cpus" --console serial)
		[ "$what" = flood ] && { WHY="not wired up for the exit benchmark"; return 1; }
		;;
	esac
	return 0
}

# key VALUE-LINE KEY: the value of KEY=... in a harness output line.
key() { sed -n "s/.*\\b$2=\\([^ ]*\\).*/\\1/p" <<<"$1"; }
record() { echo "$3" >>"$res/$1.$2"; } # BENCH VMM VALUE

# --- probe each VMM once with the tiny image (also warms the page cache); drop those that fail --
active=()
for i in "${!names[@]}"; do
	vmm_cmd "${kinds[$i]}" "${bins[$i]}" tiny "$mem_mib" || true
	log=$out/logs/probe-${names[$i]}.err
	if line=$("$startup" --timeout 60 --stderr "$log" -- "${CMD[@]}" 2>"$log.harness"); then
		active+=("$i")
		echo "bench: ${names[$i]} boots the tiny image (${IMG##*/}): $(key "$line" t_us) us"
	else
		why=$(cat "$log.harness" "$log" 2>/dev/null | grep -v '^$' | head -3 | tr '\n' ' ')
		case ${kinds[$i]} in kiln | kiln-nosc | raw) die "${names[$i]} cannot boot the tiny image: $why" ;; esac
		note "${names[$i]} skipped: it did not boot the tiny image: $why"
	fi
done

# --- 1+2. startup (exec -> first serial byte) and memory at the first byte ---------------------
echo "bench: startup and memory at first byte: $runs runs, interleaved"
# Each round starts one VMM further on, so that no VMM always follows the same one: a VMM that
# has just exited (QEMU above all) leaves work in the kernel that lands on the next start.
rotated() { # ROUND -> the active indexes, rotated by ROUND
	local n=${#active[@]} k
	for ((k = 0; k < n; k++)); do echo "${active[$(((k + $1) % n))]}"; done
}
for ((r = 1; r <= runs; r++)); do
	for i in $(rotated "$r"); do
		vmm_cmd "${kinds[$i]}" "${bins[$i]}" tiny "$mem_mib"
		run_bg "$out/line" "$startup" --timeout 60 --mem-mib "$mem_mib" \
			--stderr "$out/logs/startup-${names[$i]}.err" -- "${CMD[@]}" ||
			die "startup run $r of ${names[$i]} failed (see $out/logs/startup-${names[$i]}.err)"
		line=$(line_of)
		record startup "${names[$i]}" "$(awk -v t="$(key "$line" t_us)" 'BEGIN{printf "%.3f", t/1000}')"
		record mem_rss "${names[$i]}" "$(awk -v k="$(key "$line" rss_kib)" 'BEGIN{printf "%.3f", k/1024}')"
		record mem_pss "${names[$i]}" "$(awk -v k="$(key "$line" pss_kib)" 'BEGIN{printf "%.3f", k/1024}')"
		record mem_uss "${names[$i]}" "$(awk -v k="$(key "$line" uss_kib)" 'BEGIN{printf "%.3f", k/1024}')"
		[ "$(key "$line" guest_maps)" = 1 ] ||
			note "${names[$i]}: $(key "$line" guest_maps) mappings of exactly ${mem_mib} MiB excluded as guest RAM"
	done
done

# --- 2b. what the seccomp filters cost at start: kiln against kiln --seccomp off, in pairs -----
# The start-up runs above vary by milliseconds from run to run on a shared host, more than the
# filters cost; pairs run back to back (order alternating) and the median of their differences
# tell it better.
sc_pairs=${BENCH_SECCOMP_PAIRS:-60}
echo "bench: seccomp cost at start: $sc_pairs pairs"
vmm_cmd kiln "$kiln" tiny "$mem_mib"
sc_on=("${CMD[@]}")
vmm_cmd kiln-nosc "$kiln" tiny "$mem_mib"
sc_off=("${CMD[@]}")
for ((r = 1; r <= sc_pairs; r++)); do
	for m in $( ((r % 2)) && echo "on off" || echo "off on"); do
		if [ "$m" = on ]; then CMD=("${sc_on[@]}"); else CMD=("${sc_off[@]}"); fi
		run_bg "$out/line" "$startup" --timeout 60 --stderr "$out/logs/seccomp-$m.err" \
			-- "${CMD[@]}" || die "seccomp pair $r ($m) failed (see $out/logs/seccomp-$m.err)"
		echo "$(key "$(line_of)" t_us)" >"$out/sc.$m"
	done
	awk -v a="$(cat "$out/sc.on")" -v b="$(cat "$out/sc.off")" 'BEGIN{printf "%.3f\n", (a-b)/1000}' \
		>>"$res/seccomp_diff.kiln"
done

# --- 3. exit throughput: kiln vs a raw KVM_RUN loop, same guest --------------------------------
# rawkvm drops each byte (the baseline the target is set against); rawkvm-echo also write()s it
# to stdout, as kiln's UART does, which tells the cost of that syscall from the rest of kiln.
echo "bench: exit throughput: $exit_bytes bytes, $exit_runs runs, interleaved"
flood=$out/flood-$exit_bytes.bzImage
base=$out/flood-1.bzImage
exit_cmd() { # VMM IMAGE BYTES -> CMD
	case $1 in
	kiln) CMD=("$kiln" run --kernel "$2" --memory "${mem_mib}M" --cpus 1 --serial stdio) ;;
	kiln-seccomp-off) CMD=("$kiln" run --kernel "$2" --memory "${mem_mib}M" --cpus 1 --serial stdio --seccomp off) ;;
	rawkvm) CMD=("$out/rawkvm" "$2" "$mem_mib" "$3") ;;
	rawkvm-echo) CMD=("$out/rawkvm" --echo "$2" "$mem_mib") ;;
	esac
}
# kiln's output is not looked at in the timed runs (/dev/null): check once that it is all there.
rm -f "$out/flood.out"
"$kiln" run --kernel "$flood" --memory "${mem_mib}M" --cpus 1 --serial "file=$out/flood.out" \
	</dev/null >/dev/null 2>"$out/logs/flood-check.err" ||
	die "kiln did not run the flood guest to its end (see $out/logs/flood-check.err)"
got=$(stat -c %s "$out/flood.out")
[ "$got" = "$exit_bytes" ] || die "kiln wrote $got serial bytes for a guest that sent $exit_bytes"
exit_vmms=(kiln kiln-seccomp-off rawkvm rawkvm-echo)
for ((r = 1; r <= exit_runs; r++)); do
	for v in "${exit_vmms[@]}"; do
		exit_cmd "$v" "$flood" "$exit_bytes"
		run_bg "$out/line" "$startup" --exit --timeout 600 --stderr "$out/logs/exit-$v.err" \
			-- "${CMD[@]}" || die "exit-throughput run $r of $v failed (see $out/logs/exit-$v.err)"
		record exit_full "$v" "$(key "$(line_of)" t_us)"
		exit_cmd "$v" "$base" 1
		run_bg "$out/line" "$startup" --exit --timeout 60 --stderr "$out/logs/exit-$v.err" \
			-- "${CMD[@]}" || die "exit-throughput baseline run $r of $v failed (see $out/logs/exit-$v.err)"
		record exit_base "$v" "$(key "$(line_of)" t_us)"
	done
done
# bytes/s per run: (N - 1) bytes over (that run's time - the median 1-byte run: start-up + end)
median() { sort -g "$1" | awk '{a[NR]=$1} END{if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
for v in "${exit_vmms[@]}"; do
	b=$(median "$res/exit_base.$v")
	awk -v b="$b" -v n="$exit_bytes" '{d=$1-b; if (d <= 0) exit 1; printf "%.0f\n", (n-1)/(d/1e6)}' \
		"$res/exit_full.$v" >"$res/exit_rate.$v" ||
		die "exit throughput of $v: a full run was not slower than the 1-byte baseline ($b us)"
	awk -v b="$b" -v n="$exit_bytes" '{printf "%.3f\n", ($1-b)/(n-1)}' "$res/exit_full.$v" >"$res/exit_us.$v"
done

# --- 4. real guest boot (optional) ------------------------------------------------------------
if [ "$linux" = 1 ]; then
	if [ ! -r "$linux_kernel" ] || [ ! -r "$linux_initrd" ]; then
		echo "bench: building the guests in $guest_dir"
		"$root/guest/build.sh" "$guest_dir"
		"$root/guest/build-kernel.sh" "$guest_dir"
	fi
	echo "bench: Linux boot: $linux_runs run(s), timeout $linux_timeout s each"
	for ((r = 1; r <= linux_runs; r++)); do
		for i in "${active[@]}"; do
			n=${names[$i]}
			case ${kinds[$i]} in raw | kiln-nosc) continue ;; esac
			if ! vmm_cmd "${kinds[$i]}" "${bins[$i]}" linux "$linux_mem_mib"; then
				[ "$r" = 1 ] && note "$n: Linux boot not measured: $WHY"
				continue
			fi
			if ! run_bg "$out/line" "$startup" --timeout "$linux_timeout" --cpu \
				--mem-mib "$linux_mem_mib" --at "kiln-guest: init started" \
				--at "starting a shell" --settle 5 --stderr "$out/logs/linux-$n.err" \
				--fail-stderr "KVM internal error" --log "$out/logs/linux-$n.console" \
				-- "${CMD[@]}" 2>"$out/logs/linux-$n.harness"; then
				why=$(sed -n '1s/; [0-9]* serial bytes.*//p' "$out/logs/linux-$n.harness")
				guest=$(grep -a -m2 -E 'Kernel panic|segfault|BUG:|Oops' "$out/logs/linux-$n.console" |
					tr -d '\r' | sed 's/^\[ *[0-9.]*\] //' | paste -sd';' || true)
				vmm=$(grep -a -m1 -E 'KVM internal error|emulation failure' "$out/logs/linux-$n.err" || true)
				op=$(sed -n 's/^Code=.*<\([0-9a-f][0-9a-f]\)>.*/\1/p' "$out/logs/linux-$n.err" | head -1)
				[ -n "$op" ] && vmm="$vmm, at an instruction starting with byte 0x$op"
				note "$n: Linux boot run $r failed: ${why#startup: }${guest:+; guest: $guest}${vmm:+; VMM: $vmm} (logs: $out/logs/linux-$n.*)"
				continue
			fi
			l1=$(sed -n 1p "$out/line") l2=$(sed -n 2p "$out/line")
			record linux_init "$n" "$(awk -v t="$(key "$l1" t_us)" 'BEGIN{printf "%.1f", t/1e6}')"
			record linux_vmmcpu "$n" "$(key "$l1" vmm_cpu_ms)"
			record linux_utime "$n" "$(key "$l1" utime_ms)"
			record linux_stime "$n" "$(key "$l1" stime_ms)"
			record linux_guest "$n" "$(key "$l1" guest_ms)"
			record linux_vcpusys "$n" "$(key "$l1" vcpu_stime_ms)"
			record linux_vmmown "$n" "$(awk -v a="$(key "$l1" vmm_cpu_ms)" -v b="$(key "$l1" vcpu_stime_ms)" 'BEGIN{print a-b}')"
			[ "$(key "$l1" vcpu_threads)" != 0 ] ||
				note "$n: no vCPU thread recognised by name: the 'less vCPU kernel time' row is the whole VMM CPU"
			record linux_rss "$n" "$(awk -v k="$(key "$l2" rss_kib)" 'BEGIN{printf "%.3f", k/1024}')"
			record linux_pss "$n" "$(awk -v k="$(key "$l2" pss_kib)" 'BEGIN{printf "%.3f", k/1024}')"
			record linux_uss "$n" "$(awk -v k="$(key "$l2" uss_kib)" 'BEGIN{printf "%.3f", k/1024}')"
		done
	done
else
	note "Linux boot and idle-guest memory not measured: set BENCH_LINUX=1 (minutes per boot here)"
fi

# --- 5. density --------------------------------------------------------------------------------
echo "bench: density: as many ${mem_mib} MiB VMs as start in ${density_s} s (at most $density_max), $density_runs runs"
for ((r = 1; r <= density_runs; r++)); do
	for i in "${active[@]}"; do
		n=${names[$i]}
		case ${kinds[$i]} in raw | kiln-nosc) continue ;; esac
		vmm_cmd "${kinds[$i]}" "${bins[$i]}" tiny "$mem_mib"
		run_bg "$out/line" "$out/density" --seconds "$density_s" --max "$density_max" \
			--mem-mib "$mem_mib" -- "${CMD[@]}" 2>"$out/logs/density-$n.err" ||
			die "density run $r of $n failed: $(tail -c 300 "$out/logs/density-$n.err")"
		line=$(line_of)
		record density_vms "$n" "$(key "$line" vms)"
		record density_rate "$n" "$(key "$line" vms_per_s)"
		record density_rss "$n" "$(awk -v k="$(key "$line" total_rss_kib)" 'BEGIN{printf "%.1f", k/1024}')"
		record density_pss "$n" "$(awk -v k="$(key "$line" total_pss_kib)" 'BEGIN{printf "%.1f", k/1024}')"
		stop=${line#*stop=}
		[ "$stop" = "time up" ] || note "density of $n run $r stopped early: $stop"
	done
done

# --- 6. REST API latency (bench/api.sh, its own format) ----------------------------------------
api_out=$out/api.txt
rm -f "$api_out"
if "$kiln" api --help >/dev/null 2>&1 && command -v python3 >/dev/null; then
	echo "bench: REST API latency (bench/api.sh)"
	run_bg "$api_out" "$here/api.sh" "$kiln" "$((runs < 10 ? 10 : runs))" ||
		die "bench/api.sh failed"
else
	note "REST API latency not measured: no 'kiln api' or no python3"
fi

# --- 6b. snapshot restore, Full and Diff create (bench/snapshot.sh, its own format) ---------------
snap_out=$out/snapshot.txt
rm -f "$snap_out"
flood_guest=$(dirname "$kiln")/tests/guests/flood.elf
if [ -f "$flood_guest" ] && [ -f "${flood_guest%/*}/dirty.elf" ] && command -v python3 >/dev/null; then
	echo "bench: snapshot restore, Full and Diff create (bench/snapshot.sh)"
	run_bg "$snap_out" "$here/snapshot.sh" "$kiln" "$flood_guest" "$((runs < 10 ? 10 : runs))" ||
		die "bench/snapshot.sh failed"
else
	note "snapshots not measured: no $flood_guest or dirty.elf beside it (guest_tests=false) or no python3"
fi

# --- 7. virtio-blk throughput in process (bench/blk.c, no KVM) ------------------------------------
if [ "$blk" = off ]; then
	note "virtio-blk throughput not measured (BENCH_BLK=off)"
elif [ ! -x "$blk" ]; then
	note "virtio-blk throughput not measured: no $blk (built with kiln by meson)"
else
	echo "bench: virtio-blk in process vs raw io_uring: $runs runs of ${blk_s} s per workload and engine, in 10 interleaved slices"
	run_bg "$out/blk.txt" "$blk" --file "$blk_file" --size "$blk_mib" --runs "$runs" \
		--seconds "$blk_s" 2>"$out/logs/blk.err" ||
		die "bench/blk failed: $(tail -c 300 "$out/logs/blk.err")"
	while read -r line; do
		w=$(key "$line" workload) impl=$(key "$line" impl)
		record "blk_${w}_iops" "$impl" "$(key "$line" iops)"
		record "blk_${w}_mbps" "$impl" "$(key "$line" mbps)"
		record "blk_${w}_cpu" "$impl" "$(key "$line" cpu_us_per_op)"
	done < <(grep '^blk ' "$out/blk.txt")
fi

# In-process benchmarks that need root and a TAP (exit 77 without): NAME BIN WHAT ARGS... runs
# BIN into $out/NAME.txt; returns 1 (with a note) when it was not measured.
run_tap_bench() {
	local name=$1 bin=$2 what=$3 rc=0
	shift 3
	if [ "$bin" = off ]; then
		note "$what not measured (BENCH_${name^^}=off)"
		return 1
	elif [ ! -x "$bin" ]; then
		note "$what not measured: no $bin (built with kiln by meson)"
		return 1
	fi
	run_bg "$out/$name.txt" "$bin" "$@" 2>"$out/logs/$name.err" || rc=$?
	if [ "$rc" = 77 ]; then
		note "$what not measured: $(head -c 200 "$out/$name.txt")"
		return 1
	elif [ "$rc" != 0 ]; then
		die "bench/$name failed: $(tail -c 300 "$out/logs/$name.err")"
	fi
}

# --- 8. virtio-net on a TAP in process (bench/net.c, no KVM) -------------------------------------
echo "bench: virtio-net on a TAP in process vs raw read/write: $runs runs, interleaved"
if run_tap_bench net "$netb" "virtio-net throughput" -r "$runs"; then
	while read -r line; do
		d=$(key "$line" dir) sz=$(key "$line" size) impl=$(key "$line" impl)
		record "net_${d}_${sz}_pps" "$impl" "$(key "$line" pps)"
		record "net_${d}_${sz}_mbps" "$impl" "$(key "$line" mbps)"
	done < <(grep '^net ' "$out/net.txt")
fi

# --- 9. user-mode networking through passt (bench/usernet.c, no KVM) -----------------------------
echo "bench: guest <-> host TCP through passt: $runs runs"
if run_tap_bench usernet "$usernetb" "user-mode networking throughput" -r "$runs"; then
	while read -r line; do
		d=$(key "$line" dir) impl=$(key "$line" impl) path=$(key "$line" path)
		record "usernet_${d}_mbps" "$impl-$path" "$(key "$line" mbps)"
	done < <(grep '^usernet ' "$out/usernet.txt")
fi

# --- table ------------------------------------------------------------------------------------
table=$out/table.md
row() { # BENCH-KEY LABEL UNIT: one row per VMM that has results
	local f v
	for f in "$res/$1".*; do
		[ -e "$f" ] || continue
		v=${f##*/"$1".}
		sort -g "$f" | awk -v label="$2" -v vmm="$v" -v unit="$3" '
			{a[NR]=$1}
			END {
				# the median with as many decimals as the values have
				dec = index(a[1], ".") ? length(a[1]) - index(a[1], ".") : 0
				med = (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2
				printf "| %s | %s | %d | %s | %.*f | %s | %s |\n", label, vmm, NR, a[1], dec, med, a[NR], unit
			}'
	done
}
ratio() { # BENCH-KEY A B LABEL: median(A)/median(B)
	[ -e "$res/$1.$2" ] && [ -e "$res/$1.$3" ] || return 0
	awk -v a="$(median "$res/$1.$2")" -v b="$(median "$res/$1.$3")" -v l="$4" \
		'BEGIN{ if (b > 0) printf "- %s: %.3f\n", l, a/b }'
}
{
	echo "| benchmark | VMM | runs | min | median | max | unit |"
	echo "| --- | --- | --- | --- | --- | --- | --- |"
	row startup "startup: exec -> first serial byte (tiny image)" ms
	row mem_rss "memory at first byte: RSS without guest RAM" MiB
	row mem_pss "memory at first byte: PSS without guest RAM" MiB
	row mem_uss "memory at first byte: USS (private) without guest RAM" MiB
	row exit_rate "exit throughput: OUT 0x3f8, $exit_bytes bytes" bytes/s
	row exit_us "exit throughput: time per exit" us
	row linux_init "Linux boot: exec -> /init banner" s
	row linux_vmmcpu "Linux boot: VMM CPU (utime+stime-guest_time)" ms
	row linux_vmmown "Linux boot: VMM CPU less vCPU threads' stime" ms
	row linux_utime "Linux boot: utime (incl. guest_time)" ms
	row linux_stime "Linux boot: stime" ms
	row linux_vcpusys "Linux boot: stime of vCPU threads" ms
	row linux_guest "Linux boot: guest_time" ms
	row linux_rss "idle Linux at shell: RSS without guest RAM" MiB
	row linux_pss "idle Linux at shell: PSS without guest RAM" MiB
	row linux_uss "idle Linux at shell: USS (private) without guest RAM" MiB
	row density_vms "density: VMs started in ${density_s} s" VMs
	row density_rate "density: start rate" VMs/s
	row density_rss "density: total RSS of all VMMs" MiB
	row density_pss "density: total PSS of all VMMs" MiB
	row blk_rand4k_iops "virtio-blk in process: 4 KiB random reads, QD 32" IOPS
	row blk_rand4k_mbps "virtio-blk in process: 4 KiB random reads, QD 32" MB/s
	row blk_seq64k_iops "virtio-blk in process: 64 KiB sequential reads, QD 32" IOPS
	row blk_seq64k_mbps "virtio-blk in process: 64 KiB sequential reads, QD 32" MB/s
	row blk_rand4k_cpu "virtio-blk in process: 4 KiB random reads, CPU time per request" us
	row blk_seq64k_cpu "virtio-blk in process: 64 KiB sequential reads, CPU time per request" us
	row net_rx_64_pps "virtio-net on a TAP: host -> guest, 64-byte frames" pkts/s
	row net_rx_64_mbps "virtio-net on a TAP: host -> guest, 64-byte frames" Mbit/s
	row net_rx_1514_pps "virtio-net on a TAP: host -> guest, 1514-byte frames" pkts/s
	row net_rx_1514_mbps "virtio-net on a TAP: host -> guest, 1514-byte frames" Mbit/s
	row net_rx_65000_pps "virtio-net on a TAP: host -> guest, 65000-byte frames" pkts/s
	row net_rx_65000_mbps "virtio-net on a TAP: host -> guest, 65000-byte frames" Mbit/s
	row net_tx_64_pps "virtio-net on a TAP: guest -> host, 64-byte frames" pkts/s
	row net_tx_64_mbps "virtio-net on a TAP: guest -> host, 64-byte frames" Mbit/s
	row net_tx_1514_pps "virtio-net on a TAP: guest -> host, 1514-byte frames" pkts/s
	row net_tx_1514_mbps "virtio-net on a TAP: guest -> host, 1514-byte frames" Mbit/s
	row net_tx_65000_pps "virtio-net on a TAP: guest -> host, 65000-byte frames" pkts/s
	row net_tx_65000_mbps "virtio-net on a TAP: guest -> host, 65000-byte frames" Mbit/s
	row usernet_up_mbps "user-mode networking (passt): guest -> host TCP" Mbit/s
	row usernet_down_mbps "user-mode networking (passt): host -> guest TCP" Mbit/s
	echo
	echo "Ratios (medians):"
	echo
	ratio startup kiln rawkvm "startup kiln / rawkvm (the floor: KVM set-up alone)"
	ratio mem_rss kiln rawkvm "memory overhead (RSS) kiln / rawkvm"
	ratio startup kiln rawkvm-static "startup kiln / rawkvm-static (the floor for a static binary)"
	ratio exit_us kiln kiln-seccomp-off "time per exit kiln / kiln --seccomp off (the filters on the exit path)"
	if [ -e "$res/seccomp_diff.kiln" ]; then
		echo "- startup kiln - kiln --seccomp off, median of $(wc -l <"$res/seccomp_diff.kiln") back-to-back pairs: $(median "$res/seccomp_diff.kiln") ms (the filters; target <= 0.1)"
	fi
	ratio mem_rss kiln rawkvm-static "memory overhead (RSS) kiln / rawkvm-static"
	for i in "${active[@]}"; do
		p=${names[$i]}
		case ${kinds[$i]} in kiln | kiln-nosc | raw) continue ;; esac
		ratio startup kiln "$p" "startup kiln / $p"
		ratio mem_rss kiln "$p" "memory overhead (RSS) kiln / $p"
		ratio mem_uss kiln "$p" "memory overhead (USS) kiln / $p"
		ratio linux_init kiln "$p" "Linux boot to /init kiln / $p"
		ratio linux_vmmcpu kiln "$p" "Linux boot VMM CPU kiln / $p"
		ratio linux_vmmown kiln "$p" "Linux boot VMM CPU less vCPU stime kiln / $p"
		ratio density_vms kiln "$p" "density kiln / $p"
	done
	ratio blk_rand4k_iops kiln-uring raw-uring "virtio-blk 4 KiB random reads kiln (io_uring) / raw io_uring (target >= 0.9)"
	ratio blk_seq64k_iops kiln-uring raw-uring "virtio-blk 64 KiB sequential reads kiln (io_uring) / raw io_uring (target >= 0.9)"
	ratio blk_rand4k_iops kiln-sync raw-uring "virtio-blk 4 KiB random reads kiln (sync) / raw io_uring"
	ratio blk_seq64k_iops kiln-sync raw-uring "virtio-blk 64 KiB sequential reads kiln (sync) / raw io_uring"
	ratio blk_rand4k_iops kiln-sync raw-preadv "virtio-blk 4 KiB random reads kiln (sync) / raw preadv"
	ratio blk_seq64k_iops kiln-sync raw-preadv "virtio-blk 64 KiB sequential reads kiln (sync) / raw preadv"
	ratio net_rx_64_pps kiln raw "virtio-net RX (host -> guest) 64-byte frames kiln / raw read-write on the TAP"
	ratio net_rx_1514_pps kiln raw "virtio-net RX (host -> guest) 1514-byte frames kiln / raw read-write on the TAP"
	ratio net_rx_65000_pps kiln raw "virtio-net RX (host -> guest) 65000-byte frames kiln / raw read-write on the TAP"
	ratio net_tx_64_pps kiln raw "virtio-net TX (guest -> host) 64-byte frames kiln / raw read-write on the TAP"
	ratio net_tx_1514_pps kiln raw "virtio-net TX (guest -> host) 1514-byte frames kiln / raw read-write on the TAP"
	ratio net_tx_65000_pps kiln raw "virtio-net TX (guest -> host) 65000-byte frames kiln / raw read-write on the TAP"
	awk -v k="$(median "$res/exit_us.kiln")" -v r="$(median "$res/exit_us.rawkvm")" \
		-v e="$(median "$res/exit_us.rawkvm-echo")" 'BEGIN{
		printf "- time per exit kiln / rawkvm (drops the byte): %.3f: kiln adds %.1f %% (%.2f us) per exit\n", k/r, (k/r-1)*100, k-r
		printf "- time per exit kiln / rawkvm-echo (write()s the byte too): %.3f: %.1f %% (%.2f us)\n", k/e, (k/e-1)*100, k-e }'
} >"$table"

cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
{
	echo "# kiln benchmark results"
	echo
	echo "Written by \`make bench\` (bench/run.sh); docs/benchmarks.md says what each row measures."
	echo
	echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
	echo "- host CPU: ${cpu_model:-unknown} ($(nproc) CPUs)"
	echo "- kernel: $(uname -r)"
	echo "- load average when the run ended: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "- kiln: $("$kiln" --version 2>/dev/null | head -1)"
	echo "- rawkvm: bench/rawkvm.c, the floor (minimal KVM_RUN loop, not a peer); rawkvm-static: the same, static with musl"
	for i in "${active[@]}"; do
		case ${kinds[$i]} in kiln | kiln-nosc | raw) continue ;; esac
		echo "- ${names[$i]}: ${bins[$i]} ($("${bins[$i]}" --version 2>/dev/null | head -1))"
	done
	echo "- tiny-image VMs: ${mem_mib} MiB, 1 vCPU; kiln and the peers interleaved run by run"
	[ -s "$out/blk.txt" ] && echo "- virtio-blk in process: bench/blk, ${blk_mib} MiB file in the page cache ($(df -PT "$(dirname "$blk_file")" | awk 'NR==2{print $2}')), ${blk_s} s per run and implementation in 10 slices taken in turn (kiln-uring, raw-uring, kiln-sync, raw-preadv)"
	[ -s "$out/net.txt" ] && echo "- virtio-net in process: bench/net, a TAP in its own network namespace, 20 batches of 1000 frames per run and direction; raw and kiln interleaved run by run"
	[ -s "$out/usernet.txt" ] && echo "- user-mode networking: bench/usernet, a network namespace with a TAP as the guest's TCP stack, one 64 MiB connection per run, direction and path, through passt to a server on the host's loopback (host_loopback; passt-loopback) or on its own non-loopback address (passt-nat)"
	[ "$linux" = 1 ] && echo "- Linux guest: $linux_kernel + $(basename "$linux_initrd"), ${linux_mem_mib} MiB, $linux_cpus vCPUs, $linux_runs run(s) per VMM"
	[ -n "${BENCH_NOTE:-}" ] && echo "- note: $BENCH_NOTE"
	[ "$runs" -lt 10 ] && echo "- note: only $runs runs per benchmark (BENCH_RUNS), fewer than the 10 asked for"
	for n in "${notes[@]}"; do echo "- $n"; done
	echo
	cat "$table"
	if [ -s "$api_out" ]; then
		echo
		echo "REST API (bench/api.sh, kiln only):"
		echo
		echo '```'
		cat "$api_out"
		echo '```'
	fi
	if [ -s "$snap_out" ]; then
		echo
		echo "Snapshots (bench/snapshot.sh, kiln only):"
		echo
		echo '```'
		cat "$snap_out"
		echo '```'
	fi
} >"$results"
echo
cat "$results"
echo
echo "bench: wrote $results"
