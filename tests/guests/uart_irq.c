/* uart_irq.c: COM1 THRE interrupts via IOAPIC + LAPIC (Linux's path): interrupt-driven TX. */
#include "runtime.h"

const char guest_name[] = "uart_irq";

#define COM1_IRQ 4
#define VEC_UART 0x34
#define VEC_TIMER 0x40
#define TIMER_PERIOD_NS 10000000u /* 10 ms */
#define TIMEOUT_TICKS 400	  /* 4 s */

#define IOAPIC_VER 0x01
#define IOAPIC_REDTBL(pin) (0x10 + 2 * (pin))
#define IOAPIC_RTE_LOW_ACTIVE (1u << 13)
#define IOAPIC_RTE_LEVEL (1u << 15)
#define IOAPIC_RTE_MASKED (1u << 16)

static const char msg[] = "uart_irq: this line was sent one byte per THRE interrupt\r\n";

static volatile unsigned tx_pos, uart_irqs, timer_ticks, bad_iir, tx_done;

static void uart_handler(struct trap_frame *f)
{
	uint8_t iir = inb(COM1 + UART_IIR); /* reading IIR clears a THRE interrupt */

	(void)f;
	uart_irqs++;
	if ((iir & (UART_IIR_ID | UART_IIR_NO_INT)) != UART_IIR_THRI) {
		bad_iir = 0x100u | iir;
		outb(COM1 + UART_IER, 0);
	} else if (msg[tx_pos]) {
		outb(COM1 + UART_THR, (uint8_t)msg[tx_pos++]); /* THRE again once it is sent */
	} else {
		outb(COM1 + UART_IER, 0);
		tx_done = 1;
	}
	lapic_eoi();
}

static void timer_handler(struct trap_frame *f)
{
	(void)f;
	timer_ticks++;
	lapic_eoi();
}

void guest_main(void)
{
	struct madt_info madt;
	const char *err = acpi_scan(&madt, NULL, false);
	uint32_t gsi = COM1_IRQ, rte = VEC_UART;

	if (err)
		fail("acpi: %s", err);
	if (madt.nr_ioapics == 0)
		fail("MADT lists no IOAPIC");
	/* ISA IRQs are edge/active-high unless an Interrupt Source Override says otherwise */
	for (unsigned i = 0; i < madt.nr_overrides; i++) {
		if (madt.overrides[i].irq != COM1_IRQ)
			continue;
		gsi = madt.overrides[i].gsi;
		if ((madt.overrides[i].flags & 3) == 3)
			rte |= IOAPIC_RTE_LOW_ACTIVE;
		if (((madt.overrides[i].flags >> 2) & 3) == 3)
			rte |= IOAPIC_RTE_LEVEL;
	}
	uint64_t ioapic = madt.ioapic_addr;
	uint32_t max_pin = (ioapic_read(ioapic, IOAPIC_VER) >> 16) & 0xff;
	if (gsi < madt.ioapic_gsi_base || gsi - madt.ioapic_gsi_base > max_pin)
		fail("GSI %u not on the IOAPIC at 0x%lx (gsi base %u, %u pins)", gsi, ioapic,
		     madt.ioapic_gsi_base, max_pin + 1);
	uint32_t pin = gsi - madt.ioapic_gsi_base;
	uint32_t bsp = lapic_id();
	kprintf("uart_irq: IRQ %u -> IOAPIC 0x%lx pin %u (%s, %s) -> LAPIC %u vector 0x%x\n",
		COM1_IRQ, ioapic, pin, (rte & IOAPIC_RTE_LEVEL) ? "level" : "edge",
		(rte & IOAPIC_RTE_LOW_ACTIVE) ? "low" : "high", bsp, VEC_UART);

	idt_set_handler(VEC_UART, uart_handler);
	idt_set_handler(VEC_TIMER, timer_handler);
	lapic_enable();
	pic_mask_all();
	ioapic_write(ioapic, IOAPIC_REDTBL(pin) + 1, bsp << 24);
	ioapic_write(ioapic, IOAPIC_REDTBL(pin), rte);

	/* 8250 startup as Linux does it: 8N1, FIFOs on and cleared, clear stale state, OUT2 */
	outb(COM1 + UART_LCR, 0x03);
	outb(COM1 + UART_FCR, 0x07);
	(void)inb(COM1 + UART_LSR);
	(void)inb(COM1 + UART_THR);
	(void)inb(COM1 + UART_IIR);
	outb(COM1 + UART_MCR, UART_MCR_DTR | UART_MCR_RTS | UART_MCR_OUT2);

	lapic_timer_periodic(VEC_TIMER, TIMER_PERIOD_NS);
	if (!lapic_timer_counting())
		fail("LAPIC timer does not count: no watchdog for the wait");
	irq_disable();
	/* THR is empty, so enabling THRI raises the first interrupt at once */
	outb(COM1 + UART_IER, UART_IER_THRI);
	while (!tx_done && !bad_iir && timer_ticks < TIMEOUT_TICKS) {
		safe_halt(); /* any interrupt (UART or the 10 ms timer) wakes us */
		irq_disable();
	}
	lapic_timer_stop();
	ioapic_write(ioapic, IOAPIC_REDTBL(pin), IOAPIC_RTE_MASKED | VEC_UART);
	outb(COM1 + UART_IER, 0);

	kprintf("uart_irq: %u UART interrupts, %u timer ticks, %u bytes sent\n", uart_irqs,
		timer_ticks, tx_pos);
	if (bad_iir)
		fail("IIR 0x%x in the UART interrupt handler, expected a THRE interrupt (0x%x)",
		     bad_iir & 0xff, UART_IIR_THRI);
	if (!tx_done)
		fail("%s after %u timer ticks (%u UART interrupts, %u/%u bytes)",
		     uart_irqs ? "THRE interrupts stopped" : "no THRE interrupt", timer_ticks,
		     uart_irqs, tx_pos, (unsigned)sizeof(msg) - 1);
	pass("");
}
