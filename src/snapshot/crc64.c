/* crc64.c: CRC-64/XZ (snapshot/crc64.h), table-driven, one byte a step.
 *
 * liblzma has the same function (lzma_crc64), but the static musl kiln does not link liblzma
 * and a library for thirty lines is not worth it. Parameters (the "CRC-64/XZ" of the CRC
 * catalogue): polynomial 0x42F0E1EBA9EA3693 (ECMA-182), reflected (0xC96C5795D7870F42),
 * initial value and final XOR all ones.
 */
#include "snapshot/crc64.h"

#include <pthread.h>

#define CRC64_POLY_REFLECTED 0xC96C5795D7870F42ULL

static uint64_t table[256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

/* table[b]: the CRC register after shifting byte b through it. */
static void make_table(void)
{
	for (unsigned b = 0; b < 256; b++) {
		uint64_t r = b;

		for (unsigned bit = 0; bit < 8; bit++)
			r = (r & 1) ? (r >> 1) ^ CRC64_POLY_REFLECTED : r >> 1;
		table[b] = r;
	}
}

uint64_t crc64_xz(uint64_t crc, const void *p, size_t n)
{
	const uint8_t *b = p;
	uint64_t r = ~crc;

	pthread_once(&table_once, make_table);
	for (size_t i = 0; i < n; i++)
		r = table[(uint8_t)(r ^ b[i])] ^ (r >> 8);
	return ~r;
}
