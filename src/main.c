/* main.c: kiln's entry point: subcommands `run`, `api`, `snapshot`, `restore`, `jailer`,
 * `snapshot-rebase`, `--version`, `--help`. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/api.h"
#include "cli/cli.h"
#include "cli/commands.h"
#include "config.h"
#include "kiln-build.h"
#include "sandbox/jailer.h"
#include "snapshot/memfile.h"
#include "sandbox/seccomp.h"
#include "util/log.h"
#include "vmm/vm.h"

#ifdef KILN_STATIC
#define KILN_FLAVOUR "static"
#else
#define KILN_FLAVOUR "dynamic"
#endif

static void usage(FILE *f)
{
	fprintf(f, "usage: kiln <command> [options]\n"
		   "\n"
		   "commands:\n"
		   "  run        boot a VM (see `kiln run --help`)\n"
		   "  api        serve the REST API on a Unix socket (see `kiln api --help`)\n"
		   "  snapshot   snapshot a VM through its API socket (see `kiln snapshot --help`)\n"
		   "  restore    run a VM from a snapshot (see `kiln restore --help`)\n"
		   "  jailer     run kiln jailed, Firecracker's jailer (see `kiln jailer --help`)\n"
		   "  snapshot-rebase  merge a Diff snapshot's memory file onto its base\n"
		   "             (see `kiln snapshot-rebase --help`)\n"
		   "\n"
		   "options:\n"
		   "  --version  print the version\n"
		   "  --help     print this help\n"
		   "\n"
		   "environment:\n"
		   "  KILN_LOG        log level: error, warn (default), info, debug\n"
		   "  KILN_GUEST_DIR  where the default guest lives (default %s)\n"
		   "  KILN_PASST      the passt that --net user runs (default: a passt beside kiln,\n"
		   "                  as -Dpasst_from_source=true builds, else passt in PATH)\n"
		   "  KILN_SECCOMP    the default of --seccomp: on (default), log, off\n",
		KILN_GUEST_DIR);
}

/* The process's seccomp mode from s ("on", "log" or "off"), which `who` gave (the line that
 * names it when s is none of them). Returns 0 or -1. */
static int seccomp_mode_from(const char *who, const char *s)
{
	enum seccomp_mode m;

	if (seccomp_mode_parse(s, &m)) {
		fprintf(stderr, "%s: '%s' is not on, log or off\n", who, s);
		return -1;
	}
	seccomp_mode_set(m);
	return 0;
}

/* KILN_SECCOMP=on|log|off: the default of --seccomp (a whole test suite in log mode). */
static int seccomp_from_env(void)
{
	const char *s = getenv("KILN_SECCOMP");

	return s && *s ? seccomp_mode_from("kiln: KILN_SECCOMP", s) : 0;
}

static void log_level_from_env(void)
{
	const char *s = getenv("KILN_LOG");
	static const char *const names[] = { "error", "warn", "info", "debug" };
	if (!s)
		return;
	for (unsigned i = 0; i < ARRAY_SIZE(names); i++)
		if (strcmp(s, names[i]) == 0)
			log_set_level((enum log_level)i);
}

/* With no --kernel, boot the default guest built by `make guest`. */
static int resolve_default_guest(struct vm_config *c, char *err, size_t errlen)
{
	const char *dir = getenv("KILN_GUEST_DIR");
	char path[4096];

	if (c->kernel_path)
		return 0;
	if (!dir || !*dir)
		dir = KILN_GUEST_DIR;
	/* A PVM host cannot run the Debian kernel's user space (docs/design.md, "PVM host"):
	 * boot kiln's own guest kernel there when `make guest` built it. */
	snprintf(path, sizeof(path), "%s/vmlinux-kiln", dir);
	if (kvm_host_is_pvm() && access(path, R_OK) == 0) {
		log_info("PVM host: booting the default guest with %s", path);
		c->kernel_path = strdup(path);
		if (!c->initrd_path) {
			snprintf(path, sizeof(path), "%s/initramfs-kiln.cpio", dir);
			if (access(path, R_OK) == 0)
				c->initrd_path = strdup(path);
		}
		return 0;
	}
	snprintf(path, sizeof(path), "%s/vmlinux", dir);
	if (access(path, R_OK) != 0) {
		snprintf(err, errlen,
			 "no --kernel given and the default guest is missing (%.300s: %s); build it "
			 "with `make guest`",
			 path, strerror(errno));
		return -ENOENT;
	}
	c->kernel_path = strdup(path);
	if (!c->initrd_path) {
		snprintf(path, sizeof(path), "%s/initramfs.cpio", dir);
		if (access(path, R_OK) == 0)
			c->initrd_path = strdup(path);
	}
	return 0;
}

static int cmd_run(int argc, char **argv)
{
	struct vm_config cfg;
	struct vm vm;
	char err[512] = "";
	const char *api_sock;
	int ret;

	ret = cli_parse_run_api(argc, argv, &cfg, &api_sock, stdout, err, sizeof(err));
	if (ret == 1) {
		vm_config_free(&cfg);
		return 0;
	}
	if (ret == 0)
		ret = resolve_default_guest(&cfg, err, sizeof(err));
	if (ret == 0)
		ret = vm_config_validate(&cfg, err, sizeof(err));
	if (ret) {
		fprintf(stderr, "kiln: %s\n", err);
		vm_config_free(&cfg);
		return 1;
	}
	if (api_sock) {
		/* The same VM, served on the socket too (pause, snapshot): `kiln api` runs it. */
		struct api_options o = {.sock_path = api_sock, .boot_config = &cfg};
		ret = api_run(&o);
		vm_config_free(&cfg);
		return ret;
	}
	ret = vm_create(&vm, &cfg, err, sizeof(err));
	if (ret) {
		fprintf(stderr, "kiln: %s\n", err);
		vm_config_free(&cfg);
		return 1;
	}
	enum vm_stop_reason why = vm_run(&vm);
	int sig = vm.stop_signal;
	vm_destroy(&vm);
	vm_config_free(&cfg);
	return vm_exit_status(why, sig);
}

int main(int argc, char **argv)
{
	/* A console reader that went away must not kill the VMM: writes report EPIPE. */
	signal(SIGPIPE, SIG_IGN);
	log_level_from_env();
	if (seccomp_from_env())
		return 1;
	if (argc < 2) {
		usage(stderr);
		return 1;
	}
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
		printf("kiln %s (%s)\n", KILN_VERSION, KILN_FLAVOUR);
		return 0;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "run") == 0)
		return cmd_run(argc - 2, argv + 2);
	if (strcmp(argv[1], "api") == 0)
		return cli_api_main(argc - 2, argv + 2, "kiln " KILN_VERSION " (" KILN_FLAVOUR ")");
	if (strcmp(argv[1], "snapshot") == 0)
		return cli_snapshot_main(argc - 2, argv + 2);
	if (strcmp(argv[1], "restore") == 0)
		return cli_restore_main(argc - 2, argv + 2);
	if (strcmp(argv[1], "jailer") == 0)
		return jailer_main(argc - 2, argv + 2);
	if (strcmp(argv[1], "snapshot-rebase") == 0)
		return memfile_rebase_main(argc - 2, argv + 2);
	fprintf(stderr, "kiln: unknown command '%s' (try `kiln --help`)\n", argv[1]);
	return 1;
}
