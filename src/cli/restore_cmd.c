/* restore_cmd.c: `kiln restore`: a VM from a snapshot, without the API (or serving it). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "api/api.h"
#include "api/snapshot_body.h"
#include "cli/cli.h"
#include "cli/commands.h"
#include "cli/internal.h"

#define CMD "kiln restore"

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: kiln restore --snapshot FILE --mem-file FILE [--net id=ID,tap=TAP]...\n"
	    "                    [--api-sock PATH [--paused]] [--track-dirty-pages]\n"
	    "                    [--clock-realtime]\n"
	    "\n"
	    "Restores a VM from a snapshot (`kiln snapshot`, or PUT /snapshot/create) and\n"
	    "runs it until it stops, as `kiln api` followed by PUT /snapshot/load would\n"
	    "(docs/snapshot.md). Its serial port (and virtio-console) write to stdout.\n"
	    "\n"
	    "  --snapshot FILE     the state file\n"
	    "  --mem-file FILE     the guest memory file (mapped privately: it is not changed)\n"
	    "  --net id=ID,tap=TAP  give the interface ID the TAP device TAP instead of the\n"
	    "                      one it had (once per interface, up to %d)\n"
	    "  --api-sock PATH     also serve the REST API on PATH (docs/api.md), to pause,\n"
	    "                      snapshot or stop the VM\n"
	    "  --paused            come up paused (needs --api-sock: PATCH /vm Resumed)\n"
	    "  --track-dirty-pages  track dirty pages, for Diff snapshots of the restored VM\n"
	    "  --clock-realtime    step the guest's realtime clock by the time that passed\n"
	    "                      since the snapshot\n"
	    "\n"
	    "Exit status: as `kiln run`'s, or 1 (with one line) when the restore failed.\n",
	    VM_CONFIG_MAX_NETS);
}

/* path must name a regular file (the restore opens it read-only). */
static int check_file(const char *opt, const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0) {
		fprintf(stderr, CMD ": %s: %.300s: %s\n", opt, path, strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		fprintf(stderr, CMD ": %s: %.300s: not a regular file\n", opt, path);
		return -1;
	}
	return 0;
}

/* One --net id=ID,tap=TAP into the load's overrides. */
static int add_override(struct api_snapshot_load *l, const char *val)
{
	static const char *const keys[] = {"id", "tap", NULL};
	struct cli_kvlist kv;
	const char *id, *tap;
	char err[400];
	int ret = -1;

	if (cli_kvlist_parse(&kv, "--net", val, keys, 0, err, sizeof(err))) {
		fprintf(stderr, CMD ": %s\n", err);
		return -1;
	}
	id = cli_kvlist_get(&kv, "id");
	tap = cli_kvlist_get(&kv, "tap");
	if (!id || !tap)
		fprintf(stderr, CMD ": --net: '%s' needs both id=ID and tap=TAP\n", val);
	else if (!api_id_valid(id))
		fprintf(stderr,
			CMD ": --net: id '%s' is not valid (1-63 characters of A-Z a-z 0-9 "
			    "_ -)\n",
			id);
	else if (!vm_config_ifname_valid(tap))
		fprintf(stderr,
			CMD ": --net: tap '%s' is not an interface name (1-%d bytes, no "
			    "'/', ':' or spaces)\n",
			tap, VM_CONFIG_IFNAME_MAX);
	else
		ret = 0;
	for (unsigned i = 0; !ret && i < l->nr_net_overrides; i++)
		if (!strcmp(l->net_overrides[i].iface_id, id)) {
			fprintf(stderr, CMD ": --net: id '%s' given twice\n", id);
			ret = -1;
		}
	if (!ret) {
		struct api_net_override *o = &l->net_overrides[l->nr_net_overrides++];
		snprintf(o->iface_id, sizeof(o->iface_id), "%s", id);
		snprintf(o->host_dev_name, sizeof(o->host_dev_name), "%s", tap);
	}
	cli_kvlist_free(&kv);
	return ret;
}

int cli_restore_main(int argc, char **argv)
{
	const char *snap = NULL, *mem = NULL, *sock = NULL, *nets[VM_CONFIG_MAX_NETS];
	struct cli_cmd_opt opts[] = {
	    {.name = "--snapshot", .vals = &snap},
	    {.name = "--mem-file", .vals = &mem},
	    {.name = "--net", .vals = nets, .max = VM_CONFIG_MAX_NETS},
	    {.name = "--api-sock", .vals = &sock},
	    {.name = "--paused", .flag = true},
	    {.name = "--track-dirty-pages", .flag = true},
	    {.name = "--clock-realtime", .flag = true},
	};
	static struct api_snapshot_load l; /* a few KiB of overrides */
	struct api_options o = {0};
	char err[512];
	int ret = cli_cmd_parse(CMD, opts, ARRAY_SIZE(opts), argc, argv, err, sizeof(err));

	if (ret == 1) {
		usage(stdout);
		return 0;
	}
	if (ret) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	if (!snap || !mem) {
		fprintf(stderr, CMD ": %s is required (try `" CMD " --help`)\n",
			!snap ? "--snapshot" : "--mem-file");
		return 1;
	}
	if (opts[4].n && !sock) {
		fprintf(stderr, CMD ": --paused needs --api-sock (nothing could resume the VM)\n");
		return 1;
	}
	if (check_file("--snapshot", snap) || check_file("--mem-file", mem))
		return 1;
	memset(&l, 0, sizeof(l));
	for (unsigned i = 0; i < opts[2].n; i++)
		if (add_override(&l, nets[i]))
			return 1;
	/* The load only reads these (api_snapshot_load_free is never called on l). */
	l.snapshot_path = (char *)snap;
	l.backend = API_MEM_FILE;
	l.backend_path = (char *)mem;
	l.resume_vm = !opts[4].n;
	l.track_dirty_pages = opts[5].n;
	l.clock_realtime = opts[6].n;
	o.sock_path = sock;
	o.no_api = !sock;
	o.load = &l;
	return api_run(&o);
}
