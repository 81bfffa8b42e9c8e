/* acpi.c: builds RSDP, XSDT, FADT (hardware-reduced), MADT and DSDT for an x86 microVM. */
#include "arch/x86/acpi.h"

#include <errno.h>
#include <string.h>

#include "arch/x86/aml.h"
#include "arch/x86/layout.h"
#include "devices/acpi_pm.h"
#include "devices/rtc.h"
#include "devices/serial.h"
#include "devices/vmgenid.h"

/*
 * Layout from the base address (LAYOUT_ACPI_START, in the BIOS area Linux also scans):
 *
 *   RSDP (16-byte aligned) -> XSDT -> FADT -> DSDT
 *                                  -> MADT
 *
 * There is no RSDT (the RSDP is revision 2 and points at the XSDT only) and no FACS: a
 * hardware-reduced platform has no global lock and no firmware waking vector.
 */

#define OEM_ID "KILN  "
#define OEM_TABLE_ID "KILNVM  "
#define OEM_REVISION 1
#define CREATOR_ID "KILN"
#define CREATOR_REVISION 1
#define HYPERVISOR_VENDOR_ID "KILN    "

/* FADT Flags (ACPI 6.5, table 5.10). */
#define FADT_F_PWR_BUTTON (1u << 4) /* no fixed power button */
#define FADT_F_SLP_BUTTON (1u << 5) /* no fixed sleep button */
#define FADT_F_RESET_REG_SUP (1u << 10)
#define FADT_F_HW_REDUCED_ACPI (1u << 20)

/* FADT IA-PC boot architecture flags (table 5.11). */
#define IAPC_LEGACY_DEVICES (1u << 0)
#define IAPC_8042 (1u << 1)
#define IAPC_VGA_NOT_PRESENT (1u << 2)
#define IAPC_MSI_NOT_SUPPORTED (1u << 3)
#define IAPC_CMOS_RTC_NOT_PRESENT (1u << 5)

/*
 * What Linux does with these (arch/x86/kernel/acpi/boot.c, acpi_parse_fadt(), which runs in
 * hardware-reduced mode too):
 * - LEGACY_DEVICES only gates PnP BIOS probing; set, since COM1 and the RTC are ISA-style.
 * - 8042 clear: Linux then skips probing the PS/2 controller ("PNP: No PS/2 controller found")
 *   instead of poking a keyboard a microVM does not have, and whose IRQ 1 is not even mapped
 *   with the null legacy PIC Linux uses in hardware-reduced mode. kiln's i8042 still answers
 *   at 0x60/0x64, so the 0xFE reset (reboot=k) keeps working; reboot=acpi, the default, uses
 *   RESET_REG below.
 * - VGA_NOT_PRESENT set: no VGA, so vgacon and friends do not probe legacy VGA memory.
 * - CMOS_RTC_NOT_PRESENT clear: the MC146818 at 0x70 is real (and declared in the DSDT).
 * - MSI_NOT_SUPPORTED clear: virtio-pci uses MSI-X.
 */
#define FADT_IAPC_FLAGS (IAPC_LEGACY_DEVICES | IAPC_VGA_NOT_PRESENT)
#define FADT_FLAGS                                                                                 \
	(FADT_F_HW_REDUCED_ACPI | FADT_F_RESET_REG_SUP | FADT_F_PWR_BUTTON | FADT_F_SLP_BUTTON)

/* MADT (sec. 5.2.12). */
#define MADT_PCAT_COMPAT (1u << 0)
#define MADT_TYPE_LAPIC 0
#define MADT_TYPE_IOAPIC 1
#define MADT_TYPE_ISO 2
#define MADT_TYPE_LAPIC_NMI 4
#define MADT_TYPE_X2APIC 9
#define MADT_TYPE_X2APIC_NMI 10
#define MADT_LAPIC_ENABLED 1u
#define MADT_POLARITY_HIGH 0x1
#define MADT_TRIGGER_EDGE (0x1 << 2)
#define MADT_ALL_CPUS_UID8 0xff
#define MADT_ALL_CPUS_UID32 0xffffffffu
#define MADT_MAX_XAPIC_ID 254 /* 0xff is the xAPIC broadcast ID: above, x2APIC entries */

/*
 * IOAPIC ID 0: the ID register of KVM's in-kernel IOAPIC resets to 0, and since the xAPIC
 * IOAPIC IDs live in their own namespace (Linux x86_64 only wants them unique among IOAPICs).
 */
#define IOAPIC_ID 0

#define GAS_SYSTEM_IO 1
#define GAS_ACCESS_BYTE 1

#define TABLE_ALIGN 8
#define RSDP_ALIGN 16

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "ACPI tables are little-endian");

struct acpi_header {
	char signature[4];
	uint32_t length;
	uint8_t revision;
	uint8_t checksum;
	char oem_id[6];
	char oem_table_id[8];
	uint32_t oem_revision;
	char creator_id[4];
	uint32_t creator_revision;
} __attribute__((packed));
static_assert(sizeof(struct acpi_header) == 36, "ACPI table header");

struct acpi_rsdp {
	char signature[8];
	uint8_t checksum; /* first 20 bytes */
	char oem_id[6];
	uint8_t revision;
	uint32_t rsdt_address;
	uint32_t length;
	uint64_t xsdt_address;
	uint8_t extended_checksum; /* whole structure */
	uint8_t reserved[3];
} __attribute__((packed));
static_assert(sizeof(struct acpi_rsdp) == 36, "RSDP");
#define RSDP_V1_LEN 20

/* Generic Address Structure. */
struct acpi_gas {
	uint8_t space_id;
	uint8_t bit_width;
	uint8_t bit_offset;
	uint8_t access_size;
	uint64_t address;
} __attribute__((packed));
static_assert(sizeof(struct acpi_gas) == 12, "GAS");

struct acpi_fadt {
	struct acpi_header h;
	uint32_t firmware_ctrl;
	uint32_t dsdt;
	uint8_t reserved0;
	uint8_t preferred_pm_profile;
	uint16_t sci_int;
	uint32_t smi_cmd;
	uint8_t acpi_enable, acpi_disable, s4bios_req, pstate_cnt;
	uint32_t pm1a_evt_blk, pm1b_evt_blk, pm1a_cnt_blk, pm1b_cnt_blk, pm2_cnt_blk;
	uint32_t pm_tmr_blk, gpe0_blk, gpe1_blk;
	uint8_t pm1_evt_len, pm1_cnt_len, pm2_cnt_len, pm_tmr_len;
	uint8_t gpe0_blk_len, gpe1_blk_len, gpe1_base, cst_cnt;
	uint16_t p_lvl2_lat, p_lvl3_lat, flush_size, flush_stride;
	uint8_t duty_offset, duty_width, day_alrm, mon_alrm, century;
	uint16_t iapc_boot_arch;
	uint8_t reserved1;
	uint32_t flags;
	struct acpi_gas reset_reg;
	uint8_t reset_value;
	uint16_t arm_boot_arch;
	uint8_t minor_version;
	uint64_t x_firmware_ctrl;
	uint64_t x_dsdt;
	struct acpi_gas x_pm1a_evt_blk, x_pm1b_evt_blk, x_pm1a_cnt_blk, x_pm1b_cnt_blk;
	struct acpi_gas x_pm2_cnt_blk, x_pm_tmr_blk, x_gpe0_blk, x_gpe1_blk;
	struct acpi_gas sleep_control_reg;
	struct acpi_gas sleep_status_reg;
	char hypervisor_vendor_id[8];
} __attribute__((packed));
static_assert(sizeof(struct acpi_fadt) == 276, "FADT (ACPI 6.x)");
static_assert(offsetof(struct acpi_fadt, flags) == 112, "FADT flags");
static_assert(offsetof(struct acpi_fadt, reset_reg) == 116, "FADT RESET_REG");
static_assert(offsetof(struct acpi_fadt, x_dsdt) == 140, "FADT X_DSDT");
static_assert(offsetof(struct acpi_fadt, sleep_control_reg) == 244, "FADT SLEEP_CONTROL_REG");

struct acpi_madt {
	struct acpi_header h;
	uint32_t lapic_address;
	uint32_t flags;
} __attribute__((packed));
static_assert(sizeof(struct acpi_madt) == 44, "MADT");

struct madt_lapic {
	uint8_t type, length, uid, apic_id;
	uint32_t flags;
} __attribute__((packed));
static_assert(sizeof(struct madt_lapic) == 8, "MADT Processor Local APIC");

struct madt_ioapic {
	uint8_t type, length, id, reserved;
	uint32_t address;
	uint32_t gsi_base;
} __attribute__((packed));
static_assert(sizeof(struct madt_ioapic) == 12, "MADT I/O APIC");

struct madt_iso {
	uint8_t type, length, bus, source;
	uint32_t gsi;
	uint16_t flags;
} __attribute__((packed));
static_assert(sizeof(struct madt_iso) == 10, "MADT Interrupt Source Override");

struct madt_lapic_nmi {
	uint8_t type, length, uid;
	uint16_t flags;
	uint8_t lint;
} __attribute__((packed));
static_assert(sizeof(struct madt_lapic_nmi) == 6, "MADT Local APIC NMI");

struct madt_x2apic {
	uint8_t type, length;
	uint16_t reserved;
	uint32_t x2apic_id;
	uint32_t flags;
	uint32_t uid;
} __attribute__((packed));
static_assert(sizeof(struct madt_x2apic) == 16, "MADT Processor Local x2APIC");

struct madt_x2apic_nmi {
	uint8_t type, length;
	uint16_t flags;
	uint32_t uid;
	uint8_t lint;
	uint8_t reserved[3];
} __attribute__((packed));
static_assert(sizeof(struct madt_x2apic_nmi) == 12, "MADT Local x2APIC NMI");

/* The tables the XSDT lists; the DSDT hangs off the FADT. */
enum { XSDT_FADT, XSDT_MADT, XSDT_NR };

/* A bump allocator over the output buffer, which stands for guest memory at base. */
struct out {
	uint8_t *buf;
	size_t cap, used;
	gpa_t base;
};

/* Zeroed room for size bytes at a guest address aligned to align; NULL if it does not fit. */
static uint8_t *place(struct out *o, size_t size, size_t align, gpa_t *gpa)
{
	size_t pad = (size_t)(ALIGN_UP(o->base + o->used, align) - (o->base + o->used));
	size_t start;

	if (pad > o->cap - o->used || size > o->cap - o->used - pad)
		return NULL;
	start = o->used + pad;
	memset(o->buf + o->used, 0, pad + size);
	o->used = start + size;
	*gpa = o->base + start;
	return o->buf + start;
}

static uint8_t checksum(const uint8_t *p, size_t n)
{
	uint8_t sum = 0;

	while (n--)
		sum = (uint8_t)(sum + *p++);
	return (uint8_t)-sum;
}

static void header_init(struct acpi_header *h, const char sig[4], uint32_t length, uint8_t rev)
{
	memcpy(h->signature, sig, sizeof(h->signature));
	h->length = length;
	h->revision = rev;
	h->checksum = 0;
	memcpy(h->oem_id, OEM_ID, sizeof(h->oem_id));
	memcpy(h->oem_table_id, OEM_TABLE_ID, sizeof(h->oem_table_id));
	h->oem_revision = OEM_REVISION;
	memcpy(h->creator_id, CREATOR_ID, sizeof(h->creator_id));
	h->creator_revision = CREATOR_REVISION;
}

/* Fix the checksum of the table at p, whose header holds its length. */
static void table_seal(uint8_t *p)
{
	struct acpi_header h;

	memcpy(&h, p, sizeof(h));
	p[offsetof(struct acpi_header, checksum)] = 0;
	p[offsetof(struct acpi_header, checksum)] = checksum(p, h.length);
}

static struct acpi_gas gas_io8(uint16_t port)
{
	return (struct acpi_gas){.space_id = GAS_SYSTEM_IO,
				 .bit_width = 8,
				 .bit_offset = 0,
				 .access_size = GAS_ACCESS_BYTE,
				 .address = port};
}

/* DSDT body. */
static void dsdt_aml(struct aml *a, const struct acpi_config *cfg)
{
	unsigned depth;

	/* \_S5_: SLP_TYPa (written to SLEEP_CONTROL_REG), SLP_TYPb, two reserved. */
	aml_name(a, "\\_S5_");
	aml_package_begin(a);
	aml_integer(a, ACPI_PM_S5_SLP_TYP);
	aml_integer(a, 0);
	aml_integer(a, 0);
	aml_integer(a, 0);
	aml_end(a);

	aml_scope_begin(a, "\\_SB_");

	/* COM1 for 8250_pnp. An extended Interrupt() descriptor, because in hardware-reduced mode
	 * Linux has no legacy PIC and maps an ISA IRQ only when a _CRS hands it over as a GSI. */
	aml_device_begin(a, "COM1");
	aml_name_eisaid(a, "_HID", "PNP0501");
	aml_name_int(a, "_UID", 0);
	aml_name(a, "_CRS");
	aml_restemplate_begin(a);
	aml_res_io(a, SERIAL_COM1_BASE, SERIAL_COM1_BASE, 1, SERIAL_NR_PORTS);
	aml_res_interrupt(a, AML_IRQ_CONSUMER | AML_IRQ_EDGE, SERIAL_COM1_IRQ);
	aml_end(a);
	aml_end(a);

	/* The CMOS RTC, so rtc_cmos binds through PnP. Without it Linux registers its fallback
	 * platform device with IRQ 8, which has no mapping in hardware-reduced mode, and the probe
	 * fails. No IRQ here: kiln's RTC raises none, so Linux runs it without alarms. */
	aml_device_begin(a, "RTC_");
	aml_name_eisaid(a, "_HID", "PNP0B00");
	aml_name(a, "_CRS");
	aml_restemplate_begin(a);
	aml_res_io(a, RTC_PORT_BASE, RTC_PORT_BASE, 1, 2);
	aml_end(a);
	aml_end(a);

	if (cfg->vmgenid)
		vmgenid_dsdt(a);

	if (cfg->dsdt_sb_hook) {
		depth = aml_depth(a);
		cfg->dsdt_sb_hook(a, cfg->dsdt_sb_opaque);
		if (aml_depth(a) != depth)
			aml_fail(a, -EINVAL); /* the hook left an object open (or closed \_SB_) */
	}
	aml_end(a);
}

static size_t madt_size(unsigned nr_cpus)
{
	unsigned nr_xapic = MIN(nr_cpus, MADT_MAX_XAPIC_ID + 1u);
	unsigned nr_x2apic = nr_cpus - nr_xapic;
	size_t size = sizeof(struct acpi_madt);

	size += (size_t)nr_xapic * sizeof(struct madt_lapic);
	size += (size_t)nr_x2apic * sizeof(struct madt_x2apic);
	size +=
	    sizeof(struct madt_ioapic) + sizeof(struct madt_iso) + sizeof(struct madt_lapic_nmi);
	if (nr_x2apic)
		size += sizeof(struct madt_x2apic_nmi);
	return size;
}

#define EMIT(p, entry)                                                                             \
	do {                                                                                       \
		memcpy((p), &(entry), sizeof(entry));                                              \
		(p) += sizeof(entry);                                                              \
	} while (0)

static void madt_fill(uint8_t *t, size_t size, unsigned nr_cpus)
{
	struct acpi_madt madt = {.lapic_address = (uint32_t)LAYOUT_LAPIC,
				 .flags = MADT_PCAT_COMPAT};
	uint8_t *p = t + sizeof(madt);

	header_init(&madt.h, "APIC", (uint32_t)size, 5);
	memcpy(t, &madt, sizeof(madt));

	/* One enabled processor per vCPU: ACPI processor UID = APIC ID = index. */
	for (unsigned i = 0; i < nr_cpus; i++) {
		if (i <= MADT_MAX_XAPIC_ID) {
			struct madt_lapic e = {.type = MADT_TYPE_LAPIC,
					       .length = sizeof(e),
					       .uid = (uint8_t)i,
					       .apic_id = (uint8_t)i,
					       .flags = MADT_LAPIC_ENABLED};
			EMIT(p, e);
		} else {
			struct madt_x2apic e = {.type = MADT_TYPE_X2APIC,
						.length = sizeof(e),
						.x2apic_id = i,
						.flags = MADT_LAPIC_ENABLED,
						.uid = i};
			EMIT(p, e);
		}
	}

	struct madt_ioapic io = {.type = MADT_TYPE_IOAPIC,
				 .length = sizeof(io),
				 .id = IOAPIC_ID,
				 .address = (uint32_t)LAYOUT_IOAPIC,
				 .gsi_base = 0};
	EMIT(p, io);

	/*
	 * ISA IRQ 0 (PIT) is wired to IOAPIC pin 2, as on every PC and in KVM's irqchip. Edge and
	 * active-high are spelled out, not left "conforming": with no SCI (SCI_INT is 0 here)
	 * Linux treats an override of IRQ 0 as the SCI's and would default it to level/low.
	 *
	 * No override for IRQ 9: a hardware-reduced platform has no SCI, so nothing raises it and
	 * declaring it level-triggered would only keep Linux from using IRQ 9 as an ISA edge line.
	 */
	struct madt_iso iso = {.type = MADT_TYPE_ISO,
			       .length = sizeof(iso),
			       .bus = 0,
			       .source = 0,
			       .gsi = 2,
			       .flags = MADT_POLARITY_HIGH | MADT_TRIGGER_EDGE};
	EMIT(p, iso);

	/* NMI on LINT1 of every processor (edge, active-high: the PC wiring). */
	struct madt_lapic_nmi nmi = {.type = MADT_TYPE_LAPIC_NMI,
				     .length = sizeof(nmi),
				     .uid = MADT_ALL_CPUS_UID8,
				     .flags = MADT_POLARITY_HIGH | MADT_TRIGGER_EDGE,
				     .lint = 1};
	EMIT(p, nmi);
	if (nr_cpus > MADT_MAX_XAPIC_ID + 1u) {
		struct madt_x2apic_nmi x2nmi = {.type = MADT_TYPE_X2APIC_NMI,
						.length = sizeof(x2nmi),
						.flags = MADT_POLARITY_HIGH | MADT_TRIGGER_EDGE,
						.uid = MADT_ALL_CPUS_UID32,
						.lint = 1};
		EMIT(p, x2nmi);
	}
	assert((size_t)(p - t) == size);
	table_seal(t);
}

static void fadt_fill(uint8_t *t, gpa_t dsdt)
{
	struct acpi_fadt f;

	memset(&f, 0, sizeof(f));
	header_init(&f.h, "FACP", sizeof(f), 6);
	f.minor_version = 5;				  /* ACPI 6.5 */
	f.dsdt = dsdt <= UINT32_MAX ? (uint32_t)dsdt : 0; /* same value as X_DSDT, or 0 */
	f.x_dsdt = dsdt;
	f.flags = FADT_FLAGS;
	f.iapc_boot_arch = FADT_IAPC_FLAGS;
	f.century = RTC_CENTURY_INDEX; /* CMOS index of the century byte */
	f.reset_reg = gas_io8(ACPI_PM_RESET);
	f.reset_value = ACPI_PM_RESET_VALUE;
	f.sleep_control_reg = gas_io8(ACPI_PM_SLEEP_CONTROL);
	f.sleep_status_reg = gas_io8(ACPI_PM_SLEEP_STATUS);
	memcpy(f.hypervisor_vendor_id, HYPERVISOR_VENDOR_ID, sizeof(f.hypervisor_vendor_id));
	/* Everything else stays 0: no SCI, SMI command port, PM1/PM2/GPE blocks or PM timer, as
	 * the hardware-reduced model requires (sec. 4.1). */
	memcpy(t, &f, sizeof(f));
	table_seal(t);
}

static void xsdt_fill(uint8_t *t, const gpa_t entries[XSDT_NR])
{
	struct acpi_header h;

	header_init(&h, "XSDT", sizeof(h) + XSDT_NR * sizeof(uint64_t), 1);
	memcpy(t, &h, sizeof(h));
	memcpy(t + sizeof(h), entries, XSDT_NR * sizeof(uint64_t));
	table_seal(t);
}

static void rsdp_fill(uint8_t *t, gpa_t xsdt)
{
	struct acpi_rsdp r;

	memset(&r, 0, sizeof(r));
	memcpy(r.signature, "RSD PTR ", sizeof(r.signature));
	memcpy(r.oem_id, OEM_ID, sizeof(r.oem_id));
	r.revision = 2;
	r.rsdt_address = 0;
	r.length = sizeof(r);
	r.xsdt_address = xsdt;
	r.checksum = checksum((const uint8_t *)&r, RSDP_V1_LEN);
	r.extended_checksum = checksum((const uint8_t *)&r, sizeof(r));
	memcpy(t, &r, sizeof(r));
}

long acpi_build_buf(uint8_t *buf, size_t len, gpa_t base_gpa, const struct acpi_config *cfg,
		    gpa_t *rsdp)
{
	struct out o = {.buf = buf, .cap = len, .used = 0, .base = base_gpa};
	struct acpi_header dh;
	uint8_t *rsdp_p, *xsdt_p, *fadt_p, *madt_p, *dsdt_p;
	gpa_t rsdp_gpa, xsdt_gpa, dsdt_gpa, entries[XSDT_NR];
	size_t madt_len, dsdt_len;
	struct aml a;
	long ret;
	int err;

	if (!cfg || !cfg->nr_cpus || !rsdp)
		return -EINVAL;

	aml_init(&a);
	dsdt_aml(&a, cfg);
	err = aml_finish(&a);
	if (err) {
		ret = err;
		goto out;
	}

	madt_len = madt_size(cfg->nr_cpus);
	dsdt_len = sizeof(dh) + aml_len(&a);
	ret = -ENOSPC;
	if (madt_len > UINT32_MAX || dsdt_len > UINT32_MAX)
		goto out;
	rsdp_p = place(&o, sizeof(struct acpi_rsdp), RSDP_ALIGN, &rsdp_gpa);
	if (!rsdp_p)
		goto out;
	xsdt_p = place(&o, sizeof(dh) + XSDT_NR * sizeof(uint64_t), TABLE_ALIGN, &xsdt_gpa);
	if (!xsdt_p)
		goto out;
	fadt_p = place(&o, sizeof(struct acpi_fadt), TABLE_ALIGN, &entries[XSDT_FADT]);
	if (!fadt_p)
		goto out;
	madt_p = place(&o, madt_len, TABLE_ALIGN, &entries[XSDT_MADT]);
	if (!madt_p)
		goto out;
	dsdt_p = place(&o, dsdt_len, TABLE_ALIGN, &dsdt_gpa);
	if (!dsdt_p)
		goto out;

	/* DSDT revision 2: integers are 64 bits. */
	header_init(&dh, "DSDT", (uint32_t)dsdt_len, 2);
	memcpy(dsdt_p, &dh, sizeof(dh));
	memcpy(dsdt_p + sizeof(dh), aml_data(&a), aml_len(&a));
	table_seal(dsdt_p);

	madt_fill(madt_p, madt_len, cfg->nr_cpus);
	fadt_fill(fadt_p, dsdt_gpa);
	xsdt_fill(xsdt_p, entries);
	rsdp_fill(rsdp_p, xsdt_gpa);

	*rsdp = rsdp_gpa;
	ret = (long)o.used;
out:
	aml_destroy(&a);
	return ret;
}

int acpi_build(struct guest_mem *m, const struct acpi_config *cfg, gpa_t *rsdp)
{
	const uint64_t len = LAYOUT_ACPI_END - LAYOUT_ACPI_START;
	uint8_t *hva;
	long ret;

	/* The whole window must be guest RAM before anything is written to it. */
	hva = gpa_to_hva(m, LAYOUT_ACPI_START, len);
	if (!hva)
		return -EFAULT;
	ret = acpi_build_buf(hva, len, LAYOUT_ACPI_START, cfg, rsdp);
	return ret < 0 ? (int)ret : 0;
}
