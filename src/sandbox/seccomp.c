/* seccomp.c: install the allowlists that tools/seccomp_gen.c compiled at build time, and the
 * SIGSYS handler that turns a call outside them into one line and a stop. */
#include <errno.h>
#include <linux/kvm.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/ucontext.h>
#include <unistd.h>

#include "kiln-build.h"
#include "sandbox/seccomp.h"
#include "util/log.h"

static enum seccomp_mode g_mode = SECCOMP_MODE_ON;
static _Thread_local char t_name[16]; /* the calling thread's name for the stop line */

static const char *const mode_names[] = { [SECCOMP_MODE_ON] = "on", [SECCOMP_MODE_LOG] = "log",
					   [SECCOMP_MODE_OFF] = "off" };

int seccomp_mode_parse(const char *s, enum seccomp_mode *out)
{
	for (unsigned i = 0; i < ARRAY_SIZE(mode_names); i++)
		if (!strcmp(s, mode_names[i])) {
			*out = (enum seccomp_mode)i;
			return 0;
		}
	return -EINVAL;
}

void seccomp_mode_set(enum seccomp_mode m) { g_mode = m; }
enum seccomp_mode seccomp_mode_get(void) { return g_mode; }
const char *seccomp_mode_name(enum seccomp_mode m) { return mode_names[m]; }

/* Async-signal-safe: a string into buf at *n. */
static void put(char *buf, size_t cap, size_t *n, const char *s)
{
	while (*s && *n + 1 < cap)
		buf[(*n)++] = *s++;
}

static void put_uint(char *buf, size_t cap, size_t *n, unsigned long v, unsigned base)
{
	char d[24];
	int k = 0;
	do
		d[k++] = "0123456789abcdef"[v % base];
	while ((v /= base) && k < (int)sizeof(d));
	while (k && *n + 1 < cap)
		buf[(*n)++] = d[--k];
}

/* A call outside the thread's list (SECCOMP_RET_TRAP): say which, on stderr and in the log,
 * and end the process. Only write(2) and exit_group(2), which every list allows. */
static void on_sigsys(int sig, siginfo_t *si, void *uc)
{
	char line[256];
	size_t n = 0;
	unsigned nr = (unsigned)si->si_syscall;
	int log_fd = log_get_fd();
	const greg_t *r = ((ucontext_t *)uc)->uc_mcontext.gregs;

	(void)sig;
	put(line, sizeof(line), &n, "kiln: seccomp: thread ");
	put(line, sizeof(line), &n, t_name[0] ? t_name : "?");
	put(line, sizeof(line), &n, " made system call ");
	put_uint(line, sizeof(line), &n, nr, 10);
	put(line, sizeof(line), &n, " (");
	put(line, sizeof(line), &n,
	    nr < seccomp_nr_syscall_names && seccomp_syscall_names[nr] ? seccomp_syscall_names[nr]
								      : "unknown");
	/* The first two arguments (an ioctl's request, an fcntl's command) name the rule. */
	put(line, sizeof(line), &n, ", arguments 0x");
	put_uint(line, sizeof(line), &n, (unsigned long)r[REG_RDI], 16);
	put(line, sizeof(line), &n, ", 0x");
	put_uint(line, sizeof(line), &n, (unsigned long)r[REG_RSI], 16);
	put(line, sizeof(line), &n, "), which its allowlist does not allow: stopping "
				    "(--seccomp log lets such calls through and logs them)\n");
	(void)!write(2, line, n);
	if (log_fd != 2 && log_fd >= 0)
		(void)!write(log_fd, line, n);
	syscall(SYS_exit_group, 128 + SIGSYS);
}

/* At every install, not once per process: one system call per thread, and a SIGSYS handler
 * that something else put in place since (a test harness, a sanitizer's runtime) would
 * otherwise end the process without the line. */
static int handler_install(void)
{
	struct sigaction sa = { .sa_sigaction = on_sigsys, .sa_flags = SA_SIGINFO };

	sigfillset(&sa.sa_mask);
	return sigaction(SIGSYS, &sa, NULL) < 0 ? -errno : 0;
}

int seccomp_enter(enum seccomp_kind kind, const char *name, char *err, size_t errlen)
{
	const struct seccomp_filter_pair *f = &seccomp_filters[kind];
	const struct seccomp_prog_ref *p = g_mode == SECCOMP_MODE_LOG ? &f->log : &f->trap;
	struct sock_fprog prog = { .len = p->len, .filter = (struct sock_filter *)p->insns };
	sigset_t sys;
	int ret;

	if (g_mode == SECCOMP_MODE_OFF)
		return 0;
	snprintf(t_name, sizeof(t_name), "%s", name);
	log_prepare(); /* the log's writer opens files, which no list allows */
	if ((ret = handler_install())) {
		snprintf(err, errlen, "seccomp: %s thread: SIGSYS handler: %s", name, strerror(-ret));
		return ret;
	}
	/* The handler must run on this thread: a blocked SIGSYS would kill without a word. */
	sigemptyset(&sys);
	sigaddset(&sys, SIGSYS);
	pthread_sigmask(SIG_UNBLOCK, &sys, NULL);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
	    syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0) {
		ret = -errno;
		snprintf(err, errlen,
			 "seccomp: %s thread: installing the %s filter: %s (--seccomp off runs "
			 "without filters)",
			 name, f->kind, strerror(-ret));
		return ret;
	}
	return 0;
}

#ifdef KILN_TEST_HOOKS
void seccomp_test_violation(enum seccomp_kind kind, int kvm_fd)
{
	const char *want = getenv("KILN_TEST_SECCOMP");

	if (!want || strcmp(want, seccomp_filters[kind].kind))
		return;
	/* Harmless where it goes through (--seccomp log or off): a VM fd closed at once, an
	 * execve of a path that does not exist. */
	if (kind == SECCOMP_VCPU || kind == SECCOMP_SETUP) {
		int fd = ioctl(kvm_fd, KVM_CREATE_VM, 0);
		if (fd >= 0)
			close(fd);
	} else {
		char *const argv[] = { (char *)"/nonexistent/kiln-seccomp-test", NULL };
		execve(argv[0], argv, argv + 1);
	}
	log_err("seccomp test hook: the %s thread's forbidden call went through",
		seccomp_filters[kind].kind);
}
#else
void seccomp_test_violation(enum seccomp_kind kind, int kvm_fd)
{
	(void)kind;
	(void)kvm_fd;
}
#endif
