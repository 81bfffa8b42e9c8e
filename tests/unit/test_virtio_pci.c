/* test_virtio_pci.c: the virtio-pci modern transport: capabilities, common config protocol, notify
 * path. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <cmocka.h>

#include "devices/pci.h"
#include "fake_driver.h"
#include "util/log.h"
#include "vmm/event.h"

/* Common config offsets (virtio 1.2, 4.1.4.3). */
#define DFSELECT 0
#define DF 4
#define GFSELECT 8
#define GF 12
#define MSIX_CONFIG 16
#define NUM_QUEUES 18
#define STATUS 20
#define GENERATION 21
#define QSELECT 22
#define QSIZE 24
#define QMSIX 26
#define QENABLE 28
#define QNOTIFY_OFF 30
#define QDESC 32
#define QDRIVER 40
#define QDEVICE 48

#define ACK_DRIVER (VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER)

struct fx {
	struct fake_driver f;
	struct event_loop ev;
	struct virtio_dev *d;
	struct virtio_pci *vp;
};

static struct fx *mk(bool console)
{
	struct fx *t = calloc(1, sizeof(*t));
	char err[128];

	assert_non_null(t);
	log_set_level(LOG_ERROR);
	assert_int_equal(fd_init(&t->f), 0);
	assert_int_equal(event_loop_init(&t->ev), 0);
	struct virtio_env env = {.mem = &t->f.mem, .ev = &t->ev};
	if (console)
		assert_int_equal(virtio_console_create(&env, -1, -1, &t->d, err, sizeof(err)), 0);
	else
		assert_int_equal(virtio_rng_create(&env, &t->d, err, sizeof(err)), 0);
	assert_int_equal(virtio_pci_create_detached(t->d, &t->vp), 0);
	return t;
}

static int setup_rng(void **state)
{
	*state = mk(false);
	return 0;
}

static int setup_console(void **state)
{
	*state = mk(true);
	return 0;
}

static int teardown(void **state)
{
	struct fx *t = *state;

	virtio_pci_destroy(t->vp);
	virtio_dev_destroy(t->d);
	event_loop_destroy(&t->ev);
	fd_destroy(&t->f);
	free(t);
	return 0;
}

static uint64_t rd(struct fx *t, uint64_t off, unsigned len)
{
	uint8_t b[8] = {0};
	uint64_t v = 0;

	virtio_pci_bar_io(t->vp, off, b, len, false);
	memcpy(&v, b, len);
	return v;
}

static void wr(struct fx *t, uint64_t off, uint64_t v, unsigned len)
{
	uint8_t b[8];

	memcpy(b, &v, sizeof(b));
	virtio_pci_bar_io(t->vp, off, b, len, true);
}

static uint32_t cfg32(struct pci_device *pd, unsigned off)
{
	uint32_t v;

	memcpy(&v, pd->cfg + off, 4);
	return v;
}

/* ---- config space ----------------------------------------------------------------------- */

static void check_caps(struct fx *t, uint16_t type, uint32_t class, unsigned nr_queues,
		       bool has_device_cfg)
{
	struct pci_device *pd = virtio_pci_device(t->vp);
	bool seen[6] = {false}, msix = false;
	unsigned n = 0;

	assert_int_equal(cfg32(pd, 0), 0x1af4u | (0x1040u + type) << 16);
	assert_int_equal(pd->cfg[PCI_CFG_REVISION], 1);
	assert_int_equal(cfg32(pd, 8) >> 8, class);
	assert_int_equal(cfg32(pd, PCI_CFG_SUBSYS_VENDOR) & 0xffff, 0x1af4);
	assert_true(pd->cfg[PCI_CFG_STATUS] & PCI_STATUS_CAP_LIST);
	assert_int_equal(pd->bars[0].size, VIRTIO_PCI_BAR_SIZE);
	assert_false(pd->bars[0].is_64);

	for (unsigned off = pd->cfg[PCI_CFG_CAP_PTR]; off; off = pd->cfg[off + 1]) {
		assert_true(off >= 0x40 && off < PCI_CFG_SIZE - 2 && off % 4 == 0);
		assert_true(++n < 16); /* the chain ends */
		if (pd->cfg[off] == PCI_CAP_ID_MSIX) {
			unsigned size = (pd->cfg[off + 2] | pd->cfg[off + 3] << 8) & 0x7ff;
			assert_int_equal(size + 1, nr_queues + 1);
			assert_int_equal(cfg32(pd, off + 4), VIRTIO_PCI_MSIX_TABLE_OFF);
			assert_int_equal(cfg32(pd, off + 8), VIRTIO_PCI_MSIX_PBA_OFF);
			msix = true;
			continue;
		}
		assert_int_equal(pd->cfg[off], PCI_CAP_ID_VNDR);
		uint8_t cfg_type = pd->cfg[off + 3];
		uint32_t boff = cfg32(pd, off + 8), blen = cfg32(pd, off + 12);
		assert_true(cfg_type >= 1 && cfg_type <= 5);
		assert_false(seen[cfg_type]);
		seen[cfg_type] = true;
		assert_int_equal(pd->cfg[off + 4], 0); /* BAR 0 */
		switch (cfg_type) {
		case 1:
			assert_int_equal(pd->cfg[off + 2], 16);
			assert_int_equal(boff, VIRTIO_PCI_COMMON_OFF);
			assert_true(blen >= 56);
			break;
		case 2:
			assert_int_equal(pd->cfg[off + 2], 20);
			assert_int_equal(boff, VIRTIO_PCI_NOTIFY_OFF);
			assert_int_equal(blen, 4 * nr_queues);
			assert_int_equal(cfg32(pd, off + 16), 4); /* notify_off_multiplier */
			break;
		case 3:
			assert_int_equal(boff, VIRTIO_PCI_ISR_OFF);
			assert_true(blen >= 1);
			break;
		case 4:
			assert_int_equal(boff, VIRTIO_PCI_DEVICE_OFF);
			assert_int_equal(blen, t->d->config_size);
			break;
		case 5:
			assert_int_equal(pd->cfg[off + 2], 20);
			break;
		}
		/* Everything described lies inside the BAR. */
		assert_true(boff + blen <= VIRTIO_PCI_BAR_SIZE);
	}
	assert_true(msix);
	assert_true(seen[1] && seen[2] && seen[3] && seen[5]);
	assert_int_equal(seen[4], has_device_cfg);
}

static void test_caps_rng(void **state) { check_caps(*state, VIRTIO_ID_RNG, 0xff0000, 1, false); }

static void test_caps_console(void **state)
{
	check_caps(*state, VIRTIO_ID_CONSOLE, 0x078000, 2, true);
	/* Device config through the BAR: max_nr_ports = 1. */
	assert_int_equal(rd(*state, VIRTIO_PCI_DEVICE_OFF + 4, 4), 1);
	assert_int_equal(rd(*state, VIRTIO_PCI_DEVICE_OFF + 12, 4), 0); /* past the end */
}

/* ---- common config ---------------------------------------------------------------------- */

static void test_feature_paging(void **state)
{
	struct fx *t = *state;

	wr(t, DFSELECT, 0, 4);
	uint32_t lo = (uint32_t)rd(t, DF, 4);
	assert_true(lo & BIT_ULL(VIRTIO_RING_F_EVENT_IDX));
	assert_true(lo & BIT_ULL(VIRTIO_RING_F_INDIRECT_DESC));
	wr(t, DFSELECT, 1, 4);
	assert_int_equal(rd(t, DF, 4), 1); /* VERSION_1 only, no legacy bits */
	wr(t, DFSELECT, 2, 4);
	assert_int_equal(rd(t, DF, 4), 0);
	wr(t, DFSELECT, 0xffffffff, 4);
	assert_int_equal(rd(t, DF, 4), 0);
	assert_int_equal(rd(t, DF, 4), 0);
	/* Driver features page the same way and read back. */
	wr(t, GFSELECT, 1, 4);
	wr(t, GF, 1, 4);
	wr(t, GFSELECT, 0, 4);
	wr(t, GF, BIT_ULL(VIRTIO_RING_F_EVENT_IDX), 4);
	assert_int_equal(t->d->driver_features, BIT_ULL(32) | BIT_ULL(VIRTIO_RING_F_EVENT_IDX));
	wr(t, GFSELECT, 1, 4);
	assert_int_equal(rd(t, GF, 4), 1);
	assert_int_equal(rd(t, NUM_QUEUES, 2), 1);
}

static void test_features_ok(void **state)
{
	struct fx *t = *state;

	/* A feature the device did not offer: FEATURES_OK does not stick. */
	wr(t, STATUS, ACK_DRIVER, 1);
	wr(t, GFSELECT, 1, 4);
	wr(t, GF, 1 | 2, 4); /* VERSION_1 + bit 33 (ACCESS_PLATFORM): not offered */
	wr(t, STATUS, ACK_DRIVER | VIRTIO_STATUS_FEATURES_OK, 1);
	assert_int_equal(rd(t, STATUS, 1), ACK_DRIVER);
	/* No VERSION_1: refused too. */
	wr(t, GF, 0, 4);
	wr(t, STATUS, ACK_DRIVER | VIRTIO_STATUS_FEATURES_OK, 1);
	assert_int_equal(rd(t, STATUS, 1), ACK_DRIVER);
	/* A subset with VERSION_1: accepted; later feature writes are ignored. */
	wr(t, GF, 1, 4);
	wr(t, STATUS, ACK_DRIVER | VIRTIO_STATUS_FEATURES_OK, 1);
	assert_int_equal(rd(t, STATUS, 1), ACK_DRIVER | VIRTIO_STATUS_FEATURES_OK);
	wr(t, GFSELECT, 0, 4);
	wr(t, GF, BIT_ULL(VIRTIO_RING_F_EVENT_IDX), 4);
	assert_int_equal(t->d->driver_features, BIT_ULL(VIRTIO_F_VERSION_1));
	/* Clearing a bit without a reset is ignored; the driver cannot set NEEDS_RESET. */
	wr(t, STATUS, VIRTIO_STATUS_ACKNOWLEDGE, 1);
	assert_int_equal(rd(t, STATUS, 1), ACK_DRIVER | VIRTIO_STATUS_FEATURES_OK);
	wr(t, STATUS, ACK_DRIVER | VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_NEEDS_RESET, 1);
	assert_false(rd(t, STATUS, 1) & VIRTIO_STATUS_NEEDS_RESET);
}

/* The driver's side of queue set-up through the registers. */
static void setup_queue(struct fx *t, unsigned q, uint16_t size, uint16_t vector)
{
	wr(t, QSELECT, q, 2);
	wr(t, QSIZE, size, 2);
	wr(t, QDESC, FD_DESC, 8); /* one 64-bit access */
	wr(t, QDRIVER, FD_AVAIL, 4);
	wr(t, QDRIVER + 4, 0, 4); /* two 32-bit halves */
	wr(t, QDEVICE, FD_USED, 4);
	wr(t, QDEVICE + 4, 0, 4);
	wr(t, QMSIX, vector, 2);
}

static void negotiate(struct fx *t)
{
	wr(t, STATUS, 0, 1);
	wr(t, STATUS, ACK_DRIVER, 1);
	wr(t, GFSELECT, 1, 4);
	wr(t, GF, 1, 4);
	wr(t, GFSELECT, 0, 4);
	wr(t, GF, BIT_ULL(VIRTIO_RING_F_EVENT_IDX), 4);
	wr(t, STATUS, ACK_DRIVER | VIRTIO_STATUS_FEATURES_OK, 1);
	assert_int_equal(rd(t, STATUS, 1), ACK_DRIVER | VIRTIO_STATUS_FEATURES_OK);
}

static void test_queue_setup(void **state)
{
	struct fx *t = *state;

	negotiate(t);
	wr(t, QSELECT, 0, 2);
	uint16_t max = (uint16_t)rd(t, QSIZE, 2);
	assert_true(max >= 2 && (max & (max - 1)) == 0);
	assert_int_equal(rd(t, QNOTIFY_OFF, 2), 0);
	assert_int_equal(rd(t, QENABLE, 2), 0);
	assert_int_equal(rd(t, QMSIX, 2), VIRTIO_MSI_NO_VECTOR);
	/* Vectors: valid ones read back, others read NO_VECTOR. */
	wr(t, MSIX_CONFIG, 0, 2);
	assert_int_equal(rd(t, MSIX_CONFIG, 2), 0);
	wr(t, MSIX_CONFIG, 5, 2);
	assert_int_equal(rd(t, MSIX_CONFIG, 2), VIRTIO_MSI_NO_VECTOR);
	wr(t, QMSIX, 1, 2);
	assert_int_equal(rd(t, QMSIX, 2), 1);
	wr(t, QMSIX, 2, 2);
	assert_int_equal(rd(t, QMSIX, 2), VIRTIO_MSI_NO_VECTOR);
	/* A queue that does not exist reads size 0 and ignores writes. */
	wr(t, QSELECT, 7, 2);
	assert_int_equal(rd(t, QSIZE, 2), 0);
	wr(t, QENABLE, 1, 2);
	assert_int_equal(rd(t, QENABLE, 2), 0);
	/* Addresses: a 64-bit write, then halves; read back as written. */
	setup_queue(t, 0, 16, 1);
	assert_int_equal(rd(t, QDESC, 8), FD_DESC);
	assert_int_equal(rd(t, QDRIVER, 4), FD_AVAIL);
	assert_int_equal(rd(t, QDEVICE + 4, 4), 0);
	assert_int_equal(rd(t, QSIZE, 2), 16);
	wr(t, QENABLE, 1, 2);
	assert_int_equal(rd(t, QENABLE, 2), 1);
	assert_true(t->d->queues[0].vq.event_idx);
	/* Enabled: the queue's geometry is frozen. */
	wr(t, QSIZE, 8, 2);
	wr(t, QDESC, 0x2000, 8);
	assert_int_equal(rd(t, QSIZE, 2), 16);
	assert_int_equal(rd(t, QDESC, 8), FD_DESC);
	wr(t, STATUS, ACK_DRIVER | VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK, 1);
	assert_int_equal(rd(t, STATUS, 1),
			 ACK_DRIVER | VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
}

static void test_bad_queue(void **state)
{
	struct fx *t = *state;

	/* Size not a power of two. */
	negotiate(t);
	setup_queue(t, 0, 17, 1);
	wr(t, QENABLE, 1, 2);
	assert_int_equal(rd(t, QENABLE, 2), 0);
	assert_true(rd(t, STATUS, 1) & VIRTIO_STATUS_NEEDS_RESET);
	/* Rings outside guest RAM. */
	negotiate(t);
	setup_queue(t, 0, 16, 1);
	wr(t, QDEVICE, 0xfff00000ULL, 8);
	wr(t, QENABLE, 1, 2);
	assert_true(rd(t, STATUS, 1) & VIRTIO_STATUS_NEEDS_RESET);
	/* Above the maximum. */
	negotiate(t);
	setup_queue(t, 0, 0x8000, 1);
	wr(t, QENABLE, 1, 2);
	assert_true(rd(t, STATUS, 1) & VIRTIO_STATUS_NEEDS_RESET);
	/* Enabled before FEATURES_OK. */
	wr(t, STATUS, 0, 1);
	wr(t, STATUS, ACK_DRIVER, 1);
	setup_queue(t, 0, 16, 1);
	wr(t, QENABLE, 1, 2);
	assert_true(rd(t, STATUS, 1) & VIRTIO_STATUS_NEEDS_RESET);
	/* DRIVER_OK without FEATURES_OK. */
	wr(t, STATUS, 0, 1);
	wr(t, STATUS, ACK_DRIVER | VIRTIO_STATUS_DRIVER_OK, 1);
	assert_true(rd(t, STATUS, 1) & VIRTIO_STATUS_NEEDS_RESET);
	/* A reset clears it. */
	wr(t, STATUS, 0, 1);
	assert_int_equal(rd(t, STATUS, 1), 0);
}

/* Common config accesses of odd sizes and offsets are harmless. */
static void test_odd_accesses(void **state)
{
	struct fx *t = *state;

	for (unsigned off = 0; off < 0x800; off++) {
		rd(t, off, 1);
		rd(t, off, 2);
		rd(t, off, 4);
		rd(t, off, 8);
	}
	assert_int_equal(rd(t, 60, 4), 0); /* past the structure */
	wr(t, 100, 0xffffffff, 4);
	/* A 4-byte write across status / generation / queue_select. */
	wr(t, STATUS, 0, 1);
	wr(t, STATUS, (uint32_t)ACK_DRIVER | 0x77u << 8 | 0u << 16, 4);
	assert_int_equal(rd(t, STATUS, 1), ACK_DRIVER);
	assert_int_equal(rd(t, GENERATION, 1), 0); /* read-only */
	assert_int_equal(rd(t, QSELECT, 2), 0);
}

static void test_reset_any_time(void **state)
{
	struct fx *t = *state;

	negotiate(t);
	wr(t, MSIX_CONFIG, 0, 2);
	setup_queue(t, 0, 16, 1);
	wr(t, QENABLE, 1, 2);
	wr(t, STATUS, ACK_DRIVER | VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK, 1);
	wr(t, STATUS, 0, 1);
	/* Reads 0 at once: the reset is complete when the write returns. */
	assert_int_equal(rd(t, STATUS, 1), 0);
	assert_int_equal(t->d->driver_features, 0);
	assert_int_equal(rd(t, MSIX_CONFIG, 2), VIRTIO_MSI_NO_VECTOR);
	wr(t, QSELECT, 0, 2);
	assert_int_equal(rd(t, QENABLE, 2), 0);
	assert_int_equal(rd(t, QMSIX, 2), VIRTIO_MSI_NO_VECTOR);
	assert_int_equal(rd(t, QDESC, 8), 0);
	assert_int_equal(rd(t, QSIZE, 2), t->d->queues[0].max_size);
	/* Reset in the middle of set-up (before FEATURES_OK) too. */
	wr(t, STATUS, ACK_DRIVER, 1);
	wr(t, STATUS, 0, 1);
	assert_int_equal(rd(t, STATUS, 1), 0);
}

/* A write to the notify area reaches the queue's eventfd; the event loop runs the device,
 * which fills the buffer and raises the queue's vector. */
static void test_notify_path(void **state)
{
	struct fx *t = *state;
	struct fake_driver *f = &t->f;
	uint32_t id, len;

	negotiate(t);
	wr(t, MSIX_CONFIG, 0, 2);
	setup_queue(t, 0, 16, 1);
	wr(t, QENABLE, 1, 2);
	wr(t, STATUS, ACK_DRIVER | VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK, 1);
	while (event_loop_run_once(&t->ev, 0) > 0) /* activation's own look at the queues */
		;
	f->dev = t->d;
	f->q = 0;
	f->qsize = 16;
	gpa_t buf = fd_alloc(f, 64);
	memset(fd_hva(f, buf), 0, 64);
	struct fd_buf b = {buf, 64, true};
	fd_submit(f, fd_chain(f, &b, 1));
	/* Not yet: nothing runs without a kick. */
	assert_false(fd_used(f, &id, &len));
	wr(t, VIRTIO_PCI_NOTIFY_OFF + 0 * 4, 0, 2);
	/* The kick is on the eventfd (the ioeventfd's target), not handled inline. */
	assert_false(fd_used(f, &id, &len));
	assert_true(event_loop_run_once(&t->ev, 100) > 0);
	assert_true(fd_used(f, &id, &len));
	assert_int_equal(id, 0);
	assert_int_equal(len, 64);
	static const uint8_t zero[64];
	assert_memory_not_equal(fd_hva(f, buf), zero, 64);
	assert_int_equal(virtio_pci_irq_count(t->vp, 1), 1);
	assert_int_equal(virtio_pci_irq_count(t->vp, 0), 0);
	/* A write past the last queue's notify address is ignored. */
	wr(t, VIRTIO_PCI_NOTIFY_OFF + 1 * 4, 1, 2);
	assert_int_equal(event_loop_run_once(&t->ev, 0), 0);
}

/* ISR is read-to-clear; a device error raises the config vector and bumps the generation. */
static void test_isr_and_needs_reset(void **state)
{
	struct fx *t = *state;

	negotiate(t);
	wr(t, MSIX_CONFIG, 0, 2);
	setup_queue(t, 0, 16, 1);
	wr(t, QENABLE, 1, 2);
	wr(t, STATUS, ACK_DRIVER | VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK, 1);
	uint8_t gen = (uint8_t)rd(t, GENERATION, 1);
	/* A descriptor loop on the queue. */
	struct fake_driver *f = &t->f;
	f->dev = t->d;
	f->qsize = 16;
	fd_desc_at(f, FD_DESC, 0, FD_HEAP, 16, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 0);
	fd_submit(f, 0);
	virtio_dev_process(t->d, 0);
	assert_true(rd(t, STATUS, 1) & VIRTIO_STATUS_NEEDS_RESET);
	assert_int_equal(rd(t, GENERATION, 1), (uint8_t)(gen + 1));
	assert_int_equal(virtio_pci_irq_count(t->vp, 0), 1);
	assert_int_equal(rd(t, VIRTIO_PCI_ISR_OFF, 1), VIRTIO_ISR_CONFIG);
	assert_int_equal(rd(t, VIRTIO_PCI_ISR_OFF, 1), 0);
}

/* The PCI_CFG capability: BAR access through config space. */
static void test_pci_cfg_window(void **state)
{
	struct fx *t = *state;
	struct pci_device *pd = virtio_pci_device(t->vp);
	unsigned cap = 0;

	for (unsigned off = pd->cfg[PCI_CFG_CAP_PTR]; off; off = pd->cfg[off + 1])
		if (pd->cfg[off] == PCI_CAP_ID_VNDR && pd->cfg[off + 3] == 5)
			cap = off;
	assert_true(cap);
	/* What pci.c does for a config write: apply through wmask, then cfg_access. */
	uint8_t cfgw[12] = {0};
	uint32_t boff = STATUS, blen = 1;
	memcpy(cfgw + 4, &boff, 4);
	memcpy(cfgw + 8, &blen, 4);
	for (unsigned i = 4; i < 12; i++)
		pd->cfg[cap + 4 + i] = (uint8_t)((pd->cfg[cap + 4 + i] & ~pd->wmask[cap + 4 + i]) |
						 (cfgw[i] & pd->wmask[cap + 4 + i]));
	assert_true(pd->wmask[cap + 16] == 0xff);
	/* Write ACK|DRIVER to device_status through the window, read it back through it. */
	uint8_t data = ACK_DRIVER;
	pd->cfg[cap + 16] = data;
	pd->cfg_access(pd, cap + 16, &data, 1, true);
	assert_int_equal(rd(t, STATUS, 1), ACK_DRIVER);
	data = 0;
	pd->cfg_access(pd, cap + 16, &data, 1, false);
	assert_int_equal(data, ACK_DRIVER);
	/* A bad length or BAR does nothing. */
	pd->cfg[cap + 12] = 3;
	data = 0xff;
	pd->cfg_access(pd, cap + 16, &data, 1, true);
	assert_int_equal(rd(t, STATUS, 1), ACK_DRIVER);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_caps_rng, setup_rng, teardown),
	    cmocka_unit_test_setup_teardown(test_caps_console, setup_console, teardown),
	    cmocka_unit_test_setup_teardown(test_feature_paging, setup_rng, teardown),
	    cmocka_unit_test_setup_teardown(test_features_ok, setup_rng, teardown),
	    cmocka_unit_test_setup_teardown(test_queue_setup, setup_rng, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_queue, setup_rng, teardown),
	    cmocka_unit_test_setup_teardown(test_odd_accesses, setup_console, teardown),
	    cmocka_unit_test_setup_teardown(test_reset_any_time, setup_console, teardown),
	    cmocka_unit_test_setup_teardown(test_notify_path, setup_rng, teardown),
	    cmocka_unit_test_setup_teardown(test_isr_and_needs_reset, setup_rng, teardown),
	    cmocka_unit_test_setup_teardown(test_pci_cfg_window, setup_rng, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
