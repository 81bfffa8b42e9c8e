/* aml.h: a small builder for ACPI Machine Language (DSDT/SSDT bodies) into a growable buffer. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/compiler.h"

/*
 * Usage: every emitter appends to the buffer; the first failure (bad name, bad nesting, out of
 * memory) is latched in a->err, later calls do nothing, and aml_finish() reports it.
 *
 *   struct aml a;
 *   aml_init(&a);
 *   aml_scope_begin(&a, "\\_SB_");
 *     aml_device_begin(&a, "COM1");
 *       aml_name_eisaid(&a, "_HID", "PNP0501");
 *       aml_name(&a, "_CRS");
 *       aml_restemplate_begin(&a);
 *         aml_res_io(&a, 0x3f8, 0x3f8, 1, 8);
 *       aml_end(&a);            -- appends EndTag with its checksum
 *     aml_end(&a);
 *   aml_end(&a);
 *   if (aml_finish(&a) == 0) use aml_data(&a), aml_len(&a);
 *   aml_destroy(&a);
 *
 * Objects with a PkgLength (Scope, Device, Method, Package, Buffer) are opened with *_begin and
 * closed with aml_end(), which inserts the PkgLength (1-4 bytes, sized to fit) in front of the
 * body and, for a Package, its element count; for a Buffer, its size.
 *
 * Name paths use ASL spelling: "\\" for the root, "^" for each parent, '.' between segments
 * of 1-4 characters (A-Z, 0-9, '_'; not starting with a digit), padded with '_'.
 */

#define AML_MAX_DEPTH 16

enum aml_frame_kind {
	AML_FRAME_SCOPE,       /* Scope, Device, Method: a TermList */
	AML_FRAME_PACKAGE,     /* data objects, counted */
	AML_FRAME_BUFFER,      /* raw bytes */
	AML_FRAME_RESTEMPLATE, /* resource descriptors; EndTag appended at aml_end() */
};

struct aml_frame {
	size_t start;	/* offset right after the opcode: where the PkgLength goes */
	uint32_t count; /* data objects emitted directly inside (Package elements) */
	enum aml_frame_kind kind;
};

struct aml {
	uint8_t *buf;
	size_t len, cap;
	int err; /* first error (-errno), 0 if none */
	unsigned depth;
	struct aml_frame frames[AML_MAX_DEPTH];
};

void aml_init(struct aml *a);
void aml_destroy(struct aml *a);
/* 0, or the first error: -ENOMEM, -EINVAL (bad name/value/nesting), -E2BIG (too long);
 * -EINVAL too if some *_begin was not closed. */
int aml_finish(struct aml *a) __must_check;
int aml_error(const struct aml *a);
/* Record an error found by a caller (e.g. a DSDT hook); the first one wins. */
void aml_fail(struct aml *a, int err);
const uint8_t *aml_data(const struct aml *a);
size_t aml_len(const struct aml *a);
unsigned aml_depth(const struct aml *a);

/* Encode the PkgLength of an object whose body (the bytes after the PkgLength) is body_len
 * bytes long. Returns the number of bytes written to out (1-4), or 0 if it cannot be encoded
 * (the total exceeds 2^28 - 1). */
unsigned aml_pkglength_encode(uint8_t out[4], size_t body_len);

/* Data objects (each counts as one element inside a Package). */
void aml_integer(struct aml *a, uint64_t v);	    /* Zero/One/Ones or the smallest prefix */
void aml_string(struct aml *a, const char *s);	    /* ASCII 0x01-0x7f */
void aml_eisaid(struct aml *a, const char *id);	    /* "PNP0A08" -> DWordConst 0x080ad041 */
void aml_name_ref(struct aml *a, const char *path); /* a NameString referring to an object */

/* Name(path, <object>): emits NameOp and the name; the caller then emits exactly one object
 * (an integer, string, EISAID, Package or Buffer). */
void aml_name(struct aml *a, const char *path);
void aml_name_int(struct aml *a, const char *path, uint64_t v);
void aml_name_str(struct aml *a, const char *path, const char *s);
void aml_name_eisaid(struct aml *a, const char *path, const char *id);

/* Return(<operand>): emits ReturnOp; the caller then emits the operand. */
void aml_return(struct aml *a);
/* Notify(path, value): in a method body. */
void aml_notify(struct aml *a, const char *path, uint64_t value);

/* Nested objects, each closed by aml_end(). */
void aml_scope_begin(struct aml *a, const char *path);
void aml_device_begin(struct aml *a, const char *path);
void aml_method_begin(struct aml *a, const char *path, unsigned nargs, bool serialized);
void aml_package_begin(struct aml *a); /* > 255 elements become a VarPackage */
void aml_buffer_begin(struct aml *a);  /* fill with aml_buffer_bytes() */
void aml_buffer_bytes(struct aml *a, const void *p, size_t n);
void aml_restemplate_begin(struct aml *a); /* ResourceTemplate: a Buffer of descriptors */
void aml_end(struct aml *a);

/* Resource descriptors; only valid inside aml_restemplate_begin() ... aml_end(). */
#define AML_IRQ_CONSUMER 0x01 /* else producer */
#define AML_IRQ_EDGE 0x02     /* else level */
#define AML_IRQ_ACTIVE_LOW 0x04
#define AML_IRQ_SHARED 0x08
#define AML_IRQ_WAKE 0x10

enum aml_mem_cache {
	AML_MEM_NONCACHEABLE = 0,
	AML_MEM_CACHEABLE = 1,
	AML_MEM_WRITECOMBINING = 2,
	AML_MEM_PREFETCHABLE = 3,
};

/* IO(Decode16, min, max, align, len) */
void aml_res_io(struct aml *a, uint16_t min, uint16_t max, uint8_t align, uint8_t len);
/* Interrupt(flags..., ) { gsi }: the extended interrupt descriptor. */
void aml_res_interrupt(struct aml *a, unsigned flags, uint32_t gsi);
/* WordBusNumber / WordIO (EntireRange) / DWordMemory / QWordMemory, each as ResourceProducer,
 * MinFixed, MaxFixed, PosDecode, granularity 0, translation 0, length max - min + 1. */
void aml_res_word_bus_number(struct aml *a, uint16_t min, uint16_t max);
void aml_res_word_io(struct aml *a, uint16_t min, uint16_t max);
void aml_res_dword_memory(struct aml *a, uint32_t min, uint32_t max, enum aml_mem_cache cache,
			  bool writable);
void aml_res_qword_memory(struct aml *a, uint64_t min, uint64_t max, enum aml_mem_cache cache,
			  bool writable);
