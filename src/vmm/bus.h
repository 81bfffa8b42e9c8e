/* bus.h: one interval bus for port I/O and MMIO; every device uses the same callback. */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "util/compiler.h"

/* Called with the offset inside the device's range. For a read the callback fills data[0..len);
 * for a write it consumes it. len is 1, 2, 4 or 8. Runs on a vCPU thread. */
typedef void (*bus_io_fn)(void *opaque, uint64_t offset, uint8_t *data, uint32_t len,
			  bool is_write);

struct bus_range {
	uint64_t base;
	uint64_t len;
	bus_io_fn fn;
	void *opaque;
	const char *name;
};

struct bus {
	const char *name; /* "pio" or "mmio", for logs */
	/* Readers: bus_access (vCPU threads, concurrently). Writers: (un)register, e.g. a PCI BAR
	 * the guest moves while other vCPUs dispatch. Held only for the lookup, never while a
	 * callback runs, so a callback may itself (un)register ranges. */
	pthread_rwlock_t lock;
	struct bus_range *ranges; /* sorted by base, non-overlapping */
	unsigned nr, cap;
};

void bus_init(struct bus *b, const char *name);
void bus_destroy(struct bus *b);
/* Register a range (any thread, also while vCPUs run). Returns 0, -EEXIST on overlap, -EINVAL,
 * or -ENOMEM. */
int bus_register(struct bus *b, uint64_t base, uint64_t len, bus_io_fn fn, void *opaque,
		 const char *name) __must_check;
/* Remove the range that starts at base. Returns 0 or -ENOENT. A vCPU that looked the range up
 * just before may still run its callback once after this returns: opaque must stay valid until
 * the vCPUs have stopped. */
int bus_unregister(struct bus *b, uint64_t base);
/* Dispatch an access. Returns false if no device claims addr (reads then return all ones). */
bool bus_access(struct bus *b, uint64_t addr, uint8_t *data, uint32_t len, bool is_write);
