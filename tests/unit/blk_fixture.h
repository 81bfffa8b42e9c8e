/* blk_fixture.h: one virtio-blk device on a temp image, driven by fake_driver.h through a real
 * event loop, for test_blk and test_blk_safe (header-only, cmocka). */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "backends/disk.h"
#include "fake_driver.h"
#include "vmm/event.h"

struct fx {
	enum disk_engine engine;
	char path[64];
	struct event_loop ev;
	struct fake_driver f;
	struct virtio_dev *d;
	struct disk_config cfg;
};

/* The bytes every test image and buffer is filled with. */
static inline void fill_pattern(uint8_t *p, size_t n, uint32_t seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)((i * 131 + seed) ^ (i >> 9));
}

/* virtio_blk_create on t->path as "disk0" with t's engine. Returns its result (err filled). */
static inline int blk_fx_create(struct fx *t, enum disk_cache cache, bool readonly, char *err,
				size_t errlen)
{
	struct virtio_env env = {.mem = &t->f.mem, .ev = &t->ev};

	memset(&t->cfg, 0, sizeof(t->cfg));
	snprintf(t->cfg.id, sizeof(t->cfg.id), "disk0");
	t->cfg.path = t->path;
	t->cfg.readonly = readonly;
	t->cfg.engine = t->engine;
	t->cfg.cache = cache;
	return virtio_blk_create(&env, &t->cfg, &t->d, err, errlen);
}

/* Kick, then run the event loop until head comes back. Returns the used length. */
static inline uint32_t blk_fx_complete(struct fx *t, uint16_t head)
{
	uint32_t id, len;

	fd_kick(&t->f);
	for (int i = 0; i < 500; i++) {
		if (fd_used(&t->f, &id, &len)) {
			assert_int_equal(id, head);
			return len;
		}
		event_loop_run_once(&t->ev, 10);
	}
	fail_msg("request %u never completed", head);
	return 0;
}

/* Free the device, the loop, the RAM and the image. */
static inline void blk_fx_teardown(struct fx *t)
{
	virtio_dev_destroy(t->d);
	t->d = NULL;
	event_loop_destroy(&t->ev);
	fd_destroy(&t->f);
	unlink(t->path);
}
