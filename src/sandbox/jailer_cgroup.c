/* jailer_cgroup.c: the jail's cgroup: v1, a directory per hierarchy touched; v2, one directory
 * in the unified hierarchy with its controllers enabled down the path; values, then the pid. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sandbox/jailer.h"

int jail_cgroup_parse(struct jail_opts *o, const char *kv, char *err, size_t errlen)
{
	const char *eq = strchr(kv, '='), *dot = strchr(kv, '.');
	struct jail_cgroup_kv *c;

	/* Firecracker's rule: exactly one '=', a value, and a file name, not a path. */
	if (!eq || eq == kv || !eq[1] || strchr(eq + 1, '=') || !dot || dot > eq || dot == kv ||
	    dot + 1 == eq || memchr(kv, '/', (size_t)(eq - kv)) ||
	    (size_t)(eq - kv) >= sizeof(c->file)) {
		snprintf(err, errlen,
			 "--cgroup: '%.200s' is not CONTROLLER.FILE=VALUE (memory.max=256M)", kv);
		return -EINVAL;
	}
	if (o->n_cgroups == JAIL_MAX_CGROUPS) {
		snprintf(err, errlen, "--cgroup: more than %d given", JAIL_MAX_CGROUPS);
		return -E2BIG;
	}
	c = &o->cgroups[o->n_cgroups++];
	snprintf(c->file, sizeof(c->file), "%.*s", (int)(eq - kv), kv);
	snprintf(c->controller, sizeof(c->controller), "%.*s", (int)(dot - kv), kv);
	c->value = eq + 1;
	return 0;
}

/* Is word one of the comma-separated items of list? */
static bool in_list(const char *list, const char *word, char sep)
{
	size_t n = strlen(word);

	for (const char *p = list; p; p = strchr(p, sep), p = p ? p + 1 : NULL)
		if (!strncmp(p, word, n) && (p[n] == sep || p[n] == '\0' || p[n] == '\n'))
			return true;
	return false;
}

/* The mount point of the v1 hierarchy with this controller, or of the v2 one (controller
 * NULL), from /proc/mounts. */
static int find_mount(const char *controller, char *out, size_t outlen)
{
	char dev[64], dir[PATH_MAX], type[32], opts[512];
	FILE *f = fopen("/proc/mounts", "re");
	int ret = -ENOENT;

	if (!f)
		return -errno;
	while (ret && fscanf(f, "%63s %4095s %31s %511s %*d %*d", dev, dir, type, opts) == 4) {
		if (controller ? !strcmp(type, "cgroup") && in_list(opts, controller, ',')
			       : !strcmp(type, "cgroup2")) {
			snprintf(out, outlen, "%s", dir);
			ret = 0;
		}
	}
	fclose(f);
	return ret;
}

static int read_small(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return 0;
}

static bool parent_cgroup_valid(const char *p)
{
	if (!*p || *p == '/')
		return false;
	for (const char *c = p; c; c = strchr(c, '/'), c = c ? c + 1 : NULL) {
		size_t n = strcspn(c, "/");
		if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
			return false;
	}
	return true;
}

int jail_cgroup_validate(struct jail_opts *o, char *err, size_t errlen)
{
	char mount[PATH_MAX], path[PATH_MAX * 2], avail[512] = "";
	struct stat st;

	if (!parent_cgroup_valid(o->parent_cgroup) || strlen(o->parent_cgroup) > 1024) {
		snprintf(err, errlen,
			 "--parent-cgroup: '%.200s' is not a relative path without "
			 "'.' or '..'",
			 o->parent_cgroup);
		return -EINVAL;
	}
	if (o->cgroup_version == 2 && o->n_cgroups == 0) {
		/* Firecracker: join <v2>/<parent> when it exists; make nothing. */
		if (find_mount(NULL, mount, sizeof(mount)) == 0) {
			snprintf(path, sizeof(path), "%s/%s/cgroup.procs", mount, o->parent_cgroup);
			if (access(path, F_OK) == 0) {
				snprintf(o->cg_dirs[0].mount, sizeof(o->cg_dirs[0].mount), "%s",
					 mount);
				o->cg_join_parent = true;
			}
		}
		return 0;
	}
	if (o->cgroup_version == 2 && o->n_cgroups) {
		if (find_mount(NULL, mount, sizeof(mount))) {
			snprintf(err, errlen,
				 "--cgroup-version 2: no cgroup2 hierarchy is mounted");
			return -ENOENT;
		}
		snprintf(path, sizeof(path), "%s/cgroup.controllers", mount);
		read_small(path, avail, sizeof(avail));
		avail[strcspn(avail, "\n")] = '\0';
	}
	for (unsigned i = 0; i < o->n_cgroups; i++) {
		struct jail_cgroup_kv *c = &o->cgroups[i];
		unsigned d;

		if (o->cgroup_version == 1 && find_mount(c->controller, mount, sizeof(mount))) {
			snprintf(err, errlen,
				 "--cgroup %s: no cgroup v1 hierarchy has controller '%s'", c->file,
				 c->controller);
			return -ENOENT;
		}
		if (o->cgroup_version == 2 && !in_list(avail, c->controller, ' ')) {
			snprintf(
			    err, errlen,
			    "--cgroup %s: controller '%s' is not in the cgroup v2 hierarchy at "
			    "%.300s (it has: %s)",
			    c->file, c->controller, mount, *avail ? avail : "none");
			return -ENOENT;
		}
		for (d = 0; d < o->n_cg_dirs; d++)
			if (!strcmp(o->cg_dirs[d].mount, mount))
				break;
		if (d == o->n_cg_dirs) {
			if (d == JAIL_MAX_CG_DIRS) {
				snprintf(err, errlen, "--cgroup: too many hierarchies");
				return -E2BIG;
			}
			snprintf(o->cg_dirs[d].mount, sizeof(o->cg_dirs[d].mount), "%s", mount);
			memcpy(o->cg_dirs[d].controller, c->controller, sizeof(c->controller));
			o->n_cg_dirs++;
			snprintf(path, sizeof(path), "%s/%s/%s", mount, o->parent_cgroup, o->id);
			if (lstat(path, &st) == 0 || errno != ENOENT) {
				snprintf(err, errlen, "--id: the cgroup %.400s already exists",
					 path);
				return -EEXIST;
			}
		}
		c->dir = d;
	}
	return 0;
}

/* This process's cgroup.procs in the hierarchy at d (from /proc/self/cgroup), opened to go
 * back to on a failure: a cgroup with a member cannot be removed. */
static int open_own_procs(const struct jail_opts *o, const struct jail_cg_dir *d)
{
	char line[PATH_MAX + 128], path[PATH_MAX * 2];
	FILE *f = fopen("/proc/self/cgroup", "re");
	int fd = -1;

	while (f && fd < 0 && fgets(line, sizeof(line), f)) {
		char *ctrls = strchr(line, ':'), *rel = ctrls ? strchr(ctrls + 1, ':') : NULL;
		if (!rel)
			continue;
		*rel++ = '\0';
		rel[strcspn(rel, "\n")] = '\0';
		if (o->cgroup_version == 2 ? ctrls[1] == '\0'
					   : in_list(ctrls + 1, d->controller, ',')) {
			snprintf(path, sizeof(path), "%s%s/cgroup.procs", d->mount, rel);
			fd = open(path, O_WRONLY | O_CLOEXEC);
		}
	}
	if (f)
		fclose(f);
	if (fd < 0) { /* the root always takes a process */
		snprintf(path, sizeof(path), "%s/cgroup.procs", d->mount);
		fd = open(path, O_WRONLY | O_CLOEXEC);
	}
	return fd;
}

static int join(struct jail *j, const struct jail_cg_dir *d, const char *dir)
{
	char pid[24], what[PATH_MAX * 2 + 32];
	int fd = open_own_procs(j->o, d), dirfd, ret;

	if (fd < 0)
		return jail_fail(j, errno, "cgroup: open this process's cgroup.procs under %s",
				 d->mount);
	if (jail_undo_push(j, JAIL_UNDO_CGROUP, fd, NULL)) {
		close(fd);
		return -ENOSPC;
	}
	dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return jail_fail(j, errno, "cgroup: open %s", dir);
	snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	snprintf(what, sizeof(what), "cgroup: add pid %d to %s", (int)getpid(), dir);
	ret = jail_write_file(j, dirfd, "cgroup.procs", pid, what);
	close(dirfd);
	return ret;
}

/* v1 cpuset: a new cgroup starts with no cpus and mems, and takes no process until it has
 * some; copy the parent's down every level of rel (Firecracker does the same). */
static int cpuset_inherit(struct jail *j, const char *mount, const char *rel)
{
	static const char *const files[] = {"cpuset.cpus", "cpuset.mems"};
	char parent[PATH_MAX * 2], child[PATH_MAX * 2], val[4096], what[PATH_MAX * 3];
	size_t at = 0;

	snprintf(parent, sizeof(parent), "%s", mount);
	while (rel[at]) {
		at += strcspn(rel + at, "/");
		snprintf(child, sizeof(child), "%s/%.*s", mount, (int)at, rel);
		for (unsigned i = 0; i < ARRAY_SIZE(files); i++) {
			char p[PATH_MAX * 2 + 16], c[PATH_MAX * 2 + 16];
			int cfd, ret;

			snprintf(c, sizeof(c), "%s/%s", child, files[i]);
			if (read_small(c, val, sizeof(val)) || val[strspn(val, " \n")] != '\0')
				continue; /* not a cpuset hierarchy, or already set */
			snprintf(p, sizeof(p), "%s/%s", parent, files[i]);
			if (read_small(p, val, sizeof(val)))
				return jail_fail(j, errno, "cgroup: read %s", p);
			cfd = open(child, O_PATH | O_DIRECTORY | O_CLOEXEC);
			snprintf(what, sizeof(what), "cgroup: write %s", c);
			ret = cfd < 0 ? jail_fail(j, errno, "cgroup: open %s", child)
				      : jail_write_file(j, cfd, files[i], val, what);
			if (cfd >= 0)
				close(cfd);
			if (ret)
				return ret;
		}
		snprintf(parent, sizeof(parent), "%s", child);
		if (rel[at] == '/')
			at++;
	}
	return 0;
}

/* v2: "+controller" into cgroup.subtree_control of every cgroup from the root down to the
 * jail's parent, so that the jail's own cgroup has the controller's files. */
static int v2_enable(struct jail *j, const char *mount, const char *controller)
{
	const char *rel = j->o->parent_cgroup;
	char dir[PATH_MAX * 2], what[PATH_MAX * 2 + 96], plus[80];
	size_t at = 0;

	snprintf(plus, sizeof(plus), "+%s\n", controller);
	snprintf(dir, sizeof(dir), "%s", mount);
	for (;;) {
		int fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC), ret;

		snprintf(what, sizeof(what), "cgroup: enable %s in %s/cgroup.subtree_control",
			 controller, dir);
		ret = fd < 0 ? jail_fail(j, errno, "%s", what)
			     : jail_write_file(j, fd, "cgroup.subtree_control", plus, what);
		if (fd >= 0)
			close(fd);
		if (ret || !rel[at])
			return ret;
		at += strcspn(rel + at, "/");
		snprintf(dir, sizeof(dir), "%s/%.*s", mount, (int)at, rel);
		if (rel[at] == '/')
			at++;
	}
}

static int apply_dir(struct jail *j, unsigned d)
{
	const struct jail_opts *o = j->o;
	const struct jail_cg_dir *cd = &o->cg_dirs[d];
	char parent[PATH_MAX * 2], dir[PATH_MAX * 2 + 80], what[PATH_MAX * 3];
	int pfd, dirfd, keep, ret = 0;

	snprintf(parent, sizeof(parent), "%s/%s", cd->mount, o->parent_cgroup);
	pfd = jail_mkdir_p(j, parent);
	if (pfd < 0)
		return pfd;
	snprintf(dir, sizeof(dir), "%s/%s", parent, o->id);
	if (mkdirat(pfd, o->id, 0755)) {
		ret = jail_fail(j, errno, "cgroup: mkdir %s", dir);
		close(pfd);
		return ret;
	}
	keep = pfd;
	if (jail_undo_push(j, JAIL_UNDO_RMDIR, keep, o->id)) {
		unlinkat(pfd, o->id, AT_REMOVEDIR);
		close(pfd);
		return -ENOSPC;
	}
	if (o->cgroup_version == 1) {
		snprintf(what, sizeof(what), "%s/%s", o->parent_cgroup, o->id);
		ret = cpuset_inherit(j, cd->mount, what);
	}
	for (unsigned i = 0; !ret && o->cgroup_version == 2 && i < o->n_cgroups; i++) {
		bool seen = false;
		for (unsigned k = 0; k < i; k++)
			seen |= !strcmp(o->cgroups[k].controller, o->cgroups[i].controller);
		if (!seen)
			ret = v2_enable(j, cd->mount, o->cgroups[i].controller);
	}
	if (ret)
		return ret;
	dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return jail_fail(j, errno, "cgroup: open %s", dir);
	for (unsigned i = 0; !ret && i < o->n_cgroups; i++) {
		const struct jail_cgroup_kv *c = &o->cgroups[i];
		if (c->dir != d)
			continue;
		snprintf(what, sizeof(what), "cgroup: write %s=%s to %s", c->file, c->value, dir);
		ret = jail_write_file(j, dirfd, c->file, c->value, what);
	}
	close(dirfd);
	return ret ? ret : join(j, cd, dir);
}

int jail_cgroup_apply(struct jail *j)
{
	const struct jail_opts *o = j->o;
	char dir[PATH_MAX * 2];
	int ret = 0;

	if (o->cg_join_parent) {
		snprintf(dir, sizeof(dir), "%s/%s", o->cg_dirs[0].mount, o->parent_cgroup);
		return join(j, &o->cg_dirs[0], dir);
	}
	for (unsigned d = 0; !ret && d < o->n_cg_dirs; d++)
		ret = apply_dir(j, d);
	return ret;
}
