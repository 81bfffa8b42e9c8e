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
