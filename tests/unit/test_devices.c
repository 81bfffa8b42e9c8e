/* test_devices.c: i8042 (commands, self-test, CPU reset) and MC146818 RTC (time, formats, CMOS). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "devices/i8042.h"
#include "devices/rtc.h"
#include "util/log.h"

/* ---- i8042 ---- */

#define ST_OBF 0x01
#define ST_SYS 0x04
#define ST_CMD 0x08
#define ST_AUXDATA 0x20

struct fake_stop {
	unsigned requests;
	enum vm_stop_reason last;
};

static void fake_stop_request(void *opaque, enum vm_stop_reason why)
{
	struct fake_stop *f = opaque;
	f->requests++;
	f->last = why;
}

struct kbc {
	struct i8042 k;
	struct fake_stop stop;
};

static void kbc_init(struct kbc *c)
{
	memset(c, 0, sizeof(*c));
	i8042_init(&c->k, (struct vm_stopper){ .request = fake_stop_request, .opaque = &c->stop });
}

static uint8_t kbc_status(struct kbc *c)
{
	uint8_t v = 0;
	i8042_cmd_io(&c->k, 0, &v, 1, false);
	return v;
}

static void kbc_cmd(struct kbc *c, uint8_t cmd)
{
	i8042_cmd_io(&c->k, 0, &cmd, 1, true);
}

static uint8_t kbc_read(struct kbc *c)
{
	uint8_t v = 0;
	i8042_data_io(&c->k, 0, &v, 1, false);
	return v;
}

static void kbc_write(struct kbc *c, uint8_t v)
{
	i8042_data_io(&c->k, 0, &v, 1, true);
}

/* A command with one reply byte, polled like Linux's i8042_command(); -1 on timeout. */
static int kbc_query(struct kbc *c, uint8_t cmd)
{
	kbc_cmd(c, cmd);
	for (int i = 0; i < 100; i++)
		if (kbc_status(c) & ST_OBF)
			return kbc_read(c);
	return -1;
}

static void test_i8042_status_and_selftest(void **state)
{
	struct kbc c;
	kbc_init(&c);

	uint8_t st = kbc_status(&c);
	assert_int_equal(st & ST_OBF, 0);
	assert_int_equal(st & ST_SYS, ST_SYS);
	assert_int_equal(kbc_query(&c, 0xaa), 0x55);
	assert_int_equal(kbc_status(&c) & ST_OBF, 0); /* reading 0x60 emptied the buffer */
	assert_int_equal(kbc_status(&c) & ST_CMD, ST_CMD);
	assert_int_equal(kbc_query(&c, 0xab), 0x00);
	assert_int_equal(kbc_query(&c, 0xa9), 0x00);
	assert_int_equal(kbc_query(&c, 0xd0) & 0x01, 0x01); /* CPU not held in reset */
	assert_int_equal(c.stop.requests, 0);
}

static void test_i8042_command_byte(void **state)
{
	struct kbc c;
	kbc_init(&c);

	int ctr = kbc_query(&c, 0x20);
	assert_true(ctr >= 0);
	assert_int_equal(ctr & ST_SYS, ST_SYS);
	kbc_cmd(&c, 0x60);
	assert_int_equal(kbc_status(&c) & ST_OBF, 0);
	kbc_write(&c, 0x30);
	assert_int_equal(kbc_status(&c) & ST_CMD, 0);
	assert_int_equal(kbc_query(&c, 0x20), 0x30);
	assert_int_equal(kbc_status(&c) & ST_SYS, 0); /* the flag mirrors the command byte */
	kbc_query(&c, 0xaa);
	assert_int_equal(kbc_status(&c) & ST_SYS, ST_SYS);

	/* Port enable/disable commands flip their CTR bits (Linux checks AUXDIS). */
	kbc_cmd(&c, 0xa7);
	assert_int_equal(kbc_query(&c, 0x20) & 0x20, 0x20);
	kbc_cmd(&c, 0xa8);
	assert_int_equal(kbc_query(&c, 0x20) & 0x20, 0);
	kbc_cmd(&c, 0xad);
	assert_int_equal(kbc_query(&c, 0x20) & 0x10, 0x10);
	kbc_cmd(&c, 0xae);
	assert_int_equal(kbc_query(&c, 0x20) & 0x10, 0);

	/* A new command abandons one still waiting for its data byte. */
	kbc_cmd(&c, 0x60);
	kbc_cmd(&c, 0xad);
	kbc_write(&c, 0x00);
	assert_int_equal(kbc_query(&c, 0x20), 0x14);

	/* AUX loopback echoes as mouse data; the keyboard-side variant does not set AUXDATA. */
	kbc_cmd(&c, 0xd3);
	kbc_write(&c, 0x5a);
	assert_int_equal(kbc_status(&c) & (ST_OBF | ST_AUXDATA), ST_OBF | ST_AUXDATA);
	assert_int_equal(kbc_read(&c), 0x5a);
	assert_int_equal(kbc_status(&c) & (ST_OBF | ST_AUXDATA), 0);
	kbc_cmd(&c, 0xd2);
	kbc_write(&c, 0xa5);
	assert_int_equal(kbc_status(&c) & (ST_OBF | ST_AUXDATA), ST_OBF);
	assert_int_equal(kbc_read(&c), 0xa5);
	assert_int_equal(c.stop.requests, 0);
}

static void test_i8042_reset_pulse(void **state)
{
	struct kbc c;
	kbc_init(&c);

	kbc_cmd(&c, 0xfe);
	assert_int_equal(c.stop.requests, 1);
	assert_int_equal(c.stop.last, VM_STOP_RESET);
	kbc_cmd(&c, 0xff); /* pulses no line */
	assert_int_equal(c.stop.requests, 1);
	kbc_cmd(&c, 0xf0); /* pulses all four, the reset line among them */
	assert_int_equal(c.stop.requests, 2);
}

static void test_i8042_output_port_reset(void **state)
{
	struct kbc c;
	kbc_init(&c);

	kbc_cmd(&c, 0xd1);
	kbc_write(&c, 0x03); /* A20 on, CPU running */
	assert_int_equal(c.stop.requests, 0);
	assert_int_equal(kbc_query(&c, 0xd0), 0x03);
	kbc_cmd(&c, 0xd1);
	kbc_write(&c, 0x02); /* bit 0 clear: CPU reset */
	assert_int_equal(c.stop.requests, 1);
	assert_int_equal(c.stop.last, VM_STOP_RESET);
	kbc_write(&c, 0x00); /* no command pending: goes to the (absent) keyboard */
	assert_int_equal(c.stop.requests, 1);
}

static void test_i8042_linux_probe(void **state)
{
	struct kbc c;
	kbc_init(&c);

	/* i8042_flush: must terminate; then read CTR, write it back, self-test. */
	int n = 0;
	while ((kbc_status(&c) & ST_OBF) && n < 16) {
		kbc_read(&c);
		n++;
	}
	assert_true(n < 16);
	int ctr = kbc_query(&c, 0x20);
	assert_true(ctr >= 0);
	kbc_cmd(&c, 0x60);
	kbc_write(&c, (uint8_t)((ctr | 0x10) & ~0x01));
	assert_int_equal(kbc_query(&c, 0x20), (ctr | 0x10) & ~0x01);
	assert_int_equal(kbc_query(&c, 0xaa), 0x55);
	/* check_aux: loopback answers promptly, so no half-second timeout. */
	kbc_cmd(&c, 0xd3);
	kbc_write(&c, 0x5a);
	assert_int_equal(kbc_status(&c) & ST_AUXDATA, ST_AUXDATA);
	assert_int_equal(kbc_read(&c), 0x5a);
	/* Keyboard bytes (reset 0xff, get ID 0xf2) get no answer and do no harm. */
	kbc_write(&c, 0xff);
	kbc_write(&c, 0xf2);
	assert_int_equal(kbc_status(&c) & ST_OBF, 0);
	assert_int_equal(c.stop.requests, 0);
}

static uint64_t rng_state = 0x243f6a8885a308d3ULL;

static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static void test_i8042_garbage(void **state)
{
	static const uint32_t lens[] = { 1, 2, 4, 8 };
	struct kbc c;
	uint8_t data[8];
	unsigned resets = 0;
	kbc_init(&c);

	log_set_level(LOG_ERROR);
	for (int i = 0; i < 200000; i++) {
		uint64_t r = rng();
		uint64_t off = (r & 0x100) ? UINT64_MAX - (r & 3) : (r >> 1) & 3;
		uint32_t len = lens[(r >> 3) & 3];
		bool wr = (r >> 5) & 1;
		memcpy(data, &r, sizeof(data));
		if ((r >> 6) & 1)
			i8042_cmd_io(&c.k, off, data, len, wr);
		else
			i8042_data_io(&c.k, off, data, len, wr);
		if (!wr && off != 0)
			for (uint32_t j = 0; j < len; j++)
				assert_int_equal(data[j], 0xff);
		if (wr && off == 0 && ((r >> 6) & 1) && data[0] >= 0xf0 && !(data[0] & 1))
			resets++;
	}
	log_set_level(LOG_WARN);
	assert_true(c.stop.requests >= resets); /* every reset pulse was reported (plus 0xd1s) */
	assert_true(resets > 0);
	assert_int_equal(c.stop.last, VM_STOP_RESET);
}

/* ---- RTC ---- */

#define RTC_B_DM_BINARY 0x04
#define RTC_B_24H 0x02

static int64_t fixed_time;

static int64_t fake_now(void)
{
	return fixed_time;
}

static uint8_t cmos_read(struct rtc *r, uint8_t idx)
{
	uint8_t v = 0;
	rtc_io(r, 0, &idx, 1, true);
	rtc_io(r, 1, &v, 1, false);
	return v;
}

static void cmos_write(struct rtc *r, uint8_t idx, uint8_t v)
{
	rtc_io(r, 0, &idx, 1, true);
	rtc_io(r, 1, &v, 1, true);
}

static void rtc_fixed(struct rtc *r, int64_t t)
{
	rtc_init(r);
	r->now = fake_now;
	fixed_time = t;
}

/* Seconds, minutes, hours, weekday, day, month, year, century as the guest reads them. */
static void read_clock(struct rtc *r, uint8_t out[8])
{
	static const uint8_t idx[8] = { 0x00, 0x02, 0x04, 0x06, 0x07, 0x08, 0x09, 0x32 };
	for (int i = 0; i < 8; i++)
		out[i] = cmos_read(r, idx[i]);
}

static void test_rtc_bcd(void **state)
{
	struct rtc r;
	uint8_t t[8];
	static const uint8_t want[8] = { 0x58, 0x59, 0x23, 0x05, 0x29, 0x02, 0x24, 0x20 };

	rtc_fixed(&r, 1709251198); /* Thursday 2024-02-29 23:59:58 UTC */
	assert_int_equal(cmos_read(&r, 0x0b), RTC_B_24H);
	read_clock(&r, t);
	assert_memory_equal(t, want, sizeof(want));

	fixed_time = 946600205; /* Friday 1999-12-31 00:30:05 UTC */
	read_clock(&r, t);
	static const uint8_t want99[8] = { 0x05, 0x30, 0x00, 0x06, 0x31, 0x12, 0x99, 0x19 };
	assert_memory_equal(t, want99, sizeof(want99));
}

static void test_rtc_binary_and_12h(void **state)
{
	struct rtc r;
	uint8_t t[8];
	static const uint8_t want[8] = { 58, 59, 23, 5, 29, 2, 24, 20 };

	rtc_fixed(&r, 1709251198);
	cmos_write(&r, 0x0b, RTC_B_24H | RTC_B_DM_BINARY);
	assert_int_equal(cmos_read(&r, 0x0b), RTC_B_24H | RTC_B_DM_BINARY);
	read_clock(&r, t);
	assert_memory_equal(t, want, sizeof(want));

	cmos_write(&r, 0x0b, RTC_B_DM_BINARY); /* 12-hour, binary: 11 PM */
	assert_int_equal(cmos_read(&r, 0x04), 0x80 | 11);
	cmos_write(&r, 0x0b, 0); /* 12-hour, BCD */
	assert_int_equal(cmos_read(&r, 0x04), 0x80 | 0x11);
	fixed_time = 946600205; /* 00:30 is 12 AM */
	assert_int_equal(cmos_read(&r, 0x04), 0x12);
}

static void test_rtc_status_registers(void **state)
{
	struct rtc r;

	rtc_fixed(&r, 1709251198);
	uint8_t a = cmos_read(&r, 0x0a);
	assert_int_equal(a & 0x80, 0); /* never mid-update */
	assert_int_equal(a, 0x26);
	cmos_write(&r, 0x0a, 0xff);
	assert_int_equal(cmos_read(&r, 0x0a), 0x7f); /* UIP is read-only */
	assert_int_equal(cmos_read(&r, 0x0b), 0x02);
	assert_int_equal(cmos_read(&r, 0x0c), 0x00);
	assert_int_equal(cmos_read(&r, 0x0d), 0x80);
	cmos_write(&r, 0x0c, 0xff);
	cmos_write(&r, 0x0d, 0x00);
	assert_int_equal(cmos_read(&r, 0x0c), 0x00);
	assert_int_equal(cmos_read(&r, 0x0d), 0x80);
	cmos_write(&r, 0x0b, 0x80 | 0x10 | 0x02); /* SET clears UIE */
	assert_int_equal(cmos_read(&r, 0x0b), 0x82);
}

static void test_rtc_index_and_ram(void **state)
{
	struct rtc r;
	uint8_t v;

	rtc_fixed(&r, 1709251198);
	/* Bit 7 of the index is the NMI mask: same register either way. */
	assert_int_equal(cmos_read(&r, 0x80), 0x58);
	assert_int_equal(cmos_read(&r, 0x8d), 0x80);
	for (unsigned i = 0x0e; i < 0x80; i++)
		if (i != 0x32)
			cmos_write(&r, (uint8_t)(i | 0x80), (uint8_t)(i * 3));
	for (unsigned i = 0x0e; i < 0x80; i++)
		if (i != 0x32)
			assert_int_equal(cmos_read(&r, (uint8_t)i), (uint8_t)(i * 3));
	cmos_write(&r, 0x01, 0x45); /* alarm seconds: storage */
	assert_int_equal(cmos_read(&r, 0x01), 0x45);

	/* Time writes are ignored: the host clock stays the source. */
	cmos_write(&r, 0x00, 0x00);
	cmos_write(&r, 0x09, 0x70);
	cmos_write(&r, 0x32, 0x19);
	assert_int_equal(cmos_read(&r, 0x00), 0x58);
	assert_int_equal(cmos_read(&r, 0x09), 0x24);
	assert_int_equal(cmos_read(&r, 0x32), 0x20);

	/* The index port is write-only; a word access is index then data. */
	rtc_io(&r, 0, &v, 1, false);
	assert_int_equal(v, 0xff);
	uint8_t w[2] = { 0x40, 0xee };
	rtc_io(&r, 0, w, 2, true);
	assert_int_equal(cmos_read(&r, 0x40), 0xee);
	w[0] = 0x07;
	rtc_io(&r, 0, w, 1, true);
	rtc_io(&r, 0, w, 2, false);
	assert_int_equal(w[0], 0xff);
	assert_int_equal(w[1], 0x29);
	uint8_t q[8];
	memset(q, 0, sizeof(q));
	rtc_io(&r, 1, q, 8, false); /* data, then past the end */
	assert_int_equal(q[0], 0x29);
	for (int i = 1; i < 8; i++)
		assert_int_equal(q[i], 0xff);
	rtc_io(&r, UINT64_MAX, q, 8, true); /* nonsense offset: ignored */
	assert_int_equal(cmos_read(&r, 0x40), 0xee);
}

static bool valid_bcd(uint8_t v)
{
	return (v & 0x0f) <= 9 && (v >> 4) <= 9;
}

static void test_rtc_odd_clocks(void **state)
{
	static const int64_t times[] = { 0, -1, INT64_MAX, INT64_MIN, 253402300799, 4102444800 };
	struct rtc r;
	uint8_t t[8];

	for (size_t i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
		rtc_fixed(&r, times[i]);
		read_clock(&r, t);
		for (int j = 0; j < 8; j++)
			assert_true(valid_bcd(t[j]));
	}
	rtc_fixed(&r, 4102444800LL); /* 2100-01-01 */
	assert_int_equal(cmos_read(&r, 0x32), 0x21);
	assert_int_equal(cmos_read(&r, 0x09), 0x00);

	rtc_init(&r); /* real host time */
	read_clock(&r, t);
	for (int j = 0; j < 8; j++)
		assert_true(valid_bcd(t[j]));
	assert_true(t[7] >= 0x20);
	assert_true(t[5] >= 1 && t[5] <= 0x12);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_i8042_status_and_selftest),
		cmocka_unit_test(test_i8042_command_byte),
		cmocka_unit_test(test_i8042_reset_pulse),
		cmocka_unit_test(test_i8042_output_port_reset),
		cmocka_unit_test(test_i8042_linux_probe),
		cmocka_unit_test(test_i8042_garbage),
		cmocka_unit_test(test_rtc_bcd),
		cmocka_unit_test(test_rtc_binary_and_12h),
		cmocka_unit_test(test_rtc_status_registers),
		cmocka_unit_test(test_rtc_index_and_ram),
		cmocka_unit_test(test_rtc_odd_clocks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
