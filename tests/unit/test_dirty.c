/* test_dirty.c: dirty-page tracking (src/vmm/dirty.c): the VMM's own bitmap, the virtqueue
 * marking the buffers and used ring a device writes, and KVM's log against a real guest that
 * writes known pages. The KVM test is skipped without /dev/kvm. */
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

#include "config.h"
#include "virtio/queue.h"
#include "vmm/dirty.h"
#include "vmm/vm.h"

#include "tmpfile.h"

#define PG GUEST_PAGE_SIZE

static bool bit(const uint64_t *bm, uint64_t page) { return bm[page / 64] >> (page % 64) & 1; }

static uint64_t popcount(const uint64_t *bm, size_t words)
{
	uint64_t n = 0;
	for (size_t i = 0; i < words; i++)
		n += (uint64_t)__builtin_popcountll(bm[i]);
	return n;
}

/* Marking: off is a no-op; on, every page a range touches, in RAM-offset order across the
 * hole; outside RAM ignored; take clears. Layout only: no RAM is mapped. */
static void test_mark(void **state)
{
	struct guest_mem m;
	uint64_t ram = (3ULL << 30) + (64ULL << 20);
	(void)state;

	assert_int_equal(guest_mem_layout(&m, ram), 0);
	size_t words = guest_mem_bitmap_words(&m);
	uint64_t *out = calloc(words, sizeof(uint64_t));
	guest_mem_mark_dirty(&m, 0x1000, 1); /* tracking off */
	guest_mem_take_dirty(&m, out);
	assert_int_equal(popcount(out, words), 0);

	assert_int_equal(guest_mem_track_dirty(&m, true), 0);
	guest_mem_mark_dirty(&m, 0x1fff, 2);		  /* straddles pages 1 and 2 */
	guest_mem_mark_dirty(&m, 0x40000, 200 * PG);	  /* 200 pages from page 64: whole words */
	guest_mem_mark_dirty(&m, 0x100000000ULL + PG, 1); /* above 4 GiB: after region 0 */
	guest_mem_mark_dirty(&m, 0xd0000000ULL, 8);	  /* in the hole: ignored */
	guest_mem_mark_dirty(&m, UINT64_MAX - 4, 16);	  /* overflow: ignored */
	guest_mem_mark_dirty(&m, 0x5000, 0);		  /* length 0 counts as 1 byte */
	guest_mem_take_dirty(&m, out);
	assert_true(bit(out, 1) && bit(out, 2) && bit(out, 5));
	assert_false(bit(out, 0) || bit(out, 3) || bit(out, 63) || bit(out, 264));
	for (uint64_t p = 64; p < 264; p++)
		assert_true(bit(out, p));
	assert_true(bit(out, (3ULL << 30) / PG + 1));
	assert_int_equal(popcount(out, words), 3 + 200 + 1);
	memset(out, 0, words * sizeof(uint64_t));
	guest_mem_take_dirty(&m, out); /* cleared by the take */
	assert_int_equal(popcount(out, words), 0);
	assert_int_equal(guest_mem_track_dirty(&m, false), 0);
	assert_null(m.vmm_dirty);
	free(out);
}

/* A virtqueue marks the writable buffers it hands a device, and the used ring it writes. */
static void test_virtq_marks(void **state)
{
	struct guest_mem m;
	struct virtq vq = {.size = 4, .desc_gpa = 0x1000, .avail_gpa = 0x2000, .used_gpa = 0x3000};
	struct vq_chain c;
	struct iovec iov[4];
	(void)state;

	assert_int_equal(guest_mem_init(&m, 1 << 20), 0);
	size_t words = guest_mem_bitmap_words(&m);
	uint64_t *out = calloc(words, sizeof(uint64_t));
	struct vring_desc *d = gpa_to_hva(&m, 0x1000, 64);
	d[0] =
	    (struct vring_desc){.addr = 0x7000, .len = 16, .flags = VRING_DESC_F_NEXT, .next = 1};
	d[1] = (struct vring_desc){.addr = 0x8800, .len = PG, .flags = VRING_DESC_F_WRITE};
	struct vring_avail *a = gpa_to_hva(&m, 0x2000, 16);
	a->ring[0] = 0;
	a->idx = 1;
	assert_int_equal(vq_init(&vq, &m), 0);
	assert_int_equal(guest_mem_track_dirty(&m, true), 0);
	assert_int_equal(vq_pop(&vq, &c, iov, 4), 1);
	guest_mem_take_dirty(&m, out);
	/* The writable buffer (pages 8 and 9), not the readable one (page 7) nor the rings. */
	assert_true(bit(out, 8) && bit(out, 9));
	assert_int_equal(popcount(out, words), 2);
	memset(out, 0, words * sizeof(uint64_t));
	vq_push(&vq, c.head, 5);
	guest_mem_take_dirty(&m, out);
	assert_true(bit(out, 3));
	assert_int_equal(popcount(out, words), 1);
	free(out);
	guest_mem_destroy(&m);
}

/* memfd RAM: pages the memfd holds count as touched even where this mapping has none. */
static void test_mark_touched_memfd(void **state)
{
	struct guest_mem m;
	char err[256] = "";
	(void)state;

	assert_int_equal(guest_mem_init_memfd(&m, 1 << 20), 0);
	struct dirty_log d = {.mem = &m, .on = true};
	d.pages = calloc(guest_mem_bitmap_words(&m), sizeof(uint64_t));
	m.base[5 * PG] = 1;
	assert_int_equal(madvise(m.base + 5 * PG, PG, MADV_DONTNEED), 0); /* unmapped, kept */
	assert_int_equal(pwrite(m.fd, "x", 1, 7 * PG), 1);		  /* never mapped here */
	m.base[200 * PG] = 2;
	assert_int_equal(dirty_log_mark_touched(&d, err, sizeof(err)), 0);
	assert_true(bit(d.pages, 5) && bit(d.pages, 7) && bit(d.pages, 200));
	assert_int_equal(dirty_log_count(&d), 3);
	/* File-backed RAM already has its base: refused. */
	m.backing = GUEST_MEM_FILE;
	assert_int_equal(dirty_log_mark_touched(&d, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "file-backed"));
	m.backing = GUEST_MEM_MEMFD;
	free(d.pages);
	guest_mem_destroy(&m);
}

#define LOAD_GPA 0x100000
#define PORT 0xf4

static int need_kvm(void)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -1;
	close(fd);
	return 0;
}

/* Run the BSP from the test thread until it does `out PORT`. */
static void run_to_out(struct vm *vm)
{
	for (int i = 0; i < 100; i++) {
		int r = ioctl(vm->vcpus[0].fd, KVM_RUN, 0);
		if (r < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		assert_int_equal(r, 0);
		struct kvm_run *run = vm->vcpus[0].run;
		if (run->exit_reason == KVM_EXIT_IO && run->io.port == PORT)
			return;
	}
	fail_msg("the guest never reached its out instruction");
}

/* The pages at or above 1 MiB set in d->pages (below it, the CPU sets accessed and dirty
 * bits in the page tables and GDT kiln built). */
static unsigned high_pages(const struct dirty_log *d, uint64_t *list, unsigned cap)
{
	unsigned n = 0;
	for (uint64_t p = LOAD_GPA / PG; p < d->mem->ram_size / PG; p++)
		if (bit(d->pages, p) && n < cap)
			list[n++] = p;
	return n;
}

/* A guest writes three pages, exits, writes a fourth: the log reports exactly those, each
 * sync only what came after the last clear, plus what the VMM marked itself. */
static void test_kvm_log(void **state)
{
	/* 64-bit code at 1 MiB: write 1 to three pages, out; write 2 to a fourth, out; loop. */
	static const uint8_t code[] = {
	    0xb8, 0x00, 0x00, 0x20, 0x00, 0xc6, 0x00, 0x01, /* mov eax,0x200000; mov [rax],1 */
	    0xb8, 0x00, 0x50, 0x30, 0x00, 0xc6, 0x00, 0x01, /* mov eax,0x305000; mov [rax],1 */
	    0xb8, 0x00, 0xf0, 0xff, 0x03, 0xc6, 0x00, 0x01, /* mov eax,0x3fff000; mov [rax],1 */
	    0xe6, PORT,					    /* out PORT, al */
	    0xb8, 0x00, 0x00, 0x40, 0x00, 0xc6, 0x00, 0x02, /* mov eax,0x400000; mov [rax],2 */
	    0xe6, PORT,					    /* out PORT, al */
	    0xeb, 0xfe,					    /* jmp $ */
	};
	struct vm_config c;
	struct vm vm;
	struct dirty_log d;
	char err[256] = "";
	uint64_t list[16];
	(void)state;

	if (need_kvm()) {
		print_message("/dev/kvm not available: skipping\n");
		skip();
	}
	vm_config_init(&c);
	c.kernel_path = tmp_elf_kernel(LOAD_GPA, code, sizeof(code));
	c.cpus = 1;
	c.mem_size = 64ULL << 20;
	c.serial_mode = SERIAL_OFF;
	assert_int_equal(vm_create(&vm, &c, err, sizeof(err)), 0);
	assert_int_equal(dirty_log_start(&d, vm.vm_fd, &vm.mem, err, sizeof(err)), 0);
	assert_int_equal(dirty_log_sync(&d, err, sizeof(err)), 0);
	assert_int_equal(dirty_log_count(&d), 0); /* kiln's boot writes came before the start */
	/* ... unless counted as touched: the kernel at 1 MiB, the page tables, not the rest. */
	assert_int_equal(dirty_log_mark_touched(&d, err, sizeof(err)), 0);
	assert_true(bit(d.pages, LOAD_GPA / PG) && bit(d.pages, 0x9));
	assert_false(bit(d.pages, 0x200) || bit(d.pages, 0x3fff));
	dirty_log_clear(&d);

	run_to_out(&vm);
	assert_int_equal(*(uint8_t *)gpa_to_hva(&vm.mem, 0x305000, 1), 1);
	guest_mem_mark_dirty(&vm.mem, 0x600ff0, 32); /* a device wrote pages 0x600, 0x601 */
	assert_int_equal(dirty_log_sync(&d, err, sizeof(err)), 0);
	unsigned n = high_pages(&d, list, 16);
	uint64_t want1[] = {0x200, 0x305, 0x600, 0x601, 0x3fff};
	assert_int_equal(n, 5);
	assert_memory_equal(list, want1, sizeof(want1));

	/* Sync again without clearing: the pages stay (KVM's log was emptied, ours kept them). */
	assert_int_equal(dirty_log_sync(&d, err, sizeof(err)), 0);
	assert_int_equal(high_pages(&d, list, 16), 5);

	dirty_log_clear(&d);
	run_to_out(&vm);
	assert_int_equal(dirty_log_sync(&d, err, sizeof(err)), 0);
	n = high_pages(&d, list, 16);
	assert_int_equal(n, 1);
	assert_int_equal(list[0], 0x400);

	dirty_log_stop(&d);
	assert_null(vm.mem.vmm_dirty);
	assert_int_equal(dirty_log_sync(&d, err, sizeof(err)), -EINVAL);
	vm_destroy(&vm);
	unlink(c.kernel_path);
	vm_config_free(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_mark),
	    cmocka_unit_test(test_virtq_marks),
	    cmocka_unit_test(test_mark_touched_memfd),
	    cmocka_unit_test(test_kvm_log),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
