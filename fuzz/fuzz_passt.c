/* fuzz_passt.c: libFuzzer target: passt's stream framing (backends/passt_stream.h), the bytes
 * another process sends kiln for its guest.
 *
 * Input: u8 step, then the stream. The stream is fed in pieces of 1 + (step * k) % 4096 bytes,
 * taking every frame after each piece, until it ends or carries an impossible length. Each
 * frame must lie inside the buffer, be a whole Ethernet frame or larger, and no longer than
 * NET_MAX_FRAME; the bytes handed out must be the stream's bytes, in order.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backends/passt_stream.h"

static struct passt_rx rx;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t off = 1, consumed = 1, k = 0;
	uint8_t step;

	if (size < 1)
		return 0;
	step = data[0];
	passt_rx_init(&rx);
	while (off < size) {
		size_t room, piece = 1 + ((size_t)step * ++k) % 4096;
		uint8_t *p = passt_rx_space(&rx, &room);
		const uint8_t *f;
		long n;

		if (piece > room)
			piece = room;
		if (piece > size - off)
			piece = size - off;
		memcpy(p, data + off, piece);
		passt_rx_commit(&rx, piece);
		off += piece;
		while ((n = passt_rx_next(&rx, &f)) > 0) {
			if (n < PASST_ETH_HLEN || n > NET_MAX_FRAME || f < rx.buf ||
			    f + n > rx.buf + sizeof(rx.buf))
				abort();
			/* the frame is the stream's bytes after its length (runts skipped) */
			while (consumed + PASST_LEN_BYTES <= size) {
				const uint8_t *h = data + consumed;
				uint32_t len = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 |
					       (uint32_t)h[2] << 8 | h[3];

				consumed += PASST_LEN_BYTES + len;
				if (len >= PASST_ETH_HLEN) {
					if ((long)len != n || memcmp(h + PASST_LEN_BYTES, f, len))
						abort();
					break;
				}
			}
		}
		if (n < 0)
			break;
	}
	return 0;
}
