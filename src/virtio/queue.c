/* queue.c: split virtqueue: hardened descriptor-chain walker, used ring and notification logic. */
#include "virtio/queue.h"

#include <endian.h>
#include <errno.h>
#include <stdatomic.h>
#include <string.h>

#include "util/log.h"

/*
 * Memory model. The driver runs on another CPU and may rewrite any ring byte at any time.
 * - Ring indexes and entries (aligned by vq_init's checks) are read and written with relaxed
 *   __atomic accesses: exactly one untorn access each, never re-fetched by the compiler.
 * - Descriptors are copied field by field through a volatile packed view (an indirect table
 *   need not be aligned) into a local struct, and only the local copy is used afterwards.
 * - Ordering comes from C11 fences; each one names the driver-side barrier it pairs with
 *   (Linux drivers/virtio/virtio_ring.c, split ring).
 */

/* A descriptor as the guest lays it out, at any alignment. */
struct desc_raw {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
} __attribute__((packed));
static_assert(sizeof(struct desc_raw) == 16, "descriptor layout");

static uint16_t rd16(const uint16_t *p) { return le16toh(__atomic_load_n(p, __ATOMIC_RELAXED)); }

static void wr16(uint16_t *p, uint16_t v) { __atomic_store_n(p, htole16(v), __ATOMIC_RELAXED); }

static void wr32(uint32_t *p, uint32_t v) { __atomic_store_n(p, htole32(v), __ATOMIC_RELAXED); }

/* Single fetch of one descriptor: every field is read once, into *d. */
static void read_desc(const void *table, uint32_t i, struct vring_desc *d)
{
	const volatile struct desc_raw *r = (const volatile struct desc_raw *)table + i;
	d->addr = le64toh(r->addr);
	d->len = le32toh(r->len);
	d->flags = le16toh(r->flags);
	d->next = le16toh(r->next);
}

static uint16_t *used_event_ptr(const struct virtq *vq) { return &vq->avail->ring[vq->size]; }

static uint16_t *avail_event_ptr(const struct virtq *vq)
{
	return (uint16_t *)&vq->used->ring[vq->size];
}

static bool aligned_ptr(const void *p, uintptr_t align)
{
	return ((uintptr_t)p & (align - 1)) == 0;
}

int vq_init(struct virtq *vq, const struct guest_mem *mem)
{
	vq->ready = false;
	vq->desc = NULL;
	vq->avail = NULL;
	vq->used = NULL;
	vq->last_avail = 0;
	vq->used_idx = 0;
	vq->avail_known = 0;
	vq->signalled_used = 0;
	vq->signalled_used_valid = false;
	vq->broken = false;
	vq->error = NULL;
	vq->budget = vq->size;
	vq->budget_hit = false;

	if (!mem || vq->size == 0 || vq->size > VQ_MAX_SIZE || (vq->size & (vq->size - 1)))
		return -EINVAL;
	if (vq->desc_gpa % 16 || vq->avail_gpa % 2 || vq->used_gpa % 4)
		return -EINVAL;
	void *desc = gpa_to_hva(mem, vq->desc_gpa, VQ_DESC_BYTES(vq->size));
	void *avail = gpa_to_hva(mem, vq->avail_gpa, VQ_AVAIL_BYTES(vq->size));
	void *used = gpa_to_hva(mem, vq->used_gpa, VQ_USED_BYTES(vq->size));
	if (!desc || !avail || !used)
		return -EINVAL;
	/* The host mapping must keep the guest alignment for the atomic accesses above. */
	if (!aligned_ptr(desc, 16) || !aligned_ptr(avail, 2) || !aligned_ptr(used, 4))
		return -EINVAL;

	vq->mem = mem;
	vq->desc = desc;
	vq->avail = avail;
	vq->used = used;
	vq->ready = true;
	return 0;
}

void vq_reset(struct virtq *vq)
{
	vq->ready = false;
	vq->desc_gpa = vq->avail_gpa = vq->used_gpa = 0;
	vq->event_idx = false;
	vq->last_avail = 0;
	vq->used_idx = 0;
	vq->avail_known = 0;
	vq->signalled_used = 0;
	vq->signalled_used_valid = false;
	vq->broken = false;
	vq->error = NULL;
	vq->budget = 0;
	vq->budget_hit = false;
	vq->desc = NULL;
	vq->avail = NULL;
	vq->used = NULL;
}

/* The used ring area (flags, idx, entries, avail_event) is the only ring part the device
 * writes: a Diff snapshot must include it. */
static void mark_used_dirty(const struct virtq *vq)
{
	guest_mem_mark_dirty(vq->mem, vq->used_gpa, VQ_USED_BYTES(vq->size));
}

static bool vq_live(const struct virtq *vq) { return vq->ready && !vq->broken && vq->desc; }

/* Has the driver published chains the device has not taken? (avail->idx is re-read only when
 * the last batch is used up.) */
static bool chains_left(const struct virtq *vq)
{
	return vq->avail_known || rd16(&vq->avail->idx) != vq->last_avail;
}

void vq_budget_begin(struct virtq *vq, uint32_t chains)
{
	vq->budget = chains;
	vq->budget_hit = false;
}

void vq_budget_stop(struct virtq *vq)
{
	vq->budget = 0;
	if (vq_live(vq) && chains_left(vq))
		vq->budget_hit = true;
}

bool vq_budget_end(struct virtq *vq)
{
	bool hit = vq->budget_hit;

	vq->budget_hit = false;
	return hit;
}

static int vq_fail(struct virtq *vq, int err, uint16_t head, const char *why)
{
	vq->broken = true;
	vq->error = why;
	log_warn_ratelimited("virtq: size %u head %u: %s; queue needs reset", vq->size, head, why);
	return err;
}

/* Walk state of one chain. */
struct walk {
	struct iovec *iov;
	unsigned iov_cap;
	unsigned nbuf; /* buffer descriptors seen, zero-length ones included */
	unsigned nio;  /* iovecs produced (stored or not) */
	unsigned n_out, n_in;
	uint64_t total; /* out_len + in_len */
	uint64_t out_len, in_len;
	bool seen_write;
};

/* Account one buffer descriptor. Returns 0 or a negative errno with *why set. */
static int walk_buffer(const struct virtq *vq, struct walk *w, const struct vring_desc *d,
		       const char **why)
{
	bool wr = d->flags & VRING_DESC_F_WRITE;

	if (++w->nbuf > VQ_MAX_CHAIN) {
		*why = "chain longer than VQ_MAX_CHAIN";
		return -EINVAL;
	}
	if (!wr && w->seen_write) {
		*why = "readable descriptor after a writable one";
		return -EINVAL;
	}
	w->seen_write |= wr;
	/* Length before address: the u32 used->len must be able to describe the chain. */
	w->total += d->len;
	if (w->total > UINT32_MAX) {
		*why = "chain length over 4 GiB";
		return -EINVAL;
	}
	if (d->len == 0)
		return 0; /* accepted, no iovec, address not looked at */

	void *hva = gpa_to_hva(vq->mem, d->addr, d->len);
	if (!hva) {
		*why = "buffer outside guest RAM";
		return -EFAULT;
	}
	/* The device may write any of it, and KVM's dirty log never sees the VMM's writes: a
	 * Diff snapshot must include the buffer (cheap no-op while tracking is off). */
	if (wr)
		guest_mem_mark_dirty(vq->mem, d->addr, d->len);
	if (w->nio < w->iov_cap) {
		w->iov[w->nio].iov_base = hva;
		w->iov[w->nio].iov_len = d->len;
	}
	w->nio++;
	if (wr) {
		w->n_in++;
		w->in_len += d->len;
	} else {
		w->n_out++;
		w->out_len += d->len;
	}
	return 0;
}

/*
 * Walk the chain starting at head. The direct part may visit at most size descriptors
 * (one more means a repeated index, i.e. a loop); an indirect table at most its entry
 * count. Every next index is checked against the table it indexes.
 */
static int walk_chain(struct virtq *vq, uint16_t head, struct walk *w, const char **why)
{
	const void *table = vq->desc;
	uint32_t table_n = vq->size;
	uint32_t idx = head;
	uint32_t visited = 0;
	bool indirect = false;
	struct vring_desc d;
	int ret;

	for (;;) {
		if (++visited > table_n) {
			*why = indirect ? "loop in indirect table" : "descriptor loop";
			return -EINVAL;
		}
		read_desc(table, idx, &d);

		if (d.flags & VRING_DESC_F_INDIRECT) {
			if (indirect) {
				*why = "nested INDIRECT";
				return -EINVAL;
			}
			if (d.flags & VRING_DESC_F_NEXT) {
				*why = "INDIRECT with NEXT";
				return -EINVAL;
			}
			if (d.len == 0 || d.len % sizeof(struct vring_desc)) {
				*why = "indirect table length not a non-zero multiple of 16";
				return -EINVAL;
			}
			if (d.len / sizeof(struct vring_desc) > VQ_MAX_CHAIN) {
				*why = "indirect table longer than VQ_MAX_CHAIN";
				return -EINVAL;
			}
			table = gpa_to_hva(vq->mem, d.addr, d.len);
			if (!table) {
				*why = "indirect table outside guest RAM";
				return -EFAULT;
			}
			/* The WRITE flag of the table descriptor is ignored (2.7.5.3.2). */
			table_n = d.len / sizeof(struct vring_desc);
			indirect = true;
			idx = 0;
			visited = 0;
			continue;
		}

		ret = walk_buffer(vq, w, &d, why);
		if (ret)
			return ret;
		if (!(d.flags & VRING_DESC_F_NEXT))
			return 0;
		if (d.next >= table_n) {
			*why = indirect ? "next beyond indirect table" : "next >= queue size";
			return -EINVAL;
		}
		idx = d.next;
	}
}

int vq_pop(struct virtq *vq, struct vq_chain *c, struct iovec *iov, unsigned iov_cap)
{
	if (vq->broken)
		return -EINVAL;
	if (!vq->ready || !vq->desc)
		return 0;
	if (vq->budget == 0) {
		/* Spent: "empty" for this dispatch; the core runs it again if chains are left. */
		if (chains_left(vq))
			vq->budget_hit = true;
		return 0;
	}

	/* avail->idx is read once per batch, not once per chain: the driver's CPU writes that
	 * cache line, and the chains it published with the value read are known to be there. */
	if (vq->avail_known == 0) {
		uint16_t pending = (uint16_t)(rd16(&vq->avail->idx) - vq->last_avail);

		if (pending == 0)
			return 0;
		if (pending > vq->size)
			return vq_fail(vq, -EINVAL, 0, "avail->idx more than size ahead");
		vq->avail_known = pending;
		/* Acquire: pairs with the driver's virtio_wmb() between filling descriptors and
		 * the avail ring entries and storing avail->idx (virtqueue_add_split). Ring entry
		 * and descriptor reads below, for this chain and the next avail_known - 1, see at
		 * least what was published with that index. */
		atomic_thread_fence(memory_order_acquire);
	}

	uint16_t head = rd16(&vq->avail->ring[vq->last_avail & (vq->size - 1)]);
	if (head >= vq->size)
		return vq_fail(vq, -EINVAL, head, "avail ring head >= size");

	struct walk w = {.iov = iov, .iov_cap = iov_cap};
	const char *why = "";
	int ret = walk_chain(vq, head, &w, &why);
	if (ret)
		return vq_fail(vq, ret, head, why);

	vq->last_avail++;
	vq->avail_known--;
	vq->budget--;
	memset(c, 0, sizeof(*c));
	c->head = head;
	if (w.nio > iov_cap)
		return -E2BIG; /* valid chain, consumed: the device completes it with an error */
	c->n_out = w.n_out;
	c->n_in = w.n_in;
	c->out_len = w.out_len;
	c->in_len = w.in_len;
	return 1;
}

int vq_rewind(struct virtq *vq, uint16_t n)
{
	if (!vq_live(vq) || n > (uint16_t)(vq->last_avail - vq->used_idx))
		return -EINVAL;
	vq->last_avail = (uint16_t)(vq->last_avail - n);
	/* Forget the cached count: the next vq_pop reads avail->idx again, checks it against
	 * the rewound last_avail and fences as for any new batch. */
	vq->avail_known = 0;
	return 0;
}

void vq_push(struct virtq *vq, uint16_t head, uint32_t written)
{
	struct vring_used_elem e = {.id = head, .len = written};

	vq_push_many(vq, &e, 1);
}

void vq_push_many(struct virtq *vq, const struct vring_used_elem *elems, unsigned n)
{
	if (!vq_live(vq) || n == 0)
		return;
	if (n > vq->size) {
		log_warn_ratelimited("virtq: push of %u entries > size %u ignored", n, vq->size);
		return;
	}
	for (unsigned i = 0; i < n; i++) {
		if (elems[i].id >= vq->size) {
			log_warn_ratelimited("virtq: push of head %u >= size %u ignored",
					     elems[i].id, vq->size);
			return;
		}
	}
	for (unsigned i = 0; i < n; i++) {
		struct vring_used_elem *e =
		    &vq->used->ring[(uint16_t)(vq->used_idx + i) & (vq->size - 1)];
		wr32(&e->id, elems[i].id);
		wr32(&e->len, elems[i].len);
	}
	/* Release: pairs with the driver's virtio_rmb() after it reads used->idx and before it
	 * reads used ring entries (virtqueue_get_buf_ctx_split). The entries are visible first,
	 * and all n of them with the one used->idx store. */
	atomic_thread_fence(memory_order_release);
	vq->used_idx = (uint16_t)(vq->used_idx + n);
	wr16(&vq->used->idx, vq->used_idx);
	mark_used_dirty(vq);
}

/* virtio 1.x 2.7.10: interrupt if used_event lies in [old, new), modulo 2^16. */
static bool vring_need_event(uint16_t event, uint16_t new_idx, uint16_t old)
{
	return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old);
}

bool vq_should_notify(struct virtq *vq)
{
	if (!vq_live(vq))
		return false;

	/* Full fence: our used->idx store must be visible before we read used_event / flags.
	 * Pairs with the driver's virtio_mb() between writing used_event (or clearing
	 * NO_INTERRUPT) and re-reading used->idx (virtqueue_enable_cb / virtqueue_poll). */
	atomic_thread_fence(memory_order_seq_cst);

	if (!vq->event_idx)
		return !(rd16(&vq->avail->flags) & VRING_AVAIL_F_NO_INTERRUPT);

	uint16_t old = vq->signalled_used;
	bool valid = vq->signalled_used_valid;
	uint16_t new_idx = vq->used_idx;
	vq->signalled_used = new_idx;
	vq->signalled_used_valid = true;
	if (!valid)
		return true;
	return vring_need_event(rd16(used_event_ptr(vq)), new_idx, old);
}

bool vq_enable_notify(struct virtq *vq)
{
	if (!vq_live(vq))
		return false;
	/* Budget spent with chains left: the core kicks the queue again, so notifications may
	 * stay off (a stale avail_event or NO_NOTIFY) and the caller's loop must end. */
	if (vq->budget_hit)
		return false;
	if (vq->event_idx)
		wr16(avail_event_ptr(vq), vq->last_avail);
	else
		wr16(&vq->used->flags, 0);
	mark_used_dirty(vq);

	/* Full fence: publish avail_event / the cleared NO_NOTIFY before re-reading avail->idx.
	 * Pairs with the driver's virtio_mb() between storing avail->idx and reading
	 * avail_event / used->flags (virtqueue_kick_prepare_split). Either we see its new
	 * buffers here or it sees our request and kicks. */
	atomic_thread_fence(memory_order_seq_cst);

	if (rd16(&vq->avail->idx) == vq->last_avail)
		return false;
	if (vq->budget == 0) {
		vq->budget_hit = true; /* new buffers, but not for this dispatch */
		return false;
	}
	return true;
}

void vq_disable_notify(struct virtq *vq)
{
	/* With EVENT_IDX nothing to do: avail_event stays behind and suppresses kicks. No
	 * fence: suppression is only a hint, a late kick is harmless. */
	if (vq_live(vq) && !vq->event_idx) {
		wr16(&vq->used->flags, VRING_USED_F_NO_NOTIFY);
		mark_used_dirty(vq);
	}
}

uint16_t vq_avail_count(const struct virtq *vq)
{
	if (!vq_live(vq))
		return 0;
	uint16_t n = (uint16_t)(rd16(&vq->avail->idx) - vq->last_avail);
	return n > vq->size ? vq->size : n;
}

size_t iov_to_buf(const struct iovec *iov, unsigned n, size_t offset, void *buf, size_t len)
{
	size_t done = 0;

	for (unsigned i = 0; i < n && done < len; i++) {
		if (offset >= iov[i].iov_len) {
			offset -= iov[i].iov_len;
			continue;
		}
		size_t k = MIN(iov[i].iov_len - offset, len - done);
		memcpy((uint8_t *)buf + done, (const uint8_t *)iov[i].iov_base + offset, k);
		done += k;
		offset = 0;
	}
	return done;
}

size_t iov_from_buf(const struct iovec *iov, unsigned n, size_t offset, const void *buf, size_t len)
{
	size_t done = 0;

	for (unsigned i = 0; i < n && done < len; i++) {
		if (offset >= iov[i].iov_len) {
			offset -= iov[i].iov_len;
			continue;
		}
		size_t k = MIN(iov[i].iov_len - offset, len - done);
		memcpy((uint8_t *)iov[i].iov_base + offset, (const uint8_t *)buf + done, k);
		done += k;
		offset = 0;
	}
	return done;
}

unsigned iov_slice(const struct iovec *src, unsigned n, uint64_t off, uint64_t len,
		   struct iovec *dst)
{
	unsigned k = 0;

	for (unsigned i = 0; i < n && len; i++) {
		if (off >= src[i].iov_len) {
			off -= src[i].iov_len;
			continue;
		}
		size_t take = (size_t)MIN(src[i].iov_len - off, len);
		dst[k].iov_base = (uint8_t *)src[i].iov_base + off;
		dst[k++].iov_len = take;
		len -= take;
		off = 0;
	}
	return k;
}
