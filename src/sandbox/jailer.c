/* jailer.c: `kiln jailer`: Firecracker's jailer flags, their validation, the sequence of steps
 * and the undo of what the steps made when a later one fails. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kiln-build.h"
#include "sandbox/jailer.h"

static void jailer_usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: kiln jailer --id ID --exec-file FILE --uid UID --gid GID [options] [-- ARGS]\n"
	    "\n"
	    "Builds a jail for one kiln (Firecracker's jailer, docs/design.md \"Jailer\"): makes\n"
	    "<chroot-base>/<exec-file name>/<ID>/root, copies FILE in, applies cgroups and "
	    "rlimits,\n"
	    "pivots into the directory, makes /dev/kvm, /dev/net/tun and /dev/userfaultfd there,\n"
	    "joins the network namespace, drops to UID:GID with no capabilities and execs the "
	    "copy\n"
	    "with ARGS (`api` is put first when ARGS start with an option, and `--id ID` is added\n"
	    "for `api` and `restore` like Firecracker's jailer adds it). Run it as root.\n"
	    "\n"
	    "  --id ID                  the jail's id: 1-64 of A-Z a-z 0-9 -\n"
	    "  --exec-file FILE         the kiln binary (statically linked) to copy and run\n"
	    "  --uid UID, --gid GID     the numeric ids kiln runs as\n"
	    "  --chroot-base-dir DIR    where jails are made (default /srv/jailer)\n"
	    "  --netns PATH             join this network namespace (e.g. /var/run/netns/NAME)\n"
	    "  --cgroup-version 1|2     the cgroup hierarchy to use (default 1)\n"
	    "  --cgroup FILE=VALUE      write VALUE to FILE in the jail's cgroup (repeatable; the\n"
	    "                           controller is FILE up to its first dot: memory.max=...)\n"
	    "  --parent-cgroup PATH     the jail's cgroup is <hierarchy>/PATH/ID (default: the\n"
	    "                           exec file's name)\n"
	    "  --resource-limit R=N     fsize=BYTES or no-file=N (repeatable; no-file defaults\n"
	    "                           to 2048)\n"
	    "  --daemonize              detach: new session, stdio on /dev/null\n"
	    "  --new-pid-ns             run kiln as pid 1 of a new PID namespace\n"
	    "  --help, --version\n");
}

int jail_fail(struct jail *j, int errnum, const char *fmt, ...)
{
	va_list ap;
	size_t n;

	va_start(ap, fmt);
	vsnprintf(j->err, sizeof(j->err), fmt, ap);
	va_end(ap);
	n = strlen(j->err);
	if (errnum && n < sizeof(j->err))
		snprintf(j->err + n, sizeof(j->err) - n, ": %s", strerror(errnum));
	return -(errnum ? errnum : EINVAL);
}

int jail_undo_push(struct jail *j, enum jail_undo_kind kind, int dirfd, const char *name)
{
	struct jail_undo *u;

	if (j->n_undo == JAIL_MAX_UNDO)
		return jail_fail(j, ENOSPC, "jailer: too many steps to undo");
	u = &j->undo[j->n_undo++];
	u->kind = kind;
	u->fd = dirfd;
	snprintf(u->name, sizeof(u->name), "%s", name ? name : "");
	return 0;
}

/* Undo in reverse order: leave the cgroups first, then remove their directories, then the
 * jail's tree and the directories made on the way to it. Best effort: this runs on a failure
 * path and reports nothing more than the failure itself. */
void jail_undo_all(struct jail *j)
{
	char pid[24];

	snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	while (j->n_undo) {
		struct jail_undo *u = &j->undo[--j->n_undo];

		switch (u->kind) {
		case JAIL_UNDO_CGROUP:
			if (write(u->fd, pid, strlen(pid)) < 0) {
				/* the cgroup directory stays behind (EBUSY); nothing else to try */
			}
			break;
		case JAIL_UNDO_RMDIR:
			unlinkat(u->fd, u->name, AT_REMOVEDIR);
			break;
		case JAIL_UNDO_RMTREE:
			jail_rmtree_at(u->fd, u->name);
			break;
		}
		close(u->fd);
	}
}

int jail_write_file(struct jail *j, int dirfd, const char *name, const char *value,
		    const char *what)
{
	size_t len = strlen(value);
	int fd = openat(dirfd, name, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return jail_fail(j, errno, "%s", what);
	n = write(fd, value, len);
	if (n < 0 || (size_t)n != len) {
		int e = n < 0 ? errno : EIO;
		close(fd);
		return jail_fail(j, e, "%s", what);
	}
	close(fd);
	return 0;
}

/* Firecracker's instance id rule. */
static bool jail_id_valid(const char *id)
{
	size_t n = strlen(id);

	if (n == 0 || n > JAIL_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = id[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-'))
			return false;
	}
	return true;
}

/* A decimal number of digits only, at most max. */
static int parse_u64(const char *s, unsigned long long max, unsigned long long *out)
{
	unsigned long long v = 0;

	if (!*s)
		return -EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -EINVAL;
		if (v > (max - (unsigned)(*s - '0')) / 10)
			return -ERANGE;
		v = v * 10 + (unsigned)(*s - '0');
	}
	*out = v;
	return 0;
}

static int parse_rlimit(struct jail_opts *o, const char *arg, char *err, size_t errlen)
{
	const char *eq = strchr(arg, '=');
	unsigned long long v;

	if (!eq || parse_u64(eq + 1, RLIM_INFINITY - 1, &v)) {
		snprintf(err, errlen, "--resource-limit: '%s' is not fsize=N or no-file=N", arg);
		return -EINVAL;
	}
	if ((size_t)(eq - arg) == 5 && !strncmp(arg, "fsize", 5)) {
		o->fsize = v;
		o->have_fsize = true;
	} else if ((size_t)(eq - arg) == 7 && !strncmp(arg, "no-file", 7)) {
		o->nofile = v;
	} else {
		snprintf(err, errlen,
			 "--resource-limit: unknown resource '%.*s' (fsize or no-file)",
			 (int)(eq - arg), arg);
		return -EINVAL;
	}
	return 0;
}

/* Flags as `--flag VALUE` or `--flag=VALUE`; the first `--` ends them. Returns 1 for --help
 * and --version (already answered), 0, or -EINVAL with err set. */
static int jail_parse(struct jail_opts *o, int argc, char **argv, char *err, size_t errlen)
{
	enum { F_ID, F_EXEC, F_UID, F_GID, F_BASE, F_NETNS, F_CGVER, F_PARENT, F_N };
	static const char *const single[F_N] = {
	    [F_ID] = "--id",
	    [F_EXEC] = "--exec-file",
	    [F_UID] = "--uid",
	    [F_GID] = "--gid",
	    [F_BASE] = "--chroot-base-dir",
	    [F_NETNS] = "--netns",
	    [F_CGVER] = "--cgroup-version",
	    [F_PARENT] = "--parent-cgroup",
	};
	const char *vals[F_N] = {0};
	unsigned long long v;

	o->cgroup_version = 1;
	o->chroot_base = "/srv/jailer";
	o->fsize = RLIM_INFINITY;
	o->nofile = 2048; /* Firecracker's default */
	for (int i = 0; i < argc; i++) {
		const char *arg = argv[i], *eq = strchr(arg, '='), *val = NULL;
		size_t n = eq ? (size_t)(eq - arg) : strlen(arg);
		unsigned k;

		if (!strcmp(arg, "--")) {
			o->args = argv + i + 1;
			o->n_args = argc - i - 1;
			break;
		}
		if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
			jailer_usage(stdout);
			return 1;
		}
		if (!strcmp(arg, "--version")) {
			printf("kiln jailer %s\n", KILN_VERSION);
			return 1;
		}
		if (!strcmp(arg, "--daemonize") || !strcmp(arg, "--new-pid-ns")) {
			*(arg[2] == 'd' ? &o->daemonize : &o->new_pid_ns) = true;
			continue;
		}
		if (eq)
			val = eq + 1;
		else if (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0)
			val = argv[++i];
		if (n == 8 && !strncmp(arg, "--cgroup", n)) {
			if (!val || jail_cgroup_parse(o, val, err, errlen))
				goto bad_value;
			continue;
		}
		if (n == 16 && !strncmp(arg, "--resource-limit", n)) {
			if (!val || parse_rlimit(o, val, err, errlen))
				goto bad_value;
			continue;
		}
		for (k = 0; k < ARRAY_SIZE(single); k++)
			if (strlen(single[k]) == n && !strncmp(arg, single[k], n))
				break;
		if (k == ARRAY_SIZE(single) || strncmp(arg, "--", 2) != 0) {
			snprintf(err, errlen, "unknown option '%s' (try `kiln jailer --help`)",
				 arg);
			return -EINVAL;
		}
		if (!val || !*val) {
			snprintf(err, errlen, "%.*s needs a value", (int)n, arg);
			return -EINVAL;
		}
		if (vals[k]) {
			snprintf(err, errlen, "%.*s given twice", (int)n, arg);
			return -EINVAL;
		}
		vals[k] = val;
		continue;
	bad_value:
		if (!val)
			snprintf(err, errlen, "%.*s needs a value", (int)n, arg);
		return -EINVAL;
	}
	o->id = vals[F_ID];
	o->exec_file = vals[F_EXEC];
	if (!o->id || !o->exec_file || !vals[F_UID] || !vals[F_GID]) {
		snprintf(err, errlen, "%s is required",
			 !o->id		 ? "--id"
			 : !o->exec_file ? "--exec-file"
			 : !vals[F_UID]	 ? "--uid"
					 : "--gid");
		return -EINVAL;
	}
	if (!jail_id_valid(o->id)) {
		snprintf(err, errlen, "--id: '%.100s' is not valid (1-%d of A-Z a-z 0-9 -)", o->id,
			 JAIL_ID_MAX);
		return -EINVAL;
	}
	if (parse_u64(vals[F_UID], 0xfffffffeu, &v)) {
		snprintf(err, errlen, "--uid: '%.100s' is not a number (0-4294967294)",
			 vals[F_UID]);
		return -EINVAL;
	}
	o->uid = (uid_t)v;
	if (parse_u64(vals[F_GID], 0xfffffffeu, &v)) {
		snprintf(err, errlen, "--gid: '%.100s' is not a number (0-4294967294)",
			 vals[F_GID]);
		return -EINVAL;
	}
	o->gid = (gid_t)v;
	if (vals[F_BASE])
		o->chroot_base = vals[F_BASE];
	o->netns = vals[F_NETNS];
	if (vals[F_CGVER]) {
		if (strcmp(vals[F_CGVER], "1") && strcmp(vals[F_CGVER], "2")) {
			snprintf(err, errlen, "--cgroup-version: '%.100s' is not 1 or 2",
				 vals[F_CGVER]);
			return -EINVAL;
		}
		o->cgroup_version = vals[F_CGVER][0] - '0';
	}
	o->parent_cgroup = vals[F_PARENT];
	return 0;
}

/* Everything that can be checked before anything is made. */
static int jail_validate(struct jail_opts *o, char *err, size_t errlen)
{
	struct stat st;
	const char *slash;

	if (!realpath(o->exec_file, o->exec_path)) {
		snprintf(err, errlen, "--exec-file: %.300s: %s", o->exec_file, strerror(errno));
		return -EINVAL;
	}
	if (stat(o->exec_path, &st) || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "--exec-file: %.300s is not a regular file", o->exec_path);
		return -EINVAL;
	}
	slash = strrchr(o->exec_path, '/');
	o->exec_name = slash ? slash + 1 : o->exec_path;
	if (!o->parent_cgroup)
		o->parent_cgroup = o->exec_name;
	if (o->netns && stat(o->netns, &st)) {
		snprintf(err, errlen, "--netns: %.300s: %s", o->netns, strerror(errno));
		return -EINVAL;
	}
	if (o->netns && S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "--netns: %.300s is a directory", o->netns);
		return -EINVAL;
	}
	if (jail_fs_validate(o, err, errlen))
		return -EINVAL;
	return jail_cgroup_validate(o, err, errlen);
}

int jailer_main(int argc, char **argv)
{
	static struct jail_opts o; /* big (paths); one per process */
	struct jail j = {.o = &o, .netns_fd = -1, .devnull_fd = -1};
	char err[JAIL_ERR_LEN] = "";
	int ret;

	ret = jail_parse(&o, argc, argv, err, sizeof(err));
	if (ret == 1)
		return 0;
	if (ret == 0)
		ret = jail_validate(&o, err, sizeof(err));
	if (ret) {
		fprintf(stderr, "kiln jailer: %s\n", err);
		return 1;
	}

	/* Nothing of the caller's reaches kiln: no descriptor beyond stdio, no environment. */
	jail_close_inherited_fds();
	if (clearenv()) {
		fprintf(stderr, "kiln jailer: clearing the environment failed\n");
		return 1;
	}
	if (o.netns) {
		j.netns_fd = open(o.netns, O_RDONLY | O_CLOEXEC);
		if (j.netns_fd < 0) {
			fprintf(stderr, "kiln jailer: --netns: %s: %s\n", o.netns, strerror(errno));
			return 1;
		}
	}
	if (o.daemonize) {
		j.devnull_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (j.devnull_fd < 0) {
			fprintf(stderr, "kiln jailer: /dev/null: %s\n", strerror(errno));
			return 1;
		}
	}
	j.uffd_minor = jail_userfaultfd_minor(); /* /proc/misc is out of sight once jailed */

	ret = jail_fs_create(&j);
	if (!ret)
		ret = jail_cgroup_apply(&j);
	if (!ret)
		ret = jail_fs_enter(&j);
	if (!ret)
		ret = jail_fs_populate(&j);
	if (!ret && j.netns_fd >= 0 && setns(j.netns_fd, CLONE_NEWNET))
		ret = jail_fail(&j, errno, "join network namespace %s (setns)", o.netns);
	if (!ret)
		ret = jail_launch(&j); /* returns only on failure, or in a waiting parent */
	if (ret < 0) {
		if (j.dropped) {
			fprintf(stderr,
				"kiln jailer: %s (after the uid drop: remove %s and its "
				"cgroups by hand)\n",
				j.err, o.root_path);
			return 1;
		}
		jail_undo_all(&j);
		fprintf(stderr, "kiln jailer: %s\n", j.err);
		return 1;
	}
	return ret;
}
