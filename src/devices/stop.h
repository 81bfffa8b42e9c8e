/* stop.h: how a device asks the VM to end (guest reset, power-off) without knowing the VMM. */
#pragma once

enum vm_stop_reason {
	VM_STOP_NONE = 0,
	VM_STOP_RESET,       /* guest reboot: i8042 0xFE, ACPI reset register, triple fault */
	VM_STOP_POWEROFF,    /* ACPI S5 */
	VM_STOP_ERROR,       /* VMM error or unhandled exit: kiln exits 1 */
	VM_STOP_USER,        /* signal or API request */
};

struct vm_stopper {
	void (*request)(void *opaque, enum vm_stop_reason why);
	void *opaque;
};

static inline void vm_stopper_request(const struct vm_stopper *s, enum vm_stop_reason why)
{
	if (s && s->request)
		s->request(s->opaque, why);
}
