/* pci_conf1.h: the guest's side of PCI configuration mechanism #1 (ports 0xCF8/0xCFC), as
 * Linux's arch/x86/pci/direct.c drives it, for unit tests with a port-I/O bus. */
#pragma once

#include <stdint.h>

#include "devices/pci.h"
#include "vmm/bus.h"

/* Little-endian port write/read of len (1, 2 or 4) bytes. */
static inline void pio_out(struct bus *pio, uint16_t port, uint32_t v, uint32_t len)
{
	uint8_t d[4];
	for (unsigned i = 0; i < 4; i++)
		d[i] = (uint8_t)(v >> (8 * i));
	bus_access(pio, port, d, len, true);
}

static inline uint32_t pio_in(struct bus *pio, uint16_t port, uint32_t len)
{
	uint8_t d[4] = {0};
	bus_access(pio, port, d, len, false);
	uint32_t v = 0;
	for (unsigned i = 0; i < len; i++)
		v |= (uint32_t)d[i] << (8 * i);
	return v;
}

/* The CONFIG_ADDRESS value for bus/dev/fn/reg (enable bit set, dword-aligned). */
static inline uint32_t conf1(unsigned bus, unsigned dev, unsigned fn, unsigned reg)
{
	return 0x80000000u | bus << 16 | dev << 11 | fn << 8 | (reg & 0xfc);
}

/* Config read/write of len bytes at reg of bus 0, device dev, function 0. */
static inline uint32_t conf1_read(struct bus *pio, unsigned dev, unsigned reg, unsigned len)
{
	pio_out(pio, PCI_CONFIG_ADDRESS, conf1(0, dev, 0, reg), 4);
	return pio_in(pio, (uint16_t)(PCI_CONFIG_DATA + (reg & 3)), len);
}

static inline void conf1_write(struct bus *pio, unsigned dev, unsigned reg, uint32_t v,
			       unsigned len)
{
	pio_out(pio, PCI_CONFIG_ADDRESS, conf1(0, dev, 0, reg), 4);
	pio_out(pio, (uint16_t)(PCI_CONFIG_DATA + (reg & 3)), v, len);
}
