/* format.c: checking and reading a snapshot state file (snapshot/format.h): header, section
 * table, checksum, then lookups by (id, instance). */
#include "snapshot/format.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snapshot/crc64.h"
#include "util/file.h"

static const char *const id_names[] = {
    [SNAP_SEC_CONFIG] = "config",   [SNAP_SEC_MEMORY] = "memory", [SNAP_SEC_VM] = "vm",
    [SNAP_SEC_VCPU] = "vcpu",       [SNAP_SEC_SERIAL] = "serial", [SNAP_SEC_I8042] = "i8042",
    [SNAP_SEC_RTC] = "rtc",         [SNAP_SEC_ACPI_PM] = "acpi_pm", [SNAP_SEC_PCI] = "pci",
    [SNAP_SEC_VIRTIO] = "virtio",   [SNAP_SEC_VMGENID] = "vmgenid",
};
static_assert(ARRAY_SIZE(id_names) == SNAP_SEC_LAST + 1, "a name for every section id");

static bool id_known(uint32_t id)
{
	return id >= SNAP_SEC_FIRST && id <= SNAP_SEC_LAST;
}

/* Sections that come once per vCPU or device; the others come once. */
static bool id_has_instances(uint32_t id)
{
	return id == SNAP_SEC_VCPU || id == SNAP_SEC_VIRTIO;
}

void snap_section_name(uint32_t id, uint32_t instance, char *out, size_t len)
{
	if (!id_known(id))
		snprintf(out, len, "unknown section %u", id);
	else if (id_has_instances(id))
		snprintf(out, len, "%s %u", id_names[id], instance);
	else
		snprintf(out, len, "%s", id_names[id]);
}

void snap_file_missing(uint32_t id, uint32_t instance, char *err, size_t errlen)
{
	char name[SNAP_SECTION_NAME_LEN];

	snap_section_name(id, instance, name, sizeof(name));
	snprintf(err, errlen, "section '%s' is missing", name);
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p)
{
	return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

/* The writer's version for messages: up to the first NUL, anything unprintable as '?'. */
static void copy_version(char out[SNAP_VERSION_LEN + 1], const uint8_t *p)
{
	size_t i;

	for (i = 0; i < SNAP_VERSION_LEN && p[i]; i++)
		out[i] = (p[i] >= 0x20 && p[i] < 0x7f) ? (char)p[i] : '?';
	out[i] = 0;
}

static int cmp_offset(const void *a, const void *b)
{
	const struct snap_file_entry *x = a, *y = b;

	if (x->offset != y->offset)
		return x->offset < y->offset ? -1 : 1;
	if (x->length != y->length)
		return x->length < y->length ? -1 : 1;
	return x->index < y->index ? -1 : x->index > y->index;
}

static int cmp_key(const void *a, const void *b)
{
	const struct snap_file_entry *x = a, *y = b;

	if (x->id != y->id)
		return x->id < y->id ? -1 : 1;
	if (x->instance != y->instance)
		return x->instance < y->instance ? -1 : 1;
	return x->index < y->index ? -1 : x->index > y->index;
}

/* The header's fields, in the order that gives the most useful message for a damaged file:
 * what the file is, which version wrote it, then whether it is whole. */
static int check_header(const uint8_t *d, size_t len, struct snap_file *f, char *err,
			size_t errlen)
{
	const size_t magic_len = sizeof(SNAP_MAGIC) - 1;
	const size_t min_len = SNAP_HEADER_SIZE + SNAP_TRAILER_SIZE;

	if (len == 0 || memcmp(d, SNAP_MAGIC, MIN(len, magic_len)) != 0) {
		snprintf(err, errlen, "header: not a kiln snapshot (no \"%s\" at the start)",
			 SNAP_MAGIC);
		return -EINVAL;
	}
	if (len >= SNAP_HEADER_SIZE)
		copy_version(f->kiln_version, d + 16);
	if (len >= 12 && le32(d + 8) != SNAP_FORMAT_VERSION) {
		snprintf(err, errlen, "header: format version %u (written by kiln %s), this kiln reads %u",
			 le32(d + 8), f->kiln_version[0] ? f->kiln_version : "unknown",
			 SNAP_FORMAT_VERSION);
		return -EINVAL;
	}
	if (len >= 16 && le32(d + 12) != SNAP_HEADER_SIZE) {
		snprintf(err, errlen, "header: header size %u, format version %u has %u", le32(d + 12),
			 SNAP_FORMAT_VERSION, SNAP_HEADER_SIZE);
		return -EINVAL;
	}
	if (len < min_len) {
		snprintf(err, errlen, "header: truncated: the file is %zu bytes, at least %zu expected",
			 len, min_len);
		return -EINVAL;
	}
	if (len > SNAP_FILE_MAX) {
		snprintf(err, errlen, "header: the file is %zu bytes, at most %llu", len, SNAP_FILE_MAX);
		return -EINVAL;
	}
	uint64_t stored = le64(d + len - SNAP_TRAILER_SIZE);
	uint64_t computed = crc64_xz(0, d, len - SNAP_TRAILER_SIZE);
	if (stored != computed) {
		snprintf(err, errlen,
			 "checksum: stored 0x%016llx, computed 0x%016llx (the file is corrupt or truncated)",
			 (unsigned long long)stored, (unsigned long long)computed);
		return -EINVAL;
	}
	/* Past the checksum the file is what its writer wrote: what is wrong now is a writer's
	 * bug or a forgery. */
	if (memchr(d + 16, 0, SNAP_VERSION_LEN) == NULL) {
		snprintf(err, errlen, "header: kiln_version is not NUL-terminated");
		return -EINVAL;
	}
	if (le32(d + 52) != 0) {
		snprintf(err, errlen, "header: flags 0x%x, format version %u has none", le32(d + 52),
			 SNAP_FORMAT_VERSION);
		return -EINVAL;
	}
	return 0;
}

/* One table entry, on its own: a known id, an instance where one is allowed, bytes inside
 * [lo, hi). */
static int check_entry(struct snap_file_entry *e, uint64_t lo, uint64_t hi, char *err,
		       size_t errlen)
{
	if (!id_known(e->id)) {
		snprintf(err, errlen, "section table entry %u: unknown section id %u", e->index, e->id);
		return -EINVAL;
	}
	snap_section_name(e->id, e->instance, e->name, sizeof(e->name));
	if (!id_has_instances(e->id) && e->instance != 0) {
		snprintf(err, errlen, "section table entry %u: section '%s' has instance %u (it comes once, as 0)",
			 e->index, e->name, e->instance);
		return -EINVAL;
	}
	if (e->offset < lo || e->offset > hi || e->length > hi - e->offset) {
		snprintf(err, errlen,
			 "section '%s' (table entry %u): %llu bytes at %llu, outside the section area %llu..%llu",
			 e->name, e->index, (unsigned long long)e->length,
			 (unsigned long long)e->offset, (unsigned long long)lo, (unsigned long long)hi);
		return -EINVAL;
	}
	return 0;
}

/* The entries together: no two sharing a byte, no (id, instance) twice. Leaves s sorted by
 * (id, instance). */
static int check_entries(struct snap_file_entry *s, uint32_t n, char *err, size_t errlen)
{
	qsort(s, n, sizeof(*s), cmp_offset);
	/* Those before s[i] are disjoint and sorted, so s[i - 1] reaches furthest. A section of
	 * no bytes that starts inside another counts as overlapping it. */
	for (uint32_t i = 1; i < n; i++) {
		if (s[i].offset < s[i - 1].offset + s[i - 1].length) {
			snprintf(err, errlen, "section '%s' (table entry %u) overlaps section '%s' (table entry %u)",
				 s[i].name, s[i].index, s[i - 1].name, s[i - 1].index);
			return -EINVAL;
		}
	}
	qsort(s, n, sizeof(*s), cmp_key);
	for (uint32_t i = 1; i < n; i++) {
		if (s[i].id == s[i - 1].id && s[i].instance == s[i - 1].instance) {
			snprintf(err, errlen, "section '%s': twice in the table (entries %u and %u)",
				 s[i].name, s[i - 1].index, s[i].index);
			return -EINVAL;
		}
	}
	return 0;
}

int snap_file_parse(const void *buf, size_t len, struct snap_file *f, char *err, size_t errlen)
{
	const uint8_t *d = buf;
	int ret;

	memset(f, 0, sizeof(*f));
	if (!d)
		len = 0;
	ret = check_header(d, len, f, err, errlen);
	if (ret)
		return ret;

	uint32_t n = le32(d + 48);
	if (n > SNAP_MAX_SECTIONS) {
		snprintf(err, errlen, "section table: %u entries, at most %u", n, SNAP_MAX_SECTIONS);
		return -EINVAL;
	}
	uint64_t lo = SNAP_HEADER_SIZE + (uint64_t)n * SNAP_TABLE_ENTRY_SIZE;
	uint64_t hi = len - SNAP_TRAILER_SIZE;
	if (lo > hi) {
		snprintf(err, errlen, "section table: %u entries need %llu bytes, the file has %llu before its checksum",
			 n, (unsigned long long)lo, (unsigned long long)hi);
		return -EINVAL;
	}
	struct snap_file_entry *s = calloc(n ? n : 1, sizeof(*s));
	if (!s) {
		snprintf(err, errlen, "section table: out of memory for %u entries", n);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *e = d + SNAP_HEADER_SIZE + (size_t)i * SNAP_TABLE_ENTRY_SIZE;

		s[i] = (struct snap_file_entry){
		    .id = le32(e), .instance = le32(e + 4), .offset = le64(e + 8),
		    .length = le64(e + 16), .index = i};
		ret = check_entry(&s[i], lo, hi, err, errlen);
		if (ret)
			goto fail;
	}
	ret = check_entries(s, n, err, errlen);
	if (ret)
		goto fail;
	f->data = d;
	f->len = len;
	f->nr_sections = n;
	f->sections = s;
	return 0;

fail:
	free(s);
	memset(f, 0, sizeof(*f));
	return ret;
}

/* Read all of fd, which fstat said is size bytes, into a new buffer. */
static int read_all(int fd, size_t size, uint8_t **out, char *why, size_t whylen)
{
	uint8_t *d = malloc(size ? size : 1), probe;
	size_t got = 0;
	ssize_t r;
	int ret;

	if (!d) {
		snprintf(why, whylen, "out of memory for %zu bytes", size);
		return -ENOMEM;
	}
	while (got < size) { /* bounded: each pass reads at least one byte or leaves */
		r = read(fd, d + got, size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			goto read_error;
		if (r == 0) {
			snprintf(why, whylen, "shrank from %zu to %zu bytes while read", size, got);
			ret = -EIO;
			goto fail;
		}
		got += (size_t)r;
	}
	do
		r = read(fd, &probe, 1);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		goto read_error;
	if (r > 0) {
		snprintf(why, whylen, "grew past %zu bytes while read", size);
		ret = -EIO;
		goto fail;
	}
	*out = d;
	return 0;

read_error:
	ret = -errno;
	snprintf(why, whylen, "read: %s", strerror(-ret));
fail:
	free(d);
	return ret;
}

int snap_file_read(const char *path, struct snap_file *f, char *err, size_t errlen)
{
	char why[320];
	struct stat st;
	uint8_t *d = NULL;
	int fd, ret;

	memset(f, 0, sizeof(*f));
	fd = file_open(path, O_RDONLY, 0, FILE_KIND_REG);
	if (fd < 0) {
		snprintf(err, errlen, "snapshot file '%s': %s", path,
			 fd == -EMEDIUMTYPE ? "not a regular file" : strerror(-fd));
		return fd == -EMEDIUMTYPE ? -EINVAL : fd;
	}
	if (fstat(fd, &st) < 0) {
		ret = -errno;
		snprintf(err, errlen, "snapshot file '%s': fstat: %s", path, strerror(-ret));
		goto out;
	}
	if ((unsigned long long)st.st_size > SNAP_FILE_MAX) {
		snprintf(err, errlen, "snapshot file '%s': %lld bytes, at most %llu (%llu MiB)", path,
			 (long long)st.st_size, SNAP_FILE_MAX, SNAP_FILE_MAX / MiB);
		ret = -EFBIG;
		goto out;
	}
	ret = read_all(fd, (size_t)st.st_size, &d, why, sizeof(why));
	if (ret) {
		snprintf(err, errlen, "snapshot file '%s': %s", path, why);
		goto out;
	}
	ret = snap_file_parse(d, (size_t)st.st_size, f, why, sizeof(why));
	if (ret) {
		snprintf(err, errlen, "snapshot file '%s': %s", path, why);
		free(d);
		goto out;
	}
	f->owned = d;
out:
	close(fd);
	return ret;
}

int snap_file_section(const struct snap_file *f, uint32_t id, uint32_t instance,
		      struct snap_cursor *c)
{
	uint32_t lo = 0, hi = f->nr_sections;

	/* Binary search over sections[], sorted by (id, instance) and without duplicates. */
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		const struct snap_file_entry *e = &f->sections[mid];

		if (e->id == id && e->instance == instance) {
			snap_cursor_init(c, e->name, f->data + e->offset, (size_t)e->length);
			return 0;
		}
		if (e->id < id || (e->id == id && e->instance < instance))
			lo = mid + 1;
		else
			hi = mid;
	}
	return -ENOENT;
}

uint32_t snap_file_count(const struct snap_file *f, uint32_t id)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < f->nr_sections; i++)
		n += f->sections[i].id == id;
	return n;
}

void snap_file_free(struct snap_file *f)
{
	free(f->sections);
	free(f->owned);
	memset(f, 0, sizeof(*f));
}
