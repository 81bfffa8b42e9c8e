/* rtc.c: MC146818 CMOS clock: host UTC time on every read, 114 bytes of CMOS RAM, no interrupts. */
#include "devices/rtc.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#include "devices/devstate.h"
#include "util/compiler.h"

/*
 * Port 0x70 (offset 0) selects a register: bits 0-6 are the index, bit 7 is the NMI mask,
 * which this model ignores (the index register itself is write-only and reads 0xff).
 * Port 0x71 (offset 1) reads or writes the selected register.
 *
 *   0x00 seconds  0x02 minutes  0x04 hours  0x06 weekday (1 = Sunday)  0x07 day of month
 *   0x08 month    0x09 year % 100                  0x32 century (RTC_CENTURY_INDEX)
 *   0x01/0x03/0x05 alarm seconds/minutes/hours: plain storage (no alarm interrupt)
 *   0x0a A: UIP (bit 7) always 0: the clock is never caught mid-update
 *   0x0b B: 24-hour (bit 1) and BCD (bit 2 clear) by default; the guest may change both
 *   0x0c C: interrupt flags, always 0     0x0d D: VRT (bit 7) set: the battery is fine
 *   0x0e..0x7f: CMOS RAM
 *
 * The time registers (and the century) are computed from now() in UTC on each read, in BCD
 * or binary as register B says. Writes to them are ignored: the guest cannot set the host
 * clock, and a guest that sets the time (hwclock --systohc) reads the host's time back.
 */

#define REG_SECONDS 0x00
#define REG_MINUTES 0x02
#define REG_HOURS 0x04
#define REG_WEEKDAY 0x06
#define REG_DAY 0x07
#define REG_MONTH 0x08
#define REG_YEAR 0x09
#define REG_A 0x0a
#define REG_B 0x0b
#define REG_C 0x0c
#define REG_D 0x0d

#define INDEX_MASK 0x7f /* bit 7 is the NMI disable bit */

#define A_UIP 0x80
#define A_DEFAULT 0x26 /* 32.768 kHz time base, 1024 Hz periodic rate */

#define B_SET 0x80
#define B_UIE 0x10
#define B_DM_BINARY 0x04
#define B_24H 0x02
#define B_DEFAULT B_24H

#define D_VRT 0x80

#define HOUR_PM 0x80 /* in 12-hour mode */

static int64_t default_now(void)
{
	return (int64_t)time(NULL);
}

/* Broken-down UTC time; the epoch if the source gives something out of range. */
static void current_tm(const struct rtc *r, struct tm *tm)
{
	time_t t = (time_t)(r->now ? r->now() : default_now());

	if (!gmtime_r(&t, tm) || tm->tm_year + 1900 < 0 || tm->tm_year + 1900 > 9999) {
		t = 0;
		gmtime_r(&t, tm);
	}
}

static uint8_t encode(const struct rtc *r, unsigned v)
{
	v %= 100;
	if (r->cmos[REG_B] & B_DM_BINARY)
		return (uint8_t)v;
	return (uint8_t)(((v / 10) << 4) | (v % 10));
}

static uint8_t encode_hour(const struct rtc *r, unsigned hour)
{
	if (r->cmos[REG_B] & B_24H)
		return encode(r, hour);
	unsigned h12 = hour % 12 ? hour % 12 : 12;
	return (uint8_t)(encode(r, h12) | (hour >= 12 ? HOUR_PM : 0));
}

static bool is_clock_reg(uint8_t idx)
{
	switch (idx) {
	case REG_SECONDS:
	case REG_MINUTES:
	case REG_HOURS:
	case REG_WEEKDAY:
	case REG_DAY:
	case REG_MONTH:
	case REG_YEAR:
	case RTC_CENTURY_INDEX:
		return true;
	}
	return false;
}

static uint8_t read_clock(const struct rtc *r, uint8_t idx)
{
	struct tm tm;
	unsigned year;

	current_tm(r, &tm);
	year = (unsigned)tm.tm_year + 1900;
	switch (idx) {
	case REG_SECONDS:
		return encode(r, (unsigned)MIN(tm.tm_sec, 59)); /* no leap second in BCD */
	case REG_MINUTES:
		return encode(r, (unsigned)tm.tm_min);
	case REG_HOURS:
		return encode_hour(r, (unsigned)tm.tm_hour);
	case REG_WEEKDAY:
		return encode(r, (unsigned)tm.tm_wday + 1);
	case REG_DAY:
		return encode(r, (unsigned)tm.tm_mday);
	case REG_MONTH:
		return encode(r, (unsigned)tm.tm_mon + 1);
	case REG_YEAR:
		return encode(r, year % 100);
	default:
		return encode(r, year / 100); /* RTC_CENTURY_INDEX */
	}
}

static uint8_t reg_read(const struct rtc *r, uint8_t idx)
{
	if (is_clock_reg(idx))
		return read_clock(r, idx);
	switch (idx) {
	case REG_A:
		return r->cmos[REG_A] & (uint8_t)~A_UIP;
	case REG_C:
		return 0;
	case REG_D:
		return D_VRT;
	default:
		return r->cmos[idx];
	}
}

static void reg_write(struct rtc *r, uint8_t idx, uint8_t v)
{
	if (is_clock_reg(idx))
		return; /* the host clock is the time source; see the comment at the top */
	switch (idx) {
	case REG_A:
		r->cmos[REG_A] = v & (uint8_t)~A_UIP;
		break;
	case REG_B:
		/* Setting SET stops updates and clears UIE on the real part. */
		r->cmos[REG_B] = (v & B_SET) ? (uint8_t)(v & ~B_UIE) : v;
		break;
	case REG_C:
	case REG_D:
		break; /* read-only */
	default:
		r->cmos[idx] = v;
		break;
	}
}

void rtc_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct rtc *r = opaque;

	pthread_mutex_lock(&r->lock);
	for (uint32_t i = 0; i < len; i++) {
		/* A word access is two byte cycles: index, then data. */
		uint64_t port = offset < RTC_NR_PORTS ? offset + i : RTC_NR_PORTS;
		if (port == 0) {
			if (is_write)
				r->index = data[i] & INDEX_MASK;
			else
				data[i] = 0xff; /* write-only */
		} else if (port == 1) {
			uint8_t idx = r->index & INDEX_MASK;
			if (is_write)
				reg_write(r, idx, data[i]);
			else
				data[i] = reg_read(r, idx);
		} else if (!is_write) {
			data[i] = 0xff;
		}
	}
	pthread_mutex_unlock(&r->lock);
}

void rtc_init(struct rtc *r)
{
	memset(r, 0, sizeof(*r)); /* now = NULL: host time(); tests set it after init */
	pthread_mutex_init(&r->lock, NULL);
	r->cmos[REG_A] = A_DEFAULT;
	r->cmos[REG_B] = B_DEFAULT;
}

/* ---- snapshot ------------------------------------------------------------------------- */

int rtc_state_save(struct rtc *r, struct snap_buf *b)
{
	pthread_mutex_lock(&r->lock);
	devstate_put_header(b);
	snap_put_u8(b, r->index);
	snap_put_bytes(b, r->cmos, sizeof(r->cmos));
	pthread_mutex_unlock(&r->lock);
	return snap_buf_failed(b);
}

int rtc_state_load(struct rtc *r, struct snap_cursor *c)
{
	uint8_t index, cmos[sizeof(r->cmos)];

	if (!devstate_get_header(c))
		return -EINVAL;
	index = snap_get_u8(c);
	snap_get_bytes(c, cmos, sizeof(cmos));
	if (c->bad)
		return -EINVAL;
	if (index & ~INDEX_MASK)
		snap_cursor_fail(c, "index register 0x%02x: bit 7 is never stored", index);
	else if (cmos[REG_A] & A_UIP)
		snap_cursor_fail(c, "register A 0x%02x: UIP is never stored", cmos[REG_A]);
	else if ((cmos[REG_B] & B_SET) && (cmos[REG_B] & B_UIE))
		snap_cursor_fail(c, "register B 0x%02x: SET clears UIE", cmos[REG_B]);
	else if (cmos[REG_C] || cmos[REG_D])
		snap_cursor_fail(c, "registers C/D 0x%02x/0x%02x: read-only, never stored",
				 cmos[REG_C], cmos[REG_D]);
	for (unsigned i = 0; i < sizeof(cmos) && !c->bad; i++)
		if (is_clock_reg((uint8_t)i) && cmos[i])
			snap_cursor_fail(c, "CMOS byte 0x%02x is a clock register, never stored",
					 i);
	if (!devstate_done(c))
		return -EINVAL;

	pthread_mutex_lock(&r->lock);
	r->index = index;
	memcpy(r->cmos, cmos, sizeof(cmos));
	pthread_mutex_unlock(&r->lock);
	return 0;
}
