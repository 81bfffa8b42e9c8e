/* irq.h: KVM GSI routing (IOAPIC/PIC pins and MSI routes) and irqfd wiring. */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "util/compiler.h"

/*
 * GSI map (KVM_SET_GSI_ROUTING replaces the whole table, so each update pushes all of it):
 *
 *   GSI 0..15    IOAPIC pin n  +  PIC pin n (master 0-7, slave 8-15)   } KVM's default
 *   GSI 16..23   IOAPIC pin n                                          } routing, unchanged
 *   GSI 24..     MSI routes handed out by irq_msi_alloc(), in the table only once
 *                irq_msi_update() gave them an address/data pair
 *
 * IRQ_MAX_ROUTES bounds the table (entries, not GSIs) to what every KVM accepts: older kernels
 * had KVM_MAX_IRQ_ROUTES 1024 and reject GSIs >= it. The highest MSI GSI stays below it too.
 */
#define IRQ_MAX_ROUTES 1024
#define IRQ_NR_LEGACY_GSIS 24 /* IOAPIC pins 0..23 (PIC on 0..15) */
#define IRQ_NR_LEGACY_ROUTES (16 * 2 + 8)
#define IRQ_MAX_MSI (IRQ_MAX_ROUTES - IRQ_NR_LEGACY_ROUTES)
#define IRQ_FIRST_MSI_GSI IRQ_NR_LEGACY_GSIS

struct irq_route {
	bool used;  /* allocated */
	bool valid; /* has an address/data pair: part of the table */
	uint64_t msi_addr;
	uint32_t msi_data;
};

struct irq_router {
	/* < 0: no KVM (unit tests). Tables are still built and counted; irqfd calls succeed
	 * without doing anything. */
	int vm_fd;
	bool live;		/* between init and destroy */
	pthread_mutex_t lock;	/* vCPU threads reprogram MSI-X entries concurrently */
	/* msi[i] is GSI IRQ_FIRST_MSI_GSI + i; IRQ_MAX_MSI entries, from the first irq_msi_alloc
	 * (24 KiB a VM without MSI devices never touches). */
	struct irq_route *msi;
	void *table;		 /* struct kvm_irq_routing scratch, IRQ_MAX_ROUTES entries, from the
				  * first push */
	unsigned nr_routes;	 /* entries in the last table built */
	unsigned long nr_pushes; /* tables built (and pushed when vm_fd >= 0) */
};

/* Start with the default routes (IOAPIC pins 0..23, PIC 0..15), which KVM_CREATE_IRQCHIP
 * installed already: nothing is pushed before the first MSI route. Returns 0 or -errno. */
int irq_router_init(struct irq_router *r, int vm_fd) __must_check;
/* Safe on a zeroed router and after a failed init. */
void irq_router_destroy(struct irq_router *r);

/* Reserve a GSI for an MSI route (not in the table until irq_msi_update). -ENOSPC if none. */
int irq_msi_alloc(struct irq_router *r, uint32_t *gsi) __must_check;
/* Release it (its route leaves the table). Unknown GSIs are ignored. */
void irq_msi_free(struct irq_router *r, uint32_t gsi);
/* Point an allocated GSI at an MSI address/data pair and push the table to KVM; nothing is
 * pushed if the route already says that. -EINVAL for a GSI not allocated, else 0 or the
 * ioctl's -errno (the route then keeps its previous value). Any thread. */
int irq_msi_update(struct irq_router *r, uint32_t gsi, uint64_t addr, uint32_t data) __must_check;

/* Connect / disconnect an eventfd to a GSI (KVM_IRQFD). vm_fd < 0: no-op returning 0. */
int irq_irqfd_assign(int vm_fd, int efd, uint32_t gsi) __must_check;
int irq_irqfd_deassign(int vm_fd, int efd, uint32_t gsi);
