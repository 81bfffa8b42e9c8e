/* api_cmd.c: `kiln api`'s command line: kiln's options and Firecracker's VMM flags. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "cli/commands.h"
#include "cli/internal.h"
#include "sandbox/seccomp.h"
#include "snapshot/format.h"

#define CMD "kiln api"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: kiln api --api-sock PATH [--id NAME] [--config-file FILE] [options]\n"
		"       kiln api --no-api --config-file FILE [--id NAME] [options]\n"
		"       kiln api --version | --snapshot-version | --describe-snapshot FILE\n"
		"\n"
		"Serves the Firecracker-compatible REST API (docs/api.md) over HTTP on a Unix\n"
		"socket, and boots the VM on PUT /actions {\"action_type\": \"InstanceStart\"}.\n"
		"Each option once, as `--opt VALUE` or `--opt=VALUE`.\n"
		"\n"
		"  --api-sock PATH     the socket to create (mode 0600; a stale socket file is\n"
		"                      replaced, a live one refused)\n"
		"  --id NAME           instance id shown by GET / and in log lines\n"
		"                      (default anonymous-instance)\n"
		"  --config-file FILE  boot at once from FILE (the schema of GET /vm/config)\n"
		"  --no-api            serve no API (needs --config-file)\n"
		"  --seccomp on|log|off  seccomp allowlists, one per thread (docs/security.md):\n"
		"                      on stops kiln at a call outside them, with a line naming\n"
		"                      it; log lets it through and the kernel logs it (default:\n"
		"                      KILN_SECCOMP, else on)\n"
		"\n"
		"Firecracker's flags, for tools that drive Firecracker (docs/api.md):\n"
		"  --no-seccomp        as --seccomp off\n"
		"  --seccomp-filter FILE  refused: Firecracker's compiled filters do not apply to\n"
		"                      kiln (use --seccomp on|log, or --no-seccomp)\n"
		"  --log-path PATH     the log goes to PATH (file, FIFO or character device)\n"
		"  --level LEVEL       Error, Warning, Info, Debug, Trace or Off (any case)\n"
		"  --module TEXT       only log lines from source paths containing TEXT\n"
		"  --show-level        show the level in log lines\n"
		"  --show-log-origin   show the file and line in log lines\n"
		"                      (these five configure the logger as PUT /logger would;\n"
		"                      PUT /logger then updates it, as Firecracker's does)\n"
		"  --metrics-path PATH  metrics to PATH, as PUT /metrics\n"
		"  --start-time-us N, --start-time-cpu-us N, --parent-cpu-time-us N\n"
		"                      the caller's clocks at exec (CLOCK_MONOTONIC and CPU time,\n"
		"                      microseconds): the metrics' api.process_startup_time_us\n"
		"                      and process_startup_time_cpu_us\n"
		"  --http-api-max-payload-size N  larger request bodies get 413 (%u-%u bytes,\n"
		"                      default %u)\n"
		"  --mmds-size-limit N  checked (a byte count) and ignored: kiln has no MMDS\n"
		"  --enable-pci        accepted: kiln's devices are always PCI\n"
		"  --boot-timer, --metadata FILE  refused: kiln has no boot timer device, no MMDS\n"
		"  --version           print kiln's version\n"
		"  --snapshot-version  print the snapshot format version kiln writes (v%u)\n"
		"  --describe-snapshot FILE  check FILE as a kiln snapshot state file and print\n"
		"                      its format version\n",
		API_BODY_MAX_MIN, API_BODY_MAX_MAX, API_BODY_MAX, SNAP_FORMAT_VERSION);
}

enum {
	O_API_SOCK,
	O_ID,
	O_CONFIG_FILE,
	O_NO_API,
	O_SECCOMP,
	O_NO_SECCOMP,
	O_SECCOMP_FILTER,
	O_LOG_PATH,
	O_LEVEL,
	O_MODULE,
	O_SHOW_LEVEL,
	O_SHOW_ORIGIN,
	O_METRICS_PATH,
	O_START_TIME,
	O_START_CPU,
	O_PARENT_CPU,
	O_PAYLOAD,
	O_MMDS_LIMIT,
	O_METADATA,
	O_BOOT_TIMER,
	O_ENABLE_PCI,
	O_VERSION,
	O_SNAPSHOT_VERSION,
	O_DESCRIBE,
	O__COUNT,
};

/* A decimal unsigned number of at most 64 bits (Firecracker's u64 / usize). */
static int parse_u64(const char *opt, const char *s, uint64_t *out, char *err, size_t n)
{
	struct cli_clip cl;
	char *end;

	errno = 0;
	if (*s < '0' || *s > '9' || ((*out = strtoull(s, &end, 10)), errno || *end))
		return cli_fail(err, n, CMD ": %s: '%s' is not an unsigned decimal number", opt,
				cli_clip(&cl, s));
	return 0;
}

int cli_api_parse(int argc, char **argv, struct cli_api *r, char *err, size_t n)
{
	const char *v[O__COUNT] = {0};
	struct cli_cmd_opt opts[O__COUNT] = {
	    [O_API_SOCK] = {"--api-sock", false, 1, &v[O_API_SOCK], 0},
	    [O_ID] = {"--id", false, 1, &v[O_ID], 0},
	    [O_CONFIG_FILE] = {"--config-file", false, 1, &v[O_CONFIG_FILE], 0},
	    [O_NO_API] = {"--no-api", true, 1, NULL, 0},
	    [O_SECCOMP] = {"--seccomp", false, 1, &v[O_SECCOMP], 0},
	    [O_NO_SECCOMP] = {"--no-seccomp", true, 1, NULL, 0},
	    [O_SECCOMP_FILTER] = {"--seccomp-filter", false, 1, &v[O_SECCOMP_FILTER], 0},
	    [O_LOG_PATH] = {"--log-path", false, 1, &v[O_LOG_PATH], 0},
	    [O_LEVEL] = {"--level", false, 1, &v[O_LEVEL], 0},
	    [O_MODULE] = {"--module", false, 1, &v[O_MODULE], 0},
	    [O_SHOW_LEVEL] = {"--show-level", true, 1, NULL, 0},
	    [O_SHOW_ORIGIN] = {"--show-log-origin", true, 1, NULL, 0},
	    [O_METRICS_PATH] = {"--metrics-path", false, 1, &v[O_METRICS_PATH], 0},
	    [O_START_TIME] = {"--start-time-us", false, 1, &v[O_START_TIME], 0},
	    [O_START_CPU] = {"--start-time-cpu-us", false, 1, &v[O_START_CPU], 0},
	    [O_PARENT_CPU] = {"--parent-cpu-time-us", false, 1, &v[O_PARENT_CPU], 0},
	    [O_PAYLOAD] = {"--http-api-max-payload-size", false, 1, &v[O_PAYLOAD], 0},
	    [O_MMDS_LIMIT] = {"--mmds-size-limit", false, 1, &v[O_MMDS_LIMIT], 0},
	    [O_METADATA] = {"--metadata", false, 1, &v[O_METADATA], 0},
	    [O_BOOT_TIMER] = {"--boot-timer", true, 1, NULL, 0},
	    [O_ENABLE_PCI] = {"--enable-pci", true, 1, NULL, 0},
	    [O_VERSION] = {"--version", true, 1, NULL, 0},
	    [O_SNAPSHOT_VERSION] = {"--snapshot-version", true, 1, NULL, 0},
	    [O_DESCRIBE] = {"--describe-snapshot", false, 1, &v[O_DESCRIBE], 0},
	};
	struct api_options *o = &r->api;
	struct cli_clip cl;
	uint64_t u;
	int ret;

	memset(r, 0, sizeof(*r));
	ret = cli_cmd_parse(CMD, opts, O__COUNT, argc, argv, err, n);
	if (ret)
		return ret == 1 ? CLI_API_HELP : ret;
	/* What prints and exits comes first, as in Firecracker (the rest is not looked at). */
	if (opts[O_VERSION].n)
		return CLI_API_VERSION;
	if (opts[O_SNAPSHOT_VERSION].n)
		return CLI_API_SNAPSHOT_VERSION;
	if (v[O_DESCRIBE]) {
		r->describe = v[O_DESCRIBE];
		return CLI_API_DESCRIBE;
	}

	if (opts[O_BOOT_TIMER].n)
		return cli_fail(err, n, CMD ": --boot-timer: kiln has no boot timer device");
	if (v[O_METADATA])
		return cli_fail(err, n, CMD ": --metadata: kiln has no MMDS");
	if (v[O_SECCOMP_FILTER])
		return cli_fail(err, n,
				CMD
				": --seccomp-filter: Firecracker's compiled filters do not apply "
				"to kiln, which builds its own per-thread lists (use --seccomp "
				"on or log, or --no-seccomp)");
	if (opts[O_NO_SECCOMP].n && v[O_SECCOMP] && strcmp(v[O_SECCOMP], "off"))
		return cli_fail(err, n, CMD ": --no-seccomp and --seccomp %s contradict each other",
				cli_clip(&cl, v[O_SECCOMP]));
	if (v[O_SECCOMP]) {
		if (seccomp_mode_parse(v[O_SECCOMP], &r->seccomp))
			return cli_fail(err, n, CMD ": --seccomp: '%s' is not on, log or off",
					cli_clip(&cl, v[O_SECCOMP]));
		r->seccomp_set = true;
	} else if (opts[O_NO_SECCOMP].n) {
		r->seccomp = SECCOMP_MODE_OFF;
		r->seccomp_set = true;
	}

	o->no_api = opts[O_NO_API].n;
	o->sock_path = v[O_API_SOCK];
	o->id = v[O_ID];
	o->config_file = v[O_CONFIG_FILE];
	if (o->no_api && !o->config_file)
		return cli_fail(err, n, CMD ": --no-api needs --config-file");
	if (o->no_api && o->sock_path)
		return cli_fail(err, n, CMD ": --api-sock and --no-api exclude each other");
	if (!o->no_api && !o->sock_path)
		return cli_fail(err, n,
				CMD ": --api-sock PATH is required (or --no-api --config-file)");
	if (o->id && !api_id_valid(o->id))
		return cli_fail(
		    err, n, CMD ": --id: '%s' is not valid (1-63 characters of A-Z a-z 0-9 _ -)",
		    cli_clip(&cl, o->id));

	/* The logger, as PUT /logger: any of these sets it (Firecracker's flags need no
	 * --log-path: without it the lines stay on stderr). */
	struct api_logger_config *l = &o->logger;
	l->level = LOG_INFO;
	if (v[O_LEVEL] && api_log_level_parse(v[O_LEVEL], &l->level))
		return cli_fail(
		    err, n, CMD ": --level: '%s' is not Error, Warning, Info, Debug, Trace or Off",
		    cli_clip(&cl, v[O_LEVEL]));
	if (v[O_MODULE] && strlen(v[O_MODULE]) > 63)
		return cli_fail(err, n, CMD ": --module: longer than 63 bytes");
	l->log_path = (char *)v[O_LOG_PATH];
	l->module = (char *)v[O_MODULE];
	l->show_level = opts[O_SHOW_LEVEL].n;
	l->show_origin = opts[O_SHOW_ORIGIN].n;
	l->set = v[O_LOG_PATH] || v[O_LEVEL] || v[O_MODULE] || l->show_level || l->show_origin;
	o->metrics_path = v[O_METRICS_PATH];

	if ((v[O_START_TIME] &&
	     parse_u64("--start-time-us", v[O_START_TIME], &o->start_time_us, err, n)) ||
	    (v[O_START_CPU] &&
	     parse_u64("--start-time-cpu-us", v[O_START_CPU], &o->start_time_cpu_us, err, n)) ||
	    (v[O_PARENT_CPU] &&
	     parse_u64("--parent-cpu-time-us", v[O_PARENT_CPU], &o->parent_cpu_time_us, err, n)))
		return -EINVAL;
	o->start_time_set = v[O_START_TIME];
	o->start_cpu_set = v[O_START_CPU];
	if (v[O_PARENT_CPU] && !v[O_START_CPU])
		return cli_fail(err, n, CMD ": --parent-cpu-time-us needs --start-time-cpu-us");

	if (v[O_PAYLOAD]) {
		if (parse_u64("--http-api-max-payload-size", v[O_PAYLOAD], &u, err, n))
			return -EINVAL;
		if (u < API_BODY_MAX_MIN || u > API_BODY_MAX_MAX)
			return cli_fail(err, n,
					CMD ": --http-api-max-payload-size: %llu is out of range "
					    "(%u-%u bytes)",
					(unsigned long long)u, API_BODY_MAX_MIN, API_BODY_MAX_MAX);
		o->body_max = (size_t)u;
	}
	if (v[O_MMDS_LIMIT] &&
	    parse_u64("--mmds-size-limit", v[O_MMDS_LIMIT], &r->mmds_size_limit, err, n))
		return -EINVAL;
	r->enable_pci = opts[O_ENABLE_PCI].n;
	return CLI_API_RUN;
}

/* --describe-snapshot FILE: the whole file is checked (header, table, checksum) before its
 * version is printed. */
static int describe(const char *path)
{
	struct snap_file f;
	char err[600];

	if (snap_file_read(path, &f, err, sizeof(err))) {
		fprintf(stderr, CMD ": --describe-snapshot: %s\n", err);
		return 1;
	}
	snap_file_free(&f);
	printf("v%u\n", SNAP_FORMAT_VERSION);
	return 0;
}

int cli_api_main(int argc, char **argv, const char *version)
{
	static struct cli_api r;
	char err[600];
	int ret = cli_api_parse(argc, argv, &r, err, sizeof(err));

	switch (ret) {
	case CLI_API_HELP:
		usage(stdout);
		return 0;
	case CLI_API_VERSION:
		printf("%s\n", version);
		return 0;
	case CLI_API_SNAPSHOT_VERSION:
		printf("v%u\n", SNAP_FORMAT_VERSION);
		return 0;
	case CLI_API_DESCRIBE:
		return describe(r.describe);
	case CLI_API_RUN:
		break;
	default:
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	/* Process-wide, as `kiln run --seccomp` and `kiln restore --seccomp`. */
	if (r.seccomp_set)
		seccomp_mode_set(r.seccomp);
	return api_run(&r.api);
}
