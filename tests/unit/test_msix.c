/* test_msix.c: MSI-X capability, table, PBA, masking and notify; the IRQ router with and without
 * KVM. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "devices/pci.h"
#include "vmm/bus.h"
#include "vmm/irq.h"
#include "vmm/memory.h"

#include "pci_conf1.h"

#define NR_VEC 4
#define TABLE_OFF 0x2000
#define PBA_OFF 0x3000
#define MSI_ADDR 0xfee00000u

struct fix {
	struct bus pio, mmio;
	struct irq_router irq;
	struct guest_mem mem;
	struct pci_bus pb;
	struct pci_device dev;
	unsigned other_calls; /* BAR accesses that were not MSI-X */
	gpa_t bar;
	unsigned cap;
};

/* The device's BAR handler: MSI-X first, as the virtio transport does. */
static void bar_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct fix *f = opaque;
	if (pci_msix_mmio(&f->dev, offset, data, len, is_write))
		return;
	f->other_calls++;
	if (!is_write)
		memset(data, 0xee, len);
}

static void cfg_wr16(struct fix *f, unsigned reg, uint16_t v)
{
	conf1_write(&f->pio, f->dev.slot, reg, v, 2);
}

static uint32_t cfg_rd(struct fix *f, unsigned reg, unsigned len)
{
	return conf1_read(&f->pio, f->dev.slot, reg, len);
}

static void wr32(struct fix *f, uint64_t off, uint32_t v)
{
	assert_true(bus_access(&f->mmio, f->bar + off, (uint8_t *)&v, 4, true));
}

static uint32_t rd32(struct fix *f, uint64_t off)
{
	uint32_t v;
	assert_true(bus_access(&f->mmio, f->bar + off, (uint8_t *)&v, 4, false));
	return v;
}

static uint64_t rd64(struct fix *f, uint64_t off)
{
	uint64_t v;
	assert_true(bus_access(&f->mmio, f->bar + off, (uint8_t *)&v, 8, false));
	return v;
}

static uint64_t drain(struct fix *f, unsigned v)
{
	uint64_t n = 0;
	if (read(f->dev.msix.efd[v], &n, sizeof(n)) != sizeof(n))
		return 0;
	return n;
}

static uint64_t entry(unsigned v, unsigned field) { return TABLE_OFF + 16 * v + 4 * field; }

static void msix_ctrl(struct fix *f, uint16_t ctrl)
{
	cfg_wr16(f, f->cap + 2, (uint16_t)(ctrl | (NR_VEC - 1)));
}

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	bus_init(&f->pio, "pio");
	bus_init(&f->mmio, "mmio");
	assert_int_equal(irq_router_init(&f->irq, -1), 0);
	assert_int_equal(guest_mem_layout(&f->mem, 256 * MiB), 0);
	assert_int_equal(pci_bus_init(&f->pb, &f->pio, &f->mmio, &f->irq, -1, &f->mem), 0);
	struct pci_device *d = &f->dev;
	pci_device_init(d, "msix", 0x1af4, 0x1041, 0x020000, 0x1af4, 1);
	assert_int_equal(pci_device_set_bar(d, 0, 16 * KiB, true, bar_io, f), 0);
	assert_int_equal(pci_device_add_msix(d, NR_VEC, 0, TABLE_OFF, PBA_OFF), 0);
	assert_int_equal(pci_device_add(&f->pb, d), 0);
	f->bar = d->bars[0].addr;
	f->cap = d->msix.cap_off;
	cfg_wr16(f, PCI_CFG_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
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

/* Program entry v (Linux's order: address, data; then unmask). */
static void program(struct fix *f, unsigned v, uint32_t data)
{
	wr32(f, entry(v, 0), MSI_ADDR | v << 12);
	wr32(f, entry(v, 1), 0);
	wr32(f, entry(v, 2), data);
}

static void test_capability(void **state)
{
	struct fix *f = *state;

	assert_true(cfg_rd(f, PCI_CFG_STATUS, 2) & PCI_STATUS_CAP_LIST);
	assert_int_equal(cfg_rd(f, PCI_CFG_CAP_PTR, 1), f->cap);
	assert_int_equal(cfg_rd(f, f->cap, 1), PCI_CAP_ID_MSIX);
	assert_int_equal(cfg_rd(f, f->cap + 1, 1), 0);
	assert_int_equal(cfg_rd(f, f->cap + 2, 2), NR_VEC - 1);
	assert_int_equal(cfg_rd(f, f->cap + 4, 4), TABLE_OFF | 0);
	assert_int_equal(cfg_rd(f, f->cap + 8, 4), PBA_OFF | 0);
	/* Only enable and function mask are writable. */
	cfg_wr16(f, f->cap + 2, 0xffff);
	assert_int_equal(cfg_rd(f, f->cap + 2, 2), 0xc000 | (NR_VEC - 1));
	assert_true(f->dev.msix.enabled && f->dev.msix.func_masked);
	cfg_wr16(f, f->cap + 2, 0);
	assert_false(f->dev.msix.enabled || f->dev.msix.func_masked);
	/* Table offset/BIR and PBA offset/BIR are read-only. */
	uint8_t a[4], d[4] = {0xff, 0xff, 0xff, 0xff};
	uint32_t ca = 0x80000000u | (uint32_t)f->dev.slot << 11 | (f->cap + 4);
	memcpy(a, &ca, 4);
	bus_access(&f->pio, PCI_CONFIG_ADDRESS, a, 4, true);
	bus_access(&f->pio, PCI_CONFIG_DATA, d, 4, true);
	assert_int_equal(cfg_rd(f, f->cap + 4, 4), TABLE_OFF);
	/* Wired: one eventfd and one MSI GSI per vector. */
	for (unsigned v = 0; v < NR_VEC; v++) {
		assert_true(f->dev.msix.efd[v] >= 0);
		assert_true(f->dev.msix.gsi[v] >= IRQ_FIRST_MSI_GSI);
	}
}

static void test_table(void **state)
{
	struct fix *f = *state;

	for (unsigned v = 0; v < NR_VEC; v++) {
		assert_int_equal(rd32(f, entry(v, 3)), 1); /* masked at reset */
		assert_int_equal(rd32(f, entry(v, 0)), 0);
	}
	wr32(f, entry(1, 0), 0xfee01003); /* bits 1:0 read 0 */
	assert_int_equal(rd32(f, entry(1, 0)), 0xfee01000);
	wr32(f, entry(1, 2), 0x4041);
	assert_int_equal(rd32(f, entry(1, 2)), 0x4041);
	wr32(f, entry(1, 3), 0xfffffffe); /* reserved bits read 0; unmasked */
	assert_int_equal(rd32(f, entry(1, 3)), 0);
	/* Qword to the address pair and to data + control. */
	uint64_t q = 0x00000001fee02000ULL;
	assert_true(bus_access(&f->mmio, f->bar + entry(2, 0), (uint8_t *)&q, 8, true));
	assert_int_equal(rd64(f, entry(2, 0)), q);
	q = 0x0000000100000033ULL;
	assert_true(bus_access(&f->mmio, f->bar + entry(2, 2), (uint8_t *)&q, 8, true));
	assert_int_equal(rd32(f, entry(2, 2)), 0x33);
	assert_int_equal(rd32(f, entry(2, 3)), 1);
	assert_int_equal(f->other_calls, 0);
}

static void test_bad_accesses(void **state)
{
	struct fix *f = *state;
	uint8_t b[8];

	/* Past the last entry: not MSI-X, the device handler sees it. */
	(void)rd32(f, entry(NR_VEC, 0));
	assert_int_equal(f->other_calls, 1);
	(void)rd32(f, PBA_OFF + 8);
	assert_int_equal(f->other_calls, 2);
	/* Unaligned or narrow inside the table: swallowed, reads 0, no state change. */
	assert_true(bus_access(&f->mmio, f->bar + entry(0, 0) + 2, b, 4, false));
	assert_int_equal(b[0] | b[1] | b[2] | b[3], 0);
	memset(b, 0, sizeof(b));
	assert_true(bus_access(&f->mmio, f->bar + entry(0, 3), b, 1, true));
	assert_true(bus_access(&f->mmio, f->bar + entry(0, 3), b, 2, true));
	assert_true(bus_access(&f->mmio, f->bar + entry(0, 1), b, 8, true)); /* qword at +4 */
	assert_int_equal(rd32(f, entry(0, 3)), 1);
	/* Straddling the table start from below. */
	assert_true(bus_access(&f->mmio, f->bar + TABLE_OFF - 4, b, 8, true));
	assert_int_equal(f->other_calls, 2);
	/* The PBA is read-only. */
	uint64_t ones = ~0ULL;
	assert_true(bus_access(&f->mmio, f->bar + PBA_OFF, (uint8_t *)&ones, 8, true));
	assert_int_equal(rd64(f, PBA_OFF), 0);
	/* Direct calls with extreme offsets. */
	assert_false(pci_msix_mmio(&f->dev, UINT64_MAX - 2, b, 4, false));
	assert_false(pci_msix_mmio(&f->dev, 0, b, 4, false));
	/* A device without MSI-X. */
	struct pci_device none;
	pci_device_init(&none, "none", 1, 2, 0, 0, 0);
	assert_false(pci_msix_mmio(&none, TABLE_OFF, b, 4, false));
	pci_msix_notify(&none, 0);
	pci_msix_notify(&f->dev, NR_VEC);
	pci_msix_notify(&f->dev, 0xffff);
}

static void test_notify_and_masking(void **state)
{
	struct fix *f = *state;

	for (unsigned v = 0; v < NR_VEC; v++)
		program(f, v, 0x40 + v);

	/* MSI-X disabled: nothing at all. */
	pci_msix_notify(&f->dev, 0);
	assert_int_equal(drain(f, 0), 0);
	assert_int_equal(rd64(f, PBA_OFF), 0);

	/* Enabled and function-masked (Linux's set-up state): pending. */
	msix_ctrl(f, PCI_MSIX_CTRL_ENABLE | PCI_MSIX_CTRL_MASKALL);
	wr32(f, entry(0, 3), 0);
	pci_msix_notify(&f->dev, 0);
	pci_msix_notify(&f->dev, 1); /* vector-masked too */
	assert_int_equal(drain(f, 0), 0);
	assert_int_equal(rd64(f, PBA_OFF), 0x3);
	assert_int_equal(rd32(f, PBA_OFF), 0x3);

	/* Function unmasked: vector 0 goes out, vector 1 stays pending. */
	msix_ctrl(f, PCI_MSIX_CTRL_ENABLE);
	assert_int_equal(drain(f, 0), 1);
	assert_int_equal(drain(f, 1), 0);
	assert_int_equal(rd64(f, PBA_OFF), 0x2);

	/* Unmasking vector 1 delivers it and clears its bit. */
	wr32(f, entry(1, 3), 0);
	assert_int_equal(drain(f, 1), 1);
	assert_int_equal(rd64(f, PBA_OFF), 0);

	/* Now a plain notify fires right away. */
	pci_msix_notify(&f->dev, 1);
	pci_msix_notify(&f->dev, 1);
	assert_int_equal(drain(f, 1), 2);

	/* Vector mask again: pending, not fired; masking twice changes nothing. */
	wr32(f, entry(1, 3), 1);
	wr32(f, entry(1, 3), 1);
	pci_msix_notify(&f->dev, 1);
	assert_int_equal(drain(f, 1), 0);
	assert_int_equal(rd64(f, PBA_OFF), 0x2);

	/* Disabling MSI-X keeps the pending bit but delivers nothing even when unmasked. */
	msix_ctrl(f, 0);
	wr32(f, entry(1, 3), 0);
	assert_int_equal(drain(f, 1), 0);
	pci_msix_notify(&f->dev, 1);
	assert_int_equal(drain(f, 1), 0);
	/* Re-enabling flushes it. */
	msix_ctrl(f, PCI_MSIX_CTRL_ENABLE);
	assert_int_equal(drain(f, 1), 1);
	assert_int_equal(rd64(f, PBA_OFF), 0);
	assert_int_equal(f->dev.msix.fired[1], 4);
}

static const struct irq_route *route_of(struct fix *f, unsigned v)
{
	return &f->irq.msi[f->dev.msix.gsi[v] - IRQ_FIRST_MSI_GSI];
}

static void test_routes(void **state)
{
	struct fix *f = *state;
	unsigned long pushes = f->irq.nr_pushes;

	/* Masked entries are not routed however they are written. */
	program(f, 2, 0x4022);
	assert_false(route_of(f, 2)->valid);
	assert_int_equal(f->irq.nr_pushes, pushes);

	/* Unmask: the route follows the entry, one push. */
	wr32(f, entry(2, 3), 0);
	assert_true(route_of(f, 2)->valid);
	assert_int_equal(route_of(f, 2)->msi_addr, MSI_ADDR | 2 << 12);
	assert_int_equal(route_of(f, 2)->msi_data, 0x4022);
	assert_int_equal(f->irq.nr_pushes, pushes + 1);
	assert_int_equal(f->irq.nr_routes, IRQ_NR_LEGACY_ROUTES + 1);

	/* Same values again: no push. A live data change on an unmasked entry: a push. */
	wr32(f, entry(2, 2), 0x4022);
	wr32(f, entry(2, 3), 0);
	assert_int_equal(f->irq.nr_pushes, pushes + 1);
	wr32(f, entry(2, 2), 0x4023);
	assert_int_equal(route_of(f, 2)->msi_data, 0x4023);
	assert_int_equal(f->irq.nr_pushes, pushes + 2);

	/* Masked rewrite: the old route stays until the unmask. */
	wr32(f, entry(2, 3), 1);
	wr32(f, entry(2, 0), MSI_ADDR | 0x3000);
	assert_int_equal(route_of(f, 2)->msi_addr, MSI_ADDR | 2 << 12);
	wr32(f, entry(2, 3), 0);
	assert_int_equal(route_of(f, 2)->msi_addr, MSI_ADDR | 0x3000);
}

struct race {
	struct fix *f;
	_Atomic bool stop;
	_Atomic unsigned long loops;
};

static void *notifier(void *arg)
{
	struct race *r = arg;
	while (!r->stop) {
		for (unsigned v = 0; v < NR_VEC; v++)
			pci_msix_notify(&r->f->dev, v);
		r->loops++;
	}
	return NULL;
}

/* vCPU-side mask/unmask churn against an event-loop-side notifier: nothing lost or stuck. */
static void test_concurrent(void **state)
{
	struct fix *f = *state;
	struct race r = {.f = f};
	pthread_t t;

	for (unsigned v = 0; v < NR_VEC; v++)
		program(f, v, 0x50 + v);
	msix_ctrl(f, PCI_MSIX_CTRL_ENABLE);
	assert_int_equal(pthread_create(&t, NULL, notifier, &r), 0);
	while (r.loops < 100)
		sched_yield();
	for (unsigned i = 0; i < 20000; i++) {
		unsigned v = i % NR_VEC;
		wr32(f, entry(v, 3), i & 1);
		if (i % 1000 == 0)
			msix_ctrl(f, (uint16_t)(PCI_MSIX_CTRL_ENABLE |
						((i / 1000) & 1 ? PCI_MSIX_CTRL_MASKALL : 0)));
	}
	unsigned long seen = r.loops;
	while (r.loops < seen + 100)
		sched_yield();
	r.stop = true;
	pthread_join(t, NULL);
	/* Unmask everything: whatever was pending is delivered, the PBA ends empty. */
	msix_ctrl(f, PCI_MSIX_CTRL_ENABLE);
	for (unsigned v = 0; v < NR_VEC; v++)
		wr32(f, entry(v, 3), 0);
	assert_int_equal(rd64(f, PBA_OFF), 0);
	for (unsigned v = 0; v < NR_VEC; v++)
		assert_true(drain(f, v) > 0);
}

static void test_router(void **state)
{
	struct irq_router r;
	uint32_t gsi, first;
	(void)state;

	assert_int_equal(irq_router_init(&r, -1), 0);
	assert_int_equal(r.nr_routes, IRQ_NR_LEGACY_ROUTES);
	assert_int_equal(irq_msi_update(&r, 5, MSI_ADDR, 0), -EINVAL); /* legacy GSI */
	assert_int_equal(irq_msi_update(&r, IRQ_FIRST_MSI_GSI, MSI_ADDR, 0), -EINVAL); /* free */
	assert_int_equal(irq_msi_update(&r, 100000, MSI_ADDR, 0), -EINVAL);
	assert_int_equal(irq_msi_alloc(&r, &first), 0);
	assert_int_equal(first, IRQ_FIRST_MSI_GSI);
	unsigned n = 1;
	while (irq_msi_alloc(&r, &gsi) == 0) {
		assert_true(gsi < IRQ_MAX_ROUTES);
		n++;
	}
	assert_int_equal(n, IRQ_MAX_MSI);
	/* Every GSI routed: the table is full but within bounds. */
	for (uint32_t g = IRQ_FIRST_MSI_GSI; g < IRQ_FIRST_MSI_GSI + IRQ_MAX_MSI; g++)
		assert_int_equal(irq_msi_update(&r, g, MSI_ADDR, g), 0);
	assert_int_equal(r.nr_routes, IRQ_MAX_ROUTES);
	irq_msi_free(&r, first);
	assert_int_equal(r.nr_routes, IRQ_MAX_ROUTES - 1);
	irq_msi_free(&r, 3); /* not an MSI GSI */
	assert_int_equal(irq_msi_alloc(&r, &gsi), 0);
	assert_int_equal(gsi, first);
	assert_int_equal(irq_irqfd_assign(-1, 0, gsi), 0);
	irq_router_destroy(&r);
	irq_router_destroy(&r); /* idempotent */
}

/* The real ioctls, when this host has KVM: the table must be one KVM accepts. */
static void test_router_kvm(void **state)
{
	(void)state;
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0) {
		print_message("/dev/kvm not available: skipping\n");
		skip();
	}
	int vm = ioctl(kvm, KVM_CREATE_VM, 0);
	assert_true(vm >= 0);
	assert_int_equal(ioctl(vm, KVM_CREATE_IRQCHIP, 0), 0);

	struct irq_router r;
	uint32_t gsi;
	assert_int_equal(irq_router_init(&r, vm), 0);
	assert_int_equal(irq_msi_alloc(&r, &gsi), 0);
	int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	assert_true(efd >= 0);
	assert_int_equal(irq_irqfd_assign(vm, efd, gsi), 0);
	assert_int_equal(irq_irqfd_assign(vm, efd, gsi), -EBUSY);
	assert_int_equal(irq_msi_update(&r, gsi, MSI_ADDR, 0x4030), 0);
	uint64_t one = 1;
	assert_int_equal(write(efd, &one, 8), 8); /* goes to a vCPU-less VM: just accepted */
	assert_int_equal(irq_irqfd_deassign(vm, efd, gsi), 0);

	/* A whole bus with a device, wired to the real VM. */
	struct bus pio, mmio;
	struct guest_mem mem;
	struct pci_bus pb;
	struct pci_device d;
	struct fix f = {0};
	bus_init(&pio, "pio");
	bus_init(&mmio, "mmio");
	assert_int_equal(guest_mem_layout(&mem, 64 * MiB), 0);
	assert_int_equal(pci_bus_init(&pb, &pio, &mmio, &r, vm, &mem), 0);
	pci_device_init(&d, "kvm", 0x1af4, 0x1041, 0x020000, 0x1af4, 1);
	assert_int_equal(pci_device_set_bar(&d, 0, 16 * KiB, false, bar_io, &f), 0);
	assert_int_equal(pci_device_add_msix(&d, 8, 0, 0, 0x1000), 0);
	assert_int_equal(pci_device_add(&pb, &d), 0);
	for (unsigned v = 0; v < 8; v++)
		assert_int_equal(irq_msi_update(&r, d.msix.gsi[v], MSI_ADDR, 0x40 + v), 0);
	pci_bus_destroy(&pb);
	bus_destroy(&pio);
	bus_destroy(&mmio);

	close(efd);
	irq_router_destroy(&r);
	close(vm);
	close(kvm);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_capability, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_table, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_accesses, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_notify_and_masking, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_routes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_concurrent, setup, teardown),
	    cmocka_unit_test(test_router),
	    cmocka_unit_test(test_router_kvm),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
