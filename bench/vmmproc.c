/* vmmproc.c: start a VMM with its serial output on a pipe, watch for a string, sample /proc. */
#define _GNU_SOURCE
#include "vmmproc.h"

#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_TRACKED 8192

/* Every VMM started and not yet reaped, for the signal handler. Written only outside it. */
static pid_t tracked[MAX_TRACKED];
static volatile sig_atomic_t ntracked;

static void on_signal(int sig)
{
	(void)sig;
	for (sig_atomic_t i = 0; i < ntracked; i++)
		kill(-tracked[i], SIGKILL);
	_exit(130);
}

void vmm_cleanup_on_signal(void)
{
	struct sigaction sa = {.sa_handler = on_signal};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

static void untrack(pid_t pid)
{
	for (sig_atomic_t i = 0; i < ntracked; i++) {
		if (tracked[i] == pid) {
			tracked[i] = tracked[ntracked - 1];
			ntracked--;
			return;
		}
	}
}

int vmm_spawn(struct vmm *v, char *const argv[], enum vmm_out out, const char *stderr_path)
{
	int p[2] = {-1, -1};
	pid_t parent = getpid();

	memset(v, 0, sizeof(*v));
	v->pid = -1;
	v->out_fd = -1;
	v->log_fd = -1;
	if (ntracked >= MAX_TRACKED) {
		fprintf(stderr, "bench: more than %d VMMs at once\n", MAX_TRACKED);
		return -EMFILE;
	}
	if (out == VMM_OUT_PIPE && pipe2(p, O_CLOEXEC) < 0) {
		int e = errno;
		fprintf(stderr, "bench: pipe: %s\n", strerror(e));
		return -e;
	}
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		fprintf(stderr, "bench: fork: %s\n", strerror(e));
		if (p[0] >= 0) {
			close(p[0]);
			close(p[1]);
		}
		return -e;
	}
	if (pid == 0) {
		/* Own process group (killed as a group), and die with the harness. */
		setpgid(0, 0);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		int null_fd = open("/dev/null", O_RDWR);
		int err_fd =
		    stderr_path ? open(stderr_path, O_WRONLY | O_CREAT | O_TRUNC, 0644) : null_fd;
		if (null_fd < 0 || err_fd < 0 || dup2(null_fd, 0) < 0 ||
		    dup2(out == VMM_OUT_PIPE ? p[1] : null_fd, 1) < 0 || dup2(err_fd, 2) < 0)
			_exit(127);
		signal(SIGPIPE, SIG_DFL);
		execvp(argv[0], argv);
		dprintf(2, "bench: exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	setpgid(pid, pid); /* also here: no window where the child is in our group */
	tracked[ntracked] = pid;
	ntracked++;
	v->pid = pid;
	if (out == VMM_OUT_PIPE) {
		close(p[1]);
		v->out_fd = p[0];
		fcntl(v->out_fd, F_SETFL, fcntl(v->out_fd, F_GETFL) | O_NONBLOCK);
	}
	return 0;
}

static int reap(struct vmm *v, bool block, int *status)
{
	int st;
	pid_t r = waitpid(v->pid, &st, block ? 0 : WNOHANG);
	if (r == v->pid) {
		untrack(v->pid);
		v->pid = -1;
		if (status)
			*status = st;
		return 1;
	}
	return 0;
}

/* Read what is there; feed each byte to the tail window. Returns bytes read, 0 on EOF,
 * -EAGAIN when nothing is there. *hit set when `needle` completed. */
static ssize_t read_some(struct vmm *v, const char *needle, bool *hit)
{
	char buf[65536];
	ssize_t n = read(v->out_fd, buf, sizeof(buf));
	if (n < 0)
		return errno == EINTR ? -EAGAIN : -errno;
	size_t nl = needle ? strlen(needle) : 0;
	for (ssize_t i = 0; i < n; i++) {
		if (v->tail_len == sizeof(v->tail)) {
			memmove(v->tail, v->tail + 1, sizeof(v->tail) - 1);
			v->tail_len--;
		}
		v->tail[v->tail_len++] = buf[i];
		if (nl && !*hit && v->tail_len >= nl &&
		    memcmp(v->tail + v->tail_len - nl, needle, nl) == 0)
			*hit = true;
	}
	v->out_bytes += (uint64_t)n;
	if (v->log_fd >= 0 && n > 0 && write(v->log_fd, buf, (size_t)n) < 0)
		v->log_fd = -1; /* a log that cannot be written is not worth failing the run */
	return n;
}

/* Has err_needle appeared in the VMM's stderr file since the last look? */
static bool stderr_failed(struct vmm *v)
{
	if (!v->err_path || !v->err_needle)
		return false;
	FILE *f = fopen(v->err_path, "re");
	if (!f)
		return false;
	char line[1024];
	bool hit = false;
	if (fseek(f, v->err_off, SEEK_SET) == 0) {
		while (!hit && fgets(line, sizeof(line), f)) {
			if (strchr(line, '\n') == NULL && !feof(f))
				continue; /* a partial line: look again when it is complete */
			v->err_off = ftell(f);
			hit = strstr(line, v->err_needle) != NULL;
		}
	}
	fclose(f);
	return hit;
}

static int wait_loop(struct vmm *v, const char *needle, uint64_t deadline_ns, uint64_t *t_ns,
		     int *status)
{
	if (needle && (strlen(needle) == 0 || strlen(needle) >= sizeof(v->tail)))
		return -EINVAL;
	for (;;) {
		uint64_t now = now_ns();
		if (now >= deadline_ns)
			return needle ? -ETIMEDOUT : 0;
		uint64_t left_ms = (deadline_ns - now + 999999) / 1000000;
		struct pollfd pfd = {.fd = v->out_fd, .events = POLLIN};
		int pr = poll(&pfd, 1, (int)(left_ms > 100 ? 100 : left_ms));
		if (pr < 0 && errno != EINTR)
			return -errno;
		if (pr > 0) {
			bool hit = false;
			ssize_t n = read_some(v, needle, &hit);
			uint64_t t = now_ns();
			if (hit) {
				if (t_ns)
					*t_ns = t;
				return 0;
			}
			if (n == 0) { /* EOF: the VMM closed its stdout, so it is exiting */
				int r = vmm_wait_exit(v, deadline_ns, status);
				return r ? r : -ECHILD;
			}
			if (n < 0 && n != -EAGAIN)
				return (int)n;
		} else if (reap(v, false, status)) {
			return -ECHILD;
		} else if (stderr_failed(v)) {
			return -EPROTO;
		}
	}
}

int vmm_wait_for(struct vmm *v, const char *needle, uint64_t deadline_ns, uint64_t *t_ns,
		 int *status)
{
	return wait_loop(v, needle, deadline_ns, t_ns, status);
}

int vmm_drain(struct vmm *v, uint64_t until_ns, int *status)
{
	return wait_loop(v, NULL, until_ns, NULL, status);
}

int vmm_wait_exit(struct vmm *v, uint64_t deadline_ns, int *status)
{
	int pidfd = (int)syscall(SYS_pidfd_open, v->pid, 0);
	for (;;) {
		if (reap(v, false, status)) {
			if (pidfd >= 0)
				close(pidfd);
			return 0;
		}
		uint64_t now = now_ns();
		if (now >= deadline_ns) {
			if (pidfd >= 0)
				close(pidfd);
			return -ETIMEDOUT;
		}
		uint64_t left_ms = (deadline_ns - now + 999999) / 1000000;
		if (pidfd >= 0) {
			struct pollfd pfd = {.fd = pidfd, .events = POLLIN};
			poll(&pfd, 1, (int)(left_ms > 1000 ? 1000 : left_ms));
		} else {
			usleep(200); /* no pidfd: poll the exit every 0.2 ms */
		}
	}
}

bool vmm_alive(struct vmm *v) { return v->pid > 0 && !reap(v, false, NULL); }

void vmm_kill(struct vmm *v)
{
	if (v->pid > 0) {
		kill(-v->pid, SIGKILL);
		reap(v, true, NULL);
	}
	if (v->out_fd >= 0) {
		close(v->out_fd);
		v->out_fd = -1;
	}
}

void vmm_report_tail(const struct vmm *v, const char *what)
{
	fprintf(stderr, "%s; %" PRIu64 " serial bytes, the last ones: \"", what, v->out_bytes);
	for (size_t i = 0; i < v->tail_len; i++) {
		unsigned char c = (unsigned char)v->tail[i];
		if (c == '\n')
			fputs("\\n", stderr);
		else if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
			fputc(c, stderr);
		else
			fprintf(stderr, "\\x%02x", c);
	}
	fputs("\"\n", stderr);
}

/* One mapping of /proc/PID/smaps. */
struct smap {
	unsigned long long start, end, rss, pss, priv;
	bool anon; /* no path at all: not a file, not [heap] or [stack] */
	char perms[8];
};

/* Read every mapping of /proc/PID/smaps into a growing array. */
static int read_smaps(pid_t pid, struct smap **out, size_t *n_out)
{
	char path[64], line[512];
	snprintf(path, sizeof(path), "/proc/%d/smaps", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f) {
		int e = errno;
		fprintf(stderr, "bench: %s: %s\n", path, strerror(e));
		return -e;
	}
	struct smap *v = NULL, *cur = NULL;
	size_t n = 0, cap = 0;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long start, end, kib;
		int pos = 0;
		char perms[8];
		/* A mapping header: "start-end perms offset dev inode [path]". A field line
		 * ("Rss:", "AnonHugePages:") never parses as hex-hex then a word. */
		if (sscanf(line, "%llx-%llx %7s %n", &start, &end, perms, &pos) == 3 && pos > 0 &&
		    end > start) {
			if (n == cap) {
				cap = cap ? cap * 2 : 64;
				struct smap *nv = realloc(v, cap * sizeof(*v));
				if (!nv) {
					free(v);
					fclose(f);
					return -ENOMEM;
				}
				v = nv;
			}
			cur = &v[n++];
			*cur = (struct smap){ .start = start, .end = end };
			snprintf(cur->perms, sizeof(cur->perms), "%s", perms);
			/* offset dev inode [path]: anonymous when the path is missing */
			char p[256];
			unsigned long long off, inode;
			char dev[16];
			cur->anon = sscanf(line + pos, "%llx %15s %llu %255s", &off, dev, &inode, p) < 4;
			continue;
		}
		if (!cur)
			continue;
		if (sscanf(line, "Rss: %llu kB", &kib) == 1)
			cur->rss += kib;
		else if (sscanf(line, "Pss: %llu kB", &kib) == 1)
			cur->pss += kib;
		else if (sscanf(line, "Private_Clean: %llu kB", &kib) == 1 ||
			 sscanf(line, "Private_Dirty: %llu kB", &kib) == 1)
			cur->priv += kib;
	}
	fclose(f);
	if (n == 0) {
		free(v);
		fprintf(stderr, "bench: %s: no mappings (process gone?)\n", path);
		return -ESRCH;
	}
	*out = v;
	*n_out = n;
	return 0;
}

/* Could be (part of) guest RAM: private anonymous read-write memory. */
static bool anon_rw(const struct smap *s) { return s->anon && strcmp(s->perms, "rw-p") == 0; }

/*
 * Guest RAM is a run of adjacent anonymous read-write mappings that together span exactly
 * the guest RAM size: one mapping, or several when the VMM madvise()d parts of it differently
 * (huge pages for some of it), which splits the kernel's mapping without changing the memory.
 */
int vmm_mem(pid_t pid, uint64_t guest_bytes, struct vmm_mem *m)
{
	struct smap *v;
	size_t n;
	int ret = read_smaps(pid, &v, &n);
	if (ret)
		return ret;
	memset(m, 0, sizeof(*m));
	for (size_t i = 0; i < n;) {
		size_t j = i + 1;
		if (anon_rw(&v[i]))
			while (j < n && anon_rw(&v[j]) && v[j].start == v[j - 1].end &&
			       v[j].end - v[i].start <= guest_bytes)
				j++;
		bool guest = anon_rw(&v[i]) && v[j - 1].end - v[i].start == guest_bytes;
		if (!guest)
			j = i + 1; /* not guest RAM: account for the first mapping alone */
		else
			m->guest_maps++;
		for (size_t k = i; k < j; k++) {
			m->total_rss_kib += v[k].rss;
			m->total_pss_kib += v[k].pss;
			if (guest) {
				m->guest_rss_kib += v[k].rss;
			} else {
				m->rss_kib += v[k].rss;
				m->pss_kib += v[k].pss;
				m->uss_kib += v[k].priv;
			}
		}
		i = j;
	}
	free(v);
	if (m->guest_maps == 0) {
		fprintf(stderr,
			"bench: /proc/%d/smaps: no mapping or run of adjacent anonymous mappings of "
			"exactly the guest RAM size (%" PRIu64 " bytes): cannot tell guest RAM from "
			"VMM memory\n",
			(int)pid, guest_bytes);
		return -ENOENT;
	}
	return 0;
}

/* Fields of a /proc stat line after comm: fields[i] is field i + 3 (state is field 3). */
static int read_stat(const char *path, char *comm, size_t comm_len, unsigned long long *utime,
		     unsigned long long *stime, unsigned long long *guest)
{
	char buf[4096];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -EIO;
	buf[n] = '\0';
	/* Field 2 (comm) is in parentheses and may hold spaces: count fields after the last ')'. */
	char *open_p = strchr(buf, '('), *close_p = strrchr(buf, ')');
	if (!open_p || !close_p || close_p < open_p)
		return -EIO;
	snprintf(comm, comm_len, "%.*s", (int)(close_p - open_p - 1), open_p + 1);
	int field = 2;
	char *save = NULL;
	for (char *tok = strtok_r(close_p + 1, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
		field++;
		if (field == 14)
			*utime = strtoull(tok, NULL, 10);
		else if (field == 15)
			*stime = strtoull(tok, NULL, 10);
		else if (field == 43)
			*guest = strtoull(tok, NULL, 10);
	}
	return field < 43 ? -EIO : 0;
}

static bool is_vcpu_thread(const char *comm)
{
	return strncasecmp(comm, "vcpu", 4) == 0 || strcasestr(comm, "vcpu") ||
	       (strncmp(comm, "CPU ", 4) == 0 && strstr(comm, "/KVM"));
}

int vmm_cpu(pid_t pid, struct vmm_cpu *c)
{
	char path[320], comm[64];
	unsigned long long utime = 0, stime = 0, guest = 0;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int r = read_stat(path, comm, sizeof(comm), &utime, &stime, &guest);
	if (r) {
		fprintf(stderr, "bench: %s: %s\n", path, strerror(-r));
		return r;
	}
	double ms_per_tick = 1000.0 / (double)sysconf(_SC_CLK_TCK);
	memset(c, 0, sizeof(*c));
	c->utime_ms = (double)utime * ms_per_tick;
	c->stime_ms = (double)stime * ms_per_tick;
	c->guest_ms = (double)guest * ms_per_tick;
	c->vmm_ms = c->utime_ms + c->stime_ms - c->guest_ms;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	DIR *d = opendir(path);
	if (!d) {
		int e = errno;
		fprintf(stderr, "bench: %s: %s\n", path, strerror(e));
		return -e;
	}
	struct dirent *de;
	while ((de = readdir(d))) {
		unsigned long long tu = 0, ts = 0, tg = 0;
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%s/stat", (int)pid, de->d_name);
		if (read_stat(path, comm, sizeof(comm), &tu, &ts, &tg))
			continue; /* the thread just exited */
		if (is_vcpu_thread(comm)) {
			c->vcpu_threads++;
			c->vcpu_stime_ms += (double)ts * ms_per_tick;
		}
	}
	closedir(d);
	return 0;
}
