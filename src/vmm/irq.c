/* irq.c: the VM's GSI routing table (legacy pins + MSI routes) pushed whole to KVM, and irqfds. */
#include "vmm/irq.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "util/log.h"

#define ISA_IRQS 16 /* GSIs the two 8259s see */

static_assert(IRQ_FIRST_MSI_GSI + IRQ_MAX_MSI <= IRQ_MAX_ROUTES,
	      "MSI GSIs stay below the oldest KVM_MAX_IRQ_ROUTES");

static size_t table_bytes(void)
{
	return sizeof(struct kvm_irq_routing) +
	       IRQ_MAX_ROUTES * sizeof(struct kvm_irq_routing_entry);
}

static void add_irqchip(struct kvm_irq_routing *t, uint32_t gsi, uint32_t chip, uint32_t pin)
{
	t->entries[t->nr++] = (struct kvm_irq_routing_entry){
	    .gsi = gsi,
	    .type = KVM_IRQ_ROUTING_IRQCHIP,
	    .u.irqchip = {.irqchip = chip, .pin = pin},
	};
}

/*
 * The routes KVM installs itself at KVM_CREATE_IRQCHIP (Documentation/virt/kvm/api.rst: "IRQ
 * routing for GSIs 0-15 is set to both PIC and IOAPIC; GSI 16-23 only go to the IOAPIC"),
 * reproduced exactly so that taking over the table changes nothing for the legacy devices and
 * the in-kernel PIT (which raises GSI 0). QEMU differs: it drops PIC pin 2 (the cascade) and
 * sends GSI 0 to IOAPIC pin 2; kiln keeps KVM's own choice.
 */
static void add_legacy(struct kvm_irq_routing *t)
{
	for (uint32_t gsi = 0; gsi < IRQ_NR_LEGACY_GSIS; gsi++) {
		add_irqchip(t, gsi, KVM_IRQCHIP_IOAPIC, gsi);
		if (gsi < ISA_IRQS)
			add_irqchip(t, gsi,
				    gsi < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE,
				    gsi % 8);
	}
}

/* Build the whole table from r->msi and hand it to KVM. Caller holds r->lock. */
static int push_locked(struct irq_router *r)
{
	struct kvm_irq_routing *t = r->table;

	if (!t) {
		t = r->table = calloc(1, table_bytes());
		if (!t)
			return -ENOMEM;
	}
	t->nr = 0;
	t->flags = 0;
	add_legacy(t);
	for (unsigned i = 0; r->msi && i < IRQ_MAX_MSI; i++) {
		const struct irq_route *m = &r->msi[i];
		if (!m->used || !m->valid)
			continue;
		t->entries[t->nr++] = (struct kvm_irq_routing_entry){
		    .gsi = IRQ_FIRST_MSI_GSI + i,
		    .type = KVM_IRQ_ROUTING_MSI,
		    .u.msi = {.address_lo = (uint32_t)m->msi_addr,
			      .address_hi = (uint32_t)(m->msi_addr >> 32),
			      .data = m->msi_data},
		};
	}
	r->nr_routes = t->nr;
	r->nr_pushes++;
	if (r->vm_fd < 0)
		return 0;
	if (ioctl(r->vm_fd, KVM_SET_GSI_ROUTING, t) < 0)
		return -errno;
	return 0;
}

int irq_router_init(struct irq_router *r, int vm_fd)
{
	memset(r, 0, sizeof(*r));
	r->vm_fd = vm_fd;
	pthread_mutex_init(&r->lock, NULL);
	r->live = true;
	/* The table add_legacy builds is the one KVM_CREATE_IRQCHIP installed: the first MSI
	 * route pushes it whole. (KVM_SET_GSI_ROUTING waits for an expedited SRCU grace period:
	 * 0.1 ms of start-up on a PVM host.) */
	r->nr_routes = IRQ_NR_LEGACY_ROUTES;
	return 0;
}

void irq_router_destroy(struct irq_router *r)
{
	if (!r->live)
		return;
	free(r->table);
	free(r->msi);
	r->table = NULL;
	r->msi = NULL;
	pthread_mutex_destroy(&r->lock);
	r->live = false;
}

/* Index into r->msi for gsi, or -1 (also before the first irq_msi_alloc). */
static int msi_index(const struct irq_router *r, uint32_t gsi)
{
	if (!r->msi || gsi < IRQ_FIRST_MSI_GSI || gsi - IRQ_FIRST_MSI_GSI >= IRQ_MAX_MSI)
		return -1;
	return (int)(gsi - IRQ_FIRST_MSI_GSI);
}

int irq_msi_alloc(struct irq_router *r, uint32_t *gsi)
{
	int ret = -ENOSPC;

	pthread_mutex_lock(&r->lock);
	if (!r->msi)
		r->msi = calloc(IRQ_MAX_MSI, sizeof(*r->msi));
	for (unsigned i = 0; r->msi && i < IRQ_MAX_MSI; i++) {
		if (r->msi[i].used)
			continue;
		r->msi[i] = (struct irq_route){.used = true};
		*gsi = IRQ_FIRST_MSI_GSI + i;
		ret = 0;
		break;
	}
	pthread_mutex_unlock(&r->lock);
	return ret;
}

void irq_msi_free(struct irq_router *r, uint32_t gsi)
{
	int i = msi_index(r, gsi);
	if (i < 0)
		return;
	pthread_mutex_lock(&r->lock);
	bool was_routed = r->msi[i].used && r->msi[i].valid;
	r->msi[i] = (struct irq_route){0};
	if (was_routed) {
		int ret = push_locked(r);
		if (ret)
			log_warn("irq: GSI %u: KVM_SET_GSI_ROUTING on free: %s", gsi,
				 strerror(-ret));
	}
	pthread_mutex_unlock(&r->lock);
}

int irq_msi_update(struct irq_router *r, uint32_t gsi, uint64_t addr, uint32_t data)
{
	int i = msi_index(r, gsi);
	int ret = 0;

	if (i < 0)
		return -EINVAL;
	pthread_mutex_lock(&r->lock);
	struct irq_route *m = &r->msi[i];
	if (!m->used) {
		ret = -EINVAL;
	} else if (!m->valid || m->msi_addr != addr || m->msi_data != data) {
		struct irq_route old = *m;
		m->valid = true;
		m->msi_addr = addr;
		m->msi_data = data;
		ret = push_locked(r);
		if (ret)
			*m = old; /* keep mirroring what KVM has */
	}
	pthread_mutex_unlock(&r->lock);
	return ret;
}

static int irqfd(int vm_fd, int efd, uint32_t gsi, uint32_t flags)
{
	struct kvm_irqfd req = {.fd = (uint32_t)efd, .gsi = gsi, .flags = flags};

	if (vm_fd < 0)
		return 0;
	if (ioctl(vm_fd, KVM_IRQFD, &req) < 0)
		return -errno;
	return 0;
}

int irq_irqfd_assign(int vm_fd, int efd, uint32_t gsi) { return irqfd(vm_fd, efd, gsi, 0); }

int irq_irqfd_deassign(int vm_fd, int efd, uint32_t gsi)
{
	return irqfd(vm_fd, efd, gsi, KVM_IRQFD_FLAG_DEASSIGN);
}
