/* test_serial.c: drives the 16550A model as Linux's 8250 driver does: probe, startup, TX, RX;
 * a THR flood into a pipe nobody reads. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "devices/serial.h"
#include "util/log.h"
#include "vmm/event.h"
#include "vmm/output.h"
#include "util/clock.h"

enum { RBR = 0, THR = 0, DLL = 0, IER = 1, DLM = 1, IIR = 2, FCR = 2, LCR = 3, MCR = 4, LSR = 5,
       MSR = 6, SCR = 7 };

#define IER_RDI 0x01
#define IER_THRI 0x02
#define IER_RLSI 0x04
#define IER_MSI 0x08
#define IIR_NO_INT 0x01
#define LSR_DR 0x01
#define LSR_OE 0x02
#define LSR_THRE 0x20
#define LSR_TEMT 0x40
#define MCR_LOOP 0x10

/* An interrupt line that records every call and complains about calls that change nothing. */
struct fake_irq {
	int level;
	unsigned rises, redundant;
};

static void fake_irq_set(void *opaque, unsigned gsi, int level)
{
	struct fake_irq *f = opaque;
	assert_int_equal(gsi, SERIAL_COM1_IRQ);
	if (level == f->level)
		f->redundant++;
	if (level && !f->level)
		f->rises++;
	f->level = level;
}

struct ctx {
	struct serial s;
	struct fake_irq irq;
	struct event_loop ev; /* flushes the output's backlog */
	struct output out;    /* the UART's sink, writing to pipe[1] */
	int pipe[2];	      /* read back from pipe[0] */
	sem_t space;
	unsigned space_calls;
};

static void on_rx_space(void *opaque)
{
	struct ctx *c = opaque;
	__atomic_add_fetch(&c->space_calls, 1, __ATOMIC_RELAXED);
	sem_post(&c->space);
}

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));
	char err[128];
	assert_non_null(c);
	signal(SIGPIPE, SIG_IGN); /* as kiln's main: a reader going away is EPIPE */
	assert_int_equal(pipe2(c->pipe, O_NONBLOCK | O_CLOEXEC), 0);
	assert_int_equal(event_loop_init(&c->ev), 0);
	assert_int_equal(output_open(&c->out, "serial", c->pipe[1], &c->ev, err, sizeof(err)), 0);
	sem_init(&c->space, 0, 0);
	struct irq_line irq = { .set = fake_irq_set, .opaque = &c->irq, .gsi = SERIAL_COM1_IRQ };
	serial_init(&c->s, &c->out, irq);
	c->s.rx_space = on_rx_space;
	c->s.rx_space_opaque = c;
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;
	assert_int_equal(c->irq.redundant, 0); /* the line only ever moved on a level change */
	assert_int_equal(c->irq.level, c->s.irq_level);
	serial_destroy(&c->s);
	output_close(&c->out);
	event_loop_destroy(&c->ev);
	sem_destroy(&c->space);
	close(c->pipe[0]);
	close(c->pipe[1]);
	free(c);
	return 0;
}

/* The output's counters: what reached the fd, what was dropped, what waits. */
static struct output_stats tx(struct ctx *c)
{
	struct output_stats st;
	output_get_stats(&c->out, &st);
	return st;
}

static uint8_t in(struct serial *s, unsigned off)
{
	uint8_t v = 0;
	serial_io(s, off, &v, 1, false);
	return v;
}

static void out(struct serial *s, unsigned off, uint8_t v)
{
	serial_io(s, off, &v, 1, true);
}

/* Everything the UART wrote so far (pipe writes are complete when write() returns). */
static size_t drain_pipe(struct ctx *c, char *buf, size_t cap)
{
	ssize_t r = read(c->pipe[0], buf, cap);
	return r > 0 ? (size_t)r : 0;
}

/* size_fifo() of the 8250 driver: count what 256 loopback bytes leave in the RX FIFO. */
static int fifo_depth(struct serial *s)
{
	uint8_t old_lcr = in(s, LCR), old_mcr = in(s, MCR);
	int count;

	out(s, LCR, 0);
	uint8_t old_fcr = in(s, IIR); /* what the driver does: FCR is write-only */
	out(s, FCR, 0x07);
	out(s, MCR, MCR_LOOP);
	out(s, LCR, 0x03);
	for (count = 0; count < 256; count++)
		out(s, THR, (uint8_t)count);
	for (count = 0; (in(s, LSR) & LSR_DR) && count < 256; count++)
		in(s, RBR);
	out(s, FCR, old_fcr);
	out(s, MCR, old_mcr);
	out(s, LCR, old_lcr);
	return count;
}

/* The checks of the 8250 driver's autoconfig(), in order; returns the type it would pick. */
static const char *probe_like_linux(struct serial *s)
{
	uint8_t save_ier = in(s, IER), save_mcr = in(s, MCR), save_lcr = in(s, LCR);
	out(s, IER, 0);
	uint8_t ier0 = in(s, IER) & 0x0f;
	out(s, IER, 0x0f);
	uint8_t ier1 = in(s, IER) & 0x0f;
	out(s, IER, save_ier);
	if (ier0 != 0 || ier1 != 0x0f)
		return "absent (IER test)";
	out(s, MCR, MCR_LOOP | 0x0a); /* RTS, OUT2 -> CTS, DCD */
	uint8_t msr = in(s, MSR) & 0xf0;
	out(s, MCR, save_mcr);
	if (msr != 0x90)
		return "absent (loopback test)";

	out(s, LCR, 0xbf); /* EFR := 0 on parts that have one; FCR := 0 on a 16550A */
	out(s, 2, 0);
	out(s, LCR, 0);
	out(s, FCR, 0x01);
	if (in(s, IIR) >> 6 != 3)
		return "8250/16450/16550";

	/* autoconfig_16550a: with LCR at 0x80/0xbf an EFR would read 0; at 0xe0 a NatSemi part
	 * shows MCR.LOOP in bit 4 (EXCR1); a 16750 sets bit 5 after FCR bit 5. A 16550A gives
	 * IIR for all of them, bits 4-5 clear. */
	static const uint8_t lcrs[] = { 0x80, 0xbf, 0xe0, 0x00 };
	for (unsigned loop = 0; loop < 2; loop++) {
		out(s, LCR, 0);
		out(s, MCR, loop ? MCR_LOOP : 0);
		for (unsigned i = 0; i < sizeof(lcrs); i++) {
			out(s, LCR, lcrs[i]);
			out(s, FCR, 0x21);
			uint8_t iir = in(s, 2);
			if (iir == 0)
				return "16650 (EFR)";
			if (iir & 0x30)
				return "NS16550A or 16750";
			out(s, FCR, 0x01);
		}
	}
	out(s, LCR, 0);
	out(s, MCR, save_mcr);
	out(s, IER, 0x40); /* XScale UUE bit */
	if (in(s, IER) & 0x40)
		return "XScale";
	if (fifo_depth(s) == 64)
		return "U6_16550A";

	out(s, LCR, save_lcr); /* reset as autoconfig() does */
	out(s, FCR, 0x01);
	out(s, FCR, 0x07);
	out(s, FCR, 0);
	in(s, RBR);
	out(s, IER, 0);
	return "16550A";
}

static void test_probe_is_16550a(void **state)
{
	struct ctx *c = *state;
	out(&c->s, SCR, 0xa5);
	assert_int_equal(in(&c->s, SCR), 0xa5);
	out(&c->s, SCR, 0x5a);
	assert_int_equal(in(&c->s, SCR), 0x5a);
	out(&c->s, IER, 0xff);
	assert_int_equal(in(&c->s, IER), 0x0f); /* bits 4-7 (UUE, sleep...) are not there */
	out(&c->s, IER, 0);
	assert_int_equal(in(&c->s, IER), 0);
	out(&c->s, IER, 0x40);
	assert_int_equal(in(&c->s, IER), 0);
	out(&c->s, FCR, 0x01);
	assert_int_equal(in(&c->s, IIR), 0xc1); /* FIFOs on, nothing pending */
	out(&c->s, FCR, 0);
	assert_int_equal(in(&c->s, IIR), 0x01);

	assert_string_equal(probe_like_linux(&c->s), "16550A");
	assert_int_equal(fifo_depth(&c->s), 16);
	/* The probe left the port quiet and nothing reached the console. */
	assert_int_equal(in(&c->s, IER), 0);
	assert_int_equal(in(&c->s, MCR) & MCR_LOOP, 0);
	assert_int_equal(in(&c->s, LSR) & LSR_DR, 0);
	assert_int_equal(tx(c).bytes, 0);
}

static void test_loopback_msr(void **state)
{
	struct ctx *c = *state;
	struct serial *s = &c->s;
	assert_int_equal(in(s, MSR), 0xb0); /* DCD, DSR, CTS: a peer is there */
	out(s, MCR, MCR_LOOP | 0x0a); /* RTS, OUT2 */
	assert_int_equal(in(s, MSR), 0x90 | 0x02); /* DCD, CTS; DSR fell: DDSR */
	assert_int_equal(in(s, MSR), 0x90); /* deltas clear on read */
	out(s, MCR, MCR_LOOP | 0x05); /* DTR, OUT1 */
	assert_int_equal(in(s, MSR), 0x60 | 0x08 | 0x02 | 0x01); /* DSR, RI; all but RI moved */
	out(s, MCR, MCR_LOOP);
	assert_int_equal(in(s, MSR), 0x02 | 0x04); /* DSR fell, RI trailing edge */
	out(s, MCR, 0);
	assert_int_equal(in(s, MSR) & 0xf0, 0xb0);

	/* THR goes to RBR in loopback, not to the console; external input is refused. */
	out(s, MCR, MCR_LOOP);
	assert_int_equal(serial_rx_free(s), 0);
	assert_int_equal(serial_receive(s, (const uint8_t *)"z", 1), 0);
	assert_int_equal(in(s, LSR) & LSR_OE, 0);
	out(s, THR, 'x');
	assert_int_equal(in(s, LSR) & LSR_DR, LSR_DR);
	assert_int_equal(in(s, RBR), 'x');
	unsigned before = c->space_calls;
	out(s, MCR, 0x0b);
	assert_true(c->space_calls > before); /* input may resume */
	assert_int_equal(tx(c).bytes, 0);
	in(s, MSR);

	/* Modem status interrupt: raised by deltas, acknowledged by reading MSR, not IIR. */
	out(s, IER, IER_MSI);
	assert_int_equal(c->irq.level, 0);
	out(s, MCR, MCR_LOOP | 0x02); /* CTS drops DSR and DCD: deltas */
	assert_int_equal(c->irq.level, 1);
	assert_int_equal(in(s, IIR), 0x00);
	assert_int_equal(c->irq.level, 1); /* IIR read does not acknowledge MSI */
	in(s, MSR);
	assert_int_equal(c->irq.level, 0);
	assert_int_equal(in(s, IIR), IIR_NO_INT);
}

static void test_dlab_and_wide_access(void **state)
{
	struct ctx *c = *state;
	struct serial *s = &c->s;
	out(s, IER, 0x05);
	out(s, LCR, 0x83);
	out(s, DLL, 0x01);
	out(s, DLM, 0x02);
	assert_int_equal(in(s, DLL), 0x01);
	assert_int_equal(in(s, DLM), 0x02);
	assert_int_equal(in(s, IIR), IIR_NO_INT); /* IIR still answers with DLAB set */
	out(s, LCR, 0x03);
	assert_int_equal(in(s, LCR), 0x03);
	assert_int_equal(in(s, IER), 0x05);
	assert_int_equal(tx(c).bytes, 0); /* DLL writes are not output */
	char buf[8];
	out(s, THR, 'k');
	assert_int_equal(drain_pipe(c, buf, sizeof(buf)), 1);
	assert_int_equal(buf[0], 'k');
	out(s, LCR, 0x83);
	assert_int_equal(in(s, DLL), 0x01);
	out(s, LCR, 0);

	/* A 32-bit write at IER touches IER, FCR, LCR, MCR in turn. */
	uint8_t data[4] = { 0x0f, 0x81, 0x03, 0xaa };
	serial_io(s, IER, data, 4, true);
	assert_int_equal(in(s, IER), 0x0f);
	assert_int_equal(in(s, LCR), 0x03);
	assert_int_equal(in(s, MCR), 0x0a);
	serial_io(s, 6, data, 4, false); /* MSR, SCR, then past the end */
	assert_int_equal(data[2], 0xff);
	assert_int_equal(data[3], 0xff);
	uint8_t wrap[8] = { 'w', 'w', 'w', 'w', 'w', 'w', 'w', 'w' };
	serial_io(s, UINT64_MAX - 1, wrap, 8, true); /* must not wrap around onto THR..SCR */
	assert_int_equal(in(s, SCR), 0);
	assert_int_equal(tx(c).bytes, 1);
}

static void test_tx(void **state)
{
	struct ctx *c = *state;
	const char *msg = "hello, kiln\n";
	char buf[64];

	for (const char *p = msg; *p; p++) {
		assert_int_equal(in(&c->s, LSR) & (LSR_THRE | LSR_TEMT), LSR_THRE | LSR_TEMT);
		out(&c->s, THR, (uint8_t)*p);
	}
	size_t n = drain_pipe(c, buf, sizeof(buf));
	assert_int_equal(n, strlen(msg));
	assert_memory_equal(buf, msg, n);
	assert_int_equal(tx(c).bytes, strlen(msg));
	assert_int_equal(tx(c).errors, 0);
	assert_int_equal(tx(c).dropped, 0);

	/* Reader gone: EPIPE ends the output; the byte and every later one are dropped and
	 * counted, and THR stays empty for the guest. */
	close(c->pipe[0]);
	c->pipe[0] = open("/dev/null", O_RDONLY | O_NONBLOCK);
	log_set_level(LOG_ERROR); /* expected: keep the test output quiet */
	out(&c->s, THR, 'a');
	out(&c->s, THR, 'b');
	assert_int_equal(in(&c->s, LSR) & LSR_THRE, LSR_THRE);
	assert_int_equal(tx(c).errors, 1);
	assert_int_equal(tx(c).dropped, 2);
	c->s.out = NULL; /* discard mode: nothing counted */
	out(&c->s, THR, 'c');
	log_set_level(LOG_WARN);
	assert_int_equal(tx(c).dropped, 2);
	assert_int_equal(tx(c).bytes, strlen(msg));
}

/*
 * The issue 12 hang: kiln's stdout is a (blocking) pipe that nobody reads and the guest floods
 * THR. Each THR write must come back at once; the pipe takes what it holds, the output's ring
 * the next OUTPUT_RING_SIZE bytes, and the rest is dropped and counted to the byte. Once a
 * reader drains the pipe the event loop writes the ring out, in order, and output flows again.
 * A THR write that blocks trips the alarm, which fails the test instead of hanging it.
 */
#define FLOOD_BYTES (1u << 20)
#define FLOOD_ALARM_S 20

static void flood_alarm(int sig)
{
	static const char msg[] = "test_serial: a THR write blocked (the vCPU would hang)\n";
	ssize_t w = write(2, msg, sizeof(msg) - 1);
	(void)w;
	(void)sig;
	_exit(1);
}

static uint8_t flood_byte(size_t i) { return (uint8_t)(' ' + (i * 7 + (i >> 12)) % 95); }

/* Read what the pipe holds; check it continues the flood at *at. */
static size_t read_flood(int fd, size_t *at)
{
	static uint8_t buf[65536];
	size_t got = 0;
	ssize_t r;

	while ((r = read(fd, buf, sizeof(buf))) > 0) {
		for (ssize_t i = 0; i < r; i++)
			assert_int_equal(buf[i], flood_byte(*at + (size_t)i));
		*at += (size_t)r;
		got += (size_t)r;
	}
	return got;
}

static void test_flood_unread_pipe(void **state)
{
	struct ctx *c = *state;
	struct output o;
	char err[128];
	int p[2];
	uint64_t worst = 0, t0 = (uint64_t)clock_ns();
	size_t at = 0;

	assert_int_equal(pipe2(p, O_CLOEXEC), 0); /* blocking, as a shell's pipe is */
	int pipe_size = fcntl(p[1], F_GETPIPE_SZ);
	assert_true(pipe_size > 0);
	assert_int_equal(output_open(&o, "serial", p[1], &c->ev, err, sizeof(err)), 0);
	/* The shell's side of the pipe stays blocking: kiln writes through its own open. */
	assert_int_equal(fcntl(p[1], F_GETFL) & O_NONBLOCK, 0);
	c->s.out = &o;

	signal(SIGALRM, flood_alarm);
	alarm(FLOOD_ALARM_S);
	log_set_level(LOG_ERROR);
	for (size_t i = 0; i < FLOOD_BYTES; i++) {
		uint64_t t = (uint64_t)clock_ns();
		out(&c->s, THR, flood_byte(i));
		t = (uint64_t)clock_ns() - t;
		worst = t > worst ? t : worst;
	}
	alarm(0);
	log_set_level(LOG_WARN);
	print_message("flood: %u THR writes in %.1f ms, the slowest %.1f us\n", FLOOD_BYTES,
		      (double)((uint64_t)clock_ns() - t0) / 1e6, (double)worst / 1e3);
	assert_true(worst < 500 * 1000000ull); /* "at once": a blocked write never returns */

	struct output_stats st;
	output_get_stats(&o, &st);
	assert_int_equal(st.bytes, (uint64_t)pipe_size);
	assert_int_equal(st.backlog, OUTPUT_RING_SIZE);
	assert_int_equal(st.dropped, FLOOD_BYTES - (uint64_t)pipe_size - OUTPUT_RING_SIZE);
	assert_int_equal(st.errors, 0);

	/* A reader comes: the pipe gives the first bytes, in order... */
	assert_int_equal(fcntl(p[0], F_SETFL, O_NONBLOCK), 0);
	assert_int_equal(read_flood(p[0], &at), (size_t)pipe_size);
	/* ...and the event loop writes the backlog (EPOLLOUT), which follows them... */
	assert_true(event_loop_run_once(&c->ev, 1000) > 0);
	assert_int_equal(read_flood(p[0], &at), OUTPUT_RING_SIZE);
	output_get_stats(&o, &st);
	assert_int_equal(st.backlog, 0);
	/* ...then stops asking for EPOLLOUT: the loop does not spin on a writable pipe. */
	assert_int_equal(event_loop_run_once(&c->ev, 50), 0);

	/* Later output flows again, straight through. */
	for (const char *m = "after\n"; *m; m++)
		out(&c->s, THR, (uint8_t)*m);
	char buf[16] = "";
	assert_int_equal(read(p[0], buf, sizeof(buf)), 6);
	assert_string_equal(buf, "after\n");
	output_get_stats(&o, &st);
	assert_int_equal(st.bytes, (uint64_t)pipe_size + OUTPUT_RING_SIZE + 6);
	assert_int_equal(st.dropped, FLOOD_BYTES - (uint64_t)pipe_size - OUTPUT_RING_SIZE);

	c->s.out = &c->out;
	output_close(&o);
	close(p[0]);
	close(p[1]);
}

static void test_thre_irq(void **state)
{
	struct ctx *c = *state;
	struct serial *s = &c->s;
	out(s, FCR, 0x01);
	out(s, IER, IER_THRI);
	assert_int_equal(c->irq.rises, 1); /* raised as soon as THRI is enabled */
	assert_int_equal(in(s, IIR), 0xc2);
	assert_int_equal(c->irq.level, 0); /* IIR read acknowledged it */
	assert_int_equal(in(s, IIR), 0xc1);
	/* Linux's UART_BUG_THRE test: disable, re-enable, THRE must be reasserted. */
	out(s, IER, 0);
	out(s, IER, IER_THRI);
	assert_int_equal(c->irq.rises, 2);
	assert_false(in(s, IIR) & IIR_NO_INT);
	out(s, IER, 0);
	/* UART_BUG_TXEN test: LSR then IIR right after enabling THRI. */
	out(s, IER, IER_THRI);
	uint8_t lsr = in(s, LSR), iir = in(s, IIR);
	out(s, IER, 0);
	assert_false((lsr & LSR_TEMT) && (iir & IIR_NO_INT));
	/* A THR write clears THRE, and it re-arms once the byte is gone (immediately). */
	out(s, IER, IER_THRI);
	in(s, IIR);
	assert_int_equal(c->irq.level, 0);
	out(s, THR, 'q');
	assert_int_equal(c->irq.level, 1);
	assert_int_equal(in(s, IIR), 0xc2);
	out(s, IER, 0);
	assert_int_equal(c->irq.level, 0);
}

/* Linux's serial8250_handle_irq() loop, with a transmit buffer to send. */
static void isr(struct serial *s, const char **tx, uint8_t *ier, char *rx, size_t *rxn)
{
	while (!(in(s, IIR) & IIR_NO_INT)) {
		uint8_t lsr = in(s, LSR);
		while (lsr & LSR_DR) {
			rx[(*rxn)++] = (char)in(s, RBR);
			lsr = in(s, LSR);
		}
		if (lsr & LSR_THRE) {
			for (int n = 0; n < 16 && **tx; n++)
				out(s, THR, (uint8_t)*(*tx)++);
			if (!**tx && (*ier & IER_THRI)) {
				*ier &= (uint8_t)~IER_THRI; /* __stop_tx */
				out(s, IER, *ier);
			}
		}
	}
}

static void test_irq_driven_tx_rx(void **state)
{
	struct ctx *c = *state;
	struct serial *s = &c->s;
	const char *msg = "The quick brown fox jumps over the lazy dog, 0123456789 times.\n";
	const char *p = msg;
	uint8_t ier = IER_RLSI | IER_RDI;
	char rx[64], buf[128];
	size_t rxn = 0;

	out(s, LCR, 0x03);
	out(s, MCR, 0x0b);
	out(s, FCR, 0x81);
	out(s, IER, ier);
	assert_int_equal(c->irq.level, 0);

	ier |= IER_THRI; /* start_tx */
	out(s, IER, ier);
	for (int runs = 0; c->irq.level && runs < 100; runs++)
		isr(s, &p, &ier, rx, &rxn); /* each rising edge runs the handler */
	assert_int_equal(c->irq.level, 0);
	assert_int_equal(*p, '\0');
	size_t n = drain_pipe(c, buf, sizeof(buf));
	assert_int_equal(n, strlen(msg));
	assert_memory_equal(buf, msg, n);

	/* Input from the event loop raises RDA; the handler drains it and the line drops. */
	unsigned rises = c->irq.rises, spaces = c->space_calls;
	assert_int_equal(serial_receive(s, (const uint8_t *)"ls -l\r", 6), 6);
	assert_int_equal(c->irq.rises, rises + 1);
	assert_int_equal(in(s, IIR), 0xc4);
	isr(s, &p, &ier, rx, &rxn);
	assert_int_equal(rxn, 6);
	assert_memory_equal(rx, "ls -l\r", 6);
	assert_int_equal(c->irq.level, 0);
	assert_int_equal(c->space_calls, spaces + 1);
	assert_int_equal(c->s.rx_bytes, 6);
}

static void test_rx(void **state)
{
	struct ctx *c = *state;
	struct serial *s = &c->s;
	/* 16450 mode (FIFOs off): a one-byte holding register. */
	assert_int_equal(serial_rx_free(s), 1);
	assert_int_equal(serial_receive(s, (const uint8_t *)"12", 2), 1);
	assert_int_equal(in(s, LSR) & (LSR_DR | LSR_OE), LSR_DR | LSR_OE);
	assert_int_equal(in(s, RBR), '1');
	assert_int_equal(in(s, RBR), 0); /* empty */

	/* Enabling the FIFO resets it; FCR bit 1 flushes received data. */
	assert_int_equal(serial_receive(s, (const uint8_t *)"3", 1), 1);
	out(s, FCR, 0x01);
	assert_int_equal(in(s, LSR) & LSR_DR, 0);
	assert_int_equal(serial_receive(s, (const uint8_t *)"456", 3), 3);
	unsigned spaces = c->space_calls;
	out(s, FCR, 0x03);
	assert_int_equal(in(s, LSR) & LSR_DR, 0);
	assert_int_equal(c->space_calls, spaces + 1);
	assert_int_equal(in(s, IIR), 0xc1); /* the FIFO stays enabled */
	assert_int_equal(serial_receive(s, NULL, 0), 0);
	assert_int_equal(in(s, LSR) & LSR_OE, 0);

	/* FIFO mode: data, RDA interrupt, overflow. */
	assert_int_equal(serial_rx_free(s), SERIAL_FIFO_SIZE);
	assert_int_equal(serial_receive(s, (const uint8_t *)"abc", 3), 3);
	assert_int_equal(c->irq.level, 0); /* RDI not enabled yet */
	assert_int_equal(in(s, LSR) & LSR_DR, LSR_DR);
	out(s, IER, IER_RDI);
	assert_int_equal(c->irq.level, 1);
	assert_int_equal(in(s, IIR), 0xc4);
	assert_int_equal(in(s, RBR), 'a');
	assert_int_equal(serial_rx_free(s), SERIAL_FIFO_SIZE - 2);

	/* Overflow: FIFO accepts what fits, sets OE, reports the accepted count. */
	uint8_t big[40];
	memset(big, 'z', sizeof(big));
	assert_int_equal(serial_receive(s, big, sizeof(big)), SERIAL_FIFO_SIZE - 2);
	assert_int_equal(serial_rx_free(s), 0);
	assert_int_equal(c->s.rx_overruns, 2);

	/* All four sources pending: line status > RX data > THRE > modem status. */
	out(s, MCR, MCR_LOOP); /* makes MSR deltas */
	out(s, MCR, 0);
	out(s, IER, 0x0f);
	assert_int_equal(in(s, IIR), 0xc6);
	assert_int_equal(in(s, LSR) & (LSR_OE | LSR_DR), LSR_OE | LSR_DR);
	assert_int_equal(in(s, LSR) & LSR_OE, 0); /* OE clears on read */
	assert_int_equal(in(s, IIR), 0xc4);
	assert_int_equal(in(s, RBR), 'b');
	assert_int_equal(in(s, RBR), 'c');
	for (int i = 0; i < SERIAL_FIFO_SIZE - 2; i++)
		assert_int_equal(in(s, RBR), 'z');
	assert_int_equal(in(s, LSR) & LSR_DR, 0);
	assert_int_equal(in(s, IIR), 0xc2);
	assert_int_equal(in(s, IIR), 0xc0); /* THRE acknowledged: modem status left */
	in(s, MSR);
	assert_int_equal(in(s, IIR), 0xc1);
	assert_int_equal(c->irq.level, 0);
	assert_int_equal(c->irq.rises, 1); /* the line stayed up until every source was gone */
}

enum { RX_N = 50000 };
static uint8_t rx_data[RX_N];

static void *produce(void *arg)
{
	struct ctx *c = arg;
	size_t sent = 0;

	while (sent < RX_N) {
		size_t f = serial_rx_free(&c->s);
		if (!f) {
			/* Full: the consumer empties it, then rx_space posts (posts accumulate). */
			sem_wait(&c->space);
			continue;
		}
		size_t want = RX_N - sent < f ? RX_N - sent : f;
		size_t got = serial_receive(&c->s, rx_data + sent, want);
		if (got != want)
			return (void *)1; /* free space only grows under the producer */
		sent += got;
	}
	return NULL;
}

static void test_threaded_rx(void **state)
{
	struct ctx *c = *state;
	pthread_t t;
	void *ret;

	for (size_t i = 0; i < RX_N; i++)
		rx_data[i] = (uint8_t)(i * 7 + (i >> 8));
	out(&c->s, FCR, 0x01);
	assert_int_equal(pthread_create(&t, NULL, produce, c), 0);
	size_t got = 0;
	while (got < RX_N) {
		uint8_t lsr = in(&c->s, LSR);
		assert_int_equal(lsr & LSR_OE, 0);
		if (lsr & LSR_DR)
			assert_int_equal(in(&c->s, RBR), rx_data[got++]);
	}
	pthread_join(t, &ret);
	assert_null(ret);
	assert_int_equal(c->s.rx_bytes, RX_N);
	assert_int_equal(c->s.rx_overruns, 0);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static void test_garbage(void **state)
{
	struct ctx *c = *state;
	struct serial *s = &c->s;
	static const uint32_t lens[] = { 1, 2, 4, 8 };
	uint8_t data[8];

	log_set_level(LOG_ERROR); /* the pipe fills up: drops are expected here */
	for (int i = 0; i < 300000; i++) {
		uint64_t r = rng();
		uint64_t off = r % 10;
		uint32_t len = lens[(r >> 8) & 3];
		bool wr = (r >> 10) & 1;
		uint64_t d = rng();
		memcpy(data, &d, sizeof(data));
		bool io = ((r >> 11) & 63) != 0;
		if (((r >> 11) & 1023) == 1)
			off = UINT64_MAX - (r >> 20) % 8; /* nonsense offsets from a broken bus */
		if (io)
			serial_io(s, off, data, len, wr);
		else
			serial_receive(s, data, (r >> 17) & 7);
		assert_true(s->rx_count <= SERIAL_FIFO_SIZE);
		assert_true(s->rx_head < SERIAL_FIFO_SIZE);
		assert_true((s->ier & 0xf0) == 0);
		assert_int_equal(c->irq.level, s->irq_level);
		if (io && !wr && off >= SERIAL_NR_PORTS)
			assert_int_equal(data[0], 0xff);
	}
	log_set_level(LOG_WARN);
	assert_int_equal(c->irq.redundant, 0);
	assert_true(c->irq.rises > 0);
	assert_true(tx(c).bytes > 0);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_probe_is_16550a),
		T(test_loopback_msr),
		T(test_dlab_and_wide_access),
		T(test_tx),
		T(test_flood_unread_pipe),
		T(test_thre_irq),
		T(test_irq_driven_tx_rx),
		T(test_rx),
		T(test_threaded_rx),
		T(test_garbage),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
