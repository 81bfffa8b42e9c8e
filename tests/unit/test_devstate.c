/* test_devstate.c: device snapshot state: round trips, a virtqueue restored mid-stream, and
 * loads of truncated and hostile sections that must fail whole, leaving the device untouched. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "devices/acpi_pm.h"
#include "devices/i8042.h"
#include "devices/pci.h"
#include "devices/rtc.h"
#include "devices/serial.h"
#include "fake_vnet.h"
#include "virtio/block.h"
#include "pci_conf1.h"
#include "snapshot/state.h"
#include "util/log.h"
#include "vmm/bus.h"
#include "vmm/irq.h"

#define FEATURES (BIT_ULL(VIRTIO_F_VERSION_1) | BIT_ULL(VIRTIO_RING_F_EVENT_IDX))

/* ---- generic checks --------------------------------------------------------------------- */

typedef int (*save_fn)(void *dev, struct snap_buf *b);
typedef int (*load_fn)(void *dev, struct snap_cursor *c);

static void save_into(void *dev, save_fn save, struct snap_buf *b)
{
	snap_buf_init(b);
	assert_int_equal(save(dev, b), 0);
}

/* Loading bytes[0..len) into dev fails with an error containing `why` (NULL: any), and dev
 * saves afterwards exactly as before. */
static void expect_fail(void *dev, save_fn save, load_fn load, const uint8_t *bytes, size_t len,
			const char *why)
{
	struct snap_buf before, after;
	struct snap_cursor c;
	char err[256];

	save_into(dev, save, &before);
	snap_cursor_init(&c, "dev", bytes, len);
	assert_int_equal(load(dev, &c), -EINVAL);
	assert_int_equal(snap_cursor_end(&c, err, sizeof(err)), -EINVAL);
	if (why && !strstr(err, why))
		fail_msg("error '%s' does not mention '%s'", err, why);
	save_into(dev, save, &after);
	assert_int_equal(before.len, after.len);
	assert_memory_equal(before.data, after.data, before.len);
	snap_buf_free(&before);
	snap_buf_free(&after);
}

/* Every prefix of a valid section fails, and so does one extra byte. */
static void expect_truncations_fail(void *dev, save_fn save, load_fn load, const uint8_t *full,
				    size_t len)
{
	uint8_t *more = malloc(len + 1);

	assert_non_null(more);
	for (size_t n = 0; n < len; n++)
		expect_fail(dev, save, load, full, n, NULL);
	memcpy(more, full, len);
	more[len] = 0;
	expect_fail(dev, save, load, more, len + 1, "left over");
	free(more);
}

static void load_ok(void *dev, load_fn load, const struct snap_buf *b)
{
	struct snap_cursor c;
	char err[256];

	snap_cursor_init(&c, "dev", b->data, b->len);
	int ret = load(dev, &c);
	if (snap_cursor_end(&c, err, sizeof(err)) || ret)
		fail_msg("load: %d: %s", ret, err);
}

/* A copy of b with byte `off` set to v. */
static uint8_t *patched(const struct snap_buf *b, size_t off, uint8_t v)
{
	uint8_t *p = malloc(b->len);

	assert_non_null(p);
	memcpy(p, b->data, b->len);
	assert_true(off < b->len);
	p[off] = v;
	return p;
}

static void expect_patch_fails(void *dev, save_fn save, load_fn load, const struct snap_buf *b,
			       size_t off, uint8_t v, const char *why)
{
	uint8_t *p = patched(b, off, v);

	expect_fail(dev, save, load, p, b->len, why);
	free(p);
}

/* ---- serial ----------------------------------------------------------------------------- */

static int ser_save(void *d, struct snap_buf *b) { return serial_state_save(d, b); }
static int ser_load(void *d, struct snap_cursor *c) { return serial_state_load(d, c); }

static unsigned irq_edges;
static void count_irq(void *opaque, unsigned gsi, int level)
{
	(void)opaque;
	(void)gsi;
	if (level)
		irq_edges++;
}

static void ser_wr(struct serial *s, unsigned off, uint8_t v) { serial_io(s, off, &v, 1, true); }
static uint8_t ser_rd(struct serial *s, unsigned off)
{
	uint8_t v = 0;
	serial_io(s, off, &v, 1, false);
	return v;
}

static void test_serial(void **state)
{
	struct irq_line line = {.set = count_irq};
	struct serial a, b;
	struct snap_buf sb;
	(void)state;

	serial_init(&a, NULL, line);
	serial_init(&b, NULL, line);
	ser_wr(&a, 3, 0x80); /* DLAB: divisor 0x0102 */
	ser_wr(&a, 0, 0x02);
	ser_wr(&a, 1, 0x01);
	ser_wr(&a, 3, 0x1b); /* 8E1 */
	ser_wr(&a, 2, 0xc1); /* FIFO on, trigger 14 */
	ser_wr(&a, 4, 0x0b); /* DTR RTS OUT2 */
	ser_wr(&a, 7, 0x5a);
	ser_wr(&a, 1, 0x03); /* RDI, THRI */
	assert_int_equal(serial_receive(&a, (const uint8_t *)"abcdefghijklmnopq", 17), 16);
	assert_int_equal(ser_rd(&a, 0), 'a');
	save_into(&a, ser_save, &sb);
	load_ok(&b, ser_load, &sb);
	assert_int_equal(b.irq_level, a.irq_level);
	/* Every register reads the same, and the FIFO drains the same 15 bytes. */
	for (unsigned off = 1; off < 8; off++)
		assert_int_equal(ser_rd(&b, off), ser_rd(&a, off));
	for (int i = 0; i < 15; i++)
		assert_int_equal(ser_rd(&b, 0), 'b' + i);
	assert_int_equal(ser_rd(&b, 5) & 1, 0);
	ser_wr(&b, 3, 0x9b);
	assert_int_equal(ser_rd(&b, 0), 0x02);
	assert_int_equal(ser_rd(&b, 1), 0x01);

	expect_truncations_fail(&b, ser_save, ser_load, sb.data, sb.len);
	expect_patch_fails(&b, ser_save, ser_load, &sb, 0, 9, "version");
	expect_patch_fails(&b, ser_save, ser_load, &sb, 2, 0xf3, "IER");    /* ier */
	expect_patch_fails(&b, ser_save, ser_load, &sb, 4, 0x20, "MCR");    /* mcr */
	expect_patch_fails(&b, ser_save, ser_load, &sb, 5, 0x01, "LSR");    /* lsr: DR */
	expect_patch_fails(&b, ser_save, ser_load, &sb, 6, 0x00, "MSR");    /* msr */
	expect_patch_fails(&b, ser_save, ser_load, &sb, 10, 0x02, "FCR");   /* fcr */
	expect_patch_fails(&b, ser_save, ser_load, &sb, 12, 0x00, "IRQ");   /* level */
	expect_patch_fails(&b, ser_save, ser_load, &sb, 12, 0x02, "flag");  /* bool */
	expect_patch_fails(&b, ser_save, ser_load, &sb, 13, 17, "RX FIFO"); /* count */
	expect_patch_fails(&b, ser_save, ser_load, &sb, 13, 0xff, "RX FIFO");
	/* FIFOs off: one byte at most. */
	{
		uint8_t *p = patched(&sb, 10, 0);
		p[13] = 2;
		expect_fail(&b, ser_save, ser_load, p, sb.len, "RX FIFO");
		free(p);
	}
	snap_buf_free(&sb);
	serial_destroy(&a);
	serial_destroy(&b);
}

/* ---- i8042, RTC, ACPI PM ----------------------------------------------------------------- */

static int kbc_save(void *d, struct snap_buf *b) { return i8042_state_save(d, b); }
static int kbc_load(void *d, struct snap_cursor *c) { return i8042_state_load(d, c); }
static int rtc_save(void *d, struct snap_buf *b) { return rtc_state_save(d, b); }
static int rtc_load(void *d, struct snap_cursor *c) { return rtc_state_load(d, c); }
static int pm_save(void *d, struct snap_buf *b) { return acpi_pm_state_save(d, b); }
static int pm_load(void *d, struct snap_cursor *c) { return acpi_pm_state_load(d, c); }

static void test_i8042(void **state)
{
	struct i8042 a, b;
	struct snap_buf sb;
	uint8_t v;
	(void)state;

	i8042_init(&a, (struct vm_stopper){0});
	i8042_init(&b, (struct vm_stopper){0});
	v = 0x60; /* write command byte: waits for its data byte */
	i8042_cmd_io(&a, 0, &v, 1, true);
	v = 0x47;
	i8042_data_io(&a, 0, &v, 1, true);
	v = 0xd3; /* AUX loopback, data byte pending at save time */
	i8042_cmd_io(&a, 0, &v, 1, true);
	save_into(&a, kbc_save, &sb);
	load_ok(&b, kbc_load, &sb);
	v = 0x99;
	i8042_data_io(&b, 0, &v, 1, true); /* completes the pending 0xd3 */
	i8042_cmd_io(&b, 0, &v, 1, false);
	assert_int_equal(v & 0x21, 0x21); /* OBF from AUX */
	i8042_data_io(&b, 0, &v, 1, false);
	assert_int_equal(v, 0x99);
	v = 0x20;
	i8042_cmd_io(&b, 0, &v, 1, true);
	i8042_data_io(&b, 0, &v, 1, false);
	assert_int_equal(v, 0x47);

	expect_truncations_fail(&b, kbc_save, kbc_load, sb.data, sb.len);
	expect_patch_fails(&b, kbc_save, kbc_load, &sb, 3, 0xaa, "pending command");
	{
		uint8_t *p = patched(&sb, 6, 0); /* empty buffer ... */
		p[7] = 1;			 /* ... holding AUX data */
		expect_fail(&b, kbc_save, kbc_load, p, sb.len, "AUX");
		free(p);
	}
	snap_buf_free(&sb);
}

static int64_t fixed_now(void) { return 1700000000; }

static void test_rtc(void **state)
{
	struct rtc a, b;
	struct snap_buf sb;
	uint8_t v;
	(void)state;

	rtc_init(&a);
	rtc_init(&b);
	a.now = b.now = fixed_now;
	uint8_t writes[][2] = {
	    {0x0b, 0x06}, {0x20, 0xab}, {0x7f, 0x11}, {0x01, 0x30}, {0x0e, 0x42}};
	for (size_t i = 0; i < ARRAY_SIZE(writes); i++) {
		rtc_io(&a, 0, &writes[i][0], 1, true);
		rtc_io(&a, 1, &writes[i][1], 1, true);
	}
	v = 0x04; /* index left on hours */
	rtc_io(&a, 0, &v, 1, true);
	save_into(&a, rtc_save, &sb);
	load_ok(&b, rtc_load, &sb);
	/* Same index, binary 24-hour mode from register B, CMOS RAM kept. */
	uint8_t ha, hb;
	rtc_io(&a, 1, &ha, 1, false);
	rtc_io(&b, 1, &hb, 1, false);
	assert_int_equal(ha, hb);
	assert_int_equal(hb, 22); /* 1700000000 is 22:13:20 UTC, in binary */
	for (size_t i = 1; i < ARRAY_SIZE(writes); i++) {
		rtc_io(&b, 0, &writes[i][0], 1, true);
		rtc_io(&b, 1, &v, 1, false);
		assert_int_equal(v, writes[i][1]);
	}

	expect_truncations_fail(&b, rtc_save, rtc_load, sb.data, sb.len);
	expect_patch_fails(&b, rtc_save, rtc_load, &sb, 2, 0x84, "index");
	expect_patch_fails(&b, rtc_save, rtc_load, &sb, 3 + 0x0a, 0xa6, "UIP");
	expect_patch_fails(&b, rtc_save, rtc_load, &sb, 3 + 0x0b, 0x90, "SET");
	expect_patch_fails(&b, rtc_save, rtc_load, &sb, 3 + 0x0c, 0x80, "read-only");
	expect_patch_fails(&b, rtc_save, rtc_load, &sb, 3 + 0x00, 0x12, "clock");
	snap_buf_free(&sb);
}

static void test_acpi_pm(void **state)
{
	struct acpi_pm a, b;
	struct snap_buf sb;
	uint8_t v = 0x20 | (1 << 2); /* SLP_EN with S1: wakes at once */
	(void)state;

	acpi_pm_init(&a, (struct vm_stopper){0});
	acpi_pm_init(&b, (struct vm_stopper){0});
	acpi_pm_io(&a, 0, &v, 1, true);
	save_into(&a, pm_save, &sb);
	load_ok(&b, pm_load, &sb);
	acpi_pm_io(&b, 1, &v, 1, false);
	assert_int_equal(v, 0x80);
	expect_truncations_fail(&b, pm_save, pm_load, sb.data, sb.len);
	expect_patch_fails(&b, pm_save, pm_load, &sb, 2, 0x81, "WAK_STS");
	snap_buf_free(&sb);
}

/* ---- virtio over PCI ---------------------------------------------------------------------- */

/* One VM's worth of buses with a virtio device on slot 1; RAM is the fake driver's. */
struct machine {
	struct bus pio, mmio;
	struct irq_router irq;
	struct pci_bus pb;
	struct virtio_dev *d;
	struct virtio_pci *vp;
};

static void machine_init(struct machine *m, struct fake_driver *f, bool console)
{
	struct virtio_env env = {.mem = &f->mem, .ev = NULL};
	char err[128];

	memset(m, 0, sizeof(*m));
	bus_init(&m->pio, "pio");
	bus_init(&m->mmio, "mmio");
	assert_int_equal(irq_router_init(&m->irq, -1), 0);
	assert_int_equal(pci_bus_init(&m->pb, &m->pio, &m->mmio, &m->irq, -1, &f->mem), 0);
	if (console)
		assert_int_equal(virtio_console_create(&env, -1, -1, &m->d, err, sizeof(err)), 0);
	else
		assert_int_equal(virtio_rng_create(&env, &m->d, err, sizeof(err)), 0);
	assert_int_equal(virtio_pci_create(m->d, &m->pb, -1, &m->vp), 0);
}

static void machine_destroy(struct machine *m)
{
	pci_bus_destroy(&m->pb);
	virtio_pci_destroy(m->vp);
	virtio_dev_destroy(m->d);
	bus_destroy(&m->mmio);
	bus_destroy(&m->pio);
	irq_router_destroy(&m->irq);
}

static int vp_save(void *vp, struct snap_buf *b) { return virtio_pci_state_save(vp, b); }
static int vp_load(void *vp, struct snap_cursor *c) { return virtio_pci_state_load(vp, c); }
static int bus_save(void *pb, struct snap_buf *b) { return pci_bus_state_save(pb, b); }
static int bus_load(void *pb, struct snap_cursor *c) { return pci_bus_state_load(pb, c); }

static uint16_t add_buf(struct fake_driver *f, gpa_t gpa, uint32_t len)
{
	struct fd_buf b = {gpa, len, true};
	uint16_t head = fd_chain(f, &b, 1);

	fd_submit(f, head);
	return head;
}

#define BAR_MOVED 0xc0100000u
#define SLOT 1

/* Guest side over PCI: memory decode on, BAR0 moved, MSI-X on with vector 1 unmasked. */
static void pci_guest_setup(struct machine *m)
{
	struct pci_device *pd = virtio_pci_device(m->vp);
	unsigned cap = pd->msix.cap_off;
	uint8_t data[4];

	conf1_write(&m->pio, SLOT, PCI_CFG_BAR0, BAR_MOVED, 4);
	conf1_write(&m->pio, SLOT, PCI_CFG_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER, 2);
	conf1_write(&m->pio, SLOT, cap + 2, PCI_MSIX_CTRL_ENABLE, 2);
	uint32_t entry[4] = {0xfee00000, 0, 0x4041, 0};
	for (unsigned i = 0; i < 4; i++) {
		memcpy(data, &entry[i], 4);
		assert_true(bus_access(&m->mmio, BAR_MOVED + VIRTIO_PCI_MSIX_TABLE_OFF + 16 + 4 * i,
				       data, 4, true));
	}
	conf1_write(&m->pio, SLOT, PCI_CFG_INT_LINE, 0x0b, 1);
}

static void test_virtio_pci_midstream(void **state)
{
	struct fake_driver *f = calloc(1, sizeof(*f));
	struct machine a, b;
	struct snap_buf sb, bb;
	uint32_t id, len;
	(void)state;

	log_set_level(LOG_ERROR);
	assert_non_null(f);
	assert_int_equal(fd_init(f), 0);
	machine_init(&a, f, false);
	pci_guest_setup(&a);
	assert_int_equal(fd_start(f, a.d, 0, 16, FEATURES) & VIRTIO_STATUS_DRIVER_OK,
			 VIRTIO_STATUS_DRIVER_OK);
	a.d->config_generation = 3;
	/* Twenty requests (the ring wraps), each completed; then one published, not taken. */
	for (int i = 0; i < 20; i++) {
		uint16_t head = add_buf(f, fd_alloc(f, 32), 32);
		fd_kick(f);
		assert_true(fd_used(f, &id, &len));
		assert_int_equal(id, head);
		assert_false(fd_used(f, &id, &len));
	}
	uint16_t pending = add_buf(f, fd_alloc(f, 48), 48);
	assert_int_equal(virtio_pci_state_save(a.vp, &sb), 0);
	snap_buf_init(&bb);
	assert_int_equal(pci_bus_state_save(&a.pb, &bb), 0);

	/* A VM built the same way, loaded before anything runs. */
	machine_init(&b, f, false);
	load_ok(b.vp, vp_load, &sb);
	load_ok(&b.pb, bus_load, &bb);
	struct pci_device *pa = virtio_pci_device(a.vp), *pb = virtio_pci_device(b.vp);
	assert_memory_equal(pa->cfg, pb->cfg, PCI_CFG_SIZE);
	assert_true(pb->bars[0].mapped == BAR_MOVED);
	assert_true(pb->msix.enabled);
	assert_memory_equal(&pa->msix.table[1], &pb->msix.table[1], sizeof(struct msix_entry));
	assert_int_equal(conf1_read(&b.pio, SLOT, PCI_CFG_INT_LINE, 1), 0x0b);
	assert_int_equal(b.d->config_generation, 3);
	assert_int_equal(b.d->queues[0].vq.last_avail, 20);
	assert_int_equal(b.d->queues[0].vq.used_idx, 20);
	/* The common config reads back through the moved BAR: status, queue 0 vector. */
	uint8_t st = 0;
	assert_true(bus_access(&b.mmio, BAR_MOVED + 20, &st, 1, false));
	assert_int_equal(st, a.d->status);

	/* The pending request is processed exactly once, then the stream goes on. */
	b.d->transport = (struct virtio_transport){.raise = fd_raise, .opaque = f};
	f->dev = b.d;
	fd_kick(f);
	assert_true(fd_used(f, &id, &len));
	assert_int_equal(id, pending);
	assert_int_equal(len, 48);
	assert_false(fd_used(f, &id, &len));
	fd_kick(f);
	assert_false(fd_used(f, &id, &len));
	uint16_t next = add_buf(f, fd_alloc(f, 8), 8);
	fd_kick(f);
	assert_true(fd_used(f, &id, &len));
	assert_int_equal(id, next);
	assert_false(fd_used(f, &id, &len));
	assert_int_equal(((struct vring_used *)fd_hva(f, FD_USED))->idx, 22);

	/* A device of another type refuses the section. */
	struct machine c;
	machine_init(&c, f, true);
	expect_fail(c.vp, vp_save, vp_load, sb.data, sb.len, "config byte");
	machine_destroy(&c);

	expect_truncations_fail(b.vp, vp_save, vp_load, sb.data, sb.len);
	expect_truncations_fail(&b.pb, bus_save, bus_load, bb.data, bb.len);
	snap_buf_free(&sb);
	snap_buf_free(&bb);
	machine_destroy(&a);
	machine_destroy(&b);
	fd_destroy(f);
	free(f);
}

/* Offsets in a virtio_pci_state_save section of an rng: version, slot, cfg, MSI-X (2 vectors),
 * selectors, then the core (virtio_state.c's layout, config_size 0). */
#define O_PCI 2
#define O_CFG (O_PCI + 1)
#define O_MSIX (O_CFG + PCI_CFG_SIZE)
#define O_PBA (O_MSIX + 2 + 2 * 16)
#define O_SEL (O_PBA + 8)
#define O_CORE (O_SEL + 10)
#define O_TYPE O_CORE
#define O_DRVF (O_CORE + 2 + 2 + 8 + 4)
#define O_STATUS (O_DRVF + 8)
#define O_ISR (O_STATUS + 2)
#define O_MSIXCFG (O_STATUS + 3)
#define O_Q0 (O_MSIXCFG + 2)
#define OQ_SIZE 2
#define OQ_DESC 5
#define OQ_VEC 29
#define OQ_EVIDX 31
#define OQ_LAST 32
#define OQ_END 42

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void expect_patch16_fails(struct virtio_pci *vp, const struct snap_buf *b, size_t off,
				 uint16_t v, const char *why)
{
	uint8_t *p = patched(b, off, b->data[off]);

	put16(p + off, v);
	expect_fail(vp, vp_save, vp_load, p, b->len, why);
	free(p);
}

static void test_virtio_hostile(void **state)
{
	struct fake_driver *f = calloc(1, sizeof(*f));
	struct machine a, b;
	struct snap_buf sb;
	(void)state;

	log_set_level(LOG_ERROR);
	assert_non_null(f);
	assert_int_equal(fd_init(f), 0);
	machine_init(&a, f, false);
	machine_init(&b, f, false);
	pci_guest_setup(&a);
	assert_int_equal(fd_start(f, a.d, 0, 16, FEATURES) & VIRTIO_STATUS_DRIVER_OK,
			 VIRTIO_STATUS_DRIVER_OK);
	assert_int_equal(virtio_pci_state_save(a.vp, &sb), 0);
	assert_int_equal(sb.len, O_Q0 + OQ_END);
	assert_int_equal(sb.data[O_TYPE], VIRTIO_ID_RNG);
	assert_int_equal(sb.data[O_Q0 + OQ_SIZE], 16);
	load_ok(b.vp, vp_load, &sb); /* the unpatched section is fine */
	machine_destroy(&b);
	machine_init(&b, f, false);

	/* PCI: another slot, a read-only byte, a misaligned BAR, one outside the windows. */
	expect_patch_fails(b.vp, vp_save, vp_load, &sb, O_PCI, 2, "slot");
	expect_patch_fails(b.vp, vp_save, vp_load, &sb, O_CFG + 0, 0x00, "read-only");
	expect_patch_fails(b.vp, vp_save, vp_load, &sb, O_CFG + PCI_CFG_BAR0 + 1, 0x10, "aligned");
	expect_patch_fails(b.vp, vp_save, vp_load, &sb, O_CFG + PCI_CFG_BAR0 + 3, 0x10, "windows");
	expect_patch_fails(b.vp, vp_save, vp_load, &sb, O_CFG + PCI_CFG_BAR0 + 4, 0x01, "no BAR1");
	/* MSI-X: vector count, reserved bits, PBA bits past the table, pending but deliverable. */
	expect_patch_fails(b.vp, vp_save, vp_load, &sb, O_MSIX, 3, "vectors");
	expect_patch_fails(b.vp, vp_save, vp_load, &sb, O_MSIX + 2 + 12, 0x03, "control");
	expect_patch_fails(b.vp, vp_save, vp_load, &sb, O_PBA, 0x04, "PBA");
	expect_patch_fails(b.vp, vp_save, vp_load, &sb, O_PBA, 0x02, "deliverable");
	/* Core: type, features, status bits, ISR, config vector. */
	expect_patch_fails(b.vp, vp_save, vp_load, &sb, O_TYPE, VIRTIO_ID_BLOCK, "type");
	expect_patch_fails(b.vp, vp_save, vp_load, &sb, O_TYPE + 2, 2, "queues");
	expect_patch_fails(b.vp, vp_save, vp_load, &sb, O_TYPE + 4, 0xff, "offered");
	expect_patch_fails(b.vp, vp_save, vp_load, &sb, O_DRVF, 0xff, "FEATURES_OK");
	expect_patch_fails(b.vp, vp_save, vp_load, &sb, O_STATUS, 0x1f, "undefined");
	expect_patch_fails(b.vp, vp_save, vp_load, &sb, O_STATUS, 0x07, "DRIVER_OK without");
	expect_patch_fails(b.vp, vp_save, vp_load, &sb, O_ISR, 0x04, "ISR");
	expect_patch16_fails(b.vp, &sb, O_MSIXCFG, 2, "config MSI-X vector");
	/* Queue: size 0, not a power of two, too large; rings outside RAM or misaligned; vector;
	 * indexes further apart than the ring; event index not as negotiated. */
	expect_patch16_fails(b.vp, &sb, O_Q0 + OQ_SIZE, 0, "size");
	expect_patch16_fails(b.vp, &sb, O_Q0 + OQ_SIZE, 12, "size");
	expect_patch16_fails(b.vp, &sb, O_Q0 + OQ_SIZE, 128, "size");
	expect_patch_fails(b.vp, vp_save, vp_load, &sb, O_Q0 + OQ_DESC + 2, 0x40, "outside");
	expect_patch_fails(b.vp, vp_save, vp_load, &sb, O_Q0 + OQ_DESC + 4, 0x01, "outside");
	expect_patch_fails(b.vp, vp_save, vp_load, &sb, O_Q0 + OQ_DESC, 0x08, "misaligned");
	expect_patch16_fails(b.vp, &sb, O_Q0 + OQ_VEC, 2, "vector");
	expect_patch16_fails(b.vp, &sb, O_Q0 + OQ_VEC, 0x8000, "vector");
	expect_patch16_fails(b.vp, &sb, O_Q0 + OQ_LAST, 17, "apart");
	expect_patch16_fails(b.vp, &sb, O_Q0 + OQ_LAST, 1, "in flight");
	expect_patch_fails(b.vp, vp_save, vp_load, &sb, O_Q0 + OQ_EVIDX, 0, "event index");
	/* A disabled queue holds no ring indexes. */
	{
		uint8_t *p = patched(&sb, O_Q0 + 4, 0);
		put16(p + O_Q0 + OQ_LAST, 1);
		expect_fail(b.vp, vp_save, vp_load, p, sb.len, "disabled");
		free(p);
	}
	snap_buf_free(&sb);
	machine_destroy(&a);
	machine_destroy(&b);
	fd_destroy(f);
	free(f);
}

/* ---- virtio-blk: the configuration must match ----------------------------------------------- */

static int dev_save(void *d, struct snap_buf *b) { return virtio_dev_state_save(d, b); }
/* Without a transport: as many vectors as a virtio-pci device of up to two queues has. */
static int dev_load(void *d, struct snap_cursor *c) { return virtio_dev_state_load(d, c, 3); }

static void make_image(char *path, size_t pathlen, off_t size)
{
	snprintf(path, pathlen, "/tmp/kiln-devstate-XXXXXX");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, size), 0);
	close(fd);
}

static void test_blk_config_mismatch(void **state)
{
	struct fake_driver *f = calloc(1, sizeof(*f));
	char p1[64], p2[64], err[160];
	/* Read-only: the three devices may then share an image (shared locks). */
	struct disk_config cfg = {.id = "disk0", .readonly = true, .engine = DISK_ENGINE_SYNC};
	struct virtio_dev *a, *b, *c;
	struct snap_buf sb;
	(void)state;

	log_set_level(LOG_ERROR);
	assert_non_null(f);
	assert_int_equal(fd_init(f), 0);
	struct virtio_env env = {.mem = &f->mem, .ev = NULL};
	make_image(p1, sizeof(p1), 1 << 20);
	make_image(p2, sizeof(p2), 2 << 20);
	cfg.path = p1;
	assert_int_equal(virtio_blk_create(&env, &cfg, &a, err, sizeof(err)), 0);
	assert_int_equal(virtio_blk_create(&env, &cfg, &b, err, sizeof(err)), 0);
	cfg.path = p2;
	assert_int_equal(virtio_blk_create(&env, &cfg, &c, err, sizeof(err)), 0);
	assert_int_equal(fd_start(f, a, 0, 16, FEATURES) & VIRTIO_STATUS_DRIVER_OK,
			 VIRTIO_STATUS_DRIVER_OK);
	save_into(a, dev_save, &sb);
	load_ok(b, dev_load, &sb);
	assert_int_equal(b->status, a->status);
	assert_true(b->queues[0].enabled);
	expect_fail(c, dev_save, dev_load, sb.data, sb.len, "capacity");
	expect_truncations_fail(b, dev_save, dev_load, sb.data, sb.len);
	snap_buf_free(&sb);
	/* A reset still waiting for its I/O is not a state to save. */
	a->reset_pending = true;
	snap_buf_init(&sb);
	assert_int_equal(virtio_dev_state_save(a, &sb), -EBUSY);
	a->reset_pending = false;
	snap_buf_free(&sb);
	virtio_dev_destroy(a);
	virtio_dev_destroy(b);
	virtio_dev_destroy(c);
	unlink(p1);
	unlink(p2);
	fd_destroy(f);
	free(f);
}

/* A write to `sector` of 512 bytes of `fill`, published but not kicked. Returns its head;
 * *status is where the device writes the status byte. */
static uint16_t blk_publish_write(struct fake_driver *f, uint64_t sector, uint8_t fill,
				  gpa_t *status)
{
	gpa_t hdr = fd_alloc(f, 16), data = fd_alloc(f, 512);
	uint32_t hdr_words[4] = {VIRTIO_BLK_T_OUT, 0, (uint32_t)sector, (uint32_t)(sector >> 32)};

	*status = fd_alloc(f, 1);
	memcpy(fd_hva(f, hdr), hdr_words, 16);
	memset(fd_hva(f, data), fill, 512);
	*(uint8_t *)fd_hva(f, *status) = 0xff;
	struct fd_buf chain[3] = {{hdr, 16, false}, {data, 512, false}, {*status, 1, true}};
	uint16_t head = fd_chain(f, chain, 3);
	fd_submit(f, head);
	return head;
}

/* Kick, run the loop until one request comes back; it must be head, and nothing else. */
static void blk_complete_one(struct fake_driver *f, struct event_loop *ev, uint16_t head)
{
	uint32_t id = UINT32_MAX, len = 0;

	fd_kick(f);
	for (int i = 0; i < 500 && !fd_used(f, &id, &len); i++)
		event_loop_run_once(ev, 10);
	assert_int_equal(id, head);
	assert_int_equal(len, 1);
	for (int i = 0; i < 5; i++)
		event_loop_run_once(ev, 5);
	assert_false(fd_used(f, &id, &len));
}

static void test_blk_midstream(void **state)
{
	struct fake_driver *f = calloc(1, sizeof(*f));
	struct disk_config cfg = {.id = "disk0", .engine = DISK_ENGINE_SYNC};
	struct event_loop ev;
	struct virtio_dev *a, *b;
	struct snap_buf sb;
	char path[64], err[160];
	uint8_t sec[512];
	gpa_t status;
	(void)state;

	log_set_level(LOG_ERROR);
	assert_non_null(f);
	assert_int_equal(fd_init(f), 0);
	assert_int_equal(event_loop_init(&ev), 0);
	struct virtio_env env = {.mem = &f->mem, .ev = &ev};
	make_image(path, sizeof(path), 1 << 20);
	cfg.path = path;
	assert_int_equal(virtio_blk_create(&env, &cfg, &a, err, sizeof(err)), 0);
	assert_int_equal(fd_start(f, a, 0, 16, FEATURES) & VIRTIO_STATUS_DRIVER_OK,
			 VIRTIO_STATUS_DRIVER_OK);
	for (unsigned i = 0; i < 3; i++) {
		uint16_t head = blk_publish_write(f, i, (uint8_t)(0x10 + i), &status);
		blk_complete_one(f, &ev, head);
		assert_int_equal(*(uint8_t *)fd_hva(f, status), VIRTIO_BLK_S_OK);
	}
	uint16_t pending = blk_publish_write(f, 7, 0xab, &status);
	save_into(a, dev_save, &sb);
	/* The old VM is gone (its image lock with it); the new one is built the same way. */
	virtio_dev_destroy(a);
	assert_int_equal(virtio_blk_create(&env, &cfg, &b, err, sizeof(err)), 0);
	load_ok(b, dev_load, &sb);
	b->transport = (struct virtio_transport){.raise = fd_raise, .opaque = f};
	f->dev = b;
	blk_complete_one(f, &ev, pending);
	assert_int_equal(*(uint8_t *)fd_hva(f, status), VIRTIO_BLK_S_OK);
	assert_int_equal(((struct vring_used *)fd_hva(f, FD_USED))->idx, 4);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, sec, sizeof(sec), 7 * 512), (ssize_t)sizeof(sec));
	close(fd);
	for (size_t i = 0; i < sizeof(sec); i++)
		assert_int_equal(sec[i], 0xab);
	/* And the stream goes on. */
	uint16_t next = blk_publish_write(f, 8, 0xcd, &status);
	blk_complete_one(f, &ev, next);
	assert_int_equal(((struct vring_used *)fd_hva(f, FD_USED))->idx, 5);
	snap_buf_free(&sb);
	virtio_dev_destroy(b);
	event_loop_destroy(&ev);
	unlink(path);
	fd_destroy(f);
	free(f);
}

/* ---- virtio-net: MAC and MTU must match ------------------------------------------------------ */

static struct virtio_dev *make_net(struct fake_vnet *v, struct event_loop *ev, const char *id,
				   unsigned mtu, int *peer)
{
	struct virtio_env env = {.mem = &v->f.mem, .ev = ev};
	struct net_config cfg = {.mtu = mtu};
	struct net_backend *be;
	struct virtio_dev *d;
	char err[256];
	int sv[2];

	snprintf(cfg.id, sizeof(cfg.id), "%s", id);
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	*peer = sv[1];
	assert_int_equal(net_fd_backend_create(sv[0], false, ev, &be), 0);
	assert_int_equal(virtio_net_create_with(&env, &cfg, be, &d, err, sizeof(err)), 0);
	return d;
}

static void test_net_config_mismatch(void **state)
{
	struct fake_vnet *v = calloc(1, sizeof(*v));
	struct event_loop ev;
	struct virtio_dev *d[4];
	int peer[4];
	struct snap_buf sb;
	(void)state;

	log_set_level(LOG_ERROR);
	assert_non_null(v);
	assert_int_equal(fv_init(v), 0);
	assert_int_equal(event_loop_init(&ev), 0);
	d[0] = make_net(v, &ev, "net0", 1500, &peer[0]);
	d[1] = make_net(v, &ev, "net0", 1500, &peer[1]);
	d[2] = make_net(v, &ev, "net1", 1500, &peer[2]); /* another default MAC */
	d[3] = make_net(v, &ev, "net0", 9000, &peer[3]);
	assert_true(fv_start(v, d[0], 64, FEATURES | BIT_ULL(VIRTIO_NET_F_MAC)) &
		    VIRTIO_STATUS_DRIVER_OK);
	save_into(d[0], dev_save, &sb);
	load_ok(d[1], dev_load, &sb);
	assert_true(virtio_queue_ready(d[1], FV_RXQ) && virtio_queue_ready(d[1], FV_TXQ));
	expect_fail(d[2], dev_save, dev_load, sb.data, sb.len, "MAC address");
	expect_fail(d[3], dev_save, dev_load, sb.data, sb.len, "MTU");
	snap_buf_free(&sb);
	for (int i = 0; i < 4; i++) {
		virtio_dev_destroy(d[i]);
		close(peer[i]);
	}
	event_loop_destroy(&ev);
	fd_destroy(&v->f);
	free(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_serial),
	    cmocka_unit_test(test_i8042),
	    cmocka_unit_test(test_rtc),
	    cmocka_unit_test(test_acpi_pm),
	    cmocka_unit_test(test_virtio_pci_midstream),
	    cmocka_unit_test(test_virtio_hostile),
	    cmocka_unit_test(test_blk_config_mismatch),
	    cmocka_unit_test(test_blk_midstream),
	    cmocka_unit_test(test_net_config_mismatch),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
