/* fuzz_vcpu_state.c: libFuzzer target: any bytes given as a vCPU or VM state section decode to
 * a checked state or one error line; no ioctls. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/vcpu_state.h"

/*
 * Input: one byte, then the section.
 *   u8 sel   bit 0: a VM section (else a vCPU one); bit 1: the host has no XSAVE;
 *            bit 2: the host's XSAVE area is 8 KiB (else 4 KiB); bit 3: the host has
 *            KVM_CAP_SREGS2 (a PAE guest's PDPTRs)
 * A state that decodes is encoded again and must decode to the same state (a vCPU section of
 * layout 1 comes back as layout 2, one byte longer: the PDPTRs flag).
 */
static const uint32_t host_msrs[] = {
    0x10,  0x11,  0x12,	      0x3b,	  0x174,      0x175,	  0x176,      0x1a0,	 0x277,
    0x2ff, 0x6e0, 0x4b564d00, 0x4b564d01, 0xc0000081, 0xc0000082, 0xc0000084, 0xc0000102};

static struct vcpu_state *a, *b;

static void facts_for(uint8_t sel, struct kvm_host_facts *h)
{
	memset(h, 0, sizeof(*h));
	h->xsave_size = (sel & 2) ? 0 : (sel & 4) ? 8192 : 4096;
	h->xsave2 = h->xsave_size != 0;
	h->xcrs = true;
	h->debugregs = true;
	h->sregs2 = sel & 8;
	h->nmsrs = sizeof(host_msrs) / sizeof(host_msrs[0]);
	memcpy(h->msrs, host_msrs, sizeof(host_msrs));
}

static void vm_case(const uint8_t *p, size_t n, const struct kvm_host_facts *h)
{
	struct vm_state s, t;
	struct snap_cursor c;
	struct snap_buf buf;
	char err[256];

	snap_cursor_init(&c, "vm", p, n);
	vm_state_decode(&c, h, &s);
	if (snap_cursor_end(&c, err, sizeof(err)))
		return;
	snap_buf_init(&buf);
	vm_state_encode(&s, &buf);
	snap_cursor_init(&c, "vm", buf.data, buf.len);
	vm_state_decode(&c, h, &t);
	if (snap_buf_failed(&buf) || snap_cursor_end(&c, err, sizeof(err)) || buf.len != n ||
	    memcmp(&s, &t, sizeof(s)))
		abort();
	snap_buf_free(&buf);
}

static void vcpu_case(const uint8_t *p, size_t n, const struct kvm_host_facts *h)
{
	struct snap_cursor c;
	struct snap_buf buf;
	char err[256];

	snap_cursor_init(&c, "vcpu 0", p, n);
	vcpu_state_decode(&c, h, a);
	if (snap_cursor_end(&c, err, sizeof(err)))
		return;
	snap_buf_init(&buf);
	vcpu_state_encode(a, &buf);
	snap_cursor_init(&c, "vcpu 0", buf.data, buf.len);
	vcpu_state_decode(&c, h, b);
	/* decoded, so n >= 2 and the layout is 1 or 2 */
	size_t want = n + (p[0] == 1 && p[1] == 0);
	if (snap_buf_failed(&buf) || snap_cursor_end(&c, err, sizeof(err)) || buf.len != want ||
	    memcmp(a, b, sizeof(*a)))
		abort();
	snap_buf_free(&buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kvm_host_facts *h;

	if (size < 1)
		return 0;
	if (!a) {
		a = calloc(1, sizeof(*a));
		b = calloc(1, sizeof(*b));
		if (!a || !b)
			abort();
	}
	h = malloc(sizeof(*h));
	if (!h)
		abort();
	facts_for(data[0], h);
	if (data[0] & 1)
		vm_case(data + 1, size - 1, h);
	else
		vcpu_case(data + 1, size - 1, h);
	free(h);
	return 0;
}
