/* serial.h: 16550A UART model (COM1 at 0x3f8, IRQ 4), independent of KVM. */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "devices/irq.h"
#include "util/compiler.h"
#include "vmm/output.h"

#define SERIAL_COM1_BASE 0x3f8
#define SERIAL_COM1_IRQ 4
#define SERIAL_NR_PORTS 8
/* The 16550A's FIFO depth. Linux's 8250 driver measures it in loopback and calls a
 * 64-byte part a "U6_16550A", so it must stay 16 for the port to probe as a 16550A. */
#define SERIAL_FIFO_SIZE 16

struct serial {
	pthread_mutex_t lock; /* vCPU threads (register access) vs event loop (input) */
	/* registers */
	uint8_t ier, lcr, mcr, lsr, msr, scr, dll, dlm, fcr;
	bool thr_empty_pending; /* THRE interrupt latched until IIR read or THR write */
	/* receive FIFO (ring); holds one byte when FIFOs are disabled (16450 mode) */
	uint8_t rx[SERIAL_FIFO_SIZE];
	unsigned rx_head, rx_count;
	int irq_level;
	struct irq_line irq;
	struct output *out; /* NULL: output discarded; its counters are the TX side's */
	uint64_t rx_bytes, rx_overruns;
	/* Called (outside the lock, on the vCPU thread doing the access) when the guest empties
	 * the RX FIFO or leaves loopback mode, so an owner that stopped feeding input because
	 * serial_rx_free() was 0 can resume. It can race with that decision: after pausing, the
	 * owner should check serial_rx_free() once more. */
	void (*rx_space)(void *opaque);
	void *rx_space_opaque;
};

/* Each THR byte goes to out (vmm/output.h) from the vCPU thread, under the UART lock: the
 * sink never waits for its reader (a slow one loses bytes, counted there), so neither does
 * the vCPU. The caller keeps ownership of out. */
void serial_init(struct serial *s, struct output *out, struct irq_line irq);
void serial_destroy(struct serial *s);
/* Bus callback for the 8 ports at base. Wider accesses are split into byte accesses. */
void serial_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);
/* Queue guest input; returns how many bytes were accepted (FIFO space). Bytes beyond the
 * free space are refused and set LSR.OE (the guest sees an overrun), so a caller that wants
 * lossless input feeds at most serial_rx_free() bytes and waits for rx_space. In loopback
 * mode the input wire is disconnected: nothing is accepted and OE is not set. */
size_t serial_receive(struct serial *s, const uint8_t *buf, size_t len);
/* Free space in the receive FIFO (0 in loopback mode). */
size_t serial_rx_free(struct serial *s);

/* Snapshot (snapshot/state.h, devices/devstate.h). Saves the registers, the RX FIFO contents
 * and level, the THRE latch and the IRQ line level. Output already written went to the output
 * sink (host side) and is not part of the state; the host counters are not either. Load checks
 * every register against what a 16550A could hold and applies all or nothing (0, or -EINVAL
 * with the cursor bad). It does not drive the IRQ line: its level is part of the irqchip state,
 * which is restored with the VM. */
struct snap_buf;
struct snap_cursor;
int serial_state_save(struct serial *s, struct snap_buf *b) __must_check;
int serial_state_load(struct serial *s, struct snap_cursor *c) __must_check;
