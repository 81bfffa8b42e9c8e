/* virtio_drv.c: a minimal modern virtio-pci driver for the test guests (see virtio_drv.h). */
#include "virtio_drv.h"

#define CF8 0xcf8
#define CFC 0xcfc

#define PCI_VENDOR_VIRTIO 0x1af4
#define PCI_DEVICE_MODERN 0x1040u /* + device type: a modern-only device (4.1.2.1) */
#define PCI_CFG_COMMAND 0x04
#define PCI_CFG_STATUS 0x06
#define PCI_CFG_BAR0 0x10
#define PCI_CFG_CAP_PTR 0x34
#define PCI_STATUS_CAP_LIST 0x10
#define PCI_COMMAND_MEMORY 0x02
#define PCI_COMMAND_MASTER 0x04
#define PCI_CAP_ID_VNDR 0x09
#define PCI_BAR_IO 0x1
#define PCI_BAR_TYPE_64 0x4 /* bits 2:1 = 10b */

/* Vendor capability: cfg_type, bar, offset, length; the notify one adds the multiplier. */
#define CAP_CFG_TYPE 3
#define CAP_BAR 4
#define CAP_OFFSET 8
#define CAP_LENGTH 12
#define CAP_NOTIFY_MULT 16
#define VIRTIO_PCI_CAP_COMMON_CFG 1
#define VIRTIO_PCI_CAP_NOTIFY_CFG 2
#define VIRTIO_PCI_CAP_ISR_CFG 3
#define VIRTIO_PCI_CAP_DEVICE_CFG 4

/* Common configuration layout (4.1.4.3). */
#define CC_DEVICE_FEATURE_SELECT 0
#define CC_DEVICE_FEATURE 4
#define CC_DRIVER_FEATURE_SELECT 8
#define CC_DRIVER_FEATURE 12
#define CC_NUM_QUEUES 18
#define CC_DEVICE_STATUS 20
#define CC_CONFIG_GENERATION 21
#define CC_QUEUE_SELECT 22
#define CC_QUEUE_SIZE 24
#define CC_QUEUE_MSIX_VECTOR 26
#define CC_QUEUE_ENABLE 28
#define CC_QUEUE_NOTIFY_OFF 30
#define CC_QUEUE_DESC 32
#define CC_QUEUE_DRIVER 40
#define CC_QUEUE_DEVICE 48

#define STATUS_ACKNOWLEDGE 1
#define STATUS_DRIVER 2
#define STATUS_DRIVER_OK 4
#define STATUS_FEATURES_OK 8
#define STATUS_NEEDS_RESET 64
#define STATUS_FAILED 128
#define MSI_NO_VECTOR 0xffff

/* Where a BAR the firmware left at 0 is put: inside the 32-bit hole, above what kiln hands
 * out for a handful of devices, one MiB per slot. */
#define BAR_FALLBACK_BASE 0xe0000000u
#define BAR_FALLBACK_MAX 0x100000u

#define RESET_TIMEOUT_US 1000000
#define MAX_CAPS 48 /* a capability list is at most this long in 256 bytes of config */

/* ---- MMIO and config space ------------------------------------------------------------- */

static void cfg_select(unsigned slot, unsigned reg)
{
	outl(CF8, 0x80000000u | slot << 11 | (reg & 0xfc));
}

static uint32_t cfg_read32(unsigned slot, unsigned reg)
{
	cfg_select(slot, reg);
	return inl(CFC);
}

/* Byte and word reads are taken out of the dword: kiln answers any width, but one access
 * path is less to go wrong. */
static uint8_t cfg_read8(unsigned slot, unsigned reg)
{
	return (uint8_t)(cfg_read32(slot, reg) >> (8 * (reg & 3)));
}

static void cfg_write32(unsigned slot, unsigned reg, uint32_t v)
{
	cfg_select(slot, reg);
	outl(CFC, v);
}

/* ---- finding the device ---------------------------------------------------------------- */

/* The bus address of BAR bar, assigned here if the firmware left it at 0. */
static uint64_t bar_address(unsigned slot, unsigned bar)
{
	unsigned reg = PCI_CFG_BAR0 + 4 * bar;
	uint32_t lo = cfg_read32(slot, reg);
	uint64_t addr;

	if (bar > 5 || (lo & PCI_BAR_IO))
		fail("00:%02x.0: capability in BAR%u, which is not a memory BAR", slot, bar);
	addr = lo & ~0xfu;
	if ((lo & 0x6) == PCI_BAR_TYPE_64) {
		if (bar == 5)
			fail("00:%02x.0: 64-bit BAR5", slot);
		addr |= (uint64_t)cfg_read32(slot, reg + 4) << 32;
	}
	if (addr)
		return addr;
	/* Size it (all ones, read back), then place it. */
	cfg_write32(slot, reg, 0xffffffffu);
	uint32_t size = ~(cfg_read32(slot, reg) & ~0xfu) + 1;
	if (!size || size > BAR_FALLBACK_MAX)
		fail("00:%02x.0: BAR%u of 0x%x bytes is unassigned and too big to place", slot, bar,
		     size);
	addr = BAR_FALLBACK_BASE + (uint64_t)slot * BAR_FALLBACK_MAX;
	cfg_write32(slot, reg, (uint32_t)addr);
	if ((lo & 0x6) == PCI_BAR_TYPE_64)
		cfg_write32(slot, reg + 4, 0);
	kprintf("virtio: 00:%02x.0 BAR%u placed at 0x%lx (0x%x bytes)\n", slot, bar, addr, size);
	return addr;
}

/* Walk the capability list and record the four structures this driver uses. */
static void read_caps(struct vdev *d)
{
	unsigned slot = d->slot, n = 0;

	if (!(cfg_read8(slot, PCI_CFG_STATUS) & PCI_STATUS_CAP_LIST))
		fail("00:%02x.0: no capability list", slot);
	for (unsigned p = cfg_read8(slot, PCI_CFG_CAP_PTR) & 0xfc; p;
	     p = cfg_read8(slot, p + 1) & 0xfc) {
		if (p < 0x40 || ++n > MAX_CAPS)
			fail("00:%02x.0: capability list loops or points into the header", slot);
		if (cfg_read8(slot, p) != PCI_CAP_ID_VNDR)
			continue;
		uint8_t type = cfg_read8(slot, p + CAP_CFG_TYPE);
		if (type < VIRTIO_PCI_CAP_COMMON_CFG || type > VIRTIO_PCI_CAP_DEVICE_CFG)
			continue; /* PCI_CFG access window, or a type we do not know */
		uint64_t addr = bar_address(slot, cfg_read8(slot, p + CAP_BAR)) +
				cfg_read32(slot, p + CAP_OFFSET);
		uint32_t len = cfg_read32(slot, p + CAP_LENGTH);
		/* The spec lets a device repeat a type; the first one is the preferred one. */
		switch (type) {
		case VIRTIO_PCI_CAP_COMMON_CFG:
			if (len < 56)
				fail("00:%02x.0: common config of %u bytes", slot, len);
			if (!d->common)
				d->common = addr;
			break;
		case VIRTIO_PCI_CAP_NOTIFY_CFG:
			if (!d->notify) {
				d->notify = addr;
				d->notify_mult = cfg_read32(slot, p + CAP_NOTIFY_MULT);
			}
			break;
		case VIRTIO_PCI_CAP_ISR_CFG:
			if (!d->isr)
				d->isr = addr;
			break;
		case VIRTIO_PCI_CAP_DEVICE_CFG:
			if (!d->device)
				d->device = addr;
			break;
		}
	}
	if (!d->common || !d->notify || !d->isr)
		fail("00:%02x.0: missing virtio capability (common %d notify %d isr %d)", slot,
		     d->common != 0, d->notify != 0, d->isr != 0);
}

bool vdev_find(struct vdev *d, uint16_t type)
{
	memset(d, 0, sizeof(*d));
	for (unsigned slot = 1; slot < 32; slot++) {
		uint32_t id = cfg_read32(slot, 0);

		if ((id & 0xffff) != PCI_VENDOR_VIRTIO ||
		    id >> 16 != PCI_DEVICE_MODERN + (uint32_t)type)
			continue;
		d->slot = slot;
		d->type = type;
		read_caps(d);
		/* Decode the BAR, and let the device read and write guest RAM (the rings). */
		uint32_t cmd = cfg_read32(slot, PCI_CFG_COMMAND) & 0xffff;
		cfg_write32(slot, PCI_CFG_COMMAND, cmd | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
		return true;
	}
	return false;
}

/* ---- device set-up --------------------------------------------------------------------- */

uint8_t vdev_status(const struct vdev *d) { return mmio_read8(d->common + CC_DEVICE_STATUS); }

static void set_status(struct vdev *d, uint8_t bits)
{
	mmio_write8(d->common + CC_DEVICE_STATUS, (uint8_t)(vdev_status(d) | bits));
}

static void reset(struct vdev *d)
{
	struct deadline dl;

	mmio_write8(d->common + CC_DEVICE_STATUS, 0);
	/* The reset is done when the status reads back 0 (4.1.4.3.2). */
	deadline_start(&dl, RESET_TIMEOUT_US * 1000u);
	while (vdev_status(d) != 0) {
		if (!deadline_pending(&dl))
			fail("virtio %u: status 0x%x, not 0, %u ms after a reset", d->type,
			     vdev_status(d), RESET_TIMEOUT_US / 1000);
		cpu_relax();
	}
}

void vdev_negotiate(struct vdev *d, uint64_t want)
{
	reset(d);
	set_status(d, STATUS_ACKNOWLEDGE);
	set_status(d, STATUS_DRIVER);
	mmio_write32(d->common + CC_DEVICE_FEATURE_SELECT, 0);
	d->offered = mmio_read32(d->common + CC_DEVICE_FEATURE);
	mmio_write32(d->common + CC_DEVICE_FEATURE_SELECT, 1);
	d->offered |= (uint64_t)mmio_read32(d->common + CC_DEVICE_FEATURE) << 32;
	if (!(d->offered & (1ull << VIRTIO_F_VERSION_1)))
		fail("virtio %u: VERSION_1 not offered (features 0x%lx)", d->type, d->offered);
	d->features = d->offered & (want | 1ull << VIRTIO_F_VERSION_1);
	mmio_write32(d->common + CC_DRIVER_FEATURE_SELECT, 0);
	mmio_write32(d->common + CC_DRIVER_FEATURE, (uint32_t)d->features);
	mmio_write32(d->common + CC_DRIVER_FEATURE_SELECT, 1);
	mmio_write32(d->common + CC_DRIVER_FEATURE, (uint32_t)(d->features >> 32));
	set_status(d, STATUS_FEATURES_OK);
	if (!(vdev_status(d) & STATUS_FEATURES_OK))
		fail("virtio %u: FEATURES_OK refused for features 0x%lx", d->type, d->features);
}

void vdev_setup_queue(struct vdev *d, struct vq *q, uint16_t index)
{
	uint16_t max;

	memset(q, 0, sizeof(*q));
	if (index >= mmio_read16(d->common + CC_NUM_QUEUES))
		fail("virtio %u: no queue %u", d->type, index);
	mmio_write16(d->common + CC_QUEUE_SELECT, index);
	max = mmio_read16(d->common + CC_QUEUE_SIZE);
	if (max == 0 || (max & (max - 1)))
		fail("virtio %u: queue %u has size %u", d->type, index, max);
	q->index = index;
	q->size = max < VQ_SIZE_MAX ? max : VQ_SIZE_MAX;
	for (uint16_t i = 0; i < q->size; i++)
		q->desc[i].next = (uint16_t)(i + 1);
	q->nr_free = q->size;
	/* We poll; nothing would deliver an interrupt anyway (MSI-X stays off). */
	q->avail.flags = VRING_AVAIL_F_NO_INTERRUPT;
	mmio_write16(d->common + CC_QUEUE_SIZE, q->size);
	mmio_write16(d->common + CC_QUEUE_MSIX_VECTOR, MSI_NO_VECTOR);
	/* Identity-mapped guest: the address of a static object is its guest-physical one. */
	uint64_t desc = (uint64_t)q->desc, avail = (uint64_t)&q->avail, used = (uint64_t)&q->used;
	mmio_write32(d->common + CC_QUEUE_DESC, (uint32_t)desc);
	mmio_write32(d->common + CC_QUEUE_DESC + 4, (uint32_t)(desc >> 32));
	mmio_write32(d->common + CC_QUEUE_DRIVER, (uint32_t)avail);
	mmio_write32(d->common + CC_QUEUE_DRIVER + 4, (uint32_t)(avail >> 32));
	mmio_write32(d->common + CC_QUEUE_DEVICE, (uint32_t)used);
	mmio_write32(d->common + CC_QUEUE_DEVICE + 4, (uint32_t)(used >> 32));
	q->notify =
	    d->notify + (uint64_t)mmio_read16(d->common + CC_QUEUE_NOTIFY_OFF) * d->notify_mult;
	mmio_write16(d->common + CC_QUEUE_ENABLE, 1);
	if (mmio_read16(d->common + CC_QUEUE_ENABLE) != 1 ||
	    (vdev_status(d) & (STATUS_NEEDS_RESET | STATUS_FAILED)))
		fail("virtio %u: queue %u not enabled (status 0x%x)", d->type, index,
		     vdev_status(d));
}

void vdev_driver_ok(struct vdev *d)
{
	set_status(d, STATUS_DRIVER_OK);
	uint8_t s = vdev_status(d);
	if (!(s & STATUS_DRIVER_OK) || (s & (STATUS_NEEDS_RESET | STATUS_FAILED)))
		fail("virtio %u: DRIVER_OK not taken (status 0x%x)", d->type, s);
}

uint32_t vdev_cfg_read32(const struct vdev *d, uint32_t off)
{
	if (!d->device)
		fail("virtio %u: no device configuration", d->type);
	return mmio_read32(d->device + off);
}

uint64_t vdev_cfg_read64(const struct vdev *d, uint32_t off)
{
	/* Two halves: retry while config_generation moves under us (4.1.4.3.1), a few times. */
	for (unsigned i = 0; i < 8; i++) {
		uint8_t gen = mmio_read8(d->common + CC_CONFIG_GENERATION);
		uint64_t v = vdev_cfg_read32(d, off) | (uint64_t)vdev_cfg_read32(d, off + 4) << 32;
		if (mmio_read8(d->common + CC_CONFIG_GENERATION) == gen)
			return v;
	}
	fail("virtio %u: config generation never settles", d->type);
}

/* ---- queues ---------------------------------------------------------------------------- */

int vq_add(struct vq *q, const struct vbuf *bufs, unsigned n)
{
	uint16_t head = q->free_head, i = head;

	if (n == 0 || n > q->nr_free)
		return -1;
	for (unsigned k = 0; k < n; k++) {
		i = q->free_head;
		q->desc[i].addr = (uint64_t)bufs[k].addr;
		q->desc[i].len = bufs[k].len;
		q->desc[i].flags = (uint16_t)((bufs[k].device_writes ? VRING_DESC_F_WRITE : 0) |
					      (k + 1 < n ? VRING_DESC_F_NEXT : 0));
		/* desc[i].next already names the next free descriptor: the chain's next one. */
		q->free_head = q->desc[i].next;
	}
	q->nr_free = (uint16_t)(q->nr_free - n);
	q->chain_len[head] = (uint16_t)n;
	q->avail.ring[q->avail_idx & (q->size - 1)] = head;
	q->avail_idx++;
	/* The entry (and the descriptors) before the index that publishes them. */
	__atomic_store_n(&q->avail.idx, q->avail_idx, __ATOMIC_RELEASE);
	return head;
}

void vq_kick(struct vq *q)
{
	/* avail->idx must be visible before we read the device's NO_NOTIFY: a store-load
	 * order, which x86 keeps only with a full fence. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!(__atomic_load_n(&q->used.flags, __ATOMIC_RELAXED) & VRING_USED_F_NO_NOTIFY))
		mmio_write16(q->notify, q->index);
}

/* Put the chain at head back on the free list. */
static void free_chain(struct vq *q, uint16_t head)
{
	uint16_t n = q->chain_len[head], last = head;

	for (uint16_t k = 1; k < n; k++)
		last = q->desc[last].next;
	q->desc[last].next = q->free_head;
	q->free_head = head;
	q->nr_free = (uint16_t)(q->nr_free + n);
	q->chain_len[head] = 0;
}

static bool used_ready(struct vq *q)
{
	return __atomic_load_n(&q->used.idx, __ATOMIC_ACQUIRE) != q->last_used;
}

bool vq_get_used(struct vq *q, uint32_t timeout_us, uint32_t *head, uint32_t *len)
{
	if (!used_ready(q)) {
		struct deadline dl;

		if (!timeout_us)
			return false;
		/* Only now the timer: programming it costs exits, and usually the entry is
		 * there already. */
		deadline_start(&dl, timeout_us >= 4000000 ? 4000000000u : timeout_us * 1000);
		while (!used_ready(q)) {
			if (!deadline_pending(&dl))
				return false;
			cpu_relax();
		}
	}
	struct vring_used_elem e = q->used.ring[q->last_used & (q->size - 1)];
	if (e.id >= q->size || !q->chain_len[e.id])
		fail("queue %u: used id %u is not a chain in flight", q->index, e.id);
	q->last_used++;
	free_chain(q, (uint16_t)e.id);
	*head = e.id;
	*len = e.len;
	return true;
}
