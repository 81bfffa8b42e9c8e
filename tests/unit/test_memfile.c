/* test_memfile.c: snapshot memory files (src/snapshot/memfile.c, rebase.c) and restoring guest
 * RAM from one (guest_mem_init_from_file), plus the memfd backing. No KVM needed. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "snapshot/memfile.h"
#include "vmm/memory.h"

#define PG GUEST_PAGE_SIZE
#define RAM (16ULL << 20)

/* A fresh path under /tmp that does not exist yet (malloc'd). */
static char *tmp_path(void)
{
	char *p = strdup("/tmp/kiln-memfile-XXXXXX");
	int fd = mkstemp(p);
	assert_true(fd >= 0);
	close(fd);
	unlink(p);
	return p;
}

static void drop(char *p)
{
	unlink(p);
	free(p);
}

/* The whole file equals RAM offsets [0, size) of m. */
static void assert_file_is_ram(const char *path, const struct guest_mem *m)
{
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	uint8_t *buf = malloc(1 << 20);
	assert_non_null(buf);
	for (uint64_t off = 0; off < m->ram_size; off += 1 << 20) {
		assert_int_equal(pread(fd, buf, 1 << 20, (off_t)off), 1 << 20);
		assert_memory_equal(buf, m->base + off, 1 << 20);
	}
	uint8_t extra;
	assert_int_equal(pread(fd, &extra, 1, (off_t)m->ram_size), 0);
	free(buf);
	close(fd);
}

/* Data extents of a file as a list of [start, end) pairs; returns how many. */
static unsigned extents(const char *path, uint64_t *out, unsigned cap)
{
	int fd = open(path, O_RDONLY);
	struct stat st;
	unsigned n = 0;
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	for (off_t off = 0; off < st.st_size && n < cap;) {
		off_t d = lseek(fd, off, SEEK_DATA);
		if (d < 0)
			break;
		off_t h = lseek(fd, d, SEEK_HOLE);
		out[2 * n] = (uint64_t)d;
		out[2 * n + 1] = (uint64_t)h;
		n++;
		off = h;
	}
	close(fd);
	return n;
}

static void set_bit(uint64_t *bm, uint64_t page) { bm[page / 64] |= 1ULL << (page % 64); }

/* Full: untouched and all-zero pages stay holes; the file reads back as RAM. */
static void test_full_sparse(void **state)
{
	struct guest_mem m;
	struct memfile_stats st;
	struct stat sb;
	char err[256] = "";
	char *path = tmp_path();
	(void)state;

	assert_int_equal(guest_mem_init(&m, RAM), 0);
	m.base[0] = 1;
	memset(m.base + 5 * PG + 100, 0xab, 10);
	m.base[RAM - 1] = 0xff;
	memset(m.base + 9 * PG, 0, PG); /* touched, but zero: a hole */
	assert_int_equal(memfile_write(&m, path, NULL, &st, err, sizeof(err)), 0);
	assert_int_equal(st.pages_written, 3);
	/* pagemap skipped the untouched pages: only the 4 touched ones were read (the zero page
	 * write may have faulted in more under THP, so allow its 2 MiB). */
	assert_true(st.pages_scanned >= 4 && st.pages_scanned <= 4 + 512);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_size, RAM);
	assert_true((uint64_t)sb.st_blocks * 512 <= 3 * PG + 64 * 1024);
	assert_file_is_ram(path, &m);
	uint64_t ex[8];
	assert_int_equal(extents(path, ex, 4), 3);
	assert_int_equal(ex[0], 0);
	assert_int_equal(ex[2], 5 * PG);
	assert_int_equal(ex[5], RAM);
	/* No temporary file ("<path>.XXXXXX") left beside it. */
	const char *name = strrchr(path, '/') + 1;
	DIR *dir = opendir("/tmp");
	assert_non_null(dir);
	for (struct dirent *e; (e = readdir(dir));)
		assert_false(strncmp(e->d_name, name, strlen(name)) == 0 &&
			     e->d_name[strlen(name)] == '.');
	closedir(dir);
	guest_mem_destroy(&m);
	drop(path);
}

/* RAM above the 32-bit hole lands right after the low region in the file. */
static void test_full_two_regions(void **state)
{
	struct guest_mem m;
	char err[256] = "";
	char *path = tmp_path();
	uint64_t ram = (3ULL << 30) + (4ULL << 20);
	(void)state;

	assert_int_equal(guest_mem_init(&m, ram), 0);
	assert_int_equal(m.nr_regions, 2);
	uint8_t *hi = gpa_to_hva(&m, 0x100000000ULL + 3 * PG, 1);
	assert_non_null(hi);
	*hi = 0x5a;
	*(uint8_t *)gpa_to_hva(&m, 0x1000, 1) = 0x11;
	assert_int_equal(memfile_write(&m, path, NULL, NULL, err, sizeof(err)), 0);
	uint64_t ex[8];
	assert_int_equal(extents(path, ex, 4), 2);
	assert_int_equal(ex[0], PG);
	assert_int_equal(ex[2], (3ULL << 30) + 3 * PG);
	int fd = open(path, O_RDONLY);
	uint8_t b = 0;
	assert_int_equal(pread(fd, &b, 1, (off_t)((3ULL << 30) + 3 * PG)), 1);
	assert_int_equal(b, 0x5a);
	close(fd);
	guest_mem_destroy(&m);
	drop(path);
}

/* Diff: exactly the dirty pages, as data even when they hold zeros. */
static void test_diff(void **state)
{
	struct guest_mem m;
	struct memfile_stats st;
	char err[256] = "";
	char *path = tmp_path();
	(void)state;

	assert_int_equal(guest_mem_init(&m, RAM), 0);
	uint64_t *dirty = calloc(guest_mem_bitmap_words(&m), sizeof(uint64_t));
	memset(m.base + 1 * PG, 0x31, PG);
	memset(m.base + 2 * PG, 0x32, PG); /* changed but not dirty: must not be written */
	memset(m.base + 9 * PG, 0x39, 8);
	set_bit(dirty, 1);
	set_bit(dirty, 7); /* dirtied to zero */
	set_bit(dirty, 9);
	set_bit(dirty, RAM / PG - 1);
	assert_int_equal(memfile_write(&m, path, dirty, &st, err, sizeof(err)), 0);
	assert_int_equal(st.pages_written, 4);
	uint64_t ex[12];
	assert_int_equal(extents(path, ex, 6), 4);
	uint64_t want[] = {PG, 2 * PG, 7 * PG, 8 * PG, 9 * PG, 10 * PG, RAM - PG, RAM};
	assert_memory_equal(ex, want, sizeof(want));
	int fd = open(path, O_RDONLY);
	uint8_t page[PG], zero[PG] = {0};
	assert_int_equal(pread(fd, page, PG, 7 * PG), (ssize_t)PG);
	assert_memory_equal(page, zero, PG);
	assert_int_equal(pread(fd, page, PG, 1 * PG), (ssize_t)PG);
	assert_memory_equal(page, m.base + PG, PG);
	assert_int_equal(pread(fd, page, PG, 2 * PG), (ssize_t)PG);
	assert_memory_equal(page, zero, PG); /* a hole */
	close(fd);
	free(dirty);
	guest_mem_destroy(&m);
	drop(path);
}

/* Full, then changes, then Diff, then rebase: the base equals the final RAM, zeroing too. */
static void test_rebase(void **state)
{
	struct guest_mem m;
	char err[256] = "";
	char *base = tmp_path(), *diff = tmp_path();
	uint64_t copied = 0;
	(void)state;

	assert_int_equal(guest_mem_init(&m, RAM), 0);
	for (unsigned i = 0; i < 64; i++)
		memset(m.base + (uint64_t)i * 3 * PG, (int)(i + 1), PG);
	assert_int_equal(memfile_write(&m, base, NULL, NULL, err, sizeof(err)), 0);

	uint64_t *dirty = calloc(guest_mem_bitmap_words(&m), sizeof(uint64_t));
	memset(m.base + 3 * PG, 0xee, PG); /* changed */
	set_bit(dirty, 3);
	memset(m.base + 6 * PG, 0, PG); /* zeroed: the overlay must carry it */
	set_bit(dirty, 6);
	memset(m.base + 1000 * PG, 0x77, 17); /* new */
	set_bit(dirty, 1000);
	assert_int_equal(memfile_write(&m, diff, dirty, NULL, err, sizeof(err)), 0);
	assert_int_equal(memfile_rebase(base, diff, &copied, err, sizeof(err)), 0);
	assert_int_equal(copied, 3 * PG);
	assert_file_is_ram(base, &m);

	/* Size mismatch, not a regular file, the same file twice: refused with one line. */
	assert_int_equal(truncate(diff, RAM - PG), 0);
	assert_int_equal(memfile_rebase(base, diff, NULL, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "bytes, base file"));
	assert_int_equal(memfile_rebase(base, "/tmp", NULL, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "diff file /tmp: not a regular file"));
	assert_int_equal(memfile_rebase(base, base, NULL, err, sizeof(err)), -EINVAL);
	assert_int_equal(memfile_rebase(base, "/nonexistent/x", NULL, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "diff file /nonexistent/x: "));
	assert_file_is_ram(base, &m); /* untouched by the refusals */

	/* The subcommand. */
	char *help[] = {"--help"};
	assert_int_equal(memfile_rebase_main(1, help), 0);
	char *none[] = {"--base-file", base};
	assert_int_equal(memfile_rebase_main(2, none), 1);
	char *dangling[] = {"--base-file"};
	assert_int_equal(memfile_rebase_main(1, dangling), 1);
	assert_int_equal(truncate(diff, RAM), 0);
	char *ok[] = {"--base-file", base, "--diff-file", diff};
	assert_int_equal(memfile_rebase_main(4, ok), 0);

	free(dirty);
	guest_mem_destroy(&m);
	drop(base);
	drop(diff);
}

/* A sparse snapshot file of RAM bytes with a marker on a few pages; returns its fd. */
static int snapshot_file(char **path)
{
	*path = tmp_path();
	int fd = open(*path, O_RDWR | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, RAM), 0);
	for (uint64_t p = 10; p < 20; p++) {
		char s[32];
		int n = snprintf(s, sizeof(s), "page %llu", (unsigned long long)p);
		assert_int_equal(pwrite(fd, s, (size_t)n, (off_t)(p * PG)), n);
	}
	return fd;
}

static void test_init_from_file(void **state)
{
	struct guest_mem m;
	char err[256] = "", want[256];
	char *path;
	(void)state;

	int fd = snapshot_file(&path);
	assert_int_equal(guest_mem_init_from_file(&m, RAM, fd, path, err, sizeof(err)), 0);
	assert_int_equal(m.backing, GUEST_MEM_FILE);
	assert_memory_equal(m.base + 12 * PG, "page 12", 7);
	assert_int_equal(m.base[100 * PG], 0);
	/* Private: writes stay in this process. */
	memcpy(m.base + 12 * PG, "CHANGED", 7);
	m.base[200 * PG] = 1;
	char back[8] = "";
	assert_int_equal(pread(fd, back, 7, 12 * PG), 7);
	assert_memory_equal(back, "page 12", 7);
	assert_int_equal(pread(fd, back, 1, 200 * PG), 1);
	assert_int_equal(back[0], 0);

	/* A Full snapshot of restored RAM: the file's pages that were never touched here are
	 * included (read through the mapping), the written ones come from memory. */
	char *out = tmp_path();
	struct memfile_stats st;
	assert_int_equal(memfile_write(&m, out, NULL, &st, err, sizeof(err)), 0);
	assert_file_is_ram(out, &m);
	assert_int_equal(st.pages_written, 11);
	drop(out);
	guest_mem_destroy(&m);
	assert_int_equal(m.fd, -1);

	/* Sizes that do not match the snapshot's RAM. */
	assert_int_equal(ftruncate(fd, RAM - PG), 0);
	assert_int_equal(guest_mem_init_from_file(&m, RAM, fd, path, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want),
		 "memory file %s: %llu bytes, the snapshot's guest RAM is %llu bytes", path,
		 RAM - PG, RAM);
	assert_string_equal(err, want);
	assert_null(m.base);
	assert_int_equal(ftruncate(fd, RAM + PG), 0);
	assert_int_equal(guest_mem_init_from_file(&m, RAM, fd, path, err, sizeof(err)), -EINVAL);
	assert_int_equal(guest_mem_init_from_file(&m, RAM + 100, fd, path, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "is not valid"));
	close(fd);

	/* Not a regular file. */
	int pipefd[2];
	assert_int_equal(pipe(pipefd), 0);
	assert_int_equal(guest_mem_init_from_file(&m, RAM, pipefd[0], "pipe", err, sizeof(err)),
			 -EINVAL);
	assert_string_equal(err, "memory file pipe: not a regular file");
	close(pipefd[0]);
	close(pipefd[1]);
	drop(path);
}

/* memfd backing: shared with anyone mapping the fd, size sealed, snapshot-able. */
static void test_memfd(void **state)
{
	struct guest_mem m;
	char err[256] = "";
	char *out = tmp_path();
	(void)state;

	assert_int_equal(guest_mem_init_memfd(&m, RAM), 0);
	assert_int_equal(m.backing, GUEST_MEM_MEMFD);
	memset(m.base + 40 * PG, 0x42, 5);
	uint8_t b = 0;
	assert_int_equal(pread(m.fd, &b, 1, 40 * PG), 1);
	assert_int_equal(b, 0x42);
	assert_int_equal(ftruncate(m.fd, RAM / 2), -1); /* sealed */
	assert_int_equal(errno, EPERM);
	struct memfile_stats st;
	assert_int_equal(memfile_write(&m, out, NULL, &st, err, sizeof(err)), 0);
	assert_int_equal(st.pages_written, 1);
	assert_file_is_ram(out, &m);
	guest_mem_destroy(&m);
	drop(out);
}

/* A path that cannot be written: one error line naming it, nothing left behind. */
static void test_write_errors(void **state)
{
	struct guest_mem m;
	char err[256] = "";
	(void)state;

	assert_int_equal(guest_mem_init(&m, RAM), 0);
	assert_int_equal(memfile_write(&m, "/nonexistent/mem", NULL, NULL, err, sizeof(err)),
			 -ENOENT);
	assert_string_equal(err, "memory file /nonexistent/mem: create: No such file or directory");
	guest_mem_destroy(&m);
	struct guest_mem empty;
	assert_int_equal(guest_mem_layout(&empty, RAM), 0);
	assert_int_equal(memfile_write(&empty, "/tmp/x", NULL, NULL, err, sizeof(err)), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_full_sparse),	   cmocka_unit_test(test_full_two_regions),
	    cmocka_unit_test(test_diff),	   cmocka_unit_test(test_rebase),
	    cmocka_unit_test(test_init_from_file), cmocka_unit_test(test_memfd),
	    cmocka_unit_test(test_write_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
