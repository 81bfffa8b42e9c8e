/* test_snapformat.c: the snapshot state file: CRC-64, writer, checked reader, hostile files. */
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
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "kiln-build.h"
#include "snapshot/crc64.h"
#include "snapshot/format.h"

/* Entry i of the section table, field at byte `field` of the entry. */
#define ENTRY(i, field) (SNAP_HEADER_SIZE + (i) * SNAP_TABLE_ENTRY_SIZE + (field))

static void set32(uint8_t *p, uint32_t v)
{
	for (unsigned i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void set64(uint8_t *p, uint64_t v)
{
	for (unsigned i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* A correct checksum again after a test changed the file, so that what is checked is the
 * change and not the CRC. */
static void reseal(uint8_t *d, size_t len)
{
	set64(d + len - SNAP_TRAILER_SIZE, crc64_xz(0, d, len - SNAP_TRAILER_SIZE));
}

static void add(struct snap_file_writer *w, uint32_t id, uint32_t instance, const char *text)
{
	struct snap_buf b;

	snap_buf_init(&b);
	snap_put_bytes(&b, text, strlen(text));
	assert_int_equal(snap_file_add(w, id, instance, &b), 0);
	assert_null(b.data); /* taken over */
}

/* Table order: config, vcpu 0, vcpu 1, serial (empty), virtio 0. */
static void make_file(struct snap_buf *out)
{
	struct snap_file_writer w;
	char err[256];

	snap_file_writer_init(&w);
	add(&w, SNAP_SEC_CONFIG, 0, "cfg:2 vcpus");
	add(&w, SNAP_SEC_VCPU, 0, "regs of vcpu zero");
	add(&w, SNAP_SEC_VCPU, 1, "regs of vcpu one");
	add(&w, SNAP_SEC_SERIAL, 0, "");
	add(&w, SNAP_SEC_VIRTIO, 0, "blk");
	assert_int_equal(snap_file_serialize(&w, out, err, sizeof(err)), 0);
	snap_file_writer_free(&w);
}

/* Parsing d must fail with one line holding `want`. */
static void expect_bad(const uint8_t *d, size_t len, const char *want)
{
	struct snap_file f;
	char err[512] = "";

	assert_int_not_equal(snap_file_parse(d, len, &f, err, sizeof(err)), 0);
	if (!strstr(err, want))
		fail_msg("error '%s' lacks '%s'", err, want);
	assert_null(strchr(err, '\n'));
	assert_null(f.sections);
}

static void test_crc64(void **state)
{
	const char *s = "123456789";
	(void)state;

	assert_true(crc64_xz(0, s, 9) == 0x995DC9BBDF1939FAULL);
	assert_true(crc64_xz(crc64_xz(0, s, 4), s + 4, 5) == 0x995DC9BBDF1939FAULL);
	assert_true(crc64_xz(0, "", 0) == 0);
}

static void expect_section(const struct snap_file *f, uint32_t id, uint32_t inst,
			   const char *name, const char *text)
{
	struct snap_cursor c;
	char got[64] = "", err[256];

	assert_int_equal(snap_file_section(f, id, inst, &c), 0);
	assert_string_equal(c.name, name);
	assert_int_equal(c.len, strlen(text));
	snap_get_bytes(&c, got, strlen(text));
	assert_string_equal(got, text);
	assert_int_equal(snap_cursor_end(&c, err, sizeof(err)), 0);
}

static void test_round_trip(void **state)
{
	struct snap_buf b;
	struct snap_file f;
	struct snap_cursor c;
	char err[256];
	(void)state;

	make_file(&b);
	assert_memory_equal(b.data, "KILNSNAP", 8);
	assert_int_equal(b.data[8], 1); /* format version, little-endian */
	assert_int_equal(b.data[12], SNAP_HEADER_SIZE);
	assert_int_equal(b.data[48], 5); /* sections */
	assert_int_equal(snap_file_parse(b.data, b.len, &f, err, sizeof(err)), 0);
	assert_string_equal(f.kiln_version, KILN_VERSION);
	assert_int_equal(f.nr_sections, 5);
	expect_section(&f, SNAP_SEC_CONFIG, 0, "config", "cfg:2 vcpus");
	expect_section(&f, SNAP_SEC_VCPU, 0, "vcpu 0", "regs of vcpu zero");
	expect_section(&f, SNAP_SEC_VCPU, 1, "vcpu 1", "regs of vcpu one");
	expect_section(&f, SNAP_SEC_SERIAL, 0, "serial", "");
	expect_section(&f, SNAP_SEC_VIRTIO, 0, "virtio 0", "blk");
	assert_int_equal(snap_file_section(&f, SNAP_SEC_VCPU, 2, &c), -ENOENT);
	assert_int_equal(snap_file_section(&f, SNAP_SEC_RTC, 0, &c), -ENOENT);
	assert_int_equal(snap_file_count(&f, SNAP_SEC_VCPU), 2);
	assert_int_equal(snap_file_count(&f, SNAP_SEC_VIRTIO), 1);
	assert_int_equal(snap_file_count(&f, SNAP_SEC_PCI), 0);
	snap_file_free(&f);
	snap_file_free(&f); /* harmless twice */
	snap_buf_free(&b);
}

static void test_empty_file(void **state)
{
	struct snap_file_writer w;
	struct snap_buf b;
	struct snap_file f;
	char err[256];
	(void)state;

	snap_file_writer_init(&w);
	assert_int_equal(snap_file_serialize(&w, &b, err, sizeof(err)), 0);
	assert_int_equal(b.len, SNAP_HEADER_SIZE + SNAP_TRAILER_SIZE);
	assert_int_equal(snap_file_parse(b.data, b.len, &f, err, sizeof(err)), 0);
	assert_int_equal(f.nr_sections, 0);
	snap_file_free(&f);
	snap_buf_free(&b);
	snap_file_writer_free(&w);
}

static void test_names(void **state)
{
	static const char *const want[] = {
	    [SNAP_SEC_CONFIG] = "config", [SNAP_SEC_MEMORY] = "memory", [SNAP_SEC_VM] = "vm",
	    [SNAP_SEC_VCPU] = "vcpu 3", [SNAP_SEC_SERIAL] = "serial", [SNAP_SEC_I8042] = "i8042",
	    [SNAP_SEC_RTC] = "rtc", [SNAP_SEC_ACPI_PM] = "acpi_pm", [SNAP_SEC_PCI] = "pci",
	    [SNAP_SEC_VIRTIO] = "virtio 3", [SNAP_SEC_VMGENID] = "vmgenid",
	};
	char name[SNAP_SECTION_NAME_LEN], err[128];
	(void)state;

	for (uint32_t id = SNAP_SEC_FIRST; id <= SNAP_SEC_LAST; id++) {
		snap_section_name(id, 3, name, sizeof(name));
		assert_string_equal(name, want[id]);
	}
	snap_section_name(0, 0, name, sizeof(name));
	assert_string_equal(name, "unknown section 0");
	snap_section_name(SNAP_SEC_VIRTIO, UINT32_MAX, name, sizeof(name));
	assert_string_equal(name, "virtio 4294967295");
	snap_file_missing(SNAP_SEC_VCPU, 2, err, sizeof(err));
	assert_string_equal(err, "section 'vcpu 2' is missing");
}

/* Every prefix of a good file, and the file with a byte more, fails with a message. */
static void test_truncated_everywhere(void **state)
{
	struct snap_buf b;
	(void)state;

	make_file(&b);
	for (size_t len = 0; len < b.len; len++)
		expect_bad(b.data, len, len < SNAP_HEADER_SIZE + SNAP_TRAILER_SIZE ? "header: " : "checksum: ");
	expect_bad(NULL, 0, "not a kiln snapshot");
	uint8_t *longer = calloc(1, b.len + 1);
	assert_non_null(longer);
	memcpy(longer, b.data, b.len);
	expect_bad(longer, b.len + 1, "checksum: ");
	free(longer);
	snap_buf_free(&b);
}

static void test_bit_flips(void **state)
{
	struct snap_buf b;
	(void)state;

	make_file(&b);
	for (size_t bit = 0; bit < b.len * 8; bit++) {
		b.data[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		expect_bad(b.data, b.len, ""); /* fails, with one line */
		b.data[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	/* A flip in a section's bytes is the checksum's to find. */
	b.data[b.len - SNAP_TRAILER_SIZE - 1] ^= 0x10;
	expect_bad(b.data, b.len, "checksum: stored 0x");
	snap_buf_free(&b);
}

static void test_header_fields(void **state)
{
	struct snap_buf b;
	(void)state;

	make_file(&b);
	b.data[0] = 'X';
	reseal(b.data, b.len);
	expect_bad(b.data, b.len, "header: not a kiln snapshot");
	expect_bad((const uint8_t *)"ELF", 3, "header: not a kiln snapshot");
	b.data[0] = 'K';

	set32(b.data + 8, 2);
	reseal(b.data, b.len);
	expect_bad(b.data, b.len,
		   "header: format version 2 (written by kiln " KILN_VERSION "), this kiln reads 1");
	expect_bad(b.data, 12, "header: format version 2 (written by kiln unknown)");
	set32(b.data + 8, SNAP_FORMAT_VERSION);

	set32(b.data + 12, 64);
	reseal(b.data, b.len);
	expect_bad(b.data, b.len, "header: header size 64, format version 1 has 56");
	set32(b.data + 12, SNAP_HEADER_SIZE);

	set32(b.data + 52, 1);
	reseal(b.data, b.len);
	expect_bad(b.data, b.len, "header: flags 0x1");
	set32(b.data + 52, 0);

	memset(b.data + 16, 'v', SNAP_VERSION_LEN);
	reseal(b.data, b.len);
	expect_bad(b.data, b.len, "header: kiln_version is not NUL-terminated");
	snap_buf_free(&b);
}

static void test_table(void **state)
{
	struct snap_buf b;
	uint8_t *d;
	uint64_t off0;
	(void)state;

	make_file(&b);
	d = b.data;
	off0 = SNAP_HEADER_SIZE + 5 * SNAP_TABLE_ENTRY_SIZE;

	set32(d + 48, SNAP_MAX_SECTIONS + 1);
	reseal(d, b.len);
	expect_bad(d, b.len, "section table: 1025 entries, at most 1024");
	set32(d + 48, 40);
	reseal(d, b.len);
	expect_bad(d, b.len, "section table: 40 entries need");
	set32(d + 48, 5);

	set32(d + ENTRY(2, 0), 12);
	reseal(d, b.len);
	expect_bad(d, b.len, "section table entry 2: unknown section id 12");
	set32(d + ENTRY(2, 0), 0);
	reseal(d, b.len);
	expect_bad(d, b.len, "section table entry 2: unknown section id 0");
	set32(d + ENTRY(2, 0), SNAP_SEC_VCPU);

	set32(d + ENTRY(3, 4), 1); /* serial 1 */
	reseal(d, b.len);
	expect_bad(d, b.len, "section table entry 3: section 'serial' has instance 1");
	set32(d + ENTRY(3, 4), 0);

	/* Duplicate: vcpu 1 renamed vcpu 0. */
	set32(d + ENTRY(2, 4), 0);
	reseal(d, b.len);
	expect_bad(d, b.len, "section 'vcpu 0': twice in the table (entries 1 and 2)");
	set32(d + ENTRY(2, 4), 1);

	/* Overlap: vcpu 0 starts one byte into config. */
	set64(d + ENTRY(1, 8), off0 + 1);
	reseal(d, b.len);
	expect_bad(d, b.len, "section 'vcpu 0' (table entry 1) overlaps section 'config' (table entry 0)");
	set64(d + ENTRY(1, 8), off0 + 11);
	/* An empty section inside another. */
	set64(d + ENTRY(3, 8), off0 + 3);
	reseal(d, b.len);
	expect_bad(d, b.len, "section 'serial' (table entry 3) overlaps section 'config' (table entry 0)");
	snap_buf_free(&b);

	make_file(&b);
	d = b.data;
	/* Past the end, into the checksum, into the table, wrapping around. */
	set64(d + ENTRY(4, 16), 4);
	reseal(d, b.len);
	expect_bad(d, b.len, "section 'virtio 0' (table entry 4): 4 bytes at");
	set64(d + ENTRY(4, 16), 3);
	set64(d + ENTRY(0, 8), off0 - 1);
	reseal(d, b.len);
	expect_bad(d, b.len, "section 'config' (table entry 0): 11 bytes at 175, outside the section area 176..");
	set64(d + ENTRY(0, 8), UINT64_MAX);
	set64(d + ENTRY(0, 16), 2);
	reseal(d, b.len);
	expect_bad(d, b.len, "section 'config' (table entry 0): 2 bytes at 18446744073709551615");
	snap_buf_free(&b);
}

static void test_writer_errors(void **state)
{
	struct snap_file_writer w;
	struct snap_buf b, out;
	char err[256];
	(void)state;

	snap_file_writer_init(&w);
	add(&w, SNAP_SEC_VCPU, 0, "a");
	snap_buf_init(&b);
	snap_put_u8(&b, 1);
	assert_int_equal(snap_file_add(&w, SNAP_SEC_VCPU, 0, &b), -EEXIST);
	assert_null(b.data);
	assert_int_equal(snap_file_serialize(&w, &out, err, sizeof(err)), -EEXIST);
	assert_string_equal(err, "section 'vcpu 0': added twice");
	assert_null(out.data);
	assert_int_equal(snap_file_write(&w, "/nonexistent/x", err, sizeof(err)), -EEXIST);
	assert_string_equal(err, "snapshot file '/nonexistent/x': section 'vcpu 0': added twice");
	snap_file_writer_free(&w);

	snap_file_writer_init(&w);
	snap_buf_init(&b);
	assert_int_equal(snap_file_add(&w, 12, 0, &b), -EINVAL);
	assert_int_equal(snap_file_serialize(&w, &out, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "unknown section 12: not a section this format has");
	snap_file_writer_free(&w);

	snap_file_writer_init(&w);
	assert_int_equal(snap_file_add(&w, SNAP_SEC_RTC, 1, &b), -EINVAL);
	assert_int_equal(snap_file_serialize(&w, &out, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "section 'rtc': instance 1 of a section that comes once");
	snap_file_writer_free(&w);

	snap_file_writer_init(&w);
	snap_put_u32(&b, 7);
	b.oom = true; /* as after a failed allocation */
	assert_int_equal(snap_file_add(&w, SNAP_SEC_VM, 0, &b), -ENOMEM);
	assert_null(b.data);
	assert_false(b.oom);
	assert_int_equal(snap_file_serialize(&w, &out, err, sizeof(err)), -ENOMEM);
	assert_string_equal(err, "section 'vm': out of memory while saving it");
	snap_file_writer_free(&w);
}

/* The most sections a file may have is written and read back; one more is refused. */
static void test_section_limit(void **state)
{
	struct snap_file_writer w;
	struct snap_buf b, out;
	struct snap_file f;
	char err[256];
	(void)state;

	snap_file_writer_init(&w);
	for (uint32_t i = 0; i < SNAP_MAX_SECTIONS; i++) {
		snap_buf_init(&b);
		snap_put_u32(&b, i);
		assert_int_equal(snap_file_add(&w, SNAP_SEC_VCPU, i, &b), 0);
	}
	assert_int_equal(snap_file_serialize(&w, &out, err, sizeof(err)), 0);
	assert_int_equal(snap_file_parse(out.data, out.len, &f, err, sizeof(err)), 0);
	assert_int_equal(snap_file_count(&f, SNAP_SEC_VCPU), SNAP_MAX_SECTIONS);
	for (uint32_t i = 0; i < SNAP_MAX_SECTIONS; i++) {
		struct snap_cursor c;

		assert_int_equal(snap_file_section(&f, SNAP_SEC_VCPU, i, &c), 0);
		assert_int_equal(snap_get_u32(&c), i);
		assert_int_equal(snap_cursor_end(&c, err, sizeof(err)), 0);
	}
	snap_file_free(&f);
	snap_buf_free(&out);
	snap_buf_init(&b);
	assert_int_equal(snap_file_add(&w, SNAP_SEC_VCPU, SNAP_MAX_SECTIONS, &b), -EFBIG);
	snap_file_writer_free(&w);
}

/* A scratch directory for the file tests; removed by rm_dir. */
static char *scratch(char *dir, size_t len)
{
	snprintf(dir, len, "/tmp/test_snapformat-XXXXXX");
	assert_non_null(mkdtemp(dir));
	return dir;
}

/* Entries in dir other than . and .., with a name containing `part`. */
static int count_entries(const char *dir, const char *part)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)))
		n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && strstr(e->d_name, part);
	closedir(d);
	return n;
}

static void test_file_round_trip(void **state)
{
	struct snap_file_writer w;
	struct snap_file f;
	struct stat st;
	char dir[64], path[128], err[512];
	(void)state;

	scratch(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/vm.snap", dir);
	snap_file_writer_init(&w);
	add(&w, SNAP_SEC_VM, 0, "irqchip");
	add(&w, SNAP_SEC_VCPU, 0, "regs");
	assert_int_equal(snap_file_write(&w, path, err, sizeof(err)), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	/* Over an existing file, too. */
	assert_int_equal(snap_file_write(&w, path, err, sizeof(err)), 0);
	snap_file_writer_free(&w);
	assert_int_equal(count_entries(dir, ".tmp-"), 0);

	assert_int_equal(snap_file_read(path, &f, err, sizeof(err)), 0);
	expect_section(&f, SNAP_SEC_VM, 0, "vm", "irqchip");
	expect_section(&f, SNAP_SEC_VCPU, 0, "vcpu 0", "regs");
	snap_file_free(&f);

	/* A damaged file names itself and the part. */
	int fd = open(path, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "X", 1, 0), 1);
	close(fd);
	assert_int_equal(snap_file_read(path, &f, err, sizeof(err)), -EINVAL);
	char want[256];
	snprintf(want, sizeof(want), "snapshot file '%s': header: not a kiln snapshot", path);
	assert_memory_equal(err, want, strlen(want));
	unlink(path);
	rmdir(dir);
}

static void test_read_refuses(void **state)
{
	struct snap_file f;
	char dir[64], path[128], err[512];
	int fd;
	(void)state;

	scratch(dir, sizeof(dir));
	assert_int_equal(snap_file_read(dir, &f, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "': not a regular file"));

	snprintf(path, sizeof(path), "%s/fifo", dir);
	assert_int_equal(mkfifo(path, 0600), 0);
	assert_int_equal(snap_file_read(path, &f, err, sizeof(err)), -EINVAL); /* no hang */
	assert_non_null(strstr(err, "': not a regular file"));
	unlink(path);

	snprintf(path, sizeof(path), "%s/missing", dir);
	assert_int_equal(snap_file_read(path, &f, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "No such file or directory"));

	/* Past the limit, sparse: nothing is read. */
	snprintf(path, sizeof(path), "%s/big", dir);
	fd = open(path, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)SNAP_FILE_MAX + 1), 0);
	close(fd);
	assert_int_equal(snap_file_read(path, &f, err, sizeof(err)), -EFBIG);
	assert_non_null(strstr(err, "67108865 bytes, at most 67108864 (64 MiB)"));
	unlink(path);

	fd = open(path, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(snap_file_read(path, &f, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "header: not a kiln snapshot"));
	unlink(path);
	rmdir(dir);
}

/* A write that fails leaves path as it was and no temporary file behind. */
static void test_atomic_write(void **state)
{
	struct snap_file_writer w;
	struct snap_file f;
	struct stat st;
	char dir[64], path[128], sub[128], err[512];
	(void)state;

	scratch(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/vm.snap", dir);
	snap_file_writer_init(&w);
	add(&w, SNAP_SEC_CONFIG, 0, "old");
	assert_int_equal(snap_file_write(&w, path, err, sizeof(err)), 0);
	snap_file_writer_free(&w);

	snap_file_writer_init(&w);
	add(&w, SNAP_SEC_CONFIG, 0, "new");

	/* The directory does not exist. */
	snprintf(sub, sizeof(sub), "%s/no/vm.snap", dir);
	assert_int_equal(snap_file_write(&w, sub, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "': create "));

	/* The path is a directory: the rename fails, after the whole file was written. */
	snprintf(sub, sizeof(sub), "%s/adir", dir);
	assert_int_equal(mkdir(sub, 0700), 0);
	assert_int_equal(snap_file_write(&w, sub, err, sizeof(err)), -EISDIR);
	assert_non_null(strstr(err, "rename over it: Is a directory"));
	assert_int_equal(stat(sub, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(rmdir(sub), 0);
	assert_int_equal(count_entries(dir, ".tmp-"), 0);

	/* A write that fails half way (a file size limit; root is bound by it too). */
	struct rlimit old, small;
	struct snap_file_writer big;
	struct snap_buf b;
	char blob[4096] = {0};
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	small = old;
	small.rlim_cur = 1000;
	snap_file_writer_init(&big);
	snap_buf_init(&b);
	snap_put_bytes(&b, blob, sizeof(blob));
	assert_int_equal(snap_file_add(&big, SNAP_SEC_MEMORY, 0, &b), 0);
	signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
	int r = snap_file_write(&big, path, err, sizeof(err));
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, SIG_DFL);
	assert_int_equal(r, -EFBIG);
	assert_non_null(strstr(err, "': write: File too large"));
	assert_int_equal(count_entries(dir, ".tmp-"), 0);
	snap_file_writer_free(&big);

	/* A directory it may not write in (root may write anywhere). */
	if (geteuid() != 0) {
		assert_int_equal(chmod(dir, 0500), 0);
		assert_int_equal(snap_file_write(&w, path, err, sizeof(err)), -EACCES);
		assert_int_equal(chmod(dir, 0700), 0);
	}
	snap_file_writer_free(&w);

	assert_int_equal(snap_file_read(path, &f, err, sizeof(err)), 0);
	expect_section(&f, SNAP_SEC_CONFIG, 0, "config", "old");
	snap_file_free(&f);
	assert_int_equal(count_entries(dir, ""), 1);
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_crc64),
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_empty_file),
	    cmocka_unit_test(test_names),
	    cmocka_unit_test(test_truncated_everywhere),
	    cmocka_unit_test(test_bit_flips),
	    cmocka_unit_test(test_header_fields),
	    cmocka_unit_test(test_table),
	    cmocka_unit_test(test_writer_errors),
	    cmocka_unit_test(test_section_limit),
	    cmocka_unit_test(test_file_round_trip),
	    cmocka_unit_test(test_read_refuses),
	    cmocka_unit_test(test_atomic_write),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
