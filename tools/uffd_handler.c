/* uffd_handler.c: kiln-uffd-handler SOCK MEMFILE, an example page-fault handler for a Uffd
 * memory backend: takes one VMM's uffd and layout on SOCK, serves its faults from MEMFILE. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/*
 * Protocol (Firecracker's): the VMM connects and, in one sendmsg, sends a JSON array of
 *   {"base_host_virt_addr", "size", "offset", "page_size"[, "page_size_kib"]}
 * with its userfaultfd as SCM_RIGHTS; nothing else follows. The VMM keeps the connection open
 * while the memory lives: its hangup ends this handler. Everything the peer sends is checked;
 * a bad message ends the handler with one line on stderr and exit status 1. On a normal end
 * it prints "kiln-uffd-handler: served N pages, R removed, ..." and exits 0.
 */

#define ACCEPT_TIMEOUT_MS 60000 /* a VMM that never comes */
#define MSG_TIMEOUT_MS 5000	/* a VMM that connects and sends nothing */
#define MSG_MAX 65536		/* the message; Firecracker's is ~110 bytes per region */
#define MAX_REGIONS 64
#define USER_ADDR_END (1ULL << 57) /* above any x86-64 user address (5-level paging) */
#define EVENTS_PER_READ 16
#define PENDING_MAX 256 /* faults read but not yet served (each one a waiting VMM thread) */

struct region {
	uint64_t base, size, offset;
};

struct handler {
	int uffd;
	int conn;
	const uint8_t *file; /* MEMFILE, mapped read-only */
	uint64_t file_size;
	uint64_t page_size;
	struct region regions[MAX_REGIONS];
	unsigned nr_regions;
	uint64_t pending[PENDING_MAX];
	unsigned nr_pending;
	uint64_t served;  /* pages filled with UFFDIO_COPY */
	uint64_t removed; /* pages unregistered after REMOVE events */
};

static __attribute__((format(printf, 1, 2), noreturn)) void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("kiln-uffd-handler: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Listen on path; the socket appears there only once it listens (bound under a temporary
 * name, then renamed), so a VMM that sees it never meets ECONNREFUSED. */
static int listen_on(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char tmp[sizeof(sa.sun_path)];
	int n = snprintf(tmp, sizeof(tmp), "%s.%d", path, (int)getpid());
	if (n < 0 || (size_t)n >= sizeof(sa.sun_path))
		die("%s: longer than a Unix socket path can be", path);
	memcpy(sa.sun_path, tmp, (size_t)n + 1);
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (s < 0)
		die("socket: %s", strerror(errno));
	if (bind(s, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die("%s: bind: %s", tmp, strerror(errno));
	if (listen(s, 1) < 0 || renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) < 0) {
		int e = errno;
		unlink(tmp);
		die("%s: %s", path, strerror(e));
	}
	return s;
}

/* One connection within ACCEPT_TIMEOUT_MS; the socket file goes once it is taken. */
static int accept_one(int lsock, const char *path)
{
	struct pollfd p = {.fd = lsock, .events = POLLIN};
	int64_t deadline = now_ms() + ACCEPT_TIMEOUT_MS;
	for (;;) {
		int64_t left = deadline - now_ms();
		if (left <= 0)
			die("%s: no VMM connected within %d s", path, ACCEPT_TIMEOUT_MS / 1000);
		if (poll(&p, 1, (int)left) < 0 && errno != EINTR)
			die("poll: %s", strerror(errno));
		int c = accept4(lsock, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (c >= 0) {
			close(lsock);
			unlink(path);
			return c;
		}
		if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
			die("%s: accept: %s", path, strerror(errno));
	}
}

/* Keep the first SCM_RIGHTS fd of a message in *fd (if none yet); close every other one. */
static void take_fds(struct msghdr *mh, int *fd)
{
	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
		    c->cmsg_len < CMSG_LEN(0))
			continue;
		size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int f;
			memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (*fd < 0)
				*fd = f;
			else
				close(f);
		}
	}
}

/* Read until the bytes form one complete JSON value (bounded in size and time). */
static json_t *recv_mappings(int conn, int *uffd)
{
	static char buf[MSG_MAX + 1];
	size_t len = 0;
	int64_t deadline = now_ms() + MSG_TIMEOUT_MS;
	json_error_t je;

	*uffd = -1;
	for (;;) {
		union {
			char b[CMSG_SPACE(8 * sizeof(int))];
			struct cmsghdr align;
		} ctl;
		struct iovec iov = {.iov_base = buf + len, .iov_len = MSG_MAX - len};
		struct msghdr mh = {.msg_iov = &iov,
				    .msg_iovlen = 1,
				    .msg_control = ctl.b,
				    .msg_controllen = sizeof(ctl.b)};
		ssize_t n = recvmsg(conn, &mh, MSG_CMSG_CLOEXEC);
		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			int64_t left = deadline - now_ms();
			if (left <= 0)
				die("mappings: none within %d ms of the connection",
				    MSG_TIMEOUT_MS);
			struct pollfd p = {.fd = conn, .events = POLLIN};
			poll(&p, 1, (int)left);
			continue;
		}
		if (n < 0)
			die("mappings: recvmsg: %s", strerror(errno));
		take_fds(&mh, uffd);
		if (mh.msg_flags & MSG_CTRUNC)
			die("mappings: more file descriptors than the one uffd");
		if (n == 0)
			die("mappings: the VMM closed the connection %s",
			    len ? "in the middle of the message" : "without sending them");
		len += (size_t)n;
		buf[len] = '\0';
		json_t *j = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
		if (j)
			return j;
		if (json_error_code(&je) != json_error_premature_end_of_input)
			die("mappings: not valid JSON: %s (byte %d)", je.text, je.position);
		if (len == MSG_MAX)
			die("mappings: longer than %d bytes", MSG_MAX);
	}
}

/* An unsigned integer field of a region, which must be present. */
static uint64_t get_u64(json_t *o, unsigned i, const char *name)
{
	json_t *v = json_object_get(o, name);
	if (!v)
		die("mappings[%u]: %s: missing", i, name);
	if (!json_is_integer(v))
		die("mappings[%u]: %s: not an integer", i, name);
	if (json_integer_value(v) < 0)
		die("mappings[%u]: %s: negative (%" JSON_INTEGER_FORMAT ")", i, name,
		    json_integer_value(v));
	return (uint64_t)json_integer_value(v);
}

static bool overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

static void parse_layout(struct handler *h, json_t *j)
{
	static const char *const known[] = {"base_host_virt_addr", "size", "offset", "page_size",
					    "page_size_kib"};
	if (!json_is_array(j))
		die("mappings: not a JSON array");
	size_t n = json_array_size(j);
	if (n == 0 || n > MAX_REGIONS)
		die("mappings: %zu regions (1 to %d expected)", n, MAX_REGIONS);
	for (unsigned i = 0; i < n; i++) {
		json_t *o = json_array_get(j, i);
		const char *key;
		json_t *v;
		if (!json_is_object(o))
			die("mappings[%u]: not an object", i);
		json_object_foreach(o, key, v)
		{
			size_t k = 0;
			while (k < sizeof(known) / sizeof(known[0]) && strcmp(key, known[k]))
				k++;
			if (k == sizeof(known) / sizeof(known[0]))
				die("mappings[%u]: unknown field '%.64s'", i, key);
		}
		struct region r = {.base = get_u64(o, i, "base_host_virt_addr"),
				   .size = get_u64(o, i, "size"),
				   .offset = get_u64(o, i, "offset")};
		uint64_t ps = get_u64(o, i, "page_size");
		/* page_size_kib, deprecated: bytes despite the name, equal to page_size. */
		if (json_object_get(o, "page_size_kib") && get_u64(o, i, "page_size_kib") != ps)
			die("mappings[%u]: page_size_kib: %" PRIu64 ", not page_size (%" PRIu64 ")",
			    i, get_u64(o, i, "page_size_kib"), ps);
		if (ps != h->page_size)
			die("mappings[%u]: page_size: %" PRIu64 " (this handler serves %" PRIu64
			    "-byte pages only)",
			    i, ps, h->page_size);
		if (r.base % ps || r.base == 0 || r.base >= USER_ADDR_END)
			die("mappings[%u]: base_host_virt_addr: %#" PRIx64
			    " is not a page-aligned user address",
			    i, r.base);
		if (r.size == 0 || r.size % ps || r.size > USER_ADDR_END - r.base)
			die("mappings[%u]: size: %" PRIu64 " is zero, not page-aligned or past the "
			    "end of user memory",
			    i, r.size);
		if (r.offset % ps)
			die("mappings[%u]: offset: %" PRIu64 " is not page-aligned", i, r.offset);
		if (r.offset > h->file_size || r.size > h->file_size - r.offset)
			die("mappings[%u]: offset %" PRIu64 " + size %" PRIu64
			    " is past the end of the memory file (%" PRIu64 " bytes)",
			    i, r.offset, r.size, h->file_size);
		for (unsigned k = 0; k < i; k++) {
			const struct region *q = &h->regions[k];
			if (overlap(r.base, r.size, q->base, q->size))
				die("mappings[%u]: base_host_virt_addr: overlaps region %u", i, k);
			if (overlap(r.offset, r.size, q->offset, q->size))
				die("mappings[%u]: offset: overlaps region %u in the memory file",
				    i, k);
		}
		h->regions[i] = r;
	}
	h->nr_regions = (unsigned)n;
}

/* The fd the peer passed must be a userfaultfd (it could be anything). */
static void check_uffd(int fd)
{
	char link[64], target[64];
	if (fd < 0)
		die("mappings: no userfaultfd came with them (SCM_RIGHTS)");
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, target, sizeof(target) - 1);
	if (n < 0)
		die("mappings: the passed fd: %s", strerror(errno));
	target[n] = '\0';
	if (strcmp(target, "anon_inode:[userfaultfd]"))
		die("mappings: the passed fd is not a userfaultfd (%s)", target);
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		die("userfaultfd: O_NONBLOCK: %s", strerror(errno));
}

static const struct region *find(const struct handler *h, uint64_t addr)
{
	for (unsigned i = 0; i < h->nr_regions; i++)
		if (addr >= h->regions[i].base && addr - h->regions[i].base < h->regions[i].size)
			return &h->regions[i];
	return NULL;
}

static __attribute__((noreturn)) void finish(const struct handler *h, const char *why)
{
	fprintf(stderr, "kiln-uffd-handler: served %" PRIu64 " pages, %" PRIu64 " removed, %s\n",
		h->served, h->removed, why);
	exit(0);
}

/* Fill one faulting page from the file; false if the kernel said "later" (EAGAIN: the VMM's
 * address space is changing, a REMOVE event is on its way). */
static bool serve(struct handler *h, uint64_t addr)
{
	uint64_t page = addr & ~(h->page_size - 1);
	const struct region *r = find(h, page);
	if (!r)
		die("pagefault at %#" PRIx64 ": outside every region", addr);
	struct uffdio_copy c = {.dst = page,
				.src = (uintptr_t)(h->file + r->offset + (page - r->base)),
				.len = h->page_size};
	if (ioctl(h->uffd, UFFDIO_COPY, &c) == 0) {
		h->served++;
		return true;
	}
	if (errno == EEXIST) /* filled meanwhile (another thread's fault on the same page) */
		return true;
	if (errno == EAGAIN)
		return false;
	/* No longer registered: the VMM removed the range (a REMOVE event handled after this
	 * fault was read); unregistering woke the faulting thread, which now gets a zero page. */
	if (errno == ENOENT)
		return true;
	if (errno == ESRCH)
		finish(h, "the VMM's memory is gone");
	die("UFFDIO_COPY at %#" PRIx64 ": %s", page, strerror(errno));
}

/* Pages the VMM dropped (a balloon's MADV_DONTNEED) read as zero from now on: unregister them,
 * so the kernel fills them itself. */
static void removed(struct handler *h, uint64_t start, uint64_t end)
{
	for (unsigned i = 0; i < h->nr_regions; i++) {
		const struct region *r = &h->regions[i];
		uint64_t s = start > r->base ? start : r->base;
		uint64_t e = end < r->base + r->size ? end : r->base + r->size;
		s = (s + h->page_size - 1) & ~(h->page_size - 1);
		e &= ~(h->page_size - 1);
		if (s >= e)
			continue;
		struct uffdio_range rg = {.start = s, .len = e - s};
		if (ioctl(h->uffd, UFFDIO_UNREGISTER, &rg) < 0 && errno != ESRCH)
			die("UFFDIO_UNREGISTER [%#" PRIx64 ", %#" PRIx64 "): %s", s, e,
			    strerror(errno));
		h->removed += (e - s) / h->page_size;
	}
}

/* Read what the uffd has (a bounded batch) into the pending faults; handle removes at once.
 * Each pending fault is a VMM thread waiting, so PENDING_MAX of them means something is wrong:
 * stopping is better than no longer reading the REMOVE event that would unblock them. */
static void read_events(struct handler *h)
{
	struct uffd_msg msgs[EVENTS_PER_READ];
	ssize_t n = read(h->uffd, msgs, sizeof(msgs));
	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return;
		die("userfaultfd: read: %s", strerror(errno));
	}
	if (n % sizeof(msgs[0]))
		die("userfaultfd: read %zd bytes, not whole messages", n);
	for (size_t i = 0; i < (size_t)n / sizeof(msgs[0]); i++) {
		const struct uffd_msg *m = &msgs[i];
		if (m->event == UFFD_EVENT_PAGEFAULT) {
			if (h->nr_pending == PENDING_MAX)
				die("userfaultfd: more than %d page faults waiting", PENDING_MAX);
			h->pending[h->nr_pending++] = m->arg.pagefault.address;
		} else if (m->event == UFFD_EVENT_REMOVE) {
			removed(h, m->arg.remove.start, m->arg.remove.end);
		} else {
			die("userfaultfd: unexpected event %u", m->event);
		}
	}
}

/* The VMM sends nothing after the mappings: true when it hung up; anything else is dropped. */
static bool peer_gone(struct handler *h, short revents)
{
	char junk[4096];
	if (revents & (POLLHUP | POLLRDHUP | POLLERR))
		return true;
	ssize_t n = recv(h->conn, junk, sizeof(junk), MSG_DONTWAIT);
	return n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR);
}

static __attribute__((noreturn)) void serve_loop(struct handler *h)
{
	for (;;) {
		struct pollfd p[2] = {{.fd = h->uffd, .events = POLLIN},
				      {.fd = h->conn, .events = POLLIN | POLLRDHUP}};
		/* With faults deferred by EAGAIN, look again soon. */
		if (poll(p, 2, h->nr_pending ? 1 : -1) < 0 && errno != EINTR)
			die("poll: %s", strerror(errno));
		if (p[0].revents & POLLERR)
			die("userfaultfd: poll error (one the VMM never set up with UFFDIO_API?)");
		if (p[0].revents & POLLIN)
			read_events(h);
		unsigned kept = 0;
		for (unsigned i = 0; i < h->nr_pending; i++)
			if (!serve(h, h->pending[i]))
				h->pending[kept++] = h->pending[i];
		h->nr_pending = kept;
		if (p[1].revents && peer_gone(h, p[1].revents))
			finish(h, "the VMM hung up");
	}
}

int main(int argc, char **argv)
{
	struct handler h = {.uffd = -1, .conn = -1};
	struct stat st;

	if (argc != 3) {
		fprintf(stderr, "usage: kiln-uffd-handler SOCK MEMFILE\n");
		return 2;
	}
	long ps = sysconf(_SC_PAGESIZE);
	h.page_size = ps > 0 ? (uint64_t)ps : 4096;
	int fd = open(argv[2], O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0)
		die("%s: %s", argv[2], strerror(errno));
	if (!S_ISREG(st.st_mode) || st.st_size <= 0)
		die("%s: not a regular, non-empty file", argv[2]);
	h.file_size = (uint64_t)st.st_size;
	/* Read-only and private: the handler never writes it, pages load as faults need them. */
	void *map = mmap(NULL, h.file_size, PROT_READ, MAP_PRIVATE | MAP_NORESERVE, fd, 0);
	if (map == MAP_FAILED)
		die("%s: mmap: %s", argv[2], strerror(errno));
	h.file = map;
	close(fd);

	h.conn = accept_one(listen_on(argv[1]), argv[1]);
	/* Static: reachable, not a leak, when a check below exits. */
	static json_t *layout;
	layout = recv_mappings(h.conn, &h.uffd);
	parse_layout(&h, layout);
	json_decref(layout);
	layout = NULL;
	check_uffd(h.uffd);
	serve_loop(&h);
}
