/* gdt.c: the boot GDT descriptors and their decoding into KVM segment registers. */
#include <string.h>

#include "arch/x86/gdt.h"
#include "arch/x86/layout.h"
#include "util/compiler.h"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "GDT is stored in host byte order");

/* Access byte: P | DPL | S | type. Flags nibble: G | D/B | L | AVL. */
#define ACC_P 0x80
#define ACC_S 0x10
#define TYPE_CODE_XRA 0xb /* execute/read, accessed */
#define TYPE_DATA_RWA 0x3 /* read/write, accessed */
#define TYPE_TSS_BUSY 0xb /* busy 32-bit TSS in protected mode, busy 64-bit TSS in long mode */
#define FLG_G 0x8
#define FLG_DB 0x4
#define FLG_L 0x2

#define DESC(base, limit, access, flags)                                                           \
	((((uint64_t)(limit)&0xffffULL)) | (((uint64_t)(base)&0xffffffULL) << 16) |                \
	 ((uint64_t)(access) << 40) | ((((uint64_t)(limit) >> 16) & 0xfULL) << 48) |               \
	 ((uint64_t)(flags) << 52) | ((((uint64_t)(base) >> 24) & 0xffULL) << 56))

/* TSS: the PVH spec asks for base 0, limit 0x67; KVM needs a busy TSS for TR in long mode. */
#define TSS_LIMIT 0x67

const uint64_t x86_boot_gdt[X86_GDT_ENTRIES] = {
    [0] = 0,
    [LAYOUT_GDT_CODE32 >> 3] = DESC(0, 0xfffff, ACC_P | ACC_S | TYPE_CODE_XRA, FLG_G | FLG_DB),
    [LAYOUT_GDT_CODE64 >> 3] = DESC(0, 0xfffff, ACC_P | ACC_S | TYPE_CODE_XRA, FLG_G | FLG_L),
    [LAYOUT_GDT_DATA >> 3] = DESC(0, 0xfffff, ACC_P | ACC_S | TYPE_DATA_RWA, FLG_G | FLG_DB),
    [LAYOUT_GDT_TSS >> 3] = DESC(0, TSS_LIMIT, ACC_P | TYPE_TSS_BUSY, 0),
    [(LAYOUT_GDT_TSS >> 3) + 1] = 0, /* base[63:32] of the 16-byte long-mode TSS descriptor */
};

void x86_gdt_segment(const uint64_t *gdt, unsigned nr, uint16_t selector, struct kvm_segment *seg)
{
	unsigned idx = selector >> 3;

	memset(seg, 0, sizeof(*seg));
	seg->selector = selector;
	if (idx == 0 || idx >= nr) {
		seg->unusable = 1;
		return;
	}

	uint64_t d = gdt[idx];
	uint32_t limit = (uint32_t)((d & 0xffff) | (((d >> 48) & 0xf) << 16));

	seg->base = ((d >> 16) & 0xffffff) | (((d >> 56) & 0xff) << 24);
	seg->type = (d >> 40) & 0xf;
	seg->s = (d >> 44) & 1;
	seg->dpl = (d >> 45) & 3;
	seg->present = (d >> 47) & 1;
	seg->avl = (d >> 52) & 1;
	seg->l = (d >> 53) & 1;
	seg->db = (d >> 54) & 1;
	seg->g = (d >> 55) & 1;
	seg->limit = seg->g ? (limit << 12) | 0xfff : limit;
	/* System descriptors are 16 bytes in long mode: the next slot holds base[63:32]. */
	if (!seg->s && idx + 1 < nr)
		seg->base |= (gdt[idx + 1] & 0xffffffffULL) << 32;
	seg->unusable = !seg->present;
}
