/* vm_state.c: what the host's KVM offers for vCPU state, and the VM-wide in-kernel state
 * (PICs, IOAPIC, PIT, kvmclock): capture, encode, checked decode, apply (vcpu_state.h). */
#include "vmm/vcpu_state.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#define VM_STATE_LAYOUT 1
#define IOAPIC_BASE 0xfec00000ULL
#define PIT_FLAGS_KNOWN (KVM_PIT_FLAGS_HPET_LEGACY | KVM_PIT_FLAGS_SPEAKER_DATA_ON)
#define PIT_MODE_UNSET 0xff /* a channel the guest has not programmed (KVM's reset value) */
#define CLOCK_FLAGS_KNOWN (KVM_CLOCK_TSC_STABLE | KVM_CLOCK_REALTIME | KVM_CLOCK_HOST_TSC)

/* MSRs KVM keeps but leaves out of KVM_GET_MSR_INDEX_LIST: the MTRRs (variable pairs
 * 0x200-0x20f, the fixed ranges, MTRRdefType), which kiln sets at boot (arch/x86/msr.c). */
static const uint32_t extra_msrs[] = {
    0x200, 0x201, 0x202, 0x203, 0x204, 0x205, 0x206, 0x207, 0x208, 0x209,
    0x20a, 0x20b, 0x20c, 0x20d, 0x20e, 0x20f, 0x250, 0x258, 0x259, 0x268,
    0x269, 0x26a, 0x26b, 0x26c, 0x26d, 0x26e, 0x26f, 0x2ff,
};

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static int probe_msrs(int kvm_fd, struct kvm_host_facts *h, char *err, size_t errlen)
{
	const uint32_t room = VCPU_STATE_MAX_MSRS - ARRAY_SIZE(extra_msrs);
	struct kvm_msr_list *l = calloc(1, sizeof(*l) + room * sizeof(uint32_t));
	uint32_t n = 0;

	if (!l)
		return -ENOMEM;
	l->nmsrs = room;
	if (ioctl(kvm_fd, KVM_GET_MSR_INDEX_LIST, l) < 0) {
		int e = errno;
		snprintf(err, errlen, "KVM_GET_MSR_INDEX_LIST: %s%s", strerror(e),
			 e == E2BIG ? " (more MSRs than kiln saves)" : "");
		free(l);
		return -e;
	}
	memcpy(h->msrs, l->indices, MIN(l->nmsrs, room) * sizeof(uint32_t));
	n = MIN(l->nmsrs, room);
	free(l);
	memcpy(&h->msrs[n], extra_msrs, sizeof(extra_msrs));
	n += ARRAY_SIZE(extra_msrs);
	qsort(h->msrs, n, sizeof(h->msrs[0]), cmp_u32);
	h->nmsrs = 0;
	for (uint32_t i = 0; i < n; i++)
		if (!h->nmsrs || h->msrs[h->nmsrs - 1] != h->msrs[i])
			h->msrs[h->nmsrs++] = h->msrs[i];
	return 0;
}

int kvm_host_facts_probe(int kvm_fd, int vm_fd, struct kvm_host_facts *h, char *err, size_t errlen)
{
	memset(h, 0, sizeof(*h));
	int x2 = ioctl(vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);
	if (x2 > 0) {
		h->xsave2 = true;
		h->xsave_size = (uint32_t)x2;
	} else if (ioctl(vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE) > 0) {
		h->xsave_size = sizeof(struct kvm_xsave);
	}
	if (h->xsave_size > VCPU_STATE_MAX_XSAVE || (h->xsave_size && h->xsave_size < 4096)) {
		snprintf(err, errlen, "KVM_CAP_XSAVE2: an XSAVE area of %u bytes (4096 to %u)",
			 h->xsave_size, VCPU_STATE_MAX_XSAVE);
		return -E2BIG;
	}
	h->xcrs = ioctl(vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XCRS) > 0;
	h->debugregs = ioctl(vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_DEBUGREGS) > 0;
	h->sregs2 = ioctl(vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_SREGS2) > 0;
	int cf = ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_ADJUST_CLOCK);
	h->clock_flags = cf > 0 ? (uint32_t)cf & CLOCK_FLAGS_KNOWN : 0;
	return probe_msrs(kvm_fd, h, err, errlen);
}

static int get_chip(int vm_fd, uint32_t id, void *out, size_t size)
{
	struct kvm_irqchip chip = {.chip_id = id};

	if (ioctl(vm_fd, KVM_GET_IRQCHIP, &chip) < 0)
		return -errno;
	memcpy(out, &chip.chip, size);
	return 0;
}

int vm_state_capture(int vm_fd, bool has_pit, struct vm_state *s, char *err, size_t errlen)
{
	const char *what = NULL;
	int ret;

	memset(s, 0, sizeof(*s));
	if ((ret = get_chip(vm_fd, KVM_IRQCHIP_PIC_MASTER, &s->pic[0], sizeof(s->pic[0]))))
		what = "KVM_GET_IRQCHIP (PIC master)";
	else if ((ret = get_chip(vm_fd, KVM_IRQCHIP_PIC_SLAVE, &s->pic[1], sizeof(s->pic[1]))))
		what = "KVM_GET_IRQCHIP (PIC slave)";
	else if ((ret = get_chip(vm_fd, KVM_IRQCHIP_IOAPIC, &s->ioapic, sizeof(s->ioapic))))
		what = "KVM_GET_IRQCHIP (IOAPIC)";
	else if ((s->has_pit = has_pit) && ioctl(vm_fd, KVM_GET_PIT2, &s->pit) < 0)
		what = "KVM_GET_PIT2", ret = -errno;
	else if (ioctl(vm_fd, KVM_GET_CLOCK, &s->clock) < 0)
		what = "KVM_GET_CLOCK", ret = -errno;
	if (what)
		snprintf(err, errlen, "vm: %s: %s", what, strerror(-ret));
	return ret;
}

static void put_pic(struct snap_buf *b, const struct kvm_pic_state *p)
{
	const uint8_t f[] = {p->last_irr,
			     p->irr,
			     p->imr,
			     p->isr,
			     p->priority_add,
			     p->irq_base,
			     p->read_reg_select,
			     p->poll,
			     p->special_mask,
			     p->init_state,
			     p->auto_eoi,
			     p->rotate_on_auto_eoi,
			     p->special_fully_nested_mode,
			     p->init4,
			     p->elcr,
			     p->elcr_mask};
	snap_put_bytes(b, f, sizeof(f));
}

void vm_state_encode(const struct vm_state *s, struct snap_buf *b)
{
	snap_put_u16(b, VM_STATE_LAYOUT);
	put_pic(b, &s->pic[0]);
	put_pic(b, &s->pic[1]);
	snap_put_u64(b, s->ioapic.base_address);
	snap_put_u32(b, s->ioapic.ioregsel);
	snap_put_u32(b, s->ioapic.id);
	snap_put_u32(b, s->ioapic.irr);
	for (size_t i = 0; i < KVM_IOAPIC_NUM_PINS; i++)
		snap_put_u64(b, s->ioapic.redirtbl[i].bits);
	snap_put_bool(b, s->has_pit);
	if (s->has_pit) {
		for (size_t i = 0; i < 3; i++) {
			const struct kvm_pit_channel_state *ch = &s->pit.channels[i];
			snap_put_u32(b, ch->count);
			snap_put_u16(b, ch->latched_count);
			const uint8_t f[] = {ch->count_latched, ch->status_latched, ch->status,
					     ch->read_state,	ch->write_state,    ch->write_latch,
					     ch->rw_mode,	ch->mode,	    ch->bcd,
					     ch->gate};
			snap_put_bytes(b, f, sizeof(f));
			snap_put_u64(b, (uint64_t)ch->count_load_time);
		}
		snap_put_u32(b, s->pit.flags);
	}
	snap_put_u64(b, s->clock.clock);
	snap_put_u32(b, s->clock.flags);
	snap_put_u64(b, s->clock.realtime);
	snap_put_u64(b, s->clock.host_tsc);
}

static void get_pic(struct snap_cursor *c, const char *name, struct kvm_pic_state *p)
{
	uint8_t f[16];

	snap_get_bytes(c, f, sizeof(f));
	*p = (struct kvm_pic_state){
	    .last_irr = f[0],
	    .irr = f[1],
	    .imr = f[2],
	    .isr = f[3],
	    .priority_add = f[4],
	    .irq_base = f[5],
	    .read_reg_select = f[6],
	    .poll = f[7],
	    .special_mask = f[8],
	    .init_state = f[9],
	    .auto_eoi = f[10],
	    .rotate_on_auto_eoi = f[11],
	    .special_fully_nested_mode = f[12],
	    .init4 = f[13],
	    .elcr = f[14],
	    .elcr_mask = f[15],
	};
	if (p->priority_add > 7 || (p->irq_base & 7) || p->init_state > 3)
		snap_cursor_fail(c,
				 "PIC %s: priority_add %u, irq_base 0x%x, init_state %u out of "
				 "range",
				 name, p->priority_add, p->irq_base, p->init_state);
	static const size_t flags[] = {6, 7, 8, 10, 11, 12, 13};
	for (size_t i = 0; i < ARRAY_SIZE(flags); i++)
		if (f[flags[i]] > 1)
			snap_cursor_fail(c, "PIC %s: byte %zu is %u (a flag: 0 or 1)", name,
					 flags[i], f[flags[i]]);
}

static void get_pit(struct snap_cursor *c, struct kvm_pit_state2 *pit)
{
	memset(pit, 0, sizeof(*pit));
	for (size_t i = 0; i < 3 && !c->bad; i++) {
		struct kvm_pit_channel_state *ch = &pit->channels[i];
		uint8_t f[10];
		ch->count = snap_get_u32(c);
		ch->latched_count = snap_get_u16(c);
		snap_get_bytes(c, f, sizeof(f));
		ch->count_load_time = (int64_t)snap_get_u64(c);
		ch->count_latched = f[0];
		ch->status_latched = f[1];
		ch->status = f[2];
		ch->read_state = f[3];
		ch->write_state = f[4];
		ch->write_latch = f[5];
		ch->rw_mode = f[6];
		ch->mode = f[7];
		ch->bcd = f[8];
		ch->gate = f[9];
		if (c->bad)
			break;
		if (ch->count > 0x10000 || ch->count_latched > 3 || ch->status_latched > 1 ||
		    ch->read_state > 4 || ch->write_state > 4 || ch->rw_mode > 3 ||
		    (ch->mode > 5 && ch->mode != PIT_MODE_UNSET) || ch->bcd > 1 || ch->gate > 1)
			snap_cursor_fail(
			    c,
			    "PIT channel %zu: a field out of range (count %u, mode %u, "
			    "rw_mode %u, read/write state %u/%u)",
			    i, ch->count, ch->mode, ch->rw_mode, ch->read_state, ch->write_state);
	}
	pit->flags = snap_get_u32(c);
	if (pit->flags & ~(uint32_t)PIT_FLAGS_KNOWN)
		snap_cursor_fail(c, "PIT flags 0x%x (unknown bits)", pit->flags);
}

void vm_state_decode(struct snap_cursor *c, const struct kvm_host_facts *h, struct vm_state *s)
{
	(void)h; /* nothing here depends on the host's KVM yet */
	memset(s, 0, sizeof(*s));
	uint16_t layout = snap_get_u16(c);
	if (!c->bad && layout != VM_STATE_LAYOUT) {
		snap_cursor_fail(c, "layout %u (this kiln reads %u)", layout, VM_STATE_LAYOUT);
		return;
	}
	get_pic(c, "master", &s->pic[0]);
	get_pic(c, "slave", &s->pic[1]);
	struct kvm_ioapic_state *io = &s->ioapic;
	io->base_address = snap_get_u64(c);
	io->ioregsel = snap_get_u32(c);
	io->id = snap_get_u32(c);
	io->irr = snap_get_u32(c);
	for (size_t i = 0; i < KVM_IOAPIC_NUM_PINS; i++)
		io->redirtbl[i].bits = snap_get_u64(c);
	if (!c->bad && (io->base_address != IOAPIC_BASE || io->ioregsel > 0xff || io->id > 0xf ||
			io->irr >> KVM_IOAPIC_NUM_PINS))
		snap_cursor_fail(
		    c, "IOAPIC: base 0x%llx, ioregsel 0x%x, id %u, irr 0x%x out of range",
		    (unsigned long long)io->base_address, io->ioregsel, io->id, io->irr);
	s->has_pit = snap_get_bool(c);
	if (s->has_pit && !c->bad)
		get_pit(c, &s->pit);
	s->clock.clock = snap_get_u64(c);
	s->clock.flags = snap_get_u32(c);
	s->clock.realtime = snap_get_u64(c);
	s->clock.host_tsc = snap_get_u64(c);
	if (s->clock.flags & ~(uint32_t)CLOCK_FLAGS_KNOWN)
		snap_cursor_fail(c, "kvmclock flags 0x%x (unknown bits)", s->clock.flags);
}

static int set_chip(int vm_fd, uint32_t id, const void *in, size_t size)
{
	struct kvm_irqchip chip = {.chip_id = id};

	memcpy(&chip.chip, in, size);
	return ioctl(vm_fd, KVM_SET_IRQCHIP, &chip) < 0 ? -errno : 0;
}

int vm_state_apply(const struct vm_state *s, int vm_fd, bool has_pit, bool clock_realtime,
		   char *err, size_t errlen)
{
	struct kvm_clock_data clock = {.clock = s->clock.clock};
	const char *what = NULL;
	int ret = 0;

	if (s->has_pit != has_pit) {
		snprintf(err, errlen, "vm: the snapshot %s a PIT, this VM %s",
			 s->has_pit ? "has" : "has no", has_pit ? "has one" : "has none");
		return -EINVAL;
	}
	if (clock_realtime && !(s->clock.flags & KVM_CLOCK_REALTIME)) {
		snprintf(err, errlen,
			 "vm: clock_realtime: the snapshot's kvmclock has no realtime "
			 "stamp (its host offered no KVM_CLOCK_REALTIME)");
		return -EINVAL;
	}
	if (clock_realtime) {
		clock.flags = KVM_CLOCK_REALTIME;
		clock.realtime = s->clock.realtime;
	}
	if ((ret = set_chip(vm_fd, KVM_IRQCHIP_PIC_MASTER, &s->pic[0], sizeof(s->pic[0]))))
		what = "KVM_SET_IRQCHIP (PIC master)";
	else if ((ret = set_chip(vm_fd, KVM_IRQCHIP_PIC_SLAVE, &s->pic[1], sizeof(s->pic[1]))))
		what = "KVM_SET_IRQCHIP (PIC slave)";
	else if ((ret = set_chip(vm_fd, KVM_IRQCHIP_IOAPIC, &s->ioapic, sizeof(s->ioapic))))
		what = "KVM_SET_IRQCHIP (IOAPIC)";
	else if (has_pit && ioctl(vm_fd, KVM_SET_PIT2, &s->pit) < 0)
		what = "KVM_SET_PIT2", ret = -errno;
	else if (ioctl(vm_fd, KVM_SET_CLOCK, &clock) < 0)
		what = "KVM_SET_CLOCK", ret = -errno;
	if (what)
		snprintf(err, errlen, "vm: %s: %s", what, strerror(-ret));
	return ret;
}
