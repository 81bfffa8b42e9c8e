/* smp.c: starts every AP the MADT lists with INIT-SIPI-SIPI; each checks in with its LAPIC ID. */
#include "runtime.h"

const char guest_name[] = "smp";

#define TRAMP_BASE 0x10000ull
#define MAX_APS 64	     /* smp_tramp.S */
#define ICR_INIT 0x00004500u /* INIT, level assert, physical destination */
#define ICR_SIPI 0x00004600u /* STARTUP; vector = page number of the trampoline */
#define WAIT_NS 4000000000u  /* 4 s for all APs to check in */

/* Written by the APs (smp_tramp.S) */
volatile uint32_t ap_checkin, ap_done;
volatile uint32_t ap_ids[MAX_APS];

extern const char ap_tramp_start[], ap_tramp_end[];

static bool madt_has(const struct madt_info *m, uint32_t id)
{
	for (unsigned i = 0; i < m->nr_cpus; i++)
		if (m->apic_ids[i] == id)
			return true;
	return false;
}

void guest_main(void)
{
	struct madt_info madt;
	const char *err = acpi_scan(&madt, NULL, true);
	uint32_t bsp = lapic_id(), expected, polls = 0;
	struct deadline d;

	if (err)
		fail("acpi: %s", err);
	if (!madt_has(&madt, bsp))
		fail("BSP LAPIC ID %u is not in the MADT", bsp);
	expected = madt.nr_cpus - 1;
	if (expected > MAX_APS)
		fail("MADT lists %u CPUs, this guest handles %u", madt.nr_cpus, MAX_APS + 1);
	for (unsigned i = 0; i < madt.nr_cpus; i++)
		for (unsigned j = i + 1; j < madt.nr_cpus; j++)
			if (madt.apic_ids[i] == madt.apic_ids[j])
				fail("MADT lists APIC ID %u twice", madt.apic_ids[i]);

	memcpy((void *)TRAMP_BASE, ap_tramp_start, (size_t)(ap_tramp_end - ap_tramp_start));
	lapic_enable();

	/* INIT to every AP, wait 10 ms, then two STARTUPs 200 us apart (the MP spec sequence) */
	for (unsigned i = 0; i < madt.nr_cpus; i++)
		if (madt.apic_ids[i] != bsp && !lapic_send_ipi(madt.apic_ids[i], ICR_INIT))
			fail("INIT IPI to APIC ID %u stuck (ICR busy)", madt.apic_ids[i]);
	udelay(10000);
	for (unsigned round = 0; round < 2; round++) {
		for (unsigned i = 0; i < madt.nr_cpus; i++)
			if (madt.apic_ids[i] != bsp &&
			    !lapic_send_ipi(madt.apic_ids[i], ICR_SIPI | (TRAMP_BASE >> 12)))
				fail("STARTUP IPI to APIC ID %u stuck (ICR busy)",
				     madt.apic_ids[i]);
		udelay(200);
	}

	deadline_start(&d, WAIT_NS);
	while (ap_done < expected && deadline_pending(&d)) {
		cpu_relax();
		polls++;
	}
	udelay(1000); /* let a late or restarted AP show up before counting */

	kprintf("smp: BSP APIC ID %u, %u of %u APs checked in after %u polls, AP APIC IDs:", bsp,
		ap_done, expected, polls);
	for (unsigned i = 0; i < ap_done && i < MAX_APS; i++)
		kprintf(" %u", ap_ids[i]);
	kprintf("\n");
	if (ap_checkin != expected || ap_done != expected)
		fail("%u APs checked in (%u done), the MADT lists %u", ap_checkin, ap_done,
		     expected);
	for (unsigned i = 0; i < expected; i++) {
		if (ap_ids[i] == bsp || !madt_has(&madt, ap_ids[i]))
			fail("an AP reported APIC ID %u, not an AP in the MADT", ap_ids[i]);
		for (unsigned j = i + 1; j < expected; j++)
			if (ap_ids[i] == ap_ids[j])
				fail("two APs reported APIC ID %u", ap_ids[i]);
	}
	kprintf("PASS smp %u cpus\n", madt.nr_cpus);
}
