/* fuzz_snapshot.c: libFuzzer target: any bytes as a snapshot state file must parse or fail
 * cleanly, and every section of a file that parses must be readable to its end. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "snapshot/crc64.h"
#include "snapshot/format.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Each section a parse accepted lies inside the file, after the table, before the checksum,
 * apart from the others; a cursor over it reads to its end and no further. */
static void walk(const struct snap_file *f, const uint8_t *data, size_t size)
{
	const uint64_t lo = SNAP_HEADER_SIZE + (uint64_t)f->nr_sections * SNAP_TABLE_ENTRY_SIZE;
	const uint64_t hi = size - SNAP_TRAILER_SIZE;
	char err[512];

	if (f->data != data || f->len != size || f->nr_sections > SNAP_MAX_SECTIONS)
		abort();
	for (uint32_t i = 0; i < f->nr_sections; i++) {
		const struct snap_file_entry *e = &f->sections[i];
		struct snap_cursor c;

		if (e->offset < lo || e->offset > hi || e->length > hi - e->offset)
			abort();
		if (i && (e->id < e[-1].id || (e->id == e[-1].id && e->instance <= e[-1].instance)))
			abort(); /* sorted by (id, instance), no duplicates */
		if (snap_file_section(f, e->id, e->instance, &c) != 0)
			abort();
		if (c.p != data + e->offset || c.len != e->length || strcmp(c.name, e->name) != 0)
			abort();
		/* Reads to the end, at most length / 4 + 1 of them: the last may run short. */
		for (size_t n = 0; n <= e->length / 4 && c.off < c.len && !c.bad; n++)
			(void)snap_get_u32(&c);
		if (!c.bad && c.off != c.len)
			abort();
		/* Only a short tail fails, and the message names the section. */
		int r = snap_cursor_end(&c, err, sizeof(err));
		if ((r != 0) != (e->length % 4 != 0))
			abort();
		if (r && (!memchr(err, 0, sizeof(err)) || !strstr(err, e->name)))
			abort();
	}
	uint32_t total = 0;
	for (uint32_t id = SNAP_SEC_FIRST; id <= SNAP_SEC_LAST; id++)
		total += snap_file_count(f, id);
	if (total != f->nr_sections)
		abort(); /* every section has a known id */
}

static void parse(const uint8_t *data, size_t size)
{
	struct snap_file f;
	char err[512];
	int r;

	err[0] = 0;
	r = snap_file_parse(data, size, &f, err, sizeof(err));
	if (r > 0)
		abort(); /* 0 or -errno only */
	if (r < 0) {
		/* Every failure explains itself, in one line, and holds nothing. */
		if (err[0] == 0 || !memchr(err, 0, sizeof(err)) || strchr(err, '\n') || f.sections)
			abort();
		return;
	}
	walk(&f, data, size);
	snap_file_free(&f);
}

/* The input as it is (the checksum turns away nearly all of it), then with a checksum made
 * right, so that the header and table checks behind it are explored too. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	parse(data, size);
	if (size < SNAP_TRAILER_SIZE)
		return 0;
	uint8_t *copy = malloc(size);
	if (!copy)
		abort();
	memcpy(copy, data, size);
	uint64_t crc = crc64_xz(0, copy, size - SNAP_TRAILER_SIZE);
	for (unsigned i = 0; i < SNAP_TRAILER_SIZE; i++)
		copy[size - SNAP_TRAILER_SIZE + i] = (uint8_t)(crc >> (8 * i));
	parse(copy, size);
	free(copy);
	return 0;
}
