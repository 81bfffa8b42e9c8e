/* test_passt_stream.c: the framing of passt's stream socket (backends/passt_stream.h): frames
 * split across reads at every byte, runts skipped, impossible lengths refused, the buffer
 * compacted without losing a byte. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "backends/passt_stream.h"

static struct passt_rx rx;

/* Append n bytes as if read from the socket. */
static void feed(const uint8_t *b, size_t n)
{
	while (n) {
		size_t room;
		uint8_t *p = passt_rx_space(&rx, &room);
		size_t k = n < room ? n : room;

		assert_true(room > 0);
		memcpy(p, b, k);
		passt_rx_commit(&rx, k);
		b += k;
		n -= k;
	}
}

static size_t put_frame(uint8_t *out, size_t len, uint8_t fill)
{
	passt_len_encode(out, len);
	memset(out + PASST_LEN_BYTES, fill, len);
	return PASST_LEN_BYTES + len;
}

static void test_split_everywhere(void **state)
{
	uint8_t s[3 * 100];
	size_t n = put_frame(s, 60, 0xa1);

	n += put_frame(s + n, 14, 0xb2);
	for (size_t cut = 0; cut <= n; cut++) {
		const uint8_t *f;
		long len;

		passt_rx_init(&rx);
		feed(s, cut);
		len = passt_rx_next(&rx, &f);
		if (cut < PASST_LEN_BYTES + 60) {
			assert_int_equal(len, 0);
			feed(s + cut, n - cut);
			len = passt_rx_next(&rx, &f);
		}
		assert_int_equal(len, 60);
		assert_int_equal(f[0], 0xa1);
		assert_int_equal(f[59], 0xa1);
		feed(s + cut, cut < PASST_LEN_BYTES + 60 ? 0 : n - cut); /* f is done with */
		assert_int_equal(passt_rx_next(&rx, &f), 14);
		assert_int_equal(f[13], 0xb2);
		assert_int_equal(passt_rx_next(&rx, &f), 0);
	}
}

static void test_runt_skipped(void **state)
{
	uint8_t s[100];
	const uint8_t *f;
	size_t n = put_frame(s, 13, 1);

	n += put_frame(s + n, 20, 2);
	passt_rx_init(&rx);
	feed(s, n);
	assert_int_equal(passt_rx_next(&rx, &f), 20);
	assert_int_equal(f[0], 2);
	assert_int_equal(rx.runts, 1);
}

static void test_bad_lengths(void **state)
{
	static const uint8_t zero[4] = {0, 0, 0, 0};
	uint8_t big[4];
	const uint8_t *f;

	passt_rx_init(&rx);
	feed(zero, 4);
	assert_int_equal(passt_rx_next(&rx, &f), -EPROTO);
	passt_len_encode(big, NET_MAX_FRAME + 1);
	passt_rx_init(&rx);
	feed(big, 4);
	assert_int_equal(passt_rx_next(&rx, &f), -EPROTO);
	passt_len_encode(big, 0xffffffffu);
	passt_rx_init(&rx);
	feed(big, 4);
	assert_int_equal(passt_rx_next(&rx, &f), -EPROTO);
}

/* Many largest frames in a row, fed in odd pieces: the buffer wraps by compaction and every
 * byte arrives in order. */
static void test_largest_frames(void **state)
{
	size_t len = NET_MAX_FRAME, n;
	uint8_t *s = malloc(5 * (PASST_LEN_BYTES + len));
	unsigned got = 0;

	assert_non_null(s);
	n = 0;
	for (unsigned i = 0; i < 5; i++)
		n += put_frame(s + n, len, (uint8_t)(0x10 + i));
	passt_rx_init(&rx);
	for (size_t off = 0; off < n;) {
		size_t k = n - off < 7777 ? n - off : 7777, room;
		const uint8_t *f;
		long r;

		(void)passt_rx_space(&rx, &room);
		k = k < room ? k : room;
		feed(s + off, k);
		off += k;
		while ((r = passt_rx_next(&rx, &f)) > 0) {
			assert_int_equal(r, (long)len);
			assert_int_equal(f[0], 0x10 + got);
			assert_int_equal(f[len - 1], 0x10 + got);
			got++;
		}
		assert_int_equal(r, 0);
	}
	assert_int_equal(got, 5);
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_split_everywhere),
	    cmocka_unit_test(test_runt_skipped),
	    cmocka_unit_test(test_bad_lengths),
	    cmocka_unit_test(test_largest_frames),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
