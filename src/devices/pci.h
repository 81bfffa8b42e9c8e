/* pci.h: PCI host bridge on bus 0 (config space through 0xCF8/0xCFC), BAR allocation in the
 * 32-bit MMIO hole (64-bit BARs above RAM where they fit), and MSI-X. */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "util/compiler.h"
#include "vmm/bus.h"
#include "vmm/irq.h"
#include "vmm/memory.h"

#define PCI_CONFIG_ADDRESS 0xcf8
#define PCI_CONFIG_DATA 0xcfc
#define PCI_MAX_SLOTS 32
#define PCI_CFG_SIZE 256
#define PCI_NR_BARS 6
#define PCI_MSIX_MAX_VECTORS 64

struct pci_device;

struct pci_bar {
	uint64_t size; /* power of two >= 4 KiB; 0 = BAR unused */
	bool is_64;
	gpa_t addr; /* current guest address */
	bus_io_fn fn; /* MMIO handler, offset relative to the BAR start */
	void *opaque;
};

struct msix_entry {
	uint32_t addr_lo, addr_hi, data, ctrl; /* ctrl bit 0: vector masked */
};

struct pci_msix {
	unsigned nr_vectors; /* 0: no MSI-X */
	uint8_t bar;         /* BAR holding table and PBA */
	uint32_t table_off, pba_off;
	uint8_t cap_off; /* capability offset in config space */
	struct msix_entry table[PCI_MSIX_MAX_VECTORS];
	uint64_t pba; /* pending bits */
	bool enabled, func_masked;
	/* one irqfd per vector */
	int efd[PCI_MSIX_MAX_VECTORS];
	uint32_t gsi[PCI_MSIX_MAX_VECTORS];
};

struct pci_device {
	const char *name;
	uint8_t slot;
	uint8_t cfg[PCI_CFG_SIZE];
	uint8_t wmask[PCI_CFG_SIZE]; /* writable bits of cfg (BARs handled separately) */
	uint8_t next_cap;            /* where the next capability goes */
	struct pci_bar bars[PCI_NR_BARS];
	uint32_t bar_probe[PCI_NR_BARS]; /* sizing-protocol latch: all-ones written */
	struct pci_msix msix;
	struct pci_bus *bus;
	/* Optional: called (vCPU thread) after a BAR moved so the device can move what it
	 * registered elsewhere (ioeventfds). */
	void (*bar_moved)(struct pci_device *d, unsigned bar, gpa_t old_addr, gpa_t new_addr);
	void *owner; /* the device model embedding this */
};

struct pci_bus {
	pthread_mutex_t lock;
	uint32_t config_address; /* last value written to 0xCF8 */
	struct pci_device *slots[PCI_MAX_SLOTS];
	struct pci_device host_bridge;
	struct bus *mmio;
	struct irq_router *irq;
	int vm_fd;
	gpa_t mmio32_next, mmio32_end; /* allocation cursor in the 32-bit window */
	gpa_t mmio64_next, mmio64_end; /* 64-bit window above RAM */
};

/* Create the bus and its host bridge at 00:00.0; registers 0xCF8-0xCFF on pio. */
int pci_bus_init(struct pci_bus *pb, struct bus *pio, struct bus *mmio, struct irq_router *irq,
		 int vm_fd, const struct guest_mem *mem) __must_check;
void pci_bus_destroy(struct pci_bus *pb);

/* Fill identity fields and a capability list head. class is (class << 16 | subclass << 8 |
 * prog_if). */
void pci_device_init(struct pci_device *d, const char *name, uint16_t vendor, uint16_t device,
		     uint32_t class_code, uint16_t subsys_vendor, uint16_t subsys_id);
/* Declare a memory BAR before pci_device_add (size power of two >= 4 KiB). */
int pci_device_set_bar(struct pci_device *d, unsigned idx, uint64_t size, bool is_64,
		       bus_io_fn fn, void *opaque) __must_check;
/* Append a capability (cap[0] = ID; cap[1], the next pointer, is filled in). Returns its
 * offset in config space or -ENOSPC. */
int pci_device_add_cap(struct pci_device *d, const void *cap, unsigned len);
/* Add an MSI-X capability with nr vectors whose table and PBA live in `bar` at the given
 * offsets. Allocates GSIs and eventfds, wires irqfds (at pci_device_add time). */
int pci_device_add_msix(struct pci_device *d, unsigned nr, unsigned bar, uint32_t table_off,
			uint32_t pba_off) __must_check;
/* Put the device in the next free slot, allocate its BARs, register them on the MMIO bus. */
int pci_device_add(struct pci_bus *pb, struct pci_device *d) __must_check;

/* Raise MSI-X vector v (any thread): signals its irqfd, or sets the PBA bit if masked. */
void pci_msix_notify(struct pci_device *d, unsigned v);
/* BAR MMIO helper for the MSI-X table/PBA: returns true if the access hit them. */
bool pci_msix_mmio(struct pci_device *d, uint64_t bar_off, uint8_t *data, uint32_t len,
		   bool is_write);

/* For the DSDT: windows to describe in the root bridge's _CRS. */
void pci_bus_windows(const struct pci_bus *pb, gpa_t *mmio32_base, gpa_t *mmio32_end,
		     gpa_t *mmio64_base, gpa_t *mmio64_end);
