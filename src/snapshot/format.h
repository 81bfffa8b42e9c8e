/* format.h: the snapshot state file: a header, a table of sections, their bytes, a checksum.
 *
 * What goes inside one section is snapshot/state.h; this is the container around them. The
 * file is untrusted input (docs/security.md): snap_file_parse() checks every field before it
 * returns, and a bad file gets one line naming the part that is wrong ("header: ...",
 * "section table entry 3: ...", "section 'vcpu 1': ...", "checksum: ...").
 *
 * Layout, little-endian, each field written and read one by one (no struct images):
 *
 *   0   magic "KILNSNAP"             8 bytes
 *   8   u32 format_version           SNAP_FORMAT_VERSION
 *   12  u32 header_size              SNAP_HEADER_SIZE (56)
 *   16  char kiln_version[32]        the writing kiln's version, NUL-padded
 *   48  u32 nr_sections              at most SNAP_MAX_SECTIONS
 *   52  u32 flags                    0
 *   56  section table: nr_sections x { u32 id, u32 instance, u64 offset, u64 length }
 *       section payloads             each inside [end of table, start of trailer),
 *                                    no two overlapping, no (id, instance) twice
 *   len-8  u64 CRC-64/XZ of every byte before it
 *
 * The guest's RAM is not in this file (it goes to the memory file, as in Firecracker); the
 * whole state file is at most SNAP_FILE_MAX bytes.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "snapshot/state.h"
#include "util/compiler.h"

#define SNAP_MAGIC "KILNSNAP"
#define SNAP_FORMAT_VERSION 1u
#define SNAP_HEADER_SIZE 56u
#define SNAP_TABLE_ENTRY_SIZE 24u
#define SNAP_TRAILER_SIZE 8u
#define SNAP_VERSION_LEN 32u
#define SNAP_MAX_SECTIONS 1024u
#define SNAP_FILE_MAX (64 * MiB)

/* Section ids. VCPU's instance is the vCPU index and VIRTIO's the device index; every other
 * section appears once, with instance 0. An id not listed here makes a file invalid: this
 * format version knows them all. */
enum snap_section_id {
	SNAP_SEC_CONFIG = 1,   /* the VM configuration needed to rebuild it */
	SNAP_SEC_MEMORY = 2,   /* guest RAM layout */
	SNAP_SEC_VM = 3,       /* KVM irqchip (PIC, IOAPIC), PIT, kvmclock */
	SNAP_SEC_VCPU = 4,     /* instance = vCPU index */
	SNAP_SEC_SERIAL = 5,
	SNAP_SEC_I8042 = 6,
	SNAP_SEC_RTC = 7,
	SNAP_SEC_ACPI_PM = 8,
	SNAP_SEC_PCI = 9,
	SNAP_SEC_VIRTIO = 10,  /* instance = device index */
	SNAP_SEC_VMGENID = 11,
};
#define SNAP_SEC_FIRST SNAP_SEC_CONFIG
#define SNAP_SEC_LAST SNAP_SEC_VMGENID

/* Long enough for the longest name, "virtio 4294967295". */
#define SNAP_SECTION_NAME_LEN 24

/* "vcpu 1", "virtio 2", "serial"; "unknown section 12" for an id this kiln does not know.
 * Always NUL-terminates out (len > 0). */
void snap_section_name(uint32_t id, uint32_t instance, char *out, size_t len);

/* One entry of a parsed file's section table. */
struct snap_file_entry {
	uint32_t id, instance;
	uint64_t offset, length; /* inside the file, checked */
	uint32_t index;          /* its position in the file's table, for messages */
	char name[SNAP_SECTION_NAME_LEN];
};

/* A parsed, checked file. Read-only for callers; sections[] is sorted by (id, instance). */
struct snap_file {
	const uint8_t *data; /* the whole file */
	size_t len;
	uint8_t *owned;      /* data, when snap_file_read allocated it */
	char kiln_version[SNAP_VERSION_LEN + 1]; /* the writer's, printable characters only */
	uint32_t nr_sections;
	struct snap_file_entry *sections;
};

/* Check buf (len bytes) as a whole snapshot file and index it into f. f points into buf,
 * which must outlive f. 0, or -EINVAL/-ENOMEM with one line in err (f then holds nothing
 * and needs no snap_file_free, though calling it is harmless). */
int snap_file_parse(const void *buf, size_t len, struct snap_file *f, char *err,
		    size_t errlen) __must_check;

/* Open path (a regular file of at most SNAP_FILE_MAX bytes; a FIFO cannot stall the
 * open), read it all and snap_file_parse() it. err starts with "snapshot file 'PATH': ". */
int snap_file_read(const char *path, struct snap_file *f, char *err, size_t errlen) __must_check;

/* A cursor over section (id, instance), named after it ("vcpu 1"): 0, or -ENOENT. */
int snap_file_section(const struct snap_file *f, uint32_t id, uint32_t instance,
		      struct snap_cursor *c) __must_check;

/* How many sections with this id the file has (the vCPUs, the virtio devices). */
uint32_t snap_file_count(const struct snap_file *f, uint32_t id);

/* For a caller that needs a section the file lacks: "section 'vcpu 2' is missing". */
void snap_file_missing(uint32_t id, uint32_t instance, char *err, size_t errlen);

void snap_file_free(struct snap_file *f);

/* Building a file. Sections are laid out in the order they were added. */
struct snap_file_writer {
	struct snap_file_writer_section *secs;
	uint32_t nr, cap;
	uint64_t payload; /* bytes of all sections so far */
	int error;        /* the first failure (sticky), -errno */
	char why[160];    /* and its words */
};

void snap_file_writer_init(struct snap_file_writer *w);

/* Add section (id, instance) holding sec's bytes. The writer takes the bytes over (no copy):
 * on return, success or not, *sec is empty (as after snap_buf_init) and the caller has
 * nothing to free. 0, or -errno: -EINVAL for an unknown id or an instance on a section that
 * has only one, -EEXIST when (id, instance) was added before, -ENOMEM when sec's writes
 * failed (snap_buf_failed) or memory ran out, -EFBIG past SNAP_FILE_MAX or
 * SNAP_MAX_SECTIONS. The first failure is also kept: snap_file_write and
 * snap_file_serialize then fail with its words, so a caller may check only there. */
int snap_file_add(struct snap_file_writer *w, uint32_t id, uint32_t instance,
		  struct snap_buf *sec) __must_check;

/* The whole file into out (initialised here; the caller frees it): for forking a live VM
 * without a file, and for the tests. 0, or -errno with one line in err. */
int snap_file_serialize(const struct snap_file_writer *w, struct snap_buf *out, char *err,
			size_t errlen) __must_check;

/* Write the file to path atomically: into PATH.tmp-XXXXXX beside it (mode 0600: guest
 * state), fsync, rename over path, fsync the directory. A failure or a crash leaves path as
 * it was (the temporary file is removed on failure). 0, or -errno with one line in err
 * starting "snapshot file 'PATH': ". */
int snap_file_write(const struct snap_file_writer *w, const char *path, char *err,
		    size_t errlen) __must_check;

void snap_file_writer_free(struct snap_file_writer *w);
