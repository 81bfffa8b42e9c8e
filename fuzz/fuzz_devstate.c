/* fuzz_devstate.c: libFuzzer target: any bytes as a device's snapshot section, loaded into a
 * freshly made device on fake guest RAM. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../tests/unit/fake_driver.h"
#include "devices/acpi_pm.h"
#include "devices/i8042.h"
#include "devices/pci.h"
#include "devices/rtc.h"
#include "devices/serial.h"
#include "snapshot/state.h"
#include "util/log.h"
#include "vmm/bus.h"
#include "vmm/irq.h"

/*
 * Input: u8 which (mod 7), then the section.
 *
 *   0 serial   1 i8042   2 RTC   3 ACPI PM   4 PCI bus (host bridge)
 *   5 virtio-rng over PCI        6 virtio-console over PCI
 *
 * Oracles: a load that fails leaves the device saving exactly what it saved before; a load
 * that succeeds saves back exactly the bytes it was given (nothing half-applied, nothing
 * invented); then the device runs: registers are read, queues processed over RAM that holds
 * the rest of the input, and ASan watches every access.
 */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct fake_driver fdrv;
static bool ready;

struct machine {
	struct bus pio, mmio;
	struct irq_router irq;
	struct pci_bus pb;
	struct virtio_dev *d;
	struct virtio_pci *vp;
};

static void setup(void)
{
	if (fd_init(&fdrv))
		abort();
	log_set_level(LOG_ERROR); /* hostile sections are the point: keep output quiet */
	ready = true;
}

/* save(dev) into b; abort on failure (every device here is quiesced). */
#define SAVE(call, b)                                                                              \
	do {                                                                                       \
		snap_buf_init(b);                                                                  \
		if ((call) != 0)                                                                   \
			abort();                                                                   \
	} while (0)

static void same_or_abort(const struct snap_buf *a, const uint8_t *p, size_t n)
{
	if (a->len != n || (n && memcmp(a->data, p, n)))
		abort();
}

/* The outcome check shared by every device: before = the save before the load. */
static void check(int ret, const struct snap_buf *before, const struct snap_buf *after,
		  const uint8_t *in, size_t n, struct snap_cursor *c)
{
	char err[256];

	if (ret) {
		if (!c->bad || snap_cursor_end(c, err, sizeof(err)) != -EINVAL)
			abort();
		same_or_abort(after, before->data, before->len);
	} else {
		if (snap_cursor_end(c, err, sizeof(err)) != 0)
			abort();
		same_or_abort(after, in, n);
	}
}

static void run_legacy(unsigned which, const uint8_t *in, size_t n)
{
	struct serial s;
	struct i8042 k;
	struct rtc r;
	struct acpi_pm pm;
	struct snap_buf before, after;
	struct snap_cursor c;
	uint8_t v[8] = {0};
	int ret;

	serial_init(&s, NULL, (struct irq_line){0});
	i8042_init(&k, (struct vm_stopper){0});
	rtc_init(&r);
	acpi_pm_init(&pm, (struct vm_stopper){0});
	snap_cursor_init(&c, "fuzz", in, n);
	switch (which) {
	case 0:
		SAVE(serial_state_save(&s, &before), &before);
		ret = serial_state_load(&s, &c);
		SAVE(serial_state_save(&s, &after), &after);
		check(ret, &before, &after, in, n, &c);
		for (unsigned off = 0; off < SERIAL_NR_PORTS; off++)
			serial_io(&s, off, v, 1, false);
		for (unsigned i = 0; i < 20; i++)
			serial_io(&s, 0, v, 1, false);
		(void)serial_receive(&s, (const uint8_t *)"xyz", 3);
		break;
	case 1:
		SAVE(i8042_state_save(&k, &before), &before);
		ret = i8042_state_load(&k, &c);
		SAVE(i8042_state_save(&k, &after), &after);
		check(ret, &before, &after, in, n, &c);
		i8042_cmd_io(&k, 0, v, 1, false);
		i8042_data_io(&k, 0, v, 1, true);
		break;
	case 2:
		SAVE(rtc_state_save(&r, &before), &before);
		ret = rtc_state_load(&r, &c);
		SAVE(rtc_state_save(&r, &after), &after);
		check(ret, &before, &after, in, n, &c);
		rtc_io(&r, 1, v, 1, false);
		break;
	default:
		SAVE(acpi_pm_state_save(&pm, &before), &before);
		ret = acpi_pm_state_load(&pm, &c);
		SAVE(acpi_pm_state_save(&pm, &after), &after);
		check(ret, &before, &after, in, n, &c);
		acpi_pm_io(&pm, 1, v, 1, false);
		break;
	}
	snap_buf_free(&before);
	snap_buf_free(&after);
	serial_destroy(&s);
}

static void machine_init(struct machine *m, bool console)
{
	struct virtio_env env = {.mem = &fdrv.mem, .ev = NULL};
	char err[128];

	memset(m, 0, sizeof(*m));
	bus_init(&m->pio, "pio");
	bus_init(&m->mmio, "mmio");
	if (irq_router_init(&m->irq, -1) ||
	    pci_bus_init(&m->pb, &m->pio, &m->mmio, &m->irq, -1, &fdrv.mem))
		abort();
	if (console ? virtio_console_create(&env, -1, -1, &m->d, err, sizeof(err))
		    : virtio_rng_create(&env, &m->d, err, sizeof(err)))
		abort();
	if (virtio_pci_create(m->d, &m->pb, -1, &m->vp))
		abort();
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

static void run_pci(unsigned which, const uint8_t *in, size_t n)
{
	struct machine m;
	struct snap_buf before, after;
	struct snap_cursor c;
	int ret;

	machine_init(&m, which == 6);
	snap_cursor_init(&c, "fuzz", in, n);
	if (which == 4) {
		SAVE(pci_bus_state_save(&m.pb, &before), &before);
		ret = pci_bus_state_load(&m.pb, &c);
		SAVE(pci_bus_state_save(&m.pb, &after), &after);
	} else {
		SAVE(virtio_pci_state_save(m.vp, &before), &before);
		ret = virtio_pci_state_load(m.vp, &c);
		SAVE(virtio_pci_state_save(m.vp, &after), &after);
	}
	check(ret, &before, &after, in, n, &c);
	if (!ret && which != 4) {
		/* Run what was restored over RAM holding the input: rings, buffers, anything. */
		memset(fdrv.ram, 0, 64 * KiB);
		memcpy(fdrv.ram, in, MIN(n, (size_t)(64 * KiB)));
		for (unsigned q = 0; q < m.d->nr_queues; q++)
			virtio_dev_process(m.d, q);
		uint8_t v[4] = {0};
		gpa_t bar = virtio_pci_device(m.vp)->bars[0].addr;
		(void)bus_access(&m.mmio, bar + VIRTIO_PCI_ISR_OFF, v, 1, false);
		(void)bus_access(&m.mmio, bar + 20, v, 1, false);
	}
	snap_buf_free(&before);
	snap_buf_free(&after);
	machine_destroy(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!ready)
		setup();
	if (size < 1)
		return 0;
	unsigned which = data[0] % 7;
	if (which <= 3)
		run_legacy(which, data + 1, size - 1);
	else
		run_pci(which, data + 1, size - 1);
	return 0;
}
