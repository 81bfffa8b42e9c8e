/* snapshot_body.h: the bodies of PUT /snapshot/create and PUT /snapshot/load, read with
 * Firecracker's rules (its swagger, 1.x): one-line errors naming the field. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "util/compiler.h"

enum api_snapshot_type { API_SNAPSHOT_FULL, API_SNAPSHOT_DIFF };

struct api_snapshot_create {
	char *snapshot_path; /* the state file to write */
	char *mem_file_path; /* the memory file to write */
	enum api_snapshot_type type;
};

enum api_mem_backend { API_MEM_FILE, API_MEM_UFFD };

/* network_overrides[]: the interface iface_id gets the TAP host_dev_name on restore. */
struct api_net_override {
	char iface_id[VM_CONFIG_ID_MAX];
	char host_dev_name[VM_CONFIG_IFNAME_MAX + 1];
};

struct api_snapshot_load {
	char *snapshot_path;
	enum api_mem_backend backend;
	char *backend_path; /* the memory file (File) or the handler's Unix socket (Uffd) */
	bool track_dirty_pages;
	bool resume_vm;
	bool clock_realtime;
	/* The deprecated forms were used (mem_file_path, enable_diff_snapshots): the answer
	 * carries a Deprecation header, as Firecracker's does. */
	bool deprecated;
	unsigned nr_net_overrides;
	struct api_net_override net_overrides[VM_CONFIG_MAX_NETS];
};

/* Parse a body (len bytes). 0, or -EINVAL with "snapshot/create: FIELD: PROBLEM" in err, or
 * -ENOMEM. Paths are checked for form here (non-empty, bounded; the load's files must exist
 * and be regular, the Uffd socket must exist); the rest is checked against the snapshot. */
int api_parse_snapshot_create(const char *body, size_t len, struct api_snapshot_create *out,
			      char *err, size_t errlen) __must_check;
int api_parse_snapshot_load(const char *body, size_t len, struct api_snapshot_load *out,
			    char *err, size_t errlen) __must_check;
void api_snapshot_create_free(struct api_snapshot_create *c);
void api_snapshot_load_free(struct api_snapshot_load *l);
