/* pci_state.c: snapshot save/load of PCI functions (config space, BARs, MSI-X) and of the bus. */
#include <errno.h>
#include <string.h>

#include "arch/x86/layout.h"
#include "devices/devstate.h"
#include "devices/msix.h"
#include "devices/pci.h"

/*
 * Section layout of one function (pci_device_state_put):
 *
 *   u8  slot                 must match the device built from the saved configuration
 *   u8  cfg[256]             config space; the BAR registers carry the addresses
 *   u16 nr_vectors           MSI-X; then nr_vectors x {u32 addr_lo, addr_hi, data, ctrl}
 *   u64 pba
 *
 * Nothing host-side is saved (eventfds, GSIs, where a BAR is mapped): apply derives the MMIO
 * mapping from the command register and the BARs, and the MSI routes from the table.
 */

#define BAR_MEM_64 0x4u
#define BAR_MEM_PREFETCH 0x8u
#define CA_MASK 0x80fffffcu /* CONFIG_ADDRESS bits that stick (pci.c) */

static uint32_t le32_at(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static bool is_bar_byte(unsigned off)
{
	return off >= PCI_CFG_BAR0 && off < PCI_CFG_BAR0 + 4 * PCI_NR_BARS;
}

void pci_device_state_put(struct pci_device *d, struct snap_buf *b)
{
	uint8_t cfg[PCI_CFG_SIZE];

	if (d->bus)
		pthread_mutex_lock(&d->bus->lock);
	memcpy(cfg, d->cfg, sizeof(cfg));
	if (d->bus)
		pthread_mutex_unlock(&d->bus->lock);
	snap_put_u8(b, d->slot);
	snap_put_bytes(b, cfg, sizeof(cfg));
	pci_msix_state_put(d, b);
}

/* Is [addr, addr + size) inside a window memory decode may put a BAR in? */
static bool bar_in_window(const struct pci_device *d, gpa_t addr, uint64_t size)
{
	gpa_t b32 = LAYOUT_PCI_MMIO_START, e32 = LAYOUT_PCI_MMIO_END, b64 = 0, e64 = 0;

	if (d->bus)
		pci_bus_windows(d->bus, &b32, &e32, &b64, &e64);
	if (addr >= b32 && addr < e32 && size <= e32 - addr)
		return true;
	return addr >= b64 && addr < e64 && size <= e64 - addr;
}

/* The BAR registers of cfg against d's BAR sizes and types. */
static bool bars_ok(const struct pci_device *d, const uint8_t *cfg, struct snap_cursor *c)
{
	bool decode = (cfg[PCI_CFG_COMMAND] | cfg[PCI_CFG_COMMAND + 1] << 8) & PCI_COMMAND_MEMORY;

	for (unsigned i = 0; i < PCI_NR_BARS; i++) {
		const struct pci_bar *b = &d->bars[i];
		uint32_t lo = le32_at(cfg + PCI_CFG_BAR0 + 4 * i);

		if (!b->size) {
			bool upper = i > 0 && d->bars[i - 1].size && d->bars[i - 1].is_64;
			if (!upper && lo) {
				snap_cursor_fail(c,
						 "pci %s: BAR%u is 0x%08x, the device has no BAR%u",
						 d->name, i, lo, i);
				return false;
			}
			continue;
		}
		uint32_t type =
		    (b->is_64 ? BAR_MEM_64 : 0) | (b->prefetchable ? BAR_MEM_PREFETCH : 0);
		uint64_t addr = lo & ~0xfu;
		if (b->is_64)
			addr |= (uint64_t)le32_at(cfg + PCI_CFG_BAR0 + 4 * (i + 1)) << 32;
		if ((lo & 0xfu) != type || (addr & (b->size - 1))) {
			snap_cursor_fail(c, "pci %s: BAR%u 0x%llx: not a %s BAR aligned to 0x%llx",
					 d->name, i, (unsigned long long)(addr | (lo & 0xfu)),
					 b->is_64 ? "64-bit" : "32-bit",
					 (unsigned long long)b->size);
			return false;
		}
		if (decode && !bar_in_window(d, addr, b->size)) {
			snap_cursor_fail(c,
					 "pci %s: BAR%u at 0x%llx (0x%llx bytes) decodes outside "
					 "the PCI windows",
					 d->name, i, (unsigned long long)addr,
					 (unsigned long long)b->size);
			return false;
		}
	}
	return true;
}

bool pci_device_state_get(const struct pci_device *d, struct snap_cursor *c,
			  struct pci_dev_state *st)
{
	unsigned slot = snap_get_u8(c);

	snap_get_bytes(c, st->cfg, sizeof(st->cfg));
	if (c->bad)
		return false;
	if (slot != d->slot) {
		snap_cursor_fail(c,
				 "pci %s: saved in slot %u, now in slot %u (configured "
				 "differently?)",
				 d->name, slot, d->slot);
		return false;
	}
	/* Outside the BARs the guest changes only the writable bits; any other difference is a
	 * different device (vendor/device ID, capabilities) or a corrupt file. */
	for (unsigned off = 0; off < PCI_CFG_SIZE; off++) {
		if (is_bar_byte(off) || !((st->cfg[off] ^ d->cfg[off]) & ~d->wmask[off]))
			continue;
		snap_cursor_fail(c,
				 "pci %s: config byte 0x%02x is 0x%02x, the device has 0x%02x "
				 "there (read-only)",
				 d->name, off, st->cfg[off], d->cfg[off]);
		return false;
	}
	return bars_ok(d, st->cfg, c) && pci_msix_state_get(d, st->cfg, c, st->table, &st->pba);
}

void pci_device_state_apply(struct pci_device *d, const struct pci_dev_state *st)
{
	if (d->bus)
		pthread_mutex_lock(&d->bus->lock);
	memcpy(d->cfg, st->cfg, sizeof(d->cfg));
	for (unsigned i = 0; i < PCI_NR_BARS; i++) {
		struct pci_bar *b = &d->bars[i];

		if (!b->size)
			continue;
		b->addr = le32_at(d->cfg + PCI_CFG_BAR0 + 4 * i) & ~0xfu;
		if (b->is_64)
			b->addr |= (uint64_t)le32_at(d->cfg + PCI_CFG_BAR0 + 4 * (i + 1)) << 32;
	}
	pci_device_remap(d);
	pci_msix_state_apply(d, st->table, st->pba);
	if (d->bus)
		pthread_mutex_unlock(&d->bus->lock);
}

int pci_device_state_save(struct pci_device *d, struct snap_buf *b)
{
	devstate_put_header(b);
	pci_device_state_put(d, b);
	return snap_buf_failed(b);
}

int pci_device_state_load(struct pci_device *d, struct snap_cursor *c)
{
	struct pci_dev_state st;

	if (!devstate_get_header(c) || !pci_device_state_get(d, c, &st) || !devstate_done(c))
		return -EINVAL;
	pci_device_state_apply(d, &st);
	return 0;
}

int pci_bus_state_save(struct pci_bus *pb, struct snap_buf *b)
{
	pthread_mutex_lock(&pb->lock);
	uint32_t ca = pb->config_address;
	pthread_mutex_unlock(&pb->lock);
	devstate_put_header(b);
	snap_put_u32(b, ca);
	pci_device_state_put(&pb->host_bridge, b);
	return snap_buf_failed(b);
}

int pci_bus_state_load(struct pci_bus *pb, struct snap_cursor *c)
{
	struct pci_dev_state st;
	uint32_t ca;

	if (!devstate_get_header(c))
		return -EINVAL;
	ca = snap_get_u32(c);
	if (!c->bad && (ca & ~CA_MASK))
		snap_cursor_fail(
		    c, "pci: CONFIG_ADDRESS 0x%08x has bits the register does not hold", ca);
	if (c->bad || !pci_device_state_get(&pb->host_bridge, c, &st) || !devstate_done(c))
		return -EINVAL;
	pthread_mutex_lock(&pb->lock);
	pb->config_address = ca;
	pthread_mutex_unlock(&pb->lock);
	pci_device_state_apply(&pb->host_bridge, &st);
	return 0;
}
