/* rtc.h: MC146818 CMOS RTC at ports 0x70/0x71 reporting the host's time (UTC). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#define RTC_PORT_BASE 0x70

struct rtc {
	uint8_t index;
	uint8_t cmos[128];
	/* Source of the time, seconds since the epoch; NULL means time(). For unit tests. */
	int64_t (*now)(void);
};

void rtc_init(struct rtc *r);
void rtc_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);
