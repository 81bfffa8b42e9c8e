/* tick.c: a guest that never ends: prints a numbered tick every 100 ms of LAPIC timer with its
 * kvmclock time and the TSC cycles since the last tick, so a host test can see output stop and
 * the guest clock stand still across a pause (the API tests). */
#include "runtime.h"

const char guest_name[] = "tick";

#define VEC_TIMER 0x40
#define TIMER_PERIOD_NS 10000000u /* 10 ms */
#define TICKS_PER_LINE 10	  /* one line per 100 ms */

static volatile unsigned timer_ticks;

static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}

static inline void cpuid(uint32_t leaf, uint32_t *a, uint32_t *b, uint32_t *c, uint32_t *d)
{
	__asm__ volatile("cpuid" : "=a"(*a), "=b"(*b), "=c"(*c), "=d"(*d) : "a"(leaf), "c"(0));
}

static inline void wrmsr(uint32_t msr, uint64_t v)
{
	__asm__ volatile("wrmsr" : : "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)));
}

/* kvmclock (pvclock): the hypervisor keeps this struct up to date for the vCPU. */
#define MSR_KVM_SYSTEM_TIME_NEW 0x4b564d01
#define KVM_FEATURE_CLOCKSOURCE2 (1u << 3)

struct pvclock {
	volatile uint32_t version;
	uint32_t pad0;
	volatile uint64_t tsc_timestamp;
	volatile uint64_t system_time;
	volatile uint32_t tsc_to_system_mul;
	volatile int8_t tsc_shift;
	volatile uint8_t flags;
	uint8_t pad[2];
} __attribute__((packed));

static struct pvclock pvclock __attribute__((aligned(64)));
static bool have_kvmclock;

static void kvmclock_init(void)
{
	uint32_t a, b, c, d;

	cpuid(0x40000000, &a, &b, &c, &d);
	if (b != 0x4b4d564b || a < 0x40000001) /* "KVMKVMKVM" */
		return;
	cpuid(0x40000001, &a, &b, &c, &d);
	if (!(a & KVM_FEATURE_CLOCKSOURCE2))
		return;
	wrmsr(MSR_KVM_SYSTEM_TIME_NEW, (uint64_t)&pvclock | 1);
	have_kvmclock = true;
}

/* Guest time in ns from kvmclock (0 without it). */
static uint64_t kvmclock_ns(void)
{
	uint32_t v;
	uint64_t t;

	if (!have_kvmclock)
		return 0;
	do {
		v = pvclock.version;
		__asm__ volatile("" ::: "memory");
		uint64_t delta = rdtsc() - pvclock.tsc_timestamp;
		if (pvclock.tsc_shift < 0)
			delta >>= -pvclock.tsc_shift;
		else
			delta <<= pvclock.tsc_shift;
		t = pvclock.system_time +
		    (uint64_t)(((unsigned __int128)delta * pvclock.tsc_to_system_mul) >> 32);
		__asm__ volatile("" ::: "memory");
	} while ((v & 1) || v != pvclock.version);
	return t;
}

static void timer_handler(struct trap_frame *f)
{
	(void)f;
	timer_ticks++;
	lapic_eoi();
}

void guest_main(void)
{
	unsigned seen = 0, line = 0;
	uint64_t last;

	idt_set_handler(VEC_TIMER, timer_handler);
	lapic_enable();
	pic_mask_all();
	lapic_timer_periodic(VEC_TIMER, TIMER_PERIOD_NS);
	if (!lapic_timer_counting())
		fail("LAPIC timer does not count");
	kvmclock_init();
	last = rdtsc();
	kprintf("READY tick (kvmclock %s)\n", have_kvmclock ? "on" : "off");
	for (;;) {
		irq_disable();
		while (timer_ticks - seen < TICKS_PER_LINE) {
			safe_halt();
			irq_disable();
		}
		seen = timer_ticks;
		uint64_t now = rdtsc();
		kprintf("tick %u clock_ms %lu tsc %lu\n", ++line, kvmclock_ns() / 1000000,
			now - last);
		last = now;
	}
}
