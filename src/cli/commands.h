/* commands.h: the commands beside `kiln run` that talk to or become a `kiln api`: `kiln
 * snapshot` (an API client) and `kiln restore`; their option parser and HTTP client. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "api/api.h"
#include "api/snapshot_body.h"
#include "sandbox/seccomp.h"
#include "util/compiler.h"

/* ---- cmd_opts.c: `--opt VALUE` / `--opt=VALUE` options of the small commands ----------- */

/* One option. A VALUE that starts with "--" in the first form is taken as a missing value. */
struct cli_cmd_opt {
	const char *name;  /* "--snapshot" */
	bool flag;	   /* takes no value */
	unsigned max;	   /* times it may be given (0 counts as 1) */
	const char **vals; /* max slots for the values (the argv strings); NULL for a flag */
	unsigned n;	   /* times given, set by the parser */
};

/* Parse argv (the arguments after the command's name) for cmd ("kiln snapshot", in
 * messages). Returns 0; 1 when --help or -h was given; or -EINVAL with one line naming the
 * option and the problem in err (an unknown option, a missing or empty value, an option given
 * too often, a value given to a flag, an argument that is not an option). */
int cli_cmd_parse(const char *cmd, struct cli_cmd_opt *opts, size_t nopts, int argc, char **argv,
		  char *err, size_t errlen) __must_check;

/* ---- http_client.c: one request to a `kiln api` socket ------------------------------- */

/* The longest a command waits for one answer (the API itself gives up on a command its main
 * thread did not finish within API_POST_TIMEOUT_MS, and answers then). */
#define CLI_HTTP_TIMEOUT_MS 30000
#define CLI_HTTP_RESP_MAX (64 * 1024)

struct cli_http_resp {
	int status;			  /* 100-599 */
	char body[CLI_HTTP_RESP_MAX + 1]; /* NUL-terminated */
	size_t len;
};

/* Send `METHOD PATH` with the JSON body (NULL: none) on a new connection to the Unix socket
 * sock and read the whole answer, waiting at most timeout_ms in all. Returns 0 (r->status
 * holds the status) or -errno with one line in err (the socket, and why). */
int cli_http_request(const char *sock, const char *method, const char *path, const char *body,
		     int timeout_ms, struct cli_http_resp *r, char *err,
		     size_t errlen) __must_check;
/* The answer's fault_message, with control characters shown as '?', into buf; or a line
 * naming the status when the body has none. Returns buf. */
const char *cli_http_fault(const struct cli_http_resp *r, char *buf, size_t len);

/* ---- the commands: each returns the process's exit status ---------------------------- */

int cli_snapshot_main(int argc, char **argv);
/* `kiln api`; version is the line `--version` prints (`kiln --version`'s). */
int cli_api_main(int argc, char **argv, const char *version);
int cli_restore_main(int argc, char **argv);

/* ---- restore_cmd.c: `kiln restore`'s command line ------------------------------------ */

/* What the command line asks for: the load (File backend with --mem-file, Uffd with --uffd)
 * and the `kiln api` it runs in. Strings point into argv. */
struct cli_restore {
	struct api_snapshot_load load;
	struct api_options api; /* api.load is &load */
	bool seccomp_set;	/* --seccomp given: seccomp_mode_set(seccomp) before api_run */
	enum seccomp_mode seccomp;
};

/* Parse and check argv (after "restore") into r. Returns 0; 1 for --help or -h; or -EINVAL
 * with one line in err naming the option and the problem: the parser's, a missing
 * --snapshot, neither or both of --mem-file and --uffd, --paused without --api-sock, a bad
 * --id, --seccomp, --net, or a file that is missing, not regular (--snapshot, --mem-file) or
 * not a Unix socket (--uffd). Nothing is changed outside r. */
int cli_restore_parse(int argc, char **argv, struct cli_restore *r, char *err,
		      size_t errlen) __must_check;

/* ---- api_cmd.c: `kiln api`'s command line -------------------------------------------- */

/* What cli_api_parse found to do. */
enum cli_api_action {
	CLI_API_RUN,		  /* serve: api_run(&api) */
	CLI_API_HELP,		  /* --help, -h */
	CLI_API_VERSION,	  /* --version */
	CLI_API_SNAPSHOT_VERSION, /* --snapshot-version */
	CLI_API_DESCRIBE,	  /* --describe-snapshot FILE: describe */
};

/* `kiln api`'s options, kiln's and Firecracker's (docs/api.md). Strings point into argv. */
struct cli_api {
	struct api_options api;
	bool seccomp_set; /* --seccomp or --no-seccomp: seccomp_mode_set(seccomp) first */
	enum seccomp_mode seccomp;
	const char *describe;	  /* --describe-snapshot */
	uint64_t mmds_size_limit; /* --mmds-size-limit: checked, no effect (kiln has no MMDS) */
	bool enable_pci;	  /* --enable-pci: no effect (kiln's devices are always PCI) */
};

/* Parse and check argv (after "api") into r. Returns a CLI_API_* action (>= 0), or -EINVAL
 * with one line in err naming the option and the problem: an unknown option, a missing,
 * empty or repeated one, a bad number or level, a value out of range, contradictory
 * options, a Firecracker flag kiln refuses (--seccomp-filter, --boot-timer, --metadata).
 * Nothing is opened. */
int cli_api_parse(int argc, char **argv, struct cli_api *r, char *err, size_t errlen) __must_check;
