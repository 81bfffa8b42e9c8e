/* msix.c: MSI-X for PCI devices: table and PBA in a BAR, masking, one irqfd + MSI route per vector.
 */
#include <errno.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "devices/msix.h"
#include "snapshot/state.h"
#include "util/log.h"

/*
 * Table: 16 bytes per vector, at table_off in BAR `bar`; PBA: one bit per vector, a qword at
 * pba_off (PCI_MSIX_MAX_VECTORS is 64):
 *
 *   +0 Message Address (low)   bits 1:0 read 0
 *   +4 Message Address (high)
 *   +8 Message Data
 *   +c Vector Control          bit 0: masked (1 at reset), other bits read 0
 *
 * Software must use aligned dword or qword accesses (PCI spec, "MSI-X Table"); anything else is
 * undefined there, and here reads 0 and writes are dropped.
 *
 * A vector fires (its eventfd is written; KVM turns that into the MSI its route describes)
 * only if MSI-X is enabled, the function is not masked and the vector is not masked. If
 * masked, the PBA bit is set instead and the message goes out when the mask is lifted.
 *
 * The route of a vector follows its entry whenever the vector is unmasked: on the unmask itself,
 * and on address/data writes to an unmasked entry (older Linux rewrote entries live when it
 * moved an interrupt). Masked entries are not routed anew; nothing can fire through them.
 */

#define PBA_LEN 8u

void pci_msix_state_init(struct pci_msix *m)
{
	pthread_mutex_init(&m->lock, NULL);
	for (unsigned v = 0; v < PCI_MSIX_MAX_VECTORS; v++) {
		m->table[v].ctrl = PCI_MSIX_ENTRY_MASKED;
		m->efd[v] = -1;
	}
}

int pci_msix_wire(struct pci_bus *pb, struct pci_device *d)
{
	struct pci_msix *m = &d->msix;
	unsigned v;
	int ret = 0;

	for (v = 0; v < m->nr_vectors; v++) {
		m->efd[v] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (m->efd[v] < 0) {
			ret = -errno;
			log_err("pci %s: MSI-X vector %u: eventfd: %s", d->name, v,
				strerror(errno));
			break;
		}
		if ((ret = irq_msi_alloc(pb->irq, &m->gsi[v]))) {
			log_err("pci %s: MSI-X vector %u: no GSI left", d->name, v);
			break;
		}
		if ((ret = irq_irqfd_assign(pb->vm_fd, m->efd[v], m->gsi[v]))) {
			log_err("pci %s: MSI-X vector %u: KVM_IRQFD gsi %u: %s", d->name, v,
				m->gsi[v], strerror(-ret));
			irq_msi_free(pb->irq, m->gsi[v]);
			break;
		}
	}
	if (!ret)
		return 0;
	/* Undo the vector that failed half-way, then the complete ones. */
	if (m->efd[v] >= 0)
		close(m->efd[v]);
	m->efd[v] = -1;
	m->nr_vectors = v;
	pci_msix_unwire(pb, d);
	return ret;
}

void pci_msix_unwire(struct pci_bus *pb, struct pci_device *d)
{
	struct pci_msix *m = &d->msix;

	for (unsigned v = 0; v < m->nr_vectors; v++) {
		if (m->efd[v] < 0)
			continue;
		(void)irq_irqfd_deassign(pb->vm_fd, m->efd[v], m->gsi[v]);
		irq_msi_free(pb->irq, m->gsi[v]);
		close(m->efd[v]);
		m->efd[v] = -1;
	}
}

/* Send vector v's message. Caller holds m->lock, so a mask write that completed before stops it. */
static void fire(struct pci_msix *m, unsigned v)
{
	uint64_t one = 1;

	if (m->efd[v] < 0)
		return;
	if (write(m->efd[v], &one, sizeof(one)) == sizeof(one))
		m->fired[v]++;
}

static bool can_fire(const struct pci_msix *m, unsigned v)
{
	return m->enabled && !m->func_masked && !(m->table[v].ctrl & PCI_MSIX_ENTRY_MASKED);
}

/* Deliver every pending vector that may fire now. Caller holds m->lock. */
static void flush_pending(struct pci_msix *m)
{
	for (unsigned v = 0; v < m->nr_vectors; v++) {
		if ((m->pba >> v & 1) && can_fire(m, v)) {
			m->pba &= ~(1ULL << v);
			fire(m, v);
		}
	}
}

void pci_msix_notify(struct pci_device *d, unsigned v)
{
	struct pci_msix *m = &d->msix;

	if (v >= m->nr_vectors)
		return; /* e.g. VIRTIO_MSI_NO_VECTOR */
	pthread_mutex_lock(&m->lock);
	if (!m->enabled)
		; /* no INTx fallback here */
	else if (can_fire(m, v))
		fire(m, v);
	else
		m->pba |= 1ULL << v;
	pthread_mutex_unlock(&m->lock);
}

void pci_msix_ctrl_written(struct pci_device *d)
{
	struct pci_msix *m = &d->msix;
	unsigned ctrl = d->cfg[m->cap_off + 2] | d->cfg[m->cap_off + 3] << 8;

	pthread_mutex_lock(&m->lock);
	m->enabled = ctrl & PCI_MSIX_CTRL_ENABLE;
	m->func_masked = ctrl & PCI_MSIX_CTRL_MASKALL;
	flush_pending(m);
	pthread_mutex_unlock(&m->lock);
}

/* Point vector v's GSI at its entry's message. Caller holds m->lock. */
static void route(struct pci_device *d, unsigned v)
{
	struct pci_msix *m = &d->msix;
	const struct msix_entry *e = &m->table[v];

	if (!d->bus || m->efd[v] < 0)
		return;
	int ret = irq_msi_update(d->bus->irq, m->gsi[v], (uint64_t)e->addr_hi << 32 | e->addr_lo,
				 e->data);
	if (ret)
		log_warn_ratelimited("pci %s: MSI-X vector %u: route to 0x%x_%08x data 0x%x: %s",
				     d->name, v, e->addr_hi, e->addr_lo, e->data, strerror(-ret));
}

/* One aligned dword of the table. Caller holds m->lock. */
static void table_dword(struct pci_device *d, uint32_t rel, uint8_t *p, bool is_write)
{
	struct pci_msix *m = &d->msix;
	unsigned v = rel / PCI_MSIX_ENTRY_SIZE, field = rel % PCI_MSIX_ENTRY_SIZE / 4;
	struct msix_entry *e = &m->table[v];
	uint32_t *reg[4] = {&e->addr_lo, &e->addr_hi, &e->data, &e->ctrl};

	if (!is_write) {
		memcpy(p, reg[field], 4);
		return;
	}
	uint32_t val, was_masked = e->ctrl & PCI_MSIX_ENTRY_MASKED;
	memcpy(&val, p, 4);
	switch (field) {
	case 0:
		val &= ~3u; /* dword-aligned message address */
		break;
	case 3:
		val &= PCI_MSIX_ENTRY_MASKED;
		break;
	}
	if (*reg[field] == val)
		return;
	*reg[field] = val;
	if (e->ctrl & PCI_MSIX_ENTRY_MASKED)
		return;
	route(d, v);
	if (was_masked && (m->pba >> v & 1) && can_fire(m, v)) {
		m->pba &= ~(1ULL << v);
		fire(m, v);
	}
}

/* Does [off, off + len) touch [start, start + size)? */
static bool overlaps(uint64_t off, uint32_t len, uint64_t start, uint64_t size)
{
	return off < start + size && start < off + len;
}

/* Aligned dword or qword inside [start, start + size)? */
static bool access_ok(uint64_t off, uint32_t len, uint64_t start, uint64_t size)
{
	return (len == 4 || len == 8) && off >= start && off - start <= size - len &&
	       (off - start) % len == 0;
}

bool pci_msix_mmio(struct pci_device *d, uint64_t bar_off, uint8_t *data, uint32_t len,
		   bool is_write)
{
	struct pci_msix *m = &d->msix;
	uint64_t table_len = (uint64_t)m->nr_vectors * PCI_MSIX_ENTRY_SIZE;
	bool table = overlaps(bar_off, len, m->table_off, table_len);
	bool pba = overlaps(bar_off, len, m->pba_off, PBA_LEN);

	if (!m->nr_vectors || bar_off > UINT64_MAX - len || (!table && !pba))
		return false;

	pthread_mutex_lock(&m->lock);
	if (table && access_ok(bar_off, len, m->table_off, table_len)) {
		uint32_t rel = (uint32_t)(bar_off - m->table_off);
		for (uint32_t i = 0; i < len; i += 4)
			table_dword(d, rel + i, data + i, is_write);
	} else if (pba && access_ok(bar_off, len, m->pba_off, PBA_LEN)) {
		uint8_t bits[PBA_LEN];
		for (unsigned i = 0; i < PBA_LEN; i++)
			bits[i] = (uint8_t)(m->pba >> (8 * i));
		if (!is_write) /* read-only: writes vanish */
			memcpy(data, bits + (bar_off - m->pba_off), len);
	} else {
		log_warn_ratelimited(
		    "pci %s: MSI-X %s %s at BAR offset 0x%llx len %u: not an aligned "
		    "dword/qword",
		    d->name, table ? "table" : "PBA", is_write ? "write" : "read",
		    (unsigned long long)bar_off, len);
		if (!is_write)
			memset(data, 0, len);
	}
	pthread_mutex_unlock(&m->lock);
	return true;
}

/* ---- snapshot ------------------------------------------------------------------------- */

void pci_msix_state_put(struct pci_device *d, struct snap_buf *b)
{
	struct pci_msix *m = &d->msix;

	pthread_mutex_lock(&m->lock);
	snap_put_u16(b, (uint16_t)m->nr_vectors);
	for (unsigned v = 0; v < m->nr_vectors; v++) {
		snap_put_u32(b, m->table[v].addr_lo);
		snap_put_u32(b, m->table[v].addr_hi);
		snap_put_u32(b, m->table[v].data);
		snap_put_u32(b, m->table[v].ctrl);
	}
	snap_put_u64(b, m->pba);
	pthread_mutex_unlock(&m->lock);
}

bool pci_msix_state_get(const struct pci_device *d, const uint8_t *cfg, struct snap_cursor *c,
			struct msix_entry *table, uint64_t *pba)
{
	const struct pci_msix *m = &d->msix;
	unsigned nr = snap_get_u16(c);

	if (c->bad)
		return false;
	if (nr != m->nr_vectors) {
		snap_cursor_fail(c, "pci %s: %u MSI-X vectors saved, the device has %u", d->name,
				 nr, m->nr_vectors);
		return false;
	}
	for (unsigned v = 0; v < nr; v++) {
		struct msix_entry *e = &table[v];

		e->addr_lo = snap_get_u32(c);
		e->addr_hi = snap_get_u32(c);
		e->data = snap_get_u32(c);
		e->ctrl = snap_get_u32(c);
		if (c->bad)
			return false;
		if ((e->addr_lo & 3) || (e->ctrl & ~PCI_MSIX_ENTRY_MASKED)) {
			snap_cursor_fail(c,
					 "pci %s: MSI-X vector %u: address 0x%x / control 0x%x "
					 "hold bits the table does not keep",
					 d->name, v, e->addr_lo, e->ctrl);
			return false;
		}
	}
	*pba = snap_get_u64(c);
	if (c->bad)
		return false;
	if (nr < 64 && (*pba >> nr)) {
		snap_cursor_fail(c, "pci %s: MSI-X PBA 0x%llx has bits past vector %u", d->name,
				 (unsigned long long)*pba, nr - 1);
		return false;
	}
	/* A pending bit exists only while its vector cannot fire (flush_pending). */
	if (!m->nr_vectors)
		return true;
	unsigned ctrl = cfg[m->cap_off + 2] | cfg[m->cap_off + 3] << 8;
	struct pci_msix probe = {.enabled = ctrl & PCI_MSIX_CTRL_ENABLE,
				 .func_masked = ctrl & PCI_MSIX_CTRL_MASKALL};
	for (unsigned v = 0; v < nr; v++) {
		probe.table[v] = table[v];
		if ((*pba >> v & 1) && can_fire(&probe, v)) {
			snap_cursor_fail(c, "pci %s: MSI-X vector %u pending but deliverable",
					 d->name, v);
			return false;
		}
	}
	return true;
}

void pci_msix_state_apply(struct pci_device *d, const struct msix_entry *table, uint64_t pba)
{
	struct pci_msix *m = &d->msix;

	if (!m->nr_vectors)
		return;
	unsigned ctrl = d->cfg[m->cap_off + 2] | d->cfg[m->cap_off + 3] << 8;

	pthread_mutex_lock(&m->lock);
	memcpy(m->table, table, m->nr_vectors * sizeof(*table));
	m->pba = pba;
	m->enabled = ctrl & PCI_MSIX_CTRL_ENABLE;
	m->func_masked = ctrl & PCI_MSIX_CTRL_MASKALL;
	for (unsigned v = 0; v < m->nr_vectors; v++)
		if (!(m->table[v].ctrl & PCI_MSIX_ENTRY_MASKED))
			route(d, v);
	pthread_mutex_unlock(&m->lock);
}
