/* test_uffd.c: the Uffd memory backend (src/snapshot/uffd.c) against the example handler
 * (tools/uffd_handler.c, run from KILN_UFFD_HANDLER): pages served on demand from a memory
 * file, the bounded handshake's errors, and the handler refusing hostile messages. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "snapshot/uffd.h"
#include "vmm/memory.h"
#include "watchdog.h"

#define PG GUEST_PAGE_SIZE
#define RAM (4ULL << 20)
#define GIB (1ULL << 30)
#define P3G (3 * GIB / PG) /* the first page of region 1 in the memory file */

static char dir[] = "/tmp/kiln-uffd-XXXXXX";
static char sock[64], memfile[64], logfile[64];

/* Pages of the memory file that hold data (the rest is holes): every 8th page of the first
 * 4 MiB and of the 4 MiB from 3 GiB on. */
static int is_pattern(uint64_t p)
{
	return p % 8 == 0 && (p < 1024 || (p >= P3G && p < P3G + 1024));
}

static void page_expected(uint64_t p, uint64_t *w)
{
	for (unsigned i = 0; i < PG / 8; i++)
		w[i] = is_pattern(p) ? 0x6b696c6e00000000ULL ^ (p << 12) ^ i : 0;
}

/* Memory page p (RAM offset p * PG) of m reads as the file's page p. */
static void assert_page(const struct guest_mem *m, uint64_t p)
{
	uint64_t want[PG / 8];
	page_expected(p, want);
	assert_memory_equal(m->base + p * PG, want, PG);
}

/* A sparse memory file of size bytes with the pattern pages that fall inside it. */
static void make_memfile(uint64_t size)
{
	int fd = open(memfile, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)size), 0);
	uint64_t w[PG / 8];
	for (uint64_t p = 0; p < size / PG; p++) {
		if (!is_pattern(p)) {
			if (p >= 1024 && p < P3G)
				p = P3G - 1; /* skip the hole */
			continue;
		}
		page_expected(p, w);
		assert_int_equal(pwrite(fd, w, PG, (off_t)(p * PG)), (ssize_t)PG);
	}
	close(fd);
}

static int64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Run the handler on sock and memfile, its stderr in logfile; back when it listens. */
static pid_t start_handler(void)
{
	const char *exe = getenv("KILN_UFFD_HANDLER");
	assert_non_null(exe);
	unlink(sock);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = open(logfile, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
			_exit(127);
		execl(exe, exe, sock, memfile, (char *)NULL);
		_exit(127);
	}
	struct stat st;
	for (int i = 0; i < 1500 && stat(sock, &st) < 0; i++)
		usleep(2000);
	assert_int_equal(stat(sock, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	return pid;
}

/* The handler's exit status within 3 s (killed and failed if it does not end). */
static int wait_handler(pid_t pid)
{
	int status;
	for (int i = 0; i < 1500; i++) {
		pid_t r = waitpid(pid, &status, WNOHANG);
		assert_true(r >= 0);
		if (r == pid) {
			assert_true(WIFEXITED(status)); /* never a crash */
			return WEXITSTATUS(status);
		}
		usleep(2000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	fail_msg("the handler did not exit");
	return -1;
}

static char *read_log(void)
{
	static char buf[4096];
	int fd = open(logfile, O_RDONLY);
	assert_true(fd >= 0);
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	assert_true(n >= 0);
	buf[n] = '\0';
	close(fd);
	return buf;
}

/* The handler's log is exactly one line and contains want. */
static void assert_one_line(const char *want)
{
	const char *log = read_log();
	const char *nl = strchr(log, '\n');
	if (!strstr(log, want) || !nl || nl[1])
		fail_msg("handler log '%s' is not one line with '%s'", log, want);
}

static unsigned resident_pages(const struct guest_mem *m)
{
	size_t n = m->ram_size / PG;
	unsigned char *v = malloc(n);
	assert_non_null(v);
	assert_int_equal(mincore(m->base, m->ram_size, v), 0);
	unsigned count = 0;
	for (size_t i = 0; i < n; i++)
		count += v[i] & 1;
	free(v);
	return count;
}

static int setup(void **state)
{
	(void)state;
	watchdog(WATCHDOG_S); /* a fault nobody serves would otherwise hang the test */
	return 0;
}

static void test_mappings_json(void **state)
{
	(void)state;
	struct guest_mem m;
	char buf[1024];
	assert_int_equal(guest_mem_layout(&m, 3 * GIB + RAM), 0);
	m.regions[0].hva = (uint8_t *)(uintptr_t)0x7f0000000000ULL;
	m.regions[1].hva = (uint8_t *)(uintptr_t)0x7f00c0000000ULL;
	int n = uffd_mappings_json(&m, buf, sizeof(buf));
	const char *want =
	    "[{\"base_host_virt_addr\":139637976727552,\"size\":3221225472,\"offset\":0,"
	    "\"page_size\":4096,\"page_size_kib\":4096},"
	    "{\"base_host_virt_addr\":139641197953024,\"size\":4194304,\"offset\":3221225472,"
	    "\"page_size\":4096,\"page_size_kib\":4096}]";
	assert_string_equal(buf, want);
	assert_int_equal(n, (int)strlen(want));
	assert_int_equal(uffd_mappings_json(&m, buf, strlen(want)), -ENOSPC);
	assert_int_equal(uffd_mappings_json(&m, buf, strlen(want) + 1), n);
	assert_int_equal(uffd_mappings_json(&m, buf, 2), -ENOSPC);
}

static void test_on_demand(void **state)
{
	(void)state;
	struct guest_mem m;
	struct uffd_backend ub;
	char err[256] = "";
	make_memfile(RAM);
	pid_t h = start_handler();
	int ret =
	    uffd_backend_attach(&m, RAM, sock, UFFD_HANDSHAKE_TIMEOUT_MS, &ub, err, sizeof(err));
	if (ret)
		fail_msg("attach: %s", err);
	assert_true(ub.uffd >= 0 && ub.sock >= 0);
	assert_int_equal(m.nr_regions, 1);
	assert_int_equal(resident_pages(&m), 0);

	assert_page(&m, 0);	    /* data */
	assert_page(&m, 8);	    /* data */
	assert_page(&m, 9);	    /* a hole: zeros, still copied from the file */
	assert_page(&m, 600);	    /* above 2 MiB, where guest_mem_init asked for huge pages */
	m.base[24 * PG + 5] = 0xee; /* a write fault fills the page first */
	uint64_t want[PG / 8];
	page_expected(24, want);
	((uint8_t *)want)[5] = 0xee;
	assert_memory_equal(m.base + 24 * PG, want, PG);

	/* Faults the kernel takes on kiln's behalf (as KVM's and read()'s are) reach the
	 * handler too: a write() from an untouched page, a read() into one. */
	char tmp[] = "/tmp/kiln-uffd-io-XXXXXX";
	int fd = mkstemp(tmp);
	assert_true(fd >= 0);
	unlink(tmp);
	assert_int_equal(pwrite(fd, m.base + 16 * PG, PG, 0), (ssize_t)PG);
	uint8_t back[PG];
	assert_int_equal(pread(fd, back, PG, 0), (ssize_t)PG);
	page_expected(16, want);
	assert_memory_equal(back, want, PG);
	memset(back, 0x77, PG);
	assert_int_equal(pwrite(fd, back, PG, 0), (ssize_t)PG);
	assert_int_equal(pread(fd, m.base + 40 * PG, PG, 0), (ssize_t)PG);
	assert_memory_equal(m.base + 40 * PG, back, PG);
	close(fd);

	/* Only the 7 pages touched were brought in: nothing else is resident... */
	assert_int_equal(resident_pages(&m), 7);
	uffd_backend_close(&ub);
	assert_int_equal(ub.uffd, -1);
	guest_mem_destroy(&m);
	/* ...and the handler copied exactly those: it ends when kiln hangs up. */
	assert_int_equal(wait_handler(h), 0);
	assert_one_line("served 7 pages, 0 removed, the VMM hung up");
}

/* Region 1 (gpa 4 GiB on) comes from the file at its RAM offset, 3 GiB. */
static void test_two_regions(void **state)
{
	(void)state;
	struct guest_mem m;
	struct uffd_backend ub;
	char err[256] = "";
	make_memfile(3 * GIB + RAM);
	pid_t h = start_handler();
	int ret = uffd_backend_attach(&m, 3 * GIB + RAM, sock, UFFD_HANDSHAKE_TIMEOUT_MS, &ub, err,
				      sizeof(err));
	if (ret)
		fail_msg("attach: %s", err);
	assert_int_equal(m.nr_regions, 2);
	uint64_t want[PG / 8];
	page_expected(P3G + 8, want);
	assert_memory_equal(gpa_to_hva(&m, 4 * GIB + 8 * PG, PG), want, PG);
	page_expected(P3G, want);
	assert_memory_equal(gpa_to_hva(&m, 4 * GIB, PG), want, PG);
	assert_page(&m, 8);
	assert_int_equal(resident_pages(&m), 3);
	uffd_backend_close(&ub);
	guest_mem_destroy(&m);
	assert_int_equal(wait_handler(h), 0);
	assert_one_line("served 3 pages, 0 removed");
}

/* Pages kiln drops (a balloon's MADV_DONTNEED) read as zero afterwards, not as the file. */
static void test_remove(void **state)
{
	(void)state;
	struct guest_mem m;
	struct uffd_backend ub;
	char err[256] = "";
	uint64_t zero[PG / 8] = {0};
	make_memfile(RAM);
	pid_t h = start_handler();
	if (uffd_backend_attach(&m, RAM, sock, UFFD_HANDSHAKE_TIMEOUT_MS, &ub, err, sizeof(err)))
		fail_msg("attach: %s", err);
	assert_true(ub.features & UFFD_FEATURE_EVENT_REMOVE);
	assert_page(&m, 8);
	/* Returns once the handler has read the REMOVE event. */
	assert_int_equal(madvise(m.base + 8 * PG, 16 * PG, MADV_DONTNEED), 0);
	assert_memory_equal(m.base + 8 * PG, zero, PG);	 /* was served, then dropped */
	assert_memory_equal(m.base + 16 * PG, zero, PG); /* never served */
	assert_page(&m, 24);				 /* past the range: from the file */
	uffd_backend_close(&ub);
	guest_mem_destroy(&m);
	assert_int_equal(wait_handler(h), 0);
	assert_one_line("served 2 pages, 16 removed, the VMM hung up");
}

/* A listener that accepts and then does what `mode` says: 0 never reads, 1 closes at once. */
static pid_t fake_listener(int mode)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	unlink(sock);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
	int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(l >= 0);
	assert_int_equal(bind(l, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(l, 4), 0);
	if (mode < 0)
		return l; /* never accepts: the caller closes it */
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int c = accept(l, NULL, NULL);
		if (mode == 1)
			close(c);
		for (;;)
			pause();
	}
	close(l);
	return pid;
}

static void expect_attach_error(int timeout_ms, int want_ret, const char *want)
{
	struct guest_mem m;
	struct uffd_backend ub;
	char err[256] = "";
	int64_t t0 = now_us();
	assert_int_equal(uffd_backend_attach(&m, RAM, sock, timeout_ms, &ub, err, sizeof(err)),
			 want_ret);
	int64_t took = now_us() - t0;
	if (!strstr(err, want))
		fail_msg("error '%s' lacks '%s'", err, want);
	assert_null(strchr(err, '\n'));
	assert_null(m.base); /* nothing left behind */
	assert_int_equal(ub.uffd, -1);
	assert_int_equal(ub.sock, -1);
	assert_true(took < (int64_t)timeout_ms * 1000 + 1000000);
}

static void test_attach_errors(void **state)
{
	(void)state;
	char want[256];
	unlink(sock);
	snprintf(want, sizeof(want),
		 "mem_backend: backend_path %s: connect: No such file or directory", sock);
	expect_attach_error(300, -ENOENT, want);

	int fd = open(sock, O_WRONLY | O_CREAT, 0600); /* not a socket */
	assert_true(fd >= 0);
	close(fd);
	expect_attach_error(300, -ECONNREFUSED, "connect: Connection refused");

	/* A listener that never accepts: connect succeeds (the backlog), the message waits. */
	int l = fake_listener(-1);
	expect_attach_error(300, -ETIMEDOUT,
			    "did not read the memory mappings within 300 ms (not accepting, or "
			    "not reading)");
	close(l);

	/* One that accepts and never reads. */
	pid_t p = fake_listener(0);
	expect_attach_error(300, -ETIMEDOUT, "did not read the memory mappings within 300 ms");
	kill(p, SIGKILL);
	waitpid(p, NULL, 0);

	/* One that accepts and hangs up without reading. */
	p = fake_listener(1);
	expect_attach_error(2000, -EPIPE, sock);
	kill(p, SIGKILL);
	waitpid(p, NULL, 0);

	char longp[200];
	memset(longp, 'a', sizeof(longp) - 1);
	longp[0] = '/';
	longp[sizeof(longp) - 1] = '\0';
	struct guest_mem m;
	struct uffd_backend ub;
	char err[512];
	assert_int_equal(uffd_backend_attach(&m, RAM, longp, 300, &ub, err, sizeof(err)),
			 -ENAMETOOLONG);
	assert_non_null(strstr(err, "longer than a Unix socket path can be"));
	assert_int_equal(uffd_backend_attach(&m, 12345, sock, 300, &ub, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "mem_backend: guest RAM of 12345 bytes"));
	unlink(sock);
}

/* fd kinds sent with a hostile message. */
enum { FD_NONE, FD_NULL, FD_UFFD, FD_TWO };

static int connect_raw(void)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(s >= 0);
	assert_int_equal(connect(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return s;
}

static void send_raw(int s, const char *msg, int kind)
{
	int fds[2] = {-1, -1};
	unsigned nfds = kind == FD_NONE ? 0 : kind == FD_TWO ? 2 : 1;
	if (kind == FD_UFFD) {
		fds[0] = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
		assert_true(fds[0] >= 0);
		struct uffdio_api api = {.api = UFFD_API};
		assert_int_equal(ioctl(fds[0], UFFDIO_API, &api), 0);
	} else if (nfds) {
		fds[0] = open("/dev/null", O_RDONLY | O_CLOEXEC);
		fds[1] = open("/dev/null", O_RDONLY | O_CLOEXEC);
	}
	union {
		char b[CMSG_SPACE(2 * sizeof(int))];
		struct cmsghdr align;
	} ctl;
	memset(&ctl, 0, sizeof(ctl));
	struct iovec iov = {.iov_base = (void *)msg, .iov_len = strlen(msg)};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	if (nfds) {
		mh.msg_control = ctl.b;
		mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
		memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));
	}
	assert_int_equal(sendmsg(s, &mh, MSG_NOSIGNAL), (ssize_t)strlen(msg));
	for (unsigned i = 0; i < 2; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

#define R(base, size, off)                                                                         \
	"{\"base_host_virt_addr\":" base ",\"size\":" size ",\"offset\":" off ",\"page_size\":"    \
	"4096}"

static const struct {
	const char *msg;
	int fd;
	const char *want;
} hostile[] = {
    {"[]", FD_NULL, "mappings: 0 regions (1 to 64 expected)"},
    {"{}", FD_NULL, "mappings: not a JSON array"},
    {"[1]", FD_NULL, "mappings[0]: not an object"},
    {"[{\"base_host_virt_addr\":1073741824,\"size\":4096,\"offset\":0}]", FD_NULL,
     "mappings[0]: page_size: missing"},
    {"[{\"base_host_virt_addr\":1073741824,\"size\":\"4096\",\"offset\":0,\"page_size\":4096}]",
     FD_NULL, "mappings[0]: size: not an integer"},
    {"[" R("1073741824", "4096", "-4096") "]", FD_NULL, "mappings[0]: offset: negative"},
    {"[" R("1073741824", "18446744073709551615", "0") "]", FD_NULL, "not valid JSON"},
    {"[" R("1152921504606846976", "4096", "0") "]", FD_NULL,
     "mappings[0]: base_host_virt_addr: 0x1000000000000000 is not a page-aligned user address"},
    {"[" R("1073741825", "4096", "0") "]", FD_NULL, "base_host_virt_addr: 0x40000001"},
    {"[" R("1073741824", "0", "0") "]", FD_NULL, "mappings[0]: size: 0 is zero"},
    {"[" R("1073741824", "2097152", "0") "]", FD_NULL,
     "mappings[0]: offset 0 + size 2097152 is past the end of the memory file (1048576 bytes)"},
    {"[" R("1073741824", "8192", "9223372036854771712") "]", FD_NULL,
     "past the end of the memory file"},
    {"[" R("1073741824", "65536", "0") "," R("1073774592", "65536", "65536") "]", FD_NULL,
     "mappings[1]: base_host_virt_addr: overlaps region 0"},
    {"[" R("1073741824", "65536", "0") "," R("1077936128", "65536", "4096") "]", FD_NULL,
     "mappings[1]: offset: overlaps region 0 in the memory file"},
    {"[{\"base_host_virt_addr\":1073741824,\"size\":4096,\"offset\":0,\"page_size\":2097152}]",
     FD_NULL, "mappings[0]: page_size: 2097152"},
    {"[{\"base_host_virt_addr\":1073741824,\"size\":4096,\"offset\":0,\"page_size\":4096,"
     "\"page_size_kib\":4}]",
     FD_NULL, "mappings[0]: page_size_kib: 4, not page_size (4096)"},
    {"[{\"base_host_virt_addr\":1073741824,\"size\":4096,\"offset\":0,\"page_size\":4096,"
     "\"x\":1}]",
     FD_NULL, "mappings[0]: unknown field 'x'"},
    {"[{\"size\":1,\"size\":4096}]", FD_NULL, "not valid JSON"},
    {"[" R("1073741824", "4096", "0") "] x", FD_NULL, "not valid JSON"},
    {"[" R("1073741824", "4096", "0") "]", FD_NULL, "the passed fd is not a userfaultfd"},
    {"[" R("1073741824", "4096", "0") "]", FD_NONE, "no userfaultfd came with them"},
    {"[" R("1073741824", "4096", "0"), FD_NULL, "closed the connection in the middle"},
    {"", FD_NONE, "closed the connection without sending them"},
};

static void test_handler_rejects(void **state)
{
	(void)state;
	make_memfile(1 << 20);
	for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
		pid_t h = start_handler();
		int s = connect_raw();
		if (*hostile[i].msg)
			send_raw(s, hostile[i].msg, hostile[i].fd);
		shutdown(s, SHUT_WR); /* ends the messages cut short */
		int st = wait_handler(h);
		close(s);
		if (st != 1)
			fail_msg("case %zu: exit %d (log: %s)", i, st, read_log());
		assert_one_line(hostile[i].want);
	}
	/* Two fds: the extra one is dropped, the first must be the uffd. */
	pid_t h = start_handler();
	int s = connect_raw();
	send_raw(s, "[" R("1073741824", "4096", "0") "]", FD_TWO);
	assert_int_equal(wait_handler(h), 1);
	close(s);
	assert_one_line("not a userfaultfd");

	/* A valid layout and a real uffd (of this process, nothing registered): no faults come,
	 * and the handler ends, status 0, when the peer hangs up. */
	h = start_handler();
	s = connect_raw();
	send_raw(s, "[" R("1073741824", "4096", "0") "]", FD_UFFD);
	usleep(50000);
	assert_int_equal(waitpid(h, NULL, WNOHANG), 0); /* still serving */
	close(s);
	assert_int_equal(wait_handler(h), 0);
	assert_one_line("served 0 pages, 0 removed, the VMM hung up");
}

/* A peer that connects and sends nothing: the handler gives up after its 5 s bound. */
static void test_handler_silent_peer(void **state)
{
	(void)state;
	make_memfile(1 << 20);
	pid_t h = start_handler();
	int s = connect_raw();
	int64_t t0 = now_us();
	int st;
	while (waitpid(h, &st, WNOHANG) == 0 && now_us() - t0 < 8000000)
		usleep(10000);
	close(s);
	if (now_us() - t0 >= 8000000) {
		kill(h, SIGKILL);
		waitpid(h, NULL, 0);
		fail_msg("the handler waited for the mappings for more than 8 s");
	}
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 1);
	assert_one_line("mappings: none within 5000 ms of the connection");
}

/* Attach cost for ram bytes (best of 3), and the cost of a served fault. */
static int64_t time_attach(uint64_t ram, int64_t *fault_us)
{
	int64_t best = INT64_MAX;
	make_memfile(ram);
	for (int run = 0; run < 3; run++) {
		struct guest_mem m;
		struct uffd_backend ub;
		char err[256];
		pid_t h = start_handler();
		int64_t t0 = now_us();
		if (uffd_backend_attach(&m, ram, sock, UFFD_HANDSHAKE_TIMEOUT_MS, &ub, err,
					sizeof(err)))
			fail_msg("attach: %s", err);
		int64_t t = now_us() - t0;
		best = t < best ? t : best;
		t0 = now_us();
		volatile uint64_t sum = 0;
		for (uint64_t p = 0; p < 1024; p++)
			sum += *(volatile uint64_t *)(m.base + p * PG);
		(void)sum;
		*fault_us = (now_us() - t0) / 1024;
		assert_page(&m, 1016);
		uffd_backend_close(&ub);
		guest_mem_destroy(&m);
		assert_int_equal(wait_handler(h), 0);
		assert_one_line("served 1024 pages");
	}
	return best;
}

static void test_attach_time(void **state)
{
	(void)state;
	int64_t f1, f2;
	int64_t small = time_attach(128ULL << 20, &f1);
	int64_t big = time_attach(2 * GIB, &f2);
	printf("uffd attach: 128 MiB %lld us, 2 GiB %lld us (best of 3); a served fault %lld / "
	       "%lld us\n",
	       (long long)small, (long long)big, (long long)f1, (long long)f2);
	/* Nothing in attach touches RAM: 16 times the RAM may not cost 16 times as much. */
	assert_true(big < 4 * small + 20000);
	assert_true(big < 200000);
}

static int group_setup(void **state)
{
	(void)state;
	if (!mkdtemp(dir))
		return -1;
	snprintf(sock, sizeof(sock), "%s/h.sock", dir);
	snprintf(memfile, sizeof(memfile), "%s/mem", dir);
	snprintf(logfile, sizeof(logfile), "%s/handler.log", dir);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	unlink(sock);
	unlink(memfile);
	unlink(logfile);
	rmdir(dir);
	return 0;
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	/* Root or vm.unprivileged_userfaultfd=1 or /dev/userfaultfd: else there is nothing to
	 * test here. */
	int probe = (int)syscall(SYS_userfaultfd, O_CLOEXEC);
	if (probe < 0 && access("/dev/userfaultfd", R_OK | W_OK) < 0) {
		printf("SKIP: userfaultfd not permitted here\n");
		return 77;
	}
	if (probe >= 0)
		close(probe);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_mappings_json, setup),
	    cmocka_unit_test_setup(test_on_demand, setup),
	    cmocka_unit_test_setup(test_two_regions, setup),
	    cmocka_unit_test_setup(test_remove, setup),
	    cmocka_unit_test_setup(test_attach_errors, setup),
	    cmocka_unit_test_setup(test_handler_rejects, setup),
	    cmocka_unit_test_setup(test_handler_silent_peer, setup),
	    cmocka_unit_test_setup(test_attach_time, setup),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
