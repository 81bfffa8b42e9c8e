/* test_regs.c: initial vCPU state for both entry kinds, checked against the GDT bytes boot.c
 * writes. */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>
#include "tmpfile.h"

#include "arch/x86/boot.h"
#include "arch/x86/gdt.h"
#include "arch/x86/layout.h"
#include "arch/x86/regs.h"

#define CR0_PE 0x1ULL
#define CR0_ET 0x10ULL
#define CR0_PG 0x80000000ULL
#define CR4_PAE 0x20ULL
#define EFER_LME 0x100ULL
#define EFER_LMA 0x400ULL
#define APIC_BASE_SENTINEL 0xfee00900ULL

static const struct boot_info bi64 = {
    .kind = BOOT_ENTRY_64,
    .entry = 0x1000200,
    .boot_params = LAYOUT_ZERO_PAGE,
    .stack = LAYOUT_BOOT_STACK,
};

static const struct boot_info bipvh = {
    .kind = BOOT_ENTRY_PVH,
    .entry = 0x1000850,
    .boot_params = LAYOUT_PVH_START_INFO,
    .stack = LAYOUT_BOOT_STACK,
};

/* sregs as KVM_GET_SREGS might return them: junk everywhere kiln must set. */
static void fake_kvm_sregs(struct kvm_sregs *s)
{
	memset(s, 0xa5, sizeof(*s));
	s->apic_base = APIC_BASE_SENTINEL;
}

static void check_flat(const struct kvm_segment *s, uint16_t sel, uint8_t type)
{
	assert_int_equal(s->selector, sel);
	assert_int_equal(s->base, 0);
	assert_int_equal(s->limit, 0xffffffff);
	assert_int_equal(s->type, type);
	assert_int_equal(s->present, 1);
	assert_int_equal(s->dpl, 0);
	assert_int_equal(s->s, 1);
	assert_int_equal(s->g, 1);
	assert_int_equal(s->unusable, 0);
}

static void check_common(const struct kvm_sregs *s)
{
	for (int i = 0; i < 5; i++) {
		const struct kvm_segment *d =
		    (const struct kvm_segment *[]){&s->ds, &s->es, &s->fs, &s->gs, &s->ss}[i];
		check_flat(d, LAYOUT_GDT_DATA, 0x3);
		assert_int_equal(d->db, 1);
		assert_int_equal(d->l, 0);
	}
	assert_int_equal(s->tr.selector, LAYOUT_GDT_TSS);
	assert_int_equal(s->tr.type, 11); /* busy TSS (64-bit in long mode, 32-bit in PVH) */
	assert_int_equal(s->tr.s, 0);
	assert_int_equal(s->tr.present, 1);
	assert_int_equal(s->tr.base, 0);
	assert_int_equal(s->tr.limit, 0x67);
	assert_int_equal(s->tr.g, 0);
	assert_int_equal(s->tr.unusable, 0);
	assert_int_equal(s->ldt.unusable, 1);
	assert_int_equal(s->gdt.base, LAYOUT_GDT);
	assert_int_equal(s->gdt.limit, X86_GDT_SIZE - 1);
	assert_int_equal(s->idt.limit, 0);
	assert_int_equal(s->apic_base, APIC_BASE_SENTINEL); /* kept from KVM */
}

static void regs_64bit(void **state)
{
	struct kvm_regs r;
	struct kvm_sregs s;

	memset(&r, 0xa5, sizeof(r));
	fake_kvm_sregs(&s);
	x86_regs_build(&bi64, &r, &s);

	assert_int_equal(r.rip, 0x1000200);
	assert_int_equal(r.rsi, LAYOUT_ZERO_PAGE);
	assert_int_equal(r.rsp, LAYOUT_BOOT_STACK);
	assert_int_equal(r.rbp, LAYOUT_BOOT_STACK);
	assert_int_equal(r.rflags, 0x2);
	assert_int_equal(r.rax, 0);
	assert_int_equal(r.rbx, 0);

	assert_int_equal(s.cr0 & (CR0_PE | CR0_PG | CR0_ET), CR0_PE | CR0_PG | CR0_ET);
	assert_int_equal(s.cr0 & 0x60000000, 0); /* caches on: CD, NW clear */
	assert_int_equal(s.cr3, LAYOUT_PML4);
	assert_int_equal(s.cr4, CR4_PAE);
	assert_int_equal(s.efer, EFER_LME | EFER_LMA);
	check_flat(&s.cs, LAYOUT_GDT_CODE64, 0xb);
	assert_int_equal(s.cs.l, 1);
	assert_int_equal(s.cs.db, 0);
	check_common(&s);
}

static void regs_pvh(void **state)
{
	struct kvm_regs r;
	struct kvm_sregs s;

	memset(&r, 0xa5, sizeof(r));
	fake_kvm_sregs(&s);
	x86_regs_build(&bipvh, &r, &s);

	assert_int_equal(r.rip, 0x1000850);
	assert_int_equal(r.rbx, LAYOUT_PVH_START_INFO);
	assert_int_equal(r.rflags, 0x2);
	assert_int_equal(r.rsi, 0);

	assert_int_equal(s.cr0, CR0_PE | CR0_ET);
	assert_int_equal(s.cr4, 0);
	assert_int_equal(s.efer, 0);
	check_flat(&s.cs, LAYOUT_GDT_CODE32, 0xb);
	assert_int_equal(s.cs.l, 0);
	assert_int_equal(s.cs.db, 1);
	check_common(&s);
}

static void segments_match_gdt_in_ram(void **state)
{
	struct guest_mem m;
	struct boot_info bi;
	char err[256];
	const uint8_t hlt = 0xf4;
	char *path = tmp_elf_kernel(0x200000, &hlt, 1);
	struct boot_request req = {.kernel_path = path, .cmdline = ""};

	assert_int_equal(guest_mem_init(&m, 16 * MiB), 0);
	assert_int_equal(x86_boot_load(&m, &req, &bi, err, sizeof(err)), 0);

	for (int kind = 0; kind < 2; kind++) {
		struct kvm_regs r;
		struct kvm_sregs s;
		fake_kvm_sregs(&s);
		x86_regs_build(kind ? &bipvh : &bi64, &r, &s);

		/* Decode the bytes the guest will see, at the base and limit the CPU will use. */
		const uint64_t *gdt = gpa_to_hva(&m, s.gdt.base, s.gdt.limit + 1u);
		assert_non_null(gdt);
		unsigned nr = (s.gdt.limit + 1u) / 8;
		const struct kvm_segment *segs[] = {&s.cs, &s.ds, &s.es, &s.fs,
						    &s.gs, &s.ss, &s.tr};
		for (size_t i = 0; i < ARRAY_SIZE(segs); i++) {
			struct kvm_segment want;
			assert_true(segs[i]->selector / 8 < nr);
			x86_gdt_segment(gdt, nr, segs[i]->selector, &want);
			assert_memory_equal(segs[i], &want, sizeof(want));
		}
	}
	/* And the raw bits of the 64-bit code descriptor: L set, D clear, P, S, type 0xb. */
	const uint8_t *raw = gpa_to_hva(&m, LAYOUT_GDT + LAYOUT_GDT_CODE64, 8);
	assert_int_equal(raw[5], 0x9b);
	assert_int_equal(raw[6] & 0xf0, 0xa0);

	guest_mem_destroy(&m);
	unlink(path);
	free(path);
}

static void gdt_decode(void **state)
{
	struct kvm_segment seg;

	x86_gdt_segment(x86_boot_gdt, X86_GDT_ENTRIES, 0, &seg);
	assert_int_equal(seg.unusable, 1);
	x86_gdt_segment(x86_boot_gdt, X86_GDT_ENTRIES, 0x40, &seg);
	assert_int_equal(seg.unusable, 1);
	/* A descriptor with every base/limit bit distinct. */
	const uint64_t d[4] = {0, 0x12c39a563456789aULL, 0x0000890000000067ULL,
			       0x00000000deadbeefULL};
	x86_gdt_segment(d, 4, 0x08, &seg);
	assert_int_equal(seg.base, 0x12563456);
	assert_int_equal(seg.limit, (0x3789aU << 12) | 0xfff);
	assert_int_equal(seg.type, 0xa);
	assert_int_equal(seg.s, 1);
	assert_int_equal(seg.present, 1);
	assert_int_equal(seg.g, 1);
	assert_int_equal(seg.db, 1);
	assert_int_equal(seg.l, 0);
	/* A system descriptor takes base[63:32] from the next slot (16-byte long-mode TSS). */
	x86_gdt_segment(d, 4, 0x10, &seg);
	assert_int_equal(seg.s, 0);
	assert_int_equal(seg.type, 0x9);
	assert_int_equal(seg.base, 0xdeadbeef00000000ULL);
	assert_int_equal(seg.limit, 0x67);
}

/* Optional: with /dev/kvm, make sure KVM accepts both states and the guest runs a few
 * instructions: read a field of boot_params / start_info through the boot state, then hlt. */
static int kvm_set_cpuid(int kvm, int vcpu)
{
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + 256 * sizeof(struct kvm_cpuid_entry2));
	int ret = 0;
	if (!c)
		return -ENOMEM;
	c->nent = 256;
	if (ioctl(kvm, KVM_GET_SUPPORTED_CPUID, c) < 0 || ioctl(vcpu, KVM_SET_CPUID2, c) < 0)
		ret = -errno;
	free(c);
	return ret;
}

static void run_on_kvm(bool pvh, uint64_t want_rax)
{
	/* 64-bit: mov eax, [rsi + 0x202] ; hlt   PVH: mov eax, [ebx] ; hlt */
	static const uint8_t code64[] = {0x8b, 0x86, 0x02, 0x02, 0x00, 0x00, 0xf4};
	static const uint8_t code32[] = {0x8b, 0x03, 0xf4};
	struct guest_mem m;
	struct boot_info bi;
	char err[256];
	char *path =
	    tmp_elf_kernel(0x200000, pvh ? code32 : code64, pvh ? sizeof(code32) : sizeof(code64));
	struct boot_request req = {.kernel_path = path, .cmdline = ""};

	assert_int_equal(guest_mem_init(&m, 16 * MiB), 0);
	assert_int_equal(x86_boot_load(&m, &req, &bi, err, sizeof(err)), 0);
	bi.kind = pvh ? BOOT_ENTRY_PVH : BOOT_ENTRY_64;
	if (pvh) {
		/* The ELF has no PVH note; point EBX at a start-info-shaped magic ourselves. */
		bi.boot_params = LAYOUT_PVH_START_INFO;
		*(uint32_t *)gpa_to_hva(&m, LAYOUT_PVH_START_INFO, 4) = 0x336ec578;
	}

	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	int vm = ioctl(kvm, KVM_CREATE_VM, 0);
	assert_true(vm >= 0);
	struct kvm_userspace_memory_region mr = {.slot = 0,
						 .guest_phys_addr = 0,
						 .memory_size = m.regions[0].size,
						 .userspace_addr = (uintptr_t)m.regions[0].hva};
	assert_int_equal(ioctl(vm, KVM_SET_USER_MEMORY_REGION, &mr), 0);
	int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	assert_true(vcpu >= 0);
	assert_int_equal(kvm_set_cpuid(kvm, vcpu), 0);
	int run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	struct kvm_run *run =
	    mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
	assert_true(run != MAP_FAILED);

	assert_int_equal(x86_regs_setup(vcpu, &bi), 0);
	assert_int_equal(ioctl(vcpu, KVM_RUN, 0), 0);
	assert_int_equal(run->exit_reason, KVM_EXIT_HLT);
	struct kvm_regs r;
	assert_int_equal(ioctl(vcpu, KVM_GET_REGS, &r), 0);
	assert_int_equal(r.rax & 0xffffffff, want_rax);
	assert_int_equal(r.rip, 0x200000 + (pvh ? sizeof(code32) : sizeof(code64)));

	munmap(run, (size_t)run_size);
	close(vcpu);
	close(vm);
	close(kvm);
	guest_mem_destroy(&m);
	unlink(path);
	free(path);
}

static void kvm_accepts_state(void **state)
{
	if (access("/dev/kvm", R_OK | W_OK))
		skip();
	run_on_kvm(false, 0x53726448); /* "HdrS" through the identity map and RSI */
	run_on_kvm(true, 0x336ec578);  /* start_info magic through EBX, paging off */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(regs_64bit),	 cmocka_unit_test(regs_pvh),
	    cmocka_unit_test(gdt_decode),	 cmocka_unit_test(segments_match_gdt_in_ram),
	    cmocka_unit_test(kvm_accepts_state),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
