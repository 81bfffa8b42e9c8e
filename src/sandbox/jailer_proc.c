/* jailer_proc.c: the jailer's process steps: inherited fds, the session, the PID namespace and
 * the fork for it or --daemonize, the pid file, rlimits, the privilege drop and the exec. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sandbox/jailer.h"

#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_CLEAR_ALL 4
#endif

#define KILN_API_ID_MAX 63 /* `kiln api --id` takes 1-63 characters */

void jail_close_inherited_fds(void)
{
	DIR *d;
	struct dirent *e;
	int fds[256], n;

#ifdef SYS_close_range
	if (syscall(SYS_close_range, 3u, ~0u, 0u) == 0)
		return;
#endif
	/* Older kernels: close what /proc/self/fd lists, a batch at a time (closing while
	 * reading the directory would skip entries). */
	do {
		n = 0;
		d = opendir("/proc/self/fd");
		if (!d)
			return;
		while ((e = readdir(d)) && n < (int)ARRAY_SIZE(fds)) {
			int fd = atoi(e->d_name);
			if (fd > 2 && fd != dirfd(d))
				fds[n++] = fd;
		}
		closedir(d);
		for (int i = 0; i < n; i++)
			close(fds[i]);
	} while (n == (int)ARRAY_SIZE(fds));
}

/* No supplementary groups, uid and gid all three of each, and no capability in any set: the
 * bounding set is emptied while the process still may (CAP_SETPCAP), ambient ones cleared, and
 * after setresuid the rest (inheritable survives a uid change) set to zero explicitly. */
static int drop_privileges(struct jail *j)
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {0};
	uid_t uid = j->o->uid;
	gid_t gid = j->o->gid;

	if (setgroups(0, NULL))
		return jail_fail(j, errno, "setgroups (drop supplementary groups)");
	if (setresgid(gid, gid, gid))
		return jail_fail(j, errno, "setresgid %u", (unsigned)gid);
	for (unsigned long cap = 0; cap < 64; cap++) {
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == 0)
			continue;
		if (errno == EINVAL)
			break; /* past the kernel's last capability */
		return jail_fail(j, errno, "prctl(PR_CAPBSET_DROP, %lu)", cap);
	}
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) && errno != EINVAL)
		return jail_fail(j, errno, "prctl(PR_CAP_AMBIENT_CLEAR_ALL)");
	if (setresuid(uid, uid, uid))
		return jail_fail(j, errno, "setresuid %u", (unsigned)uid);
	j->dropped = true;
	if (syscall(SYS_capset, &hdr, data))
		return jail_fail(j, errno, "capset (clear all capabilities)");
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		return jail_fail(j, errno, "prctl(PR_SET_NO_NEW_PRIVS)");
	return 0;
}

static bool has_id(char **args, int n)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(args[i], "--id") || !strncmp(args[i], "--id=", 5))
			return true;
	return false;
}

/* The last steps, in the process that becomes kiln: stdio, rlimits, the drop, the exec of
 * /<exec name> with the arguments after `--`. Returns only on failure. */
static int exec_kiln(struct jail *j)
{
	const struct jail_opts *o = j->o;
	struct rlimit nofile = {o->nofile, o->nofile}, fsize = {o->fsize, o->fsize};
	char path[NAME_MAX + 2], **argv, *envp[] = {NULL};
	int i = 0, k = 0, ret;

	if (j->devnull_fd >= 0) {
		for (int fd = 0; fd < 3; fd++)
			if (dup2(j->devnull_fd, fd) < 0)
				return jail_fail(j, errno, "daemonize: stdio to /dev/null");
		close(j->devnull_fd);
	}
	if (setrlimit(RLIMIT_NOFILE, &nofile))
		return jail_fail(j, errno, "--resource-limit no-file=%llu (setrlimit)",
				 (unsigned long long)o->nofile);
	if (o->have_fsize && setrlimit(RLIMIT_FSIZE, &fsize))
		return jail_fail(j, errno, "--resource-limit fsize=%llu (setrlimit)",
				 (unsigned long long)o->fsize);
	argv = calloc((size_t)o->n_args + 5, sizeof(*argv));
	if (!argv)
		return jail_fail(j, ENOMEM, "exec");
	snprintf(path, sizeof(path), "/%s", o->exec_name);
	argv[k++] = path;
	/* Firecracker's callers pass the VMM's options only: kiln serves them as `kiln api`. */
	argv[k++] = o->n_args == 0 || o->args[0][0] == '-' ? "api" : o->args[i++];
	if ((!strcmp(argv[1], "api") || !strcmp(argv[1], "restore")) &&
	    strlen(o->id) <= KILN_API_ID_MAX &&
	    !has_id(o->args + i, o->n_args - i)) {
		argv[k++] = "--id";
		argv[k++] = (char *)o->id;
	}
	while (i < o->n_args)
		argv[k++] = o->args[i++];
	ret = drop_privileges(j);
	if (!ret) {
		execve(path, argv, envp);
		ret = jail_fail(j, errno, "exec %s in the jail", path);
	}
	free(argv);
	return ret;
}

static int write_pid_file(struct jail *j, pid_t pid)
{
	char name[NAME_MAX + 8], buf[24], what[NAME_MAX + 64];

	snprintf(name, sizeof(name), "/%s.pid", j->o->exec_name);
	snprintf(buf, sizeof(buf), "%d", (int)pid);
	snprintf(what, sizeof(what), "write the pid file %s in the jail", name);
	int fd = open(name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return jail_fail(j, errno, "%s", what);
	close(fd);
	return jail_write_file(j, AT_FDCWD, name, buf, what);
}

static volatile pid_t kiln_child;

static void forward_signal(int sig)
{
	if (kiln_child > 0)
		kill(kiln_child, sig);
}

/* The parent of a forked kiln: learns from the pipe whether the exec happened (the child
 * writes its error line there; a clean EOF means exec), then exits (--daemonize) or waits
 * and passes kiln's status on (--new-pid-ns alone). A failure before the exec is returned
 * for the undo, which the parent can still do: it kept its privileges. */
static int parent(struct jail *j, pid_t pid, int rfd)
{
	static const int sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT};
	struct sigaction sa = {.sa_handler = forward_signal};
	char msg[JAIL_ERR_LEN] = "";
	size_t got = 0;
	ssize_t n;
	int status, ret;

	kiln_child = pid;
	for (unsigned i = 0; !j->o->daemonize && i < ARRAY_SIZE(sigs); i++)
		sigaction(sigs[i], &sa, NULL);
	ret = write_pid_file(j, pid);
	if (ret)
		kill(pid, SIGKILL);
	while (got < sizeof(msg) - 1 && (n = read(rfd, msg + got, sizeof(msg) - 1 - got)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		got += (size_t)n;
	}
	close(rfd);
	if (ret || got) {
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		if (!ret)
			snprintf(j->err, sizeof(j->err), "%s", msg);
		return ret ? ret : -EIO;
	}
	if (j->o->daemonize)
		return 0;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return jail_fail(j, errno, "wait for kiln (pid %d)", (int)pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int jail_launch(struct jail *j)
{
	const struct jail_opts *o = j->o;
	int pfd[2], ret;
	pid_t pid;

	if (!o->daemonize && !o->new_pid_ns) {
		/* kiln keeps the jailer's pid, as with Firecracker's jailer. A process-group
		 * leader (a shell's foreground job) cannot start a session: it keeps its own. */
		if (setsid() < 0 && !(errno == EPERM && getpgrp() == getpid()))
			return jail_fail(j, errno, "setsid");
		ret = write_pid_file(j, getpid());
		return ret ? ret : exec_kiln(j);
	}
	if (pipe2(pfd, O_CLOEXEC))
		return jail_fail(j, errno, "pipe");
	if (o->new_pid_ns && unshare(CLONE_NEWPID)) {
		ret = jail_fail(j, errno, "--new-pid-ns: unshare(CLONE_NEWPID)");
		goto close_pipe;
	}
	pid = fork();
	if (pid < 0) {
		ret = jail_fail(j, errno, "fork");
		goto close_pipe;
	}
	if (pid == 0) {
		/* kiln to be: pid 1 of the new namespace with --new-pid-ns */
		close(pfd[0]);
		ret = setsid() < 0 ? jail_fail(j, errno, "setsid") : exec_kiln(j);
		if (write(pfd[1], j->err, strlen(j->err)) < 0) {
			/* the parent sees EOF and a dead child; nothing better to do */
		}
		_exit(127);
	}
	close(pfd[1]);
	return parent(j, pid, pfd[0]);
close_pipe:
	close(pfd[0]);
	close(pfd[1]);
	return ret;
}
