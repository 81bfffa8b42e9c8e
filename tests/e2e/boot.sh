#!/usr/bin/env bash
# Real-guest e2e test: boots a Linux guest under kiln once (2 vCPUs) and checks what its kernel
# and /init report.
#
# Usage: tests/e2e/boot.sh KILN GUESTDIR [debian|kiln|auto]    (see lib.sh)
#
# With the unmodified Debian cloud kernel on a PVM host, user space cannot make a system call
# (docs/design.md, "PVM host"): there the test checks everything up to /init (ACPI tables,
# CPUs from the MADT, the PCI scan, the console) and then that init died of exactly that known
# fault, and that kiln ended cleanly on the guest's panic reboot. Anywhere else, and with the
# kiln kernel, the boot test in the guest must pass.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/e2e/lib.sh
. "$here/lib.sh"
e2e_init boot "$@"
cpus=2
memory=256M

# Without `quiet`: the kernel's own lines are part of what is checked.
cmdline=$(e2e_cmdline boot | sed 's/\bquiet\b//')
: >"$log"
e2e_run /dev/null "$log" run --kernel "$kernel" --initrd "$initrd" --cmdline "$cmdline" \
	--cpus "$cpus" --memory "$memory" --serial stdio

e2e_checks_begin
# What the kernel saw of the machine, before any user space.
expect_line 'ACPI: RSDP 0x[0-9A-F]+ [0-9A-F]+ \(v02 KILN'
expect_line 'ACPI: Using ACPI \(MADT\) for SMP configuration information'
expect_line "smp: Brought up 1 node, $cpus CPUs"
expect_line 'pci 0000:00:0[0-9a-f]\.0: \[1af4:10[0-9a-f]{2}\]' # --rng is on by default
expect_line 'ttyS0 at I/O 0x3f8 .* is a 16550A'
expect_line 'Run /init as init process'
if [ "$flavor" = debian ] && [ "$host_pvm" = 1 ]; then
	# init's first system call: SYSCALL left in user mode, so fetching entry_SYSCALL_64
	# faults from user mode at the very address it jumps to.
	expect_line 'init\[1\]: segfault at ([0-9a-f]+) ip \1 '
	expect_line 'Kernel panic - not syncing: Attempted to kill init'
	expect "kiln exited before E2E_TIMEOUT=${timeout_s}s" [ "$timed_out" = 0 ]
	expect "kiln exit status 0 on the guest's panic reboot (got $rc)" [ "$rc" = 0 ]
	expect_no_line 'emulation failure|KVM internal error'
else
	expect_test_passed boot "$cpus"
fi
e2e_finish
