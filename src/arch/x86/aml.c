/* aml.c: AML byte-code builder: names, integers, nested objects with back-patched PkgLength. */
#include "arch/x86/aml.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Opcodes and prefixes (ACPI 6.5, sec. 20.2). */
#define AML_ZERO_OP 0x00
#define AML_ONE_OP 0x01
#define AML_NAME_OP 0x08
#define AML_BYTE_PREFIX 0x0a
#define AML_WORD_PREFIX 0x0b
#define AML_DWORD_PREFIX 0x0c
#define AML_STRING_PREFIX 0x0d
#define AML_QWORD_PREFIX 0x0e
#define AML_SCOPE_OP 0x10
#define AML_BUFFER_OP 0x11
#define AML_PACKAGE_OP 0x12
#define AML_VAR_PACKAGE_OP 0x13
#define AML_METHOD_OP 0x14
#define AML_DUAL_NAME_PREFIX 0x2e
#define AML_MULTI_NAME_PREFIX 0x2f
#define AML_EXT_OP_PREFIX 0x5b
#define AML_DEVICE_OP 0x82 /* after AML_EXT_OP_PREFIX */
#define AML_ROOT_CHAR 0x5c
#define AML_PARENT_PREFIX_CHAR 0x5e
#define AML_RETURN_OP 0xa4
#define AML_NOTIFY_OP 0x86
#define AML_ONES_OP 0xff
#define AML_NULL_NAME 0x00

/* Resource descriptor tags (ACPI 6.5, sec. 6.4). */
#define RES_IO 0x47	 /* small item 0x08, length 7 */
#define RES_END_TAG 0x79 /* small item 0x0f, length 1 */
#define RES_DWORD_ADDR 0x87
#define RES_WORD_ADDR 0x88
#define RES_EXT_IRQ 0x89
#define RES_QWORD_ADDR 0x8a
#define RES_TYPE_MEM 0
#define RES_TYPE_IO 1
#define RES_TYPE_BUS 2
#define RES_GEN_MIN_FIXED 0x04 /* _MIF */
#define RES_GEN_MAX_FIXED 0x08 /* _MAF */
#define RES_IO_ENTIRE_RANGE 0x03
#define RES_MEM_RW 0x01

#define PKGLENGTH_MAX 0x0fffffffu /* 28 bits */

/* Where an emitter may appear: bit per frame kind, plus the outermost TermList. */
#define IN_TOP (1u << 8)
#define IN(kind) (1u << (kind))
#define IN_TERM (IN_TOP | IN(AML_FRAME_SCOPE))
#define IN_DATA (IN_TERM | IN(AML_FRAME_PACKAGE))

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "AML is little-endian; so is the host");

void aml_init(struct aml *a) { memset(a, 0, sizeof(*a)); }

void aml_destroy(struct aml *a)
{
	free(a->buf);
	memset(a, 0, sizeof(*a));
}

void aml_fail(struct aml *a, int err)
{
	if (!a->err)
		a->err = err < 0 ? err : -EINVAL;
}

int aml_error(const struct aml *a) { return a->err; }

int aml_finish(struct aml *a)
{
	if (!a->err && a->depth)
		aml_fail(a, -EINVAL);
	return a->err;
}

const uint8_t *aml_data(const struct aml *a) { return a->buf; }

size_t aml_len(const struct aml *a) { return a->len; }

unsigned aml_depth(const struct aml *a) { return a->depth; }

/* False (and the error latched) if the builder already failed or the current frame does not
 * accept this kind of content. */
static bool ok_in(struct aml *a, unsigned where)
{
	unsigned here;

	if (a->err)
		return false;
	here = a->depth ? IN(a->frames[a->depth - 1].kind) : IN_TOP;
	if (!(here & where)) {
		aml_fail(a, -EINVAL);
		return false;
	}
	return true;
}

static bool reserve(struct aml *a, size_t n)
{
	size_t need, cap;
	uint8_t *p;

	if (a->err)
		return false;
	if (n > SIZE_MAX - a->len) {
		aml_fail(a, -E2BIG);
		return false;
	}
	need = a->len + n;
	if (need <= a->cap)
		return true;
	cap = a->cap ? a->cap : 256;
	while (cap < need) {
		if (cap > SIZE_MAX / 2) {
			aml_fail(a, -E2BIG);
			return false;
		}
		cap *= 2;
	}
	p = realloc(a->buf, cap);
	if (!p) {
		aml_fail(a, -ENOMEM);
		return false;
	}
	a->buf = p;
	a->cap = cap;
	return true;
}

static void put(struct aml *a, const void *p, size_t n)
{
	if (n == 0 || !reserve(a, n))
		return;
	memcpy(a->buf + a->len, p, n);
	a->len += n;
}

static void put8(struct aml *a, uint8_t v) { put(a, &v, 1); }

static void put_le(struct aml *a, uint64_t v, unsigned bytes)
{
	uint8_t b[8];

	for (unsigned i = 0; i < bytes; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	put(a, b, bytes);
}

static void insert(struct aml *a, size_t pos, const uint8_t *p, size_t n)
{
	if (!reserve(a, n))
		return;
	memmove(a->buf + pos + n, a->buf + pos, a->len - pos);
	memcpy(a->buf + pos, p, n);
	a->len += n;
}

/* One more element in the enclosing Package (ignored for other frames). */
static void count_element(struct aml *a)
{
	if (a->depth)
		a->frames[a->depth - 1].count++;
}

unsigned aml_pkglength_encode(uint8_t out[4], size_t body_len)
{
	size_t total;

	if (body_len > PKGLENGTH_MAX)
		return 0;
	/* One byte: bits 5:0 hold the length, up to 63. */
	if (body_len + 1 <= 0x3f) {
		out[0] = (uint8_t)(body_len + 1);
		return 1;
	}
	/* n bytes: byte 0 bits 7:6 = n - 1, bits 3:0 = length bits 3:0, then 8 bits per byte. */
	for (unsigned n = 2; n <= 4; n++) {
		total = body_len + n;
		if (total >> (4 + 8 * (n - 1)))
			continue;
		out[0] = (uint8_t)(((n - 1) << 6) | (total & 0x0f));
		for (unsigned i = 1; i < n; i++)
			out[i] = (uint8_t)(total >> (4 + 8 * (i - 1)));
		return n;
	}
	return 0;
}

/* Smallest encoding of an integer constant; returns its length (1-9). */
static size_t encode_integer(uint8_t out[9], uint64_t v)
{
	unsigned bytes;

	if (v == 0 || v == 1 || v == UINT64_MAX) {
		out[0] = v == 0 ? AML_ZERO_OP : v == 1 ? AML_ONE_OP : AML_ONES_OP;
		return 1;
	}
	if (v <= UINT8_MAX) {
		out[0] = AML_BYTE_PREFIX;
		bytes = 1;
	} else if (v <= UINT16_MAX) {
		out[0] = AML_WORD_PREFIX;
		bytes = 2;
	} else if (v <= UINT32_MAX) {
		out[0] = AML_DWORD_PREFIX;
		bytes = 4;
	} else {
		out[0] = AML_QWORD_PREFIX;
		bytes = 8;
	}
	for (unsigned i = 0; i < bytes; i++)
		out[1 + i] = (uint8_t)(v >> (8 * i));
	return 1 + bytes;
}

static bool is_lead_char(char c) { return (c >= 'A' && c <= 'Z') || c == '_'; }

static bool is_name_char(char c) { return is_lead_char(c) || (c >= '0' && c <= '9'); }

/* Validate an ASL path; on success store the prefix length ('\' or '^'s) and segment count. */
static bool parse_path(const char *path, size_t *prefix, unsigned *nsegs)
{
	const char *p = path;
	unsigned segs = 0;
	size_t n;

	if (!path)
		return false;
	if (*p == '\\')
		p++;
	else
		while (*p == '^')
			p++;
	*prefix = (size_t)(p - path);
	if (!*p) {
		*nsegs = 0; /* "\" alone: the root, NullName */
		return *prefix == 1 && path[0] == '\\';
	}
	for (;;) {
		for (n = 0; p[n] && p[n] != '.'; n++)
			if (n >= 4 || !(n ? is_name_char(p[n]) : is_lead_char(p[n])))
				return false;
		if (n == 0 || ++segs > 255)
			return false;
		p += n;
		if (!*p)
			break;
		p++; /* '.' must be followed by another segment */
	}
	*nsegs = segs;
	return true;
}

static void put_namestring(struct aml *a, const char *path)
{
	size_t prefix;
	unsigned nsegs;
	const char *p;
	uint8_t seg[4];

	if (a->err)
		return;
	if (!parse_path(path, &prefix, &nsegs)) {
		aml_fail(a, -EINVAL);
		return;
	}
	put(a, path, prefix); /* '\' and '^' are their own encodings */
	if (nsegs == 0)
		put8(a, AML_NULL_NAME);
	else if (nsegs == 2)
		put8(a, AML_DUAL_NAME_PREFIX);
	else if (nsegs > 2) {
		put8(a, AML_MULTI_NAME_PREFIX);
		put8(a, (uint8_t)nsegs);
	}
	p = path + prefix;
	for (unsigned s = 0; s < nsegs; s++) {
		size_t n = 0;

		memset(seg, '_', sizeof(seg));
		while (*p && *p != '.')
			seg[n++] = (uint8_t)*p++;
		if (*p == '.')
			p++;
		put(a, seg, sizeof(seg));
	}
}

void aml_integer(struct aml *a, uint64_t v)
{
	uint8_t enc[9];

	if (!ok_in(a, IN_DATA))
		return;
	put(a, enc, encode_integer(enc, v));
	count_element(a);
}

void aml_string(struct aml *a, const char *s)
{
	if (!ok_in(a, IN_DATA))
		return;
	for (const char *c = s; *c; c++) {
		if ((unsigned char)*c > 0x7f) {
			aml_fail(a, -EINVAL);
			return;
		}
	}
	put8(a, AML_STRING_PREFIX);
	put(a, s, strlen(s) + 1); /* NUL terminator included */
	count_element(a);
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

void aml_eisaid(struct aml *a, const char *id)
{
	uint32_t v = 0;

	if (!ok_in(a, IN_DATA))
		return;
	if (strlen(id) != 7) {
		aml_fail(a, -EINVAL);
		return;
	}
	/* Three letters, 5 bits each ('A' = 1), then four hex digits, stored big-endian. */
	for (unsigned i = 0; i < 3; i++) {
		if (id[i] < 'A' || id[i] > 'Z') {
			aml_fail(a, -EINVAL);
			return;
		}
		v |= (uint32_t)(id[i] - 0x40) << (26 - 5 * i);
	}
	for (unsigned i = 3; i < 7; i++) {
		int d = hex_digit(id[i]);

		if (d < 0) {
			aml_fail(a, -EINVAL);
			return;
		}
		v |= (uint32_t)d << (4 * (6 - i));
	}
	/* Always a DWordConst, as ASL's EISAID() gives, whatever the value. */
	put8(a, AML_DWORD_PREFIX);
	put_le(a, __builtin_bswap32(v), 4);
	count_element(a);
}

void aml_name_ref(struct aml *a, const char *path)
{
	if (!ok_in(a, IN_DATA))
		return;
	put_namestring(a, path);
	count_element(a);
}

void aml_name(struct aml *a, const char *path)
{
	if (!ok_in(a, IN_TERM))
		return;
	put8(a, AML_NAME_OP);
	put_namestring(a, path);
}

void aml_name_int(struct aml *a, const char *path, uint64_t v)
{
	aml_name(a, path);
	aml_integer(a, v);
}

void aml_name_str(struct aml *a, const char *path, const char *s)
{
	aml_name(a, path);
	aml_string(a, s);
}

void aml_name_eisaid(struct aml *a, const char *path, const char *id)
{
	aml_name(a, path);
	aml_eisaid(a, id);
}

void aml_return(struct aml *a)
{
	if (!ok_in(a, IN_TERM))
		return;
	put8(a, AML_RETURN_OP);
}

void aml_notify(struct aml *a, const char *path, uint64_t value)
{
	if (!ok_in(a, IN_TERM))
		return;
	put8(a, AML_NOTIFY_OP);
	put_namestring(a, path);
	aml_integer(a, value);
}

/* Open a frame whose PkgLength will be inserted at the current end of the buffer. */
static void push(struct aml *a, enum aml_frame_kind kind)
{
	if (a->err)
		return;
	if (a->depth >= AML_MAX_DEPTH) {
		aml_fail(a, -E2BIG);
		return;
	}
	a->frames[a->depth++] = (struct aml_frame){.start = a->len, .count = 0, .kind = kind};
}

void aml_scope_begin(struct aml *a, const char *path)
{
	if (!ok_in(a, IN_TERM))
		return;
	put8(a, AML_SCOPE_OP);
	push(a, AML_FRAME_SCOPE);
	put_namestring(a, path);
}

void aml_device_begin(struct aml *a, const char *path)
{
	static const uint8_t op[] = {AML_EXT_OP_PREFIX, AML_DEVICE_OP};

	if (!ok_in(a, IN_TERM))
		return;
	put(a, op, sizeof(op));
	push(a, AML_FRAME_SCOPE);
	put_namestring(a, path);
}

void aml_method_begin(struct aml *a, const char *path, unsigned nargs, bool serialized)
{
	if (!ok_in(a, IN_TERM))
		return;
	if (nargs > 7) {
		aml_fail(a, -EINVAL);
		return;
	}
	put8(a, AML_METHOD_OP);
	push(a, AML_FRAME_SCOPE);
	put_namestring(a, path);
	/* MethodFlags: bits 2:0 ArgCount, bit 3 SerializeFlag, bits 7:4 SyncLevel (0). */
	put8(a, (uint8_t)(nargs | (serialized ? 0x08 : 0)));
}

void aml_package_begin(struct aml *a)
{
	if (!ok_in(a, IN_DATA))
		return;
	count_element(a);
	put8(a, AML_PACKAGE_OP);
	push(a, AML_FRAME_PACKAGE);
}

void aml_buffer_begin(struct aml *a)
{
	if (!ok_in(a, IN_DATA))
		return;
	count_element(a);
	put8(a, AML_BUFFER_OP);
	push(a, AML_FRAME_BUFFER);
}

void aml_restemplate_begin(struct aml *a)
{
	if (!ok_in(a, IN_DATA))
		return;
	count_element(a);
	put8(a, AML_BUFFER_OP);
	push(a, AML_FRAME_RESTEMPLATE);
}

void aml_buffer_bytes(struct aml *a, const void *p, size_t n)
{
	if (!ok_in(a, IN(AML_FRAME_BUFFER)))
		return;
	put(a, p, n);
}

void aml_end(struct aml *a)
{
	struct aml_frame *f;
	uint8_t hdr[4 + 9]; /* PkgLength + NumElements / BufferSize */
	uint8_t extra[9];
	size_t nextra = 0, body;
	unsigned pk;

	if (a->err)
		return;
	if (!a->depth) {
		aml_fail(a, -EINVAL);
		return;
	}
	f = &a->frames[a->depth - 1];
	if (f->kind == AML_FRAME_RESTEMPLATE) {
		/* EndTag; its checksum makes the whole template sum to zero. */
		uint8_t sum = RES_END_TAG;

		for (size_t i = f->start; i < a->len; i++)
			sum = (uint8_t)(sum + a->buf[i]);
		put8(a, RES_END_TAG);
		put8(a, (uint8_t)-sum);
	}
	body = a->len - f->start;
	switch (f->kind) {
	case AML_FRAME_PACKAGE:
		if (f->count <= UINT8_MAX) {
			extra[0] = (uint8_t)f->count;
			nextra = 1;
		} else {
			/* VarPackage: the element count is a TermArg. */
			a->buf[f->start - 1] = AML_VAR_PACKAGE_OP;
			nextra = encode_integer(extra, f->count);
		}
		break;
	case AML_FRAME_BUFFER:
	case AML_FRAME_RESTEMPLATE:
		nextra = encode_integer(extra, body);
		break;
	case AML_FRAME_SCOPE:
		break;
	}
	if (body > PKGLENGTH_MAX - nextra || !(pk = aml_pkglength_encode(hdr, nextra + body))) {
		aml_fail(a, -E2BIG);
		return;
	}
	memcpy(hdr + pk, extra, nextra);
	insert(a, f->start, hdr, pk + nextra);
	if (!a->err)
		a->depth--;
}

/* Resource descriptors. */

static void put_res(struct aml *a, const uint8_t *p, size_t n)
{
	if (!ok_in(a, IN(AML_FRAME_RESTEMPLATE)))
		return;
	put(a, p, n);
}

static uint8_t *le(uint8_t *p, uint64_t v, unsigned bytes)
{
	for (unsigned i = 0; i < bytes; i++)
		*p++ = (uint8_t)(v >> (8 * i));
	return p;
}

void aml_res_io(struct aml *a, uint16_t min, uint16_t max, uint8_t align, uint8_t len)
{
	uint8_t d[8], *p = d;

	if (min > max) {
		aml_fail(a, -EINVAL);
		return;
	}
	*p++ = RES_IO;
	*p++ = 0x01; /* Decode16 */
	p = le(p, min, 2);
	p = le(p, max, 2);
	*p++ = align;
	*p++ = len;
	put_res(a, d, sizeof(d));
}

void aml_res_interrupt(struct aml *a, unsigned flags, uint32_t gsi)
{
	uint8_t d[9], *p = d;

	if (flags & ~0x1fu) {
		aml_fail(a, -EINVAL);
		return;
	}
	*p++ = RES_EXT_IRQ;
	p = le(p, 6, 2); /* flags, table length, one DWORD */
	*p++ = (uint8_t)flags;
	*p++ = 1;
	p = le(p, gsi, 4);
	put_res(a, d, sizeof(d));
}

/* Word/DWord/QWord Address Space descriptor: `bytes` wide fields. */
static void res_addr(struct aml *a, uint8_t tag, unsigned bytes, uint8_t type, uint8_t tflags,
		     uint64_t min, uint64_t max)
{
	uint8_t d[6 + 5 * 8], *p = d;
	size_t n = 6 + 5 * (size_t)bytes;

	/* The length max - min + 1 must fit the field too. */
	if (min > max || max - min == UINT64_MAX || (bytes < 8 && (max - min + 1) >> (8 * bytes))) {
		aml_fail(a, -EINVAL);
		return;
	}
	*p++ = tag;
	p = le(p, n - 3, 2);
	*p++ = type;
	*p++ = RES_GEN_MIN_FIXED | RES_GEN_MAX_FIXED; /* ResourceProducer, PosDecode */
	*p++ = tflags;
	p = le(p, 0, bytes); /* granularity */
	p = le(p, min, bytes);
	p = le(p, max, bytes);
	p = le(p, 0, bytes);		 /* translation offset */
	p = le(p, max - min + 1, bytes); /* length */
	put_res(a, d, n);
}

void aml_res_word_bus_number(struct aml *a, uint16_t min, uint16_t max)
{
	res_addr(a, RES_WORD_ADDR, 2, RES_TYPE_BUS, 0, min, max);
}

void aml_res_word_io(struct aml *a, uint16_t min, uint16_t max)
{
	res_addr(a, RES_WORD_ADDR, 2, RES_TYPE_IO, RES_IO_ENTIRE_RANGE, min, max);
}

static uint8_t mem_flags(enum aml_mem_cache cache, bool writable)
{
	return (uint8_t)(((unsigned)cache & 3) << 1 | (writable ? RES_MEM_RW : 0));
}

void aml_res_dword_memory(struct aml *a, uint32_t min, uint32_t max, enum aml_mem_cache cache,
			  bool writable)
{
	res_addr(a, RES_DWORD_ADDR, 4, RES_TYPE_MEM, mem_flags(cache, writable), min, max);
}

void aml_res_qword_memory(struct aml *a, uint64_t min, uint64_t max, enum aml_mem_cache cache,
			  bool writable)
{
	res_addr(a, RES_QWORD_ADDR, 8, RES_TYPE_MEM, mem_flags(cache, writable), min, max);
}
