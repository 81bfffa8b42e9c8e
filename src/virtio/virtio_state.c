/* virtio_state.c: snapshot save/load of the virtio device core: status, features, queues. */
#include <errno.h>
#include <string.h>

#include "devices/devstate.h"
#include "virtio/virtio.h"

/*
 * Layout (virtio_dev_state_put), all little-endian:
 *
 *   u16 type, u16 nr_queues, u64 host_features, u32 config_size, u8 config[config_size]
 *   u64 driver_features, u8 status, u8 config_generation, u8 isr, u16 msix_config
 *   per queue: u16 max_size, u16 size, u8 enabled, u64 desc, avail, used, u16 msix_vector,
 *              u8 event_idx, u16 last_avail, u16 used_idx, u16 signalled_used,
 *              u8 signalled_used_valid, u8 broken, u16 used_checked
 *
 * The first line describes the device rather than its state: load compares it with the device
 * built from the saved configuration. Not saved: avail_known (a cache of avail->idx, read again
 * from guest RAM), the dispatch budget, host views of the rings (vq_init maps them again).
 */

#define STATUS_BITS                                                                                \
	(VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_DRIVER_OK |              \
	 VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_NEEDS_RESET | VIRTIO_STATUS_FAILED)

/* Device config fields with a name, for the error when they differ; `live` ones change with
 * the backend (link status) and are not compared. */
static const struct cfg_field {
	uint16_t type, off, len;
	bool live;
	const char *name;
} cfg_fields[] = {
    {VIRTIO_ID_BLOCK, 0, 8, false, "capacity"},
    {VIRTIO_ID_NET, 0, 6, false, "MAC address"},
    {VIRTIO_ID_NET, 6, 2, true, "link status"},
    {VIRTIO_ID_NET, 10, 2, false, "MTU"},
};

static const struct cfg_field *cfg_field_at(uint16_t type, uint32_t off)
{
	for (size_t i = 0; i < ARRAY_SIZE(cfg_fields); i++) {
		const struct cfg_field *f = &cfg_fields[i];
		if (f->type == type && off >= f->off && off < (uint32_t)f->off + f->len)
			return f;
	}
	return NULL;
}

static void read_config(struct virtio_dev *d, uint8_t *buf)
{
	memset(buf, 0, VIRTIO_CONFIG_MAX);
	if (d->config_size && d->ops->config_read)
		d->ops->config_read(d, 0, buf, d->config_size);
}

bool virtio_dev_quiesced(struct virtio_dev *d)
{
	return !d->reset_pending && (!d->ops->quiesced || d->ops->quiesced(d));
}

void virtio_dev_state_put(struct virtio_dev *d, struct snap_buf *b)
{
	uint8_t config[VIRTIO_CONFIG_MAX];

	read_config(d, config);
	snap_put_u16(b, d->ops->type);
	snap_put_u16(b, (uint16_t)d->nr_queues);
	snap_put_u64(b, d->host_features);
	snap_put_u32(b, d->config_size);
	snap_put_bytes(b, config, d->config_size);
	snap_put_u64(b, d->driver_features);
	snap_put_u8(b, d->status);
	snap_put_u8(b, d->config_generation);
	snap_put_u8(b, d->isr);
	snap_put_u16(b, d->msix_config);
	for (unsigned i = 0; i < d->nr_queues; i++) {
		const struct virtio_queue *q = &d->queues[i];

		snap_put_u16(b, q->max_size);
		snap_put_u16(b, q->vq.size);
		snap_put_bool(b, q->enabled);
		snap_put_u64(b, q->vq.desc_gpa);
		snap_put_u64(b, q->vq.avail_gpa);
		snap_put_u64(b, q->vq.used_gpa);
		snap_put_u16(b, q->msix_vector);
		snap_put_bool(b, q->vq.event_idx);
		snap_put_u16(b, q->vq.last_avail);
		snap_put_u16(b, q->vq.used_idx);
		snap_put_u16(b, q->vq.signalled_used);
		snap_put_bool(b, q->vq.signalled_used_valid);
		snap_put_bool(b, q->vq.broken);
		snap_put_u16(b, q->used_checked);
	}
}

/* What describes the device must match d. */
static bool identity_ok(struct virtio_dev *d, struct snap_cursor *c)
{
	uint8_t now[VIRTIO_CONFIG_MAX], saved[VIRTIO_CONFIG_MAX];
	unsigned type = snap_get_u16(c), nr = snap_get_u16(c);
	uint64_t features = snap_get_u64(c);
	uint32_t config_size = snap_get_u32(c);

	if (c->bad)
		return false;
	if (type != d->ops->type) {
		snap_cursor_fail(c, "%s: a virtio device of type %u was saved, this is %s", d->id,
				 type, d->ops->name);
		return false;
	}
	if (nr != d->nr_queues || config_size != d->config_size) {
		snap_cursor_fail(c,
				 "%s: %u queues and %u config bytes saved, the device has %u and "
				 "%u (configured differently?)",
				 d->id, nr, config_size, d->nr_queues, d->config_size);
		return false;
	}
	if (features != d->host_features) {
		snap_cursor_fail(c,
				 "%s: offered features 0x%llx saved, the device offers 0x%llx "
				 "(configured differently?)",
				 d->id, (unsigned long long)features,
				 (unsigned long long)d->host_features);
		return false;
	}
	snap_get_bytes(c, saved, config_size);
	if (c->bad)
		return false;
	read_config(d, now);
	for (uint32_t off = 0; off < config_size; off++) {
		const struct cfg_field *f = cfg_field_at(d->ops->type, off);

		if (saved[off] == now[off] || (f && f->live))
			continue;
		if (f)
			snap_cursor_fail(c,
					 "%s: device config %s differs from the snapshot "
					 "(configured differently?)",
					 d->id, f->name);
		else
			snap_cursor_fail(c,
					 "%s: device config byte %u is 0x%02x, the device has "
					 "0x%02x",
					 d->id, off, saved[off], now[off]);
		return false;
	}
	return true;
}

static bool vector_ok(uint16_t v, unsigned nr_vectors)
{
	return v == VIRTIO_MSI_NO_VECTOR || v < nr_vectors;
}

/* Queue i's fields, read into st and checked against the device and the decoded status. */
static bool queue_get(struct virtio_dev *d, struct snap_cursor *c, unsigned i, unsigned nr_vectors,
		      struct virtio_dev_state *st)
{
	const struct virtio_queue *q = &d->queues[i];
	struct virtq *vq = &st->queues[i].vq;
	uint16_t max = snap_get_u16(c), size = snap_get_u16(c);
	bool enabled = snap_get_bool(c);
	gpa_t desc = snap_get_u64(c), avail = snap_get_u64(c), used = snap_get_u64(c);
	uint16_t vector = snap_get_u16(c);
	bool event_idx = snap_get_bool(c);
	uint16_t last_avail = snap_get_u16(c), used_idx = snap_get_u16(c);
	uint16_t signalled = snap_get_u16(c);
	bool signalled_valid = snap_get_bool(c), broken = snap_get_bool(c);
	uint16_t used_checked = snap_get_u16(c);

	if (c->bad)
		return false;
	if (max != q->max_size) {
		snap_cursor_fail(c, "%s: queue %u: maximum size %u saved, the device has %u", d->id,
				 i, max, q->max_size);
		return false;
	}
	if (!vector_ok(vector, nr_vectors)) {
		snap_cursor_fail(c, "%s: queue %u: MSI-X vector %u, the device has %u", d->id, i,
				 vector, nr_vectors);
		return false;
	}
	memset(vq, 0, sizeof(*vq));
	vq->size = size;
	vq->desc_gpa = desc;
	vq->avail_gpa = avail;
	vq->used_gpa = used;
	st->queues[i].msix_vector = vector;
	st->queues[i].used_checked = used_checked;
	st->queues[i].enabled = enabled;
	if (!enabled) {
		/* A queue the driver has not enabled holds whatever it wrote (checked when it
		 * enables it) and no engine state. */
		if (event_idx || last_avail || used_idx || signalled || signalled_valid || broken ||
		    used_checked) {
			snap_cursor_fail(c, "%s: queue %u: disabled but with ring indexes", d->id,
					 i);
			return false;
		}
		return true;
	}
	if (!(st->status & VIRTIO_STATUS_FEATURES_OK)) {
		snap_cursor_fail(c, "%s: queue %u enabled without FEATURES_OK", d->id, i);
		return false;
	}
	if (!size || size > max || (size & (size - 1))) {
		snap_cursor_fail(c, "%s: queue %u: size %u (a power of two up to %u expected)",
				 d->id, i, size, max);
		return false;
	}
	if (vq_init(vq, d->mem)) {
		snap_cursor_fail(c,
				 "%s: queue %u: rings at desc 0x%llx, driver 0x%llx, device 0x%llx "
				 "(size %u) are misaligned or outside guest RAM",
				 d->id, i, (unsigned long long)desc, (unsigned long long)avail,
				 (unsigned long long)used, size);
		return false;
	}
	if (event_idx != !!(st->driver_features & BIT_ULL(VIRTIO_RING_F_EVENT_IDX))) {
		snap_cursor_fail(c, "%s: queue %u: event index %s but the feature is %s", d->id, i,
				 event_idx ? "on" : "off", event_idx ? "off" : "on");
		return false;
	}
	/* Chains taken but not yet returned: never more than the ring holds. */
	if ((uint16_t)(last_avail - used_idx) > size) {
		snap_cursor_fail(c,
				 "%s: queue %u: last_avail %u and used index %u are %u apart, "
				 "more than the %u entries",
				 d->id, i, last_avail, used_idx, (uint16_t)(last_avail - used_idx),
				 size);
		return false;
	}
	/* Every device returns what it took before it counts as quiesced (the save checks), so
	 * a working ring has nothing outstanding: a chain taken and never returned would leave
	 * the driver waiting for it forever. */
	if (!broken && last_avail != used_idx) {
		snap_cursor_fail(c,
				 "%s: queue %u: %u chains in flight (last_avail %u, used index "
				 "%u): saved without quiescing",
				 d->id, i, (uint16_t)(last_avail - used_idx), last_avail, used_idx);
		return false;
	}
	if (broken && !(st->status & VIRTIO_STATUS_NEEDS_RESET)) {
		snap_cursor_fail(c, "%s: queue %u: broken ring without NEEDS_RESET", d->id, i);
		return false;
	}
	vq->event_idx = event_idx;
	vq->last_avail = last_avail;
	vq->used_idx = used_idx;
	vq->signalled_used = signalled;
	vq->signalled_used_valid = signalled_valid;
	vq->broken = broken;
	vq->error = broken ? "broken when the snapshot was taken" : NULL;
	vq->budget = 0;
	return true;
}

static bool status_ok(const struct virtio_dev *d, struct snap_cursor *c,
		      const struct virtio_dev_state *st, unsigned nr_vectors)
{
	uint8_t s = st->status;

	if (s & ~STATUS_BITS)
		snap_cursor_fail(c, "%s: device status 0x%02x has undefined bits", d->id, s);
	else if ((s & VIRTIO_STATUS_FEATURES_OK) &&
		 ((st->driver_features & ~d->host_features) ||
		  !(st->driver_features & BIT_ULL(VIRTIO_F_VERSION_1))))
		snap_cursor_fail(c, "%s: FEATURES_OK with driver features 0x%llx (offered 0x%llx)",
				 d->id, (unsigned long long)st->driver_features,
				 (unsigned long long)d->host_features);
	else if ((s & VIRTIO_STATUS_DRIVER_OK) && !(s & VIRTIO_STATUS_FEATURES_OK) &&
		 !(s & (VIRTIO_STATUS_NEEDS_RESET | VIRTIO_STATUS_FAILED)))
		snap_cursor_fail(c, "%s: device status 0x%02x: DRIVER_OK without FEATURES_OK",
				 d->id, s);
	else if (st->isr & ~(VIRTIO_ISR_QUEUE | VIRTIO_ISR_CONFIG))
		snap_cursor_fail(c, "%s: ISR 0x%02x has undefined bits", d->id, st->isr);
	else if (!vector_ok(st->msix_config, nr_vectors))
		snap_cursor_fail(c, "%s: config MSI-X vector %u, the device has %u", d->id,
				 st->msix_config, nr_vectors);
	return !c->bad;
}

bool virtio_dev_state_get(struct virtio_dev *d, struct snap_cursor *c, unsigned nr_vectors,
			  struct virtio_dev_state *st)
{
	if (!identity_ok(d, c))
		return false;
	memset(st, 0, sizeof(*st));
	st->driver_features = snap_get_u64(c);
	st->status = snap_get_u8(c);
	st->config_generation = snap_get_u8(c);
	st->isr = snap_get_u8(c);
	st->msix_config = snap_get_u16(c);
	if (c->bad || !status_ok(d, c, st, nr_vectors))
		return false;
	for (unsigned i = 0; i < d->nr_queues; i++)
		if (!queue_get(d, c, i, nr_vectors, st))
			return false;
	return true;
}

void virtio_dev_state_apply(struct virtio_dev *d, const struct virtio_dev_state *st)
{
	d->driver_features = st->driver_features;
	d->status = st->status;
	d->config_generation = st->config_generation;
	d->isr = st->isr;
	d->msix_config = st->msix_config;
	d->reset_pending = false;
	for (unsigned i = 0; i < d->nr_queues; i++) {
		struct virtio_queue *q = &d->queues[i];

		q->vq = st->queues[i].vq; /* host views included: mapped by vq_init in get */
		q->msix_vector = st->queues[i].msix_vector;
		q->used_checked = st->queues[i].used_checked;
		q->enabled = st->queues[i].enabled;
	}
}

void virtio_dev_state_resume(struct virtio_dev *d)
{
	if (!(d->status & VIRTIO_STATUS_DRIVER_OK) ||
	    (d->status & (VIRTIO_STATUS_NEEDS_RESET | VIRTIO_STATUS_FAILED)))
		return;
	int ret = d->ops->activate ? d->ops->activate(d) : 0;
	if (ret) {
		virtio_dev_needs_reset(d, "activation after restore failed: %s", strerror(-ret));
		return;
	}
	for (unsigned i = 0; i < d->nr_queues; i++)
		if (virtio_queue_ready(d, i))
			virtio_dev_kick(d, i);
}

int virtio_dev_state_save(struct virtio_dev *d, struct snap_buf *b)
{
	int ret = 0;

	pthread_mutex_lock(&d->lock);
	if (!virtio_dev_quiesced(d)) {
		ret = -EBUSY;
	} else {
		devstate_put_header(b);
		virtio_dev_state_put(d, b);
	}
	pthread_mutex_unlock(&d->lock);
	return ret ? ret : snap_buf_failed(b);
}

int virtio_dev_state_load(struct virtio_dev *d, struct snap_cursor *c, unsigned nr_vectors)
{
	struct virtio_dev_state st;
	bool ok;

	pthread_mutex_lock(&d->lock);
	ok = devstate_get_header(c) && virtio_dev_state_get(d, c, nr_vectors, &st) &&
	     devstate_done(c);
	if (ok) {
		virtio_dev_state_apply(d, &st);
		virtio_dev_state_resume(d);
	}
	pthread_mutex_unlock(&d->lock);
	return ok ? 0 : -EINVAL;
}
