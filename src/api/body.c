/* body.c: the API's request bodies (boot-source, machine-config, drives, network interfaces,
 * entropy, serial, logger, metrics, actions, vm state) -> struct api_config, all or nothing. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/api.h"
#include "api/json.h"
#include "api/sections.h"

#define NO_RATE_LIMIT "rate limiting is not supported"

bool api_id_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= VM_CONFIG_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-'))
			return false;
	}
	return true;
}

/* A path field: non-empty, and (if must_exist) naming a file kiln can open the way it will
 * (read, plus write unless read_only). Block devices are allowed for drives. */
int api_get_path(const json_t *o, const char *key, const char *what, bool required,
		 bool must_exist, bool want_write, bool allow_blockdev, const char **out, char *err,
		 size_t errlen)
{
	struct api_json_quote q;
	struct stat st;
	int ret = api_json_str(o, key, what, required, API_PATH_MAX - 1, out, err, errlen);

	if (ret <= 0)
		return ret;
	if (!(*out)[0])
		return api_json_fail(err, errlen, "%s: %s: empty path", what, key);
	if (!must_exist)
		return 1;
	if (stat(*out, &st) < 0)
		return api_json_fail(err, errlen, "%s: %s: %s: %s", what, key,
				     api_json_quote(&q, *out), strerror(errno));
	if (!S_ISREG(st.st_mode) && !(allow_blockdev && S_ISBLK(st.st_mode)))
		return api_json_fail(err, errlen, "%s: %s: %s: not a regular file", what, key,
				     api_json_quote(&q, *out));
	if (access(*out, want_write ? R_OK | W_OK : R_OK) < 0)
		return api_json_fail(err, errlen, "%s: %s: %s: %s", what, key,
				     api_json_quote(&q, *out), strerror(errno));
	return 1;
}

/* Replace *dst with a copy of s (NULL clears). */
static int set_str(char **dst, const char *s)
{
	char *copy = NULL;

	if (s && !(copy = strdup(s)))
		return -ENOMEM;
	free(*dst);
	*dst = copy;
	return 0;
}

int api_sec_boot_source(struct api_config *c, const json_t *o, const char *w, char *err, size_t n)
{
	static const char *const fields[] = {"kernel_image_path", "boot_args", "initrd_path", NULL};
	const char *kernel = NULL, *args = NULL, *initrd = NULL;
	char *k = NULL, *a = NULL, *i = NULL;
	int ret;

	if ((ret = api_json_check_object(o, w, fields, err, n)) ||
	    (ret = api_get_path(o, "kernel_image_path", w, true, true, false, false, &kernel, err,
				n)) < 0 ||
	    (ret = api_json_str(o, "boot_args", w, false, API_BOOT_ARGS_MAX - 1, &args, err, n)) <
		0 ||
	    (ret = api_get_path(o, "initrd_path", w, false, true, false, false, &initrd, err,
				n)) < 0)
		return ret;
	if (set_str(&k, kernel) || set_str(&a, args) || set_str(&i, initrd)) {
		free(k);
		free(a);
		free(i);
		return -ENOMEM;
	}
	free(c->vm.kernel_path);
	free(c->vm.cmdline);
	free(c->vm.initrd_path);
	c->vm.kernel_path = k;
	c->vm.cmdline = a;
	c->vm.initrd_path = i;
	c->boot_source_set = true;
	return 0;
}

int api_sec_machine(struct api_config *c, const json_t *o, const char *w, bool patch, char *err,
		    size_t n)
{
	static const char *const fields[] = {
	    "vcpu_count",   "mem_size_mib", "smt", "track_dirty_pages",
	    "cpu_template", "huge_pages",   NULL};
	static const char *const none[] = {"None", NULL};
	uint64_t cpus = patch ? c->vm.cpus : VM_CONFIG_DEFAULT_CPUS;
	uint64_t mib = patch ? c->vm.mem_size / MiB : API_DEFAULT_MEM_MIB;
	bool smt = false, dirty = patch ? c->track_dirty_pages : false;
	unsigned idx;
	int ret;

	if ((ret = api_json_check_object(o, w, fields, err, n)) ||
	    (ret = api_json_uint(o, "vcpu_count", w, !patch, 1, VM_CONFIG_MAX_CPUS, &cpus, err,
				 n)) < 0 ||
	    (ret = api_json_uint(o, "mem_size_mib", w, !patch, VM_CONFIG_MIN_MEM / MiB,
				 API_MAX_MEM_MIB, &mib, err, n)) < 0 ||
	    (ret = api_json_bool(o, "smt", w, false, &smt, err, n)) < 0 ||
	    (ret = api_json_bool(o, "track_dirty_pages", w, false, &dirty, err, n)) < 0 ||
	    (ret = api_json_enum(o, "cpu_template", w, false, none, false, &idx, err, n)) < 0 ||
	    (ret = api_json_enum(o, "huge_pages", w, false, none, false, &idx, err, n)) < 0)
		return ret;
	if (smt)
		return api_json_fail(err, n,
				     "%s: smt: true is not supported (kiln gives every "
				     "vCPU its own core)",
				     w);
	c->vm.cpus = (unsigned)cpus;
	c->vm.mem_size = mib * MiB;
	c->track_dirty_pages = dirty;
	c->machine_config_set = true;
	return 0;
}

static int find_disk(const struct api_config *c, const char *id)
{
	for (unsigned i = 0; i < c->vm.nr_disks; i++)
		if (strcmp(c->vm.disks[i].id, id) == 0)
			return (int)i;
	return -1;
}

/* The id in the body must be valid and match the one in the URL (if any). */
static int check_id(const char *id, const char *url_id, const char *key, const char *w, char *err,
		    size_t n)
{
	struct api_json_quote q1, q2;

	if (!api_id_valid(id))
		return api_json_fail(err, n,
				     "%s: %s: \"%s\" is not a valid id (1-%u characters of "
				     "A-Z a-z 0-9 _ -)",
				     w, key, api_json_quote(&q1, id), VM_CONFIG_ID_MAX - 1);
	if (url_id && strcmp(id, url_id) != 0)
		return api_json_fail(err, n,
				     "%s: %s: \"%s\" does not match the id in the URL (\"%s\")", w,
				     key, api_json_quote(&q1, id), api_json_quote(&q2, url_id));
	return 0;
}

int api_sec_drive(struct api_config *c, const json_t *o, const char *url_id, const char *w,
		  char *err, size_t n)
{
	static const char *const fields[] = {
	    "drive_id",	 "path_on_host", "is_root_device", "is_read_only", "cache_type",
	    "io_engine", "partuuid",	 "rate_limiter",   "socket",	   NULL};
	static const char *const caches[] = {"Unsafe", "Writeback", NULL};
	static const char *const engines[] = {"Sync", "Async", NULL};
	const char *id = NULL, *path = NULL, *partuuid = NULL;
	bool root = false, ro = false;
	unsigned cache = 0, engine = 0;
	struct api_json_quote q;
	int ret;

	if ((ret = api_json_check_object(o, w, fields, err, n)) ||
	    (ret = api_json_str(o, "drive_id", w, true, VM_CONFIG_ID_MAX, &id, err, n)) < 0 ||
	    (ret = check_id(id, url_id, "drive_id", w, err, n)) ||
	    (ret = api_json_unsupported(o, "socket", w,
					"vhost-user block devices are not supported", err, n)) ||
	    (ret = api_json_unsupported(o, "rate_limiter", w, NO_RATE_LIMIT, err, n)) ||
	    (ret = api_json_bool(o, "is_root_device", w, true, &root, err, n)) < 0 ||
	    (ret = api_json_bool(o, "is_read_only", w, false, &ro, err, n)) < 0 ||
	    (ret = api_get_path(o, "path_on_host", w, true, true, !ro, true, &path, err, n)) < 0 ||
	    (ret = api_json_enum(o, "cache_type", w, false, caches, false, &cache, err, n)) < 0 ||
	    (ret = api_json_enum(o, "io_engine", w, false, engines, false, &engine, err, n)) < 0 ||
	    (ret = api_json_str(o, "partuuid", w, false, API_PARTUUID_MAX - 1, &partuuid, err, n)) <
		0)
		return ret;
	if (partuuid) {
		size_t len = strlen(partuuid);
		if (len == 0 || strspn(partuuid, "0123456789abcdefABCDEF-") != len)
			return api_json_fail(err, n,
					     "%s: partuuid: \"%s\" is not a partition UUID "
					     "(hex digits and '-')",
					     w, api_json_quote(&q, partuuid));
	}
	int slot = find_disk(c, id);
	for (unsigned i = 0; root && i < c->vm.nr_disks; i++)
		if (c->vm.disks[i].is_root && (int)i != slot)
			return api_json_fail(err, n,
					     "%s: is_root_device: drive \"%s\" is already the "
					     "root device",
					     w, c->vm.disks[i].id);
	if (slot < 0 && c->vm.nr_disks >= VM_CONFIG_MAX_DISKS)
		return api_json_fail(err, n, "%s: drive_id: at most %u drives", w,
				     VM_CONFIG_MAX_DISKS);

	struct disk_config d = {
	    .readonly = ro,
	    .is_root = root,
	    .engine = engine == 1 ? DISK_ENGINE_URING : DISK_ENGINE_SYNC,
	    .cache = cache == 1 ? DISK_CACHE_WRITEBACK : DISK_CACHE_UNSAFE,
	};
	snprintf(d.id, sizeof(d.id), "%s", id);
	if (!(d.path = strdup(path)))
		return -ENOMEM;
	if (slot < 0)
		slot = (int)c->vm.nr_disks++;
	else
		free(c->vm.disks[slot].path);
	c->vm.disks[slot] = d;
	snprintf(c->partuuid[slot], sizeof(c->partuuid[slot]), "%s", partuuid ? partuuid : "");
	return 0;
}

int api_sec_net(struct api_config *c, const json_t *o, const char *url_id, const char *w, char *err,
		size_t n)
{
	static const char *const fields[] = {"iface_id", "host_dev_name",   "guest_mac",
					     "mtu",	 "rx_rate_limiter", "tx_rate_limiter",
					     NULL};
	const char *id = NULL, *tap = NULL, *mac_s = NULL;
	uint64_t mtu = 0;
	uint8_t mac[6];
	struct api_json_quote q;
	int ret;

	if ((ret = api_json_check_object(o, w, fields, err, n)) ||
	    (ret = api_json_str(o, "iface_id", w, true, VM_CONFIG_ID_MAX, &id, err, n)) < 0 ||
	    (ret = check_id(id, url_id, "iface_id", w, err, n)) ||
	    (ret = api_json_unsupported(o, "rx_rate_limiter", w, NO_RATE_LIMIT, err, n)) ||
	    (ret = api_json_unsupported(o, "tx_rate_limiter", w, NO_RATE_LIMIT, err, n)) ||
	    (ret = api_json_str(o, "host_dev_name", w, true, 64, &tap, err, n)) < 0 ||
	    (ret = api_json_str(o, "guest_mac", w, false, 64, &mac_s, err, n)) < 0 ||
	    (ret = api_json_uint(o, "mtu", w, false, 68, 65535, &mtu, err, n)) < 0)
		return ret;
	if (!vm_config_ifname_valid(tap))
		return api_json_fail(err, n,
				     "%s: host_dev_name: \"%s\" is not a valid interface "
				     "name (1-15 characters, no '/', ':' or spaces)",
				     w, api_json_quote(&q, tap));
	if (mac_s && vm_config_parse_mac(mac_s, mac))
		return api_json_fail(err, n,
				     "%s: guest_mac: \"%s\" is not a MAC address "
				     "(xx:xx:xx:xx:xx:xx)",
				     w, api_json_quote(&q, mac_s));
	if (mac_s && (mac[0] & 1))
		return api_json_fail(err, n, "%s: guest_mac: %s is a multicast address", w, mac_s);

	int slot = -1;
	for (unsigned i = 0; i < c->vm.nr_nets; i++) {
		if (strcmp(c->vm.nets[i].id, id) == 0)
			slot = (int)i;
		else if (c->vm.nets[i].tap && strcmp(c->vm.nets[i].tap, tap) == 0)
			return api_json_fail(err, n,
					     "%s: host_dev_name: \"%s\" is already used by "
					     "interface \"%s\"",
					     w, tap, c->vm.nets[i].id);
	}
	if (slot < 0 && c->vm.nr_nets >= VM_CONFIG_MAX_NETS)
		return api_json_fail(err, n, "%s: iface_id: at most %u network interfaces", w,
				     VM_CONFIG_MAX_NETS);
	struct net_config nc = {.mac_set = mac_s != NULL, .mtu = (unsigned)mtu};
	snprintf(nc.id, sizeof(nc.id), "%s", id);
	if (mac_s)
		memcpy(nc.mac, mac, sizeof(mac));
	if (!(nc.tap = strdup(tap)))
		return -ENOMEM;
	if (slot < 0) {
		slot = (int)c->vm.nr_nets++;
	} else {
		free(c->vm.nets[slot].tap);
		free(c->vm.nets[slot].hostfwd);
		free(c->vm.nets[slot].passt);
	}
	c->vm.nets[slot] = nc;
	return 0;
}

int api_sec_entropy(struct api_config *c, const json_t *o, const char *w, char *err, size_t n)
{
	static const char *const fields[] = {"rate_limiter", NULL};
	int ret;

	if ((ret = api_json_check_object(o, w, fields, err, n)) ||
	    (ret = api_json_unsupported(o, "rate_limiter", w, NO_RATE_LIMIT, err, n)))
		return ret;
	c->vm.rng = true;
	return 0;
}

int api_sec_serial(struct api_config *c, const json_t *o, const char *w, char *err, size_t n)
{
	static const char *const fields[] = {"serial_out_path", "rate_limiter", NULL};
	const char *path = NULL;
	int ret;

	if ((ret = api_json_check_object(o, w, fields, err, n)) ||
	    (ret = api_json_unsupported(o, "rate_limiter", w, NO_RATE_LIMIT, err, n)) ||
	    (ret = api_get_path(o, "serial_out_path", w, false, false, true, false, &path, err,
				n)) < 0)
		return ret;
	if (set_str(&c->vm.serial_path, path))
		return -ENOMEM;
	c->vm.serial_mode = path ? SERIAL_FILE : SERIAL_STDIO;
	c->serial_set = true;
	return 0;
}

/* Index = enum log_level + 1; "Warn" is accepted for "Warning". */
static const char *const levels[] = {"Off",   "Error", "Warning", "Info",
				     "Debug", "Trace", "Warn",	  NULL};

static enum log_level level_of(unsigned i)
{
	return i == 6 ? LOG_WARN : (enum log_level)((int)i - 1);
}

int api_log_level_parse(const char *s, enum log_level *out)
{
	for (unsigned i = 0; levels[i]; i++)
		if (!strcasecmp(s, levels[i])) {
			*out = level_of(i);
			return 0;
		}
	return -EINVAL;
}

int api_sec_logger(struct api_config *c, const json_t *o, const char *w, char *err, size_t n)
{
	static const char *const fields[] = {"log_path",	"level",  "show_level",
					     "show_log_origin", "module", NULL};
	const char *path = NULL, *module = NULL;
	unsigned level = LOG_INFO + 1;
	struct api_logger_config l = {.set = true};
	int ret;

	if ((ret = api_json_check_object(o, w, fields, err, n)) ||
	    (ret = api_get_path(o, "log_path", w, false, false, true, false, &path, err, n)) < 0)
		return ret;
	l.given |= ret ? API_LOG_GIVEN_PATH : 0;
	if ((ret = api_json_enum(o, "level", w, false, levels, true, &level, err, n)) < 0 ||
	    (ret = api_json_bool(o, "show_level", w, false, &l.show_level, err, n)) < 0)
		return ret;
	l.given |= ret ? API_LOG_GIVEN_SHOW_LEVEL : 0;
	if ((ret = api_json_bool(o, "show_log_origin", w, false, &l.show_origin, err, n)) < 0)
		return ret;
	l.given |= ret ? API_LOG_GIVEN_SHOW_ORIGIN : 0;
	if ((ret = api_json_str(o, "module", w, false, 63, &module, err, n)) < 0)
		return ret;
	l.given |= ret ? API_LOG_GIVEN_MODULE : 0;
	l.level = level_of(level);
	if (set_str(&l.log_path, path) || set_str(&l.module, module && *module ? module : NULL)) {
		free(l.log_path);
		return -ENOMEM;
	}
	free(c->logger.log_path);
	free(c->logger.module);
	c->logger = l;
	return 0;
}

int api_sec_metrics(struct api_config *c, const json_t *o, const char *w, char *err, size_t n)
{
	static const char *const fields[] = {"metrics_path", NULL};
	const char *path = NULL;
	int ret;

	if ((ret = api_json_check_object(o, w, fields, err, n)) ||
	    (ret = api_get_path(o, "metrics_path", w, true, false, true, false, &path, err, n)) < 0)
		return ret;
	return set_str(&c->metrics_path, path);
}

int api_apply_body(struct api_config *c, enum api_body kind, const char *id, const char *body,
		   size_t len, char *err, size_t errlen)
{
	static const char *const names[API_BODY__COUNT] = {
	    [API_BODY_BOOT_SOURCE] = "boot-source",
	    [API_BODY_MACHINE_CONFIG] = "machine-config",
	    [API_BODY_MACHINE_PATCH] = "machine-config",
	    [API_BODY_DRIVE] = "drive",
	    [API_BODY_DRIVE_PATCH] = "drive",
	    [API_BODY_NET] = "network-interface",
	    [API_BODY_ENTROPY] = "entropy",
	    [API_BODY_SERIAL] = "serial",
	    [API_BODY_LOGGER] = "logger",
	    [API_BODY_METRICS] = "metrics",
	    [API_BODY_ACTION] = "actions",
	    [API_BODY_VM_STATE] = "vm",
	    [API_BODY_CONFIG_FILE] = "config",
	};
	if ((unsigned)kind >= API_BODY__COUNT)
		return api_json_fail(err, errlen, "internal: unknown body kind %d", (int)kind);
	const char *w = names[kind];
	if (kind == API_BODY_CONFIG_FILE)
		return api_config_load_text(c, body, len, w, err, errlen);
	json_t *o = api_json_parse_object(body, len, w, err, errlen);
	if (!o)
		return -EINVAL;
	int ret;
	switch (kind) {
	case API_BODY_BOOT_SOURCE:
		ret = api_sec_boot_source(c, o, w, err, errlen);
		break;
	case API_BODY_MACHINE_CONFIG:
	case API_BODY_MACHINE_PATCH:
		ret = api_sec_machine(c, o, w, kind == API_BODY_MACHINE_PATCH, err, errlen);
		break;
	case API_BODY_DRIVE:
		ret = api_sec_drive(c, o, id, w, err, errlen);
		break;
	case API_BODY_NET:
		ret = api_sec_net(c, o, id, w, err, errlen);
		break;
	case API_BODY_ENTROPY:
		ret = api_sec_entropy(c, o, w, err, errlen);
		break;
	case API_BODY_SERIAL:
		ret = api_sec_serial(c, o, w, err, errlen);
		break;
	case API_BODY_LOGGER:
		ret = api_sec_logger(c, o, w, err, errlen);
		break;
	case API_BODY_METRICS:
		ret = api_sec_metrics(c, o, w, err, errlen);
		break;
	default:
		ret = api_json_fail(err, errlen, "%s: not a configuration body", w);
		break;
	}
	json_decref(o);
	return ret;
}
