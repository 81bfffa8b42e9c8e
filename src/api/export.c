/* export.c: struct api_config -> JSON (GET /machine-config, GET /vm/config); the output of
 * GET /vm/config is itself a valid config file. */
#include <jansson.h>
#include <stdio.h>

#include "api/api.h"

/* json_object_set_new that tolerates a NULL value (out of memory): the caller's final
 * json_dumps of an incomplete object is caught by the NULL checks below. */
static bool put(json_t *o, const char *key, json_t *v)
{
	return v && json_object_set_new(o, key, v) == 0;
}

static json_t *machine(const struct api_config *c)
{
	json_t *o = json_object();
	if (!o)
		return NULL;
	if (!put(o, "vcpu_count", json_integer(c->vm.cpus)) ||
	    !put(o, "mem_size_mib", json_integer((json_int_t)(c->vm.mem_size / MiB))) ||
	    !put(o, "smt", json_false()) ||
	    !put(o, "track_dirty_pages", json_boolean(c->track_dirty_pages)) ||
	    !put(o, "huge_pages", json_string("None"))) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *boot_source(const struct api_config *c)
{
	json_t *o = json_object();
	if (!o)
		return NULL;
	bool ok =
	    put(o, "kernel_image_path", json_string(c->vm.kernel_path ? c->vm.kernel_path : ""));
	if (ok && c->vm.cmdline)
		ok = put(o, "boot_args", json_string(c->vm.cmdline));
	if (ok && c->vm.initrd_path)
		ok = put(o, "initrd_path", json_string(c->vm.initrd_path));
	if (!ok) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *drive(const struct api_config *c, unsigned i)
{
	const struct disk_config *d = &c->vm.disks[i];
	json_t *o = json_object();
	if (!o)
		return NULL;
	bool ok =
	    put(o, "drive_id", json_string(d->id)) &&
	    put(o, "path_on_host", json_string(d->path ? d->path : "")) &&
	    put(o, "is_root_device", json_boolean(d->is_root)) &&
	    put(o, "is_read_only", json_boolean(d->readonly)) &&
	    put(o, "cache_type",
		json_string(d->cache == DISK_CACHE_WRITEBACK ? "Writeback" : "Unsafe")) &&
	    put(o, "io_engine", json_string(d->engine == DISK_ENGINE_URING ? "Async" : "Sync"));
	if (ok && c->partuuid[i][0])
		ok = put(o, "partuuid", json_string(c->partuuid[i]));
	if (!ok) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *net(const struct net_config *nc)
{
	char mac[18];
	json_t *o = json_object();
	if (!o)
		return NULL;
	bool ok = put(o, "iface_id", json_string(nc->id)) &&
		  put(o, "host_dev_name", json_string(nc->tap));
	if (ok && nc->mac_set) {
		vm_config_format_mac(nc->mac, mac);
		ok = put(o, "guest_mac", json_string(mac));
	}
	if (ok && nc->mtu)
		ok = put(o, "mtu", json_integer(nc->mtu));
	if (!ok) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *logger(const struct api_logger_config *l)
{
	static const char *const names[] = {"Off", "Error", "Warning", "Info", "Debug", "Trace"};
	int idx = (int)l->level + 1;
	json_t *o = json_object();
	if (!o)
		return NULL;
	bool ok = put(o, "level", json_string(names[idx < 0 || idx > 5 ? 3 : idx])) &&
		  put(o, "show_level", json_boolean(l->show_level)) &&
		  put(o, "show_log_origin", json_boolean(l->show_origin));
	if (ok && l->log_path)
		ok = put(o, "log_path", json_string(l->log_path));
	if (ok && l->module)
		ok = put(o, "module", json_string(l->module));
	if (!ok) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static char *dump(json_t *o)
{
	char *s = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(o);
	return s;
}

char *api_export_machine_config(const struct api_config *c) { return dump(machine(c)); }

char *api_export_config(const struct api_config *c)
{
	json_t *o = json_object(), *drives = json_array(), *nets = json_array();
	bool ok = o && drives && nets;

	for (unsigned i = 0; ok && i < c->vm.nr_disks; i++)
		ok = json_array_append_new(drives, drive(c, i)) == 0;
	for (unsigned i = 0; ok && i < c->vm.nr_nets; i++)
		if (c->vm.nets[i].tap)
			ok = json_array_append_new(nets, net(&c->vm.nets[i])) == 0;
	ok = ok && put(o, "drives", json_incref(drives)) &&
	     put(o, "network-interfaces", json_incref(nets)) &&
	     put(o, "machine-config", machine(c));
	if (ok && c->boot_source_set)
		ok = put(o, "boot-source", boot_source(c));
	if (ok && c->logger.set)
		ok = put(o, "logger", logger(&c->logger));
	if (ok && c->metrics_path)
		ok = put(o, "metrics", json_pack("{s:s}", "metrics_path", c->metrics_path));
	if (ok && c->vm.rng)
		ok = put(o, "entropy", json_object());
	if (ok && c->serial_set)
		ok = put(o, "serial",
			 c->vm.serial_mode == SERIAL_FILE && c->vm.serial_path
			     ? json_pack("{s:s}", "serial_out_path", c->vm.serial_path)
			     : json_object());
	json_decref(drives);
	json_decref(nets);
	if (!ok) {
		json_decref(o);
		return NULL;
	}
	return dump(o);
}
