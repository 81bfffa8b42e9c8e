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

/*
 * Guest-physical windows (both in the root bridge's _CRS, src/arch/x86/acpi_pci.c):
 *
 *   0xc000_0000 .. 0xfebf_ffff   32-bit BARs, allocated bottom-up, naturally aligned
 *   0xfec0_0000 ..               IOAPIC, LAPIC, KVM's TSS: not PCI
 *   W64 = align_up(max(4 GiB, end of RAM), 1 GiB)
 *   W64 .. W64 + 64 GiB          64-bit BARs (clipped to the CPU's physical address width;
 *                                a 64-bit BAR that does not fit goes in the 32-bit window)
 *
 * Config mechanism #1 only, bus 0, function 0 of each slot; 00:00.0 is the host bridge.
 * No INTx: Interrupt Pin reads 0 on every device; interrupts are MSI-X only.
 *
 * Threads and locks: config cycles come from vCPU threads and run under pci_bus.lock. MSI-X
 * state (table, PBA, enable and function-mask bits) is under pci_msix.lock, taken after
 * pci_bus.lock; the irq_router's lock comes last. A BAR's MMIO callback runs with no PCI lock
 * held.
 */

#define PCI_CONFIG_ADDRESS 0xcf8
#define PCI_CONFIG_DATA 0xcfc
#define PCI_MAX_SLOTS 32
#define PCI_CFG_SIZE 256
#define PCI_NR_BARS 6
#define PCI_MSIX_MAX_VECTORS 64
#define PCI_BAR_MIN_SIZE 4096ULL
#define PCI_BAR_UNMAPPED ((gpa_t)UINT64_MAX) /* bar_moved(): the BAR does not decode */

#define PCI_HOST_BRIDGE_VENDOR 0x8086 /* as Cloud Hypervisor and Firecracker: no Linux quirks */
#define PCI_HOST_BRIDGE_DEVICE 0x0d57

/* Config-space registers and bits used by devices. */
#define PCI_CFG_VENDOR_ID 0x00
#define PCI_CFG_COMMAND 0x04
#define PCI_CFG_STATUS 0x06
#define PCI_CFG_REVISION 0x08
#define PCI_CFG_BAR0 0x10
#define PCI_CFG_SUBSYS_VENDOR 0x2c
#define PCI_CFG_ROM 0x30
#define PCI_CFG_CAP_PTR 0x34
#define PCI_CFG_INT_LINE 0x3c
#define PCI_CFG_FIRST_CAP 0x40
#define PCI_COMMAND_MEMORY 0x0002
#define PCI_COMMAND_MASTER 0x0004
#define PCI_STATUS_CAP_LIST 0x0010
#define PCI_CAP_ID_MSIX 0x11
#define PCI_CAP_ID_VNDR 0x09
#define PCI_MSIX_CTRL_ENABLE 0x8000
#define PCI_MSIX_CTRL_MASKALL 0x4000
#define PCI_MSIX_ENTRY_SIZE 16
#define PCI_MSIX_ENTRY_MASKED 1u

struct pci_device;

struct pci_bar {
	uint64_t
	    size; /* power of two >= 4 KiB; 0 = BAR unused (or the upper half of a 64-bit BAR) */
	bool is_64;
	bool prefetchable; /* optional: set after pci_device_set_bar */
	gpa_t addr;	   /* address the BAR register holds (the guest may move it) */
	gpa_t mapped;	   /* where it decodes on the MMIO bus, PCI_BAR_UNMAPPED if nowhere */
	bus_io_fn fn;	   /* MMIO handler, offset relative to the BAR start */
	void *opaque;
};

struct msix_entry {
	uint32_t addr_lo, addr_hi, data, ctrl; /* ctrl bit 0: vector masked */
};
static_assert(sizeof(struct msix_entry) == PCI_MSIX_ENTRY_SIZE, "MSI-X table entry");

struct pci_msix {
	pthread_mutex_t lock; /* vCPU threads (table, control) vs notify (event loop) */
	unsigned nr_vectors;  /* 0: no MSI-X */
	uint8_t bar;	      /* BAR holding table and PBA */
	uint32_t table_off, pba_off;
	uint8_t cap_off; /* capability offset in config space */
	struct msix_entry table[PCI_MSIX_MAX_VECTORS];
	uint64_t pba; /* pending bits */
	bool enabled, func_masked;
	/* one irqfd per vector, wired by pci_device_add; efd -1 until then */
	int efd[PCI_MSIX_MAX_VECTORS];
	uint32_t gsi[PCI_MSIX_MAX_VECTORS];
	unsigned long fired[PCI_MSIX_MAX_VECTORS]; /* eventfd writes, for tests and stats */
};

struct pci_device {
	const char *name;
	uint8_t slot;
	uint8_t cfg[PCI_CFG_SIZE];
	uint8_t wmask[PCI_CFG_SIZE]; /* writable bits of cfg (BARs handled separately) */
	uint16_t next_cap;	     /* where the next capability goes */
	uint8_t last_cap;	     /* offset of the last capability, 0 if none */
	struct pci_bar bars[PCI_NR_BARS];
	struct pci_msix msix;
	struct pci_bus *bus;
	/* Optional: called on a vCPU thread, with pci_bus.lock held, when where a BAR decodes
	 * changes: memory decode turned on or off, or the guest moved a decoding BAR. old/new
	 * are PCI_BAR_UNMAPPED when the BAR does not decode. Move ioeventfds here. Must not make
	 * config accesses. */
	void (*bar_moved)(struct pci_device *d, unsigned bar, gpa_t old_addr, gpa_t new_addr);
	/* Optional: device-specific config registers (e.g. virtio's PCI_CFG access window).
	 * Called with pci_bus.lock held for every access that reaches the device: after a write
	 * was applied through wmask, or after a read filled data[] (which it may overwrite).
	 * off + len <= PCI_CFG_SIZE, len 1, 2 or 4. */
	void (*cfg_access)(struct pci_device *d, unsigned off, uint8_t *data, unsigned len,
			   bool is_write);
	void *owner; /* the device model embedding this */
};

struct pci_bus {
	pthread_mutex_t lock;	 /* config cycles */
	uint32_t config_address; /* last value written to 0xCF8 */
	struct pci_device *slots[PCI_MAX_SLOTS];
	struct pci_device host_bridge;
	struct bus *mmio;
	struct irq_router *irq;
	int vm_fd;
	gpa_t mmio32_base, mmio32_next, mmio32_end; /* 32-bit window; next: allocation cursor */
	gpa_t mmio64_base, mmio64_next, mmio64_end; /* 64-bit window above RAM (may be empty) */
};

/* Create the bus and its host bridge at 00:00.0; registers 0xCF8-0xCFF on pio. mem gives the
 * end of RAM (the 64-bit window goes above it). vm_fd may be -1 (unit tests). */
int pci_bus_init(struct pci_bus *pb, struct bus *pio, struct bus *mmio, struct irq_router *irq,
		 int vm_fd, const struct guest_mem *mem) __must_check;
/* Releases irqfds, eventfds and GSIs of every device. Safe on a zeroed bus. */
void pci_bus_destroy(struct pci_bus *pb);

/* Fill identity fields and a capability list head. class is (class << 16 | subclass << 8 |
 * prog_if). Zeroes *d first; set bar_moved/cfg_access/owner afterwards. */
void pci_device_init(struct pci_device *d, const char *name, uint16_t vendor, uint16_t device,
		     uint32_t class_code, uint16_t subsys_vendor, uint16_t subsys_id);
/* Declare a memory BAR before pci_device_add (size power of two >= 4 KiB). A 64-bit BAR also
 * takes idx + 1. -EINVAL on a bad index/size or a slot already taken. */
int pci_device_set_bar(struct pci_device *d, unsigned idx, uint64_t size, bool is_64, bus_io_fn fn,
		       void *opaque) __must_check;
/* Append a capability (cap[0] = ID; cap[1], the next pointer, is filled in). Returns its
 * offset in config space, -EINVAL for len < 2, or -ENOSPC. Read-only to the guest unless the
 * caller then sets bits in d->wmask. */
int pci_device_add_cap(struct pci_device *d, const void *cap, unsigned len);
/* Add an MSI-X capability with nr vectors whose table and PBA live in `bar` (declared first)
 * at the given offsets (8-byte aligned, inside the BAR, not overlapping). GSIs, eventfds and
 * irqfds are set up by pci_device_add. Returns 0 or -EINVAL/-ENOSPC. */
int pci_device_add_msix(struct pci_device *d, unsigned nr, unsigned bar, uint32_t table_off,
			uint32_t pba_off) __must_check;
/* Put the device in the next free slot, assign its BARs (not decoding until the guest sets
 * Memory Space in the command register) and wire MSI-X. Before vCPUs run. */
int pci_device_add(struct pci_bus *pb, struct pci_device *d) __must_check;

/* Raise MSI-X vector v (any thread). MSI-X disabled: nothing (no INTx here). Function or
 * vector masked: sets the PBA bit, delivered on unmask. Else signals the vector's irqfd. */
void pci_msix_notify(struct pci_device *d, unsigned v);
/* BAR MMIO helper for the MSI-X table/PBA: call it first from the handler of BAR
 * d->msix.bar. Returns true if the access hit them (and was handled). */
bool pci_msix_mmio(struct pci_device *d, uint64_t bar_off, uint8_t *data, uint32_t len,
		   bool is_write);

/* For the DSDT: windows to describe in the root bridge's _CRS, [base, end). An empty 64-bit
 * window has base == end. */
void pci_bus_windows(const struct pci_bus *pb, gpa_t *mmio32_base, gpa_t *mmio32_end,
		     gpa_t *mmio64_base, gpa_t *mmio64_end);

/* Port handler for 0xCF8-0xCFF (registered by pci_bus_init; exported for tests). */
void pci_config_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);

/* ---- snapshot (pci_state.c; snapshot/state.h, devices/devstate.h) ---------------------- */

struct snap_buf;
struct snap_cursor;

/* One function's saved state, decoded and checked, not yet applied. */
struct pci_dev_state {
	uint8_t cfg[PCI_CFG_SIZE]; /* config space as the guest left it, BARs included */
	struct msix_entry table[PCI_MSIX_MAX_VECTORS];
	uint64_t pba;
};

/* Building blocks for a section that holds more than the PCI function (virtio/pci.c): put
 * the slot, the config space and the MSI-X table/PBA; get decodes and checks them against d
 * (same slot, read-only bytes as d has them, BARs naturally aligned and, while memory decode
 * is on, inside a PCI window, MSI-X vector count and bits); apply installs them, moves the
 * BARs on the MMIO bus (bar_moved is called) and routes the unmasked vectors anew. */
void pci_device_state_put(struct pci_device *d, struct snap_buf *b);
bool pci_device_state_get(const struct pci_device *d, struct snap_cursor *c,
			  struct pci_dev_state *st);
void pci_device_state_apply(struct pci_device *d, const struct pci_dev_state *st);
/* A section of its own: the above with a version header; load is all or nothing (0, or
 * -EINVAL with the cursor bad). Before vCPUs run. */
int pci_device_state_save(struct pci_device *d, struct snap_buf *b) __must_check;
int pci_device_state_load(struct pci_device *d, struct snap_cursor *c) __must_check;
/* The bus: CONFIG_ADDRESS and the host bridge's config space. */
int pci_bus_state_save(struct pci_bus *pb, struct snap_buf *b) __must_check;
int pci_bus_state_load(struct pci_bus *pb, struct snap_cursor *c) __must_check;
