/* serial.c: 16550A UART: registers, 16-byte RX FIFO, interrupt priority, loopback, output. */
#include "devices/serial.h"

#include <string.h>

#include "util/compiler.h"

/*
 * Register map (offset from base). DLAB is LCR bit 7.
 *
 *   off  read                 write
 *   0    RBR (DLAB=0) / DLL   THR (DLAB=0) / DLL
 *   1    IER (DLAB=0) / DLM   IER (DLAB=0) / DLM
 *   2    IIR                  FCR
 *   3    LCR                  LCR
 *   4    MCR                  MCR
 *   5    LSR                  (ignored: factory test)
 *   6    MSR                  (ignored)
 *   7    SCR                  SCR
 *
 * Output goes to the output sink as soon as the guest writes THR, so the transmitter is always
 * idle (a reader too slow for the sink loses bytes; the guest is not held up): LSR.THRE and
 * LSR.TEMT always read 1, and the THR-empty interrupt re-arms after every THR write, as a real chip
 * does once its shift register has taken the byte.
 */
enum {
	REG_RBR_THR_DLL = 0,
	REG_IER_DLM = 1,
	REG_IIR_FCR = 2,
	REG_LCR = 3,
	REG_MCR = 4,
	REG_LSR = 5,
	REG_MSR = 6,
	REG_SCR = 7,
};

#define IER_RDI 0x01  /* received data available */
#define IER_THRI 0x02 /* transmitter holding register empty */
#define IER_RLSI 0x04 /* receiver line status */
#define IER_MSI 0x08  /* modem status */
#define IER_MASK 0x0f /* bits 4-7 read as zero on a 16550A */

#define IIR_NO_INT 0x01
#define IIR_MSI 0x00
#define IIR_THRI 0x02
#define IIR_RDI 0x04
#define IIR_RLSI 0x06
#define IIR_ID_MASK 0x0f
#define IIR_FIFO_ON 0xc0 /* both bits set: 16550A with working FIFOs */

#define FCR_ENABLE 0x01
#define FCR_CLEAR_RX 0x02
#define FCR_CLEAR_TX 0x04
#define FCR_KEEP 0xc9 /* enable, DMA mode, RX trigger level: the bits that stick */

#define LCR_DLAB 0x80

#define MCR_DTR 0x01
#define MCR_RTS 0x02
#define MCR_OUT1 0x04
#define MCR_OUT2 0x08
#define MCR_LOOP 0x10
#define MCR_MASK 0x1f

#define LSR_DR 0x01
#define LSR_OE 0x02
#define LSR_ERRORS 0x1e /* OE, PE, FE, BI: cleared by reading LSR */
#define LSR_THRE 0x20
#define LSR_TEMT 0x40

#define MSR_DCTS 0x01
#define MSR_DDSR 0x02
#define MSR_TERI 0x04
#define MSR_DDCD 0x08
#define MSR_DELTAS 0x0f
#define MSR_CTS 0x10
#define MSR_DSR 0x20
#define MSR_RI 0x40
#define MSR_DCD 0x80

static unsigned rx_capacity(const struct serial *s)
{
	return (s->fcr & FCR_ENABLE) ? SERIAL_FIFO_SIZE : 1;
}

static uint8_t lsr_value(const struct serial *s)
{
	return (uint8_t)((s->lsr & LSR_ERRORS) | (s->rx_count ? LSR_DR : 0) | LSR_THRE | LSR_TEMT);
}

/* Highest-priority pending interrupt, as IIR reads it. */
static uint8_t iir_value(const struct serial *s)
{
	uint8_t id = IIR_NO_INT;

	if ((s->ier & IER_RLSI) && (s->lsr & LSR_ERRORS))
		id = IIR_RLSI;
	else if ((s->ier & IER_RDI) && s->rx_count)
		id = IIR_RDI; /* also stands for the character timeout (0x0c) */
	else if ((s->ier & IER_THRI) && s->thr_empty_pending)
		id = IIR_THRI;
	else if ((s->ier & IER_MSI) && (s->msr & MSR_DELTAS))
		id = IIR_MSI;
	return (uint8_t)(id | ((s->fcr & FCR_ENABLE) ? IIR_FIFO_ON : 0));
}

/* Drive the (edge-triggered) line only when its level changes. Called with s->lock held. */
static void update_irq(struct serial *s)
{
	int level = !(iir_value(s) & IIR_NO_INT);

	if (level != s->irq_level) {
		s->irq_level = level;
		irq_line_set(&s->irq, level);
	}
}

/* Recompute the MSR status bits (from MCR in loopback, else a connected, ready peer) and
 * latch the delta bits for whatever changed. */
static void update_msr(struct serial *s)
{
	uint8_t old = s->msr, now;

	if (s->mcr & MCR_LOOP) {
		now = 0;
		if (s->mcr & MCR_RTS)
			now |= MSR_CTS;
		if (s->mcr & MCR_DTR)
			now |= MSR_DSR;
		if (s->mcr & MCR_OUT1)
			now |= MSR_RI;
		if (s->mcr & MCR_OUT2)
			now |= MSR_DCD;
	} else {
		now = MSR_DCD | MSR_DSR | MSR_CTS;
	}

	uint8_t changed = old ^ now, delta = old & MSR_DELTAS;
	if (changed & MSR_CTS)
		delta |= MSR_DCTS;
	if (changed & MSR_DSR)
		delta |= MSR_DDSR;
	if ((old & MSR_RI) && !(now & MSR_RI))
		delta |= MSR_TERI; /* trailing edge only */
	if (changed & MSR_DCD)
		delta |= MSR_DDCD;
	s->msr = now | delta;
}

static bool rx_push(struct serial *s, uint8_t b)
{
	if (s->rx_count >= rx_capacity(s)) {
		/* The FIFO keeps its contents; the new character is lost. */
		s->lsr |= LSR_OE;
		s->rx_overruns++;
		return false;
	}
	s->rx[(s->rx_head + s->rx_count) % SERIAL_FIFO_SIZE] = b;
	s->rx_count++;
	return true;
}

/* Returns true if the FIFO had data (the owner may want to refill it). */
static bool rx_clear(struct serial *s)
{
	bool had = s->rx_count != 0;

	s->rx_head = 0;
	s->rx_count = 0;
	return had;
}

static void tx_out(struct serial *s, uint8_t b)
{
	if (s->out)
		output_write(s->out, &b, 1); /* never waits: see serial.h */
}

static void write_thr(struct serial *s, uint8_t b)
{
	if (s->mcr & MCR_LOOP)
		rx_push(s, b); /* transmitter output wired to receiver input */
	else
		tx_out(s, b);
	/* Writing THR clears the THRE interrupt; the byte leaves at once, so THR is empty
	 * again and the interrupt re-arms if enabled. */
	s->thr_empty_pending = (s->ier & IER_THRI) != 0;
}

static void write_ier(struct serial *s, uint8_t v)
{
	uint8_t old = s->ier;

	s->ier = v & IER_MASK;
	if (!(s->ier & IER_THRI))
		s->thr_empty_pending = false;
	else if (!(old & IER_THRI))
		s->thr_empty_pending = true; /* enabling THRI while THR is empty fires at once */
}

static bool write_fcr(struct serial *s, uint8_t v)
{
	bool drained = false;

	/* Changing the FIFO enable bit resets both FIFOs. */
	if ((v ^ s->fcr) & FCR_ENABLE)
		drained = rx_clear(s);
	if (!(v & FCR_ENABLE)) {
		/* The other FCR bits are only programmed while the FIFOs are enabled. */
		s->fcr = 0;
		return drained;
	}
	if (v & FCR_CLEAR_RX)
		drained |= rx_clear(s);
	/* FCR_CLEAR_TX: the transmit FIFO is always empty. */
	s->fcr = v & FCR_KEEP;
	return drained;
}

/* Returns true when the owner should be told that input can resume. */
static bool write_mcr(struct serial *s, uint8_t v)
{
	bool was_loop = s->mcr & MCR_LOOP;

	s->mcr = v & MCR_MASK;
	update_msr(s);
	return was_loop && !(s->mcr & MCR_LOOP) && s->rx_count < rx_capacity(s);
}

static uint8_t read_rbr(struct serial *s, bool *drained)
{
	if (!s->rx_count)
		return 0;
	uint8_t b = s->rx[s->rx_head];
	s->rx_head = (s->rx_head + 1) % SERIAL_FIFO_SIZE;
	s->rx_count--;
	if (!s->rx_count)
		*drained = true;
	return b;
}

static uint8_t reg_read(struct serial *s, unsigned off, bool *notify)
{
	uint8_t v;

	switch (off) {
	case REG_RBR_THR_DLL:
		return (s->lcr & LCR_DLAB) ? s->dll : read_rbr(s, notify);
	case REG_IER_DLM:
		return (s->lcr & LCR_DLAB) ? s->dlm : s->ier;
	case REG_IIR_FCR:
		v = iir_value(s);
		if ((v & IIR_ID_MASK) == IIR_THRI)
			s->thr_empty_pending = false; /* reading IIR acknowledges THRE */
		return v;
	case REG_LCR:
		return s->lcr;
	case REG_MCR:
		return s->mcr;
	case REG_LSR:
		v = lsr_value(s);
		s->lsr &= (uint8_t)~LSR_ERRORS;
		return v;
	case REG_MSR:
		v = s->msr;
		s->msr &= (uint8_t)~MSR_DELTAS;
		return v;
	case REG_SCR:
		return s->scr;
	}
	return 0xff;
}

static void reg_write(struct serial *s, unsigned off, uint8_t v, bool *notify)
{
	switch (off) {
	case REG_RBR_THR_DLL:
		if (s->lcr & LCR_DLAB)
			s->dll = v;
		else
			write_thr(s, v);
		break;
	case REG_IER_DLM:
		if (s->lcr & LCR_DLAB)
			s->dlm = v;
		else
			write_ier(s, v);
		break;
	case REG_IIR_FCR:
		*notify |= write_fcr(s, v);
		break;
	case REG_LCR:
		s->lcr = v;
		break;
	case REG_MCR:
		*notify |= write_mcr(s, v);
		break;
	case REG_SCR:
		s->scr = v;
		break;
	default:
		break; /* LSR and MSR writes are factory-test only: ignored */
	}
}

void serial_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct serial *s = opaque;
	bool notify = false;

	pthread_mutex_lock(&s->lock);
	for (uint32_t i = 0; i < len; i++) {
		/* A wider access is a series of byte cycles; bytes past the last port float. */
		if (offset >= SERIAL_NR_PORTS || i >= SERIAL_NR_PORTS - offset) {
			if (!is_write)
				data[i] = 0xff;
			continue;
		}
		unsigned off = (unsigned)offset + i;
		if (is_write)
			reg_write(s, off, data[i], &notify);
		else
			data[i] = reg_read(s, off, &notify);
	}
	update_irq(s);
	pthread_mutex_unlock(&s->lock);

	if (notify && s->rx_space)
		s->rx_space(s->rx_space_opaque);
}

size_t serial_receive(struct serial *s, const uint8_t *buf, size_t len)
{
	size_t n = 0;

	pthread_mutex_lock(&s->lock);
	if (!(s->mcr & MCR_LOOP)) {
		while (n < len && rx_push(s, buf[n]))
			n++;
		s->rx_bytes += n;
		update_irq(s);
	}
	pthread_mutex_unlock(&s->lock);
	return n;
}

size_t serial_rx_free(struct serial *s)
{
	size_t n = 0;

	pthread_mutex_lock(&s->lock);
	if (!(s->mcr & MCR_LOOP))
		n = rx_capacity(s) - s->rx_count;
	pthread_mutex_unlock(&s->lock);
	return n;
}

void serial_init(struct serial *s, struct output *out, struct irq_line irq)
{
	memset(s, 0, sizeof(*s));
	pthread_mutex_init(&s->lock, NULL);
	s->irq = irq;
	s->out = out;
	/* Power-on state: interrupts off, FIFOs off, 8N1 left to the driver, 9600 baud divisor,
	 * transmitter empty, peer present (DCD, DSR, CTS). */
	s->dll = 12;
	s->lsr = LSR_THRE | LSR_TEMT;
	s->msr = MSR_DCD | MSR_DSR | MSR_CTS;
}

void serial_destroy(struct serial *s)
{
	pthread_mutex_destroy(&s->lock);
}
