/* serial.h: 16550A UART model (COM1 at 0x3f8, IRQ 4), independent of KVM. */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "devices/irq.h"

#define SERIAL_COM1_BASE 0x3f8
#define SERIAL_COM1_IRQ 4
#define SERIAL_NR_PORTS 8
#define SERIAL_FIFO_SIZE 64

struct serial {
	pthread_mutex_t lock; /* vCPU threads (register access) vs event loop (input) */
	/* registers */
	uint8_t ier, lcr, mcr, lsr, msr, scr, dll, dlm, fcr;
	bool thr_empty_pending; /* THRE interrupt latched until IIR read or THR write */
	/* receive FIFO (ring) */
	uint8_t rx[SERIAL_FIFO_SIZE];
	unsigned rx_head, rx_count;
	int irq_level;
	struct irq_line irq;
	int out_fd; /* -1: output discarded */
	/* counters (API metrics later) */
	uint64_t tx_bytes, rx_bytes, tx_errors;
	/* Called (outside the lock) when the guest drains RX so the owner can resume input. */
	void (*rx_space)(void *opaque);
	void *rx_space_opaque;
};

void serial_init(struct serial *s, int out_fd, struct irq_line irq);
void serial_destroy(struct serial *s);
/* Bus callback for the 8 ports at base. */
void serial_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);
/* Queue guest input; returns how many bytes were accepted (FIFO space). */
size_t serial_receive(struct serial *s, const uint8_t *buf, size_t len);
/* Free space in the receive FIFO. */
size_t serial_rx_free(struct serial *s);
