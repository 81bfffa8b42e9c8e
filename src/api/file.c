/* file.c: API config life cycle (defaults, copy, free), config files, action and vm-state
 * bodies, and the VM config handed to vm_create at InstanceStart. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/api.h"
#include "api/json.h"
#include "api/sections.h"
#include "util/file.h"

void api_config_init(struct api_config *c)
{
	memset(c, 0, sizeof(*c));
	vm_config_init(&c->vm);
	c->vm.mem_size = API_DEFAULT_MEM_MIB * MiB;
	c->vm.rng = false; /* only with PUT /entropy, as in Firecracker */
	c->vm.serial_mode = SERIAL_STDIO;
	c->logger.level = LOG_INFO;
}

void api_config_free(struct api_config *c)
{
	vm_config_free(&c->vm);
	free(c->logger.log_path);
	free(c->logger.module);
	free(c->metrics_path);
	c->logger.log_path = c->logger.module = c->metrics_path = NULL;
}

static int dup_str(char **dst, const char *src)
{
	*dst = NULL;
	if (src && !(*dst = strdup(src)))
		return -ENOMEM;
	return 0;
}

/* Deep copy of a vm_config: every owned string duplicated. */
static int copy_vm(struct vm_config *dst, const struct vm_config *src)
{
	*dst = *src;
	dst->kernel_path = dst->initrd_path = dst->cmdline = NULL;
	dst->serial_path = dst->console_path = NULL;
	for (unsigned i = 0; i < src->nr_disks; i++)
		dst->disks[i].path = NULL;
	for (unsigned i = 0; i < src->nr_nets; i++)
		dst->nets[i].tap = dst->nets[i].hostfwd = dst->nets[i].passt = NULL;
	int ret = dup_str(&dst->kernel_path, src->kernel_path) ||
		  dup_str(&dst->initrd_path, src->initrd_path) ||
		  dup_str(&dst->cmdline, src->cmdline) ||
		  dup_str(&dst->serial_path, src->serial_path) ||
		  dup_str(&dst->console_path, src->console_path);
	for (unsigned i = 0; !ret && i < src->nr_disks; i++)
		ret = dup_str(&dst->disks[i].path, src->disks[i].path);
	for (unsigned i = 0; !ret && i < src->nr_nets; i++)
		ret = dup_str(&dst->nets[i].tap, src->nets[i].tap) ||
		      dup_str(&dst->nets[i].hostfwd, src->nets[i].hostfwd) ||
		      dup_str(&dst->nets[i].passt, src->nets[i].passt);
	if (ret) {
		vm_config_free(dst);
		return -ENOMEM;
	}
	return 0;
}

int api_vm_config_copy(struct vm_config *dst, const struct vm_config *src)
{
	return copy_vm(dst, src);
}

void api_config_take_restored(struct api_config *c, struct vm_config *vm, bool track_dirty)
{
	vm_config_free(&c->vm);
	c->vm = *vm;
	vm_config_init(vm);
	/* What the snapshot does not hold: the kernel and its command line (in guest RAM now),
	 * output paths (host state), the drives' partuuid (it went into the command line). */
	free(c->vm.kernel_path);
	free(c->vm.initrd_path);
	free(c->vm.cmdline);
	c->vm.kernel_path = c->vm.initrd_path = c->vm.cmdline = NULL;
	c->vm.track_dirty_pages = track_dirty;
	c->track_dirty_pages = track_dirty;
	c->boot_source_set = false;
	c->machine_config_set = true;
	c->serial_set = false;
	memset(c->partuuid, 0, sizeof(c->partuuid));
}

int api_config_copy(struct api_config *dst, const struct api_config *src)
{
	*dst = *src;
	dst->logger.log_path = dst->logger.module = dst->metrics_path = NULL;
	if (copy_vm(&dst->vm, &src->vm)) {
		memset(dst, 0, sizeof(*dst));
		return -ENOMEM;
	}
	if (dup_str(&dst->logger.log_path, src->logger.log_path) ||
	    dup_str(&dst->logger.module, src->logger.module) ||
	    dup_str(&dst->metrics_path, src->metrics_path)) {
		api_config_free(dst);
		memset(dst, 0, sizeof(*dst));
		return -ENOMEM;
	}
	return 0;
}

int api_boot_config(const struct api_config *c, struct vm_config *out)
{
	const char *base = c->vm.cmdline ? c->vm.cmdline : VM_CONFIG_DEFAULT_CMDLINE;
	int root = -1;

	if (copy_vm(out, &c->vm))
		return -ENOMEM;
	out->track_dirty_pages = c->track_dirty_pages;
	for (unsigned i = 0; i < out->nr_disks; i++)
		if (out->disks[i].is_root)
			root = (int)i;
	if (root < 0)
		return 0;
	/* The root drive becomes the first virtio-blk device, /dev/vda (as in Firecracker). */
	struct disk_config d = out->disks[root];
	memmove(&out->disks[1], &out->disks[0], (size_t)root * sizeof(d));
	out->disks[0] = d;

	const char *uuid = c->partuuid[root];
	size_t len = strlen(base) + strlen(uuid) + 64;
	char *cmd = malloc(len);
	if (!cmd) {
		vm_config_free(out);
		return -ENOMEM;
	}
	snprintf(cmd, len, "%s root=%s%s %s", base, uuid[0] ? "PARTUUID=" : "/dev/vda", uuid,
		 d.readonly ? "ro" : "rw");
	free(out->cmdline);
	out->cmdline = cmd;
	return 0;
}

/* An optional array of section objects ("drives", "network-interfaces"). */
static int load_array(struct api_config *c, const json_t *root, const char *key,
		      int (*sec)(struct api_config *, const json_t *, const char *, const char *,
				 char *, size_t),
		      char *err, size_t n)
{
	json_t *arr = json_object_get(root, key), *item;
	size_t i;
	char w[64];

	if (!arr || json_is_null(arr))
		return 0;
	if (!json_is_array(arr))
		return api_json_fail(err, n, "%s: expected an array, got %s", key,
				     api_json_type(arr));
	json_array_foreach(arr, i, item)
	{
		snprintf(w, sizeof(w), "%s[%zu]", key, i);
		int ret = sec(c, item, NULL, w, err, n);
		if (ret)
			return ret;
	}
	return 0;
}

/* An optional object section; required ones report "missing". */
static json_t *section(const json_t *root, const char *key, bool required, int *ret, char *err,
		       size_t n)
{
	json_t *v = json_object_get(root, key);

	*ret = 0;
	if (!v || json_is_null(v)) {
		if (required)
			*ret = api_json_fail(err, n, "%s: missing (required)", key);
		return NULL;
	}
	return v;
}

static int load_sections(struct api_config *c, const json_t *root, char *err, size_t n)
{
	static const char *const fields[] = {
	    "boot-source", "machine-config", "drives",	    "network-interfaces",
	    "logger",	   "metrics",	     "entropy",	    "serial",
	    "balloon",	   "vsock",	     "mmds-config", "cpu-config",
	    "pmem",	   "memory-hotplug", NULL,
	};
	static const char *const unsupported[] = {
	    "balloon", "vsock", "mmds-config", "cpu-config", "pmem", "memory-hotplug", NULL};
	json_t *v;
	int ret;

	if ((ret = api_json_check_object(root, "config", fields, err, n)))
		return ret;
	for (unsigned i = 0; unsupported[i]; i++) {
		v = json_object_get(root, unsupported[i]);
		if (v && !json_is_null(v))
			return api_json_fail(err, n, "%s: not supported by kiln", unsupported[i]);
	}
	if ((v = section(root, "boot-source", true, &ret, err, n)) &&
	    (ret = api_sec_boot_source(c, v, "boot-source", err, n)))
		return ret;
	if (ret)
		return ret;
	if ((v = section(root, "machine-config", false, &ret, err, n)) &&
	    (ret = api_sec_machine(c, v, "machine-config", false, err, n)))
		return ret;
	if ((ret = load_array(c, root, "drives", api_sec_drive, err, n)) ||
	    (ret = load_array(c, root, "network-interfaces", api_sec_net, err, n)))
		return ret;
	if ((v = section(root, "logger", false, &ret, err, n)) &&
	    (ret = api_sec_logger(c, v, "logger", err, n)))
		return ret;
	if ((v = section(root, "metrics", false, &ret, err, n)) &&
	    (ret = api_sec_metrics(c, v, "metrics", err, n)))
		return ret;
	if ((v = section(root, "entropy", false, &ret, err, n)) &&
	    (ret = api_sec_entropy(c, v, "entropy", err, n)))
		return ret;
	if ((v = section(root, "serial", false, &ret, err, n)) &&
	    (ret = api_sec_serial(c, v, "serial", err, n)))
		return ret;
	return 0;
}

int api_config_load_text(struct api_config *c, const char *text, size_t len, const char *w,
			 char *err, size_t n)
{
	struct api_config tmp;
	json_t *root = api_json_parse_object(text, len, w, err, n);

	if (!root)
		return -EINVAL;
	api_config_init(&tmp);
	int ret = load_sections(&tmp, root, err, n);
	json_decref(root);
	if (ret) {
		api_config_free(&tmp);
		return ret;
	}
	api_config_free(c);
	*c = tmp;
	return 0;
}

int api_config_load_file(struct api_config *c, const char *path, char *err, size_t errlen)
{
	struct api_json_quote q;
	struct stat st;
	char *buf = NULL;
	/* A FIFO would block a plain open until a writer came: file_open does not wait, and
	 * refuses anything but a regular file. */
	int ret, fd = file_open(path, O_RDONLY, 0, FILE_KIND_REG);

	if (fd < 0)
		return api_json_fail(err, errlen, "%s: %s", api_json_quote(&q, path),
				     fd == -EMEDIUMTYPE ? "not a regular file" : strerror(-fd));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > 16 * (off_t)API_BODY_MAX) {
		ret = api_json_fail(err, errlen, "%s: not a regular file of at most %u bytes",
				    api_json_quote(&q, path), 16 * API_BODY_MAX);
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		ret = -ENOMEM;
		goto out;
	}
	ssize_t got = read(fd, buf, (size_t)st.st_size);
	if (got != st.st_size) {
		ret = api_json_fail(err, errlen, "%s: short read", api_json_quote(&q, path));
		goto out;
	}
	char msg[512];
	ret = api_config_load_text(c, buf, (size_t)got, "config", msg, sizeof(msg));
	if (ret)
		snprintf(err, errlen, "%s: %s", api_json_quote(&q, path), msg);
out:
	free(buf);
	close(fd);
	return ret;
}

int api_parse_drive_patch(const struct api_config *c, const char *id, const char *body, size_t len,
			  char **path, char *err, size_t n)
{
	static const char *const fields[] = {"drive_id", "path_on_host", "rate_limiter", NULL};
	const char *w = "drive", *did = NULL, *p = NULL;
	struct api_json_quote q1, q2;
	struct stat st;
	int ret, slot = -1;
	json_t *o = api_json_parse_object(body, len, w, err, n);

	*path = NULL;
	if (!o)
		return -EINVAL;
	if ((ret = api_json_check_object(o, w, fields, err, n)) ||
	    (ret = api_json_str(o, "drive_id", w, true, VM_CONFIG_ID_MAX, &did, err, n)) < 0 ||
	    (ret = api_json_unsupported(o, "rate_limiter", w, "rate limiting is not supported", err,
					n)) ||
	    (ret = api_json_str(o, "path_on_host", w, false, API_PATH_MAX - 1, &p, err, n)) < 0)
		goto out;
	ret = -EINVAL;
	if (strcmp(did, id) != 0) {
		api_json_fail(err, n,
			      "%s: drive_id: \"%s\" does not match the id in the URL (\"%s\")", w,
			      api_json_quote(&q1, did), api_json_quote(&q2, id));
		goto out;
	}
	for (unsigned i = 0; i < c->vm.nr_disks; i++)
		if (strcmp(c->vm.disks[i].id, id) == 0)
			slot = (int)i;
	if (slot < 0) {
		api_json_fail(err, n, "%s: drive_id: no drive \"%s\"", w, api_json_quote(&q1, id));
		goto out;
	}
	if (p) {
		const char *why = NULL;
		if (!p[0])
			why = "empty path";
		else if (stat(p, &st) < 0)
			why = strerror(errno);
		else if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
			why = "not a regular file";
		else if (access(p, c->vm.disks[slot].readonly ? R_OK : R_OK | W_OK) < 0)
			why = strerror(errno);
		if (why) {
			api_json_fail(err, n, "%s: path_on_host: %s: %s", w, api_json_quote(&q1, p),
				      why);
			goto out;
		}
	}
	ret = 0;
	if (p && !(*path = strdup(p)))
		ret = -ENOMEM;
out:
	json_decref(o);
	return ret;
}

int api_parse_action(const char *body, size_t len, enum api_action *out, char *err, size_t n)
{
	static const char *const fields[] = {"action_type", NULL};
	static const char *const names[] = {"InstanceStart", "FlushMetrics", "SendCtrlAltDel",
					    NULL};
	unsigned idx = 0;
	json_t *o = api_json_parse_object(body, len, "actions", err, n);

	if (!o)
		return -EINVAL;
	int ret = api_json_check_object(o, "actions", fields, err, n);
	if (!ret)
		ret = api_json_enum(o, "action_type", "actions", true, names, false, &idx, err, n);
	json_decref(o);
	if (ret < 0)
		return ret;
	*out = (enum api_action)idx;
	return 0;
}

int api_parse_vm_state(const char *body, size_t len, bool *pause, char *err, size_t n)
{
	static const char *const fields[] = {"state", NULL};
	static const char *const names[] = {"Paused", "Resumed", NULL};
	unsigned idx = 0;
	json_t *o = api_json_parse_object(body, len, "vm", err, n);

	if (!o)
		return -EINVAL;
	int ret = api_json_check_object(o, "vm", fields, err, n);
	if (!ret)
		ret = api_json_enum(o, "state", "vm", true, names, false, &idx, err, n);
	json_decref(o);
	if (ret < 0)
		return ret;
	*pause = idx == 0;
	return 0;
}
