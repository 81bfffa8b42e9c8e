/* passt_spawn.c: start a passt (Debian's passt package) for a user-mode interface, wait until
 * it is ready, relay what it prints to kiln's log, and reap it.
 *
 * Readiness: passt writes its pid file once its sockets are bound and it has confined itself
 * (namespaces, seccomp), right before its main loop. kiln points --pid at a FIFO in a private
 * directory, writable by the user passt runs as (passt leaves root for "nobody", and then
 * cannot open kiln's /proc/self/fd): the pid arriving means ready; passt exiting first (its
 * pidfd) means it failed, and its last line of output says why (a forwarded port in use, a
 * bad option...).
 */
#include "backends/passt.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/clock.h"
#include "util/log.h"

extern char **environ;

/* ---- the command line ----------------------------------------------------------------------- */

struct argv_builder {
	char *store;
	size_t used, cap;
	const char **argv;
	unsigned n;
};

static int add_arg(struct argv_builder *b, const char *fmt, ...) __printf(2, 3);
static int add_arg(struct argv_builder *b, const char *fmt, ...)
{
	va_list ap;
	int len;

	if (b->n + 1 >= PASST_MAX_ARGS)
		return -E2BIG;
	va_start(ap, fmt);
	len = vsnprintf(b->store + b->used, b->cap - b->used, fmt, ap);
	va_end(ap);
	if (len < 0 || (size_t)len >= b->cap - b->used)
		return -E2BIG;
	b->argv[b->n++] = b->store + b->used;
	b->argv[b->n] = NULL;
	b->used += (size_t)len + 1;
	return 0;
}

int passt_build_argv(const char *bin, const struct net_config *cfg, const char *ready_path,
		     const char *runas, char *store, size_t storelen, const char **argv,
		     char *err, size_t errlen)
{
	struct argv_builder b = {.store = store, .cap = storelen, .argv = argv};
	struct net_hostfwd fwd[VM_CONFIG_MAX_HOSTFWD];
	char why[200], addr[INET_ADDRSTRLEN];
	unsigned nfwd = 0;
	int ret = 0;

	if (cfg->hostfwd && vm_config_parse_hostfwd(cfg->hostfwd, fwd, &nfwd, why, sizeof(why))) {
		snprintf(err, errlen, "%s", why);
		return -EINVAL;
	}
	/* --foreground: kiln's child, ended with its socket. --quiet: errors only once running.
	 * IPv4 only, with the addresses kiln has always given a user-mode guest. DNS: queries to
	 * 10.0.2.3 go to the host's first resolver; DHCP offers the host's resolvers. */
	ret |= add_arg(&b, "%s", bin);
	ret |= add_arg(&b, "--foreground");
	ret |= add_arg(&b, "--quiet");
	ret |= add_arg(&b, "--fd=3");
	ret |= add_arg(&b, "--pid=%s", ready_path);
	if (runas)
		ret |= add_arg(&b, "--runas=%s", runas);
	ret |= add_arg(&b, "--ipv4-only");
	/* Every address is given below, so passt needs no interface of the host's to copy them
	 * from: naming the loopback one lets it start where there is no default route (an
	 * isolated host, a network namespace). Outbound traffic still follows the host's
	 * routes. passt's own MAC, else copied from that interface, is fixed. */
	ret |= add_arg(&b, "--interface=lo");
	ret |= add_arg(&b, "--mac-addr=" PASST_MAC);
	ret |= add_arg(&b, "--address=" PASST_GUEST_ADDR);
	ret |= add_arg(&b, "--netmask=" PASST_PREFIX_LEN);
	ret |= add_arg(&b, "--gateway=" PASST_GATEWAY);
	ret |= add_arg(&b, "--dns-forward=" PASST_DNS);
	ret |= add_arg(&b, "--mtu=%u", cfg->mtu ? cfg->mtu : VM_CONFIG_DEFAULT_MTU);
	/* Without the opt-in, the gateway is not the host's loopback: services bound to
	 * 127.0.0.1 on the host stay out of the guest's reach. */
	if (!cfg->host_loopback)
		ret |= add_arg(&b, "--no-map-gw");
	for (unsigned i = 0; i < nfwd; i++) {
		const char *opt = fwd[i].udp ? "--udp-ports" : "--tcp-ports";
		struct in_addr a = {.s_addr = fwd[i].host_addr};

		if (fwd[i].host_addr) {
			inet_ntop(AF_INET, &a, addr, sizeof(addr));
			ret |= add_arg(&b, "%s=%s/%u:%u", opt, addr, fwd[i].host_port,
				       fwd[i].guest_port);
		} else {
			ret |= add_arg(&b, "%s=%u:%u", opt, fwd[i].host_port, fwd[i].guest_port);
		}
	}
	if (ret) {
		snprintf(err, errlen, "passt's command line is too long");
		return -E2BIG;
	}
	return 0;
}

/* ---- output and exit ------------------------------------------------------------------------ */

/* passt tries the system logger too and complains where there is none: not worth a line. */
static bool noise(const char *line) { return strstr(line, "to syslog") != NULL; }

/* Take what passt printed (up to 4 KiB per call); each whole line goes to the log at level,
 * and the last one stays in ch->last for an error message. Returns false at end of file. */
static bool relay_output(struct passt_child *ch, enum log_level level)
{
	char buf[4096];
	ssize_t n = read(ch->err_fd, buf, sizeof(buf));

	if (n <= 0)
		return n < 0 && (errno == EAGAIN || errno == EINTR);
	for (ssize_t i = 0; i < n; i++) {
		char c = buf[i];

		if (c != '\n') {
			if (ch->line_len + 1 < sizeof(ch->line))
				ch->line[ch->line_len++] = (c >= 0x20 && c < 0x7f) ? c : '?';
			continue;
		}
		ch->line[ch->line_len] = '\0';
		ch->line_len = 0;
		if (!ch->line[0] || noise(ch->line))
			continue;
		log_msg(level, __FILE__, __LINE__, "%s: %s", ch->name, ch->line);
		memcpy(ch->last, ch->line, sizeof(ch->last));
	}
	return true;
}

static void describe_status(int status, char *buf, size_t len)
{
	if (WIFEXITED(status))
		snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, len, "was killed by signal %d (%s)", WTERMSIG(status),
			 strsignal(WTERMSIG(status)));
	else
		snprintf(buf, len, "ended (status 0x%x)", (unsigned)status);
}

/* Reap the child if it has exited; wait up to ms for it. Returns true once reaped. */
static bool reap(struct passt_child *ch, int ms, char *how, size_t howlen)
{
	uint64_t deadline = clock_ms() + (uint64_t)ms;
	int status;

	if (ch->reaped || !ch->pid)
		return true;
	for (;;) {
		pid_t r = waitpid(ch->pid, &status, WNOHANG);

		if (r == ch->pid || (r < 0 && errno == ECHILD)) {
			ch->reaped = true;
			if (r == ch->pid)
				describe_status(status, how, howlen);
			else
				snprintf(how, howlen, "ended");
			return true;
		}
		if (r < 0 && errno != EINTR)
			return false;
		if (clock_ms() >= deadline)
			return false;
		usleep(1000);
	}
}

/* Stop watching one of the child's fds and close it. */
static void child_drop_fd(struct passt_child *ch, int *fd)
{
	if (*fd < 0)
		return;
	if (ch->ev)
		event_del(ch->ev, *fd);
	close(*fd);
	*fd = -1;
}

static void child_closefds(struct passt_child *ch)
{
	child_drop_fd(ch, &ch->pidfd);
	child_drop_fd(ch, &ch->err_fd);
}

void passt_child_stop(struct passt_child *ch)
{
	char how[96];

	if (ch->pid && !reap(ch, 200, how, sizeof(how))) {
		kill(ch->pid, SIGTERM);
		if (!reap(ch, 500, how, sizeof(how))) {
			kill(ch->pid, SIGKILL);
			(void)reap(ch, 1000, how, sizeof(how));
		}
	}
	child_closefds(ch);
}

static void on_output(void *opaque, uint32_t events)
{
	struct passt_child *ch = opaque;

	if (!relay_output(ch, LOG_WARN))
		child_drop_fd(ch, &ch->err_fd);
}

static void on_exit_event(void *opaque, uint32_t events)
{
	struct passt_child *ch = opaque;
	char how[96] = "ended";

	if (ch->err_fd >= 0)
		while (relay_output(ch, LOG_WARN) && ch->err_fd >= 0) {
			struct pollfd p = {.fd = ch->err_fd, .events = POLLIN};
			if (poll(&p, 1, 0) <= 0)
				break;
		}
	(void)reap(ch, 100, how, sizeof(how));
	log_err("%s %s", ch->name, how);
	child_drop_fd(ch, &ch->pidfd);
}

int passt_child_watch(struct passt_child *ch)
{
	int ret = 0;

	if (ch->err_fd >= 0)
		ret = event_add(ch->ev, ch->err_fd, EPOLLIN, on_output, ch);
	if (!ret && ch->pidfd >= 0)
		ret = event_add(ch->ev, ch->pidfd, EPOLLIN, on_exit_event, ch);
	return ret;
}

/* ---- start ---------------------------------------------------------------------------------- */

/* A FIFO for passt's pid file, in a new directory only its owner can list, writable by the
 * user passt runs as: root's passt becomes "nobody" (runas is then "UID:GID"). */
struct ready_fifo {
	char dir[128], path[144], runas[32];
	int fd;
};

static int ready_fifo_make(struct ready_fifo *f, char *err, size_t errlen)
{
	const char *tmp = getenv("TMPDIR");
	uid_t uid = geteuid();
	gid_t gid = getegid();

	f->fd = -1;
	f->runas[0] = '\0';
	if (!tmp || !*tmp || strlen(tmp) > 80)
		tmp = "/tmp";
	snprintf(f->dir, sizeof(f->dir), "%s/kiln-passt.XXXXXX", tmp);
	if (!mkdtemp(f->dir)) {
		snprintf(err, errlen, "passt: mkdtemp %s: %s", f->dir, strerror(errno));
		f->dir[0] = '\0';
		return -errno;
	}
	snprintf(f->path, sizeof(f->path), "%s/ready", f->dir);
	if (uid == 0) {
		struct passwd *pw = getpwnam("nobody");

		uid = pw ? pw->pw_uid : 65534;
		gid = pw ? pw->pw_gid : 65534;
		snprintf(f->runas, sizeof(f->runas), "%u:%u", (unsigned)uid, (unsigned)gid);
	}
	/* Owner kiln's uid, group passt's: passt opens it either before its --runas drop, as a
	 * root whose capabilities (CAP_DAC_OVERRIDE among them) are already gone (passt 2025),
	 * or after it (passt 2023). */
	if (chmod(f->dir, 0711) || mkfifo(f->path, 0600) || chown(f->path, geteuid(), gid) ||
	    chmod(f->path, 0620) || /* not through mkfifo: the umask would take g+w away */
	    (f->fd = open(f->path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)) < 0) {
		snprintf(err, errlen, "passt: FIFO %s: %s", f->path, strerror(errno));
		return -errno;
	}
	return 0;
}

static void ready_fifo_remove(struct ready_fifo *f)
{
	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
	if (f->dir[0]) {
		unlink(f->path);
		rmdir(f->dir);
		f->dir[0] = '\0';
	}
}

/* Wait for the pid in the FIFO, relaying output meanwhile. Returns 0 (ready), -ECHILD (passt
 * exited first), -ETIMEDOUT. */
static int wait_ready(struct passt_child *ch, int ready_fd)
{
	uint64_t deadline = clock_ms() + PASST_START_MS;
	bool out_open = true;

	for (;;) {
		struct pollfd p[3] = {{.fd = ready_fd, .events = POLLIN},
				      {.fd = out_open ? ch->err_fd : -1, .events = POLLIN},
				      {.fd = ch->pidfd, .events = POLLIN}};
		uint64_t now = clock_ms();
		char buf[32];
		int r;

		if (now >= deadline)
			return -ETIMEDOUT;
		r = poll(p, 3, (int)MIN(deadline - now, 100));
		if (r < 0 && errno != EINTR)
			return -errno;
		if (p[0].revents & POLLIN && read(ready_fd, buf, sizeof(buf)) > 0)
			return 0;
		if (p[1].revents)
			out_open = relay_output(ch, LOG_DEBUG);
		/* Exited: by its pidfd, else (no pidfd_open) by its output's end. */
		if (p[2].revents || (ch->pidfd < 0 && !out_open)) {
			while (out_open && relay_output(ch, LOG_DEBUG) && poll(&p[1], 1, 100) > 0)
				;
			return -ECHILD;
		}
	}
}

/* Find bin (a path, or a name looked up in PATH) as an executable file; into path. */
static int find_bin(const char *bin, char *path, size_t len)
{
	const char *dirs = getenv("PATH");

	if (strchr(bin, '/')) {
		snprintf(path, len, "%s", bin);
		return access(path, X_OK) ? -errno : 0;
	}
	if (!dirs || !*dirs)
		dirs = "/usr/local/bin:/usr/bin:/bin";
	for (const char *d = dirs; *d;) {
		const char *end = strchrnul(d, ':');

		snprintf(path, len, "%.*s/%s", (int)(end - d), end == d ? "." : d, bin);
		if (!access(path, X_OK))
			return 0;
		d = *end ? end + 1 : end;
	}
	return -ENOENT;
}

/* The child between vfork() and execve(): it shares kiln's memory, so only system calls, no
 * libc state. Default signal actions and an empty mask (kiln blocks signals for its
 * signalfd), a process group of its own (a ^C on kiln's terminal does not reach passt),
 * stdin /dev/null, stdout and stderr to out, the stream socket at 3, and nothing else:
 * every other fd kiln has (or inherited) is closed. */
static __noreturn void child(const char *path, const char *const *argv, int sock, int out,
			     volatile int *exec_errno)
{
	struct {
		void *handler;
		unsigned long flags;
		void *restorer;
		uint64_t mask;
	} dfl = {.handler = SIG_DFL};
	uint64_t none = 0;
	int null;

	for (int sig = 1; sig <= 64; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			syscall(SYS_rt_sigaction, sig, &dfl, NULL, sizeof(dfl.mask));
	syscall(SYS_setpgid, 0, 0);
	null = (int)syscall(SYS_openat, AT_FDCWD, "/dev/null", O_RDONLY);
	if (null < 0 || syscall(SYS_dup2, null, 0) < 0 || syscall(SYS_dup2, out, 1) < 0 ||
	    syscall(SYS_dup2, out, 2) < 0 || syscall(SYS_dup2, sock, 3) < 0)
		goto fail;
	if (syscall(SYS_close_range, 4, ~0U, 0) < 0)
		for (int fd = 4; fd < 65536; fd++) /* kernels before 5.9 */
			syscall(SYS_close, fd);
	syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, NULL, sizeof(none));
	syscall(SYS_execve, path, argv, environ);
fail:
	*exec_errno = errno;
	syscall(SYS_exit, 127);
	__builtin_unreachable();
}

/* Start bin with argv. Returns 0, or a positive errno (exec failed: not found, not allowed). */
static int spawn(const char *bin, const char *const *argv, int sock, int out_w, pid_t *pid)
{
	volatile int exec_errno = 0;
	char path[PATH_MAX];
	sigset_t all, old;
	int hi[2] = {-1, -1}, ret;

	ret = find_bin(bin, path, sizeof(path));
	if (ret)
		return -ret;
	/* Above 3 first, so that placing them at 1-3 cannot overwrite one another. */
	hi[0] = fcntl(sock, F_DUPFD_CLOEXEC, 10);
	hi[1] = fcntl(out_w, F_DUPFD_CLOEXEC, 10);
	if (hi[0] < 0 || hi[1] < 0) {
		ret = errno;
		goto out;
	}
	/* No signal handler of kiln's may run in the child while it shares kiln's memory. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	*pid = vfork();
	if (*pid == 0)
		child(path, argv, hi[0], hi[1], &exec_errno);
	ret = *pid < 0 ? errno : 0;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!ret && exec_errno) { /* the child has exited: reap it */
		ret = exec_errno;
		while (waitpid(*pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
out:
	for (unsigned i = 0; i < 2; i++)
		if (hi[i] >= 0)
			close(hi[i]);
	return ret;
}

/* The passt to run: $KILN_PASST, else a passt beside kiln's own executable (the build puts
 * the passt that scripts/passt.sh builds there), else passt in PATH. */
static const char *passt_binary(char *buf, size_t len)
{
	const char *env = getenv("KILN_PASST");
	ssize_t n;
	char *slash;

	if (env && *env)
		return env;
	n = readlink("/proc/self/exe", buf, len - 1);
	if (n > 0 && (size_t)n < len - sizeof("passt")) {
		buf[n] = '\0';
		slash = strrchr(buf, '/');
		if (slash) {
			memcpy(slash + 1, "passt", sizeof("passt"));
			if (!access(buf, X_OK))
				return buf;
		}
	}
	return "passt";
}

int passt_spawn(const struct net_config *cfg, int sock, struct event_loop *ev,
		struct passt_child *ch, char *err, size_t errlen)
{
	char path[PATH_MAX];
	const char *bin = passt_binary(path, sizeof(path));
	const char *argv[PASST_MAX_ARGS];
	struct ready_fifo fifo = {.fd = -1};
	char store[2048], how[96];
	int out[2] = {-1, -1}, ret;

	memset(ch, 0, sizeof(*ch));
	ch->pidfd = ch->err_fd = -1;
	ret = ready_fifo_make(&fifo, err, errlen);
	if (!ret)
		ret = passt_build_argv(bin, cfg, fifo.path, fifo.runas[0] ? fifo.runas : NULL,
				       store, sizeof(store), argv, err, errlen);
	if (ret)
		goto fail;
	if (pipe2(out, O_CLOEXEC)) {
		ret = -errno;
		snprintf(err, errlen, "passt: pipe: %s", strerror(errno));
		goto fail;
	}
	ret = spawn(bin, argv, sock, out[1], &ch->pid);
	close(out[1]);
	out[1] = -1;
	if (ret) {
		snprintf(err, errlen, "cannot run %s: %s%s", bin, strerror(ret),
			 ret == ENOENT ? " (install Debian's passt package, or point KILN_PASST "
					 "at one)"
				       : "");
		ch->pid = 0;
		ret = -ret;
		goto fail;
	}
	ch->err_fd = out[0];
	out[0] = -1;
	(void)fcntl(ch->err_fd, F_SETFL, O_NONBLOCK);
	ch->pidfd = (int)syscall(SYS_pidfd_open, ch->pid, 0);
	snprintf(ch->name, sizeof(ch->name), "net '%s': passt (pid %d)", cfg->id, (int)ch->pid);
	ret = wait_ready(ch, fifo.fd);
	if (ret == -ECHILD) {
		(void)reap(ch, 1000, how, sizeof(how));
		snprintf(err, errlen, "passt %s at start%s%s", ch->reaped ? how : "ended",
			 ch->last[0] ? ": " : "", ch->last);
		goto fail;
	}
	if (ret) {
		snprintf(err, errlen, "passt did not become ready within %u ms (%s)",
			 PASST_START_MS, strerror(-ret));
		goto fail;
	}
	ready_fifo_remove(&fifo);
	ch->ev = ev;
	log_info("%s is ready", ch->name);
	return 0;

fail:
	ready_fifo_remove(&fifo);
	for (unsigned i = 0; i < 2; i++)
		if (out[i] >= 0)
			close(out[i]);
	passt_child_stop(ch); /* nothing is in the event loop yet (ch->ev is NULL) */
	return ret ? ret : -EIO;
}
