/* pci.c: PCI through config mechanism #1 as Linux probes it, and the DSDT's root bridge. */
#include "runtime.h"

const char guest_name[] = "pci";

#define CF8 0xcf8
#define CFC 0xcfc
#define HOST_BRIDGE_CLASS 0x0600
#define PNP0A08_EISAID 0x080ad041u /* EISAID("PNP0A08") as AML stores it */

static uint32_t conf1(unsigned bus, unsigned dev, unsigned fn, unsigned reg)
{
	return 0x80000000u | bus << 16 | dev << 11 | fn << 8 | (reg & 0xfc);
}

static uint32_t cfg_read32(unsigned bus, unsigned dev, unsigned fn, unsigned reg)
{
	outl(CF8, conf1(bus, dev, fn, reg));
	return inl(CFC);
}

/* arch/x86/pci/direct.c: pci_check_type1(). */
static void check_type1(void)
{
	outb(0xcfb, 0x01);
	uint32_t tmp = inl(CF8);
	outl(CF8, 0x80000000u);
	uint32_t back = inl(CF8);
	outl(CF8, tmp);
	if (back != 0x80000000u)
		fail("CONFIG_ADDRESS read back 0x%x after writing 0x80000000", back);
}

/* The host bridge, then every other slot/function of bus 0 (and bus 1 for good measure). */
static unsigned scan(void)
{
	unsigned devices = 0;

	outl(CF8, conf1(0, 0, 0, 0x08));
	uint16_t class = inw(CFC + 2);
	if (class != HOST_BRIDGE_CLASS)
		fail("00:00.0 class 0x%x, expected a host bridge (0x0600)", class);
	for (unsigned bus = 0; bus < 2; bus++) {
		for (unsigned dev = 0; dev < 32; dev++) {
			for (unsigned fn = 0; fn < 8; fn++) {
				uint32_t id = cfg_read32(bus, dev, fn, 0);
				if (id == 0xffffffffu)
					continue;
				if (bus != 0 || fn != 0)
					fail("%02x:%02x.%u answers (0x%08x): kiln has bus 0, "
					     "function 0 only",
					     bus, dev, fn, id);
				uint32_t cls = cfg_read32(0, dev, 0, 0x08) >> 8;
				uint8_t hdr = (uint8_t)(cfg_read32(0, dev, 0, 0x0c) >> 16);
				kprintf("pci: 00:%02x.0 %04x:%04x class %06x header %02x\n", dev,
					id & 0xffff, id >> 16, cls, hdr);
				if (hdr & 0x7f)
					fail("00:%02x.0 header type 0x%x, expected 0", dev, hdr);
				devices++;
			}
		}
	}
	return devices;
}

/* The host bridge has no BARs: sizing them reads 0. */
static void check_host_bridge_bars(void)
{
	for (unsigned reg = 0x10; reg < 0x28; reg += 4) {
		uint32_t old = cfg_read32(0, 0, 0, reg);
		outl(CF8, conf1(0, 0, 0, reg));
		outl(CFC, 0xffffffffu);
		uint32_t sz = inl(CFC);
		outl(CFC, old);
		if (sz != 0)
			fail("host bridge BAR at 0x%x sizes as 0x%x", reg, sz);
	}
}

/* \_SB.PCI0 with _HID PNP0A08 is in the DSDT. */
static void check_dsdt(void)
{
	struct fadt_info fadt;
	const char *err = acpi_scan(NULL, &fadt, false);
	if (err)
		fail("acpi: %s", err);
	const uint8_t *t = (const uint8_t *)fadt.dsdt;
	uint32_t len =
	    (uint32_t)t[4] | (uint32_t)t[5] << 8 | (uint32_t)t[6] << 16 | (uint32_t)t[7] << 24;
	bool name = false, hid = false;
	for (uint32_t i = 36; i + 4 <= len; i++) {
		name |= memcmp(t + i, "PCI0", 4) == 0;
		uint32_t v = (uint32_t)t[i] | (uint32_t)t[i + 1] << 8 | (uint32_t)t[i + 2] << 16 |
			     (uint32_t)t[i + 3] << 24;
		hid |= v == PNP0A08_EISAID;
	}
	if (!name || !hid)
		fail("DSDT has no PCI0 root bridge (name %d, PNP0A08 %d)", name, hid);
}

void guest_main(void)
{
	check_type1();
	unsigned n = scan();
	if (n < 1)
		fail("no PCI device found");
	check_host_bridge_bars();
	check_dsdt();
	kprintf("pci: %u device(s) on bus 0\n", n);
	pass("");
}
