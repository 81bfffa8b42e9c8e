/* rng.c: virtio-rng (entropy device): fills the guest's writable buffers from getrandom(2). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "util/log.h"
#include "virtio/virtio.h"

#define RNG_QUEUE_SIZE 64
#define RNG_IOV_CAP 16
#define RNG_MAX_PER_CHAIN (64 * KiB) /* cap per request: a guest cannot make us block long */
/* Bytes per dispatch, on top of the core's chain budget (a ring's worth): 64 chains of 64 KiB
 * would be 4 MiB of getrandom in one go. Past it the dispatch ends as if its budget were spent
 * (vq_budget_stop), and the core kicks the queue again. */
#define RNG_MAX_PER_DISPATCH (1 * MiB)

struct virtio_rng {
	struct virtio_dev vdev; /* first: the device core's view */
	uint64_t bytes;		/* handed to the guest, for metrics */
};

/* Fill up to len bytes of the writable buffers. Returns the bytes written. */
static uint32_t fill(const struct iovec *iov, unsigned n, uint64_t len)
{
	uint64_t done = 0;

	for (unsigned i = 0; i < n && done < len; i++) {
		uint8_t *p = iov[i].iov_base;
		size_t want = (size_t)MIN((uint64_t)iov[i].iov_len, len - done), got = 0;

		while (got < want) {
			ssize_t r = getrandom(p + got, want - got, 0);

			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0) {
				log_warn_ratelimited("virtio-rng: getrandom: %s",
						     r < 0 ? strerror(errno) : "no data");
				return (uint32_t)(done + got);
			}
			got += (size_t)r;
		}
		done += got;
	}
	return (uint32_t)done;
}

static void rng_queue_notify(struct virtio_dev *d, unsigned q)
{
	struct virtio_rng *r = (struct virtio_rng *)d;
	struct virtq *vq = &d->queues[0].vq;
	struct iovec iov[RNG_IOV_CAP];
	uint64_t total = 0;
	struct vq_chain c;
	int ret;

	do {
		while ((ret = vq_pop(vq, &c, iov, RNG_IOV_CAP)) != 0) {
			if (ret == -E2BIG) {
				/* Valid chain of more buffers than we map: return it with
				 * nothing written, which the driver reads as "no entropy". */
				vq_push(vq, c.head, 0);
				continue;
			}
			if (ret < 0) {
				virtio_dev_needs_reset(d, "malformed ring (%s)", strerror(-ret));
				goto out;
			}
			uint32_t n = fill(iov + c.n_out, c.n_in, MIN(c.in_len, RNG_MAX_PER_CHAIN));

			vq_push(vq, c.head, n);
			total += n;
			r->bytes += n;
			if (total >= RNG_MAX_PER_DISPATCH)
				vq_budget_stop(vq); /* more next round, after other event sources */
		}
	} while (vq_enable_notify(vq));
out:
	virtio_queue_interrupt(d, 0);
}

static void rng_destroy(struct virtio_dev *d)
{
	virtio_dev_cleanup(d);
	free(d);
}

static const struct virtio_dev_ops rng_ops = {
    .name = "virtio-rng",
    .type = VIRTIO_ID_RNG,
    .pci_class = 0xff0000, /* unclassified, as QEMU and Cloud Hypervisor present it */
    .queue_notify = rng_queue_notify,
    .destroy = rng_destroy,
};

int virtio_rng_create(const struct virtio_env *env, struct virtio_dev **out, char *err,
		      size_t errlen)
{
	struct virtio_rng *r = calloc(1, sizeof(*r));
	int ret;

	if (!r) {
		snprintf(err, errlen, "virtio-rng: out of memory");
		return -ENOMEM;
	}
	ret =
	    virtio_dev_init(&r->vdev, &rng_ops, "rng", env,
			    BIT_ULL(VIRTIO_RING_F_INDIRECT_DESC) | BIT_ULL(VIRTIO_RING_F_EVENT_IDX),
			    1, RNG_QUEUE_SIZE, 0);
	if (ret) {
		snprintf(err, errlen, "virtio-rng: %s", strerror(-ret));
		free(r);
		return ret;
	}
	*out = &r->vdev;
	return 0;
}
