/* emulate.c: table of instructions completed by kiln after a KVM emulation failure.
 *
 * On hosts where guest kernel code goes through KVM's instruction emulator (PVM, or MMIO
 * accesses on VT-x/SVM), a few instructions make KVM give up with
 * KVM_INTERNAL_ERROR_EMULATION. Those whose architectural effect is simple are completed
 * here; everything else stops the VM with the bytes logged (vcpu.c). */
#include "vmm/emulate.h"

#include <stdio.h>

#define BP_VECTOR 3

/* INT3: a trap, so the return address the guest's #BP handler sees is the next
 * instruction. Advance RIP past the opcode, then inject #BP as a pending exception. */
static void int3_apply(struct kvm_regs *regs, struct kvm_vcpu_events *events)
{
	regs->rip += 1;
	events->exception.injected = 1;
	events->exception.nr = BP_VECTOR;
	events->exception.has_error_code = 0;
	events->exception.error_code = 0;
}

/* FWAIT: waits for pending x87 exceptions. kiln never leaves one pending for the guest's
 * kernel (no unmasked x87 faults on this path), so completing it is skipping it. */
static void fwait_apply(struct kvm_regs *regs, struct kvm_vcpu_events *events)
{
	(void)events;
	regs->rip += 1;
}

static const struct emul_fixup fixups[] = {
	{ .opcode = 0xcc, .length = 1, .name = "INT3", .apply = int3_apply, .needs_events = true },
	{ .opcode = 0x9b, .length = 1, .name = "FWAIT", .apply = fwait_apply },
};

const struct emul_fixup *emul_fixup_find(const uint8_t *insn, size_t len)
{
	if (!insn || len == 0)
		return NULL;
	for (size_t i = 0; i < sizeof(fixups) / sizeof(fixups[0]); i++)
		if (fixups[i].opcode == insn[0])
			return &fixups[i];
	return NULL;
}

size_t emul_fixup_count(void)
{
	return sizeof(fixups) / sizeof(fixups[0]);
}

const struct emul_fixup *emul_fixup_get(size_t i)
{
	return i < emul_fixup_count() ? &fixups[i] : NULL;
}

void emul_format_bytes(const uint8_t *insn, size_t len, char *buf, size_t buflen)
{
	size_t off = 0;
	if (buflen == 0)
		return;
	buf[0] = '\0';
	for (size_t i = 0; i < len && off + 4 <= buflen; i++)
		off += (size_t)snprintf(buf + off, buflen - off, i ? " %02x" : "%02x", insn[i]);
}
