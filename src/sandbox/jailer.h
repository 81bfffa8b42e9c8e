/* jailer.h: `kiln jailer`, a Firecracker-compatible jailer: its flags, the jail it builds and
 * the undo list that removes what it built when a later step fails (docs/design.md, "Jailer"). */
#pragma once

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/resource.h>
#include <sys/types.h>

#include "util/compiler.h"

#define JAIL_ID_MAX 64	    /* Firecracker's rule: 1-64 of A-Z a-z 0-9 - */
#define JAIL_MAX_CGROUPS 32 /* --cgroup KEY=VALUE given at most this often */
#define JAIL_MAX_CG_DIRS 16 /* cgroup hierarchies (v1 mounts) one jail can touch */
#define JAIL_MAX_UNDO 64
#define JAIL_ERR_LEN 640

/* One --cgroup KEY=VALUE: KEY is a file of the controller named before its first dot. */
struct jail_cgroup_kv {
	char file[128];
	const char *value;
	char controller[128];
	unsigned dir; /* index into jail_opts.cg_dirs */
};

/* Where a cgroup for the jail goes: one per v1 hierarchy touched, one for v2. */
struct jail_cg_dir {
	char mount[PATH_MAX]; /* the hierarchy's mount point */
	char controller[128]; /* one of its controllers (v1), to find it in /proc/self/cgroup */
};

struct jail_opts {
	const char *id;
	const char *exec_file;
	const char *chroot_base; /* default /srv/jailer */
	const char *netns;
	const char *parent_cgroup; /* default: the exec file's name, like Firecracker */
	uid_t uid;
	gid_t gid;
	int cgroup_version; /* 1 (default) or 2 */
	struct jail_cgroup_kv cgroups[JAIL_MAX_CGROUPS];
	unsigned n_cgroups;
	struct jail_cg_dir cg_dirs[JAIL_MAX_CG_DIRS];
	unsigned n_cg_dirs;
	bool cg_join_parent; /* v2 without --cgroup: join an existing parent cgroup (Firecracker) */
	rlim_t fsize, nofile; /* RLIM_INFINITY when not given; nofile defaults to 2048 */
	bool have_fsize;
	bool daemonize, new_pid_ns;
	char **args; /* after `--` */
	int n_args;
	/* derived by validation */
	char exec_path[PATH_MAX]; /* the exec file, canonical */
	const char *exec_name;	  /* its basename: the copy is /<exec_name> inside the jail */
	char base_path[PATH_MAX]; /* the chroot base, made absolute */
	char root_path[PATH_MAX]; /* <base>/<exec_name>/<id>/root */
};

/* A step the jailer took that a failure must undo. Directories are removed through a file
 * descriptor of their parent, so the undo works after pivot_root has hidden the host paths. */
enum jail_undo_kind {
	JAIL_UNDO_RMDIR,  /* an empty directory (one the jailer made on the way) */
	JAIL_UNDO_RMTREE, /* the jail's own <id> directory and all inside it */
	JAIL_UNDO_CGROUP, /* a cgroup this process joined: fd is the cgroup.procs to go back to */
};

struct jail_undo {
	enum jail_undo_kind kind;
	int fd;
	char name[NAME_MAX + 1];
};

struct jail {
	struct jail_opts *o;
	struct jail_undo undo[JAIL_MAX_UNDO];
	unsigned n_undo;
	int netns_fd;	/* -1 without --netns */
	int devnull_fd; /* -1 without --daemonize */
	int uffd_minor; /* /dev/userfaultfd's misc minor, -1 where the host has none */
	bool dropped;	/* past setresuid: no privilege left to undo anything */
	char err[JAIL_ERR_LEN];
};

/* jailer.c */
int jail_fail(struct jail *j, int errnum, const char *fmt, ...) __printf(3, 4) __must_check;
int jail_undo_push(struct jail *j, enum jail_undo_kind kind, int dirfd,
		   const char *name) __must_check;
void jail_undo_all(struct jail *j);
int jail_write_file(struct jail *j, int dirfd, const char *name, const char *value,
		    const char *what) __must_check;

/* jailer_fs.c: the chroot directory, the copy, pivot_root, the device nodes */
int jail_fs_validate(struct jail_opts *o, char *err, size_t errlen) __must_check;
int jail_fs_create(struct jail *j) __must_check;
int jail_fs_enter(struct jail *j) __must_check;
int jail_fs_populate(struct jail *j) __must_check;
void jail_rmtree_at(int dirfd, const char *name);
int jail_mkdir_p(struct jail *j, const char *path) __must_check;
int jail_userfaultfd_minor(void);

/* jailer_cgroup.c: cgroups v1 and v2 */
int jail_cgroup_parse(struct jail_opts *o, const char *kv, char *err, size_t errlen) __must_check;
int jail_cgroup_validate(struct jail_opts *o, char *err, size_t errlen) __must_check;
int jail_cgroup_apply(struct jail *j) __must_check;

/* jailer_proc.c: fds, rlimits, namespaces, the launch, the privilege drop and the exec */
void jail_close_inherited_fds(void);
int jail_launch(struct jail *j) __must_check;

int jailer_main(int argc, char **argv);
