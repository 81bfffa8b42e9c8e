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
#include "sandbox/seccomp.h"

#define CMD "kiln restore"

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: kiln restore --snapshot FILE (--mem-file FILE | --uffd SOCK)\n"
	    "                    [--net id=ID,tap=TAP]... [--api-sock PATH [--paused]]\n"
	    "                    [--id NAME] [--seccomp on|log|off] [--track-dirty-pages]\n"
	    "                    [--clock-realtime]\n"
	    "\n"
	    "Restores a VM from a snapshot (`kiln snapshot`, or PUT /snapshot/create) and\n"
	    "runs it until it stops, as `kiln api` followed by PUT /snapshot/load would\n"
	    "(docs/snapshot.md). Its serial port (and virtio-console) write to stdout.\n"
	    "\n"
	    "  --snapshot FILE     the state file\n"
	    "  --mem-file FILE     the guest memory file (mapped privately: it is not changed)\n"
	    "  --uffd SOCK         instead of --mem-file: guest memory served page by page by\n"
	    "                      the page-fault handler listening on the Unix socket SOCK\n"
	    "                      (the Uffd backend; build/tools/kiln-uffd-handler SOCK MEMFILE\n"
	    "                      is an example handler)\n"
	    "  --net id=ID,tap=TAP  give the interface ID the TAP device TAP instead of the\n"
	    "                      one it had (once per interface, up to %d)\n"
	    "  --api-sock PATH     also serve the REST API on PATH (docs/api.md), to pause,\n"
	    "                      snapshot or stop the VM\n"
	    "  --paused            come up paused (needs --api-sock: PATCH /vm Resumed)\n"
	    "  --id NAME           instance id shown by GET / and in log lines, as `kiln api\n"
	    "                      --id` (default anonymous-instance)\n"
	    "  --seccomp on|log|off  seccomp allowlists, one per thread (docs/security.md):\n"
	    "                      on stops kiln at a call outside them, with a line naming\n"
	    "                      it; log lets it through and the kernel logs it (default:\n"
	    "                      KILN_SECCOMP, else on)\n"
	    "  --track-dirty-pages  track dirty pages, for Diff snapshots of the restored VM\n"
	    "  --clock-realtime    step the guest's realtime clock by the time that passed\n"
	    "                      since the snapshot\n"
	    "\n"
	    "Exit status: as `kiln run`'s, or 1 (with one line) when the restore failed.\n",
	    VM_CONFIG_MAX_NETS);
}

/* path must name a regular file (the restore opens it read-only), or a Unix socket (sock). */
static int check_file(const char *opt, const char *path, bool sock, char *err, size_t n)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return cli_fail(err, n, CMD ": %s: %.300s: %s", opt, path, strerror(errno));
	if (sock && !S_ISSOCK(st.st_mode))
		return cli_fail(err, n,
				CMD ": %s: %.300s: not a Unix socket (the page-fault handler's: "
				    "it must be listening before the restore)",
				opt, path);
	if (!sock && !S_ISREG(st.st_mode))
		return cli_fail(err, n, CMD ": %s: %.300s: not a regular file", opt, path);
	return 0;
}

/* One --net id=ID,tap=TAP into the load's overrides. */
static int add_override(struct api_snapshot_load *l, const char *val, char *err, size_t n)
{
	static const char *const keys[] = {"id", "tap", NULL};
	struct cli_kvlist kv;
	const char *id, *tap;
	char why[400];
	int ret = -EINVAL;

	if (cli_kvlist_parse(&kv, "--net", val, keys, 0, why, sizeof(why)))
		return cli_fail(err, n, CMD ": %s", why);
	id = cli_kvlist_get(&kv, "id");
	tap = cli_kvlist_get(&kv, "tap");
	if (!id || !tap)
		cli_fail(err, n, CMD ": --net: '%.100s' needs both id=ID and tap=TAP", val);
	else if (!api_id_valid(id))
		cli_fail(err, n,
			 CMD ": --net: id '%.100s' is not valid (1-63 characters of A-Z a-z 0-9 "
			     "_ -)",
			 id);
	else if (!vm_config_ifname_valid(tap))
		cli_fail(err, n,
			 CMD ": --net: tap '%.100s' is not an interface name (1-%d bytes, no "
			     "'/', ':' or spaces)",
			 tap, VM_CONFIG_IFNAME_MAX);
	else
		ret = 0;
	for (unsigned i = 0; !ret && i < l->nr_net_overrides; i++)
		if (!strcmp(l->net_overrides[i].iface_id, id))
			ret = cli_fail(err, n, CMD ": --net: id '%.100s' given twice", id);
	if (!ret) {
		struct api_net_override *o = &l->net_overrides[l->nr_net_overrides++];
		snprintf(o->iface_id, sizeof(o->iface_id), "%s", id);
		snprintf(o->host_dev_name, sizeof(o->host_dev_name), "%s", tap);
	}
	cli_kvlist_free(&kv);
	return ret;
}

enum {
	O_SNAPSHOT,
	O_MEM_FILE,
	O_UFFD,
	O_NET,
	O_API_SOCK,
	O_PAUSED,
	O_ID,
	O_SECCOMP,
	O_TRACK_DIRTY,
	O_CLOCK_REALTIME,
	O__COUNT
};

int cli_restore_parse(int argc, char **argv, struct cli_restore *r, char *err, size_t n)
{
	const char *snap = NULL, *mem = NULL, *uffd = NULL, *sock = NULL, *id = NULL,
		   *seccomp = NULL, *nets[VM_CONFIG_MAX_NETS];
	struct cli_cmd_opt opts[O__COUNT] = {
	    [O_SNAPSHOT] = {.name = "--snapshot", .vals = &snap},
	    [O_MEM_FILE] = {.name = "--mem-file", .vals = &mem},
	    [O_UFFD] = {.name = "--uffd", .vals = &uffd},
	    [O_NET] = {.name = "--net", .vals = nets, .max = VM_CONFIG_MAX_NETS},
	    [O_API_SOCK] = {.name = "--api-sock", .vals = &sock},
	    [O_PAUSED] = {.name = "--paused", .flag = true},
	    [O_ID] = {.name = "--id", .vals = &id},
	    [O_SECCOMP] = {.name = "--seccomp", .vals = &seccomp},
	    [O_TRACK_DIRTY] = {.name = "--track-dirty-pages", .flag = true},
	    [O_CLOCK_REALTIME] = {.name = "--clock-realtime", .flag = true},
	};
	struct api_snapshot_load *l = &r->load;
	int ret;

	memset(r, 0, sizeof(*r));
	ret = cli_cmd_parse(CMD, opts, O__COUNT, argc, argv, err, n);
	if (ret)
		return ret;
	if (!snap)
		return cli_fail(err, n, CMD ": --snapshot is required (try `" CMD " --help`)");
	if (mem && uffd)
		return cli_fail(err, n,
				CMD ": --mem-file and --uffd exclude each other (guest memory "
				    "comes from one)");
	if (!mem && !uffd)
		return cli_fail(err, n,
				CMD ": --mem-file is required, or --uffd (try `" CMD " --help`)");
	if (opts[O_PAUSED].n && !sock)
		return cli_fail(err, n,
				CMD ": --paused needs --api-sock (nothing could resume the VM)");
	if (id && !api_id_valid(id))
		return cli_fail(err, n,
				CMD ": --id: '%.100s' is not valid (1-63 characters of A-Z a-z "
				    "0-9 _ -)",
				id);
	if (seccomp) {
		if (seccomp_mode_parse(seccomp, &r->seccomp))
			return cli_fail(err, n, CMD ": --seccomp: '%.100s' is not on, log or off",
					seccomp);
		r->seccomp_set = true;
	}
	if ((ret = check_file("--snapshot", snap, false, err, n)) ||
	    (ret = mem ? check_file("--mem-file", mem, false, err, n)
		       : check_file("--uffd", uffd, true, err, n)))
		return ret;
	for (unsigned i = 0; i < opts[O_NET].n; i++)
		if ((ret = add_override(l, nets[i], err, n)))
			return ret;
	/* The load only reads these (api_snapshot_load_free is never called on it). */
	l->snapshot_path = (char *)snap;
	l->backend = mem ? API_MEM_FILE : API_MEM_UFFD;
	l->backend_path = (char *)(mem ? mem : uffd);
	l->resume_vm = !opts[O_PAUSED].n;
	l->track_dirty_pages = opts[O_TRACK_DIRTY].n;
	l->clock_realtime = opts[O_CLOCK_REALTIME].n;
	r->api.sock_path = sock;
	r->api.no_api = !sock;
	r->api.id = id;
	r->api.load = l;
	return 0;
}

int cli_restore_main(int argc, char **argv)
{
	static struct cli_restore r; /* a few KiB of overrides */
	char err[512];
	int ret = cli_restore_parse(argc, argv, &r, err, sizeof(err));

	if (ret == 1) {
		usage(stdout);
		return 0;
	}
	if (ret) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	/* Process-wide, as `kiln run --seccomp` and `kiln api --seccomp`. */
	if (r.seccomp_set)
		seccomp_mode_set(r.seccomp);
	return api_run(&r.api);
}
