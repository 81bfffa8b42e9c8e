/* config_state.c: the CONFIG and MEMORY snapshot sections: encode, checked decode, restore-time
 * overrides (snapshot/config_state.h). */
#include "snapshot/config_state.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- encoding ---------------------------------------------------------------------------- */

static void put_str(struct snap_buf *b, const char *s)
{
	size_t n = s ? strlen(s) : 0;

	/* A config kiln booted from has no string near 4 GiB; clamp rather than wrap. */
	snap_put_blob(b, s, n > UINT32_MAX ? UINT32_MAX : (uint32_t)n);
}

void config_state_encode(const struct vm_config *c, struct snap_buf *b)
{
	snap_put_u32(b, c->cpus);
	snap_put_u64(b, c->mem_size);
	snap_put_bool(b, c->rng);
	snap_put_bool(b, c->serial_mode != SERIAL_OFF);
	snap_put_bool(b, c->console_mode != SERIAL_OFF);

	snap_put_u32(b, c->nr_disks);
	for (unsigned i = 0; i < c->nr_disks && i < VM_CONFIG_MAX_DISKS; i++) {
		const struct disk_config *d = &c->disks[i];

		put_str(b, d->id);
		put_str(b, d->path);
		put_str(b, d->serial);
		snap_put_bool(b, d->readonly);
		snap_put_bool(b, d->is_root);
		snap_put_u8(b, (uint8_t)d->engine);
		snap_put_u8(b, (uint8_t)d->cache);
	}

	snap_put_u32(b, c->nr_nets);
	for (unsigned i = 0; i < c->nr_nets && i < VM_CONFIG_MAX_NETS; i++) {
		const struct net_config *n = &c->nets[i];
		uint8_t mac[6];

		if (n->mac_set)
			memcpy(mac, n->mac, sizeof(mac));
		else
			vm_config_default_mac(n->id, mac);
		put_str(b, n->id);
		snap_put_bool(b, n->user);
		put_str(b, n->tap);
		put_str(b, n->passt);
		snap_put_bytes(b, mac, sizeof(mac));
		snap_put_u32(b, n->mtu);
		put_str(b, n->hostfwd);
		snap_put_bool(b, n->host_loopback);
	}
}

/* ---- decoding ---------------------------------------------------------------------------- */

/* The decoder: the cursor, the prefix naming the current disk or interface ("disks[1]."), and
 * the first failure in full (the cursor's own copy is shorter). */
struct dec {
	struct snap_cursor *c;
	char pfx[24];
	char why[400];
	int err; /* -EINVAL or -ENOMEM, once failed */
};

static void __attribute__((format(printf, 2, 3))) dfail(struct dec *d, const char *fmt, ...)
{
	va_list ap;

	if (d->err)
		return;
	d->err = -EINVAL;
	va_start(ap, fmt);
	vsnprintf(d->why, sizeof(d->why), fmt, ap);
	va_end(ap);
	snap_cursor_fail(d->c, "%s", d->why);
}

/* Are n more bytes there for field? Else the decoder fails naming it. */
static bool have(struct dec *d, size_t n, const char *field)
{
	struct snap_cursor *c = d->c;

	if (d->err || c->bad)
		return false;
	if (n > c->len - c->off) {
		dfail(d, "%s%s: truncated: %zu bytes wanted at byte %zu of %zu", d->pfx, field, n,
		      c->off, c->len);
		return false;
	}
	return true;
}

static uint64_t get_uint(struct dec *d, unsigned bytes, const char *field)
{
	if (!have(d, bytes, field))
		return 0;
	switch (bytes) {
	case 1:
		return snap_get_u8(d->c);
	case 4:
		return snap_get_u32(d->c);
	default:
		return snap_get_u64(d->c);
	}
}

static bool get_flag(struct dec *d, const char *field)
{
	uint64_t v = get_uint(d, 1, field);

	if (v > 1)
		dfail(d, "%s%s: %u is not a flag (0 or 1)", d->pfx, field, (unsigned)v);
	return v == 1;
}

/* A string of at most max bytes without NUL: its bytes in the section (consumed), or NULL
 * after failing the decoder. *n gets the length. */
static const char *get_raw(struct dec *d, uint32_t max, const char *field, uint32_t *n)
{
	struct snap_cursor *c = d->c;
	uint32_t len = (uint32_t)get_uint(d, 4, field);
	const char *p, *nul;

	*n = 0;
	if (d->err)
		return NULL;
	if (len > max) {
		dfail(d, "%s%s: %" PRIu32 " bytes (at most %" PRIu32 ")", d->pfx, field, len, max);
		return NULL;
	}
	if (!have(d, len, field))
		return NULL;
	p = (const char *)c->p + c->off;
	nul = memchr(p, 0, len);
	if (nul) {
		dfail(d, "%s%s: a NUL byte inside (byte %zu of %" PRIu32 ")", d->pfx, field,
		      (size_t)(nul - p), len);
		return NULL;
	}
	c->off += len; /* checked by have() */
	*n = len;
	return p;
}

/* Into the fixed buffer out (size > max). */
static void get_fixed(struct dec *d, char *out, uint32_t max, const char *field)
{
	uint32_t n;
	const char *p = get_raw(d, max, field, &n);

	memcpy(out, p ? p : "", n);
	out[n] = '\0';
}

/* A new string, or NULL when empty (or on failure). */
static char *get_owned(struct dec *d, const char *field)
{
	uint32_t n;
	const char *p = get_raw(d, CONFIG_STATE_STR_MAX, field, &n);
	char *s;

	if (!p || !n)
		return NULL;
	s = malloc(n + 1);
	if (!s) {
		dfail(d, "%s%s: out of memory", d->pfx, field);
		d->err = -ENOMEM;
		return NULL;
	}
	memcpy(s, p, n);
	s[n] = '\0';
	return s;
}

/* Ids as the CLI and the API give them: letters, digits, '.', '_' and '-'. */
static bool id_ok(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++) {
		char ch = *s;

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-'))
			return false;
	}
	return true;
}

static bool printable(const char *s)
{
	for (; *s; s++)
		if (*s < 0x20 || *s > 0x7e)
			return false;
	return true;
}

static void decode_disk(struct dec *d, struct vm_config *out, unsigned i)
{
	struct disk_config *dc = &out->disks[i];
	uint64_t v;

	snprintf(d->pfx, sizeof(d->pfx), "disks[%u].", i);
	get_fixed(d, dc->id, VM_CONFIG_ID_MAX - 1, "id");
	if (!d->err && !id_ok(dc->id))
		dfail(d, "disks[%u].id: empty, or not only letters, digits, '.', '_' and '-'", i);
	for (unsigned j = 0; j < i && !d->err; j++)
		if (!strcmp(out->disks[j].id, dc->id))
			dfail(d, "disks[%u].id: '%s' is also disks[%u]'s", i, dc->id, j);
	dc->path = get_owned(d, "path");
	if (!d->err && !dc->path)
		dfail(d, "disks[%u].path: empty", i);
	get_fixed(d, dc->serial, VM_CONFIG_SERIAL_MAX, "serial");
	if (!d->err && !printable(dc->serial))
		dfail(d, "disks[%u].serial: not printable ASCII", i);
	dc->readonly = get_flag(d, "readonly");
	dc->is_root = get_flag(d, "is_root");
	for (unsigned j = 0; j < i && dc->is_root && !d->err; j++)
		if (out->disks[j].is_root)
			dfail(d, "disks[%u].is_root: disks[%u] is the root device already", i, j);
	v = get_uint(d, 1, "engine");
	if (v > DISK_ENGINE_SYNC)
		dfail(d, "disks[%u].engine: %u is not an engine (0-%u)", i, (unsigned)v,
		      (unsigned)DISK_ENGINE_SYNC);
	dc->engine = (enum disk_engine)v;
	v = get_uint(d, 1, "cache");
	if (v > DISK_CACHE_UNSAFE)
		dfail(d, "disks[%u].cache: %u is not a cache mode (0-%u)", i, (unsigned)v,
		      (unsigned)DISK_CACHE_UNSAFE);
	dc->cache = (enum disk_cache)v;
}

static void decode_net(struct dec *d, struct net_config *n, unsigned i)
{
	struct net_hostfwd fwd[VM_CONFIG_MAX_HOSTFWD];
	char tap[VM_CONFIG_IFNAME_MAX + 1], why[200];
	unsigned nfwd;

	snprintf(d->pfx, sizeof(d->pfx), "nets[%u].", i);
	get_fixed(d, n->id, VM_CONFIG_ID_MAX - 1, "id");
	if (!d->err && !id_ok(n->id))
		dfail(d, "nets[%u].id: empty, or not only letters, digits, '.', '_' and '-'", i);
	n->user = get_flag(d, "user");
	get_fixed(d, tap, VM_CONFIG_IFNAME_MAX, "tap");
	if (!d->err && n->user && tap[0])
		dfail(d, "nets[%u].tap: set on a user-mode interface", i);
	else if (!d->err && !n->user && !tap[0])
		dfail(d, "nets[%u].tap: empty on a TAP interface", i);
	else if (!d->err && tap[0] && !vm_config_ifname_valid(tap))
		dfail(d, "nets[%u].tap: not a valid interface name", i);
	if (!d->err && tap[0]) {
		n->tap = strdup(tap);
		if (!n->tap) {
			dfail(d, "nets[%u].tap: out of memory", i);
			d->err = -ENOMEM;
		}
	}
	n->passt = get_owned(d, "passt");
	if (n->passt && n->passt[0] != '/')
		dfail(d, "nets[%u].passt: not an absolute path", i);
	if (have(d, sizeof(n->mac), "mac"))
		snap_get_bytes(d->c, n->mac, sizeof(n->mac));
	n->mac_set = true;
	n->mtu = (unsigned)get_uint(d, 4, "mtu");
	n->hostfwd = get_owned(d, "hostfwd");
	if (n->hostfwd && !printable(n->hostfwd))
		dfail(d, "nets[%u].hostfwd: not printable ASCII", i);
	else if (n->hostfwd && vm_config_parse_hostfwd(n->hostfwd, fwd, &nfwd, why, sizeof(why)))
		dfail(d, "nets[%u].hostfwd: %s", i, why);
	n->host_loopback = get_flag(d, "host_loopback");
}

/* Everything after the counts are read: the cross-field rules. */
static void decode_check(struct dec *d, const struct vm_config *out)
{
	struct guest_mem layout;
	char why[320];

	if (d->err)
		return;
	if (vm_config_validate(out, why, sizeof(why)))
		dfail(d, "%s", why);
	else if (guest_mem_layout(&layout, out->mem_size))
		dfail(d, "memory: %" PRIu64 " bytes is more than this kiln lays out",
		      out->mem_size);
}

int config_state_decode(struct snap_cursor *c, struct vm_config *out, char *err, size_t errlen)
{
	struct dec d = {.c = c};
	uint32_t n;

	vm_config_init(out);
	out->cpus = (unsigned)get_uint(&d, 4, "cpus");
	out->mem_size = get_uint(&d, 8, "mem_size");
	out->rng = get_flag(&d, "rng");
	out->serial_mode = get_flag(&d, "serial_out") ? SERIAL_STDIO : SERIAL_OFF;
	out->console_mode = get_flag(&d, "console") ? SERIAL_STDIO : SERIAL_OFF;

	n = (uint32_t)get_uint(&d, 4, "nr_disks");
	if (n > VM_CONFIG_MAX_DISKS)
		dfail(&d, "nr_disks: %" PRIu32 " (at most %u)", n, VM_CONFIG_MAX_DISKS);
	for (unsigned i = 0; i < n && !d.err; i++) {
		out->nr_disks = i + 1; /* from here on vm_config_free frees it */
		decode_disk(&d, out, i);
	}
	d.pfx[0] = '\0';
	n = (uint32_t)get_uint(&d, 4, "nr_nets");
	if (n > VM_CONFIG_MAX_NETS)
		dfail(&d, "nr_nets: %" PRIu32 " (at most %u)", n, VM_CONFIG_MAX_NETS);
	for (unsigned i = 0; i < n && !d.err; i++) {
		out->nr_nets = i + 1;
		decode_net(&d, &out->nets[i], i);
	}
	decode_check(&d, out);

	if (d.err) {
		snprintf(err, errlen, "section '%s': %s", c->name ? c->name : "?", d.why);
	} else if (snap_cursor_end(c, err, errlen)) {
		d.err = -EINVAL;
	}
	if (d.err) {
		vm_config_free(out);
		vm_config_init(out);
	}
	return d.err;
}

/* ---- restore-time overrides -------------------------------------------------------------- */

static int ofail(char *err, size_t errlen, int ret, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int ofail(char *err, size_t errlen, int ret, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return ret;
}

int config_state_override_net(struct vm_config *c, const char *iface_id, const char *tap, char *err,
			      size_t errlen)
{
	struct net_config *n = NULL;
	char *s;

	for (unsigned i = 0; i < c->nr_nets && i < VM_CONFIG_MAX_NETS; i++)
		if (!strcmp(c->nets[i].id, iface_id))
			n = &c->nets[i];
	if (!n)
		return ofail(err, errlen, -EINVAL,
			     "network_overrides: no interface '%.64s' in the snapshot", iface_id);
	if (n->user)
		return ofail(err, errlen, -EINVAL,
			     "network_overrides: interface '%s' uses user-mode networking: it has "
			     "no TAP (host_dev_name) to replace",
			     n->id);
	if (!vm_config_ifname_valid(tap))
		return ofail(err, errlen, -EINVAL,
			     "network_overrides: interface '%s': host_dev_name is not a valid "
			     "interface name (1-%u bytes, no '/', ':', spaces or control bytes)",
			     n->id, VM_CONFIG_IFNAME_MAX);
	s = strdup(tap);
	if (!s)
		return ofail(err, errlen, -ENOMEM, "network_overrides: interface '%s': %s", n->id,
			     strerror(ENOMEM));
	free(n->tap);
	n->tap = s;
	return 0;
}

int config_state_override_disk(struct vm_config *c, const char *drive_id, const char *path,
			       char *err, size_t errlen)
{
	struct disk_config *d = NULL;
	size_t len = strlen(path);
	char *s;

	for (unsigned i = 0; i < c->nr_disks && i < VM_CONFIG_MAX_DISKS; i++)
		if (!strcmp(c->disks[i].id, drive_id))
			d = &c->disks[i];
	if (!d)
		return ofail(err, errlen, -EINVAL,
			     "drive_overrides: no drive '%.64s' in the snapshot", drive_id);
	if (!len || len > CONFIG_STATE_STR_MAX)
		return ofail(err, errlen, -EINVAL,
			     "drive_overrides: drive '%s': path_on_host of %zu bytes (1-%u)", d->id,
			     len, CONFIG_STATE_STR_MAX);
	s = strdup(path);
	if (!s)
		return ofail(err, errlen, -ENOMEM, "drive_overrides: drive '%s': %s", d->id,
			     strerror(ENOMEM));
	free(d->path);
	d->path = s;
	return 0;
}

int config_state_set_output(struct vm_config *c, bool console, enum serial_mode mode,
			    const char *path, char *err, size_t errlen)
{
	const char *what = console ? "console" : "serial";
	enum serial_mode *cur = console ? &c->console_mode : &c->serial_mode;
	char **cur_path = console ? &c->console_path : &c->serial_path;
	char *s = NULL;

	if (mode != SERIAL_STDIO && mode != SERIAL_FILE && mode != SERIAL_OFF)
		return ofail(err, errlen, -EINVAL, "%s: unknown mode %d", what, (int)mode);
	/* The serial port is always there; the console only when the snapshot's VM had one. */
	if (console && *cur == SERIAL_OFF && mode != SERIAL_OFF)
		return ofail(err, errlen, -EINVAL,
			     "console: the snapshot's VM has no virtio-console to give output to");
	if (console && *cur != SERIAL_OFF && mode == SERIAL_OFF)
		return ofail(err, errlen, -EINVAL,
			     "console: cannot be off: the snapshot's VM has a virtio-console");
	if (mode == SERIAL_FILE && (!path || !path[0]))
		return ofail(err, errlen, -EINVAL, "%s: file output needs a path", what);
	if (mode != SERIAL_FILE && path)
		return ofail(err, errlen, -EINVAL, "%s: a path is only for file output", what);
	if (path && strlen(path) > CONFIG_STATE_STR_MAX)
		return ofail(err, errlen, -EINVAL, "%s: path of %zu bytes (at most %u)", what,
			     strlen(path), CONFIG_STATE_STR_MAX);
	if (path && !(s = strdup(path)))
		return ofail(err, errlen, -ENOMEM, "%s: %s", what, strerror(ENOMEM));
	free(*cur_path);
	*cur_path = s;
	*cur = mode;
	return 0;
}

/* ---- the MEMORY section ------------------------------------------------------------------ */

void memory_layout_encode(const struct guest_mem *m, struct snap_buf *b)
{
	snap_put_u64(b, m->ram_size);
	snap_put_u32(b, m->nr_regions);
	for (unsigned i = 0; i < m->nr_regions && i < GUEST_MEM_MAX_REGIONS; i++) {
		snap_put_u64(b, m->regions[i].gpa);
		snap_put_u64(b, m->regions[i].size);
	}
}

int memory_layout_check(struct snap_cursor *c, const struct guest_mem *expected, char *err,
			size_t errlen)
{
	uint64_t gpa[GUEST_MEM_MAX_REGIONS] = {0}, size[GUEST_MEM_MAX_REGIONS] = {0};
	uint64_t ram = snap_get_u64(c);
	uint32_t nr = snap_get_u32(c);

	if (!c->bad && nr > GUEST_MEM_MAX_REGIONS)
		snap_cursor_fail(c, "nr_regions: %" PRIu32 " (at most %u)", nr,
				 GUEST_MEM_MAX_REGIONS);
	for (uint32_t i = 0; i < nr && !c->bad; i++) {
		gpa[i] = snap_get_u64(c);
		size[i] = snap_get_u64(c);
	}
	if (!c->bad && c->off != c->len)
		return snap_cursor_end(c, err, errlen); /* bytes left over */
	if (!c->bad && ram != expected->ram_size)
		snap_cursor_fail(c,
				 "ram_size: %" PRIu64 " bytes, but the configuration's memory is "
				 "%" PRIu64 " bytes",
				 ram, expected->ram_size);
	if (!c->bad && nr != expected->nr_regions)
		snap_cursor_fail(c,
				 "%" PRIu32 " regions, but this kiln lays out %u (a snapshot of a "
				 "kiln with another memory map)",
				 nr, expected->nr_regions);
	for (uint32_t i = 0; i < nr && !c->bad; i++) {
		const struct mem_region *r = &expected->regions[i];

		if (gpa[i] != r->gpa || size[i] != r->size)
			snap_cursor_fail(c,
					 "regions[%" PRIu32 "]: gpa 0x%" PRIx64 " size 0x%" PRIx64
					 ", but this kiln lays out gpa 0x%" PRIx64
					 " size 0x%" PRIx64 " (another memory map)",
					 i, gpa[i], size[i], r->gpa, r->size);
	}
	return snap_cursor_end(c, err, errlen);
}
