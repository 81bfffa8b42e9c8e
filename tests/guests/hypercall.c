/* hypercall.c: KVM's paravirt CPUID leaves and one hypercall. On real KVM an unknown hypercall
 * number returns -KVM_ENOSYS. On a PVM host kiln hides the hypercall-based PV features and the
 * hypercall raises #UD (see usermode.sh for how the harness tells the hosts apart). */
#include "runtime.h"

const char guest_name[] = "hypercall";

#define KVM_ENOSYS 1000
#define PV_HYPERCALL_FEATURES ((1u << 7) | (1u << 11) | (1u << 13) | (1u << 16))

static inline void cpuid(uint32_t leaf, uint32_t *a, uint32_t *b, uint32_t *c, uint32_t *d)
{
	__asm__ volatile("cpuid" : "=a"(*a), "=b"(*b), "=c"(*c), "=d"(*d) : "a"(leaf), "c"(0));
}

static volatile unsigned ud_count;
static volatile uint64_t ud_rip;

static void ud_handler(struct trap_frame *f)
{
	ud_count++;
	ud_rip = f->rip;
	f->rip += 3; /* both VMCALL and VMMCALL are 3 bytes */
	f->rax = 0xdead;
}

void guest_main(void)
{
	uint32_t a, b, c, d, max;
	char sig[13];
	bool amd;
	uint64_t r = 0xffff; /* no such hypercall */

	cpuid(0, &max, &b, &c, &d);
	amd = b == 0x68747541u; /* "Auth"enticAMD */
	cpuid(0x40000000, &max, &b, &c, &d);
	memcpy(sig, &b, 4);
	memcpy(sig + 4, &c, 4);
	memcpy(sig + 8, &d, 4);
	sig[12] = 0;
	if (memcmp(sig, "KVMKVMKVM\0\0\0", 12) != 0)
		fail("CPUID 0x40000000 signature '%s', expected KVMKVMKVM", sig);
	cpuid(0x40000001, &a, &b, &c, &d);
	kprintf("hypercall: KVM features 0x%x (hypercall-based: 0x%x)\n", a,
		a & PV_HYPERCALL_FEATURES);
	if (a & PV_HYPERCALL_FEATURES)
		kprintf("hypercall: HYPERCALL-FEATURES-VISIBLE\n");
	else
		kprintf("hypercall: HYPERCALL-FEATURES-HIDDEN\n");

	idt_set_handler(6, ud_handler);
	if (amd)
		__asm__ volatile("vmmcall" : "+a"(r) : : "memory");
	else
		__asm__ volatile("vmcall" : "+a"(r) : : "memory");
	if (ud_count)
		kprintf("hypercall: HYPERCALL-UD at rip 0x%lx\n", ud_rip);
	else if ((int64_t)r == -KVM_ENOSYS)
		kprintf("hypercall: HYPERCALL-ENOSYS\n");
	else
		fail("unknown hypercall returned %ld, expected -%d or #UD", (long)r, KVM_ENOSYS);
	pass("");
}
