/* passt_stream.h: the framing of passt's stream socket (QEMU's "stream" netdev protocol):
 * each Ethernet frame is preceded by its length, 32 bits big-endian, with no other header.
 *
 * The receive side is a parser of bytes from another process (passt parses guest traffic and
 * is treated as hostile): a length of 0 or beyond NET_MAX_FRAME breaks the stream (there is no
 * way to find the next frame), a frame shorter than an Ethernet header is skipped and counted.
 * fuzz/fuzz_passt.c drives it with arbitrary bytes in arbitrary pieces.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backends/net.h"
#include "util/compiler.h"

#define PASST_LEN_BYTES 4
#define PASST_ETH_HLEN 14
/* Room for a little more than two of the largest frames: one can always be completed. */
#define PASST_RX_CAP (2 * (PASST_LEN_BYTES + NET_MAX_FRAME) + 4096)

struct passt_rx {
	uint8_t buf[PASST_RX_CAP];
	size_t start, end; /* unparsed bytes are buf[start..end) */
	uint64_t runts;	   /* frames shorter than an Ethernet header, skipped */
};

void passt_rx_init(struct passt_rx *rx);
/* Where the next read may put bytes (moves what is left to the front when needed), and how
 * many fit: always at least PASST_LEN_BYTES + NET_MAX_FRAME unless a whole frame waits. */
uint8_t *passt_rx_space(struct passt_rx *rx, size_t *room);
/* n bytes were read into the space. */
void passt_rx_commit(struct passt_rx *rx, size_t n);
/* The next whole frame: returns its length (PASST_ETH_HLEN..NET_MAX_FRAME) and points *frame
 * into the buffer, valid until the next call; 0 when no whole frame waits; -EPROTO when the
 * stream carries a length no frame can have (the stream is unusable from then on). */
long passt_rx_next(struct passt_rx *rx, const uint8_t **frame) __must_check;

/* The 4-byte header for a frame of len bytes. */
void passt_len_encode(uint8_t out[PASST_LEN_BYTES], size_t len);
