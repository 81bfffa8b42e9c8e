/* emul_fixups.c: INT3 and FWAIT, which kiln completes itself here: one #BP, RIP after int3. */
#include "runtime.h"

const char guest_name[] = "emul_fixups";

#define MAGIC_RBX 0x1122334455667788ull
#define MAGIC_R12 0x0badc0dedeadbeefull

static volatile unsigned bp_count;
static volatile uint64_t bp_rip, bp_rbx, bp_r12, bp_cs;

static void bp_handler(struct trap_frame *f)
{
	bp_count++;
	bp_rip = f->rip;
	bp_rbx = f->rbx;
	bp_r12 = f->r12;
	bp_cs = f->cs;
}

void guest_main(void)
{
	uint64_t after, rbx_out, r12_out;
	unsigned waits = 0;

	idt_set_handler(3, bp_handler);

	/* #BP is a trap: the saved RIP must be the byte after the int3 */
	__asm__ volatile("movq %3, %%rbx\n\t"
			 "movq %4, %%r12\n\t"
			 "leaq 1f(%%rip), %0\n\t"
			 "int3\n"
			 "1:\n\t"
			 "movq %%rbx, %1\n\t"
			 "movq %%r12, %2"
			 : "=&r"(after), "=r"(rbx_out), "=r"(r12_out)
			 : "i"(MAGIC_RBX & 0x7fffffff), "i"(MAGIC_R12 & 0x7fffffff)
			 : "rbx", "r12", "memory");
	kprintf("emul_fixups: int3: #BP count %u, saved rip 0x%lx (expected 0x%lx), cs 0x%lx\n",
		bp_count, bp_rip, after, bp_cs);
	if (bp_count != 1)
		fail("#BP handler ran %u times, expected once", bp_count);
	if (bp_rip != after)
		fail("#BP saved rip 0x%lx, expected 0x%lx (the instruction after int3)", bp_rip,
		     after);
	if (bp_cs != SEL_CODE64)
		fail("#BP saved cs 0x%lx", bp_cs);
	if (bp_rbx != (MAGIC_RBX & 0x7fffffff) || bp_r12 != (MAGIC_R12 & 0x7fffffff) ||
	    rbx_out != bp_rbx || r12_out != bp_r12)
		fail("registers changed across int3: rbx 0x%lx/0x%lx r12 0x%lx/0x%lx", bp_rbx,
		     rbx_out, bp_r12, r12_out);

	/* FWAIT with CR0.TS clear: no exception, just continue (an exception would print FAIL) */
	for (unsigned i = 0; i < 2; i++) {
		__asm__ volatile("fwait" ::: "memory");
		waits++;
	}
	kprintf("emul_fixups: fwait x%u completed\n", waits);
	if (waits != 2 || bp_count != 1)
		fail("fwait: %u completed, #BP count now %u", waits, bp_count);
	pass("");
}
