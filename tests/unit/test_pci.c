/* test_pci.c: PCI config space driven through ports 0xCF8/0xCFC as Linux does, BARs, DSDT. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "arch/x86/acpi.h"
#include "arch/x86/acpi_pci.h"
#include "arch/x86/aml.h"
#include "arch/x86/layout.h"
#include "devices/pci.h"
#include "vmm/bus.h"
#include "vmm/irq.h"
#include "vmm/memory.h"

#include "pci_conf1.h"
#include "tools.h" /* after cmocka.h: it asserts */

#define RAM_SIZE (6 * GiB) /* 3 GiB below the hole, 3 GiB above 4 GiB */

struct bar_log {
	unsigned calls;
	uint64_t offset;
	uint32_t len;
	bool is_write;
};

struct moved {
	unsigned n;
	unsigned bar;
	gpa_t old_addr, new_addr;
};

struct fix {
	struct bus pio, mmio;
	struct irq_router irq;
	struct guest_mem mem;
	struct pci_bus pb;
	struct pci_device dev;
	struct bar_log log[PCI_NR_BARS];
	struct moved moved;
};

/* ---- port I/O the way arch/x86/pci/direct.c does it ---------------------------------------- */

static void out(struct fix *f, uint16_t port, uint32_t v, uint32_t len)
{
	pio_out(&f->pio, port, v, len);
}

static uint32_t in(struct fix *f, uint16_t port, uint32_t len) { return pio_in(&f->pio, port, len); }

static uint32_t cfg_rd(struct fix *f, unsigned dev, unsigned reg, unsigned len)
{
	return conf1_read(&f->pio, dev, reg, len);
}

static void cfg_wr(struct fix *f, unsigned dev, unsigned reg, uint32_t v, unsigned len)
{
	conf1_write(&f->pio, dev, reg, v, len);
}

static bool mmio(struct fix *f, uint64_t addr, uint32_t len, bool is_write)
{
	uint8_t d[8] = {0};
	return bus_access(&f->mmio, addr, d, len, is_write);
}

/* ---- a fake device ---------------------------------------------------------------------- */

static void bar_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct bar_log *l = opaque;
	l->calls++;
	l->offset = offset;
	l->len = len;
	l->is_write = is_write;
	if (!is_write)
		memset(data, 0x5a, len);
}

static void bar_moved(struct pci_device *d, unsigned bar, gpa_t old_addr, gpa_t new_addr)
{
	struct fix *f = d->owner;
	f->moved.n++;
	f->moved.bar = bar;
	f->moved.old_addr = old_addr;
	f->moved.new_addr = new_addr;
}

/* BAR0 32-bit 16 KiB, BAR2-3 64-bit 1 MiB, BAR4 32-bit 4 KiB, BAR5 unused; a vendor cap. */
static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	bus_init(&f->pio, "pio");
	bus_init(&f->mmio, "mmio");
	assert_int_equal(irq_router_init(&f->irq, -1), 0);
	assert_int_equal(guest_mem_layout(&f->mem, RAM_SIZE), 0);
	assert_int_equal(pci_bus_init(&f->pb, &f->pio, &f->mmio, &f->irq, -1, &f->mem), 0);

	struct pci_device *d = &f->dev;
	pci_device_init(d, "fake", 0x1af4, 0x1042, 0x018000, 0x1af4, 0x0002);
	d->owner = f;
	d->bar_moved = bar_moved;
	assert_int_equal(pci_device_set_bar(d, 0, 16 * KiB, false, bar_io, &f->log[0]), 0);
	assert_int_equal(pci_device_set_bar(d, 2, 1 * MiB, true, bar_io, &f->log[2]), 0);
	assert_int_equal(pci_device_set_bar(d, 4, 4 * KiB, false, bar_io, &f->log[4]), 0);
	uint8_t vcap[8] = {PCI_CAP_ID_VNDR, 0, 8, 1, 2, 3, 4, 5};
	assert_int_equal(pci_device_add_cap(d, vcap, sizeof(vcap)), PCI_CFG_FIRST_CAP);
	assert_int_equal(pci_device_add(&f->pb, d), 0);
	assert_int_equal(d->slot, 1);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;
	pci_bus_destroy(&f->pb);
	irq_router_destroy(&f->irq);
	bus_destroy(&f->pio);
	bus_destroy(&f->mmio);
	free(f);
	return 0;
}

/* ---- tests -------------------------------------------------------------------------------- */

/* pci_check_type1() and pci_check_type2() from arch/x86/pci/direct.c. */
static void test_mechanism_probe(void **state)
{
	struct fix *f = *state;

	out(f, 0xcfb, 0x01, 1);
	uint32_t tmp = in(f, 0xcf8, 4);
	out(f, 0xcf8, 0x80000000, 4);
	assert_int_equal(in(f, 0xcf8, 4), 0x80000000);
	out(f, 0xcf8, tmp, 4);
	assert_int_equal(in(f, 0xcf8, 4), tmp);

	/* Mechanism #2 must not appear to work. */
	out(f, 0xcfb, 0x00, 1);
	out(f, 0xcf8, 0x00, 1);
	out(f, 0xcfa, 0x00, 1);
	assert_false(in(f, 0xcf8, 1) == 0x00 && in(f, 0xcfa, 1) == 0x00);

	/* Reserved and low bits of the latch read 0; narrow accesses do not touch it. */
	out(f, 0xcf8, 0xffffffff, 4);
	assert_int_equal(in(f, 0xcf8, 4), 0x80fffffc);
	out(f, 0xcf8, 0x12, 1);
	out(f, 0xcf9, 0x0606, 2);
	assert_int_equal(in(f, 0xcf8, 4), 0x80fffffc);
	assert_int_equal(in(f, 0xcf8, 2), 0xffff);
}

/* pci_scan_slot(): every device and function of bus 0, and a few other buses. */
static void test_scan(void **state)
{
	struct fix *f = *state;
	unsigned found = 0;

	for (unsigned bus = 0; bus < 4; bus++) {
		for (unsigned dev = 0; dev < 32; dev++) {
			for (unsigned fn = 0; fn < 8; fn++) {
				out(f, 0xcf8, conf1(bus, dev, fn, 0), 4);
				uint32_t id = in(f, 0xcfc, 4);
				if (bus == 0 && fn == 0 && dev <= 1) {
					assert_int_not_equal(id, 0xffffffff);
					found++;
				} else {
					assert_int_equal(id, 0xffffffff);
					assert_int_equal(in(f, 0xcfe, 2), 0xffff);
				}
			}
		}
	}
	assert_int_equal(found, 2);
	/* Enable bit clear: no config cycle. */
	out(f, 0xcf8, conf1(0, 0, 0, 0) & ~0x80000000u, 4);
	assert_int_equal(in(f, 0xcfc, 4), 0xffffffff);
	/* Single-function devices: header type bit 7 clear. */
	assert_int_equal(cfg_rd(f, 0, 0x0e, 1), 0x00);
	assert_int_equal(cfg_rd(f, 1, 0x0e, 1), 0x00);
}

static void test_host_bridge(void **state)
{
	struct fix *f = *state;

	assert_int_equal(cfg_rd(f, 0, 0x00, 2), PCI_HOST_BRIDGE_VENDOR);
	assert_int_equal(cfg_rd(f, 0, 0x02, 2), PCI_HOST_BRIDGE_DEVICE);
	assert_int_equal(cfg_rd(f, 0, 0x08, 4) >> 8, 0x060000);
	assert_int_equal(cfg_rd(f, 0, 0x0a, 2), 0x0600); /* pci_sanity_check() */
	assert_int_equal(cfg_rd(f, 0, 0x06, 2) & PCI_STATUS_CAP_LIST, 0);
	assert_int_equal(cfg_rd(f, 0, 0x34, 1), 0);
	for (unsigned reg = 0x10; reg < 0x28; reg += 4) {
		cfg_wr(f, 0, reg, 0xffffffff, 4);
		assert_int_equal(cfg_rd(f, 0, reg, 4), 0);
	}
	cfg_wr(f, 0, 0x00, 0x12345678, 4);
	assert_int_equal(cfg_rd(f, 0, 0x00, 2), PCI_HOST_BRIDGE_VENDOR);
}

static void test_windows(void **state)
{
	struct fix *f = *state;
	gpa_t b32, e32, b64, e64;

	pci_bus_windows(&f->pb, &b32, &e32, &b64, &e64);
	assert_int_equal(b32, 0xc0000000);
	assert_int_equal(e32, 0xfec00000);
	/* RAM ends at 4 GiB + 3 GiB: the 64-bit window starts at the next GiB. */
	assert_int_equal(b64, 7 * GiB);
	assert_true(e64 > b64 && e64 - b64 <= 64 * GiB);
	assert_int_equal(b64 % GiB, 0);
}

/* __pci_read_base(): decode off, save, all-ones, read, restore. */
static uint32_t size_bar(struct fix *f, unsigned reg)
{
	uint32_t l = cfg_rd(f, 1, reg, 4);
	cfg_wr(f, 1, reg, 0xffffffff, 4);
	uint32_t sz = cfg_rd(f, 1, reg, 4);
	cfg_wr(f, 1, reg, l, 4);
	assert_int_equal(cfg_rd(f, 1, reg, 4), l);
	return sz;
}

static void test_bar_sizing(void **state)
{
	struct fix *f = *state;
	const struct pci_device *d = &f->dev;
	gpa_t b32, e32, b64, e64;

	pci_bus_windows(&f->pb, &b32, &e32, &b64, &e64);
	uint16_t cmd = (uint16_t)cfg_rd(f, 1, 0x04, 2);
	assert_int_equal(cmd & PCI_COMMAND_MEMORY, 0);

	assert_int_equal(size_bar(f, 0x10), 0xffffc000); /* 16 KiB, 32-bit, memory */
	assert_int_equal(size_bar(f, 0x18), 0xfff00004); /* 1 MiB, 64-bit */
	assert_int_equal(size_bar(f, 0x1c), 0xffffffff); /* upper half */
	assert_int_equal(size_bar(f, 0x20), 0xfffff000);
	assert_int_equal(size_bar(f, 0x14), 0); /* unused */
	assert_int_equal(size_bar(f, 0x24), 0);
	assert_int_equal(size_bar(f, 0x30), 0); /* expansion ROM */

	/* Addresses as assigned: naturally aligned, inside the windows. */
	uint64_t a0 = cfg_rd(f, 1, 0x10, 4) & ~0xfu;
	uint64_t a2 = (cfg_rd(f, 1, 0x18, 4) & ~0xfu) | (uint64_t)cfg_rd(f, 1, 0x1c, 4) << 32;
	uint64_t a4 = cfg_rd(f, 1, 0x20, 4) & ~0xfu;
	assert_int_equal(a0, d->bars[0].addr);
	assert_int_equal(a2, d->bars[2].addr);
	assert_true(a0 >= b32 && a0 + 16 * KiB <= e32 && a0 % (16 * KiB) == 0);
	assert_true(a4 >= b32 && a4 + 4 * KiB <= e32 && a4 % (4 * KiB) == 0);
	assert_true(a2 >= b64 && a2 + MiB <= e64 && a2 % MiB == 0);
	assert_false(a0 < a4 + 4 * KiB && a4 < a0 + 16 * KiB);
	assert_int_equal(f->moved.n, 0); /* sizing with decode off moves nothing */
}

static void test_bar_sizing_large_64(void **state)
{
	struct fix *f = *state;
	struct pci_device d;

	pci_device_init(&d, "big", 0x1af4, 0x1041, 0x020000, 0x1af4, 1);
	assert_int_equal(pci_device_set_bar(&d, 0, 8 * GiB, true, bar_io, &f->log[0]), 0);
	assert_int_equal(pci_device_add(&f->pb, &d), 0);
	unsigned s = d.slot;
	out(f, 0xcf8, conf1(0, s, 0, 0x10), 4);
	out(f, 0xcfc, 0xffffffff, 4);
	assert_int_equal(in(f, 0xcfc, 4), 0x00000004);
	out(f, 0xcf8, conf1(0, s, 0, 0x14), 4);
	out(f, 0xcfc, 0xffffffff, 4);
	assert_int_equal(in(f, 0xcfc, 4), 0xfffffffe); /* ~(8 GiB - 1) >> 32 */
	assert_true(d.bars[0].addr % (8 * GiB) == 0);
	pci_bus_destroy(&f->pb); /* d lives on this stack frame */
}

static void test_64bit_falls_back_to_32bit_window(void **state)
{
	struct fix *f = *state;
	struct pci_device d;

	f->pb.mmio64_end = f->pb.mmio64_base; /* no room above RAM */
	pci_device_init(&d, "low", 0x1af4, 0x1041, 0x020000, 0x1af4, 1);
	assert_int_equal(pci_device_set_bar(&d, 0, 64 * KiB, true, bar_io, &f->log[0]), 0);
	assert_int_equal(pci_device_add(&f->pb, &d), 0);
	assert_true(d.bars[0].addr >= 0xc0000000 && d.bars[0].addr < 0xfec00000);
	assert_int_equal(cfg_rd(f, d.slot, 0x14, 4), 0);
	pci_bus_destroy(&f->pb);
}

static void test_decode_gating(void **state)
{
	struct fix *f = *state;
	const struct pci_device *d = &f->dev;
	gpa_t a0 = d->bars[0].addr, a2 = d->bars[2].addr;

	assert_false(mmio(f, a0, 4, false));
	assert_false(mmio(f, a2 + 8, 8, true));

	cfg_wr(f, 1, 0x04, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER, 2);
	assert_int_equal(cfg_rd(f, 1, 0x04, 2), PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	assert_int_equal(f->moved.n, 3); /* BAR0, BAR2, BAR4 start decoding */
	assert_true(mmio(f, a0 + 0x3ffc, 4, false));
	assert_int_equal(f->log[0].offset, 0x3ffc);
	assert_true(mmio(f, a2 + 8, 8, true));
	assert_int_equal(f->log[2].offset, 8);
	assert_true(f->log[2].is_write);
	assert_false(mmio(f, a0 + 0x4000, 4, false) && f->log[0].offset == 0x4000);

	f->moved.n = 0;
	cfg_wr(f, 1, 0x04, 0, 2);
	assert_int_equal(f->moved.n, 3);
	assert_int_equal(f->moved.new_addr, PCI_BAR_UNMAPPED);
	assert_false(mmio(f, a0, 4, false));
	assert_false(mmio(f, a2, 4, false));
	/* Bit 1 via a byte write too. */
	cfg_wr(f, 1, 0x04, PCI_COMMAND_MEMORY, 1);
	assert_true(mmio(f, a0, 4, false));
}

static void test_relocation(void **state)
{
	struct fix *f = *state;
	struct pci_device *d = &f->dev;
	gpa_t a0 = d->bars[0].addr, a4 = d->bars[4].addr;

	cfg_wr(f, 1, 0x04, PCI_COMMAND_MEMORY, 2);
	f->moved.n = 0;

	/* Move BAR0 while decoding; low bits are dropped. */
	cfg_wr(f, 1, 0x10, 0xd0000fff, 4);
	assert_int_equal(cfg_rd(f, 1, 0x10, 4), 0xd0000000);
	assert_int_equal(f->moved.n, 1);
	assert_int_equal(f->moved.bar, 0);
	assert_int_equal(f->moved.old_addr, a0);
	assert_int_equal(f->moved.new_addr, 0xd0000000);
	assert_false(mmio(f, a0, 4, false));
	assert_true(mmio(f, 0xd0000010, 4, true));
	assert_int_equal(f->log[0].offset, 0x10);

	/* A byte write to the second byte of the BAR merges with the rest. */
	cfg_wr(f, 1, 0x11, 0x40, 1);
	assert_int_equal(cfg_rd(f, 1, 0x10, 4), 0xd0004000);
	assert_true(mmio(f, 0xd0004000, 4, false));

	/* Onto BAR4: refused by the bus, so BAR0 decodes nowhere, until it moves away. */
	cfg_wr(f, 1, 0x10, (uint32_t)a4, 4);
	assert_int_equal(d->bars[0].mapped, PCI_BAR_UNMAPPED);
	assert_int_equal(f->moved.new_addr, PCI_BAR_UNMAPPED);
	assert_true(mmio(f, a4, 4, false));
	assert_int_equal(f->log[4].calls, 1);
	cfg_wr(f, 1, 0x10, 0xe0000000, 4);
	assert_int_equal(d->bars[0].mapped, 0xe0000000);
	assert_true(mmio(f, 0xe0000000, 4, false));

	/* 64-bit BAR: low dword, then high dword, as Linux writes it. */
	cfg_wr(f, 1, 0x18, 0x00300000, 4);
	cfg_wr(f, 1, 0x1c, 0x00000020, 4);
	assert_int_equal(d->bars[2].addr, 0x2000300000ULL);
	assert_int_equal(d->bars[2].mapped, 0x2000300000ULL);
	assert_int_equal(f->moved.bar, 2);
	assert_true(mmio(f, 0x20003ffff8ULL, 8, false));
	assert_int_equal(f->log[2].offset, 0xffff8);
}

static void test_caplist(void **state)
{
	struct fix *f = *state;
	struct pci_device *d = &f->dev;

	assert_true(cfg_rd(f, 1, 0x06, 2) & PCI_STATUS_CAP_LIST);
	unsigned pos = cfg_rd(f, 1, 0x34, 1), n = 0;
	while (pos && n < 48) {
		assert_true(pos >= 0x40 && pos % 4 == 0);
		assert_int_equal(cfg_rd(f, 1, pos, 1), PCI_CAP_ID_VNDR);
		assert_int_equal(cfg_rd(f, 1, pos + 2, 1), 8);
		pos = cfg_rd(f, 1, pos + 1, 1);
		n++;
	}
	assert_int_equal(n, 1);

	/* Fill config space: the list stays well-formed and ends in -ENOSPC. */
	struct pci_device c;
	uint8_t cap[20] = {PCI_CAP_ID_VNDR, 0xee, 20};
	int off, last = 0, count = 0;
	pci_device_init(&c, "caps", 1, 2, 0xff0000, 0, 0);
	assert_int_equal(pci_device_add_cap(&c, cap, 1), -EINVAL);
	while ((off = pci_device_add_cap(&c, cap, sizeof(cap))) > 0) {
		assert_true(off > last && off + 20 <= 256);
		last = off;
		count++;
	}
	assert_int_equal(off, -ENOSPC);
	assert_int_equal(count, (256 - 0x40) / 20);
	pos = c.cfg[0x34];
	n = 0;
	while (pos) {
		assert_int_equal(c.cfg[pos], PCI_CAP_ID_VNDR);
		pos = c.cfg[pos + 1];
		n++;
	}
	assert_int_equal(n, (unsigned)count);
	(void)d;
}

static void test_readonly_fields(void **state)
{
	struct fix *f = *state;
	uint8_t before[256];

	for (unsigned r = 0; r < 256; r += 4) {
		uint32_t v = cfg_rd(f, 1, r, 4);
		memcpy(before + r, &v, 4);
	}
	static const unsigned ro[] = {0x00, 0x02, 0x06, 0x08, 0x0a, 0x0e, 0x2c,
				      0x2e, 0x34, 0x3d, 0x40, 0x42, 0x44};
	for (size_t i = 0; i < ARRAY_SIZE(ro); i++) {
		cfg_wr(f, 1, ro[i], 0xa5a5, 2);
		cfg_wr(f, 1, ro[i], 0xffff, 2);
		assert_int_equal(cfg_rd(f, 1, ro[i], 2), before[ro[i]] | before[ro[i] + 1] << 8);
	}
	cfg_wr(f, 1, 0x30, 0xffffffff, 4); /* expansion ROM: none */
	assert_int_equal(cfg_rd(f, 1, 0x30, 4), 0);
	cfg_wr(f, 1, 0x3c, 0x0b, 1); /* Interrupt Line is a scratch register */
	assert_int_equal(cfg_rd(f, 1, 0x3c, 1), 0x0b);
	assert_int_equal(cfg_rd(f, 1, 0x3d, 1), 0); /* no INTx pin */
	cfg_wr(f, 1, 0x04, 0xffff, 2);
	assert_int_equal(cfg_rd(f, 1, 0x04, 2), 0x0546);
	cfg_wr(f, 1, 0x0c, 0x10, 1);
	assert_int_equal(cfg_rd(f, 1, 0x0c, 1), 0x10);
	cfg_wr(f, 1, 0x0d, 0x40, 1); /* latency timer hardwired 0 */
	assert_int_equal(cfg_rd(f, 1, 0x0d, 1), 0);
}

static void test_odd_sizes(void **state)
{
	struct fix *f = *state;

	for (unsigned r = 0; r < 256; r += 4) {
		uint32_t dw = cfg_rd(f, 1, r, 4);
		for (unsigned b = 0; b < 4; b++)
			assert_int_equal(cfg_rd(f, 1, r + b, 1), (dw >> (8 * b)) & 0xff);
		assert_int_equal(cfg_rd(f, 1, r, 2), dw & 0xffff);
		assert_int_equal(cfg_rd(f, 1, r + 2, 2), dw >> 16);
		/* Unaligned word at 0xCFD spans bytes 1-2 of the dword. */
		out(f, 0xcf8, conf1(0, 1, 0, r), 4);
		assert_int_equal(in(f, 0xcfd, 2), (dw >> 8) & 0xffff);
	}
	/* A word at 0xCFF or a dword at 0xCFE would leave the data window: no cycle. */
	out(f, 0xcf8, conf1(0, 1, 0, 0), 4);
	assert_int_equal(in(f, 0xcff, 2), 0xffff);
	assert_int_equal(in(f, 0xcfe, 4), 0xffffffff);
	out(f, 0xcfe, 0, 4);
	assert_int_equal(cfg_rd(f, 1, 0, 4), 0x10421af4);
	/* 3-byte and 8-byte accesses from a confused caller. */
	uint8_t d8[8];
	out(f, 0xcf8, conf1(0, 1, 0, 0), 4);
	bus_access(&f->pio, 0xcfc, d8, 8, false);
	bus_access(&f->pio, 0xcfc, d8, 3, true);
	bus_access(&f->pio, 0xcf8, d8, 8, true);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint32_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)rng_state;
}

/* Check what must hold whatever the guest wrote. */
static void check_invariants(struct fix *f)
{
	const struct pci_device *d = &f->dev;
	assert_int_equal(cfg_rd(f, 0, 0, 4), PCI_HOST_BRIDGE_VENDOR | PCI_HOST_BRIDGE_DEVICE << 16);
	assert_int_equal(cfg_rd(f, 1, 0, 4), 0x10421af4);
	assert_int_equal(cfg_rd(f, 1, 0x34, 1), 0x40);
	bool decode = cfg_rd(f, 1, 0x04, 2) & PCI_COMMAND_MEMORY;
	for (unsigned i = 0; i < PCI_NR_BARS; i++) {
		const struct pci_bar *b = &d->bars[i];
		if (!b->size)
			continue;
		assert_int_equal(b->addr % b->size, 0);
		assert_true(b->mapped == PCI_BAR_UNMAPPED || (decode && b->mapped == b->addr));
		if (!decode)
			assert_int_equal(b->mapped, PCI_BAR_UNMAPPED);
	}
}

static void test_garbage(void **state)
{
	struct fix *f = *state;
	static const uint32_t vals[] = {0, 0xffffffff, 0x80000000, 0x7fffffff, 0x55aa55aa, 0x2};
	static const unsigned lens[] = {1, 2, 4};

	for (unsigned dev = 0; dev < 3; dev++)
		for (unsigned r = 0; r < 256; r++)
			for (size_t l = 0; l < ARRAY_SIZE(lens); l++)
				for (size_t v = 0; v < ARRAY_SIZE(vals); v++) {
					unsigned len = lens[l];
					if ((r & 3) + len > 4)
						continue;
					cfg_wr(f, dev, r, vals[v], len);
					(void)cfg_rd(f, dev, r, len);
				}
	check_invariants(f);
	/* Random latch values, ports, sizes; every few thousand, the invariants. */
	for (unsigned i = 0; i < 200000; i++) {
		uint32_t x = rnd();
		uint16_t port = (uint16_t)(0xcf8 + (x & 7));
		uint32_t len = 1u << ((x >> 3) % 3);
		if ((x >> 5) % 4 == 0)
			out(f, 0xcf8, (rnd() & 0x80000fff) | ((x >> 8) & 1) << 11, 4);
		else if ((x >> 5) % 4 == 1)
			(void)in(f, port, len);
		else
			out(f, port, rnd(), len);
		if (i % 5000 == 0)
			check_invariants(f);
	}
	check_invariants(f);
}

static void test_add_errors(void **state)
{
	struct fix *f = *state;
	struct pci_device d;

	pci_device_init(&d, "bad", 1, 2, 0xff0000, 0, 0);
	assert_int_equal(pci_device_set_bar(&d, 6, 4096, false, bar_io, NULL), -EINVAL);
	assert_int_equal(pci_device_set_bar(&d, 5, 4096, true, bar_io, NULL), -EINVAL);
	assert_int_equal(pci_device_set_bar(&d, 0, 2048, false, bar_io, NULL), -EINVAL);
	assert_int_equal(pci_device_set_bar(&d, 0, 12288, false, bar_io, NULL), -EINVAL);
	assert_int_equal(pci_device_set_bar(&d, 0, 4096, false, NULL, NULL), -EINVAL);
	assert_int_equal(pci_device_set_bar(&d, 0, 4 * GiB, false, bar_io, NULL), -EINVAL);
	assert_int_equal(pci_device_set_bar(&d, 0, 4096, true, bar_io, NULL), 0);
	assert_int_equal(pci_device_set_bar(&d, 1, 4096, false, bar_io, NULL), -EINVAL);
	assert_int_equal(pci_device_set_bar(&d, 0, 4096, false, bar_io, NULL), -EINVAL);
	assert_int_equal(pci_device_add_msix(&d, 4, 3, 0, 0x800), -EINVAL); /* BAR not declared */
	assert_int_equal(pci_device_add_msix(&d, 0, 0, 0, 0x800), -EINVAL);
	assert_int_equal(pci_device_add_msix(&d, 65, 0, 0, 0x800), -EINVAL);
	assert_int_equal(pci_device_add_msix(&d, 4, 0, 4, 0x800), -EINVAL);  /* unaligned */
	assert_int_equal(pci_device_add_msix(&d, 4, 0, 0, 0x1000), -EINVAL); /* PBA outside */
	assert_int_equal(pci_device_add_msix(&d, 4, 0, 0xff8, 0), -EINVAL);  /* table outside */
	assert_int_equal(pci_device_add_msix(&d, 4, 0, 0, 0x38), -EINVAL);   /* overlap */

	/* A BAR too big for what is left of the 32-bit window: nothing is consumed. */
	gpa_t next = f->pb.mmio32_next;
	struct pci_device big;
	pci_device_init(&big, "big", 1, 2, 0xff0000, 0, 0);
	assert_int_equal(pci_device_set_bar(&big, 0, 2 * GiB, false, bar_io, NULL), 0);
	assert_int_equal(pci_device_add(&f->pb, &big), -ENOSPC);
	assert_int_equal(f->pb.mmio32_next, next);
	assert_null(big.bus);

	/* Fill every slot. */
	static struct pci_device many[PCI_MAX_SLOTS];
	unsigned added = 0;
	for (unsigned i = 0; i < PCI_MAX_SLOTS; i++) {
		pci_device_init(&many[i], "many", 1, 2, 0xff0000, 0, 0);
		assert_int_equal(pci_device_set_bar(&many[i], 0, 4096, false, bar_io, NULL), 0);
		int ret = pci_device_add(&f->pb, &many[i]);
		if (ret) {
			assert_int_equal(ret, -ENOSPC);
			break;
		}
		added++;
	}
	assert_int_equal(added, PCI_MAX_SLOTS - 2); /* slot 0 host bridge, slot 1 the fixture */
	assert_int_equal(pci_device_add(&f->pb, &f->dev), -EINVAL); /* already on the bus */
	pci_bus_destroy(&f->pb);
}

/* ---- the DSDT with the root bridge, through iasl --------------------------------------------- */

static const uint8_t *find_table(const uint8_t *buf, size_t len, const char *sig, uint32_t *tlen)
{
	for (size_t off = 0; off + 36 <= len; off += 4) {
		if (memcmp(buf + off, sig, 4) == 0) {
			memcpy(tlen, buf + off + 4, 4);
			if (*tlen >= 36 && *tlen <= len - off)
				return buf + off;
		}
	}
	return NULL;
}

static void test_dsdt_iasl(void **state)
{
	struct fix *f = *state;
	size_t len = LAYOUT_ACPI_END - LAYOUT_ACPI_START;
	uint8_t *buf = calloc(1, len);
	gpa_t rsdp;
	struct acpi_config cfg = {
	    .nr_cpus = 2, .dsdt_sb_hook = acpi_pci_dsdt_hook, .dsdt_sb_opaque = &f->pb};

	assert_non_null(buf);
	long used = acpi_build_buf(buf, len, LAYOUT_ACPI_START, &cfg, &rsdp);
	assert_true(used > 0);
	uint32_t dlen;
	const uint8_t *dsdt = find_table(buf, (size_t)used, "DSDT", &dlen);
	assert_non_null(dsdt);

	/* A NULL bus is refused rather than emitting a half-built device. */
	cfg.dsdt_sb_opaque = NULL;
	assert_true(acpi_build_buf(buf + 0, len, LAYOUT_ACPI_START, &cfg, &rsdp) < 0);
	cfg.dsdt_sb_opaque = &f->pb;
	used = acpi_build_buf(buf, len, LAYOUT_ACPI_START, &cfg, &rsdp);
	dsdt = find_table(buf, (size_t)used, "DSDT", &dlen);
	assert_non_null(dsdt);

	char *iasl = find_in_path("iasl");
	if (!iasl) {
		free(buf);
		print_message("iasl not on PATH (package acpica-tools): skipping\n");
		skip();
	}
	char dir[] = "/tmp/kiln-pci-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char *path;
	assert_true(asprintf(&path, "%s/dsdt.dat", dir) > 0);
	FILE *fp = fopen(path, "wb");
	assert_non_null(fp);
	assert_int_equal(fwrite(dsdt, 1, dlen, fp), dlen);
	assert_int_equal(fclose(fp), 0);
	free(path);

	assert_int_equal(run_tool(dir, (char *const[]){iasl, "-d", "dsdt.dat", NULL}), 0);
	char *text = slurp(dir, "dsdt.dsl", NULL);
	assert_non_null(text);
	static const char *const want[] = {
	    "Device (PCI0)",
	    "EisaId (\"PNP0A08\")",
	    "EisaId (\"PNP0A03\")",
	    "_SEG, Zero",
	    "_BBN, Zero",
	    "_UID, Zero",
	    "_ADR, Zero",
	    "WordBusNumber (ResourceProducer",
	    "IO (Decode16,\n                    0x0CF8,             // Range Minimum",
	    "0x0CF7,             // Range Maximum",
	    "0x0D00,             // Range Minimum",
	    "0xC0000000,         // Range Minimum",
	    "0xFEBFFFFF,         // Range Maximum",
	    "QWordMemory (ResourceProducer",
	    "0x00000001C0000000, // Range Minimum",
	};
	for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
		if (!strstr(text, want[i])) {
			print_error("%s\n", text);
			fail_msg("iasl listing lacks '%s' (files in %s)", want[i], dir);
		}
	}
	if (strstr(text, "Incorrect") || strstr(text, "Invalid") || strstr(text, "****") ||
	    strstr(text, "Unknown"))
		fail_msg("iasl flagged the DSDT (files in %s)", dir);
	free(text);
	/* Recompile the listing: it must be valid ASL. */
	assert_int_equal(run_tool(dir, (char *const[]){iasl, "-oa", "-ve", "dsdt.dsl", NULL}), 0);

	/* ACPICA (Linux's interpreter) evaluates _CRS, when acpiexec is around. */
	char *acpiexec = find_in_path("acpiexec");
	if (acpiexec) {
		assert_int_equal(
		    run_tool(dir, (char *const[]){acpiexec, "-b", "evaluate \\_SB.PCI0._CRS",
						  "dsdt.dat", NULL}),
		    0);
		char *log = slurp(dir, TOOL_LOG, NULL);
		assert_non_null(log);
		if (strstr(log, "Error") || strstr(log, "Exception") || !strstr(log, "Buffer"))
			fail_msg("acpiexec could not evaluate _CRS:\n%s", log);
		free(log);
		free(acpiexec);
	}
	static const char *const files[] = {"dsdt.dat", "dsdt.dsl", "dsdt.aml", TOOL_LOG};
	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		assert_true(asprintf(&path, "%s/%s", dir, files[i]) > 0);
		unlink(path);
		free(path);
	}
	assert_int_equal(rmdir(dir), 0);
	free(iasl);
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_mechanism_probe, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_scan, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_host_bridge, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_windows, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bar_sizing, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bar_sizing_large_64, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_64bit_falls_back_to_32bit_window, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_decode_gating, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_relocation, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_caplist, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_readonly_fields, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_odd_sizes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_garbage, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_add_errors, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_dsdt_iasl, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
