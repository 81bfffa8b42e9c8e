/* devices.c: `kiln run` device options: --disk (repeatable), --rng and --console. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/internal.h"

static const char *const disk_keys[] = {"path",	  "readonly", "id", "serial",
					"engine", "cache",    NULL};

static bool id_char_ok(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       ch == '.' || ch == '_' || ch == '-';
}

int cli_check_id_chars(const char *opt, const char *id, char *err, size_t errlen)
{
	struct cli_clip cl;

	if (strlen(id) >= VM_CONFIG_ID_MAX)
		return cli_fail(err, errlen, "%s: id '%s' is longer than %u bytes", opt,
				cli_clip(&cl, id), VM_CONFIG_ID_MAX - 1);
	for (const char *p = id; *p; p++) {
		if (!id_char_ok(*p))
			return cli_fail(
			    err, errlen,
			    "%s: id '%s' may hold only letters, digits, '.', '_' and '-'", opt,
			    cli_clip(&cl, id));
	}
	return 0;
}

static int check_id(const struct vm_config *c, const char *opt, const char *id, char *err,
		    size_t errlen)
{
	int ret = cli_check_id_chars(opt, id, err, errlen);

	if (ret)
		return ret;
	for (unsigned i = 0; i < c->nr_disks; i++) {
		if (!strcmp(c->disks[i].id, id))
			return cli_fail(err, errlen, "%s: duplicate id '%s'", opt, id);
	}
	return 0;
}

static int check_serial(const char *opt, const char *serial, char *err, size_t errlen)
{
	struct cli_clip cl;

	if (strlen(serial) > VM_CONFIG_SERIAL_MAX)
		return cli_fail(err, errlen, "%s: serial '%s' is longer than %u bytes", opt,
				cli_clip(&cl, serial), VM_CONFIG_SERIAL_MAX);
	for (const char *p = serial; *p; p++) {
		if (*p < 0x20 || *p > 0x7e)
			return cli_fail(err, errlen, "%s: serial '%s' must be printable ASCII", opt,
					cli_clip(&cl, serial));
	}
	return 0;
}

/* The image: exists, is a file or block device, readable, writable unless read-only, and not
 * already another disk. */
static int check_image(const struct vm_config *c, const char *opt, const char *path, bool readonly,
		       char *err, size_t errlen)
{
	struct cli_clip cl;
	struct stat st, other;

	if (stat(path, &st))
		return cli_fail(err, errlen, "%s: %s: %s", opt, cli_clip(&cl, path),
				strerror(errno));
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
		return cli_fail(err, errlen, "%s: %s: %s", opt, cli_clip(&cl, path),
				S_ISDIR(st.st_mode) ? strerror(EISDIR)
						    : "not a regular file or block device");
	if (access(path, R_OK))
		return cli_fail(err, errlen, "%s: %s: %s", opt, cli_clip(&cl, path),
				strerror(errno));
	if (!readonly) {
		/* access() lets root write anything: a file nobody may write is read-only too. */
		int e = access(path, W_OK) ? errno : (st.st_mode & 0222) ? 0 : EACCES;

		if (e)
			return cli_fail(err, errlen, "%s: %s: read-only (%s): add readonly=on", opt,
					cli_clip(&cl, path), strerror(e));
	}
	for (unsigned i = 0; i < c->nr_disks; i++) {
		const struct disk_config *d = &c->disks[i];

		if (!stat(d->path, &other) && other.st_dev == st.st_dev &&
		    other.st_ino == st.st_ino && (!readonly || !d->readonly))
			return cli_fail(err, errlen, "%s: %s is already used by another --disk",
					opt, cli_clip(&cl, path));
	}
	return 0;
}

/* The keys other than path, into d. */
static int disk_options(const struct vm_config *c, const struct cli_kvlist *kv, const char *opt,
			struct disk_config *d, char *err, size_t errlen)
{
	const char *v;
	struct cli_clip cl;
	int ret;

	if ((v = cli_kvlist_get(kv, "readonly")) && cli_parse_bool(v, &d->readonly))
		return cli_fail(err, errlen, "%s: readonly: '%s' is not on or off", opt,
				cli_clip(&cl, v));
	if ((v = cli_kvlist_get(kv, "id"))) {
		if ((ret = check_id(c, opt, v, err, errlen)))
			return ret;
		snprintf(d->id, sizeof(d->id), "%s", v);
	}
	if ((v = cli_kvlist_get(kv, "serial"))) {
		if ((ret = check_serial(opt, v, err, errlen)))
			return ret;
		snprintf(d->serial, sizeof(d->serial), "%s", v);
	}
	if ((v = cli_kvlist_get(kv, "engine"))) {
		if (!strcmp(v, "uring"))
			d->engine = DISK_ENGINE_URING;
		else if (!strcmp(v, "sync"))
			d->engine = DISK_ENGINE_SYNC;
		else
			return cli_fail(err, errlen, "%s: engine '%s' is not uring or sync", opt,
					cli_clip(&cl, v));
	}
	if ((v = cli_kvlist_get(kv, "cache"))) {
		if (!strcmp(v, "writeback"))
			d->cache = DISK_CACHE_WRITEBACK;
		else if (!strcmp(v, "unsafe"))
			d->cache = DISK_CACHE_UNSAFE;
		else
			return cli_fail(err, errlen, "%s: cache '%s' is not writeback or unsafe",
					opt, cli_clip(&cl, v));
	}
	return 0;
}

int cli_set_disk(struct vm_config *c, const char *opt, const char *val, char *err, size_t errlen)
{
	struct disk_config *d;
	struct cli_kvlist kv;
	const char *path;
	int ret;

	if (c->nr_disks >= VM_CONFIG_MAX_DISKS)
		return cli_fail(err, errlen, "%s: at most %u disks", opt, VM_CONFIG_MAX_DISKS);
	ret = cli_kvlist_parse(&kv, opt, val, disk_keys, 0, err, errlen);
	if (ret)
		return ret;
	d = &c->disks[c->nr_disks];
	memset(d, 0, sizeof(*d));
	path = cli_kvlist_get(&kv, "path");
	if (!path)
		ret = cli_fail(err, errlen, "%s: path=IMG is required", opt);
	if (!ret)
		ret = disk_options(c, &kv, opt, d, err, errlen);
	if (!ret)
		ret = check_image(c, opt, path, d->readonly, err, errlen);
	if (!ret) {
		d->path = strdup(path);
		ret = d->path ? 0 : -ENOMEM;
	}
	if (!ret)
		c->nr_disks++;
	cli_kvlist_free(&kv);
	return ret;
}

int cli_set_rng(struct vm_config *c, const char *opt, const char *val, char *err, size_t errlen)
{
	struct cli_clip cl;

	if (cli_parse_bool(val, &c->rng))
		return cli_fail(err, errlen, "%s: '%s' is not on or off", opt, cli_clip(&cl, val));
	return 0;
}

int cli_set_console(struct vm_config *c, const char *opt, const char *val, char *err, size_t errlen)
{
	return cli_parse_mode(opt, val, &c->console_mode, &c->console_path, err, errlen);
}

/* Give disk i the first free name disk0, disk1... */
static void name_disk(struct vm_config *c, unsigned i)
{
	for (unsigned n = 0;; n++) {
		char id[VM_CONFIG_ID_MAX];
		bool used = false;

		snprintf(id, sizeof(id), "disk%u", n);
		for (unsigned j = 0; j < c->nr_disks && !used; j++)
			used = !strcmp(c->disks[j].id, id);
		if (!used) {
			memcpy(c->disks[i].id, id, sizeof(id));
			return;
		}
	}
}

int cli_check_devices(struct vm_config *c, bool serial_given, char *err, size_t errlen)
{
	for (unsigned i = 0; i < c->nr_disks; i++) {
		if (!c->disks[i].id[0])
			name_disk(c, i);
	}
	cli_name_nets(c);
	/* One terminal, one reader: --console stdio takes stdin. A serial port left at its
	 * default keeps writing to stdout (kernel messages) but reads nothing. */
	if (c->console_mode == SERIAL_STDIO && c->serial_mode == SERIAL_STDIO && serial_given)
		return cli_fail(err, errlen,
				"--console: stdio is already used by --serial stdio (give --serial "
				"off or file=PATH, or --console file=PATH)");
	return 0;
}
