/* passt_stream.c: length-prefixed frames on passt's stream socket (see passt_stream.h). */
#include "backends/passt_stream.h"

#include <errno.h>
#include <string.h>

void passt_rx_init(struct passt_rx *rx)
{
	rx->start = rx->end = 0;
	rx->runts = 0;
}

uint8_t *passt_rx_space(struct passt_rx *rx, size_t *room)
{
	if (rx->start == rx->end) {
		rx->start = rx->end = 0;
	} else if (PASST_RX_CAP - rx->end < PASST_LEN_BYTES + NET_MAX_FRAME) {
		memmove(rx->buf, rx->buf + rx->start, rx->end - rx->start);
		rx->end -= rx->start;
		rx->start = 0;
	}
	*room = PASST_RX_CAP - rx->end;
	return rx->buf + rx->end;
}

void passt_rx_commit(struct passt_rx *rx, size_t n)
{
	rx->end += MIN(n, PASST_RX_CAP - rx->end);
}

long passt_rx_next(struct passt_rx *rx, const uint8_t **frame)
{
	for (;;) {
		size_t have = rx->end - rx->start;
		const uint8_t *p = rx->buf + rx->start;
		uint32_t len;

		if (have < PASST_LEN_BYTES)
			return 0;
		len = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
		if (len == 0 || len > NET_MAX_FRAME)
			return -EPROTO;
		if (have - PASST_LEN_BYTES < len)
			return 0;
		rx->start += PASST_LEN_BYTES + len;
		if (len < PASST_ETH_HLEN) {
			rx->runts++;
			continue;
		}
		*frame = p + PASST_LEN_BYTES;
		return (long)len;
	}
}

void passt_len_encode(uint8_t out[PASST_LEN_BYTES], size_t len)
{
	out[0] = (uint8_t)(len >> 24);
	out[1] = (uint8_t)(len >> 16);
	out[2] = (uint8_t)(len >> 8);
	out[3] = (uint8_t)len;
}
