/* rtc.h: MC146818 CMOS RTC at ports 0x70/0x71 reporting the host's time (UTC). */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define RTC_PORT_BASE 0x70
#define RTC_NR_PORTS 2
#define RTC_CENTURY_INDEX 0x32 /* put this in the FADT century field */

struct rtc {
	pthread_mutex_t lock; /* index/data pairs from several vCPUs */
	uint8_t index;
	uint8_t cmos[128];
	/* Source of the time, seconds since the epoch; NULL means time(). For unit tests. */
	int64_t (*now)(void);
};

/* Holds no resources beyond a default mutex: no destroy needed. */
void rtc_init(struct rtc *r);
/* Bus callback for RTC_NR_PORTS ports at RTC_PORT_BASE: offset 0 index, offset 1 data. */
void rtc_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);

/* Snapshot (snapshot/state.h, devices/devstate.h): the index register and the CMOS bytes the
 * guest set (RAM, alarm, control registers A and B). The time itself is not saved: it is
 * always the host's clock. Load checks and applies all or nothing (0, or -EINVAL with the
 * cursor bad). */
struct snap_buf;
struct snap_cursor;
int rtc_state_save(struct rtc *r, struct snap_buf *b);
int rtc_state_load(struct rtc *r, struct snap_cursor *c);
