/* snapshot_body.c: PUT /snapshot/create and PUT /snapshot/load bodies (api/snapshot_body.h).
 *
 * Firecracker's rules, read from its swagger and request parser (facts only):
 * - create: snapshot_path and mem_file_path are required; snapshot_type is "Full" (the
 *   default) or "Diff".
 * - load: snapshot_path is required, and exactly one of mem_backend {backend_type: "File" |
 *   "Uffd", backend_path} and the deprecated mem_file_path (which means a File backend);
 *   the deprecated enable_diff_snapshots is track_dirty_pages under another name (either
 *   one true turns tracking on). network_overrides[] names an interface and its new TAP.
 *   huge_pages "Snapshot" or "None" keep what the snapshot had (kiln backs guest RAM the
 *   same way either way); "Transparent" and "2M" are refused until kiln has them.
 *   vsock_override is refused while kiln has no vsock device.
 */
#include "api/snapshot_body.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "api/json.h"
#include "api/sections.h"

static int dup_path(char **dst, const char *src)
{
	return (*dst = strdup(src)) ? 0 : -ENOMEM;
}

void api_snapshot_create_free(struct api_snapshot_create *c)
{
	free(c->snapshot_path);
	free(c->mem_file_path);
	memset(c, 0, sizeof(*c));
}

void api_snapshot_load_free(struct api_snapshot_load *l)
{
	free(l->snapshot_path);
	free(l->backend_path);
	memset(l, 0, sizeof(*l));
}

int api_parse_snapshot_create(const char *body, size_t len, struct api_snapshot_create *out,
			      char *err, size_t n)
{
	static const char *const fields[] = {"snapshot_path", "mem_file_path", "snapshot_type",
					     NULL};
	static const char *const types[] = {"Full", "Diff", NULL};
	static const char w[] = "snapshot/create";
	const char *state = NULL, *mem = NULL;
	unsigned type = API_SNAPSHOT_FULL;
	json_t *o = api_json_parse_object(body, len, w, err, n);
	int ret;

	memset(out, 0, sizeof(*out));
	if (!o)
		return -EINVAL;
	if ((ret = api_json_check_object(o, w, fields, err, n)) ||
	    (ret = api_get_path(o, "snapshot_path", w, true, false, true, false, &state, err, n)) <
		    0 ||
	    (ret = api_get_path(o, "mem_file_path", w, true, false, true, false, &mem, err, n)) < 0 ||
	    (ret = api_json_enum(o, "snapshot_type", w, false, types, false, &type, err, n)) < 0)
		goto out;
	if (strcmp(state, mem) == 0) {
		ret = api_json_fail(err, n, "%s: mem_file_path: the same file as snapshot_path", w);
		goto out;
	}
	out->type = (enum api_snapshot_type)type;
	ret = dup_path(&out->snapshot_path, state) ?: dup_path(&out->mem_file_path, mem);
	if (ret)
		api_snapshot_create_free(out);
out:
	json_decref(o);
	return ret < 0 ? ret : 0;
}

/* mem_backend {backend_type, backend_path}. */
static int parse_backend(const json_t *o, struct api_snapshot_load *out, const char **path,
			 char *err, size_t n)
{
	static const char *const fields[] = {"backend_type", "backend_path", NULL};
	static const char *const types[] = {"File", "Uffd", NULL};
	static const char w[] = "snapshot/load: mem_backend";
	struct api_json_quote q;
	struct stat st;
	unsigned type = 0;
	int ret;

	if ((ret = api_json_check_object(o, w, fields, err, n)) ||
	    (ret = api_json_enum(o, "backend_type", w, true, types, false, &type, err, n)) < 0)
		return ret;
	out->backend = (enum api_mem_backend)type;
	if (out->backend == API_MEM_FILE)
		return api_get_path(o, "backend_path", w, true, true, false, false, path, err, n);
	if ((ret = api_get_path(o, "backend_path", w, true, false, false, false, path, err, n)) < 0)
		return ret;
	if (stat(*path, &st) < 0)
		return api_json_fail(err, n, "%s: backend_path: %s: %s", w, api_json_quote(&q, *path),
				     strerror(errno));
	if (!S_ISSOCK(st.st_mode))
		return api_json_fail(err, n,
				     "%s: backend_path: %s: not a Unix socket (a Uffd backend "
				     "names the page-fault handler's socket)",
				     w, api_json_quote(&q, *path));
	return 1;
}

static int parse_overrides(const json_t *a, struct api_snapshot_load *out, char *err, size_t n)
{
	static const char *const fields[] = {"iface_id", "host_dev_name", NULL};
	struct api_json_quote q;
	size_t i;
	json_t *e;

	if (!json_is_array(a))
		return api_json_fail(err, n, "snapshot/load: network_overrides: an array expected, "
				     "not %s", api_json_type(a));
	if (json_array_size(a) > VM_CONFIG_MAX_NETS)
		return api_json_fail(err, n,
				     "snapshot/load: network_overrides: %zu entries (a VM has at "
				     "most %u interfaces)",
				     json_array_size(a), VM_CONFIG_MAX_NETS);
	json_array_foreach(a, i, e) {
		char w[64];
		const char *id = NULL, *tap = NULL;
		int ret;

		snprintf(w, sizeof(w), "snapshot/load: network_overrides[%zu]", i);
		if ((ret = api_json_check_object(e, w, fields, err, n)) ||
		    (ret = api_json_str(e, "iface_id", w, true, VM_CONFIG_ID_MAX - 1, &id, err, n)) <
			    0 ||
		    (ret = api_json_str(e, "host_dev_name", w, true, 64, &tap, err, n)) < 0)
			return ret;
		if (!vm_config_ifname_valid(tap))
			return api_json_fail(err, n,
					     "%s: host_dev_name: \"%s\" is not a valid interface "
					     "name (1-15 characters, no '/', ':' or spaces)",
					     w, api_json_quote(&q, tap));
		for (unsigned j = 0; j < out->nr_net_overrides; j++)
			if (!strcmp(out->net_overrides[j].iface_id, id))
				return api_json_fail(err, n,
						     "%s: iface_id: \"%s\" is overridden twice", w,
						     api_json_quote(&q, id));
		struct api_net_override *ov = &out->net_overrides[out->nr_net_overrides++];
		snprintf(ov->iface_id, sizeof(ov->iface_id), "%s", id);
		snprintf(ov->host_dev_name, sizeof(ov->host_dev_name), "%s", tap);
	}
	return 0;
}

int api_parse_snapshot_load(const char *body, size_t len, struct api_snapshot_load *out,
			    char *err, size_t n)
{
	static const char *const fields[] = {
	    "snapshot_path", "mem_backend",	  "mem_file_path",  "track_dirty_pages",
	    "resume_vm",     "enable_diff_snapshots", "network_overrides", "clock_realtime",
	    "huge_pages",    "vsock_override",	  NULL};
	static const char *const huge[] = {"Snapshot", "None", "Transparent", "2M", NULL};
	static const char w[] = "snapshot/load";
	const char *state = NULL, *mem = NULL;
	const json_t *backend, *overrides;
	bool dirty = false, old_dirty = false;
	unsigned hp = 0;
	json_t *o = api_json_parse_object(body, len, w, err, n);
	int ret;

	memset(out, 0, sizeof(*out));
	if (!o)
		return -EINVAL;
	if ((ret = api_json_check_object(o, w, fields, err, n)) ||
	    (ret = api_get_path(o, "snapshot_path", w, true, true, false, false, &state, err, n)) <
		    0 ||
	    (ret = api_json_bool(o, "track_dirty_pages", w, false, &dirty, err, n)) < 0 ||
	    (ret = api_json_bool(o, "enable_diff_snapshots", w, false, &old_dirty, err, n)) < 0 ||
	    (ret = api_json_bool(o, "resume_vm", w, false, &out->resume_vm, err, n)) < 0 ||
	    (ret = api_json_bool(o, "clock_realtime", w, false, &out->clock_realtime, err, n)) < 0 ||
	    (ret = api_json_enum(o, "huge_pages", w, false, huge, false, &hp, err, n)) < 0 ||
	    (ret = api_json_unsupported(o, "vsock_override", w, "this kiln has no vsock device",
					err, n)))
		goto out;
	if (hp >= 2) {
		ret = api_json_fail(err, n, "%s: huge_pages: \"%s\" is not supported (\"Snapshot\" "
				    "or \"None\")", w, huge[hp]);
		goto out;
	}
	backend = json_object_get(o, "mem_backend");
	if (json_is_null(backend))
		backend = NULL;
	if ((ret = api_get_path(o, "mem_file_path", w, false, true, false, false, &mem, err, n)) <
	    0)
		goto out;
	if (backend && mem) {
		ret = api_json_fail(err, n,
				    "%s: mem_file_path: give either mem_backend or mem_file_path "
				    "(deprecated), not both", w);
		goto out;
	}
	if (!backend && !mem) {
		ret = api_json_fail(err, n, "%s: mem_backend: missing (or the deprecated "
				    "mem_file_path)", w);
		goto out;
	}
	if (backend && (ret = parse_backend(backend, out, &mem, err, n)) < 0)
		goto out;
	overrides = json_object_get(o, "network_overrides");
	if (overrides && !json_is_null(overrides) &&
	    (ret = parse_overrides(overrides, out, err, n)) < 0)
		goto out;
	out->track_dirty_pages = dirty || old_dirty;
	out->deprecated = !backend || old_dirty;
	if (!backend)
		out->backend = API_MEM_FILE;
	ret = dup_path(&out->snapshot_path, state) ?: dup_path(&out->backend_path, mem);
	if (ret)
		api_snapshot_load_free(out);
out:
	json_decref(o);
	return ret < 0 ? ret : 0;
}
