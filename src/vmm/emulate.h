/* emulate.h: instructions kiln completes itself when KVM's emulator reports it cannot. */
#pragma once

#include <linux/kvm.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One entry per instruction kiln completes on KVM_INTERNAL_ERROR_EMULATION.
 * `apply` is pure: it edits the register and event snapshots; the caller writes them back. */
struct emul_fixup {
	uint8_t opcode;    /* first instruction byte (no prefixes accepted) */
	uint8_t length;    /* bytes to skip */
	const char *name;
	void (*apply)(struct kvm_regs *regs, struct kvm_vcpu_events *events);
	bool needs_events; /* apply() changes events: caller must GET/SET_VCPU_EVENTS */
};

/* Entry for the failing instruction bytes, or NULL if kiln cannot complete it. */
const struct emul_fixup *emul_fixup_find(const uint8_t *insn, size_t len);

/* Number of entries and entry i (for tests and logs). */
size_t emul_fixup_count(void);
const struct emul_fixup *emul_fixup_get(size_t i);

/* Format up to len instruction bytes as "0f b8 04 25 ..." into buf. */
void emul_format_bytes(const uint8_t *insn, size_t len, char *buf, size_t buflen);
