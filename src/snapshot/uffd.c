/* uffd.c: kiln's side of the Uffd memory backend: anonymous guest RAM registered with a
 * userfaultfd, and Firecracker's handshake (the layout as JSON, the uffd by SCM_RIGHTS). */
#include "snapshot/uffd.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* Firecracker asks for this one feature, whether or not a balloon will use it. */
#define UFFD_FEATURES UFFD_FEATURE_EVENT_REMOVE
/* Retry period while the listener's backlog is full or the handler has not read yet. */
#define POLL_STEP_MS 2

int uffd_mappings_json(const struct guest_mem *m, char *buf, size_t len)
{
	size_t at = 0;
	int n;

	if (len < 3)
		return -ENOSPC;
	buf[at++] = '[';
	for (unsigned i = 0; i < m->nr_regions; i++) {
		const struct mem_region *r = &m->regions[i];
		n = snprintf(buf + at, len - at,
			     "%s{\"base_host_virt_addr\":%llu,\"size\":%llu,\"offset\":%llu,"
			     "\"page_size\":%llu,\"page_size_kib\":%llu}",
			     i ? "," : "", (unsigned long long)(uintptr_t)r->hva,
			     (unsigned long long)r->size, (unsigned long long)r->offset,
			     GUEST_PAGE_SIZE, GUEST_PAGE_SIZE);
		if (n < 0 || (size_t)n >= len - at)
			return -ENOSPC;
		at += (size_t)n;
	}
	if (len - at < 2)
		return -ENOSPC;
	buf[at++] = ']';
	buf[at] = '\0';
	return (int)at;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * A userfaultfd that also takes faults from kernel mode (KVM, copy_to_user): the system call
 * (needs CAP_SYS_PTRACE unless vm.unprivileged_userfaultfd=1), else /dev/userfaultfd (what
 * the jailer provides; file permissions decide).
 */
static int uffd_open(char *err, size_t errlen)
{
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (fd >= 0)
		return fd;
	int sys_errno = errno;
	if (sys_errno != EPERM && sys_errno != ENOSYS) {
		snprintf(err, errlen, "userfaultfd: %s", strerror(sys_errno));
		return -sys_errno;
	}
	int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
	if (dev >= 0) {
		fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
		int dev_errno = errno;
		close(dev);
		if (fd >= 0)
			return fd;
		snprintf(err, errlen, "userfaultfd: /dev/userfaultfd: USERFAULTFD_IOC_NEW: %s",
			 strerror(dev_errno));
		return -dev_errno;
	}
	int dev_errno = errno;
	if (sys_errno == EPERM)
		snprintf(err, errlen,
			 "userfaultfd: not permitted (vm.unprivileged_userfaultfd=0 and no "
			 "CAP_SYS_PTRACE), and /dev/userfaultfd: %s",
			 strerror(dev_errno));
	else
		snprintf(err, errlen, "userfaultfd: the kernel has no userfaultfd (%s)",
			 strerror(sys_errno));
	return sys_errno == EPERM ? -EPERM : -ENOSYS;
}

/* UFFDIO_API with Firecracker's features, then register every region for missing pages. */
static int uffd_setup(int uffd, const struct guest_mem *m, uint64_t *features, char *err,
		      size_t errlen)
{
	struct uffdio_api api = {.api = UFFD_API, .features = UFFD_FEATURES};
	if (ioctl(uffd, UFFDIO_API, &api) < 0) {
		int e = errno;
		if (e == EINVAL)
			snprintf(err, errlen,
				 "userfaultfd: UFFDIO_API: the kernel does not offer "
				 "UFFD_FEATURE_EVENT_REMOVE");
		else
			snprintf(err, errlen, "userfaultfd: UFFDIO_API: %s", strerror(e));
		return -e;
	}
	*features = api.features;
	for (unsigned i = 0; i < m->nr_regions; i++) {
		const struct mem_region *r = &m->regions[i];
		struct uffdio_register reg = {
		    .range = {.start = (uintptr_t)r->hva, .len = r->size},
		    .mode = UFFDIO_REGISTER_MODE_MISSING,
		};
		if (ioctl(uffd, UFFDIO_REGISTER, &reg) < 0) {
			int e = errno;
			snprintf(err, errlen,
				 "userfaultfd: UFFDIO_REGISTER region %u (%llu bytes): %s", i,
				 (unsigned long long)r->size, strerror(e));
			return -e;
		}
		/* The handler fills pages with UFFDIO_COPY (or UFFDIO_ZEROPAGE). */
		if (!(reg.ioctls & (1ULL << _UFFDIO_COPY))) {
			snprintf(err, errlen,
				 "userfaultfd: region %u: the kernel offers no UFFDIO_COPY there",
				 i);
			return -EOPNOTSUPP;
		}
	}
	return 0;
}

/* Wait (at most until deadline) for events on fd; 0 when they came, -ETIMEDOUT, or -errno. */
static int wait_fd(int fd, short events, int64_t deadline)
{
	for (;;) {
		int64_t left = deadline - now_ms();
		if (left <= 0)
			return -ETIMEDOUT;
		struct pollfd p = {.fd = fd, .events = events};
		int n = poll(&p, 1, (int)MIN(left, 1000));
		if (n < 0 && errno != EINTR)
			return -errno;
		if (n > 0)
			return 0;
	}
}

/* A non-blocking connection to path; a listener whose backlog stays full times out. */
static int connect_handler(const char *path, int64_t deadline, char *err, size_t errlen)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	static const char w[] = "mem_backend: backend_path";

	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "%s %s: longer than a Unix socket path can be (%zu bytes)", w,
			 path, sizeof(sa.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (s < 0) {
		int e = errno;
		snprintf(err, errlen, "%s %s: socket: %s", w, path, strerror(e));
		return -e;
	}
	/* A Unix stream connect never returns EINPROGRESS: it is queued at once or, with the
	 * listener's backlog full, fails with EAGAIN. */
	while (connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		if (e == EINTR)
			continue;
		if (e == EAGAIN && now_ms() < deadline) {
			poll(NULL, 0, POLL_STEP_MS);
			continue;
		}
		if (e == EAGAIN)
			snprintf(err, errlen,
				 "%s %s: connect: the handler accepts no connection "
				 "(its backlog stayed full)",
				 w, path);
		else
			snprintf(err, errlen, "%s %s: connect: %s", w, path, strerror(e));
		close(s);
		return e == EAGAIN ? -ETIMEDOUT : -e;
	}
	return s;
}

/* The message with the uffd attached to its first byte; the rest (if the socket took only
 * part) without. */
static int send_handshake(int s, int uffd, const char *msg, size_t len, int64_t deadline)
{
	size_t sent = 0;
	while (sent < len) {
		struct iovec iov = {.iov_base = (void *)(msg + sent), .iov_len = len - sent};
		union {
			char buf[CMSG_SPACE(sizeof(int))];
			struct cmsghdr align;
		} ctl;
		struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
		if (sent == 0) {
			memset(&ctl, 0, sizeof(ctl));
			mh.msg_control = ctl.buf;
			mh.msg_controllen = sizeof(ctl.buf);
			struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
			c->cmsg_level = SOL_SOCKET;
			c->cmsg_type = SCM_RIGHTS;
			c->cmsg_len = CMSG_LEN(sizeof(int));
			memcpy(CMSG_DATA(c), &uffd, sizeof(int));
		}
		ssize_t n = sendmsg(s, &mh, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				return -errno;
			int ret = wait_fd(s, POLLOUT, deadline);
			if (ret)
				return ret;
			continue;
		}
		sent += (size_t)n;
	}
	return 0;
}

/*
 * Until the handler has read the whole message (SIOCOUTQ: bytes sent that the peer has not
 * read yet), so that a listener that never accepts or never reads is an error now instead of
 * a guest frozen at its first page fault. -EPIPE if the peer has hung up (before reading, or
 * at once after: a handler that rejects the layout).
 */
static int wait_taken(int s, int64_t deadline)
{
	/* A handler that is already waiting reads within microseconds: look again soon at
	 * first, then every POLL_STEP_MS. */
	long step_us = 10;
	for (;;) {
		/* Hangup first: a peer that closes frees what it had not read, and SIOCOUTQ
		 * would then say 0 as if it had read it. */
		struct pollfd p = {.fd = s, .events = POLLRDHUP};
		if (poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)))
			return -EPIPE;
		int queued = 0;
		if (ioctl(s, SIOCOUTQ, &queued) < 0)
			return -errno;
		if (queued == 0)
			return 0;
		if (now_ms() >= deadline)
			return -ETIMEDOUT;
		struct timespec ts = {.tv_nsec = step_us * 1000};
		nanosleep(&ts, NULL);
		step_us = MIN(step_us * 2, POLL_STEP_MS * 1000L);
	}
}

int uffd_backend_attach(struct guest_mem *m, uint64_t ram_size, const char *sock_path,
			int timeout_ms, struct uffd_backend *ub, char *err, size_t errlen)
{
	static const char w[] = "mem_backend: backend_path";
	char msg[1024];
	int ret;

	ub->uffd = ub->sock = -1;
	ub->features = 0;
	int64_t deadline = now_ms() + (timeout_ms > 0 ? timeout_ms : 0);

	ret = guest_mem_init(m, ram_size);
	if (ret) {
		snprintf(err, errlen, "mem_backend: guest RAM of %llu bytes: %s",
			 (unsigned long long)ram_size, strerror(-ret));
		return ret;
	}
	int len = uffd_mappings_json(m, msg, sizeof(msg));
	if (len < 0) { /* cannot happen with GUEST_MEM_MAX_REGIONS regions; checked anyway */
		snprintf(err, errlen, "mem_backend: the region layout does not fit in a message");
		ret = len;
		goto fail;
	}
	ret = uffd_open(err, errlen);
	if (ret < 0)
		goto fail;
	ub->uffd = ret;
	ret = uffd_setup(ub->uffd, m, &ub->features, err, errlen);
	if (ret)
		goto fail;
	ret = connect_handler(sock_path, deadline, err, errlen);
	if (ret < 0)
		goto fail;
	ub->sock = ret;
	ret = send_handshake(ub->sock, ub->uffd, msg, (size_t)len, deadline);
	if (ret == -ETIMEDOUT)
		snprintf(err, errlen, "%s %s: sendmsg: the handler took nothing within %d ms", w,
			 sock_path, timeout_ms);
	else if (ret)
		snprintf(err, errlen, "%s %s: sendmsg: %s", w, sock_path, strerror(-ret));
	if (ret)
		goto fail;
	ret = wait_taken(ub->sock, deadline);
	if (ret == -ETIMEDOUT)
		snprintf(err, errlen,
			 "%s %s: the handler did not read the memory mappings within %d ms "
			 "(not accepting, or not reading)",
			 w, sock_path, timeout_ms);
	else if (ret == -EPIPE)
		snprintf(err, errlen,
			 "%s %s: the handler closed the connection (before reading the memory "
			 "mappings, or rejecting them: see its log)",
			 w, sock_path);
	else if (ret)
		snprintf(err, errlen, "%s %s: SIOCOUTQ: %s", w, sock_path, strerror(-ret));
	if (ret)
		goto fail;
	return 0;

fail:
	uffd_backend_close(ub);
	guest_mem_destroy(m);
	return ret;
}

void uffd_backend_close(struct uffd_backend *ub)
{
	if (ub->sock >= 0)
		close(ub->sock);
	if (ub->uffd >= 0)
		close(ub->uffd);
	ub->sock = ub->uffd = -1;
	ub->features = 0;
}
