/* fuzz_config_state.c: libFuzzer target: any bytes given as a CONFIG or MEMORY snapshot section
 * decode to a checked configuration (or a layout check) or one error line, and nothing leaks.
 *
 * Input: one byte, then the section.
 *   u8 sel   bit 0: a MEMORY section, checked against the layout of (sel >> 1) + 1 GiB of RAM
 *            less (sel >> 1) pages; else a CONFIG section.
 * A CONFIG section that decodes is encoded again and must give the same bytes, and those must
 * decode again.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snapshot/config_state.h"

static void config_case(const uint8_t *p, size_t n)
{
	struct vm_config a, b;
	struct snap_cursor c;
	struct snap_buf buf;
	char err[512];

	snap_cursor_init(&c, "config", p, n);
	if (config_state_decode(&c, &a, err, sizeof(err))) {
		/* One line naming the section, and nothing left in a. */
		if (strncmp(err, "section 'config': ", 18) || strchr(err, '\n') || a.nr_disks ||
		    a.nr_nets)
			abort();
		return;
	}
	snap_buf_init(&buf);
	config_state_encode(&a, &buf);
	if (snap_buf_failed(&buf) || buf.len != n || memcmp(buf.data, p, n))
		abort();
	snap_cursor_init(&c, "config", buf.data, buf.len);
	if (config_state_decode(&c, &b, err, sizeof(err)))
		abort();
	vm_config_free(&b);
	vm_config_free(&a);
	snap_buf_free(&buf);
}

static void memory_case(uint8_t sel, const uint8_t *p, size_t n)
{
	uint64_t ram = ((uint64_t)(sel >> 1) + 1) * (1ULL << 30) - (uint64_t)(sel >> 1) * 4096;
	struct guest_mem want;
	struct snap_cursor c;
	char err[256];

	if (guest_mem_layout(&want, ram))
		abort();
	snap_cursor_init(&c, "memory", p, n);
	if (memory_layout_check(&c, &want, err, sizeof(err)) &&
	    strncmp(err, "section 'memory': ", 18))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *copy;

	if (size < 1)
		return 0;
	/* An exact-size copy, so that ASan sees any read past the section. */
	copy = malloc(size - 1 ? size - 1 : 1);
	if (!copy)
		abort();
	memcpy(copy, data + 1, size - 1);
	if (data[0] & 1)
		memory_case(data[0], copy, size - 1);
	else
		config_case(copy, size - 1);
	free(copy);
	return 0;
}
