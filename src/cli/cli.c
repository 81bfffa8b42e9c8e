/* cli.c: `kiln run` options and key=value option lists -> struct vm_config, with one-line errors.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/internal.h"
#include "sandbox/seccomp.h"

/* Guest RAM is mapped in whole x86 pages (config.c checks the same). */
#define CLI_PAGE_SIZE (4 * KiB)

#define STR_(x) #x
#define STR(x) STR_(x)

static_assert(VM_CONFIG_MIN_MEM == 64 * MiB, "update the --memory help and messages");

int cli_fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return -EINVAL;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	for (char *p = err; *p; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	}
	return -EINVAL;
}

const char *cli_clip(struct cli_clip *b, const char *s)
{
	if (strlen(s) <= CLI_CLIP)
		return s;
	memcpy(b->s, s, CLI_CLIP);
	memcpy(b->s + CLI_CLIP, "...", 4);
	return b->s;
}

/* ---- key=value lists ---------------------------------------------------------------- */

static int kv_index(const char *const *keys, const char *key)
{
	for (int i = 0; keys[i] && i < CLI_KV_MAX_KEYS; i++) {
		if (!strcmp(keys[i], key))
			return i;
	}
	return -1;
}

/* Copy one item from *r to *w, turning ",," into ',' and stopping after a single ','.
 * Writes never overtake reads, so this works in place. Sets *end when the string ends. */
static char *kv_next_item(char **r, char **w, bool *end)
{
	char *item = *w;

	for (;;) {
		if (!**r) {
			*end = true;
			break;
		}
		if (**r == ',') {
			if ((*r)[1] != ',') {
				(*r)++;
				break;
			}
			(*r)++;
		}
		*(*w)++ = *(*r)++;
	}
	*(*w)++ = '\0';
	return item;
}

static int kv_unknown_key(const char *opt, const char *key, const char *const *keys, char *err,
			  size_t errlen)
{
	char expected[256] = "";
	size_t n = 0;
	struct cli_clip c;

	for (int i = 0; keys[i] && n < sizeof(expected); i++)
		n += (size_t)snprintf(expected + n, sizeof(expected) - n, "%s%s", i ? ", " : "",
				      keys[i]);
	return cli_fail(err, errlen, "%s: unknown key '%s' (expected %s)", opt, cli_clip(&c, key),
		    keys[0] ? expected : "no keys");
}

/* Does key i take a list (CLI_KV_CONTINUE: the last key)? */
static bool kv_is_list(const struct cli_kvlist *kv, unsigned flags, int i)
{
	return (flags & CLI_KV_CONTINUE) && i >= 0 && kv->keys[i] && !kv->keys[i + 1];
}

/* Add ",s" to the value of key i. s lies after that value in kv->buf, so it moves left. */
static int kv_append(struct cli_kvlist *kv, int i, const char *s)
{
	char *end = (char *)kv->vals[i] + strlen(kv->vals[i]);

	*end = ',';
	memmove(end + 1, s, strlen(s) + 1);
	return 0;
}

static int kv_item(struct cli_kvlist *kv, const char *opt, char *item, bool first, unsigned flags,
		   char *err, size_t errlen)
{
	char *eq = strchr(item, '=');
	const char *val;
	struct cli_clip c;
	int i;

	if (!eq) {
		if (!first && kv_is_list(kv, flags, kv->last))
			return kv_append(kv, kv->last, item);
		if (!first || !(flags & CLI_KV_BARE))
			return cli_fail(err, errlen, "%s: '%s' is not key=value", opt, cli_clip(&c, item));
		kv->bare = item;
		return 0;
	}
	*eq = '\0';
	val = eq + 1;
	if (eq == item)
		return cli_fail(err, errlen, "%s: missing key in '=%s'", opt, cli_clip(&c, val));
	i = kv_index(kv->keys, item);
	if (i < 0)
		return kv_unknown_key(opt, item, kv->keys, err, errlen);
	if (!*val)
		return cli_fail(err, errlen, "%s: '%s' has an empty value", opt, item);
	if (kv->vals[i] && kv_is_list(kv, flags, i) && kv->last == i)
		return kv_append(kv, i, val);
	if (kv->vals[i])
		return cli_fail(err, errlen, "%s: '%s' given twice", opt, item);
	kv->vals[i] = val;
	kv->last = i;
	return 0;
}

int cli_kvlist_parse(struct cli_kvlist *kv, const char *opt, const char *s, const char *const *keys,
		     unsigned flags, char *err, size_t errlen)
{
	bool first = true, end = false;
	char *r, *w, *item;
	size_t nkeys = 0;
	struct cli_clip c;
	int ret;

	memset(kv, 0, sizeof(*kv));
	kv->keys = keys;
	kv->last = -1;
	while (keys[nkeys])
		nkeys++;
	if (nkeys > CLI_KV_MAX_KEYS)
		return cli_fail(err, errlen, "%s: too many keys for a list", opt);
	if (!*s)
		return cli_fail(err, errlen, "%s: empty value", opt);
	kv->buf = strdup(s);
	if (!kv->buf)
		return -ENOMEM;
	r = w = kv->buf;
	while (!end) {
		item = kv_next_item(&r, &w, &end);
		if (!*item) {
			ret = cli_fail(err, errlen,
				   end && !first ? "%s: trailing comma in '%s'"
						 : "%s: empty item in '%s'",
				   opt, cli_clip(&c, s));
			goto out_free;
		}
		ret = kv_item(kv, opt, item, first, flags, err, errlen);
		if (ret)
			goto out_free;
		first = false;
	}
	return 0;

out_free:
	cli_kvlist_free(kv);
	return ret;
}

const char *cli_kvlist_get(const struct cli_kvlist *kv, const char *key)
{
	int i = kv->keys ? kv_index(kv->keys, key) : -1;

	return i < 0 ? NULL : kv->vals[i];
}

void cli_kvlist_free(struct cli_kvlist *kv)
{
	free(kv->buf);
	memset(kv, 0, sizeof(*kv));
}

/* ---- `kiln run` options --------------------------------------------------------------- */

typedef int (*opt_set_fn)(struct vm_config *c, const char *opt, const char *val, char *err,
			  size_t errlen);

struct opt {
	const char *name;    /* "--kernel" */
	const char *alias;   /* "-h", or NULL */
	const char *metavar; /* NULL: takes no value (--help) */
	opt_set_fn set;	     /* NULL: --help, or --api-sock (metavar set) */
	bool empty_ok;	     /* "" is a meaningful value */
	bool repeatable;     /* may be given more than once (--disk) */
	const char *help;    /* may hold '\n' between lines */
	void (*dflt)(char *buf, size_t len);
};

/* Check that path names a readable regular file, then store a copy in *dst. */
static int set_file(char **dst, const char *opt, const char *path, char *err, size_t errlen)
{
	struct cli_clip c;
	struct stat st;

	if (stat(path, &st))
		return cli_fail(err, errlen, "%s: %s: %s", opt, cli_clip(&c, path), strerror(errno));
	if (!S_ISREG(st.st_mode))
		return cli_fail(err, errlen, "%s: %s: %s", opt, cli_clip(&c, path),
			    S_ISDIR(st.st_mode) ? strerror(EISDIR) : "not a regular file");
	if (access(path, R_OK))
		return cli_fail(err, errlen, "%s: %s: %s", opt, cli_clip(&c, path), strerror(errno));
	*dst = strdup(path);
	return *dst ? 0 : -ENOMEM;
}

static int set_kernel(struct vm_config *c, const char *opt, const char *val, char *err,
		      size_t errlen)
{
	return set_file(&c->kernel_path, opt, val, err, errlen);
}

static int set_initrd(struct vm_config *c, const char *opt, const char *val, char *err,
		      size_t errlen)
{
	return set_file(&c->initrd_path, opt, val, err, errlen);
}

static int set_cmdline(struct vm_config *c, const char *opt, const char *val, char *err,
		       size_t errlen)
{
	c->cmdline = strdup(val);
	return c->cmdline ? 0 : -ENOMEM;
}

static int set_cpus(struct vm_config *c, const char *opt, const char *val, char *err, size_t errlen)
{
	struct cli_clip cl;
	uint64_t n;
	int ret;

	ret = cli_parse_uint(val, 1, VM_CONFIG_MAX_CPUS, &n);
	if (ret == -ERANGE)
		return cli_fail(err, errlen, "%s: '%s' is out of range (1-%u)", opt, cli_clip(&cl, val),
			    (unsigned)VM_CONFIG_MAX_CPUS);
	if (ret)
		return cli_fail(err, errlen, "%s: '%s' is not a number", opt, cli_clip(&cl, val));
	c->cpus = (unsigned)n;
	return 0;
}

/* Physical RAM of the host in bytes, or 0 if unknown. */
static uint64_t host_ram(void)
{
	long pages = sysconf(_SC_PHYS_PAGES);
	long psize = sysconf(_SC_PAGESIZE);

	if (pages <= 0 || psize <= 0)
		return 0;
	return (uint64_t)pages * (uint64_t)psize;
}

static int set_memory(struct vm_config *c, const char *opt, const char *val, char *err,
		      size_t errlen)
{
	uint64_t bytes, host;
	struct cli_clip cl;
	int ret;

	ret = cli_parse_size(val, MiB, &bytes);
	if (ret == -ERANGE)
		return cli_fail(err, errlen, "%s: '%s' is too large", opt, cli_clip(&cl, val));
	if (ret)
		return cli_fail(err, errlen, "%s: '%s' is not a size", opt, cli_clip(&cl, val));
	if (bytes < VM_CONFIG_MIN_MEM)
		return cli_fail(err, errlen, "%s: %s is below the %llu MiB minimum", opt,
			    cli_clip(&cl, val), (unsigned long long)(VM_CONFIG_MIN_MEM / MiB));
	if (bytes % CLI_PAGE_SIZE)
		return cli_fail(err, errlen, "%s: %s is not a multiple of the %llu KiB page size", opt,
			    cli_clip(&cl, val), (unsigned long long)(CLI_PAGE_SIZE / KiB));
	host = host_ram();
	if (host && bytes > host)
		return cli_fail(err, errlen, "%s: %s is more than the host's %llu MiB of RAM", opt,
			    cli_clip(&cl, val), (unsigned long long)(host / MiB));
	c->mem_size = bytes;
	return 0;
}

int cli_parse_mode(const char *opt, const char *val, enum serial_mode *mode, char **path,
		   char *err, size_t errlen)
{
	static const char *const keys[] = {"file", NULL};
	struct cli_kvlist kv;
	const char *file;
	struct cli_clip cl;
	int ret;

	ret = cli_kvlist_parse(&kv, opt, val, keys, CLI_KV_BARE, err, errlen);
	if (ret)
		return ret;
	file = cli_kvlist_get(&kv, "file");
	if (file && kv.bare) {
		ret = cli_fail(err, errlen,
			   "%s: '%s' mixes a mode with file= (expected stdio, file=PATH or off)",
			   opt, cli_clip(&cl, val));
	} else if (file) {
		*path = strdup(file);
		*mode = SERIAL_FILE;
		ret = *path ? 0 : -ENOMEM;
	} else if (!strcmp(kv.bare, "stdio")) {
		*mode = SERIAL_STDIO;
	} else if (!strcmp(kv.bare, "off")) {
		*mode = SERIAL_OFF;
	} else if (!strcmp(kv.bare, "file")) {
		ret = cli_fail(err, errlen, "%s: file needs a path (file=PATH)", opt);
	} else {
		ret = cli_fail(err, errlen, "%s: unknown mode '%s' (expected stdio, file=PATH or off)",
			   opt, cli_clip(&cl, val));
	}
	cli_kvlist_free(&kv);
	return ret;
}

static int set_serial(struct vm_config *c, const char *opt, const char *val, char *err,
		      size_t errlen)
{
	return cli_parse_mode(opt, val, &c->serial_mode, &c->serial_path, err, errlen);
}

static void dflt_kernel(char *buf, size_t len) { snprintf(buf, len, "the default guest"); }

static void dflt_initrd(char *buf, size_t len)
{
	snprintf(buf, len, "none, or the default guest's");
}

static void dflt_cmdline(char *buf, size_t len)
{
	snprintf(buf, len, "\"%s\"", VM_CONFIG_DEFAULT_CMDLINE);
}

static void dflt_cpus(char *buf, size_t len)
{
	snprintf(buf, len, "%u", (unsigned)VM_CONFIG_DEFAULT_CPUS);
}

static void dflt_memory(char *buf, size_t len) { cli_format_size(VM_CONFIG_DEFAULT_MEM, buf, len); }

static void dflt_serial(char *buf, size_t len) { snprintf(buf, len, "stdio"); }

static void dflt_none(char *buf, size_t len) { snprintf(buf, len, "none"); }

static void dflt_rng(char *buf, size_t len) { snprintf(buf, len, "on"); }

static void dflt_console(char *buf, size_t len) { snprintf(buf, len, "off"); }

static void dflt_no_api(char *buf, size_t len) { snprintf(buf, len, "no API"); }

static void dflt_seccomp(char *buf, size_t len)
{
	snprintf(buf, len, "%s", seccomp_mode_name(seccomp_mode_get()));
}

/* Process-wide, like the API's --seccomp: every thread of this kiln installs its filter. */
static int set_seccomp(struct vm_config *c, const char *opt, const char *val, char *err,
		       size_t errlen)
{
	enum seccomp_mode m;
	struct cli_clip clip;

	(void)c;
	if (seccomp_mode_parse(val, &m))
		return cli_fail(err, errlen, "%s: '%s' is not on, log or off", opt,
				cli_clip(&clip, val));
	seccomp_mode_set(m);
	return 0;
}

static const struct opt opts[] = {
    {
	.name = "--kernel",
	.metavar = "PATH",
	.set = set_kernel,
	.help = "kernel image: vmlinux (ELF) or bzImage",
	.dflt = dflt_kernel,
    },
    {
	.name = "--initrd",
	.metavar = "PATH",
	.set = set_initrd,
	.help = "initrd or initramfs image",
	.dflt = dflt_initrd,
    },
    {
	.name = "--cmdline",
	.metavar = "STR",
	.set = set_cmdline,
	.empty_ok = true,
	.help = "kernel command line (\"\" for an empty one)",
	.dflt = dflt_cmdline,
    },
    {
	.name = "--cpus",
	.metavar = "N",
	.set = set_cpus,
	.help = "number of vCPUs, 1-" STR(VM_CONFIG_MAX_CPUS),
	.dflt = dflt_cpus,
    },
    {
	.name = "--memory",
	.metavar = "SIZE",
	.set = set_memory,
	.help = "guest RAM: a number of MiB, or a size with a B, K, M, G or T suffix\n"
		"(powers of 1024; KiB/KB also accepted, any case): at least 64 MiB,\n"
		"at most the host's RAM, a whole number of 4 KiB pages",
	.dflt = dflt_memory,
    },
    {
	.name = "--serial",
	.metavar = "MODE",
	.set = set_serial,
	.help = "guest serial port (COM1): stdio, file=PATH or off\n"
		"(write ',,' for a ',' in PATH). Output never holds up the guest: a\n"
		"reader too slow for it loses bytes (logged, and counted in the API's\n"
		"metrics)",
	.dflt = dflt_serial,
    },
    {
	.name = "--disk",
	.metavar = "LIST",
	.set = cli_set_disk,
	.repeatable = true,
	.help = "a virtio-blk disk (/dev/vda, vdb... in order), up to " STR(VM_CONFIG_MAX_DISKS) "; give\n"
		"--disk once per disk. LIST is key=value pairs separated by ',':\n"
		"  path=IMG          image file or block device (required)\n"
		"  readonly=on|off   read-only for the guest and opened O_RDONLY\n"
		"                    (needed for a file without write permission)\n"
		"  id=NAME           unique name [default: disk0, disk1...]\n"
		"  serial=STR        GET_ID string, at most " STR(VM_CONFIG_SERIAL_MAX) " bytes [default: id]\n"
		"  engine=uring|sync I/O engine [default: io_uring, else sync]\n"
		"  cache=writeback|unsafe  writeback: guest flushes are fdatasync; unsafe:\n"
		"                    no flush offered, nothing made durable\n"
		"The image is locked (flock): two VMs cannot use it read-write",
	.dflt = dflt_none,
    },
    {
	.name = "--net",
	.metavar = "LIST",
	.set = cli_set_net,
	.repeatable = true,
	.help = "a virtio-net interface (eth0, eth1... in order), up to " STR(VM_CONFIG_MAX_NETS) "; give --net\n"
		"once per interface. LIST is tap=NAME or user, then key=value pairs:\n"
		"  tap=NAME          attach an existing TAP device (made beforehand with\n"
		"                    'ip tuntap add dev NAME mode tap user USER')\n"
		"  user              user-mode networking through a passt process that kiln\n"
		"                    starts ($KILN_PASST, else the passt beside kiln, else\n"
		"                    passt in PATH), no root needed:\n"
		"                    NAT to the host's network, DHCP gives the guest\n"
		"                    10.0.2.15/24, gateway 10.0.2.2; DNS at 10.0.2.3 goes to\n"
		"                    the host's resolver\n"
		"  passt=PATH        user only: connect to the socket of a passt you started\n"
		"                    instead (its own options then set ports and loopback)\n"
		"  host_loopback=on|off  user only: 10.0.2.2 is also the host's 127.0.0.1,\n"
		"                    so its local-only services are open to the guest\n"
		"                    [default: off]\n"
		"  hostfwd=FWD[,FWD...]  user only: host ports forwarded to the guest, each\n"
		"                    tcp:[HOSTADDR]:PORT-[GUESTADDR]:PORT (or udp:); an empty\n"
		"                    HOSTADDR listens on every address, GUESTADDR is empty\n"
		"                    or 10.0.2.15; each host port once\n"
		"  mac=MAC           xx:xx:xx:xx:xx:xx [default: made from the id, the same\n"
		"                    on every run]\n"
		"  mtu=N             the guest's MTU, 68-65535 (user: 65520) [default: 1500]\n"
		"  id=NAME           unique name [default: net0, net1...]",
	.dflt = dflt_none,
    },
    {
	.name = "--rng",
	.metavar = "on|off",
	.set = cli_set_rng,
	.help = "virtio-rng entropy device (the guest's /dev/hwrng)",
	.dflt = dflt_rng,
    },
    {
	.name = "--console",
	.metavar = "MODE",
	.set = cli_set_console,
	.help = "virtio-console, the guest's /dev/hvc0: off, stdio or file=PATH\n"
		"(file: output only). With stdio, terminal input goes to hvc0 and\n"
		"the serial port only writes to stdout; --serial stdio too is an error.\n"
		"As for --serial, a reader too slow for the output loses bytes",
	.dflt = dflt_console,
    },
    {
	.name = "--seccomp",
	.metavar = "on|log|off",
	.set = set_seccomp,
	.help = "seccomp allowlists, one per thread (docs/security.md). on: a system\n"
		"call outside them stops kiln with a line naming it; log: it goes\n"
		"through and the kernel logs it (dmesg); off: no filters",
	.dflt = dflt_seccomp,
    },
    {
	/* Not the VM's: parse_one hands it to cli_parse_run_api's caller. */
	.name = "--api-sock",
	.metavar = "PATH",
	.help = "also serve the REST API (docs/api.md) on PATH, as `kiln api`\n"
		"does: `kiln snapshot --api-sock PATH` snapshots the VM, and\n"
		"PATCH /vm pauses it",
	.dflt = dflt_no_api,
    },
    {
	.name = "--help",
	.alias = "-h",
	.help = "print this help and exit",
    },
};

void cli_usage(FILE *out)
{
	char left[32], dflt[192];

	if (!out)
		return;
	fprintf(out, "Usage: kiln run [OPTIONS]\n\n"
		     "Boot a microVM: the kernel given with --kernel, or the default guest.\n"
		     "Give each option at most once (--disk once per disk), as --opt VALUE\n"
		     "or --opt=VALUE (the second form for a VALUE that starts with \"--\").\n\n"
		     "Options:\n");
	for (size_t i = 0; i < ARRAY_SIZE(opts); i++) {
		const struct opt *o = &opts[i];

		snprintf(left, sizeof(left), "%s%s%s%s%s", o->alias ? o->alias : "",
			 o->alias ? ", " : "", o->name, o->metavar ? " " : "",
			 o->metavar ? o->metavar : "");
		fprintf(out, "  %-16s ", left);
		for (const char *p = o->help; *p; p++) {
			fputc(*p, out);
			if (*p == '\n')
				fprintf(out, "%19s", "");
		}
		if (o->dflt) {
			o->dflt(dflt, sizeof(dflt));
			fprintf(out, "\n%19s[default: %s]", "", dflt);
		}
		fputc('\n', out);
	}
}

/* The option named by arg ("--cpus" or "--cpus=4"), or NULL. */
static const struct opt *find_opt(const char *arg, size_t namelen)
{
	for (size_t i = 0; i < ARRAY_SIZE(opts); i++) {
		if (strlen(opts[i].name) == namelen && !strncmp(opts[i].name, arg, namelen))
			return &opts[i];
	}
	return NULL;
}

static bool starts_with_dashdash(const char *s) { return s[0] == '-' && s[1] == '-'; }

/* Handle argv[*i]; may consume argv[*i + 1] as the value. Returns 0, 1 (help) or -errno. */
static int parse_one(int argc, char **argv, int *i, bool *seen, struct vm_config *c,
		     const char **api_sock, FILE *out, char *err, size_t errlen)
{
	const char *arg = argv[*i], *eq, *val;
	const struct opt *o;
	struct cli_clip cl;
	size_t namelen;

	if (!starts_with_dashdash(arg)) {
		for (o = opts; o < opts + ARRAY_SIZE(opts); o++) {
			if (o->alias && !strcmp(o->alias, arg)) {
				eq = NULL;
				goto found;
			}
		}
		if (arg[0] == '-' && arg[1])
			return cli_fail(err, errlen, "unknown option '%s'", cli_clip(&cl, arg));
		return cli_fail(err, errlen, "unexpected argument '%s'", cli_clip(&cl, arg));
	}
	eq = strchr(arg, '=');
	namelen = eq ? (size_t)(eq - arg) : strlen(arg);
	o = find_opt(arg, namelen);
	if (!o) {
		char name[CLI_CLIP + 4];

		snprintf(name, sizeof(name), "%.*s%s", (int)MIN(namelen, CLI_CLIP), arg,
			 namelen > CLI_CLIP ? "..." : "");
		return cli_fail(err, errlen, "unknown option '%s'", name);
	}
found:
	if (!o->metavar) {
		if (eq)
			return cli_fail(err, errlen, "%s takes no value", o->name);
		cli_usage(out);
		return 1;
	}
	if (seen[o - opts] && !o->repeatable)
		return cli_fail(err, errlen, "%s given twice", o->name);
	seen[o - opts] = true;
	if (eq) {
		val = eq + 1;
	} else {
		if (*i + 1 >= argc || !argv[*i + 1] || starts_with_dashdash(argv[*i + 1]))
			return cli_fail(err, errlen, "%s: missing value", o->name);
		val = argv[++*i];
	}
	if (!*val && !o->empty_ok)
		return cli_fail(err, errlen, "%s: empty value", o->name);
	if (!o->set) {
		*api_sock = val;
		return 0;
	}
	return o->set(c, o->name, val, err, errlen);
}

int cli_parse_run(int argc, char **argv, struct vm_config *c, FILE *out, char *err, size_t errlen)
{
	const char *api_sock = NULL;
	int ret = cli_parse_run_api(argc, argv, c, &api_sock, out, err, errlen);

	if (ret == 0 && api_sock) {
		vm_config_free(c);
		vm_config_init(c);
		ret = cli_fail(err, errlen, "--api-sock: this caller serves no API");
	}
	return ret;
}

int cli_parse_run_api(int argc, char **argv, struct vm_config *c, const char **api_sock,
		      FILE *out, char *err, size_t errlen)
{
	bool seen[ARRAY_SIZE(opts)] = {false};
	struct cli_clip cl;
	int i, ret = 0;

	vm_config_init(c);
	*api_sock = NULL;
	if (err && errlen)
		err[0] = '\0';
	for (i = 0; i < argc && argv[i] && !ret; i++) {
		if (!strcmp(argv[i], "--")) {
			/* End of options; nothing positional is accepted after it either. */
			if (i + 1 < argc && argv[i + 1])
				ret = cli_fail(err, errlen, "unexpected argument '%s'",
					   cli_clip(&cl, argv[i + 1]));
			break;
		}
		ret = parse_one(argc, argv, &i, seen, c, api_sock, out, err, errlen);
	}
	if (!ret)
		ret = cli_check_devices(c, seen[find_opt("--serial", 8) - opts], err, errlen);
	if (!ret)
		ret = vm_config_validate(c, err, errlen);
	if (ret == -ENOMEM)
		cli_fail(err, errlen, "out of memory while parsing options");
	if (ret) {
		vm_config_free(c);
		vm_config_init(c);
		*api_sock = NULL;
	}
	return ret;
}
