/* msix.h: MSI-X internals shared by pci.c and msix.c; device models use pci.h only. */
#pragma once

#include "devices/pci.h"

/* Table reset state (every vector masked), no eventfds yet. From pci_device_init. */
void pci_msix_state_init(struct pci_msix *m);
/* Per vector: eventfd, MSI GSI, irqfd. From pci_device_add; undone on failure. */
int pci_msix_wire(struct pci_bus *pb, struct pci_device *d) __must_check;
void pci_msix_unwire(struct pci_bus *pb, struct pci_device *d);
/* The guest wrote the capability's Message Control (pci_bus.lock held). */
void pci_msix_ctrl_written(struct pci_device *d);

/* ---- snapshot (pci_state.c) ---------------------------------------------------------- */
struct snap_buf;
struct snap_cursor;
/* Make the MMIO bus match every BAR of d as its config space now says (pci_bus.lock held;
 * nothing when d is on no bus). pci.c. */
void pci_device_remap(struct pci_device *d);
/* The vector count, the table and the PBA (m->lock taken). */
void pci_msix_state_put(struct pci_device *d, struct snap_buf *b);
/* Decode them into table/pba and check them against d (its vector count) and cfg, the config
 * space being loaded (enable and function-mask bits). False with the cursor bad. */
bool pci_msix_state_get(const struct pci_device *d, const uint8_t *cfg, struct snap_cursor *c,
			struct msix_entry *table, uint64_t *pba);
/* Install them (m->lock taken): enable and mask bits from d->cfg, which must already hold the
 * loaded config space; every unmasked vector routed anew. */
void pci_msix_state_apply(struct pci_device *d, const struct msix_entry *table, uint64_t pba);
