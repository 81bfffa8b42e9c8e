#!/bin/sh
# host.sh: run a guest whose expected output depends on the kind of KVM host.
#
# usage: host.sh KILN GUEST       (GUEST is usermode.elf, usermode_high.elf or hypercall.elf)
#
# On real VT-x/AMD-V KVM, SYSCALL and INT 0x80 from ring 3 and hypercalls work: the guests
# must print no HOSTBUG line and the hypercall returns -KVM_ENOSYS. On a PVM-backed /dev/kvm
# (module kvm_pvm loaded) they are known not to (docs/design.md, "PVM host"): SYSCALL reaches
# LSTAR still in user mode, INT 0x80 raises #UD, hypercalls raise #UD (kiln turns off KVM's
# hypercall-patching quirk, which would loop) and kiln hides the hypercall-based PV features.
# There the guests must report exactly that, so these tests fail the day the host changes and
# the work-arounds can go.
set -u
here=$(dirname "$0")
kiln=$1 guest=$2
pvm=0
[ -d /sys/module/kvm_pvm ] && pvm=1
case "$(basename "$guest" .elf):$pvm" in
usermode*:1)
	exec "$here/run.sh" --also '^HOSTBUG usermode: SYSCALL from ring 3' \
		--also '^HOSTBUG usermode: int 0x80' "$kiln" "$guest" 0 '^PASS usermode$' ;;
usermode*:0)
	exec "$here/run.sh" --reject '^HOSTBUG' "$kiln" "$guest" 0 '^PASS usermode$' ;;
hypercall:1)
	exec "$here/run.sh" --also 'HYPERCALL-FEATURES-HIDDEN' --also 'HYPERCALL-UD' \
		"$kiln" "$guest" 0 '^PASS hypercall$' ;;
hypercall:0)
	exec "$here/run.sh" --also 'HYPERCALL-ENOSYS' "$kiln" "$guest" 0 '^PASS hypercall$' ;;
esac
echo "host.sh: no expectations for $guest" >&2
exit 2
