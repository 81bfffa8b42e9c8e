/* test_acpi.c: ACPI tables parsed back independently (RSDP -> XSDT -> tables), iasl, ACPI PM. */
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
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "arch/x86/acpi.h"
#include "arch/x86/aml.h"
#include "arch/x86/layout.h"
#include "devices/acpi_pm.h"
#include "devices/vmgenid.h"
#include "vmm/memory.h"

#include "tools.h" /* after cmocka.h: it asserts */

#define ACPI_LEN (LAYOUT_ACPI_END - LAYOUT_ACPI_START)
#define HDR_LEN 36

/* The table image as the guest would see it: guest-physical base + bytes. */
struct img {
	const uint8_t *buf;
	size_t len;
	uint64_t base;
};

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

static uint32_t rd32(const uint8_t *p) { return (uint32_t)rd16(p) | (uint32_t)rd16(p + 2) << 16; }

static uint64_t rd64(const uint8_t *p) { return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32; }

static uint8_t sum8(const uint8_t *p, size_t n)
{
	uint8_t s = 0;

	while (n--)
		s = (uint8_t)(s + *p++);
	return s;
}

/* Bytes at a guest address, which must lie inside the image. */
static const uint8_t *at(const struct img *m, uint64_t gpa, size_t n)
{
	assert_true(gpa >= m->base);
	assert_true(gpa - m->base <= m->len);
	assert_true(n <= m->len - (gpa - m->base));
	return m->buf + (gpa - m->base);
}

/* A system description table at gpa: signature, sane length, checksum, OEM fields. */
static const uint8_t *table(const struct img *m, uint64_t gpa, const char *sig, uint8_t rev,
			    uint32_t *len)
{
	const uint8_t *t = at(m, gpa, HDR_LEN);

	assert_memory_equal(t, sig, 4);
	*len = rd32(t + 4);
	assert_true(*len >= HDR_LEN);
	t = at(m, gpa, *len);
	assert_int_equal(t[8], rev);
	assert_int_equal(sum8(t, *len), 0);
	assert_memory_equal(t + 10, "KILN  ", 6);
	assert_memory_equal(t + 16, "KILNVM  ", 8);
	assert_memory_equal(t + 28, "KILN", 4);
	assert_int_equal(gpa % 8, 0);
	return t;
}

/* Generic Address Structure: system I/O, 8-bit, offset 0, byte access, at port. */
static void check_gas_io8(const uint8_t *g, uint16_t port)
{
	assert_int_equal(g[0], 1);
	assert_int_equal(g[1], 8);
	assert_int_equal(g[2], 0);
	assert_int_equal(g[3], 1);
	assert_int_equal(rd64(g + 4), port);
}

static void check_fadt(const struct img *m, const uint8_t *f, uint32_t len, uint64_t *dsdt)
{
	uint32_t flags = rd32(f + 112);
	uint16_t iapc = rd16(f + 109);

	assert_int_equal(len, 276);
	assert_int_equal(f[131], 5);		    /* minor version: 6.5 */
	assert_true(flags & (1u << 20));	    /* HW_REDUCED_ACPI */
	assert_true(flags & (1u << 10));	    /* RESET_REG_SUP */
	assert_true(iapc & (1u << 2));		    /* VGA not present */
	assert_false(iapc & (1u << 5));		    /* the CMOS RTC is there */
	assert_false(iapc & (1u << 3));		    /* MSI works */
	assert_false(iapc & (1u << 1));		    /* 8042: see acpi.c */
	assert_int_equal(rd32(f + 36), 0);	    /* FIRMWARE_CTRL: no FACS */
	assert_int_equal(rd64(f + 132), 0);	    /* X_FIRMWARE_CTRL */
	assert_int_equal(rd16(f + 46), 0);	    /* no SCI */
	assert_int_equal(rd32(f + 48), 0);	    /* no SMI command port */
	for (unsigned off = 56; off < 88; off += 4) /* no PM1/PM2/PM timer/GPE blocks */
		assert_int_equal(rd32(f + off), 0);
	for (unsigned off = 148; off < 244; off++) /* nor their X_ versions */
		assert_int_equal(f[off], 0);
	check_gas_io8(f + 116, ACPI_PM_RESET);
	assert_int_equal(f[128], ACPI_PM_RESET_VALUE);
	check_gas_io8(f + 244, ACPI_PM_SLEEP_CONTROL);
	check_gas_io8(f + 256, ACPI_PM_SLEEP_STATUS);
	assert_memory_equal(f + 268, "KILN", 4);
	*dsdt = rd64(f + 140);
	assert_int_equal(rd32(f + 40), *dsdt); /* below 4 GiB: DSDT equals X_DSDT */
	(void)at(m, *dsdt, HDR_LEN);
}

static void check_madt(const uint8_t *t, uint32_t len, unsigned nr_cpus)
{
	unsigned n_lapic = 0, n_x2apic = 0, n_ioapic = 0, n_iso = 0, n_nmi = 0, n_x2nmi = 0;
	uint32_t off = 44;

	assert_int_equal(rd32(t + 36), LAYOUT_LAPIC);
	assert_int_equal(rd32(t + 40) & 1, 1); /* PCAT_COMPAT */
	while (off < len) {
		const uint8_t *e = t + off;

		assert_true(len - off >= 2);
		assert_true(e[1] >= 2 && e[1] <= len - off);
		switch (e[0]) {
		case 0: /* Processor Local APIC */
			assert_int_equal(e[1], 8);
			assert_int_equal(e[2], n_lapic);  /* UID */
			assert_int_equal(e[3], n_lapic);  /* APIC ID */
			assert_int_equal(rd32(e + 4), 1); /* enabled */
			n_lapic++;
			break;
		case 1: /* I/O APIC */
			assert_int_equal(e[1], 12);
			assert_true(e[2] < 0xff);
			assert_int_equal(rd32(e + 4), LAYOUT_IOAPIC);
			assert_int_equal(rd32(e + 8), 0);
			n_ioapic++;
			break;
		case 2: /* Interrupt Source Override: IRQ0 -> GSI2, edge, active high */
			assert_int_equal(e[1], 10);
			assert_int_equal(e[2], 0);
			assert_int_equal(e[3], 0);
			assert_int_equal(rd32(e + 4), 2);
			assert_int_equal(rd16(e + 8), 0x0005);
			n_iso++;
			break;
		case 4: /* Local APIC NMI: all processors, LINT1 */
			assert_int_equal(e[1], 6);
			assert_int_equal(e[2], 0xff);
			assert_int_equal(e[5], 1);
			n_nmi++;
			break;
		case 9: /* Processor Local x2APIC, for IDs above 254 */
			assert_int_equal(e[1], 16);
			assert_int_equal(rd32(e + 4), 255 + n_x2apic);
			assert_int_equal(rd32(e + 8), 1);
			assert_int_equal(rd32(e + 12), 255 + n_x2apic);
			n_x2apic++;
			break;
		case 10: /* Local x2APIC NMI */
			assert_int_equal(e[1], 12);
			assert_int_equal(rd32(e + 4), 0xffffffffu);
			assert_int_equal(e[8], 1);
			n_x2nmi++;
			break;
		default:
			fail_msg("unexpected MADT entry type %u", e[0]);
		}
		off += e[1];
	}
	assert_int_equal(off, len);
	assert_int_equal(n_lapic, nr_cpus < 255 ? nr_cpus : 255);
	assert_int_equal(n_x2apic, nr_cpus > 255 ? nr_cpus - 255 : 0);
	assert_int_equal(n_ioapic, 1);
	assert_int_equal(n_iso, 1);
	assert_int_equal(n_nmi, 1);
	assert_int_equal(n_x2nmi, nr_cpus > 255 ? 1 : 0);
}

/* PkgLength at p: value and how many bytes it took. */
static uint32_t pkglength(const uint8_t *p, unsigned *nbytes)
{
	unsigned n = (p[0] >> 6) + 1;
	uint32_t v;

	*nbytes = n;
	if (n == 1)
		return p[0] & 0x3f;
	v = p[0] & 0x0f;
	for (unsigned i = 1; i < n; i++)
		v |= (uint32_t)p[i] << (4 + 8 * (i - 1));
	return v;
}

static const uint8_t *find(const uint8_t *hay, size_t n, const void *needle, size_t m)
{
	return memmem(hay, n, needle, m);
}

#define FIND(hay, n, ...)                                                                          \
	find((hay), (n), (const uint8_t[]){__VA_ARGS__}, sizeof((const uint8_t[]){__VA_ARGS__}))

static void check_dsdt(const uint8_t *t, uint32_t len, bool hooked)
{
	const uint8_t *aml = t + HDR_LEN, *sb, *end = t + len;
	size_t n = len - HDR_LEN;
	unsigned pk;
	uint32_t sb_len;

	/* Name(\_S5_, Package() { 5, 0, 0, 0 }) opens the body. */
	static const uint8_t s5[] = {
	    0x08, 0x5c, '_', 'S', '5', '_', 0x12, 0x07, 0x04, 0x0a, ACPI_PM_S5_SLP_TYP,
	    0x00, 0x00, 0x00};
	assert_true(n > sizeof(s5));
	assert_memory_equal(aml, s5, sizeof(s5));

	/* Scope(\_SB_) follows and runs to the end of the table. */
	sb = aml + sizeof(s5);
	assert_int_equal(sb[0], 0x10);
	sb_len = pkglength(sb + 1, &pk);
	assert_memory_equal(sb + 1 + pk, "\\_SB_", 5);
	assert_ptr_equal(sb + 1 + sb_len, end);

	/* COM1: PNP0501, _UID 0, IO 0x3f8/8 and Interrupt 4 (edge, high, consumer). */
	assert_non_null(FIND(sb, (size_t)(end - sb), 0x5b, 0x82));
	assert_non_null(FIND(sb, (size_t)(end - sb), 'C', 'O', 'M', '1', 0x08, '_', 'H', 'I', 'D',
			     0x0c, 0x41, 0xd0, 0x05, 0x01, 0x08, '_', 'U', 'I', 'D', 0x00));
	assert_non_null(FIND(sb, (size_t)(end - sb), 0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x01, 0x08,
			     0x89, 0x06, 0x00, 0x03, 0x01, 0x04, 0x00, 0x00, 0x00, 0x79));
	/* RTC: PNP0B00 with IO 0x70/2. */
	assert_non_null(FIND(sb, (size_t)(end - sb), 'R', 'T', 'C', '_', 0x08, '_', 'H', 'I', 'D',
			     0x0c, 0x41, 0xd0, 0x0b, 0x00));
	assert_non_null(
	    FIND(sb, (size_t)(end - sb), 0x47, 0x01, 0x70, 0x00, 0x70, 0x00, 0x01, 0x02, 0x79));
	if (hooked)
		assert_non_null(FIND(sb, (size_t)(end - sb), 0x5b, 0x82));
	assert_true((FIND(sb, (size_t)(end - sb), 'H', 'O', 'O', 'K') != NULL) == hooked);
}

struct parsed {
	uint64_t fadt, madt, dsdt;
	uint32_t fadt_len, madt_len, dsdt_len;
};

/* Walk RSDP -> XSDT -> FADT/MADT, FADT -> DSDT, checking every table on the way. */
static void parse_all(const struct img *m, uint64_t rsdp, unsigned nr_cpus, bool hooked,
		      struct parsed *out)
{
	const uint8_t *r = at(m, rsdp, 36), *x, *t;
	uint32_t xlen, len;
	uint64_t xsdt;

	memset(out, 0, sizeof(*out));
	assert_int_equal(rsdp % 16, 0);
	assert_true(rsdp >= 0xe0000 && rsdp + 36 <= 0x100000); /* where a BIOS scan looks */
	assert_memory_equal(r, "RSD PTR ", 8);
	assert_int_equal(sum8(r, 20), 0);
	assert_memory_equal(r + 9, "KILN  ", 6);
	assert_int_equal(r[15], 2);
	assert_int_equal(rd32(r + 16), 0); /* no RSDT */
	assert_int_equal(rd32(r + 20), 36);
	assert_int_equal(sum8(r, 36), 0);
	xsdt = rd64(r + 24);

	x = table(m, xsdt, "XSDT", 1, &xlen);
	assert_int_equal((xlen - HDR_LEN) % 8, 0);
	assert_int_equal((xlen - HDR_LEN) / 8, 2);
	for (uint32_t off = HDR_LEN; off < xlen; off += 8) {
		uint64_t gpa = rd64(x + off);
		const uint8_t *sig = at(m, gpa, 4);

		if (!memcmp(sig, "FACP", 4)) {
			assert_int_equal(out->fadt, 0);
			out->fadt = gpa;
			t = table(m, gpa, "FACP", 6, &out->fadt_len);
			check_fadt(m, t, out->fadt_len, &out->dsdt);
		} else if (!memcmp(sig, "APIC", 4)) {
			assert_int_equal(out->madt, 0);
			out->madt = gpa;
			t = table(m, gpa, "APIC", 5, &out->madt_len);
			check_madt(t, out->madt_len, nr_cpus);
		} else {
			fail_msg("unexpected table %.4s in the XSDT", (const char *)sig);
		}
	}
	assert_int_not_equal(out->fadt, 0);
	assert_int_not_equal(out->madt, 0);
	t = table(m, out->dsdt, "DSDT", 2, &len);
	out->dsdt_len = len;
	check_dsdt(t, len, hooked);
}

/* A hook standing in for the PCI root bridge: a device with every descriptor kind. */
static void pci_hook(struct aml *a, void *opaque)
{
	int *calls = opaque;

	(*calls)++;
	aml_device_begin(a, "HOOK");
	aml_name_eisaid(a, "_HID", "PNP0A08");
	aml_name_eisaid(a, "_CID", "PNP0A03");
	aml_name_int(a, "_SEG", 0);
	aml_name_int(a, "_UID", 0);
	aml_name_str(a, "DESC", "kiln test");
	aml_name(a, "_CRS");
	aml_restemplate_begin(a);
	aml_res_word_bus_number(a, 0, 0xff);
	aml_res_io(a, 0xcf8, 0xcf8, 1, 8);
	aml_res_word_io(a, 0x0d00, 0xffff);
	aml_res_dword_memory(a, 0xc0000000, 0xfebfffff, AML_MEM_NONCACHEABLE, true);
	aml_res_qword_memory(a, 0x8000000000ULL, 0xffffffffffULL, AML_MEM_PREFETCHABLE, true);
	aml_res_interrupt(a, AML_IRQ_CONSUMER | AML_IRQ_ACTIVE_LOW | AML_IRQ_SHARED, 16);
	aml_end(a);
	aml_method_begin(a, "_STA", 0, false);
	aml_return(a);
	aml_integer(a, 0x0f);
	aml_end(a);
	aml_name(a, "_PRT");
	aml_package_begin(a);
	aml_package_begin(a);
	aml_integer(a, 0xffff);
	aml_integer(a, 0);
	aml_integer(a, 0);
	aml_integer(a, 16);
	aml_end(a);
	aml_end(a);
	aml_end(a);
}

static void build_and_parse(unsigned nr_cpus, bool hooked)
{
	uint8_t *buf = malloc(ACPI_LEN);
	int calls = 0;
	struct acpi_config cfg = {
	    .nr_cpus = nr_cpus, .dsdt_sb_hook = hooked ? pci_hook : NULL, .dsdt_sb_opaque = &calls};
	struct parsed p;
	gpa_t rsdp = 0;
	long used;

	assert_non_null(buf);
	memset(buf, 0xa5, ACPI_LEN); /* the builder must not rely on zeroed memory */
	used = acpi_build_buf(buf, ACPI_LEN, LAYOUT_ACPI_START, &cfg, &rsdp);
	assert_true(used > 0 && (size_t)used <= ACPI_LEN);
	assert_int_equal(calls, hooked ? 1 : 0);
	assert_int_equal(rsdp, LAYOUT_ACPI_START);
	/* Parse only what the builder says it used. */
	struct img m = {.buf = buf, .len = (size_t)used, .base = LAYOUT_ACPI_START};
	parse_all(&m, rsdp, nr_cpus, hooked, &p);
	free(buf);
}

static void test_tables_1cpu(void **state)
{
	(void)state;
	build_and_parse(1, false);
}

static void test_tables_4cpus(void **state)
{
	(void)state;
	build_and_parse(4, false);
}

static void test_tables_32cpus(void **state)
{
	(void)state;
	build_and_parse(32, false);
	build_and_parse(32, true);
}

static void test_tables_x2apic(void **state)
{
	(void)state;
	build_and_parse(255, false);
	build_and_parse(300, true);
}

static void test_too_small(void **state)
{
	struct acpi_config cfg = {.nr_cpus = 4};
	uint8_t *buf = malloc(ACPI_LEN);
	gpa_t rsdp = 0;
	long used;

	(void)state;
	assert_non_null(buf);
	used = acpi_build_buf(buf, ACPI_LEN, LAYOUT_ACPI_START, &cfg, &rsdp);
	assert_true(used > 0);
	assert_int_equal(acpi_build_buf(buf, (size_t)used - 1, LAYOUT_ACPI_START, &cfg, &rsdp),
			 -ENOSPC);
	assert_int_equal(acpi_build_buf(buf, 36, LAYOUT_ACPI_START, &cfg, &rsdp), -ENOSPC);
	assert_int_equal(acpi_build_buf(buf, 0, LAYOUT_ACPI_START, &cfg, &rsdp), -ENOSPC);
	assert_int_equal(acpi_build_buf(buf, (size_t)used, LAYOUT_ACPI_START, &cfg, &rsdp), used);
	/* Far too many CPUs for the window. */
	cfg.nr_cpus = 100000;
	assert_int_equal(acpi_build_buf(buf, ACPI_LEN, LAYOUT_ACPI_START, &cfg, &rsdp), -ENOSPC);
	free(buf);
}

/* VMGenID: the DSDT declares it (and its GED) only when asked; the device writes a random
 * ID at LAYOUT_VMGENID and, for a new generation, a different one and an edge on its GSI. */
struct edges {
	unsigned rises, falls, gsi;
	int level;
};

static void record_edge(void *opaque, unsigned gsi, int level)
{
	struct edges *e = opaque;

	e->gsi = gsi;
	if (level && !e->level)
		e->rises++;
	if (!level && e->level)
		e->falls++;
	e->level = level;
}

static bool dsdt_has(bool vmgenid, const char *what)
{
	struct acpi_config cfg = {.nr_cpus = 1, .vmgenid = vmgenid};
	uint8_t *buf = malloc(ACPI_LEN);
	struct parsed p;
	gpa_t rsdp;
	long used;
	bool found;

	assert_non_null(buf);
	used = acpi_build_buf(buf, ACPI_LEN, LAYOUT_ACPI_START, &cfg, &rsdp);
	assert_true(used > 0);
	struct img m = {.buf = buf, .len = (size_t)used, .base = LAYOUT_ACPI_START};
	parse_all(&m, rsdp, 1, false, &p);
	found = memmem(at(&m, p.dsdt, p.dsdt_len), p.dsdt_len, what, strlen(what)) != NULL;
	free(buf);
	return found;
}

static void test_vmgenid(void **state)
{
	struct guest_mem mem;
	struct vmgenid g;
	struct edges e = {0};
	uint8_t first[VMGENID_SIZE];
	(void)state;

	assert_true(dsdt_has(true, "VM_Gen_Counter"));
	assert_true(dsdt_has(true, "ACPI0013"));
	assert_false(dsdt_has(false, "VM_Gen_Counter"));
	assert_false(dsdt_has(false, "ACPI0013"));

	assert_int_equal(guest_mem_init(&mem, 4 << 20), 0);
	assert_int_equal(vmgenid_init(&g, &mem, (struct irq_line){.set = record_edge, .opaque = &e,
								  .gsi = VMGENID_GSI}),
			 0);
	const uint8_t *id = gpa_to_hva(&mem, LAYOUT_VMGENID, VMGENID_SIZE);
	assert_non_null(id);
	assert_memory_equal(id, g.id, VMGENID_SIZE);
	assert_memory_not_equal(id, (uint8_t[VMGENID_SIZE]){0}, VMGENID_SIZE);
	assert_int_equal(e.rises, 0); /* read at boot: no interrupt */
	memcpy(first, id, sizeof(first));

	assert_int_equal(vmgenid_new_generation(&g), 0);
	assert_memory_not_equal(id, first, VMGENID_SIZE);
	assert_memory_equal(id, g.id, VMGENID_SIZE);
	assert_int_equal(e.rises, 1);
	assert_int_equal(e.falls, 1);
	assert_int_equal(e.gsi, VMGENID_GSI);
	guest_mem_destroy(&mem);
}

static void open_hook(struct aml *a, void *opaque)
{
	(void)opaque;
	aml_device_begin(a, "OPEN"); /* never closed */
}

static void bad_name_hook(struct aml *a, void *opaque)
{
	(void)opaque;
	aml_name_int(a, "lower", 1);
}

static void test_bad_config(void **state)
{
	uint8_t buf[4096];
	gpa_t rsdp = 0;
	struct acpi_config cfg = {.nr_cpus = 0};

	(void)state;
	assert_int_equal(acpi_build_buf(buf, sizeof(buf), LAYOUT_ACPI_START, &cfg, &rsdp), -EINVAL);
	cfg.nr_cpus = 1;
	cfg.dsdt_sb_hook = open_hook;
	assert_int_equal(acpi_build_buf(buf, sizeof(buf), LAYOUT_ACPI_START, &cfg, &rsdp), -EINVAL);
	cfg.dsdt_sb_hook = bad_name_hook;
	assert_int_equal(acpi_build_buf(buf, sizeof(buf), LAYOUT_ACPI_START, &cfg, &rsdp), -EINVAL);
}

/* acpi_build() writes into guest RAM only when the whole window is RAM. */
static void test_acpi_build_guest_mem(void **state)
{
	struct guest_mem m;
	struct acpi_config cfg = {.nr_cpus = 2};
	uint8_t *ref = malloc(ACPI_LEN);
	gpa_t rsdp = 0, ref_rsdp = 0;
	long used;
	struct parsed p;

	(void)state;
	assert_non_null(ref);
	used = acpi_build_buf(ref, ACPI_LEN, LAYOUT_ACPI_START, &cfg, &ref_rsdp);
	assert_true(used > 0);

	assert_int_equal(guest_mem_init(&m, 2 * MiB), 0);
	assert_int_equal(acpi_build(&m, &cfg, &rsdp), 0);
	assert_int_equal(rsdp, ref_rsdp);
	const uint8_t *hva = gpa_to_hva(&m, LAYOUT_ACPI_START, ACPI_LEN);
	assert_non_null(hva);
	assert_memory_equal(hva, ref, (size_t)used); /* one code path: same bytes */
	struct img im = {.buf = hva, .len = ACPI_LEN, .base = LAYOUT_ACPI_START};
	parse_all(&im, rsdp, 2, false, &p);
	guest_mem_destroy(&m);

	/* RAM ends inside the window: nothing is written, -EFAULT. */
	assert_int_equal(guest_mem_init(&m, 0xf0000), 0);
	assert_int_equal(acpi_build(&m, &cfg, &rsdp), -EFAULT);
	hva = gpa_to_hva(&m, LAYOUT_ACPI_START, 0x1000);
	assert_non_null(hva);
	for (size_t i = 0; i < 0x1000; i++)
		assert_int_equal(hva[i], 0);
	guest_mem_destroy(&m);

	/* Layout without a mapping. */
	assert_int_equal(guest_mem_layout(&m, 2 * MiB), 0);
	assert_int_equal(acpi_build(&m, &cfg, &rsdp), -EFAULT);
	free(ref);
}

/*
 * iasl, when installed (package acpica-tools): every table but the RSDP (which iasl 2020 cannot
 * read back from a file, even its own) must disassemble without complaint, and the listing must
 * recompile (optimizations off) to the very bytes we built; for the DSDT, all but the EndTag
 * checksums, which iasl leaves 0. When acpiexec is installed too, ACPICA (the interpreter Linux
 * runs) loads the tables and evaluates \_S5_ and COM1's _CRS.
 */

static void write_file(const char *dir, const char *name, const uint8_t *p, size_t n)
{
	char *path;
	FILE *f;

	assert_true(asprintf(&path, "%s/%s", dir, name) > 0);
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(p, 1, n, f), n);
	assert_int_equal(fclose(f), 0);
	free(path);
}

static void tool_failed(const char *dir, const char *what)
{
	char *log = slurp(dir, TOOL_LOG, NULL);

	print_error("%s:\n%s\n", what, log ? log : "(no output)");
	free(log);
	fail_msg("%s (files kept in %s)", what, dir);
}

/* Disassemble name.dat, check the listing, recompile it, compare with what we built. */
static void iasl_check(const char *iasl, const char *dir, const char *name, const uint8_t *t,
		       size_t len, bool aml)
{
	char dat[16], dsl[16], out[16];
	char *text, *bin;
	size_t n = 0;

	snprintf(dat, sizeof(dat), "%s.dat", name);
	snprintf(dsl, sizeof(dsl), "%s.dsl", name);
	snprintf(out, sizeof(out), "%s.aml", name);
	write_file(dir, dat, t, len);
	if (run_tool(dir, (char *const[]){(char *)iasl, "-d", dat, NULL}) != 0)
		tool_failed(dir, "iasl -d failed");
	text = slurp(dir, dsl, NULL);
	assert_non_null(text);
	if (strstr(text, "Incorrect") || strstr(text, "Invalid") || strstr(text, "****") ||
	    strstr(text, "Unknown")) {
		print_error("%s\n", text);
		free(text);
		fail_msg("iasl flagged %s (files kept in %s)", dat, dir);
	}
	free(text);
	/* -oa: no optimizations, so the AML keeps our encoding; -ve: errors only. */
	if (run_tool(dir, (char *const[]){(char *)iasl, "-oa", "-ve", dsl, NULL}) != 0)
		tool_failed(dir, "iasl could not recompile its listing");
	bin = slurp(dir, out, &n);
	assert_non_null(bin);
	assert_int_equal(n, len);
	for (size_t i = HDR_LEN; i < len; i++) {
		uint8_t want = t[i], got = (uint8_t)bin[i];

		if (want == got || (aml && t[i - 1] == 0x79 && got == 0))
			continue;
		fail_msg("%s: byte %zu is %#x, iasl rebuilt %#x", name, i, want, got);
	}
	free(bin);
}

static void acpiexec_check(const char *dir)
{
	char *acpiexec = find_in_path("acpiexec");
	char *log;

	if (!acpiexec) {
		print_message("acpiexec not on PATH: not loading the tables into ACPICA\n");
		return;
	}
	if (run_tool(dir,
		     (char *const[]){acpiexec, "-b", "evaluate \\_S5_; evaluate \\_SB.COM1._CRS",
				     "facp.dat", "apic.dat", "dsdt.dat", NULL}) != 0)
		tool_failed(dir, "acpiexec failed");
	log = slurp(dir, TOOL_LOG, NULL);
	assert_non_null(log);
	if (strstr(log, "Error") || strstr(log, "Exception") || strstr(log, "Warning") ||
	    !strstr(log, "[Integer] = 0000000000000005") ||
	    !strstr(log, "47 01 F8 03 F8 03 01 08 89 06 00 03 01 04 00 00")) {
		free(log);
		tool_failed(dir, "acpiexec did not evaluate the DSDT as expected");
	}
	free(log);
	free(acpiexec);
}

static void remove_dir(const char *dir)
{
	static const char *const names[] = {"xsdt", "facp", "apic", "dsdt"};
	static const char *const exts[] = {".dat", ".dsl", ".aml"};
	char *path;

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		for (size_t j = 0; j < sizeof(exts) / sizeof(exts[0]); j++) {
			assert_true(asprintf(&path, "%s/%s%s", dir, names[i], exts[j]) > 0);
			unlink(path);
			free(path);
		}
	}
	assert_true(asprintf(&path, "%s/%s", dir, TOOL_LOG) > 0);
	unlink(path);
	free(path);
	assert_int_equal(rmdir(dir), 0);
}

static void test_iasl(void **state)
{
	char *iasl = find_in_path("iasl");
	char dir[] = "/tmp/kiln-acpi-XXXXXX";
	uint8_t *buf;
	int calls = 0;
	struct acpi_config cfg = {.nr_cpus = 4, .dsdt_sb_hook = pci_hook, .dsdt_sb_opaque = &calls,
				  .vmgenid = true};
	struct parsed p;
	gpa_t rsdp;
	uint64_t xsdt;
	long used;

	(void)state;
	if (!iasl) {
		print_message("iasl not on PATH (package acpica-tools): skipping\n");
		skip();
	}
	buf = malloc(ACPI_LEN);
	assert_non_null(buf);
	used = acpi_build_buf(buf, ACPI_LEN, LAYOUT_ACPI_START, &cfg, &rsdp);
	assert_true(used > 0);
	struct img m = {.buf = buf, .len = (size_t)used, .base = LAYOUT_ACPI_START};
	parse_all(&m, rsdp, 4, true, &p);
	xsdt = rd64(at(&m, rsdp, 36) + 24);

	assert_non_null(mkdtemp(dir));
	iasl_check(iasl, dir, "xsdt", at(&m, xsdt, HDR_LEN + 16), HDR_LEN + 16, false);
	iasl_check(iasl, dir, "facp", at(&m, p.fadt, p.fadt_len), p.fadt_len, false);
	iasl_check(iasl, dir, "apic", at(&m, p.madt, p.madt_len), p.madt_len, false);
	iasl_check(iasl, dir, "dsdt", at(&m, p.dsdt, p.dsdt_len), p.dsdt_len, true);
	acpiexec_check(dir);
	remove_dir(dir);
	free(buf);
	free(iasl);
}

/* ACPI PM registers with a fake stopper. */

struct stops {
	enum vm_stop_reason last;
	unsigned n;
};

static void record_stop(void *opaque, enum vm_stop_reason why)
{
	struct stops *s = opaque;

	s->last = why;
	s->n++;
}

static void pm_write(struct acpi_pm *pm, uint16_t port, uint8_t v)
{
	acpi_pm_io(pm, port - ACPI_PM_PORT_BASE, &v, 1, true);
}

static uint8_t pm_read(struct acpi_pm *pm, uint16_t port)
{
	uint8_t v = 0xee;

	acpi_pm_io(pm, port - ACPI_PM_PORT_BASE, &v, 1, false);
	return v;
}

#define SLP_EN 0x20
#define SLP_TYP(n) ((n) << 2)

static void test_pm_poweroff(void **state)
{
	struct stops s = {0};
	struct acpi_pm pm;

	(void)state;
	acpi_pm_init(&pm, (struct vm_stopper){.request = record_stop, .opaque = &s});
	/* What Linux does for S5: clear WAK_STS, then SLP_TYP | SLP_EN. */
	pm_write(&pm, ACPI_PM_SLEEP_STATUS, 0x80);
	pm_write(&pm, ACPI_PM_SLEEP_CONTROL, SLP_TYP(ACPI_PM_S5_SLP_TYP));
	assert_int_equal(s.n, 0); /* no SLP_EN, no transition */
	pm_write(&pm, ACPI_PM_SLEEP_CONTROL, SLP_TYP(ACPI_PM_S5_SLP_TYP) | SLP_EN);
	assert_int_equal(s.n, 1);
	assert_int_equal(s.last, VM_STOP_POWEROFF);
	assert_int_equal(pm_read(&pm, ACPI_PM_SLEEP_STATUS), 0); /* still asleep */
	assert_int_equal(pm_read(&pm, ACPI_PM_SLEEP_CONTROL), 0);
}

static void test_pm_other_sleep_states(void **state)
{
	struct stops s = {0};
	struct acpi_pm pm;

	(void)state;
	acpi_pm_init(&pm, (struct vm_stopper){.request = record_stop, .opaque = &s});
	assert_int_equal(pm_read(&pm, ACPI_PM_SLEEP_STATUS), 0);
	for (unsigned typ = 0; typ < 8; typ++) {
		if (typ == ACPI_PM_S5_SLP_TYP)
			continue;
		pm_write(&pm, ACPI_PM_SLEEP_CONTROL, (uint8_t)(SLP_TYP(typ) | SLP_EN));
		assert_int_equal(s.n, 0);
		/* "Woke" at once; WAK_STS is write-1-to-clear. */
		assert_int_equal(pm_read(&pm, ACPI_PM_SLEEP_STATUS), 0x80);
		pm_write(&pm, ACPI_PM_SLEEP_STATUS, 0x7f);
		assert_int_equal(pm_read(&pm, ACPI_PM_SLEEP_STATUS), 0x80);
		pm_write(&pm, ACPI_PM_SLEEP_STATUS, 0x80);
		assert_int_equal(pm_read(&pm, ACPI_PM_SLEEP_STATUS), 0);
	}
}

static void test_pm_reset(void **state)
{
	struct stops s = {0};
	struct acpi_pm pm;
	uint8_t wide[4] = {0xee, 0xee, 0xee, 0xee};

	(void)state;
	acpi_pm_init(&pm, (struct vm_stopper){.request = record_stop, .opaque = &s});
	for (unsigned v = 0; v < 256; v++)
		if (v != ACPI_PM_RESET_VALUE)
			pm_write(&pm, ACPI_PM_RESET, (uint8_t)v);
	assert_int_equal(s.n, 0);
	assert_int_equal(pm_read(&pm, ACPI_PM_RESET), 0);
	/* the spare port: reads 0, writes ignored */
	pm_write(&pm, ACPI_PM_PORT_BASE + 3, 0xff);
	pm_write(&pm, ACPI_PM_PORT_BASE + 3, ACPI_PM_RESET_VALUE);
	assert_int_equal(pm_read(&pm, ACPI_PM_PORT_BASE + 3), 0);
	assert_int_equal(s.n, 0);
	/* a 4-byte read covers all four registers */
	acpi_pm_io(&pm, 0, wide, 4, false);
	assert_memory_equal(wide, ((uint8_t[]){0, 0, 0, 0}), 4);
	pm_write(&pm, ACPI_PM_RESET, ACPI_PM_RESET_VALUE);
	assert_int_equal(s.n, 1);
	assert_int_equal(s.last, VM_STOP_RESET);
	/* a 2-byte write at the status register reaches the reset register as its high byte */
	acpi_pm_io(&pm, 1, (uint8_t[]){0x00, ACPI_PM_RESET_VALUE}, 2, true);
	assert_int_equal(s.n, 2);
	/* out-of-range offsets are harmless */
	acpi_pm_io(&pm, 1000, (uint8_t[]){0xff}, 1, true);
	assert_int_equal(s.n, 2);

	/* no stopper wired: nothing to call, nothing crashes */
	acpi_pm_init(&pm, (struct vm_stopper){0});
	pm_write(&pm, ACPI_PM_RESET, ACPI_PM_RESET_VALUE);
	pm_write(&pm, ACPI_PM_SLEEP_CONTROL, SLP_TYP(ACPI_PM_S5_SLP_TYP) | SLP_EN);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_tables_1cpu),
	    cmocka_unit_test(test_tables_4cpus),
	    cmocka_unit_test(test_tables_32cpus),
	    cmocka_unit_test(test_tables_x2apic),
	    cmocka_unit_test(test_too_small),
	    cmocka_unit_test(test_bad_config),
	    cmocka_unit_test(test_acpi_build_guest_mem),
	    cmocka_unit_test(test_iasl),
	    cmocka_unit_test(test_vmgenid),
	    cmocka_unit_test(test_pm_poweroff),
	    cmocka_unit_test(test_pm_other_sleep_states),
	    cmocka_unit_test(test_pm_reset),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
