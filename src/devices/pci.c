/* pci.c: PCI bus 0: config mechanism #1, type-0 headers, capability lists, BAR assignment. */
#include "devices/pci.h"

#include <cpuid.h>
#include <errno.h>
#include <string.h>

#include "arch/x86/layout.h"
#include "devices/msix.h"
#include "util/log.h"

/*
 * CONFIG_ADDRESS (0xCF8, dword accesses only):
 *
 *   31      30..24    23..16   15..11   10..8     7..2        1..0
 *   enable  reserved  bus      device   function  register    00
 *
 * CONFIG_DATA (0xCFC..0xCFF): a byte, word or dword at (register) + (port - 0xCFC). Other
 * accesses to 0xCF8..0xCFB (Linux pokes 0xCFB with a byte to tell mechanism #1 from #2) are not
 * ours: reads float high, writes vanish.
 */
#define CA_ENABLE 0x80000000u
#define CA_MASK (CA_ENABLE | 0x00fffffcu)
#define CA_BUS(ca) (((ca) >> 16) & 0xff)
#define CA_DEV(ca) (((ca) >> 11) & 0x1f)
#define CA_FN(ca) (((ca) >> 8) & 0x7)
#define CA_REG(ca) ((ca)&0xfc)

/* Type-0 header offsets this file handles specially. */
#define CFG_CLASS_PROG 0x09
#define CFG_CACHE_LINE 0x0c
#define CFG_HEADER_TYPE 0x0e
#define CFG_SUBSYS_ID 0x2e
#define CFG_BAR_END (PCI_CFG_BAR0 + 4 * PCI_NR_BARS)

#define PCI_CLASS_HOST_BRIDGE 0x060000
#define BAR_MEM_64 0x4u
#define BAR_MEM_PREFETCH 0x8u
/* Command bits a guest may set: memory space, bus master, parity error response, SERR#,
 * INTx disable. No I/O BARs exist, so I/O space stays 0. */
#define COMMAND_WMASK 0x0546u

#define MMIO64_SIZE (64 * GiB)
#define MMIO64_ALIGN GiB
#define PHYS_BITS_MAX 48 /* KVM caps guest-addressable GPAs here without 5-level TDP */

static uint32_t get_le(const uint8_t *p, unsigned len)
{
	uint32_t v = 0;
	for (unsigned i = 0; i < len; i++)
		v |= (uint32_t)p[i] << (8 * i);
	return v;
}

static void put_le(uint8_t *p, uint32_t v, unsigned len)
{
	for (unsigned i = 0; i < len; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* True if BAR idx is the upper dword of the 64-bit BAR at idx - 1. */
static bool bar_is_upper(const struct pci_device *d, unsigned idx)
{
	return idx > 0 && d->bars[idx - 1].size && d->bars[idx - 1].is_64;
}

void pci_device_init(struct pci_device *d, const char *name, uint16_t vendor, uint16_t device,
		     uint32_t class_code, uint16_t subsys_vendor, uint16_t subsys_id)
{
	memset(d, 0, sizeof(*d));
	d->name = name;
	put_le(d->cfg + PCI_CFG_VENDOR_ID, vendor, 2);
	put_le(d->cfg + PCI_CFG_VENDOR_ID + 2, device, 2);
	put_le(d->cfg + CFG_CLASS_PROG, class_code, 3);
	d->cfg[CFG_HEADER_TYPE] = 0x00; /* type 0, single function */
	put_le(d->cfg + PCI_CFG_SUBSYS_VENDOR, subsys_vendor, 2);
	put_le(d->cfg + CFG_SUBSYS_ID, subsys_id, 2);
	/* Interrupt Pin stays 0: no INTx. Latency timer hardwired 0, as on PCIe. */
	put_le(d->wmask + PCI_CFG_COMMAND, COMMAND_WMASK, 2);
	d->wmask[CFG_CACHE_LINE] = 0xff;
	d->wmask[PCI_CFG_INT_LINE] = 0xff; /* scratch register for the OS */
	d->next_cap = PCI_CFG_FIRST_CAP;
	for (unsigned i = 0; i < PCI_NR_BARS; i++)
		d->bars[i].mapped = PCI_BAR_UNMAPPED;
	pci_msix_state_init(&d->msix);
}

int pci_device_set_bar(struct pci_device *d, unsigned idx, uint64_t size, bool is_64, bus_io_fn fn,
		       void *opaque)
{
	unsigned n = is_64 ? 2 : 1;

	if (d->bus || idx >= PCI_NR_BARS || n > PCI_NR_BARS - idx || !fn ||
	    size < PCI_BAR_MIN_SIZE || (size & (size - 1)) || (!is_64 && size > 2 * GiB))
		return -EINVAL;
	for (unsigned i = idx; i < idx + n; i++)
		if (d->bars[i].size || bar_is_upper(d, i))
			return -EINVAL;
	d->bars[idx] = (struct pci_bar){.size = size,
					.is_64 = is_64,
					.addr = 0,
					.mapped = PCI_BAR_UNMAPPED,
					.fn = fn,
					.opaque = opaque};
	return 0;
}

int pci_device_add_cap(struct pci_device *d, const void *cap, unsigned len)
{
	unsigned off = ALIGN_UP((unsigned)d->next_cap, 4u);

	if (len < 2)
		return -EINVAL;
	if (off < PCI_CFG_FIRST_CAP || off > PCI_CFG_SIZE || len > PCI_CFG_SIZE - off)
		return -ENOSPC;
	memcpy(d->cfg + off, cap, len);
	d->cfg[off + 1] = 0; /* end of list */
	if (d->last_cap)
		d->cfg[d->last_cap + 1] = (uint8_t)off;
	else
		d->cfg[PCI_CFG_CAP_PTR] = (uint8_t)off;
	d->cfg[PCI_CFG_STATUS] |= PCI_STATUS_CAP_LIST;
	d->last_cap = (uint8_t)off;
	d->next_cap = (uint16_t)(off + len);
	return (int)off;
}

int pci_device_add_msix(struct pci_device *d, unsigned nr, unsigned bar, uint32_t table_off,
			uint32_t pba_off)
{
	struct pci_msix *m = &d->msix;
	uint64_t table_len = (uint64_t)nr * PCI_MSIX_ENTRY_SIZE, pba_len = 8;

	if (d->bus || m->nr_vectors || nr == 0 || nr > PCI_MSIX_MAX_VECTORS || bar >= PCI_NR_BARS ||
	    !d->bars[bar].size || (table_off | pba_off) & 7)
		return -EINVAL;
	uint64_t size = d->bars[bar].size;
	if (table_off > size || table_len > size - table_off || pba_off > size ||
	    pba_len > size - pba_off)
		return -EINVAL;
	if (table_off < pba_off + pba_len && pba_off < table_off + table_len)
		return -EINVAL;

	uint8_t cap[12] = {PCI_CAP_ID_MSIX, 0};
	put_le(cap + 2, nr - 1, 2); /* Table Size is N - 1; enable and function mask clear */
	put_le(cap + 4, table_off | bar, 4);
	put_le(cap + 8, pba_off | bar, 4);
	int off = pci_device_add_cap(d, cap, sizeof(cap));
	if (off < 0)
		return off;
	d->wmask[off + 3] = (PCI_MSIX_CTRL_ENABLE | PCI_MSIX_CTRL_MASKALL) >> 8;
	m->cap_off = (uint8_t)off;
	m->bar = (uint8_t)bar;
	m->table_off = table_off;
	m->pba_off = pba_off;
	m->nr_vectors = nr;
	return 0;
}

/* Reflect a BAR's address (and type bits) in the config registers. */
static void bar_sync_cfg(struct pci_device *d, unsigned idx)
{
	const struct pci_bar *b = &d->bars[idx];
	uint32_t lo = (uint32_t)b->addr | (b->is_64 ? BAR_MEM_64 : 0) |
		      (b->prefetchable ? BAR_MEM_PREFETCH : 0);

	put_le(d->cfg + PCI_CFG_BAR0 + 4 * idx, lo, 4);
	if (b->is_64)
		put_le(d->cfg + PCI_CFG_BAR0 + 4 * (idx + 1), (uint32_t)(b->addr >> 32), 4);
}

/* Make the MMIO bus match the BAR: decoding at its address iff memory space is enabled. */
static void bar_update_mapping(struct pci_bus *pb, struct pci_device *d, unsigned idx)
{
	struct pci_bar *b = &d->bars[idx];
	bool decode = get_le(d->cfg + PCI_CFG_COMMAND, 2) & PCI_COMMAND_MEMORY;
	gpa_t want = decode ? b->addr : PCI_BAR_UNMAPPED;
	gpa_t old = b->mapped;

	if (!b->size || want == old)
		return;
	if (old != PCI_BAR_UNMAPPED) {
		(void)bus_unregister(pb->mmio, old);
		b->mapped = PCI_BAR_UNMAPPED;
	}
	if (want != PCI_BAR_UNMAPPED) {
		int ret = bus_register(pb->mmio, want, b->size, b->fn, b->opaque, d->name);
		if (ret)
			log_warn_ratelimited(
			    "pci 00:%02x.0 %s: BAR%u at 0x%llx (0x%llx bytes): %s; "
			    "not decoded",
			    d->slot, d->name, idx, (unsigned long long)want,
			    (unsigned long long)b->size, strerror(-ret));
		else
			b->mapped = want;
	}
	if (b->mapped != old && d->bar_moved)
		d->bar_moved(d, idx, old, b->mapped);
}

static void bars_update_mapping(struct pci_bus *pb, struct pci_device *d)
{
	for (unsigned i = 0; i < PCI_NR_BARS; i++)
		bar_update_mapping(pb, d, i);
}

void pci_device_remap(struct pci_device *d)
{
	if (d->bus)
		bars_update_mapping(d->bus, d);
}

/*
 * A dword written to BAR register idx. Address bits below the BAR's size are hardwired 0, so
 * the sizing protocol needs no special case: all-ones reads back as ~(size - 1) plus the type
 * bits (and, for the upper half of a 64-bit BAR, ~((size - 1) >> 32)).
 */
static void bar_write(struct pci_bus *pb, struct pci_device *d, unsigned idx, uint32_t v)
{
	struct pci_bar *b;

	if (d->bars[idx].size) {
		b = &d->bars[idx];
		uint32_t mask = (uint32_t) ~(b->size - 1) & ~0xfu;
		b->addr = (b->addr & ~(uint64_t)UINT32_MAX) | (v & mask);
	} else if (bar_is_upper(d, idx)) {
		idx--;
		b = &d->bars[idx];
		uint32_t mask = (uint32_t) ~((b->size - 1) >> 32);
		b->addr = (b->addr & UINT32_MAX) | (uint64_t)(v & mask) << 32;
	} else {
		return; /* unimplemented BAR: reads 0, writes ignored */
	}
	bar_sync_cfg(d, idx);
	bar_update_mapping(pb, d, idx);
}

/* A config write of len bytes at off, inside one dword (mechanism #1 cannot cross one). */
static void cfg_write(struct pci_bus *pb, struct pci_device *d, unsigned off, uint8_t *data,
		      unsigned len)
{
	unsigned end = off + len;
	const struct pci_msix *m = &d->msix;

	if (off >= PCI_CFG_BAR0 && off < CFG_BAR_END) {
		unsigned idx = (off - PCI_CFG_BAR0) / 4, base = PCI_CFG_BAR0 + 4 * idx;
		uint8_t dw[4];
		memcpy(dw, d->cfg + base, 4);
		memcpy(dw + (off - base), data, len);
		bar_write(pb, d, idx, get_le(dw, 4));
	} else {
		for (unsigned i = 0; i < len; i++) {
			uint8_t w = d->wmask[off + i];
			d->cfg[off + i] = (uint8_t)((d->cfg[off + i] & ~w) | (data[i] & w));
		}
		if (off < PCI_CFG_COMMAND + 2 && end > PCI_CFG_COMMAND)
			bars_update_mapping(pb, d);
		if (m->nr_vectors && off < m->cap_off + 4u && end > m->cap_off + 2u)
			pci_msix_ctrl_written(d);
	}
	if (d->cfg_access)
		d->cfg_access(d, off, data, len, true);
}

static void cfg_read(struct pci_device *d, unsigned off, uint8_t *data, unsigned len)
{
	memcpy(data, d->cfg + off, len);
	if (d->cfg_access)
		d->cfg_access(d, off, data, len, false);
}

void pci_config_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct pci_bus *pb = opaque;
	bool sized = len == 1 || len == 2 || len == 4;

	pthread_mutex_lock(&pb->lock);
	if (offset < 4) {
		if (offset == 0 && len == 4) {
			if (is_write)
				pb->config_address = get_le(data, 4) & CA_MASK;
			else
				put_le(data, pb->config_address, 4);
		} else if (!is_write) {
			memset(data, 0xff, len);
		}
		goto out;
	}

	unsigned port = (unsigned)offset - 4;
	uint32_t ca = pb->config_address;
	struct pci_device *d = NULL;
	if (sized && port + len <= 4 && (ca & CA_ENABLE) && CA_BUS(ca) == 0 && CA_FN(ca) == 0)
		d = pb->slots[CA_DEV(ca)];
	if (!d) {
		if (!is_write)
			memset(data, 0xff, len); /* master abort */
		goto out;
	}
	if (is_write)
		cfg_write(pb, d, CA_REG(ca) + port, data, len);
	else
		cfg_read(d, CA_REG(ca) + port, data, len);
out:
	pthread_mutex_unlock(&pb->lock);
}

/* The CPU's physical address width as KVM lets the guest address it. */
static unsigned phys_bits(void)
{
	unsigned eax, ebx, ecx, edx;

	if (!__get_cpuid(0x80000000, &eax, &ebx, &ecx, &edx) || eax < 0x80000008)
		return 36;
	__get_cpuid(0x80000008, &eax, &ebx, &ecx, &edx);
	return MIN(eax & 0xff, (unsigned)PHYS_BITS_MAX);
}

int pci_bus_init(struct pci_bus *pb, struct bus *pio, struct bus *mmio, struct irq_router *irq,
		 int vm_fd, const struct guest_mem *mem)
{
	gpa_t ram_end = 0, limit = 1ULL << phys_bits();

	memset(pb, 0, sizeof(*pb));
	if (!pio || !mmio || !irq || !mem)
		return -EINVAL;
	pthread_mutex_init(&pb->lock, NULL);
	pb->mmio = mmio;
	pb->irq = irq;
	pb->vm_fd = vm_fd;
	pb->mmio32_base = pb->mmio32_next = LAYOUT_PCI_MMIO_START;
	pb->mmio32_end = LAYOUT_PCI_MMIO_END;
	for (unsigned i = 0; i < mem->nr_regions; i++)
		ram_end = MAX(ram_end, mem->regions[i].gpa + mem->regions[i].size);
	gpa_t base = ALIGN_UP(MAX(ram_end, LAYOUT_RAM_ABOVE_4G), MMIO64_ALIGN);
	gpa_t end = MIN(base + MMIO64_SIZE, limit);
	if (base < end) {
		pb->mmio64_base = pb->mmio64_next = base;
		pb->mmio64_end = end;
	}

	struct pci_device *hb = &pb->host_bridge;
	pci_device_init(hb, "host-bridge", PCI_HOST_BRIDGE_VENDOR, PCI_HOST_BRIDGE_DEVICE,
			PCI_CLASS_HOST_BRIDGE, 0, 0);
	hb->bus = pb;
	hb->slot = 0;
	pb->slots[0] = hb;

	int ret = bus_register(pio, PCI_CONFIG_ADDRESS, 8, pci_config_io, pb, "pci-config");
	if (ret) {
		log_err("pci: ports 0x%x-0x%x: %s", PCI_CONFIG_ADDRESS, PCI_CONFIG_ADDRESS + 7,
			strerror(-ret));
		pthread_mutex_destroy(&pb->lock);
		pb->mmio = NULL;
	}
	return ret;
}

void pci_bus_destroy(struct pci_bus *pb)
{
	if (!pb->mmio)
		return;
	for (unsigned s = 1; s < PCI_MAX_SLOTS; s++) {
		struct pci_device *d = pb->slots[s];
		if (!d)
			continue;
		for (unsigned i = 0; i < PCI_NR_BARS; i++) {
			if (d->bars[i].mapped != PCI_BAR_UNMAPPED)
				(void)bus_unregister(pb->mmio, d->bars[i].mapped);
			d->bars[i].mapped = PCI_BAR_UNMAPPED;
		}
		pci_msix_unwire(pb, d);
		pb->slots[s] = NULL;
	}
	pthread_mutex_destroy(&pb->lock);
	pb->mmio = NULL;
}

/* Naturally aligned [*addr, *addr + size) from a window cursor. */
static int window_alloc(gpa_t *next, gpa_t end, uint64_t size, gpa_t *addr)
{
	gpa_t a = ALIGN_UP(*next, size);

	if (a < *next || a >= end || end - a < size)
		return -ENOSPC;
	*addr = a;
	*next = a + size;
	return 0;
}

static int assign_bars(struct pci_bus *pb, struct pci_device *d)
{
	for (unsigned i = 0; i < PCI_NR_BARS; i++) {
		struct pci_bar *b = &d->bars[i];
		gpa_t addr;
		int ret = -ENOSPC;

		if (!b->size)
			continue;
		if (b->is_64 && pb->mmio64_end > pb->mmio64_base)
			ret = window_alloc(&pb->mmio64_next, pb->mmio64_end, b->size, &addr);
		if (ret)
			ret = window_alloc(&pb->mmio32_next, pb->mmio32_end, b->size, &addr);
		if (ret) {
			log_err("pci %s: no room for BAR%u (0x%llx bytes)", d->name, i,
				(unsigned long long)b->size);
			return ret;
		}
		b->addr = addr;
		b->mapped = PCI_BAR_UNMAPPED; /* until the guest enables memory space */
		bar_sync_cfg(d, i);
	}
	return 0;
}

int pci_device_add(struct pci_bus *pb, struct pci_device *d)
{
	gpa_t next32 = pb->mmio32_next, next64 = pb->mmio64_next;
	unsigned slot;
	int ret;

	if (d->bus)
		return -EINVAL;
	for (slot = 1; slot < PCI_MAX_SLOTS && pb->slots[slot]; slot++)
		;
	if (slot == PCI_MAX_SLOTS) {
		log_err("pci %s: all %u slots are taken", d->name, PCI_MAX_SLOTS - 1);
		return -ENOSPC;
	}
	if ((ret = assign_bars(pb, d)))
		goto fail;
	d->slot = (uint8_t)slot;
	d->bus = pb;
	if ((ret = pci_msix_wire(pb, d))) {
		d->bus = NULL;
		goto fail;
	}
	pthread_mutex_lock(&pb->lock);
	pb->slots[slot] = d;
	pthread_mutex_unlock(&pb->lock);
	log_debug("pci 00:%02x.0 %s", slot, d->name);
	return 0;

fail:
	pb->mmio32_next = next32;
	pb->mmio64_next = next64;
	return ret;
}

void pci_bus_windows(const struct pci_bus *pb, gpa_t *mmio32_base, gpa_t *mmio32_end,
		     gpa_t *mmio64_base, gpa_t *mmio64_end)
{
	*mmio32_base = pb->mmio32_base;
	*mmio32_end = pb->mmio32_end;
	*mmio64_base = pb->mmio64_base;
	*mmio64_end = pb->mmio64_end;
}
