/* regs.h: initial vCPU register state for the boot entry chosen by the loader. */
#pragma once

#include <linux/kvm.h>

#include "arch/x86/boot.h"
#include "util/compiler.h"

/* Pure: fill regs/sregs for the BSP (no ioctl). sregs must hold the values read from KVM first
 * (KVM_GET_SREGS) so fields kiln does not set keep KVM's defaults. */
void x86_regs_build(const struct boot_info *bi, struct kvm_regs *regs, struct kvm_sregs *sregs);

/* GET_SREGS, build, SET_SREGS + SET_REGS (+ FPU defaults) on vcpu_fd. Returns 0 or -errno. */
int x86_regs_setup(int vcpu_fd, const struct boot_info *bi) __must_check;
