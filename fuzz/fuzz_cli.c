/* fuzz_cli.c: libFuzzer target for `kiln run` parsing, sizes, numbers and key=value lists. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

#define FUZZ_MAX_ARGS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static FILE *devnull;

/* A message must exist after a failure and always be one line. */
static void check_msg(int ret, const char *err)
{
	if (ret == -EINVAL && !err[0])
		abort();
	if (strchr(err, '\n'))
		abort();
}

static void fuzz_size(const char *s)
{
	uint64_t v = 0, back = 0;
	char buf[32];
	int ret;

	ret = cli_parse_size(s, 0, &v);
	if (ret != 0 && ret != -EINVAL && ret != -ERANGE)
		abort();
	if (!ret) {
		/* What we print parses back to the same number. */
		cli_format_size(v, buf, sizeof(buf));
		if (cli_parse_size(buf, MiB, &back) || back != v)
			abort();
	}
	ret = cli_parse_size(s, MiB, &v);
	if (ret != 0 && ret != -EINVAL && ret != -ERANGE)
		abort();
	ret = cli_parse_uint(s, 1, VM_CONFIG_MAX_CPUS, &v);
	if (!ret && (v < 1 || v > VM_CONFIG_MAX_CPUS))
		abort();
	bool b;
	(void)cli_parse_bool(s, &b);
}

static void fuzz_kvlist(const char *s, unsigned flags)
{
	static const char *const keys[] = {"path", "readonly", "id", "file", NULL};
	struct cli_kvlist kv;
	char err[256] = "";
	int ret;

	ret = cli_kvlist_parse(&kv, "--fuzz", s, keys, flags, err, sizeof(err));
	check_msg(ret, err);
	if (ret) {
		if (kv.buf || kv.bare)
			abort();
		return;
	}
	if (kv.bare && (!kv.bare[0] || strchr(kv.bare, '=') || !(flags & CLI_KV_BARE)))
		abort();
	for (size_t i = 0; keys[i]; i++) {
		const char *v = cli_kvlist_get(&kv, keys[i]);

		if (v && !v[0])
			abort();
	}
	cli_kvlist_free(&kv);
}

static void fuzz_run(int argc, char **argv)
{
	struct vm_config c;
	char err[256] = "";
	int ret;

	ret = cli_parse_run(argc, argv, &c, devnull, err, sizeof(err));
	if (ret != 0 && ret != 1 && ret != -EINVAL && ret != -ENOMEM)
		abort();
	check_msg(ret, err);
	if (ret) {
		/* Nothing half-configured survives a failure or --help. */
		if (c.kernel_path || c.initrd_path || c.cmdline || c.serial_path ||
		    c.cpus != VM_CONFIG_DEFAULT_CPUS || c.mem_size != VM_CONFIG_DEFAULT_MEM ||
		    c.serial_mode != SERIAL_STDIO)
			abort();
		return;
	}
	if (vm_config_validate(&c, err, sizeof(err)))
		abort();
	if ((c.serial_mode == SERIAL_FILE) != (c.serial_path != NULL))
		abort();
	vm_config_free(&c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *argv[FUZZ_MAX_ARGS + 1];
	char *buf, *p, *start;
	int argc = 0;

	if (!devnull) {
		devnull = fopen("/dev/null", "w");
		if (!devnull)
			abort();
	}
	buf = malloc(size + 1);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';

	/* Arguments are separated by NUL or newline. */
	start = buf;
	for (p = buf; p <= buf + size && argc < FUZZ_MAX_ARGS; p++) {
		if (p == buf + size || *p == '\0' || *p == '\n') {
			*p = '\0';
			argv[argc++] = start;
			start = p + 1;
		}
	}
	argv[argc] = NULL;

	for (int i = 0; i < argc; i++) {
		fuzz_size(argv[i]);
		fuzz_kvlist(argv[i], (i & 1) ? CLI_KV_BARE : 0);
	}
	fuzz_run(argc, argv);
	free(buf);
	return 0;
}
