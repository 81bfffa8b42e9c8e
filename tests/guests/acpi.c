/* acpi.c: guest-side ACPI check: find the RSDP, verify every checksum, parse MADT and FADT. */
#include "runtime.h"

#define SDT_HDR_LEN 36
#define TABLE_MAX_LEN (1u << 20)
#define IDENTITY_END 0x100000000ull

static uint8_t rd8(uint64_t a)
{
	/* opaque to the compiler: GCC 12 treats low constant addresses (0x40e) as null + offset */
	__asm__("" : "+r"(a));
	return *(const volatile uint8_t *)a;
}

static uint16_t rd16(uint64_t a) { return (uint16_t)(rd8(a) | rd8(a + 1) << 8); }

static uint32_t rd32(uint64_t a) { return rd16(a) | (uint32_t)rd16(a + 2) << 16; }

static uint64_t rd64(uint64_t a) { return rd32(a) | (uint64_t)rd32(a + 4) << 32; }

static uint8_t sum(uint64_t a, uint32_t len)
{
	uint8_t s = 0;

	while (len--)
		s = (uint8_t)(s + rd8(a++));
	return s;
}

static bool in_map(uint64_t a, uint64_t len)
{
	return a != 0 && a < IDENTITY_END && len <= IDENTITY_END - a;
}

static bool rsdp_valid(uint64_t a)
{
	if (!in_map(a, 36) || memcmp((const void *)a, "RSD PTR ", 8) != 0)
		return false;
	if (sum(a, 20) != 0)
		return false;
	if (rd8(a + 15) >= 2) {
		uint32_t len = rd32(a + 20);
		if (len < 36 || len > 4096 || !in_map(a, len) || sum(a, len) != 0)
			return false;
	}
	return true;
}

static uint64_t scan_rsdp(uint64_t start, uint64_t end)
{
	for (uint64_t a = start; a + 20 <= end; a += 16)
		if (rd32(a) == 0x20445352 /* "RSD " */ && rsdp_valid(a))
			return a;
	return 0;
}

/* Returns the RSDP address or 0; *why says where it came from or why it is missing. */
static uint64_t find_rsdp(const char **why)
{
	if (boot_entry == BOOT_ENTRY_PVH) {
		const struct hvm_start_info *si = (const void *)boot_info;
		if (!in_map(boot_info, sizeof(*si)) || si->magic != HVM_START_MAGIC) {
			*why = "bad hvm_start_info";
			return 0;
		}
		if (si->rsdp_paddr == 0) {
			*why = "hvm_start_info.rsdp_paddr is 0";
			return 0;
		}
		*why = "hvm_start_info.rsdp_paddr";
		if (!rsdp_valid(si->rsdp_paddr)) {
			*why = "hvm_start_info.rsdp_paddr points at no valid RSDP";
			return 0;
		}
		return si->rsdp_paddr;
	}
	if (in_map(boot_info, 4096)) {
		uint64_t a = rd64(boot_info + BP_ACPI_RSDP_ADDR);
		if (a) {
			*why = "boot_params.acpi_rsdp_addr";
			if (!rsdp_valid(a)) {
				*why = "boot_params.acpi_rsdp_addr points at no valid RSDP";
				return 0;
			}
			return a;
		}
	}
	/* legacy search: first KiB of the EBDA, then 0xe0000..0xfffff */
	uint64_t ebda = (uint64_t)rd16(0x40e) << 4;
	uint64_t a = 0;
	if (ebda >= 0x80000 && ebda < 0xa0000)
		a = scan_rsdp(ebda, ebda + 1024);
	if (!a)
		a = scan_rsdp(0xe0000, 0x100000);
	*why = a ? "BIOS area scan" : "no RSDP in boot info or BIOS area";
	return a;
}

static const char *check_table(uint64_t a, const char *what)
{
	static char msg[64];
	uint32_t len;

	if (!in_map(a, SDT_HDR_LEN))
		goto bad;
	len = rd32(a + 4);
	if (len < SDT_HDR_LEN || len > TABLE_MAX_LEN || !in_map(a, len))
		goto bad;
	if (sum(a, len) != 0) {
		/* "<sig> checksum bad" */
		memcpy(msg, (const void *)a, 4);
		memcpy(msg + 4, " checksum bad", 14);
		return msg;
	}
	return NULL;
bad:
	memcpy(msg, what, 4);
	memcpy(msg + 4, ": bad address or length", 24);
	return msg;
}

static const char *parse_madt(uint64_t t, struct madt_info *m)
{
	uint32_t len = rd32(t + 4);

	memset(m, 0, sizeof(*m));
	if (len < 44)
		return "MADT too short";
	m->lapic_addr = rd32(t + 36);
	for (uint32_t off = 44; off < len;) {
		uint8_t type = rd8(t + off), elen = rd8(t + off + 1);
		if (elen < 2 || off + elen > len)
			return "MADT entry length bad";
		uint64_t e = t + off;
		switch (type) {
		case 0: /* Processor Local APIC */
			if (elen < 8)
				return "MADT LAPIC entry short";
			if ((rd32(e + 4) & 1) && m->nr_cpus < MADT_MAX_CPUS)
				m->apic_ids[m->nr_cpus++] = rd8(e + 3);
			break;
		case 1: /* I/O APIC */
			if (elen < 12)
				return "MADT IOAPIC entry short";
			if (m->nr_ioapics++ == 0) {
				m->ioapic_addr = rd32(e + 4);
				m->ioapic_gsi_base = rd32(e + 8);
			}
			break;
		case 2: /* Interrupt Source Override */
			if (elen < 10)
				return "MADT override entry short";
			if (m->nr_overrides < MADT_MAX_OVERRIDES) {
				m->overrides[m->nr_overrides].irq = rd8(e + 3);
				m->overrides[m->nr_overrides].gsi = rd32(e + 4);
				m->overrides[m->nr_overrides].flags = rd16(e + 8);
				m->nr_overrides++;
			}
			break;
		case 9: /* Processor Local x2APIC */
			if (elen < 16)
				return "MADT x2APIC entry short";
			if ((rd32(e + 8) & 1) && m->nr_cpus < MADT_MAX_CPUS)
				m->apic_ids[m->nr_cpus++] = rd32(e + 4);
			break;
		default:
			break;
		}
		off += elen;
	}
	return NULL;
}

static void parse_gas(uint64_t g, uint8_t *space, uint64_t *addr)
{
	*space = rd8(g);
	*addr = rd64(g + 4);
}

static const char *parse_fadt(uint64_t t, struct fadt_info *f)
{
	uint32_t len = rd32(t + 4);
	const char *err;
	uint64_t dsdt;

	memset(f, 0, sizeof(*f));
	if (len < 116)
		return "FADT too short";
	f->flags = rd32(t + 112);
	if (len >= 129) {
		parse_gas(t + 116, &f->reset_space, &f->reset_addr);
		f->reset_value = rd8(t + 128);
	}
	dsdt = rd32(t + 40);
	if (len >= 148 && rd64(t + 140))
		dsdt = rd64(t + 140);
	if (len >= 256)
		parse_gas(t + 244, &f->sleep_ctl_space, &f->sleep_ctl_addr);
	err = check_table(dsdt, "DSDT");
	if (err)
		return err;
	if (memcmp((const void *)dsdt, "DSDT", 4) != 0)
		return "FADT's DSDT pointer does not point at a DSDT";
	f->revision = rd8(t + 8);
	f->dsdt = dsdt;
	return NULL;
}

const char *acpi_scan(struct madt_info *madt, struct fadt_info *fadt, bool verbose)
{
	struct madt_info m_local;
	struct fadt_info f_local;
	const char *why, *err;
	uint64_t rsdp, root;
	unsigned entry_size, n;
	bool have_madt = false, have_fadt = false;

	if (!madt)
		madt = &m_local;
	if (!fadt)
		fadt = &f_local;
	rsdp = find_rsdp(&why);
	if (!rsdp)
		return why;
	uint8_t rev = rd8(rsdp + 15);
	if (rev >= 2 && rd64(rsdp + 24)) {
		root = rd64(rsdp + 24);
		entry_size = 8;
		err = check_table(root, "XSDT");
		if (!err && memcmp((const void *)root, "XSDT", 4) != 0)
			err = "RSDP's XSDT pointer does not point at an XSDT";
	} else {
		root = rd32(rsdp + 16);
		entry_size = 4;
		err = check_table(root, "RSDT");
		if (!err && memcmp((const void *)root, "RSDT", 4) != 0)
			err = "RSDP's RSDT pointer does not point at an RSDT";
	}
	if (err)
		return err;
	n = (rd32(root + 4) - SDT_HDR_LEN) / entry_size;
	if (verbose)
		kprintf("acpi: RSDP 0x%lx (from %s) rev %u, %s 0x%lx with %u tables:", rsdp, why,
			rev, entry_size == 8 ? "XSDT" : "RSDT", root, n);
	for (unsigned i = 0; i < n; i++) {
		uint64_t ea = root + SDT_HDR_LEN + (uint64_t)i * entry_size;
		uint64_t t = entry_size == 8 ? rd64(ea) : rd32(ea);
		err = check_table(t, "tabl");
		if (err)
			break;
		if (verbose)
			kprintf(" %c%c%c%c", rd8(t), rd8(t + 1), rd8(t + 2), rd8(t + 3));
		if (!memcmp((const void *)t, "APIC", 4)) {
			err = parse_madt(t, madt);
			have_madt = true;
		} else if (!memcmp((const void *)t, "FACP", 4)) {
			err = parse_fadt(t, fadt);
			have_fadt = true;
		}
		if (err)
			break;
	}
	if (verbose)
		kprintf("\n");
	if (err)
		return err;
	if (!have_madt)
		return "no MADT (APIC) table";
	if (!have_fadt)
		return "no FADT (FACP) table";
	if (madt->nr_cpus == 0)
		return "MADT lists no enabled CPU";
	if (verbose) {
		kprintf("acpi: FACP rev %u flags 0x%x%s reset %u:0x%lx=0x%x sleep-ctl %u:0x%lx, "
			"DSDT 0x%lx len %u\n",
			fadt->revision, fadt->flags,
			(fadt->flags & FADT_HW_REDUCED_ACPI) ? " (hw-reduced)" : "",
			fadt->reset_space, fadt->reset_addr, fadt->reset_value,
			fadt->sleep_ctl_space, fadt->sleep_ctl_addr, fadt->dsdt,
			rd32(fadt->dsdt + 4));
		kprintf("acpi: MADT lapic 0x%x, %u cpus (APIC IDs", madt->lapic_addr,
			madt->nr_cpus);
		for (unsigned i = 0; i < madt->nr_cpus; i++)
			kprintf(" %u", madt->apic_ids[i]);
		kprintf("), %u ioapic(s) first at 0x%x gsi base %u, %u overrides\n",
			madt->nr_ioapics, madt->ioapic_addr, madt->ioapic_gsi_base,
			madt->nr_overrides);
	}
	return NULL;
}

bool acpi_gas_write8(uint8_t space, uint64_t addr, uint8_t v)
{
	if (space == ACPI_SPACE_IO && addr != 0 && addr <= 0xffff) {
		outb((uint16_t)addr, v);
		return true;
	}
	if (space == ACPI_SPACE_MEMORY && in_map(addr, 1)) {
		*(volatile uint8_t *)addr = v;
		return true;
	}
	return false;
}
