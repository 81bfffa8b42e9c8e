/* console.c: virtio-console with one port (the guest's hvc0): output to a sink (a file or stdout),
 * input from stdin. */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "util/log.h"
#include "virtio/virtio.h"
#include "vmm/output.h"

#define CONSOLE_QUEUE_SIZE 64
#define CONSOLE_IOV_CAP 16
#define CONSOLE_RXQ 0 /* receiveq (port 0): host -> guest */
#define CONSOLE_TXQ 1 /* transmitq (port 0): guest -> host */
#define CONSOLE_RX_BUF 4096

/* Device configuration (5.3.4); only meaningful with F_SIZE / F_MULTIPORT, not offered. */
struct virtio_console_config {
	uint16_t cols;
	uint16_t rows;
	uint32_t max_nr_ports;
	uint32_t emerg_wr;
};
static_assert(sizeof(struct virtio_console_config) == 12, "virtio 1.2 5.3.4");

struct virtio_console {
	struct virtio_dev vdev; /* first: the device core's view */
	int in_fd;
	struct output out; /* guest output (vmm/output.h): never waits for its reader */
	int in_flags;	    /* in_fd's file status flags before we made it non-blocking */
	bool in_registered; /* in_fd is in the event loop */
	bool in_paused;	    /* not read: input is waiting for receive buffers */
	uint8_t rx[CONSOLE_RX_BUF];
	size_t rx_len, rx_off; /* input read from in_fd, not yet given to the guest */
	uint64_t rx_bytes, tx_bad_chains;
};

static struct virtio_console *to_con(struct virtio_dev *d) { return (struct virtio_console *)d; }

static void input_pause(struct virtio_console *c, bool pause)
{
	if (!c->in_registered || c->in_paused == pause)
		return;
	c->in_paused = pause;
	event_mod(c->vdev.ev, c->in_fd, pause ? 0 : EPOLLIN);
}

/* Give pending input to the guest's receive buffers; read more only when all of it went. */
static void console_rx(struct virtio_console *c)
{
	struct virtq *vq = &c->vdev.queues[CONSOLE_RXQ].vq;
	struct iovec iov[CONSOLE_IOV_CAP];
	struct vq_chain ch;
	bool pushed = false;
	int ret;

	while (c->rx_off < c->rx_len && virtio_queue_ready(&c->vdev, CONSOLE_RXQ)) {
		ret = vq_pop(vq, &ch, iov, CONSOLE_IOV_CAP);
		if (ret == 0) {
			if (vq_enable_notify(vq))
				continue; /* buffers arrived meanwhile */
			break;		  /* the guest's kick on the receive queue resumes us */
		}
		if (ret == -E2BIG) {
			vq_push(vq, ch.head, 0);
			pushed = true;
			continue;
		}
		if (ret < 0) {
			virtio_dev_needs_reset(&c->vdev, "malformed receive ring (%s)",
					       strerror(-ret));
			break;
		}
		size_t n = iov_from_buf(iov + ch.n_out, ch.n_in, 0, c->rx + c->rx_off,
					c->rx_len - c->rx_off);
		vq_push(vq, ch.head, (uint32_t)n);
		pushed = true;
		c->rx_off += n;
		c->rx_bytes += n;
	}
	if (pushed)
		virtio_queue_interrupt(&c->vdev, CONSOLE_RXQ);
	if (c->rx_off >= c->rx_len)
		c->rx_off = c->rx_len = 0;
	input_pause(c, c->rx_len != 0);
}

/* in_fd readable (event-loop thread). */
static void console_input(void *opaque, uint32_t events)
{
	struct virtio_console *c = opaque;
	ssize_t n;

	pthread_mutex_lock(&c->vdev.lock);
	virtio_dispatch_begin(&c->vdev); /* a ring's worth of chains at most, then a self-kick */
	if (!c->rx_len) {
		n = read(c->in_fd, c->rx, sizeof(c->rx));
		if (n > 0) {
			c->rx_len = (size_t)n;
			c->rx_off = 0;
		} else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
			/* EOF or error: the guest keeps running without console input. */
			event_del(c->vdev.ev, c->in_fd);
			c->in_registered = false;
		}
	}
	console_rx(c);
	virtio_dispatch_end(&c->vdev);
	pthread_mutex_unlock(&c->vdev.lock);
}

static void console_tx(struct virtio_console *c)
{
	struct virtq *vq = &c->vdev.queues[CONSOLE_TXQ].vq;
	struct iovec iov[CONSOLE_IOV_CAP];
	struct vq_chain ch;
	int ret;

	do {
		while ((ret = vq_pop(vq, &ch, iov, CONSOLE_IOV_CAP)) != 0) {
			if (ret == -E2BIG) {
				vq_push(vq, ch.head, 0);
				c->tx_bad_chains++;
				continue;
			}
			if (ret < 0) {
				virtio_dev_needs_reset(&c->vdev, "malformed transmit ring (%s)",
						       strerror(-ret));
				goto out;
			}
			/* Written, kept or dropped (and counted) at once: the chain goes back now. */
			output_writev(&c->out, iov, ch.n_out);
			vq_push(vq, ch.head, 0);
		}
	} while (vq_enable_notify(vq));
out:
	virtio_queue_interrupt(&c->vdev, CONSOLE_TXQ);
}

static void console_queue_notify(struct virtio_dev *d, unsigned q)
{
	if (q == CONSOLE_TXQ)
		console_tx(to_con(d));
	else
		console_rx(to_con(d));
}

static void console_config_read(struct virtio_dev *d, uint32_t off, void *buf, uint32_t len)
{
	struct virtio_console_config cfg = {.max_nr_ports = htole32(1)};

	memcpy(buf, (uint8_t *)&cfg + off, len);
}

static void console_destroy(struct virtio_dev *d)
{
	struct virtio_console *c = to_con(d);

	if (c->in_registered)
		event_del(d->ev, c->in_fd);
	if (c->in_flags >= 0) /* the terminal goes back to blocking reads for the shell */
		fcntl(c->in_fd, F_SETFL, c->in_flags);
	output_close(&c->out);
	virtio_dev_cleanup(d);
	free(c);
}

static const struct virtio_dev_ops console_ops = {
    .name = "virtio-console",
    .type = VIRTIO_ID_CONSOLE,
    .pci_class = 0x078000, /* simple communication controller, other (as QEMU) */
    .config_read = console_config_read,
    .queue_notify = console_queue_notify,
    .destroy = console_destroy,
};

struct output *virtio_console_output(struct virtio_dev *d) { return &to_con(d)->out; }

int virtio_console_create(const struct virtio_env *env, int in_fd, int out_fd,
			  struct virtio_dev **out, char *err, size_t errlen)
{
	struct virtio_console *c = calloc(1, sizeof(*c));
	int ret;

	if (!c) {
		snprintf(err, errlen, "virtio-console: out of memory");
		return -ENOMEM;
	}
	ret =
	    virtio_dev_init(&c->vdev, &console_ops, "console", env,
			    BIT_ULL(VIRTIO_RING_F_INDIRECT_DESC) | BIT_ULL(VIRTIO_RING_F_EVENT_IDX),
			    2, CONSOLE_QUEUE_SIZE, sizeof(struct virtio_console_config));
	if (ret) {
		snprintf(err, errlen, "virtio-console: %s", strerror(-ret));
		free(c);
		return ret;
	}
	ret = output_open(&c->out, c->vdev.id, out_fd, env->ev, err, errlen);
	if (ret) {
		virtio_dev_cleanup(&c->vdev);
		free(c);
		return ret;
	}
	c->in_fd = in_fd;
	c->in_flags = -1;
	if (in_fd >= 0 && env->ev) {
		c->in_flags = fcntl(in_fd, F_GETFL);
		if (c->in_flags >= 0)
			fcntl(in_fd, F_SETFL, c->in_flags | O_NONBLOCK);
		/* A regular file or /dev/null cannot be polled: then there is no input. */
		c->in_registered = !event_add(env->ev, in_fd, EPOLLIN, console_input, c);
	}
	*out = &c->vdev;
	return 0;
}
