/* virtio.c: the transport-independent virtio device core: status machine, queues, kicks,
 * interrupts. */
#include "virtio/virtio.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "util/log.h"

static void raise_vector(struct virtio_dev *d, uint16_t vector)
{
	if (vector != VIRTIO_MSI_NO_VECTOR && d->transport.raise)
		d->transport.raise(d->transport.opaque, vector);
}

/* Event-loop handler of a queue's kick eventfd. The eventfd is polled edge-triggered and
 * never read: every signal (KVM's ioeventfd, virtio_dev_kick) is an edge of its own, so a kick
 * that arrives while the queue is processed fires again, and a read system call per wake-up
 * is saved. The counter only grows; it would take 2^64 kicks to saturate it. */
static void kick_ready(void *opaque, uint32_t events)
{
	struct virtio_queue *vq = opaque;

	virtio_dev_process(vq->dev, vq->index);
}

static void queue_reset(struct virtio_queue *q)
{
	vq_reset(&q->vq);
	q->vq.size = q->max_size;
	q->msix_vector = VIRTIO_MSI_NO_VECTOR;
	q->enabled = false;
	q->used_checked = 0;
}

int virtio_dev_init(struct virtio_dev *d, const struct virtio_dev_ops *ops, const char *id,
		    const struct virtio_env *env, uint64_t features, unsigned nr_queues,
		    uint16_t queue_max, uint32_t config_size)
{
	int ret;

	if (!nr_queues || nr_queues > VIRTIO_MAX_QUEUES || !queue_max || queue_max > VQ_MAX_SIZE ||
	    (queue_max & (queue_max - 1)) || config_size > VIRTIO_CONFIG_MAX)
		return -EINVAL;
	memset(d, 0, sizeof(*d));
	snprintf(d->id, sizeof(d->id), "%s", id);
	d->mem = env->mem;
	d->ev = env->ev;
	d->host_features = features | BIT_ULL(VIRTIO_F_VERSION_1);
	d->config_size = config_size;
	d->nr_queues = nr_queues;
	d->msix_config = VIRTIO_MSI_NO_VECTOR;
	for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++)
		d->queues[i].kick_efd = -1;
	ret = pthread_mutex_init(&d->lock, NULL);
	if (ret)
		return -ret;
	d->ops = ops;
	for (unsigned i = 0; i < nr_queues; i++) {
		struct virtio_queue *q = &d->queues[i];

		q->dev = d;
		q->index = i;
		q->max_size = queue_max;
		queue_reset(q);
		q->kick_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (q->kick_efd < 0) {
			ret = -errno;
			goto fail;
		}
		if (d->ev) {
			ret = event_add(d->ev, q->kick_efd, EPOLLIN | EPOLLET, kick_ready, q);
			if (ret)
				goto fail;
			q->kick_registered = true;
		}
	}
	return 0;

fail:
	virtio_dev_cleanup(d);
	return ret;
}

void virtio_dev_cleanup(struct virtio_dev *d)
{
	for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++) {
		struct virtio_queue *q = &d->queues[i];

		if (q->kick_registered)
			event_del(d->ev, q->kick_efd);
		q->kick_registered = false;
		if (q->kick_efd >= 0)
			close(q->kick_efd);
		q->kick_efd = -1;
	}
	if (d->ops) /* set right after the mutex was created */
		pthread_mutex_destroy(&d->lock);
	d->ops = NULL;
}

void virtio_dev_destroy(struct virtio_dev *d)
{
	if (d && d->ops && d->ops->destroy)
		d->ops->destroy(d);
}

void virtio_dev_reset(struct virtio_dev *d)
{
	if (d->ops->reset)
		d->ops->reset(d);
	if (d->reset_pending) {
		/* I/O the device could not stop owns guest buffers: the status stays non-zero,
		 * so the driver does not reuse them yet (it waits for 0: 2.4, 4.1.4.3.2). The
		 * queues are not processed meanwhile (NEEDS_RESET). */
		d->status |= VIRTIO_STATUS_NEEDS_RESET;
		return;
	}
	virtio_dev_reset_done(d);
}

void virtio_dev_reset_done(struct virtio_dev *d)
{
	d->reset_pending = false;
	for (unsigned i = 0; i < d->nr_queues; i++)
		queue_reset(&d->queues[i]);
	d->driver_features = 0;
	d->status = 0;
	d->isr = 0;
	d->msix_config = VIRTIO_MSI_NO_VECTOR;
}

bool virtio_dev_has_feature(const struct virtio_dev *d, unsigned bit)
{
	return bit < 64 && (d->driver_features & BIT_ULL(bit));
}

static void activate(struct virtio_dev *d)
{
	int ret = d->ops->activate ? d->ops->activate(d) : 0;

	if (ret) {
		virtio_dev_needs_reset(d, "activation failed: %s", strerror(-ret));
		return;
	}
	/* Buffers made available before DRIVER_OK (allowed for receive queues): look now. */
	for (unsigned i = 0; i < d->nr_queues; i++) {
		if (virtio_queue_ready(d, i))
			virtio_dev_kick(d, i);
	}
}

void virtio_set_status(struct virtio_dev *d, uint8_t status)
{
	uint8_t old = d->status, added = status & (uint8_t)~old;

	if (status == 0) {
		virtio_dev_reset(d);
		return;
	}
	if (old & ~status) {
		/* The driver only ever adds bits (3.1.1); clearing one needs a reset. */
		log_warn_ratelimited("%s: status 0x%02x -> 0x%02x clears bits: ignored", d->id, old,
				     status);
		return;
	}
	if (added & VIRTIO_STATUS_FEATURES_OK) {
		uint64_t extra = d->driver_features & ~d->host_features;

		if (extra || !virtio_dev_has_feature(d, VIRTIO_F_VERSION_1)) {
			log_warn_ratelimited("%s: FEATURES_OK refused: driver features 0x%llx (%s)",
					     d->id, (unsigned long long)d->driver_features,
					     extra ? "not offered" : "no VERSION_1");
			status &= (uint8_t)~VIRTIO_STATUS_FEATURES_OK;
			added &= (uint8_t)~VIRTIO_STATUS_FEATURES_OK;
		}
	}
	/* NEEDS_RESET is the device's bit: a driver cannot set it (nor clear it, see above). */
	status =
	    (uint8_t)((status & ~VIRTIO_STATUS_NEEDS_RESET) | (old & VIRTIO_STATUS_NEEDS_RESET));
	d->status = status;
	if ((added & VIRTIO_STATUS_DRIVER_OK) && !(status & VIRTIO_STATUS_FAILED)) {
		if (!(status & VIRTIO_STATUS_FEATURES_OK))
			virtio_dev_needs_reset(d, "DRIVER_OK without FEATURES_OK");
		else
			activate(d);
	}
}

void virtio_set_driver_features(struct virtio_dev *d, uint32_t select, uint32_t value)
{
	if (d->status & VIRTIO_STATUS_FEATURES_OK) {
		log_warn_ratelimited("%s: driver features written after FEATURES_OK: ignored",
				     d->id);
		return;
	}
	if (select == 0)
		d->driver_features = (d->driver_features & ~0xffffffffULL) | value;
	else if (select == 1)
		d->driver_features = (d->driver_features & 0xffffffffULL) | ((uint64_t)value << 32);
}

uint32_t virtio_get_host_features(const struct virtio_dev *d, uint32_t select)
{
	if (select == 0)
		return (uint32_t)d->host_features;
	if (select == 1)
		return (uint32_t)(d->host_features >> 32);
	return 0;
}

void virtio_queue_enable(struct virtio_dev *d, unsigned q)
{
	struct virtio_queue *vq;
	int ret;

	if (q >= d->nr_queues)
		return;
	vq = &d->queues[q];
	if (vq->enabled)
		return;
	if (!(d->status & VIRTIO_STATUS_FEATURES_OK)) {
		virtio_dev_needs_reset(d, "queue %u enabled before FEATURES_OK", q);
		return;
	}
	if (vq->vq.size > vq->max_size) {
		virtio_dev_needs_reset(d, "queue %u: size %u above the maximum %u", q, vq->vq.size,
				       vq->max_size);
		return;
	}
	vq->vq.event_idx = virtio_dev_has_feature(d, VIRTIO_RING_F_EVENT_IDX);
	ret = vq_init(&vq->vq, d->mem);
	if (ret) {
		virtio_dev_needs_reset(d,
				       "queue %u: bad ring (size %u, desc 0x%llx, driver 0x%llx, "
				       "device 0x%llx)",
				       q, vq->vq.size, (unsigned long long)vq->vq.desc_gpa,
				       (unsigned long long)vq->vq.avail_gpa,
				       (unsigned long long)vq->vq.used_gpa);
		return;
	}
	vq->enabled = true;
}

void virtio_config_changed(struct virtio_dev *d)
{
	d->config_generation++;
	d->isr |= VIRTIO_ISR_CONFIG;
	raise_vector(d, d->msix_config);
}

bool virtio_queue_ready(const struct virtio_dev *d, unsigned q)
{
	return q < d->nr_queues && d->queues[q].enabled && (d->status & VIRTIO_STATUS_DRIVER_OK) &&
	       !(d->status & (VIRTIO_STATUS_NEEDS_RESET | VIRTIO_STATUS_FAILED));
}

void virtio_queue_interrupt(struct virtio_dev *d, unsigned q)
{
	struct virtio_queue *vq = q < d->nr_queues ? &d->queues[q] : NULL;

	if (!vq || vq->used_checked == vq->vq.used_idx)
		return; /* nothing new on the used ring */
	vq->used_checked = vq->vq.used_idx;
	if (!vq_should_notify(&vq->vq))
		return;
	d->isr |= VIRTIO_ISR_QUEUE;
	raise_vector(d, d->queues[q].msix_vector);
}

void virtio_dev_needs_reset(struct virtio_dev *d, const char *fmt, ...)
{
	char why[192];
	va_list ap;

	if (d->status & VIRTIO_STATUS_NEEDS_RESET)
		return; /* already reported; nothing runs until the reset */
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	log_warn_ratelimited("%s: %s: device needs reset", d->id, why);
	d->status |= VIRTIO_STATUS_NEEDS_RESET;
	/* Only a driver that reached DRIVER_OK listens for config interrupts (2.1.2). */
	if (d->status & VIRTIO_STATUS_DRIVER_OK)
		virtio_config_changed(d);
}

void virtio_dev_kick(struct virtio_dev *d, unsigned q)
{
	uint64_t one = 1;

	if (q >= d->nr_queues || d->queues[q].kick_efd < 0)
		return;
	if (write(d->queues[q].kick_efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_warn_ratelimited("%s: queue %u kick: %s", d->id, q, strerror(errno));
}

void virtio_dispatch_begin(struct virtio_dev *d)
{
	for (unsigned i = 0; i < d->nr_queues; i++)
		vq_budget_begin(&d->queues[i].vq, d->queues[i].vq.size);
}

void virtio_dispatch_end(struct virtio_dev *d)
{
	for (unsigned i = 0; i < d->nr_queues; i++) {
		struct virtq *vq = &d->queues[i].vq;

		if (vq->broken)
			virtio_dev_needs_reset(d, "queue %u: malformed ring", i);
		/* The kick eventfd is edge-triggered: this write is a new edge, served after
		 * what is already ready in the event loop. While the VM is paused, device fds
		 * are out of the epoll set; resuming puts them back and the edge is seen then. */
		if (vq_budget_end(vq))
			virtio_dev_kick(d, i);
	}
}

void virtio_dev_process(struct virtio_dev *d, unsigned q)
{
	pthread_mutex_lock(&d->lock);
	virtio_dispatch_begin(d);
	if (virtio_queue_ready(d, q))
		d->ops->queue_notify(d, q);
	virtio_dispatch_end(d);
	pthread_mutex_unlock(&d->lock);
}
