/* runtime.c: guest runtime: COM1, kprintf, PASS/FAIL, VM exits, IDT, LAPIC/IOAPIC/PIC. */
#include <stdarg.h>

#include "runtime.h"

void runtime_start(void);
void trap_dispatch(struct trap_frame *f);

/* ---- memory helpers ---------------------------------------------------------------------------
 */

void *memset(void *d, int c, size_t n)
{
	uint8_t *p = d;

	while (n--)
		*p++ = (uint8_t)c;
	return d;
}

void *memcpy(void *d, const void *s, size_t n)
{
	uint8_t *p = d;
	const uint8_t *q = s;

	while (n--)
		*p++ = *q++;
	return d;
}

int memcmp(const void *a, const void *b, size_t n)
{
	const uint8_t *p = a, *q = b;

	for (; n; n--, p++, q++)
		if (*p != *q)
			return *p < *q ? -1 : 1;
	return 0;
}

/* ---- COM1 -------------------------------------------------------------------------------------
 */

void serial_putc(char c)
{
	/* kiln's THR drains at once; the bound only keeps a broken LSR from hanging us. */
	for (unsigned i = 0; i < 10000; i++)
		if (inb(COM1 + UART_LSR) & UART_LSR_THRE)
			break;
	outb(COM1 + UART_THR, (uint8_t)c);
}

void serial_puts(const char *s)
{
	for (; *s; s++) {
		if (*s == '\n')
			serial_putc('\r');
		serial_putc(*s);
	}
}

static void put_uint(uint64_t v, unsigned base, unsigned width)
{
	char buf[24];
	unsigned n = 0;

	do {
		unsigned d = (unsigned)(v % base);
		buf[n++] = (char)(d < 10 ? '0' + d : 'a' + d - 10);
		v /= base;
	} while (v && n < sizeof(buf));
	while (n < width && n < sizeof(buf))
		buf[n++] = '0';
	while (n)
		serial_putc(buf[--n]);
}

static void vkprintf(const char *fmt, va_list ap)
{
	for (; *fmt; fmt++) {
		if (*fmt != '%') {
			if (*fmt == '\n')
				serial_putc('\r');
			serial_putc(*fmt);
			continue;
		}
		fmt++;
		unsigned width = 0;
		while (*fmt >= '0' && *fmt <= '9')
			width = width * 10 + (unsigned)(*fmt++ - '0');
		bool is_long = false;
		if (*fmt == 'l') {
			is_long = true;
			fmt++;
		}
		switch (*fmt) {
		case 's': {
			const char *s = va_arg(ap, const char *);
			serial_puts(s ? s : "(null)");
			break;
		}
		case 'c':
			serial_putc((char)va_arg(ap, int));
			break;
		case 'd': {
			int64_t v = is_long ? va_arg(ap, long) : va_arg(ap, int);
			if (v < 0) {
				serial_putc('-');
				put_uint((uint64_t)0 - (uint64_t)v, 10, width);
			} else {
				put_uint((uint64_t)v, 10, width);
			}
			break;
		}
		case 'u':
			put_uint(is_long ? va_arg(ap, unsigned long) : va_arg(ap, unsigned), 10,
				 width);
			break;
		case 'x':
			put_uint(is_long ? va_arg(ap, unsigned long) : va_arg(ap, unsigned), 16,
				 width);
			break;
		case 'p':
			serial_puts("0x");
			put_uint((uint64_t)va_arg(ap, void *), 16, width);
			break;
		case '%':
			serial_putc('%');
			break;
		case '\0':
			return;
		default:
			serial_putc('%');
			serial_putc(*fmt);
			break;
		}
	}
}

void kprintf(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vkprintf(fmt, ap);
	va_end(ap);
}

void pass(const char *suffix) { kprintf("PASS %s%s\n", guest_name, suffix); }

/* Every way out, quietly, in the order a guest would try them. */
static __attribute__((noreturn)) void exit_any_way(void)
{
	reset_i8042();
	poweroff_acpi(ACPI_PM_SLEEP_CONTROL);
	triple_fault();
}

void fail(const char *fmt, ...)
{
	va_list ap;

	irq_disable();
	kprintf("FAIL %s: ", guest_name);
	va_start(ap, fmt);
	vkprintf(fmt, ap);
	va_end(ap);
	kprintf("\n");
	exit_any_way();
}

/* ---- ending the VM ----------------------------------------------------------------------------
 */

void reset_i8042(void)
{
	outb(I8042_CMD, I8042_RESET);
	udelay(200000); /* QEMU acts on a reset request asynchronously; kiln stops at once */
}

void poweroff_acpi(uint16_t sleep_control_port)
{
	outb(sleep_control_port, (uint8_t)((ACPI_SLP_TYP_S5 << 2) | ACPI_SLP_EN));
	udelay(200000);
}

void triple_fault(void)
{
	static const struct __attribute__((packed)) {
		uint16_t limit;
		uint64_t base;
	} empty_idt = {0, 0};

	irq_disable();
	/* #DE through an IDT with limit 0 -> #GP -> #DF -> shutdown */
	__asm__ volatile("lidt %0\n\t"
			 "xorl %%ecx, %%ecx\n\t"
			 "xorl %%eax, %%eax\n\t"
			 "xorl %%edx, %%edx\n\t"
			 "divl %%ecx"
			 :
			 : "m"(empty_idt)
			 : "rax", "rcx", "rdx", "memory");
	for (;;)
		__asm__ volatile("hlt");
}

void guest_exit(void)
{
	reset_i8042();
	kprintf("FAIL %s: i8042 reset (0xfe to port 0x64) was ignored\n", guest_name);
	poweroff_acpi(ACPI_PM_SLEEP_CONTROL);
	kprintf("FAIL %s: ACPI S5 (port 0x600) was ignored too\n", guest_name);
	triple_fault();
}

/* ---- IDT
 * ------------------------------------------------------------------------------------------ */

struct idt_gate {
	uint16_t offset_lo;
	uint16_t selector;
	uint8_t ist;
	uint8_t type_attr;
	uint16_t offset_mid;
	uint32_t offset_hi;
	uint32_t zero;
};
_Static_assert(sizeof(struct idt_gate) == 16, "64-bit IDT gate");

extern const char isr_stubs[]; /* isr.S: 256 stubs, 16 bytes apart */

static struct idt_gate idt[256] __attribute__((aligned(16)));
static trap_handler_fn handlers[256];

static void spurious(struct trap_frame *f) { (void)f; /* LAPIC spurious vector: no EOI */ }

void idt_init(void)
{
	struct __attribute__((packed)) {
		uint16_t limit;
		uint64_t base;
	} desc = {sizeof(idt) - 1, (uint64_t)idt};

	for (unsigned v = 0; v < 256; v++) {
		uint64_t a = (uint64_t)isr_stubs + v * 16;
		idt[v] = (struct idt_gate){
		    .offset_lo = (uint16_t)a,
		    .selector = SEL_CODE64,
		    .type_attr = 0x8e, /* present, DPL 0, 64-bit interrupt gate */
		    .offset_mid = (uint16_t)(a >> 16),
		    .offset_hi = (uint32_t)(a >> 32),
		};
	}
	handlers[0xff] = spurious;
	__asm__ volatile("lidt %0" : : "m"(desc) : "memory");
}

void idt_set_handler(unsigned vector, trap_handler_fn fn) { handlers[vector & 0xff] = fn; }

void trap_dispatch(struct trap_frame *f)
{
	trap_handler_fn fn = handlers[f->vector & 0xff];

	if (fn) {
		fn(f);
		return;
	}
	uint64_t cr2;
	__asm__ volatile("movq %%cr2, %0" : "=r"(cr2));
	fail("unexpected vector %lu error 0x%lx at rip 0x%lx (cs 0x%lx rflags 0x%lx cr2 0x%lx)",
	     f->vector, f->error, f->rip, f->cs, f->rflags, cr2);
}

/* ---- LAPIC, IOAPIC, PIC ------------------------------------------------------------------------
 */

#define LAPIC_TIMER_DIV_1 0x0b
#define LAPIC_VEC_TIMER_MASKED 0xef

void lapic_enable(void)
{
	lapic_write(LAPIC_SVR, LAPIC_SVR_ENABLE | 0xff);
	lapic_write(LAPIC_TPR, 0);
}

void lapic_timer_periodic(uint8_t vector, uint32_t ns)
{
	lapic_write(LAPIC_TIMER_DIV, LAPIC_TIMER_DIV_1);
	lapic_write(LAPIC_LVT_TIMER, LAPIC_TIMER_PERIODIC | vector);
	lapic_write(LAPIC_TIMER_INIT, ns);
}

void lapic_timer_stop(void)
{
	lapic_write(LAPIC_LVT_TIMER, LAPIC_LVT_MASKED | LAPIC_VEC_TIMER_MASKED);
	lapic_write(LAPIC_TIMER_INIT, 0);
}

#define TIMER_STUCK_POLLS 1000

bool lapic_timer_counting(void)
{
	uint32_t first = lapic_read(LAPIC_TIMER_CUR);

	for (unsigned i = 0; i < TIMER_STUCK_POLLS; i++)
		if (lapic_read(LAPIC_TIMER_CUR) != first)
			return true;
	return false;
}

void deadline_start(struct deadline *d, uint32_t ns)
{
	lapic_write(LAPIC_TIMER_DIV, LAPIC_TIMER_DIV_1);
	lapic_write(LAPIC_LVT_TIMER, LAPIC_LVT_MASKED | LAPIC_VEC_TIMER_MASKED);
	lapic_write(LAPIC_TIMER_INIT, ns ? ns : 1);
	d->last = ns;
	d->stuck = 0;
}

bool deadline_pending(struct deadline *d)
{
	uint32_t cur = lapic_read(LAPIC_TIMER_CUR);

	if (cur == 0)
		return false;
	if (cur != d->last) {
		d->last = cur;
		d->stuck = 0;
	} else if (++d->stuck >= TIMER_STUCK_POLLS) {
		lapic_timer_stop();
		fail("LAPIC timer stuck at %u: cannot bound a wait", cur);
	}
	return true;
}

void udelay(uint32_t us)
{
	struct deadline d;

	deadline_start(&d, us >= 4000000 ? 4000000000u : us * 1000);
	while (deadline_pending(&d))
		cpu_relax();
}

bool lapic_send_ipi(uint32_t dest_apic_id, uint32_t icr_lo)
{
	lapic_write(LAPIC_ICR_HI, dest_apic_id << 24);
	lapic_write(LAPIC_ICR_LO, icr_lo);
	for (unsigned i = 0; i < 1000; i++)
		if (!(lapic_read(LAPIC_ICR_LO) & LAPIC_ICR_BUSY))
			return true;
	return false;
}

uint32_t ioapic_read(uint64_t base, uint32_t reg)
{
	mmio_write32(base, reg);
	return mmio_read32(base + 0x10);
}

void ioapic_write(uint64_t base, uint32_t reg, uint32_t v)
{
	mmio_write32(base, reg);
	mmio_write32(base + 0x10, v);
}

void pic_mask_all(void)
{
	outb(0x21, 0xff);
	outb(0xa1, 0xff);
}

/* ---- entry from start.S ------------------------------------------------------------------------
 */

void runtime_start(void)
{
	idt_init();
	guest_main();
	guest_exit();
}
