/* pci.c: the virtio-pci modern transport (virtio 1.2, 4.1): capabilities, one BAR, ioeventfd kicks.
 */
#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "devices/devstate.h"
#include "devices/pci.h"
#include "util/log.h"
#include "virtio/virtio.h"

#define VIRTIO_PCI_VENDOR 0x1af4
#define VIRTIO_PCI_DEVICE_BASE 0x1040 /* + device type: modern-only devices */
#define VIRTIO_PCI_SUBSYS_ID 0x1100   /* as QEMU */
#define VIRTIO_PCI_REVISION 1	      /* modern-only */

/* Vendor capability types (4.1.4). */
#define VIRTIO_PCI_CAP_COMMON_CFG 1
#define VIRTIO_PCI_CAP_NOTIFY_CFG 2
#define VIRTIO_PCI_CAP_ISR_CFG 3
#define VIRTIO_PCI_CAP_DEVICE_CFG 4
#define VIRTIO_PCI_CAP_PCI_CFG 5

#define VIRTIO_PCI_BAR 0

struct virtio_pci_cap {
	uint8_t cap_vndr; /* PCI_CAP_ID_VNDR */
	uint8_t cap_next;
	uint8_t cap_len;
	uint8_t cfg_type;
	uint8_t bar;
	uint8_t id;
	uint8_t padding[2];
	uint32_t offset; /* le: inside the BAR */
	uint32_t length; /* le */
};
static_assert(sizeof(struct virtio_pci_cap) == 16, "virtio 1.2 4.1.4");

struct virtio_pci_notify_cap {
	struct virtio_pci_cap cap;
	uint32_t notify_off_multiplier;
};
static_assert(sizeof(struct virtio_pci_notify_cap) == 20, "virtio 1.2 4.1.4.4");

struct virtio_pci_cfg_cap {
	struct virtio_pci_cap cap;
	uint8_t pci_cfg_data[4];
};
static_assert(sizeof(struct virtio_pci_cfg_cap) == 20, "virtio 1.2 4.1.4.9");

/* Common configuration (4.1.4.3); 64-bit fields as two halves, as drivers access them. */
struct virtio_pci_common_cfg {
	uint32_t device_feature_select;
	uint32_t device_feature;
	uint32_t driver_feature_select;
	uint32_t driver_feature;
	uint16_t msix_config;
	uint16_t num_queues;
	uint8_t device_status;
	uint8_t config_generation;
	uint16_t queue_select;
	uint16_t queue_size;
	uint16_t queue_msix_vector;
	uint16_t queue_enable;
	uint16_t queue_notify_off;
	uint32_t queue_desc_lo, queue_desc_hi;
	uint32_t queue_driver_lo, queue_driver_hi;
	uint32_t queue_device_lo, queue_device_hi;
	uint16_t queue_notify_data;
	uint16_t queue_reset;
};
static_assert(sizeof(struct virtio_pci_common_cfg) == 60, "virtio 1.2 4.1.4.3");
static_assert(offsetof(struct virtio_pci_common_cfg, queue_desc_lo) == 32, "4.1.4.3");

#define CC(f) offsetof(struct virtio_pci_common_cfg, f)

struct virtio_pci {
	struct pci_device pci;
	struct virtio_dev *dev;
	int vm_fd; /* -1: detached (no KVM) */
	bool attached;
	uint32_t device_feature_select, driver_feature_select;
	uint16_t queue_select;
	uint8_t pci_cfg_cap; /* config-space offset of the PCI_CFG capability */
	gpa_t notify_gpa;    /* where the ioeventfds are registered, PCI_BAR_UNMAPPED if not */
	uint32_t ioeventfd_len;
	unsigned irq_count[PCI_MSIX_MAX_VECTORS];
};

static_assert(VIRTIO_PCI_MSIX_TABLE_OFF + PCI_MSIX_MAX_VECTORS * 16 <= VIRTIO_PCI_MSIX_PBA_OFF,
	      "MSI-X table fits before the PBA");
static_assert(VIRTIO_PCI_NOTIFY_OFF + VIRTIO_MAX_QUEUES * VIRTIO_PCI_NOTIFY_MULT <=
		  VIRTIO_PCI_MSIX_TABLE_OFF,
	      "notify area fits");
static_assert(VIRTIO_CONFIG_MAX <= VIRTIO_PCI_NOTIFY_OFF - VIRTIO_PCI_DEVICE_OFF, "device cfg");

static struct virtio_queue *selected(struct virtio_pci *vp)
{
	return vp->queue_select < vp->dev->nr_queues ? &vp->dev->queues[vp->queue_select] : NULL;
}

static void common_snapshot(struct virtio_pci *vp, struct virtio_pci_common_cfg *c)
{
	struct virtio_dev *d = vp->dev;
	struct virtio_queue *q = selected(vp);

	memset(c, 0, sizeof(*c));
	c->device_feature_select = vp->device_feature_select;
	c->device_feature = virtio_get_host_features(d, vp->device_feature_select);
	c->driver_feature_select = vp->driver_feature_select;
	if (vp->driver_feature_select < 2)
		c->driver_feature =
		    (uint32_t)(d->driver_features >> (32 * vp->driver_feature_select));
	c->msix_config = d->msix_config;
	c->num_queues = (uint16_t)d->nr_queues;
	c->device_status = d->status;
	c->config_generation = d->config_generation;
	c->queue_select = vp->queue_select;
	c->queue_msix_vector = VIRTIO_MSI_NO_VECTOR;
	if (q) {
		c->queue_size = q->vq.size;
		c->queue_msix_vector = q->msix_vector;
		c->queue_enable = q->enabled;
		c->queue_notify_off = vp->queue_select;
		c->queue_desc_lo = (uint32_t)q->vq.desc_gpa;
		c->queue_desc_hi = (uint32_t)(q->vq.desc_gpa >> 32);
		c->queue_driver_lo = (uint32_t)q->vq.avail_gpa;
		c->queue_driver_hi = (uint32_t)(q->vq.avail_gpa >> 32);
		c->queue_device_lo = (uint32_t)q->vq.used_gpa;
		c->queue_device_hi = (uint32_t)(q->vq.used_gpa >> 32);
	}
	/* The struct is host-endian; x86 is little-endian like the guest. */
	static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "little-endian host");
}

static uint16_t valid_vector(const struct virtio_pci *vp, uint16_t v)
{
	/* An unusable vector reads back as NO_VECTOR: the driver checks (4.1.5.1.2). */
	return v < vp->pci.msix.nr_vectors ? v : VIRTIO_MSI_NO_VECTOR;
}

static void set_half(gpa_t *addr, uint32_t v, bool hi)
{
	*addr =
	    hi ? ((*addr & UINT32_MAX) | (uint64_t)v << 32) : ((*addr & ~(gpa_t)UINT32_MAX) | v);
}

/* Apply field f (offset `off`, new value v) of a common-config write. */
static void common_apply(struct virtio_pci *vp, size_t off, uint32_t v)
{
	struct virtio_dev *d = vp->dev;
	struct virtio_queue *q = selected(vp);
	bool q_writable = q && !q->enabled && !(d->status & VIRTIO_STATUS_DRIVER_OK);

	switch (off) {
	case CC(device_feature_select):
		vp->device_feature_select = v;
		break;
	case CC(driver_feature_select):
		vp->driver_feature_select = v;
		break;
	case CC(driver_feature):
		virtio_set_driver_features(d, vp->driver_feature_select, v);
		break;
	case CC(msix_config):
		d->msix_config = valid_vector(vp, (uint16_t)v);
		break;
	case CC(device_status):
		virtio_set_status(d, (uint8_t)v);
		break;
	case CC(queue_select):
		vp->queue_select = (uint16_t)v;
		break;
	case CC(queue_size):
		if (q_writable)
			q->vq.size = (uint16_t)v; /* checked when the queue is enabled */
		break;
	case CC(queue_msix_vector):
		if (q)
			q->msix_vector = valid_vector(vp, (uint16_t)v);
		break;
	case CC(queue_enable):
		if (q && v == 1)
			virtio_queue_enable(d, vp->queue_select);
		break;
	case CC(queue_desc_lo):
	case CC(queue_desc_hi):
		if (q_writable)
			set_half(&q->vq.desc_gpa, v, off == CC(queue_desc_hi));
		break;
	case CC(queue_driver_lo):
	case CC(queue_driver_hi):
		if (q_writable)
			set_half(&q->vq.avail_gpa, v, off == CC(queue_driver_hi));
		break;
	case CC(queue_device_lo):
	case CC(queue_device_hi):
		if (q_writable)
			set_half(&q->vq.used_gpa, v, off == CC(queue_device_hi));
		break;
	default: /* read-only: device_feature, num_queues, generation, notify_off/data, reset */
		break;
	}
}

/* Field boundaries of the common config, in order: {offset, size}. */
static const uint8_t common_fields[][2] = {
    {CC(device_feature_select), 4}, {CC(device_feature), 4},
    {CC(driver_feature_select), 4}, {CC(driver_feature), 4},
    {CC(msix_config), 2},	    {CC(num_queues), 2},
    {CC(device_status), 1},	    {CC(config_generation), 1},
    {CC(queue_select), 2},	    {CC(queue_size), 2},
    {CC(queue_msix_vector), 2},	    {CC(queue_enable), 2},
    {CC(queue_notify_off), 2},	    {CC(queue_desc_lo), 4},
    {CC(queue_desc_hi), 4},	    {CC(queue_driver_lo), 4},
    {CC(queue_driver_hi), 4},	    {CC(queue_device_lo), 4},
    {CC(queue_device_hi), 4},	    {CC(queue_notify_data), 2},
    {CC(queue_reset), 2},
};

/*
 * Common config access of any size and alignment: reads copy from a snapshot; writes are
 * merged into a snapshot and every field they touch is applied in register order, so a
 * 64-bit write to queue_desc sets both halves and a partial write keeps the other bytes.
 */
static void common_io(struct virtio_pci *vp, uint32_t off, uint8_t *data, uint32_t len,
		      bool is_write)
{
	struct virtio_pci_common_cfg c;
	uint8_t *raw = (uint8_t *)&c;

	common_snapshot(vp, &c);
	if (!is_write) {
		memset(data, 0, len);
		if (off < sizeof(c))
			memcpy(data, raw + off, MIN(len, sizeof(c) - off));
		return;
	}
	if (off >= sizeof(c))
		return;
	memcpy(raw + off, data, MIN(len, sizeof(c) - off));
	for (size_t i = 0; i < ARRAY_SIZE(common_fields); i++) {
		uint32_t f = common_fields[i][0], n = common_fields[i][1], v = 0;

		if (f + n <= off || f >= off + len)
			continue;
		memcpy(&v, raw + f, n);
		/* queue_select may have changed: later queue fields must apply to the new queue,
		 * with the bytes this write did not touch taken from that queue. */
		if (f == CC(queue_select)) {
			struct virtio_pci_common_cfg fresh;

			common_apply(vp, f, v);
			common_snapshot(vp, &fresh);
			for (uint32_t b = CC(queue_size); b < sizeof(c); b++)
				if (b < off || b >= off + len)
					raw[b] = ((uint8_t *)&fresh)[b];
			continue;
		}
		common_apply(vp, f, v);
	}
}

void virtio_pci_bar_io(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
	struct virtio_pci *vp = opaque;
	struct virtio_dev *d = vp->dev;

	if (pci_msix_mmio(&vp->pci, off, data, len, is_write))
		return;
	if (!is_write)
		memset(data, 0, len);
	if (off >= VIRTIO_PCI_NOTIFY_OFF && off < VIRTIO_PCI_MSIX_TABLE_OFF) {
		/* Reached the bus: no ioeventfd (or not yet). Same effect, by the eventfd. */
		uint64_t q = (off - VIRTIO_PCI_NOTIFY_OFF) / VIRTIO_PCI_NOTIFY_MULT;

		if (is_write && q < d->nr_queues)
			virtio_dev_kick(d, (unsigned)q);
		return;
	}
	pthread_mutex_lock(&d->lock);
	if (off < VIRTIO_PCI_ISR_OFF) {
		common_io(vp, (uint32_t)off, data, len, is_write);
	} else if (off == VIRTIO_PCI_ISR_OFF) {
		if (!is_write) { /* read to clear (4.1.4.5) */
			data[0] = d->isr;
			d->isr = 0;
		}
	} else if (off >= VIRTIO_PCI_DEVICE_OFF && off < VIRTIO_PCI_DEVICE_OFF + d->config_size) {
		uint32_t o = (uint32_t)(off - VIRTIO_PCI_DEVICE_OFF);
		uint32_t n = MIN(len, d->config_size - o);

		if (!is_write && d->ops->config_read)
			d->ops->config_read(d, o, data, n);
		else if (is_write && d->ops->config_write)
			d->ops->config_write(d, o, data, n);
	}
	pthread_mutex_unlock(&d->lock);
}

/* ---- ioeventfds ---------------------------------------------------------------------- */

static int ioeventfd(struct virtio_pci *vp, unsigned q, gpa_t base, bool assign)
{
	struct kvm_ioeventfd io = {
	    .addr = base + VIRTIO_PCI_NOTIFY_OFF + q * VIRTIO_PCI_NOTIFY_MULT,
	    .len = vp->ioeventfd_len,
	    .fd = vp->dev->queues[q].kick_efd,
	    .flags = assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN,
	};

	return ioctl(vp->vm_fd, KVM_IOEVENTFD, &io) < 0 ? -errno : 0;
}

static void ioeventfds_move(struct virtio_pci *vp, gpa_t to)
{
	struct virtio_dev *d = vp->dev;

	if (vp->vm_fd < 0 || to == vp->notify_gpa)
		return;
	if (vp->notify_gpa != PCI_BAR_UNMAPPED)
		for (unsigned q = 0; q < d->nr_queues; q++)
			(void)ioeventfd(vp, q, vp->notify_gpa, false);
	vp->notify_gpa = PCI_BAR_UNMAPPED;
	if (to == PCI_BAR_UNMAPPED)
		return;
	for (unsigned q = 0; q < d->nr_queues; q++) {
		int ret = ioeventfd(vp, q, to, true);

		if (ret) {
			/* Kicks still work, by the MMIO exit and the bus fallback. */
			log_warn_ratelimited(
			    "%s: KVM_IOEVENTFD for queue %u: %s; kicks take the slow path", d->id,
			    q, strerror(-ret));
			while (q--)
				(void)ioeventfd(vp, q, to, false);
			return;
		}
	}
	vp->notify_gpa = to;
}

/* pci_bus.lock held, on a vCPU thread: the device lock is not needed (nor taken: the lock
 * order is pci_bus -> device only through cfg_access). */
static void bar_moved(struct pci_device *pd, unsigned bar, gpa_t old_addr, gpa_t new_addr)
{
	if (bar == VIRTIO_PCI_BAR)
		ioeventfds_move(pd->owner, new_addr);
}

/* The PCI_CFG capability's window: an access to pci_cfg_data reaches the BAR (4.1.4.9). */
static void cfg_access(struct pci_device *pd, unsigned off, uint8_t *data, unsigned len,
		       bool is_write)
{
	struct virtio_pci *vp = pd->owner;
	unsigned win = vp->pci_cfg_cap + offsetof(struct virtio_pci_cfg_cap, pci_cfg_data);
	struct virtio_pci_cfg_cap cap;

	if (!vp->pci_cfg_cap || off + len <= win || off >= win + 4)
		return;
	memcpy(&cap, pd->cfg + vp->pci_cfg_cap, sizeof(cap));
	uint32_t boff = cap.cap.offset, blen = cap.cap.length;

	if (cap.cap.bar != VIRTIO_PCI_BAR || (blen != 1 && blen != 2 && blen != 4) || boff % blen ||
	    boff >= VIRTIO_PCI_BAR_SIZE)
		return;
	if (is_write) {
		virtio_pci_bar_io(vp, boff, pd->cfg + win, blen, true);
	} else {
		uint8_t buf[4] = {0};

		virtio_pci_bar_io(vp, boff, buf, blen, false);
		memcpy(pd->cfg + win, buf, 4);
		for (unsigned i = 0; i < len; i++)
			if (off + i >= win && off + i < win + 4)
				data[i] = buf[off + i - win];
	}
}

/* ---- creation ------------------------------------------------------------------------- */

static void raise_irq(void *opaque, uint16_t vector)
{
	struct virtio_pci *vp = opaque;

	if (vector < PCI_MSIX_MAX_VECTORS)
		__atomic_fetch_add(&vp->irq_count[vector], 1, __ATOMIC_RELAXED);
	pci_msix_notify(&vp->pci, vector);
}

static int add_vendor_cap(struct virtio_pci *vp, uint8_t type, uint32_t off, uint32_t len,
			  const void *extra, unsigned extra_len)
{
	uint8_t buf[sizeof(struct virtio_pci_cap) + 4] = {0};
	struct virtio_pci_cap cap = {
	    .cap_vndr = PCI_CAP_ID_VNDR,
	    .cap_len = (uint8_t)(sizeof(cap) + extra_len),
	    .cfg_type = type,
	    .bar = VIRTIO_PCI_BAR,
	    .offset = off,
	    .length = len,
	};

	memcpy(buf, &cap, sizeof(cap));
	if (extra_len)
		memcpy(buf + sizeof(cap), extra, extra_len);
	return pci_device_add_cap(&vp->pci, buf, sizeof(cap) + extra_len);
}

static int build(struct virtio_dev *d, int vm_fd, struct virtio_pci **out)
{
	struct virtio_pci *vp = calloc(1, sizeof(*vp));
	uint32_t mult = VIRTIO_PCI_NOTIFY_MULT, zero = 0;
	int ret, off;

	if (!vp)
		return -ENOMEM;
	vp->dev = d;
	vp->vm_fd = vm_fd;
	vp->notify_gpa = PCI_BAR_UNMAPPED;
	/* Any access length matches (Linux writes 16 bits; others may write 32). */
	vp->ioeventfd_len =
	    vm_fd >= 0 && ioctl(vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_IOEVENTFD_ANY_LENGTH) > 0 ? 0
											      : 2;
	pci_device_init(&vp->pci, d->id, VIRTIO_PCI_VENDOR, VIRTIO_PCI_DEVICE_BASE + d->ops->type,
			d->ops->pci_class, VIRTIO_PCI_VENDOR, VIRTIO_PCI_SUBSYS_ID);
	vp->pci.cfg[PCI_CFG_REVISION] = VIRTIO_PCI_REVISION;
	vp->pci.owner = vp;
	vp->pci.bar_moved = bar_moved;
	vp->pci.cfg_access = cfg_access;
	ret = pci_device_set_bar(&vp->pci, VIRTIO_PCI_BAR, VIRTIO_PCI_BAR_SIZE, false,
				 virtio_pci_bar_io, vp);
	if (ret)
		goto fail;
	if ((off = add_vendor_cap(vp, VIRTIO_PCI_CAP_COMMON_CFG, VIRTIO_PCI_COMMON_OFF,
				  sizeof(struct virtio_pci_common_cfg), NULL, 0)) < 0 ||
	    (off = add_vendor_cap(vp, VIRTIO_PCI_CAP_NOTIFY_CFG, VIRTIO_PCI_NOTIFY_OFF,
				  d->nr_queues * VIRTIO_PCI_NOTIFY_MULT, &mult, 4)) < 0 ||
	    (off = add_vendor_cap(vp, VIRTIO_PCI_CAP_ISR_CFG, VIRTIO_PCI_ISR_OFF, 1, NULL, 0)) <
		0 ||
	    (d->config_size &&
	     (off = add_vendor_cap(vp, VIRTIO_PCI_CAP_DEVICE_CFG, VIRTIO_PCI_DEVICE_OFF,
				   d->config_size, NULL, 0)) < 0) ||
	    (off = add_vendor_cap(vp, VIRTIO_PCI_CAP_PCI_CFG, 0, 0, &zero, 4)) < 0) {
		ret = off;
		goto fail;
	}
	/* PCI_CFG: the driver writes bar, offset, length and data. */
	vp->pci_cfg_cap = (uint8_t)off;
	vp->pci.wmask[off + offsetof(struct virtio_pci_cap, bar)] = 0xff;
	memset(vp->pci.wmask + off + offsetof(struct virtio_pci_cap, offset), 0xff, 8);
	memset(vp->pci.wmask + off + offsetof(struct virtio_pci_cfg_cap, pci_cfg_data), 0xff, 4);
	ret = pci_device_add_msix(&vp->pci, d->nr_queues + 1, VIRTIO_PCI_BAR,
				  VIRTIO_PCI_MSIX_TABLE_OFF, VIRTIO_PCI_MSIX_PBA_OFF);
	if (ret)
		goto fail;
	d->transport = (struct virtio_transport){.raise = raise_irq, .opaque = vp};
	*out = vp;
	return 0;

fail:
	free(vp);
	return ret;
}

int virtio_pci_create(struct virtio_dev *d, struct pci_bus *bus, int vm_fd, struct virtio_pci **out)
{
	struct virtio_pci *vp;
	int ret = build(d, vm_fd, &vp);

	if (ret)
		return ret;
	ret = pci_device_add(bus, &vp->pci);
	if (ret) {
		d->transport = (struct virtio_transport){0};
		free(vp);
		return ret;
	}
	vp->attached = true;
	*out = vp;
	return 0;
}

int virtio_pci_create_detached(struct virtio_dev *d, struct virtio_pci **out)
{
	return build(d, -1, out);
}

void virtio_pci_destroy(struct virtio_pci *vp)
{
	if (!vp)
		return;
	ioeventfds_move(vp, PCI_BAR_UNMAPPED);
	vp->dev->transport = (struct virtio_transport){0};
	free(vp);
}

struct pci_device *virtio_pci_device(struct virtio_pci *vp) { return &vp->pci; }

unsigned virtio_pci_irq_count(const struct virtio_pci *vp, unsigned v)
{
	return v < PCI_MSIX_MAX_VECTORS ? __atomic_load_n(&vp->irq_count[v], __ATOMIC_RELAXED) : 0;
}

/* ---- snapshot --------------------------------------------------------------------------- */

/* Layout: version, the PCI function (pci_device_state_put), u32 device_feature_select, u32
 * driver_feature_select, u16 queue_select, the device core (virtio_dev_state_put). The
 * selectors hold any value the driver wrote (out-of-range ones read as zero / no queue). */
int virtio_pci_state_save(struct virtio_pci *vp, struct snap_buf *b)
{
	struct virtio_dev *d = vp->dev;
	int ret = 0;

	/* The PCI part first: pci_bus.lock comes before the device lock. */
	devstate_put_header(b);
	pci_device_state_put(&vp->pci, b);
	pthread_mutex_lock(&d->lock);
	if (!virtio_dev_quiesced(d)) {
		ret = -EBUSY;
	} else {
		snap_put_u32(b, vp->device_feature_select);
		snap_put_u32(b, vp->driver_feature_select);
		snap_put_u16(b, vp->queue_select);
		virtio_dev_state_put(d, b);
	}
	pthread_mutex_unlock(&d->lock);
	return ret ? ret : snap_buf_failed(b);
}

int virtio_pci_state_load(struct virtio_pci *vp, struct snap_cursor *c)
{
	struct virtio_dev *d = vp->dev;
	struct pci_dev_state *pst = malloc(sizeof(*pst));
	struct virtio_dev_state *vst = malloc(sizeof(*vst));
	uint32_t dev_sel = 0, drv_sel = 0;
	uint16_t q_sel = 0;
	bool ok = false;

	if (!pst || !vst) {
		snap_cursor_fail(c, "%s: out of memory", d->id);
		goto out;
	}
	if (!devstate_get_header(c) || !pci_device_state_get(&vp->pci, c, pst))
		goto out;
	dev_sel = snap_get_u32(c);
	drv_sel = snap_get_u32(c);
	q_sel = snap_get_u16(c);
	pthread_mutex_lock(&d->lock);
	ok =
	    !c->bad && virtio_dev_state_get(d, c, vp->pci.msix.nr_vectors, vst) && devstate_done(c);
	pthread_mutex_unlock(&d->lock);
	if (!ok)
		goto out;

	/* All checked: apply. The BARs move first (ioeventfds follow, bar_moved), then the core
	 * state, which may kick queues. */
	pci_device_state_apply(&vp->pci, pst);
	pthread_mutex_lock(&d->lock);
	vp->device_feature_select = dev_sel;
	vp->driver_feature_select = drv_sel;
	vp->queue_select = q_sel;
	virtio_dev_state_apply(d, vst);
	virtio_dev_state_resume(d);
	pthread_mutex_unlock(&d->lock);
out:
	free(pst);
	free(vst);
	return ok ? 0 : -EINVAL;
}
