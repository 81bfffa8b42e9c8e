/* irq.h: KVM GSI routing (IOAPIC/PIC pins and MSI routes) and irqfd wiring. */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "util/compiler.h"

#define IRQ_MAX_ROUTES 1024
#define IRQ_NR_LEGACY_GSIS 24 /* IOAPIC pins 0..23 (PIC on 0..15) */

struct irq_route {
	uint32_t gsi;
	bool used;
	uint64_t msi_addr;
	uint32_t msi_data;
};

struct irq_router {
	int vm_fd;
	pthread_mutex_t lock; /* vCPU threads reprogram MSI-X entries concurrently */
	struct irq_route msi[IRQ_MAX_ROUTES];
	uint32_t next_gsi; /* first GSI above the legacy pins */
};

/* Install the default routes (IOAPIC pins 0..23, PIC 0..15). Returns 0 or -errno. */
int irq_router_init(struct irq_router *r, int vm_fd) __must_check;
void irq_router_destroy(struct irq_router *r);

/* Reserve a GSI for an MSI route (initially pointing nowhere). */
int irq_msi_alloc(struct irq_router *r, uint32_t *gsi) __must_check;
/* Point an allocated GSI at an MSI address/data pair and push the table to KVM. */
int irq_msi_update(struct irq_router *r, uint32_t gsi, uint64_t addr, uint32_t data) __must_check;

/* Connect / disconnect an eventfd to a GSI (KVM_IRQFD). */
int irq_irqfd_assign(int vm_fd, int efd, uint32_t gsi) __must_check;
int irq_irqfd_deassign(int vm_fd, int efd, uint32_t gsi);
