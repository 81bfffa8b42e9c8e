/* crc64.h: CRC-64/XZ (ECMA-182 polynomial, reflected), the snapshot file's checksum. */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* The CRC of p[0..n) continued from crc: start with 0, feed the bytes in any number of
 * pieces, each call's result into the next. crc64_xz(0, "123456789", 9) is
 * 0x995DC9BBDF1939FA, the check value of CRC-64/XZ. */
uint64_t crc64_xz(uint64_t crc, const void *p, size_t n);
