/* rawkvm.c: the least a VMM can do: run a bzImage's 64-bit entry, drop (or echo) COM1 writes. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * The baseline for the exit-throughput benchmark: the same KVM set-up kiln makes for a guest
 * that only does port I/O (VM, TSS, in-kernel irqchip, one memory slot, one vCPU with the
 * supported CPUID, long mode with an identity map), and a KVM_RUN loop that counts and drops
 * OUTs to COM1 and stops at 0xFE to the i8042 command port or a shutdown (triple fault).
 * With --echo it writes each COM1 byte to stdout instead, as a VMM's serial console does: the
 * floor for the startup and memory benchmarks (nothing but KVM set-up before the guest runs).
 *
 * Guest memory map: 0x500 GDT, 0x1000 PML4, 0x2000 PDPT, 0x3000 PD (1 GiB of 2 MiB pages),
 * 0x100000 the bzImage's protected-mode part, entry at 0x100200.
 */

#define GDT_ADDR 0x500
#define PML4_ADDR 0x1000
#define PDPT_ADDR 0x2000
#define PD_ADDR 0x3000
#define LOAD_ADDR 0x100000
#define ENTRY64 0x200
#define TSS_ADDR 0xfffbd000
#define COM1 0x3f8
#define I8042_CMD 0x64

static void die(const char *what)
{
	fprintf(stderr, "rawkvm: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void fail(const char *msg)
{
	fprintf(stderr, "rawkvm: %s\n", msg);
	exit(1);
}

static void set_seg(struct kvm_segment *s, uint16_t sel, uint8_t type, int l, int db)
{
	memset(s, 0, sizeof(*s));
	s->base = 0;
	s->limit = 0xffffffff;
	s->selector = sel;
	s->type = type;
	s->present = 1;
	s->s = 1;
	s->l = (uint8_t)l;
	s->db = (uint8_t)db;
	s->g = 1;
}

int main(int argc, char **argv)
{
	bool echo = argc > 1 && strcmp(argv[1], "--echo") == 0;
	if (echo) {
		argv++;
		argc--;
	}
	if (argc != (echo ? 3 : 4)) {
		fprintf(stderr,
			"usage: rawkvm BZIMAGE MEM_MIB EXPECTED_COM1_BYTES\n"
			"       rawkvm --echo BZIMAGE MEM_MIB\n"
			"Runs the bzImage's 64-bit entry; exits 0 when the guest writes 0xFE\n"
			"to port 0x64 (or triple-faults) after exactly that many OUTs to\n"
			"0x3f8, 1 otherwise. --echo: COM1 bytes go to stdout, no count.\n");
		return 2;
	}
	uint64_t mem_size = strtoull(argv[2], NULL, 10) << 20;
	uint64_t expect = echo ? 0 : strtoull(argv[3], NULL, 10);
	if (mem_size < (4u << 20))
		fail("MEM_MIB must be at least 4");

	int img = open(argv[1], O_RDONLY | O_CLOEXEC);
	if (img < 0)
		die(argv[1]);
	struct stat st;
	uint8_t hdr[0x240];
	if (fstat(img, &st) < 0 || pread(img, hdr, sizeof(hdr), 0) != (ssize_t)sizeof(hdr))
		die("reading the setup header");
	if (hdr[0x1fe] != 0x55 || hdr[0x1ff] != 0xaa || memcmp(hdr + 0x202, "HdrS", 4) != 0)
		fail("not a bzImage (no 0xAA55 / HdrS)");
	uint64_t setup = ((uint64_t)(hdr[0x1f1] ? hdr[0x1f1] : 4) + 1) * 512;
	if ((uint64_t)st.st_size <= setup || (uint64_t)st.st_size - setup > mem_size - LOAD_ADDR)
		fail("protected-mode part missing or larger than guest RAM");
	uint64_t pm_size = (uint64_t)st.st_size - setup;

	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0)
		die("/dev/kvm");
	if (ioctl(kvm, KVM_GET_API_VERSION, 0) != KVM_API_VERSION)
		fail("unexpected KVM API version");
	int vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm < 0)
		die("KVM_CREATE_VM");
	if (ioctl(vm, KVM_SET_TSS_ADDR, (unsigned long)TSS_ADDR) < 0)
		die("KVM_SET_TSS_ADDR");

	uint8_t *mem = mmap(NULL, mem_size, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (mem == MAP_FAILED)
		die("mmap guest RAM");
	struct kvm_userspace_memory_region region = {.slot = 0,
						     .guest_phys_addr = 0,
						     .memory_size = mem_size,
						     .userspace_addr = (uintptr_t)mem};
	if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0)
		die("KVM_SET_USER_MEMORY_REGION");
	/* After the memory slot: adding a slot once an in-kernel irqchip exists is several ms
	 * slower on some hosts (docs/design.md "Start-up order"). */
	if (ioctl(vm, KVM_CREATE_IRQCHIP, 0) < 0)
		die("KVM_CREATE_IRQCHIP");
	if (pread(img, mem + LOAD_ADDR, pm_size, (off_t)setup) != (ssize_t)pm_size)
		die("reading the protected-mode part");
	close(img);

	/* GDT: null, 64-bit code (0x08), data (0x10). Identity map of 1 GiB, 2 MiB pages. */
	uint64_t *gdt = (uint64_t *)(mem + GDT_ADDR);
	gdt[0] = 0;
	gdt[1] = 0x00af9b000000ffffULL;
	gdt[2] = 0x00cf93000000ffffULL;
	uint64_t *pml4 = (uint64_t *)(mem + PML4_ADDR), *pdpt = (uint64_t *)(mem + PDPT_ADDR);
	uint64_t *pd = (uint64_t *)(mem + PD_ADDR);
	pml4[0] = PDPT_ADDR | 0x3;
	pdpt[0] = PD_ADDR | 0x3;
	for (uint64_t i = 0; i < 512; i++)
		pd[i] = (i << 21) | 0x83; /* present, writable, 2 MiB */

	int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	if (vcpu < 0)
		die("KVM_CREATE_VCPU");
	int nent = 256;
	struct kvm_cpuid2 *cpuid;
	for (;;) {
		cpuid = calloc(1, sizeof(*cpuid) + (size_t)nent * sizeof(struct kvm_cpuid_entry2));
		if (!cpuid)
			die("calloc");
		cpuid->nent = (uint32_t)nent;
		if (ioctl(kvm, KVM_GET_SUPPORTED_CPUID, cpuid) == 0)
			break;
		if (errno != E2BIG || nent > 4096)
			die("KVM_GET_SUPPORTED_CPUID");
		free(cpuid);
		nent *= 2;
	}
	if (ioctl(vcpu, KVM_SET_CPUID2, cpuid) < 0)
		die("KVM_SET_CPUID2");
	free(cpuid);

	struct kvm_sregs sregs;
	if (ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0)
		die("KVM_GET_SREGS");
	set_seg(&sregs.cs, 0x08, 0xb, 1, 0);
	set_seg(&sregs.ds, 0x10, 0x3, 0, 1);
	sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
	sregs.gdt.base = GDT_ADDR;
	sregs.gdt.limit = 3 * 8 - 1;
	sregs.cr3 = PML4_ADDR;
	sregs.cr4 = 0x20;	/* PAE */
	sregs.cr0 = 0x80000031; /* PG, NE, ET, PE */
	sregs.efer = 0x500;	/* LME, LMA */
	if (ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0)
		die("KVM_SET_SREGS");
	struct kvm_regs regs = {.rip = LOAD_ADDR + ENTRY64, .rflags = 0x2, .rsp = LOAD_ADDR};
	if (ioctl(vcpu, KVM_SET_REGS, &regs) < 0)
		die("KVM_SET_REGS");

	int run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (run_size <= 0)
		die("KVM_GET_VCPU_MMAP_SIZE");
	struct kvm_run *run =
	    mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
	if (run == MAP_FAILED)
		die("mmap kvm_run");

	uint64_t com1 = 0;
	for (;;) {
		if (ioctl(vcpu, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			die("KVM_RUN");
		}
		switch (run->exit_reason) {
		case KVM_EXIT_IO:
			if (run->io.direction != KVM_EXIT_IO_OUT)
				break; /* reads see whatever is in the data area */
			if (run->io.port == COM1) {
				com1 += run->io.count;
				if (echo && write(1, (uint8_t *)run + run->io.data_offset,
						  (size_t)run->io.size * run->io.count) < 0)
					die("write to stdout");
			} else if (run->io.port == I8042_CMD &&
				   ((uint8_t *)run)[run->io.data_offset] == 0xfe) {
				goto done;
			}
			break;
		case KVM_EXIT_SHUTDOWN:
			goto done;
		case KVM_EXIT_HLT:
			fail("the guest halted instead of ending");
			break;
		default:
			fprintf(stderr, "rawkvm: unexpected exit reason %u\n", run->exit_reason);
			return 1;
		}
	}
done:
	if (!echo && com1 != expect) {
		fprintf(stderr, "rawkvm: %" PRIu64 " bytes to COM1, expected %" PRIu64 "\n", com1,
			expect);
		return 1;
	}
	return 0;
}
