/* fuzz_api.c: libFuzzer target for the API's request bodies and config files (every PUT/PATCH
 * parser): no crash, one-line errors, all-or-nothing updates, export/import round trips. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/snapshot_body.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Extra selectors after the enum: bodies that are checked but not applied. */
enum {
	SEL_DRIVE_PATCH = API_BODY__COUNT,
	SEL_ACTION,
	SEL_VM_STATE,
	SEL_SNAP_CREATE,
	SEL_SNAP_LOAD,
	SEL__COUNT
};

static void check_msg(int ret, const char *err)
{
	if (ret == -EINVAL && !err[0])
		abort(); /* a failure always says why */
	for (const char *p = err; *p; p++)
		if ((unsigned char)*p < 0x20)
			abort(); /* one line, no control characters from the input */
}

static bool same(const char *a, const char *b) { return a && b && strcmp(a, b) == 0; }

/* GET /vm/config of c, loaded back as a config file, exports the same text. */
static void round_trip(const struct api_config *c)
{
	struct api_config back;
	char err[512] = "";
	char *text = api_export_config(c);

	if (!text || !c->boot_source_set) {
		free(text);
		return;
	}
	api_config_init(&back);
	int ret = api_config_load_text(&back, text, strlen(text), "config", err, sizeof(err));
	/* Paths were checked when the body was applied; the files still exist. */
	if (ret && ret != -ENOMEM) {
		fprintf(stderr, "round trip failed: %s\n%s\n", err, text);
		abort();
	}
	if (!ret) {
		char *again = api_export_config(&back);
		if (again && !same(text, again)) {
			fprintf(stderr, "round trip changed the config:\n%s\n%s\n", text, again);
			abort();
		}
		free(again);
	}
	api_config_free(&back);
	free(text);
}

/* Bodies in sequence on one config, as an API client would send them: the first byte of each
 * record picks the parser, the next two its length. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct api_config c;
	char err[512];

	api_config_init(&c);
	while (size >= 3) {
		unsigned sel = data[0] % SEL__COUNT;
		size_t len = (size_t)data[1] | (size_t)data[2] << 8;
		data += 3;
		size -= 3;
		if (len > size)
			len = size;
		const char *body = (const char *)data;
		char *before = api_export_config(&c);
		int ret;

		err[0] = '\0';
		if (sel == SEL_DRIVE_PATCH) {
			char *path = NULL;
			const char *id = c.vm.nr_disks ? c.vm.disks[0].id : "d0";
			ret = api_parse_drive_patch(&c, id, body, len, &path, err, sizeof(err));
			free(path);
		} else if (sel == SEL_ACTION) {
			enum api_action a;
			ret = api_parse_action(body, len, &a, err, sizeof(err));
		} else if (sel == SEL_VM_STATE) {
			bool pause;
			ret = api_parse_vm_state(body, len, &pause, err, sizeof(err));
		} else if (sel == SEL_SNAP_CREATE) {
			struct api_snapshot_create sc;
			ret = api_parse_snapshot_create(body, len, &sc, err, sizeof(err));
			if (!ret && (!sc.snapshot_path || !sc.mem_file_path))
				abort();
			api_snapshot_create_free(&sc);
		} else if (sel == SEL_SNAP_LOAD) {
			struct api_snapshot_load sl;
			ret = api_parse_snapshot_load(body, len, &sl, err, sizeof(err));
			if (!ret && (!sl.snapshot_path || !sl.backend_path ||
				     sl.nr_net_overrides > VM_CONFIG_MAX_NETS))
				abort();
			api_snapshot_load_free(&sl);
		} else {
			const char *id = sel == API_BODY_DRIVE ? "rootfs" : "eth0";
			ret =
			    api_apply_body(&c, (enum api_body)sel, id, body, len, err, sizeof(err));
		}
		check_msg(ret, err);
		if (ret && ret != -ENOMEM) {
			/* nothing half-applied */
			char *after = api_export_config(&c);
			if (before && after && !same(before, after))
				abort();
			free(after);
		}
		free(before);
		if (c.vm.nr_disks > VM_CONFIG_MAX_DISKS || c.vm.nr_nets > VM_CONFIG_MAX_NETS ||
		    c.vm.cpus < 1 || c.vm.cpus > VM_CONFIG_MAX_CPUS ||
		    c.vm.mem_size < VM_CONFIG_MIN_MEM)
			abort();
		data += len;
		size -= len;
	}
	round_trip(&c);
	api_config_free(&c);
	return 0;
}
