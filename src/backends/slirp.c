/* slirp.c: user-mode networking backend: libslirp's NAT, DHCP and DNS inside kiln's event loop. */
#include <arpa/inet.h>
#include <errno.h>
#include <slirp/libslirp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "backends/net.h"
#include "kiln-build.h"
#include "util/dynlib.h"
#include "util/log.h"
#include "virtio/queue.h"

#if SLIRP_CONFIG_VERSION_MAX < 4
#error "kiln needs libslirp 4.7 or later (SlirpConfig version 4)"
#endif

/* libslirp is opened when the first user-mode interface starts (util/dynlib.h): a VM without
 * one never maps it or glib. The pointers have the types of libslirp.h's declarations. */
static struct {
	__typeof__(&slirp_new) new_;
	__typeof__(&slirp_cleanup) cleanup;
	__typeof__(&slirp_add_hostfwd) add_hostfwd;
	__typeof__(&slirp_input) input;
	__typeof__(&slirp_pollfds_fill) pollfds_fill;
	__typeof__(&slirp_pollfds_poll) pollfds_poll;
	__typeof__(&slirp_handle_timer) handle_timer;
} sl;

static const struct dynlib_sym slirp_syms[] = {
	{ "slirp_new", (void **)&sl.new_ },
	{ "slirp_cleanup", (void **)&sl.cleanup },
	{ "slirp_add_hostfwd", (void **)&sl.add_hostfwd },
	{ "slirp_input", (void **)&sl.input },
	{ "slirp_pollfds_fill", (void **)&sl.pollfds_fill },
	{ "slirp_pollfds_poll", (void **)&sl.pollfds_poll },
	{ "slirp_handle_timer", (void **)&sl.handle_timer },
};
static struct dynlib slirp_lib = DYNLIB_INIT(KILN_SLIRP_SONAME, slirp_syms);

/*
 * Integration with the event loop. slirp wants poll(): before sleeping, slirp_pollfds_fill()
 * lists (fd, events) and a timeout; after, slirp_pollfds_poll() reads what each fd got. kiln
 * keeps one epoll set of its own (epfd) in the event loop and, after every round, brings it in
 * line with slirp's latest list (add, modify, delete), and arms one timerfd for the earliest of
 * slirp's timeout and its timers. The same set holds an eventfd (rx_efd) that wakes the device
 * when frames wait for it.
 *
 * Frames for the guest (slirp's send_packet) go to a bounded queue that the device reads with
 * recv(). While the queue is above its high mark, slirp's sockets are not polled for input,
 * so data waits in the host's socket buffers instead of being dropped.
 */
#define USER_Q_MAX 1024	    /* frames; slirp's own bursts beyond this are dropped */
#define USER_Q_HIGH 768	    /* stop reading host sockets */
#define USER_Q_LOW 256	    /* read them again */
#define TAG_TIMER (1ULL << 32) /* epoll data of the timerfd; of rx_efd: */
#define TAG_RX (2ULL << 32)    /* a slirp socket's data is its fd */

struct user_frame {
	size_t len;
	uint8_t data[];
};

struct user_timer {
	struct user_timer *next;
	SlirpTimerId id;
	SlirpTimerCb cb; /* timer_new() style, else slirp_handle_timer(id) */
	void *cb_opaque;
	int64_t expire_ms; /* -1: not armed */
};

struct pfd {
	int fd;
	int events;  /* SLIRP_POLL_* wanted */
	int revents; /* SLIRP_POLL_* got */
};

struct watched {
	int fd;
	uint32_t events; /* in epfd with these */
};

struct user_net {
	struct net_backend be; /* first */
	Slirp *slirp;
	int epfd, timer_fd, rx_efd;
	bool registered;
	_Atomic bool rx_poll;	/* the device wants frames (set_poll, any thread) */
	bool throttled;		/* host sockets not polled for input */
	bool wake_pending;	/* rx_efd written since the last round */

	struct user_frame *q[USER_Q_MAX];
	unsigned q_first, q_n;

	struct pfd *pfds; /* slirp's list of the last fill */
	unsigned npfds, pfd_cap;
	struct watched *w; /* what epfd holds (slirp sockets only) */
	unsigned nw, w_cap;
	struct user_timer *timers;
	uint8_t txbuf[NET_MAX_FRAME];
};

static struct user_net *to_user(struct net_backend *b) { return (struct user_net *)b; }

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void rx_wake(struct user_net *u)
{
	uint64_t one = 1;

	u->wake_pending = true;
	if (write(u->rx_efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_warn_ratelimited("%s: eventfd: %s", u->be.name, strerror(errno));
}

/* ---- slirp's callbacks ---------------------------------------------------------------------- */

static ssize_t cb_send_packet(const void *buf, size_t len, void *opaque)
{
	struct user_net *u = opaque;
	struct user_frame *f;

	if (len > NET_MAX_FRAME || u->q_n == USER_Q_MAX || !(f = malloc(sizeof(*f) + len))) {
		atomic_fetch_add(&u->be.rx_dropped, 1);
		return (ssize_t)len; /* as a wire would: TCP retransmits */
	}
	f->len = len;
	memcpy(f->data, buf, len);
	u->q[(u->q_first + u->q_n++) % USER_Q_MAX] = f;
	if (u->q_n == 1)
		rx_wake(u); /* never call the device from here: it may hold its lock (slirp_input) */
	return (ssize_t)len;
}

static void cb_guest_error(const char *msg, void *opaque)
{
	struct user_net *u = opaque;

	log_warn_ratelimited("%s: guest error: %s", u->be.name, msg);
}

static int64_t cb_clock_get_ns(void *opaque) { return now_ns(); }

static struct user_timer *timer_add(struct user_net *u, SlirpTimerId id, SlirpTimerCb cb,
				    void *cb_opaque)
{
	struct user_timer *t = calloc(1, sizeof(*t));

	if (!t) {
		log_err("%s: out of memory for a timer", u->be.name);
		return NULL;
	}
	t->id = id;
	t->cb = cb;
	t->cb_opaque = cb_opaque;
	t->expire_ms = -1;
	t->next = u->timers;
	u->timers = t;
	return t;
}

static void *cb_timer_new(SlirpTimerCb cb, void *cb_opaque, void *opaque)
{
	return timer_add(opaque, SLIRP_TIMER_NUM, cb, cb_opaque);
}

static void *cb_timer_new_opaque(SlirpTimerId id, void *cb_opaque, void *opaque)
{
	return timer_add(opaque, id, NULL, cb_opaque);
}

static void cb_timer_free(void *timer, void *opaque)
{
	struct user_net *u = opaque;

	for (struct user_timer **p = &u->timers; *p; p = &(*p)->next) {
		if (*p == timer) {
			*p = (*p)->next;
			free(timer);
			return;
		}
	}
}

/* The timerfd is re-armed after the round that follows (sync). */
static void cb_timer_mod(void *timer, int64_t expire_ms, void *opaque)
{
	((struct user_timer *)timer)->expire_ms = expire_ms;
}

static void cb_register_poll_fd(int fd, void *opaque) {}

static void unwatch(struct user_net *u, unsigned i)
{
	epoll_ctl(u->epfd, EPOLL_CTL_DEL, u->w[i].fd, NULL);
	u->w[i] = u->w[--u->nw];
}

/* slirp is about to close fd: forget it before the number can be reused. */
static void cb_unregister_poll_fd(int fd, void *opaque)
{
	struct user_net *u = opaque;

	for (unsigned i = 0; i < u->nw; i++) {
		if (u->w[i].fd == fd) {
			unwatch(u, i);
			return;
		}
	}
}

static void cb_notify(void *opaque) {}

static const SlirpCb slirp_cbs = {
    .send_packet = cb_send_packet,
    .guest_error = cb_guest_error,
    .clock_get_ns = cb_clock_get_ns,
    .timer_new = cb_timer_new,
    .timer_free = cb_timer_free,
    .timer_mod = cb_timer_mod,
    .register_poll_fd = cb_register_poll_fd,
    .unregister_poll_fd = cb_unregister_poll_fd,
    .notify = cb_notify,
    .timer_new_opaque = cb_timer_new_opaque,
};

/* ---- poll set ------------------------------------------------------------------------------- */

static int cb_add_poll(int fd, int events, void *opaque)
{
	struct user_net *u = opaque;

	if (u->npfds == u->pfd_cap) {
		unsigned cap = u->pfd_cap ? 2 * u->pfd_cap : 16;
		struct pfd *p = realloc(u->pfds, cap * sizeof(*p));

		if (!p)
			return -1; /* slirp skips this fd for the round */
		u->pfds = p;
		u->pfd_cap = cap;
	}
	u->pfds[u->npfds] = (struct pfd){.fd = fd, .events = events};
	return (int)u->npfds++;
}

static int cb_get_revents(int idx, void *opaque)
{
	struct user_net *u = opaque;

	return idx >= 0 && (unsigned)idx < u->npfds ? u->pfds[idx].revents : 0;
}

static uint32_t to_epoll(int ev, bool throttled)
{
	uint32_t e = 0;

	if ((ev & SLIRP_POLL_IN) && !throttled)
		e |= EPOLLIN;
	if (ev & SLIRP_POLL_OUT)
		e |= EPOLLOUT;
	if (ev & SLIRP_POLL_PRI)
		e |= EPOLLPRI;
	return e;
}

static int from_epoll(uint32_t e)
{
	return ((e & EPOLLIN) ? SLIRP_POLL_IN : 0) | ((e & EPOLLOUT) ? SLIRP_POLL_OUT : 0) |
	       ((e & EPOLLPRI) ? SLIRP_POLL_PRI : 0) | ((e & EPOLLERR) ? SLIRP_POLL_ERR : 0) |
	       ((e & EPOLLHUP) ? SLIRP_POLL_HUP : 0);
}

/* Put (fd, events) in epfd: add or modify, whichever the kernel says it needs. */
static void watch(struct user_net *u, int fd, uint32_t events, bool known)
{
	struct epoll_event e = {.events = events, .data.u64 = (uint64_t)fd};

	if (epoll_ctl(u->epfd, known ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &e) == 0)
		return;
	if (epoll_ctl(u->epfd, known ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, fd, &e) < 0)
		log_warn_ratelimited("%s: epoll fd %d: %s", u->be.name, fd, strerror(errno));
}

/* Ask slirp for its fds and timeout, and make epfd and the timerfd match. */
static void sync_poll(struct user_net *u)
{
	uint32_t timeout = UINT32_MAX;
	int64_t now_ms, next_ms = -1;

	u->wake_pending = false;
	u->throttled = u->q_n >= USER_Q_HIGH || (u->throttled && u->q_n > USER_Q_LOW);
	u->npfds = 0;
	sl.pollfds_fill(u->slirp, &timeout, cb_add_poll, u);

	for (unsigned i = 0; i < u->npfds; i++) {
		int fd = u->pfds[i].fd;
		uint32_t ev = 0;
		unsigned j;
		bool first = true;

		/* An fd listed twice gets both sets of events, once. */
		for (unsigned k = 0; k < u->npfds; k++) {
			if (u->pfds[k].fd != fd)
				continue;
			first = first && k >= i;
			ev |= to_epoll(u->pfds[k].events, u->throttled);
		}
		if (!first)
			continue;
		for (j = 0; j < u->nw && u->w[j].fd != fd; j++)
			;
		if (j < u->nw) {
			if (u->w[j].events != ev)
				watch(u, fd, ev, true);
			u->w[j].events = ev;
			continue;
		}
		if (u->nw == u->w_cap) {
			unsigned cap = u->w_cap ? 2 * u->w_cap : 16;
			struct watched *w = realloc(u->w, cap * sizeof(*w));

			if (!w)
				continue; /* not watched this round; the timeout still runs slirp */
			u->w = w;
			u->w_cap = cap;
		}
		watch(u, fd, ev, false);
		u->w[u->nw++] = (struct watched){.fd = fd, .events = ev};
	}
	/* Drop what slirp no longer lists. */
	for (unsigned j = u->nw; j-- > 0;) {
		bool keep = false;

		for (unsigned i = 0; i < u->npfds && !keep; i++)
			keep = u->pfds[i].fd == u->w[j].fd;
		if (!keep)
			unwatch(u, j);
	}

	now_ms = now_ns() / 1000000;
	if (timeout != UINT32_MAX)
		next_ms = now_ms + timeout;
	for (struct user_timer *t = u->timers; t; t = t->next)
		if (t->expire_ms >= 0 && (next_ms < 0 || t->expire_ms < next_ms))
			next_ms = t->expire_ms;
	struct itimerspec its = {0};
	if (next_ms >= 0) {
		int64_t at_ns = (next_ms <= now_ms ? now_ms + 1 : next_ms) * 1000000LL;

		its.it_value.tv_sec = at_ns / 1000000000LL;
		its.it_value.tv_nsec = at_ns % 1000000000LL;
	}
	if (timerfd_settime(u->timer_fd, TFD_TIMER_ABSTIME, &its, NULL) < 0)
		log_warn_ratelimited("%s: timerfd: %s", u->be.name, strerror(errno));
}

/* Fire the timers that are due. */
static void run_timers(struct user_net *u)
{
	int64_t now_ms = now_ns() / 1000000;
	bool again = true;

	while (again) { /* a callback may free or re-arm timers: rescan after each */
		again = false;
		for (struct user_timer *t = u->timers; t; t = t->next) {
			if (t->expire_ms < 0 || t->expire_ms > now_ms)
				continue;
			t->expire_ms = -1;
			if (t->cb)
				t->cb(t->cb_opaque);
			else
				sl.handle_timer(u->slirp, t->id, t->cb_opaque);
			again = true;
			break;
		}
	}
}

/* epfd readable (event-loop thread, no device lock held). */
static void user_event(void *opaque, uint32_t events)
{
	struct user_net *u = opaque;
	struct epoll_event evs[64];
	bool rx = false, poll = false;
	uint64_t v;
	int n = epoll_wait(u->epfd, evs, 64, 0);

	for (unsigned i = 0; i < u->npfds; i++)
		u->pfds[i].revents = 0;
	for (int k = 0; k < n; k++) {
		uint64_t tag = evs[k].data.u64;

		if (tag == TAG_TIMER) {
			if (read(u->timer_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
				log_warn_ratelimited("%s: timerfd: %s", u->be.name, strerror(errno));
			run_timers(u);
			poll = true; /* slirp's TCP timers run in slirp_pollfds_poll */
		} else if (tag == TAG_RX) {
			if (read(u->rx_efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
				log_warn_ratelimited("%s: eventfd: %s", u->be.name, strerror(errno));
			rx = true;
		} else {
			for (unsigned i = 0; i < u->npfds; i++)
				if (u->pfds[i].fd == (int)tag)
					u->pfds[i].revents |= from_epoll(evs[k].events);
			poll = true;
		}
	}
	if (poll)
		sl.pollfds_poll(u->slirp, 0, cb_get_revents, u);
	sync_poll(u);
	if ((rx || u->q_n) && atomic_load(&u->rx_poll) && u->be.ready)
		u->be.ready(u->be.opaque, true, false);
}

/* ---- backend ops ---------------------------------------------------------------------------- */

static ssize_t user_recv(struct net_backend *b, void *buf, size_t len)
{
	struct user_net *u = to_user(b);
	struct user_frame *f;
	size_t n;

	if (!u->q_n)
		return -EAGAIN;
	f = u->q[u->q_first];
	u->q_first = (u->q_first + 1) % USER_Q_MAX;
	u->q_n--;
	n = MIN(f->len, len - NET_HDR_LEN);
	memset(buf, 0, NET_HDR_LEN); /* slirp's frames are whole: no offloads */
	memcpy((uint8_t *)buf + NET_HDR_LEN, f->data, n);
	free(f);
	if (u->throttled && u->q_n == USER_Q_LOW)
		rx_wake(u); /* a round re-enables input on the sockets */
	return (ssize_t)(NET_HDR_LEN + n);
}

static int user_send(struct net_backend *b, const struct iovec *iov, unsigned n, size_t len)
{
	struct user_net *u = to_user(b);
	size_t flen = iov_to_buf(iov, n, NET_HDR_LEN, u->txbuf, sizeof(u->txbuf));

	if (len < NET_HDR_LEN || flen != len - NET_HDR_LEN)
		return -EINVAL;
	sl.input(u->slirp, u->txbuf, (int)flen);
	/* The frame may have opened sockets or left data for one: a round re-syncs the poll set. */
	if (!u->wake_pending)
		rx_wake(u);
	return 0;
}

static void user_set_poll(struct net_backend *b, bool rx, bool tx)
{
	struct user_net *u = to_user(b);

	/* tx never waits: slirp_input takes every frame. */
	if (!atomic_exchange(&u->rx_poll, rx) && rx)
		rx_wake(u);
}

static void user_destroy(struct net_backend *b)
{
	struct user_net *u = to_user(b);

	if (u->registered)
		event_del(b->ev, u->epfd);
	if (u->slirp)
		sl.cleanup(u->slirp); /* frees its timers through cb_timer_free */
	while (u->timers)
		cb_timer_free(u->timers, u);
	for (unsigned i = 0; i < u->q_n; i++)
		free(u->q[(u->q_first + i) % USER_Q_MAX]);
	if (u->epfd >= 0)
		close(u->epfd);
	if (u->timer_fd >= 0)
		close(u->timer_fd);
	if (u->rx_efd >= 0)
		close(u->rx_efd);
	free(u->pfds);
	free(u->w);
	free(u);
}

static const struct net_backend_ops user_ops = {
    .kind = "user",
    .recv = user_recv,
    .send = user_send,
    .set_poll = user_set_poll,
    .destroy = user_destroy,
};

static struct in_addr ip4(const char *s)
{
	struct in_addr a = {0};

	inet_pton(AF_INET, s, &a);
	return a;
}

/* The user's forwards; a port in use is an error naming it. */
static int add_forwards(struct user_net *u, const struct net_config *cfg, char *err,
			size_t errlen)
{
	struct net_hostfwd fwd[VM_CONFIG_MAX_HOSTFWD];
	char why[160], host[INET_ADDRSTRLEN];
	unsigned n = 0;

	if (!cfg->hostfwd)
		return 0;
	if (vm_config_parse_hostfwd(cfg->hostfwd, fwd, &n, why, sizeof(why))) {
		snprintf(err, errlen, "%s", why);
		return -EINVAL;
	}
	for (unsigned i = 0; i < n; i++) {
		struct in_addr h = {.s_addr = fwd[i].host_addr};
		struct in_addr g = {.s_addr = fwd[i].guest_addr ? fwd[i].guest_addr
								 : ip4("10.0.2.15").s_addr};

		errno = 0;
		if (sl.add_hostfwd(u->slirp, fwd[i].udp, h, fwd[i].host_port, g,
				      fwd[i].guest_port) < 0) {
			int e = errno ? errno : EADDRINUSE;

			inet_ntop(AF_INET, &h, host, sizeof(host));
			snprintf(err, errlen, "hostfwd %s:%s:%u: %s", fwd[i].udp ? "udp" : "tcp", host,
				 fwd[i].host_port, strerror(e));
			return -e;
		}
	}
	return 0;
}

int net_slirp_create(const struct net_config *cfg, struct event_loop *ev,
		     struct net_backend **out, char *err, size_t errlen)
{
	struct user_net *u = calloc(1, sizeof(*u));
	unsigned mtu = cfg->mtu ? cfg->mtu : VM_CONFIG_DEFAULT_MTU;
	SlirpConfig sc = {
	    .version = 4,
	    .in_enabled = true,
	    .vnetwork = ip4("10.0.2.0"),
	    .vnetmask = ip4("255.255.255.0"),
	    .vhost = ip4("10.0.2.2"),
	    .vdhcp_start = ip4("10.0.2.15"),
	    .vnameserver = ip4("10.0.2.3"),
	    .if_mtu = mtu,
	    .if_mru = mtu,
	    /* 10.0.2.2 is the host's loopback only when asked for (version 4 field): an
	     * untrusted guest must not reach services that listen on 127.0.0.1 only. */
	    .disable_host_loopback = !cfg->host_loopback,
	};
	char why[256];
	int ret = dynlib_load(&slirp_lib, why, sizeof(why));

	if (ret) {
		free(u);
		snprintf(err, errlen, "user: %s", why);
		return ret;
	}
	if (!u) {
		snprintf(err, errlen, "user: out of memory");
		return -ENOMEM;
	}
	u->be.ops = &user_ops;
	u->be.ev = ev;
	snprintf(u->be.name, sizeof(u->be.name), "user");
	u->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	u->rx_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	u->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (u->timer_fd < 0 || u->rx_efd < 0 || u->epfd < 0) {
		ret = -errno;
		snprintf(err, errlen, "user: %s", strerror(errno));
		goto fail;
	}
	struct epoll_event te = {.events = EPOLLIN, .data.u64 = TAG_TIMER};
	struct epoll_event re = {.events = EPOLLIN, .data.u64 = TAG_RX};
	if (epoll_ctl(u->epfd, EPOLL_CTL_ADD, u->timer_fd, &te) < 0 ||
	    epoll_ctl(u->epfd, EPOLL_CTL_ADD, u->rx_efd, &re) < 0) {
		ret = -errno;
		snprintf(err, errlen, "user: epoll: %s", strerror(errno));
		goto fail;
	}
	u->slirp = sl.new_(&sc, &slirp_cbs, u);
	if (!u->slirp) {
		ret = -ENOMEM;
		snprintf(err, errlen, "user: libslirp could not start");
		goto fail;
	}
	ret = add_forwards(u, cfg, err, errlen);
	if (ret)
		goto fail;
	if (ev) {
		ret = event_add(ev, u->epfd, EPOLLIN, user_event, u);
		if (ret) {
			snprintf(err, errlen, "user: event loop: %s", strerror(-ret));
			goto fail;
		}
		u->registered = true;
	}
	sync_poll(u);
	*out = &u->be;
	return 0;

fail:
	user_destroy(&u->be);
	return ret;
}
