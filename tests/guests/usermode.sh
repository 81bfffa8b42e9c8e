#!/bin/sh
# usermode.sh: run the usermode guest and hold it to what this host's KVM does.
#
# usage: usermode.sh KILN GUEST
#
# On real VT-x/AMD-V KVM, SYSCALL and INT 0x80 from ring 3 work and the guest must print no
# HOSTBUG line. On a PVM-backed /dev/kvm (module kvm_pvm loaded) they are known not to: SYSCALL
# reaches LSTAR still in user mode and INT 0x80 raises #UD (docs/design.md, "PVM host"). There
# the guest must report both, so that this test fails the day the host is fixed and the guest
# kernel's work-around can go.
set -u
here=$(dirname "$0")
if [ -d /sys/module/kvm_pvm ]; then
	exec "$here/run.sh" --also '^HOSTBUG usermode: SYSCALL from ring 3' \
		--also '^HOSTBUG usermode: int 0x80' "$1" "$2" 0 '^PASS usermode$'
fi
exec "$here/run.sh" --reject '^HOSTBUG' "$1" "$2" 0 '^PASS usermode$'
