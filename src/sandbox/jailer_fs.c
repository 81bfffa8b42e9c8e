/* jailer_fs.c: the jail's directory <base>/<exec name>/<id>/root, the copy of the executable,
 * pivot_root into it and the device nodes kiln needs there. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "sandbox/jailer.h"

#define JAIL_DIR_MODE 0700 /* the jail's own directories, owned by uid:gid (Firecracker's) */
#define JAIL_DEV_MODE 0600 /* its device nodes, likewise */

int jail_fs_validate(struct jail_opts *o, char *err, size_t errlen)
{
	char id_dir[PATH_MAX];
	struct stat st;
	int n;

	if (realpath(o->chroot_base, o->base_path)) {
		if (stat(o->base_path, &st) || !S_ISDIR(st.st_mode)) {
			snprintf(err, errlen, "--chroot-base-dir: %.300s is not a directory",
				 o->chroot_base);
			return -ENOTDIR;
		}
	} else if (errno == ENOENT && o->chroot_base[0] == '/' && !strstr(o->chroot_base, "/..") &&
		   strlen(o->chroot_base) < sizeof(o->base_path)) {
		snprintf(o->base_path, sizeof(o->base_path), "%s", o->chroot_base); /* made later */
	} else {
		snprintf(err, errlen, "--chroot-base-dir: %.300s: %s", o->chroot_base,
			 errno == ENOENT ? "does not exist (an absolute path is made)"
					 : strerror(errno));
		return -EINVAL;
	}
	n = snprintf(id_dir, sizeof(id_dir), "%s/%s/%s", o->base_path, o->exec_name, o->id);
	if (n < 0 || (size_t)n + sizeof("/root/") + strlen(o->exec_name) >= sizeof(id_dir)) {
		snprintf(err, errlen, "--chroot-base-dir: %.300s: path too long", o->chroot_base);
		return -ENAMETOOLONG;
	}
	if (lstat(id_dir, &st) == 0 || errno != ENOENT) {
		snprintf(err, errlen, "--id: the chroot %.400s already exists (one jail per id)",
			 id_dir);
		return -EEXIST;
	}
	if (snprintf(o->root_path, sizeof(o->root_path), "%s/root", id_dir) >=
	    (int)sizeof(o->root_path))
		return -ENAMETOOLONG; /* checked above */
	return 0;
}

/* mkdir -p, each directory it makes put on the undo list; returns an O_PATH fd of path. */
int jail_mkdir_p(struct jail *j, const char *path)
{
	char buf[PATH_MAX], *comp, *save = NULL;
	int dirfd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);

	snprintf(buf, sizeof(buf), "%s", path);
	for (comp = strtok_r(buf, "/", &save); comp && dirfd >= 0;
	     comp = strtok_r(NULL, "/", &save)) {
		int next;

		if (mkdirat(dirfd, comp, 0755) == 0) {
			int keep = fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
			if (keep < 0 || jail_undo_push(j, JAIL_UNDO_RMDIR, keep, comp)) {
				unlinkat(dirfd, comp, AT_REMOVEDIR);
				if (keep >= 0)
					close(keep);
				close(dirfd);
				return keep < 0 ? jail_fail(j, errno, "dup") : -ENOSPC;
			}
		} else if (errno != EEXIST) {
			int e = errno;
			close(dirfd);
			return jail_fail(j, e, "mkdir %s (at '%s')", path, comp);
		}
		next = openat(dirfd, comp, O_PATH | O_DIRECTORY | O_CLOEXEC);
		close(dirfd);
		dirfd = next;
	}
	if (dirfd < 0)
		return jail_fail(j, errno, "open %s", path);
	return dirfd;
}

/* The copy is the jail's own (Firecracker's reason: no memory shared with other VMMs' text). */
static int copy_exec(struct jail *j, int rootfd)
{
	const struct jail_opts *o = j->o;
	char buf[65536];
	struct stat st;
	int src, dst, ret = 0;
	ssize_t n;

	src = open(o->exec_path, O_RDONLY | O_CLOEXEC);
	if (src < 0 || fstat(src, &st))
		return jail_fail(j, errno, "copy %s", o->exec_path);
	dst = openat(rootfd, o->exec_name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		     0700);
	if (dst < 0) {
		close(src);
		return jail_fail(j, errno, "copy %s to %s/%s", o->exec_path, o->root_path,
				 o->exec_name);
	}
	while ((n = read(src, buf, sizeof(buf))) > 0) {
		for (ssize_t off = 0; off < n;) {
			ssize_t w = write(dst, buf + off, (size_t)(n - off));
			if (w < 0) {
				n = -1;
				break;
			}
			off += w;
		}
		if (n < 0)
			break;
	}
	if (n < 0 || fchmod(dst, st.st_mode & 0755) || fchown(dst, o->uid, o->gid))
		ret = jail_fail(j, errno, "copy %s to %s/%s", o->exec_path, o->root_path,
				o->exec_name);
	close(dst);
	close(src);
	return ret;
}

int jail_fs_create(struct jail *j)
{
	const struct jail_opts *o = j->o;
	char parent[PATH_MAX];
	struct statvfs sv;
	int pfd, idfd, rootfd, keep, ret;

	if (snprintf(parent, sizeof(parent), "%s/%s", o->base_path, o->exec_name) >=
	    (int)sizeof(parent))
		return jail_fail(j, ENAMETOOLONG, "chroot %s", o->base_path);
	pfd = jail_mkdir_p(j, parent);
	if (pfd < 0)
		return pfd;
	if (mkdirat(pfd, o->id, 0755)) {
		ret = jail_fail(j, errno, "chroot: mkdir %s/%s", parent, o->id);
		close(pfd);
		return ret;
	}
	keep = pfd; /* the undo list owns it now */
	ret = jail_undo_push(j, JAIL_UNDO_RMTREE, keep, o->id);
	if (ret) {
		unlinkat(pfd, o->id, AT_REMOVEDIR);
		close(pfd);
		return ret;
	}
	idfd = openat(pfd, o->id, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (idfd < 0)
		return jail_fail(j, errno, "chroot: open %s/%s", parent, o->id);
	if (mkdirat(idfd, "root", JAIL_DIR_MODE)) {
		ret = jail_fail(j, errno, "chroot: mkdir %s", o->root_path);
		close(idfd);
		return ret;
	}
	rootfd = openat(idfd, "root", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	close(idfd);
	if (rootfd < 0)
		return jail_fail(j, errno, "chroot: open %s", o->root_path);
	/* An exec that fails after the uid drop could not undo the jail: refuse a noexec mount. */
	if (fstatvfs(rootfd, &sv) == 0 && (sv.f_flag & ST_NOEXEC))
		ret = jail_fail(j, EACCES, "chroot: %s is on a noexec mount", o->root_path);
	else
		ret = copy_exec(j, rootfd);
	close(rootfd);
	return ret;
}

/* Firecracker's sequence: a mount namespace of our own, every mount private, the jail root
 * bind-mounted on itself (pivot_root wants a mount point), pivot_root, the old root detached
 * and removed, chroot for good measure. */
int jail_fs_enter(struct jail *j)
{
	const char *root = j->o->root_path;

	if (unshare(CLONE_NEWNS))
		return jail_fail(j, errno, "unshare(CLONE_NEWNS)");
	if (mount(NULL, "/", NULL, MS_PRIVATE | MS_REC, NULL))
		return jail_fail(j, errno, "make mounts private");
	if (mount(root, root, NULL, MS_BIND | MS_REC, NULL))
		return jail_fail(j, errno, "bind-mount %s on itself", root);
	if (chdir(root))
		return jail_fail(j, errno, "chdir %s", root);
	if (mkdir("old_root", 0700))
		return jail_fail(j, errno, "mkdir %s/old_root", root);
	if (syscall(SYS_pivot_root, ".", "old_root"))
		return jail_fail(j, errno, "pivot_root to %s", root);
	if (chdir("/"))
		return jail_fail(j, errno, "chdir / in the jail");
	if (umount2("old_root", MNT_DETACH))
		return jail_fail(j, errno, "detach the old root");
	if (rmdir("old_root"))
		return jail_fail(j, errno, "rmdir /old_root in the jail");
	if (chroot("."))
		return jail_fail(j, errno, "chroot into %s", root);
	return 0;
}

static int own(struct jail *j, const char *path, mode_t mode)
{
	if (chown(path, j->o->uid, j->o->gid) || chmod(path, mode))
		return jail_fail(j, errno, "chown/chmod %s in the jail", path);
	return 0;
}

static int make_dev(struct jail *j, const char *path, unsigned major, unsigned minor)
{
	if (mknod(path, S_IFCHR | JAIL_DEV_MODE, makedev(major, minor)))
		return jail_fail(j, errno, "mknod %s (%u,%u) in the jail", path, major, minor);
	return own(j, path, JAIL_DEV_MODE);
}

/* Inside the jail: its directories and device nodes, owned by the uid kiln will run as so that
 * it can make its API socket in / and open the devices after the drop. */
int jail_fs_populate(struct jail *j)
{
	static const char *const dirs[] = {"/dev", "/dev/net", "/run"};
	int ret = own(j, "/", JAIL_DIR_MODE);

	for (unsigned i = 0; !ret && i < ARRAY_SIZE(dirs); i++) {
		if (mkdir(dirs[i], JAIL_DIR_MODE))
			return jail_fail(j, errno, "mkdir %s in the jail", dirs[i]);
		ret = own(j, dirs[i], JAIL_DIR_MODE);
	}
	if (!ret)
		ret = make_dev(j, "/dev/kvm", 10, 232);
	if (!ret)
		ret = make_dev(j, "/dev/net/tun", 10, 200);
	if (!ret && j->uffd_minor >= 0)
		ret = make_dev(j, "/dev/userfaultfd", 10, (unsigned)j->uffd_minor);
	return ret;
}

/* rm -rf name under dirfd, not following symbolic links; best effort (the undo path). */
void jail_rmtree_at(int dirfd, const char *name)
{
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct dirent *e;
	DIR *d;

	if (fd >= 0) {
		d = fdopendir(fd);
		if (!d) {
			close(fd);
		} else {
			while ((e = readdir(d)))
				if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") &&
				    unlinkat(fd, e->d_name, 0) && errno == EISDIR)
					jail_rmtree_at(fd, e->d_name);
			closedir(d);
		}
	}
	unlinkat(dirfd, name, AT_REMOVEDIR);
}

/* userfaultfd is a misc device with a dynamic minor: the host's /proc/misc has it, if any. */
int jail_userfaultfd_minor(void)
{
	FILE *f = fopen("/proc/misc", "re");
	char name[64];
	int minor, found = -1;

	if (!f)
		return -1;
	while (fscanf(f, "%d %63s", &minor, name) == 2)
		if (!strcmp(name, "userfaultfd"))
			found = minor;
	fclose(f);
	return found;
}
