/* runtime.h: the freestanding runtime of kiln's test guests (I/O, COM1, IDT, APIC, exits). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- set by start.S ---------------------------------------------------------------------- */

#define BOOT_ENTRY_PVH 32 /* entered at the PVH note's 32-bit entry */
#define BOOT_ENTRY_64 64  /* entered at e_entry in long mode */

extern uint32_t boot_entry; /* BOOT_ENTRY_* */
extern uint64_t boot_info;  /* PVH: hvm_start_info address (EBX); 64-bit: boot_params (RSI) */

/* Each guest defines its name (used in PASS/FAIL lines) and its main. */
extern const char guest_name[];
void guest_main(void);

/* GDT selectors loaded by start.S (same numbering as kiln's boot GDT). */
#define SEL_CODE32 0x08
#define SEL_CODE64 0x10
#define SEL_DATA 0x18

/* ---- PVH start info (Xen public/arch-x86/hvm/start_info.h) --------------------------------- */

#define HVM_START_MAGIC 0x336ec578u

struct hvm_start_info {
	uint32_t magic;
	uint32_t version;
	uint32_t flags;
	uint32_t nr_modules;
	uint64_t modlist_paddr;
	uint64_t cmdline_paddr;
	uint64_t rsdp_paddr;
	uint64_t memmap_paddr; /* version >= 1 */
	uint32_t memmap_entries;
	uint32_t reserved;
};

struct hvm_memmap_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type; /* 1 = RAM, as in e820 */
	uint32_t reserved;
};

/* Linux boot_params (zero page) fields the guests look at. */
#define BP_ACPI_RSDP_ADDR 0x070 /* u64 */
#define BP_E820_ENTRIES 0x1e8	/* u8 */
#define BP_HDR_MAGIC 0x202	/* u32 "HdrS" */
#define BP_E820_TABLE 0x2d0	/* struct { u64 addr, size; u32 type; } __packed [128] */
#define BP_E820_MAX 128

/* ---- port and memory-mapped I/O ------------------------------------------------------------ */

static inline void outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint8_t inb(uint16_t port)
{
	uint8_t v;
	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline void outw(uint16_t port, uint16_t v)
{
	__asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port));
}

static inline void outl(uint16_t port, uint32_t v)
{
	__asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint32_t inl(uint16_t port)
{
	uint32_t v;
	__asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline uint16_t inw(uint16_t port)
{
	uint16_t v;
	__asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline uint8_t mmio_read8(uint64_t a) { return *(volatile uint8_t *)a; }
static inline uint16_t mmio_read16(uint64_t a) { return *(volatile uint16_t *)a; }
static inline void mmio_write8(uint64_t a, uint8_t v) { *(volatile uint8_t *)a = v; }
static inline void mmio_write16(uint64_t a, uint16_t v) { *(volatile uint16_t *)a = v; }
static inline uint32_t mmio_read32(uint64_t addr) { return *(volatile uint32_t *)addr; }

static inline void mmio_write32(uint64_t addr, uint32_t v) { *(volatile uint32_t *)addr = v; }

static inline uint64_t rdmsr(uint32_t msr)
{
	uint32_t lo, hi;
	__asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
	return ((uint64_t)hi << 32) | lo;
}

static inline void cpu_relax(void) { __asm__ volatile("pause" ::: "memory"); }

static inline void irq_enable(void) { __asm__ volatile("sti" ::: "memory"); }

static inline void irq_disable(void) { __asm__ volatile("cli" ::: "memory"); }

/* Atomically enable interrupts and halt (STI's one-instruction shadow covers the HLT). */
static inline void safe_halt(void) { __asm__ volatile("sti; hlt" ::: "memory"); }

/* ---- COM1 and output ------------------------------------------------------------------------ */

#define COM1 0x3f8
#define UART_THR 0 /* write */
#define UART_IER 1
#define UART_IIR 2 /* read */
#define UART_FCR 2 /* write */
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define UART_IER_THRI 0x02
#define UART_MCR_DTR 0x01
#define UART_MCR_RTS 0x02
#define UART_MCR_OUT2 0x08
#define UART_LSR_THRE 0x20
#define UART_IIR_NO_INT 0x01
#define UART_IIR_ID 0x0e
#define UART_IIR_THRI 0x02

void serial_putc(char c);
void serial_puts(const char *s);
/* printf subset: %s %c %d %u %x %lu %lx %ld %p %% (and 0-padding width for x, e.g. %08x). */
void kprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Print "PASS <guest_name>" + suffix. */
void pass(const char *suffix);
/* Print "FAIL <guest_name>: <reason>" and end the VM (reset, then ACPI off, then triple fault). */
__attribute__((noreturn, format(printf, 1, 2))) void fail(const char *fmt, ...);

/* ---- ending the VM --------------------------------------------------------------------------- */

#define I8042_CMD 0x64
#define I8042_RESET 0xfe
#define ACPI_PM_SLEEP_CONTROL 0x600
#define ACPI_PM_RESET 0x602
#define ACPI_SLP_TYP_S5 5
#define ACPI_SLP_EN (1u << 5)

/* Each returns only if the VMM ignored the request (after a short bounded wait). */
void reset_i8042(void);
void poweroff_acpi(uint16_t sleep_control_port);
/* Load an empty IDT and divide by zero: #DE -> #GP -> #DF -> shutdown. Never returns. */
__attribute__((noreturn)) void triple_fault(void);
/* Reset via i8042; if that returns, print FAIL and try the other ways out. */
__attribute__((noreturn)) void guest_exit(void);

/* ---- memory helpers (the compiler may emit calls to these) ---------------------------------- */

void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);

/* ---- interrupts ----------------------------------------------------------------------------- */

/* Pushed by isr.S: general registers (last pushed first), then vector, error code, CPU frame. */
struct trap_frame {
	uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
	uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
	uint64_t vector, error;
	uint64_t rip, cs, rflags, rsp, ss;
};
_Static_assert(sizeof(struct trap_frame) == 22 * 8, "trap_frame must match isr.S");

typedef void (*trap_handler_fn)(struct trap_frame *f);

/* Fill all 256 gates (unexpected vectors print FAIL) and load the IDT. */
void idt_init(void);
void idt_set_handler(unsigned vector, trap_handler_fn fn);

/* ---- local APIC and IOAPIC (xAPIC MMIO) ----------------------------------------------------- */

#define LAPIC_BASE 0xfee00000ull
#define LAPIC_ID 0x020
#define LAPIC_VERSION 0x030
#define LAPIC_TPR 0x080
#define LAPIC_EOI 0x0b0
#define LAPIC_SVR 0x0f0
#define LAPIC_ICR_LO 0x300
#define LAPIC_ICR_HI 0x310
#define LAPIC_LVT_TIMER 0x320
#define LAPIC_TIMER_INIT 0x380
#define LAPIC_TIMER_CUR 0x390
#define LAPIC_TIMER_DIV 0x3e0
#define LAPIC_SVR_ENABLE 0x100
#define LAPIC_LVT_MASKED 0x10000
#define LAPIC_TIMER_PERIODIC 0x20000
#define LAPIC_ICR_BUSY 0x1000
#define IOAPIC_BASE 0xfec00000ull

static inline uint32_t lapic_read(uint32_t reg) { return mmio_read32(LAPIC_BASE + reg); }

static inline void lapic_write(uint32_t reg, uint32_t v) { mmio_write32(LAPIC_BASE + reg, v); }

static inline uint32_t lapic_id(void) { return lapic_read(LAPIC_ID) >> 24; }

/* Software-enable the LAPIC (spurious vector 0xff), TPR 0. */
void lapic_enable(void);
static inline void lapic_eoi(void) { lapic_write(LAPIC_EOI, 0); }

/* LAPIC timer at divide-by-1. KVM and QEMU both count it at 1 GHz, so 1 count = 1 ns. */
void lapic_timer_periodic(uint8_t vector, uint32_t ns);
void lapic_timer_stop(void);
/* True if the current-count register moves (a 1 GHz count changes between two reads). */
bool lapic_timer_counting(void);

/* A one-shot (masked) LAPIC countdown for bounded waits. deadline_pending() is false once it
 * has run out; it ends the test with FAIL if the timer does not count, so no wait built on
 * it can hang. */
struct deadline {
	uint32_t last;
	unsigned stuck;
};
void deadline_start(struct deadline *d, uint32_t ns);
bool deadline_pending(struct deadline *d);
/* Busy-wait about us microseconds (at most 4 s). */
void udelay(uint32_t us);
/* Send an IPI; returns false if the ICR stayed busy. */
bool lapic_send_ipi(uint32_t dest_apic_id, uint32_t icr_lo);

uint32_t ioapic_read(uint64_t base, uint32_t reg);
void ioapic_write(uint64_t base, uint32_t reg, uint32_t v);

/* Mask both 8259 PICs (as Linux does once it routes through the IOAPIC). */
void pic_mask_all(void);

/* ---- ACPI (acpi.c) -------------------------------------------------------------------------- */

#define MADT_MAX_CPUS 64
#define MADT_MAX_OVERRIDES 16

struct madt_info {
	uint32_t lapic_addr;
	unsigned nr_cpus; /* enabled Local APIC / x2APIC entries */
	uint32_t apic_ids[MADT_MAX_CPUS];
	unsigned nr_ioapics;
	uint32_t ioapic_addr; /* first IOAPIC */
	uint32_t ioapic_gsi_base;
	unsigned nr_overrides;
	struct {
		uint8_t irq;
		uint32_t gsi;
		uint16_t flags; /* MPS INTI flags: polarity [1:0], trigger [3:2] */
	} overrides[MADT_MAX_OVERRIDES];
};

struct fadt_info {
	uint8_t revision;
	uint32_t flags;
	uint64_t dsdt;
	uint8_t reset_space; /* GAS address space id: 1 = SystemIO */
	uint64_t reset_addr;
	uint8_t reset_value;
	uint8_t sleep_ctl_space;
	uint64_t sleep_ctl_addr;
};

#define ACPI_SPACE_MEMORY 0
#define ACPI_SPACE_IO 1
#define FADT_RESET_REG_SUP (1u << 10)
#define FADT_HW_REDUCED_ACPI (1u << 20)

/* Find the RSDP (PVH start info, boot_params, then the BIOS area), check every checksum of
 * RSDP, XSDT/RSDT and each table it lists (and the DSDT), and parse MADT and FADT. Returns
 * NULL on success, else a static string saying what is wrong. madt/fadt may be NULL. */
const char *acpi_scan(struct madt_info *madt, struct fadt_info *fadt, bool verbose);
/* Write a byte to a register named by a Generic Address (SystemIO or SystemMemory);
 * false if the address space or address is not one of those. */
bool acpi_gas_write8(uint8_t space, uint64_t addr, uint8_t v);
