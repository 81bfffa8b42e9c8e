/* usermode.c: ring 3 and back, the way Linux does it: IRETQ into 64-bit user code, SYSCALL
 * to LSTAR (kernel CS from STAR, RFLAGS masked by FMASK), SYSRETQ back, INT 0x80 through a DPL 3
 * gate, and a #PF taken from user mode on a supervisor-only page. Each transition is checked
 * from the kernel side (CS, RPL, RFLAGS, RCX/R11, error code). */
#include "runtime.h"

const char guest_name[] = "usermode";

/* Linux's x86-64 GDT numbering: user32 CS + 8 = user DS, user32 CS + 16 = user CS. */
#define SEL_UCODE32 0x23
#define SEL_UDATA 0x2b
#define SEL_UCODE64 0x33
#define SEL_TSS 0x38

#define MSR_EFER 0xc0000080
#define MSR_STAR 0xc0000081
#define MSR_LSTAR 0xc0000082
#define MSR_FMASK 0xc0000084
#define EFER_SCE 1u

#define RFLAGS_IF 0x200u
#define RFLAGS_DF 0x400u
#define RFLAGS_TF 0x100u
#define RFLAGS_AC 0x40000u
#define RFLAGS_FIXED 0x2u

#define PTE_U 0x04u

#define SYS_PING 1
#define SYS_EXIT 2
#define PING_ARG 0x1234abcdull
#define PING_RET 0x5a5a0001ull

static inline void wrmsr(uint32_t msr, uint64_t v)
{
	__asm__ volatile("wrmsr" : : "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)));
}

static inline uint16_t read_cs(void)
{
	uint16_t cs;
	__asm__ volatile("mov %%cs, %0" : "=r"(cs));
	return cs;
}

/* ---- GDT and TSS ---------------------------------------------------------------------------- */

struct __attribute__((packed)) tss64 {
	uint32_t reserved0;
	uint64_t rsp[3];
	uint64_t reserved1;
	uint64_t ist[7];
	uint64_t reserved2;
	uint16_t reserved3;
	uint16_t iomap_base;
};
_Static_assert(sizeof(struct tss64) == 104, "64-bit TSS");

static struct tss64 tss __attribute__((aligned(16)));
static uint64_t gdt[9] __attribute__((aligned(16)));

static uint8_t kstack[8192] __attribute__((aligned(16)));  /* TSS.RSP0 and SYSCALL stack */
static uint8_t guard_page[4096] __attribute__((aligned(4096))); /* supervisor-only, as all
								   * but the user pages */

/* Everything user mode touches: its own pages, the only ones with the U bit (as in Linux). */
struct user_data {
	uint8_t stack[8192];
	uint64_t rflags_before; /* RFLAGS just before SYSCALL */
	uint64_t result;	/* RAX after SYSRETQ */
	uint64_t int80_rax;	/* RAX after INT 0x80 */
};
static struct user_data udata __attribute__((aligned(4096)));

static void load_gdt_tss(void)
{
	uint64_t base = (uint64_t)&tss;
	struct __attribute__((packed)) {
		uint16_t limit;
		uint64_t base;
	} desc = {sizeof(gdt) - 1, (uint64_t)gdt};

	gdt[0] = 0;
	gdt[1] = 0x00cf9a000000ffffull; /* 0x08 kernel code32 */
	gdt[2] = 0x00af9a000000ffffull; /* 0x10 kernel code64 */
	gdt[3] = 0x00cf92000000ffffull; /* 0x18 kernel data */
	gdt[4] = 0x00cffa000000ffffull; /* 0x20 user code32, DPL 3 */
	gdt[5] = 0x00cff2000000ffffull; /* 0x28 user data, DPL 3 */
	gdt[6] = 0x00affa000000ffffull; /* 0x30 user code64, DPL 3 */
	/* 0x38: available 64-bit TSS, 16 bytes */
	gdt[7] = (sizeof(tss) - 1) | ((base & 0xffffff) << 16) | (0x89ull << 40) |
		 (((base >> 24) & 0xff) << 56);
	gdt[8] = base >> 32;

	tss.rsp[0] = (uint64_t)(kstack + sizeof(kstack));
	tss.iomap_base = sizeof(tss); /* no I/O bitmap: user port I/O faults */

	__asm__ volatile("lgdt %0\n\t"
			 "ltr %w1"
			 :
			 : "m"(desc), "r"((uint16_t)SEL_TSS)
			 : "memory");
}

/* ---- page tables: user access to the first 2 MiB, one 4 KiB page supervisor-only ----------- */

extern uint64_t pml4[512 * 6]; /* start.S: pml4, pdpt and 4 page directories, in a row */
static uint64_t pt0[512] __attribute__((aligned(4096)));
#ifdef USERMODE_HIGH
#define KERNEL_ALIAS 0xffffffff80000000ull
static uint64_t pdpt_hi[512] __attribute__((aligned(4096)));
static uint64_t pd_hi[512] __attribute__((aligned(4096)));
#else
#define KERNEL_ALIAS 0ull
#endif
extern const char user_text_start[], user_text_end[];

static void map_user(void)
{
	uint64_t *pdpt = pml4 + 512;
	uint64_t *pd = pml4 + 1024;

	/* split the first 2 MiB page into 4 KiB pages: supervisor-only but the user pages */
	for (unsigned i = 0; i < 512; i++)
		pt0[i] = ((uint64_t)i << 12) | 0x3;
	for (uint64_t a = (uint64_t)user_text_start; a < (uint64_t)user_text_end; a += 4096)
		pt0[a >> 12] |= PTE_U;
	for (uint64_t a = (uint64_t)&udata; a < (uint64_t)(&udata + 1); a += 4096)
		pt0[a >> 12] |= PTE_U;
	pd[0] = (uint64_t)pt0 | 0x7;
#ifdef USERMODE_HIGH
	/* the kernel's alias at 0xffffffff80000000 (Linux's __START_KERNEL_map), supervisor-only */
	pml4[511] = (uint64_t)pdpt_hi | 0x3;
	pdpt_hi[510] = (uint64_t)pd_hi | 0x3;
	pd_hi[0] = (uint64_t)pt0 | 0x3;
#endif
	pdpt[0] |= PTE_U;
	pml4[0] |= PTE_U;
	__asm__ volatile("mov %%cr3, %%rax\n\tmov %%rax, %%cr3" ::: "rax", "memory");
}

/* ---- what the kernel side saw ---------------------------------------------------------------- */

static volatile uint64_t sc_cs, sc_rflags, sc_rcx, sc_r11, sc_rax, sc_rdi, sc_count;
static volatile uint64_t user_rsp_saved;
static volatile uint64_t int80_cs, int80_ss, int80_count;
static volatile uint64_t pf_cs, pf_err, pf_cr2, pf_count, pf_rip;
static volatile uint64_t user_return_rip; /* set by user code: the instruction after SYSCALL */
static volatile int user_phase;

extern const char user_entry[], user_after_syscall[], user_pf_insn[], user_pf_resume[];
extern const char syscall_entry[];

/*
 * SYSCALL entry. On real hardware (and what Linux relies on): CPL 0, CS = STAR[47:32],
 * RCX = return RIP, R11 = RFLAGS, RFLAGS &= ~FMASK, RSP unchanged (still the user stack).
 * The first instruction records CS before anything else can fault.
 */
__asm__(".text\n"
	".globl syscall_entry\n"
	"syscall_entry:\n"
	"	swapgs\n"
	"	movq %rax, sc_rax(%rip)\n"
	"	movw %cs, %ax\n"
	"	movzwq %ax, %rax\n"
	"	movq %rax, sc_cs(%rip)\n"
	"	movq %rcx, sc_rcx(%rip)\n"
	"	movq %r11, sc_r11(%rip)\n"
	"	movq %rdi, sc_rdi(%rip)\n"
	"	pushfq\n"
	"	popq %rax\n"
	"	movq %rax, sc_rflags(%rip)\n"
	"	movq %rsp, user_rsp_saved(%rip)\n"
	"	leaq kstack+8192(%rip), %rsp\n"
	"	pushq %rcx\n"
	"	pushq %r11\n"
	"	call syscall_c\n"
	"	popq %r11\n"
	"	popq %rcx\n"
	"	movq user_rsp_saved(%rip), %rsp\n"
	"	swapgs\n"
	"	sysretq\n");

/* User code (ring 3), on its own page: INT 0x80, a user write to a supervisor page, SYSCALL
 * ping, exit. */
__asm__(".section .text.user, \"ax\"\n"
	".balign 4096\n"
	".globl user_text_start, user_text_end\n"
	"user_text_start:\n"
	".globl user_entry, user_after_syscall, user_pf_insn, user_pf_resume\n"
	"user_entry:\n"
	"	movl $0x80, %eax\n"
	".globl user_int80\n"
	"user_int80:\n"
	"	int $0x80\n"
	"	movq %rax, udata+8208(%rip)\n"
	"	leaq guard_page(%rip), %rbx\n"
	"user_pf_insn:\n"
	"	movq $1, (%rbx)\n"	/* #PF: present, write, user */
	"user_pf_resume:\n"
	"	pushfq\n"
	"	popq %rax\n"
	"	movq %rax, udata+8192(%rip)\n"
	"	movl $1, %eax\n"	/* SYS_PING */
	"	movq $0x1234abcd, %rdi\n"
	"	syscall\n"
	"user_after_syscall:\n"
	"	movq %rax, udata+8200(%rip)\n"
	"	movl $2, %eax\n"	/* SYS_EXIT */
	"	syscall\n"
	"	ud2\n"
	".balign 4096\n"
	"user_text_end:\n"
	".text\n");

static void check_syscall(void)
{
	kprintf("usermode: syscall: cs 0x%lx rcx 0x%lx (expected 0x%lx) r11 0x%lx rflags 0x%lx "
		"(user rflags 0x%lx) rax %lu rdi 0x%lx\n",
		sc_cs, sc_rcx, (uint64_t)user_after_syscall, sc_r11, sc_rflags, udata.rflags_before,
		sc_rax, sc_rdi);
	if (sc_cs != SEL_CODE64)
		fail("SYSCALL left CS at 0x%lx, expected the kernel CS 0x%x from STAR", sc_cs,
		     SEL_CODE64);
	if (sc_rcx != (uint64_t)user_after_syscall)
		fail("SYSCALL saved RCX 0x%lx, expected 0x%lx", sc_rcx,
		     (uint64_t)user_after_syscall);
	if ((sc_r11 & ~(uint64_t)0x10000) != (udata.rflags_before & ~(uint64_t)0x10000))
		fail("SYSCALL saved R11 0x%lx, user RFLAGS were 0x%lx", sc_r11,
		     udata.rflags_before);
	if (sc_rflags & (RFLAGS_IF | RFLAGS_DF | RFLAGS_TF | RFLAGS_AC))
		fail("FMASK not applied: RFLAGS 0x%lx in the SYSCALL handler", sc_rflags);
}

static volatile uint64_t int80_ud, syscall_hostbug;

static uint64_t syscall_dispatch(void)
{
	sc_count++;
	if (sc_rax == SYS_PING) {
		if (sc_rdi != PING_ARG)
			fail("syscall argument rdi 0x%lx, expected 0x%llx", sc_rdi, PING_ARG);
		return PING_RET;
	}
	if (sc_rax == SYS_EXIT) {
		kprintf("usermode: exit syscall after %lu syscalls, %lu int 0x80, %lu #PF\n",
			sc_count, int80_count, pf_count);
		if (udata.result != PING_RET)
			fail("SYSRETQ returned RAX 0x%lx to user mode, expected 0x%llx", udata.result,
			     PING_RET);
		if (int80_count + int80_ud != 1 || udata.int80_rax != 0x81)
			fail("int 0x80: %lu calls (%lu #UD), user saw rax 0x%lx", int80_count,
			     int80_ud, udata.int80_rax);
		if (pf_count != 1)
			fail("#PF from user mode: %lu", pf_count);
		pass("");
		guest_exit();
	}
	fail("unknown syscall %lu", sc_rax);
}

uint64_t syscall_c(void);
uint64_t syscall_c(void) /* the result goes back to user mode in RAX */
{
	check_syscall();
	return syscall_dispatch();
}

/*
 * A SYSCALL that the host left half done: RIP = LSTAR, RCX/R11 set, but still CPL 3, so the
 * first fetch at LSTAR (a supervisor page) faults from user mode. Say so, check what was
 * done, and complete the system call from the #PF frame, the way kiln's guest kernel does.
 */
static void syscall_from_fault(struct trap_frame *f)
{
	if (!syscall_hostbug++)
		kprintf("HOSTBUG usermode: SYSCALL from ring 3 reached LSTAR 0x%lx still in user "
			"mode (cs 0x%lx); completing it from the #PF handler\n",
			f->rip, f->cs);
	sc_rax = f->rax;
	sc_rcx = f->rcx;
	sc_r11 = f->r11;
	sc_rdi = f->rdi;
	if (sc_rax == SYS_PING && sc_rcx != (uint64_t)user_after_syscall)
		fail("SYSCALL saved RCX 0x%lx, expected 0x%lx", sc_rcx,
		     (uint64_t)user_after_syscall);
	f->rax = syscall_dispatch();
	f->rip = f->rcx;
	f->rflags = f->r11;
}

static void int80_handler(struct trap_frame *f)
{
	int80_count++;
	int80_cs = f->cs;
	int80_ss = f->ss;
	kprintf("usermode: int 0x80 from cs 0x%lx ss 0x%lx rip 0x%lx, handler cs 0x%x\n", f->cs,
		f->ss, f->rip, read_cs());
	if (f->cs != SEL_UCODE64 || f->ss != SEL_UDATA)
		fail("int 0x80 frame cs 0x%lx ss 0x%lx, expected 0x%x/0x%x", f->cs, f->ss,
		     SEL_UCODE64, SEL_UDATA);
	if (read_cs() != SEL_CODE64)
		fail("int 0x80 handler runs with cs 0x%x", read_cs());
	f->rax = 0x81;
}

static void pf_handler(struct trap_frame *f)
{
	uint64_t cr2;

	__asm__ volatile("mov %%cr2, %0" : "=r"(cr2));
	pf_count++;
	pf_cs = f->cs;
	pf_err = f->error;
	pf_cr2 = cr2;
	pf_rip = f->rip;
	if (f->cs == SEL_UCODE64 && f->rip == (uint64_t)syscall_entry + KERNEL_ALIAS &&
	    cr2 == f->rip) {
		pf_count--;
		syscall_from_fault(f);
		return;
	}
	kprintf("usermode: #PF cs 0x%lx error 0x%lx cr2 0x%lx rip 0x%lx\n", f->cs, f->error, cr2,
		f->rip);
	if (f->cs != SEL_UCODE64)
		fail("#PF frame cs 0x%lx, expected user 0x%x", f->cs, SEL_UCODE64);
	/* present | write | user, and not reserved-bit */
	if ((f->error & 0xf) != 0x7)
		fail("#PF error code 0x%lx, expected P|W|U (0x7)", f->error);
	if (cr2 != (uint64_t)guard_page)
		fail("#PF cr2 0x%lx, expected 0x%lx", cr2, (uint64_t)guard_page);
	if (f->rip != (uint64_t)user_pf_insn)
		fail("#PF rip 0x%lx, expected 0x%lx", f->rip, (uint64_t)user_pf_insn);
	f->rip = (uint64_t)user_pf_resume;
}

extern const char user_int80[];
static void user_fault(struct trap_frame *f)
{
	if (f->vector == 6 && f->rip == (uint64_t)user_int80) {
		int80_ud++;
		kprintf("HOSTBUG usermode: int 0x80 from ring 3 raised #UD\n");
		f->rip += 2;
		f->rax = 0x81;
		return;
	}
	kprintf("usermode: syscalls seen %lu: cs 0x%lx rcx 0x%lx r11 0x%lx rflags 0x%lx rax %lu\n",
		sc_count, sc_cs, sc_rcx, sc_r11, sc_rflags, sc_rax);
	fail("vector %lu from cs 0x%lx at rip 0x%lx (error 0x%lx)", f->vector, f->cs, f->rip,
	     f->error);
}

void guest_main(void)
{
	struct __attribute__((packed)) {
		uint16_t limit;
		uint64_t base;
	} idtr;

	load_gdt_tss();
	map_user();

	/* INT 0x80 callable from ring 3: DPL 3 in the gate (byte 5 of the 16-byte gate) */
	__asm__ volatile("sidt %0" : "=m"(idtr));
	((volatile uint8_t *)idtr.base)[0x80 * 16 + 5] = 0xee;
	idt_set_handler(0x80, int80_handler);
	idt_set_handler(14, pf_handler);
	idt_set_handler(13, user_fault);
	idt_set_handler(6, user_fault);

	wrmsr(MSR_STAR, ((uint64_t)SEL_UCODE32 << 48) | ((uint64_t)SEL_CODE64 << 32));
	wrmsr(MSR_LSTAR, (uint64_t)syscall_entry + KERNEL_ALIAS);
	wrmsr(MSR_FMASK, RFLAGS_IF | RFLAGS_DF | RFLAGS_TF | RFLAGS_AC);
	wrmsr(MSR_EFER, rdmsr(MSR_EFER) | EFER_SCE);

	kprintf("usermode: entering ring 3 at 0x%lx\n", (uint64_t)user_entry);
	__asm__ volatile("pushq %0\n\t" /* SS */
			 "pushq %1\n\t" /* RSP */
			 "pushq %2\n\t" /* RFLAGS */
			 "pushq %3\n\t" /* CS */
			 "pushq %4\n\t" /* RIP */
			 "iretq"
			 :
			 : "i"(SEL_UDATA), "r"((uint64_t)(udata.stack + sizeof(udata.stack))),
			   "i"(RFLAGS_IF | RFLAGS_FIXED), "i"(SEL_UCODE64), "r"((uint64_t)user_entry)
			 : "memory");
	fail("IRETQ to user mode returned");
}
_Static_assert(__builtin_offsetof(struct user_data, rflags_before) == 8192 &&
		   __builtin_offsetof(struct user_data, result) == 8200 &&
		   __builtin_offsetof(struct user_data, int80_rax) == 8208,
	       "user code in asm uses these offsets");
