/* state.c: the section writer and the bounds-checked section reader (snapshot/state.h). */
#include "snapshot/state.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void snap_buf_init(struct snap_buf *b)
{
	memset(b, 0, sizeof(*b));
}

void snap_buf_free(struct snap_buf *b)
{
	free(b->data);
	snap_buf_init(b);
}

void snap_put_bytes(struct snap_buf *b, const void *p, size_t n)
{
	if (b->oom || !n)
		return;
	if (n > SIZE_MAX / 2 - b->len) {
		b->oom = true;
		return;
	}
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		uint8_t *d;

		while (cap < b->len + n)
			cap *= 2;
		d = realloc(b->data, cap);
		if (!d) {
			b->oom = true;
			return;
		}
		b->data = d;
		b->cap = cap;
	}
	memcpy(b->data + b->len, p, n);
	b->len += n;
}

/* Little-endian, whatever the host: the bytes of v from the lowest up. */
static void put_le(struct snap_buf *b, uint64_t v, unsigned n)
{
	uint8_t le[8];

	for (unsigned i = 0; i < n; i++)
		le[i] = (uint8_t)(v >> (8 * i));
	snap_put_bytes(b, le, n);
}

void snap_put_u8(struct snap_buf *b, uint8_t v) { put_le(b, v, 1); }
void snap_put_u16(struct snap_buf *b, uint16_t v) { put_le(b, v, 2); }
void snap_put_u32(struct snap_buf *b, uint32_t v) { put_le(b, v, 4); }
void snap_put_u64(struct snap_buf *b, uint64_t v) { put_le(b, v, 8); }
void snap_put_bool(struct snap_buf *b, bool v) { put_le(b, v ? 1 : 0, 1); }

void snap_put_blob(struct snap_buf *b, const void *p, uint32_t n)
{
	snap_put_u32(b, n);
	snap_put_bytes(b, p, n);
}

int snap_buf_failed(const struct snap_buf *b)
{
	return b->oom ? -ENOMEM : 0;
}

void snap_cursor_init(struct snap_cursor *c, const char *name, const void *p, size_t len)
{
	memset(c, 0, sizeof(*c));
	c->p = p;
	c->len = p ? len : 0;
	c->name = name;
}

void snap_cursor_fail(struct snap_cursor *c, const char *fmt, ...)
{
	va_list ap;

	if (c->bad)
		return;
	c->bad = true;
	va_start(ap, fmt);
	vsnprintf(c->why, sizeof(c->why), fmt, ap);
	va_end(ap);
}

/* n more bytes, or NULL (and the cursor bad) when the section has fewer left. */
static const uint8_t *take(struct snap_cursor *c, size_t n)
{
	const uint8_t *at;

	if (c->bad)
		return NULL;
	if (n > c->len - c->off) {
		snap_cursor_fail(c, "truncated: %zu bytes wanted at byte %zu of %zu", n, c->off,
				 c->len);
		return NULL;
	}
	at = c->p + c->off;
	c->off += n;
	return at;
}

static uint64_t get_le(struct snap_cursor *c, unsigned n)
{
	const uint8_t *p = take(c, n);
	uint64_t v = 0;

	if (!p)
		return 0;
	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

uint8_t snap_get_u8(struct snap_cursor *c) { return (uint8_t)get_le(c, 1); }
uint16_t snap_get_u16(struct snap_cursor *c) { return (uint16_t)get_le(c, 2); }
uint32_t snap_get_u32(struct snap_cursor *c) { return (uint32_t)get_le(c, 4); }
uint64_t snap_get_u64(struct snap_cursor *c) { return get_le(c, 8); }

bool snap_get_bool(struct snap_cursor *c)
{
	size_t at = c->off;
	uint8_t v = snap_get_u8(c);

	if (v > 1)
		snap_cursor_fail(c, "byte %zu: a flag of %u (0 or 1 expected)", at, v);
	return v == 1;
}

void snap_get_bytes(struct snap_cursor *c, void *out, size_t n)
{
	const uint8_t *p = take(c, n);

	if (p)
		memcpy(out, p, n);
	else if (n)
		memset(out, 0, n);
}

const void *snap_get_blob(struct snap_cursor *c, uint32_t max, uint32_t *n)
{
	size_t at = c->off;
	uint32_t len = snap_get_u32(c);

	*n = 0;
	if (c->bad)
		return NULL;
	if (len > max) {
		snap_cursor_fail(c, "byte %zu: a block of %u bytes (at most %u)", at, len, max);
		return NULL;
	}
	const void *p = take(c, len);
	if (p)
		*n = len;
	return p;
}

int snap_cursor_end(struct snap_cursor *c, char *err, size_t errlen)
{
	if (!c->bad && c->off != c->len)
		snap_cursor_fail(c, "%zu bytes left over", c->len - c->off);
	if (!c->bad)
		return 0;
	snprintf(err, errlen, "section '%s': %s", c->name ? c->name : "?", c->why);
	return -EINVAL;
}
