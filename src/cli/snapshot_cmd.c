/* snapshot_cmd.c: `kiln snapshot`: pause a VM through its API socket, snapshot it, resume it. */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/commands.h"

#define CMD "kiln snapshot"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: kiln snapshot --api-sock PATH --snapshot-path FILE --mem-file-path FILE\n"
		"                     [--diff] [--leave-paused]\n"
		"\n"
		"Snapshots a VM served on an API socket (`kiln run --api-sock`, `kiln api`,\n"
		"`kiln restore --api-sock`): PATCH /vm Paused, PUT /snapshot/create, then\n"
		"PATCH /vm Resumed, also when the create failed (docs/snapshot.md). A VM\n"
		"paused already is left paused.\n"
		"Restore it with `kiln restore --snapshot FILE --mem-file FILE`.\n"
		"\n"
		"  --api-sock PATH        the VM's API socket\n"
		"  --snapshot-path FILE   the state file to write (relative paths are made\n"
		"                         absolute here: the VM's kiln may run elsewhere)\n"
		"  --mem-file-path FILE   the guest memory file to write (sparse)\n"
		"  --diff                 a Diff snapshot: only the pages written since the last\n"
		"                         one (the VM needs dirty page tracking); merge it onto\n"
		"                         its base with `kiln snapshot-rebase`\n"
		"  --leave-paused         do not resume the VM afterwards\n"
		"\n"
		"Each request waits at most %d s. Exit status 0 when the snapshot was written,\n"
		"1 otherwise (one line per failure, with the API's fault_message).\n",
		CLI_HTTP_TIMEOUT_MS / 1000);
}

/* path made absolute against this process's working directory (malloc'd, NULL on error). */
static char *absolute(const char *opt, const char *path)
{
	char cwd[PATH_MAX], *out;

	if (path[0] == '/')
		return strdup(path);
	if (!getcwd(cwd, sizeof(cwd))) {
		fprintf(stderr, CMD ": %s: the working directory: %s\n", opt, strerror(errno));
		return NULL;
	}
	if (asprintf(&out, "%s/%s", cwd, path) < 0)
		return NULL;
	return out;
}

static struct cli_http_resp resp; /* the last answer; 64 KiB: not on the stack */

/* One request; true on the expected status (resp then holds the answer). A failure prints
 * "kiln snapshot: WHAT: why". */
static bool request(const char *sock, const char *method, const char *path, const char *body,
		    int want, const char *what)
{
	char err[600], fault[512];

	if (cli_http_request(sock, method, path, body, CLI_HTTP_TIMEOUT_MS, &resp, err,
			     sizeof(err))) {
		fprintf(stderr, CMD ": %s: %s\n", what, err);
		return false;
	}
	if (resp.status != want) {
		fprintf(stderr, CMD ": %s: %s\n", what,
			cli_http_fault(&resp, fault, sizeof(fault)));
		return false;
	}
	return true;
}

/* Is the VM paused already (the state GET / shows)? 1, 0, or -1 after a line. */
static int paused_already(const char *sock)
{
	json_t *root;
	const char *state;
	int ret = -1;

	if (!request(sock, "GET", "/", NULL, 200, "state"))
		return -1;
	root = json_loadb(resp.body, resp.len, 0, NULL);
	state = json_string_value(json_object_get(root, "state"));
	if (state)
		ret = strcmp(state, "Paused") == 0;
	else
		fprintf(stderr, CMD ": state: GET / answered without a \"state\"\n");
	json_decref(root);
	return ret;
}

static bool set_state(const char *sock, const char *state, const char *what)
{
	char body[64];

	snprintf(body, sizeof(body), "{\"state\": \"%s\"}", state);
	return request(sock, "PATCH", "/vm", body, 204, what);
}

int cli_snapshot_main(int argc, char **argv)
{
	const char *sock = NULL, *snap = NULL, *mem = NULL;
	struct cli_cmd_opt opts[] = {
	    {.name = "--api-sock", .vals = &sock},     {.name = "--snapshot-path", .vals = &snap},
	    {.name = "--mem-file-path", .vals = &mem}, {.name = "--diff", .flag = true},
	    {.name = "--leave-paused", .flag = true},
	};
	char err[512], *snap_abs = NULL, *mem_abs = NULL, *body = NULL;
	int ret = cli_cmd_parse(CMD, opts, ARRAY_SIZE(opts), argc, argv, err, sizeof(err));
	bool diff = opts[3].n, leave_paused = opts[4].n, created;

	if (ret == 1) {
		usage(stdout);
		return 0;
	}
	if (ret) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	for (size_t i = 0; i < 3; i++)
		if (!opts[i].n) {
			fprintf(stderr, CMD ": %s is required (try `" CMD " --help`)\n",
				opts[i].name);
			return 1;
		}
	snap_abs = absolute("--snapshot-path", snap);
	mem_abs = absolute("--mem-file-path", mem);
	json_t *j =
	    json_pack("{s:s, s:s, s:s}", "snapshot_type", diff ? "Diff" : "Full", "snapshot_path",
		      snap_abs ? snap_abs : "", "mem_file_path", mem_abs ? mem_abs : "");
	body = snap_abs && mem_abs && j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	if (!body) {
		if (snap_abs && mem_abs)
			fprintf(stderr, CMD ": out of memory\n");
		free(snap_abs);
		free(mem_abs);
		return 1;
	}
	ret = 1;
	/* A VM paused before is left paused: nobody asked to run it. */
	int was_paused = paused_already(sock);
	if (was_paused < 0 || (!was_paused && !set_state(sock, "Paused", "pause")))
		goto out;
	leave_paused |= was_paused;
	created = request(sock, "PUT", "/snapshot/create", body, 204, "create");
	if (leave_paused) {
		if (!created)
			fprintf(stderr, CMD ": the VM is left paused\n");
	} else if (!set_state(sock, "Resumed", "resume")) {
		fprintf(stderr, CMD ": %sthe VM is still paused\n",
			created ? "the snapshot was written, but " : "");
		created = false;
	} else if (!created) {
		fprintf(stderr, CMD ": the VM was resumed\n");
	}
	if (created) {
		printf("snapshot written: %s, memory %s; the VM is %s\n", snap_abs, mem_abs,
		       !leave_paused ? "running"
		       : was_paused  ? "paused, as it was"
				     : "paused");
		ret = 0;
	}
out:
	free(body);
	free(snap_abs);
	free(mem_abs);
	return ret;
}
