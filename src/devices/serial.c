/* serial.c: 16550A UART: registers, 16-byte RX FIFO, interrupt priority, loopback, output. */
#include "devices/serial.h"

#include <errno.h>
#include <string.h>

#include "devices/devstate.h"
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

/* ---- snapshot ------------------------------------------------------------------------- */

int serial_state_save(struct serial *s, struct snap_buf *b)
{
	pthread_mutex_lock(&s->lock);
	devstate_put_header(b);
	snap_put_u8(b, s->ier);
	snap_put_u8(b, s->lcr);
	snap_put_u8(b, s->mcr);
	snap_put_u8(b, s->lsr);
	snap_put_u8(b, s->msr);
	snap_put_u8(b, s->scr);
	snap_put_u8(b, s->dll);
	snap_put_u8(b, s->dlm);
	snap_put_u8(b, s->fcr);
	snap_put_bool(b, s->thr_empty_pending);
	snap_put_bool(b, s->irq_level != 0);
	/* The FIFO from its oldest byte: the ring position is not guest-visible. */
	snap_put_u8(b, (uint8_t)s->rx_count);
	for (unsigned i = 0; i < s->rx_count; i++)
		snap_put_u8(b, s->rx[(s->rx_head + i) % SERIAL_FIFO_SIZE]);
	pthread_mutex_unlock(&s->lock);
	return snap_buf_failed(b);
}

/* The MSR status bits (not the deltas) a 16550A shows for this MCR: see update_msr. */
static uint8_t msr_status_for(uint8_t mcr)
{
	struct serial t = {.mcr = mcr, .msr = 0};

	update_msr(&t);
	return t.msr & (uint8_t)~MSR_DELTAS;
}

int serial_state_load(struct serial *s, struct snap_cursor *c)
{
	struct serial t = {0};
	bool level;

	if (!devstate_get_header(c))
		return -EINVAL;
	t.ier = snap_get_u8(c);
	t.lcr = snap_get_u8(c);
	t.mcr = snap_get_u8(c);
	t.lsr = snap_get_u8(c);
	t.msr = snap_get_u8(c);
	t.scr = snap_get_u8(c);
	t.dll = snap_get_u8(c);
	t.dlm = snap_get_u8(c);
	t.fcr = snap_get_u8(c);
	t.thr_empty_pending = snap_get_bool(c);
	level = snap_get_bool(c);
	t.rx_count = snap_get_u8(c);
	if (c->bad)
		return -EINVAL;
	if (t.ier & ~IER_MASK)
		snap_cursor_fail(c, "IER 0x%02x has bits a 16550A does not hold", t.ier);
	else if (t.mcr & ~MCR_MASK)
		snap_cursor_fail(c, "MCR 0x%02x has bits a 16550A does not hold", t.mcr);
	else if (t.lsr & ~(LSR_ERRORS | LSR_THRE | LSR_TEMT))
		snap_cursor_fail(c, "LSR 0x%02x: only error bits and THRE/TEMT are kept", t.lsr);
	else if ((t.msr & (uint8_t)~MSR_DELTAS) != msr_status_for(t.mcr))
		snap_cursor_fail(c, "MSR 0x%02x does not match MCR 0x%02x", t.msr, t.mcr);
	else if ((t.fcr & ~FCR_KEEP) || (!(t.fcr & FCR_ENABLE) && t.fcr))
		snap_cursor_fail(c, "FCR 0x%02x is not a value the FCR can hold", t.fcr);
	else if (t.thr_empty_pending && !(t.ier & IER_THRI))
		snap_cursor_fail(c, "THRE interrupt pending with IER.THRI clear");
	else if (t.rx_count > rx_capacity(&t))
		snap_cursor_fail(c, "RX FIFO holds %u bytes, more than its %u", t.rx_count,
				 rx_capacity(&t));
	if (c->bad)
		return -EINVAL;
	snap_get_bytes(c, t.rx, t.rx_count);
	if (!c->bad && level != !(iir_value(&t) & IIR_NO_INT))
		snap_cursor_fail(c, "IRQ line %s but IIR 0x%02x says otherwise",
				 level ? "raised" : "low", iir_value(&t));
	if (!devstate_done(c))
		return -EINVAL;

	pthread_mutex_lock(&s->lock);
	s->ier = t.ier;
	s->lcr = t.lcr;
	s->mcr = t.mcr;
	s->lsr = t.lsr;
	s->msr = t.msr;
	s->scr = t.scr;
	s->dll = t.dll;
	s->dlm = t.dlm;
	s->fcr = t.fcr;
	s->thr_empty_pending = t.thr_empty_pending;
	memcpy(s->rx, t.rx, sizeof(s->rx));
	s->rx_head = 0;
	s->rx_count = t.rx_count;
	s->irq_level = level;
	pthread_mutex_unlock(&s->lock);
	return 0;
}
