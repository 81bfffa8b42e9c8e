/* state.h: the byte-level writer and checked reader that every piece of snapshot state is
 * saved with and loaded from (a vCPU, the VM's irqchip, each device).
 *
 * A snapshot file is untrusted input (docs/security.md): every read goes through a cursor
 * that checks the bounds, and a short or malformed section leaves the cursor "bad" instead of
 * reading past it. The loader asks snap_cursor_end() at the end of each section and gets one
 * line naming the section and what was wrong ("section 'vcpu 1': truncated at byte 40 of 36",
 * "section 'serial': 4 bytes left over"). Values are little-endian on the wire.
 *
 * The file container (header, section table, checksum) is snapshot/format.h; this is what
 * goes inside one section.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/compiler.h"

/* A growable buffer that a section's state is written into. Allocation failure is sticky:
 * the writes after it do nothing and snap_buf_failed() says so once, at the end. */
struct snap_buf {
	uint8_t *data;
	size_t len, cap;
	bool oom;
};

void snap_buf_init(struct snap_buf *b);
void snap_buf_free(struct snap_buf *b);
void snap_put_u8(struct snap_buf *b, uint8_t v);
void snap_put_u16(struct snap_buf *b, uint16_t v);
void snap_put_u32(struct snap_buf *b, uint32_t v);
void snap_put_u64(struct snap_buf *b, uint64_t v);
void snap_put_bool(struct snap_buf *b, bool v);
void snap_put_bytes(struct snap_buf *b, const void *p, size_t n);
/* A length-prefixed (u32) run of bytes, for variable-sized KVM structures (CPUID entries, MSR
 * lists, XSAVE areas of a size the host decides). */
void snap_put_blob(struct snap_buf *b, const void *p, uint32_t n);
/* -ENOMEM once any write failed, else 0. */
int snap_buf_failed(const struct snap_buf *b) __must_check;

/* A read position inside one section's bytes. name names the section in errors. */
struct snap_cursor {
	const uint8_t *p;
	size_t len, off;
	const char *name;
	bool bad;      /* a read ran past the end, or a check failed (snap_cursor_fail) */
	char why[160]; /* the first failure, without the section's name */
};

void snap_cursor_init(struct snap_cursor *c, const char *name, const void *p, size_t len);
/* Each returns 0 (and marks the cursor bad) when fewer bytes than asked are left. */
uint8_t snap_get_u8(struct snap_cursor *c);
uint16_t snap_get_u16(struct snap_cursor *c);
uint32_t snap_get_u32(struct snap_cursor *c);
uint64_t snap_get_u64(struct snap_cursor *c);
/* A bool must be 0 or 1: anything else marks the cursor bad. */
bool snap_get_bool(struct snap_cursor *c);
/* Copies n bytes to out (zero-filled when short). */
void snap_get_bytes(struct snap_cursor *c, void *out, size_t n);
/* A blob written by snap_put_blob: its length must be <= max, else the cursor is bad and
 * NULL is returned; *n gets the length. The pointer is into the section (no copy). */
const void *snap_get_blob(struct snap_cursor *c, uint32_t max, uint32_t *n);
/* A value the loader found wrong (out of range, inconsistent): the first call's words are
 * kept, printf-style. */
void snap_cursor_fail(struct snap_cursor *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* At the end of a section: 0, or -EINVAL with "section 'NAME': WHY" in err when the cursor
 * went bad or bytes are left over. */
int snap_cursor_end(struct snap_cursor *c, char *err, size_t errlen) __must_check;
