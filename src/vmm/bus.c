/* bus.c: sorted interval table mapping port or MMIO addresses to device callbacks. */
#include "vmm/bus.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void bus_init(struct bus *b, const char *name)
{
	memset(b, 0, sizeof(*b));
	b->name = name;
	pthread_rwlock_init(&b->lock, NULL);
}

void bus_destroy(struct bus *b)
{
	free(b->ranges);
	b->ranges = NULL;
	b->nr = b->cap = 0;
	pthread_rwlock_destroy(&b->lock);
}

static int bus_insert(struct bus *b, uint64_t base, uint64_t len, bus_io_fn fn, void *opaque,
		      const char *name)
{
	uint64_t end;
	if (!fn || len == 0 || __builtin_add_overflow(base, len - 1, &end))
		return -EINVAL;

	/* Find the insertion point and check both neighbours for overlap. */
	unsigned pos = 0;
	while (pos < b->nr && b->ranges[pos].base < base)
		pos++;
	if (pos > 0) {
		const struct bus_range *prev = &b->ranges[pos - 1];
		if (prev->base + (prev->len - 1) >= base)
			return -EEXIST;
	}
	if (pos < b->nr && b->ranges[pos].base <= end)
		return -EEXIST;

	if (b->nr == b->cap) {
		unsigned cap = b->cap ? b->cap * 2 : 16;
		struct bus_range *r = realloc(b->ranges, cap * sizeof(*r));
		if (!r)
			return -ENOMEM;
		b->ranges = r;
		b->cap = cap;
	}
	memmove(&b->ranges[pos + 1], &b->ranges[pos], (b->nr - pos) * sizeof(b->ranges[0]));
	b->ranges[pos] = (struct bus_range){
		.base = base, .len = len, .fn = fn, .opaque = opaque, .name = name
	};
	b->nr++;
	return 0;
}

int bus_register(struct bus *b, uint64_t base, uint64_t len, bus_io_fn fn, void *opaque,
		 const char *name)
{
	pthread_rwlock_wrlock(&b->lock);
	int ret = bus_insert(b, base, len, fn, opaque, name);
	pthread_rwlock_unlock(&b->lock);
	return ret;
}

int bus_unregister(struct bus *b, uint64_t base)
{
	int ret = -ENOENT;
	pthread_rwlock_wrlock(&b->lock);
	for (unsigned i = 0; i < b->nr; i++) {
		if (b->ranges[i].base != base)
			continue;
		memmove(&b->ranges[i], &b->ranges[i + 1], (b->nr - i - 1) * sizeof(b->ranges[0]));
		b->nr--;
		ret = 0;
		break;
	}
	pthread_rwlock_unlock(&b->lock);
	return ret;
}

static const struct bus_range *bus_find(const struct bus *b, uint64_t addr)
{
	unsigned lo = 0, hi = b->nr;
	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;
		const struct bus_range *r = &b->ranges[mid];
		if (addr < r->base)
			hi = mid;
		else if (addr - r->base >= r->len)
			lo = mid + 1;
		else
			return r;
	}
	return NULL;
}

bool bus_access(struct bus *b, uint64_t addr, uint8_t *data, uint32_t len, bool is_write)
{
	/* Copy the range out under the read lock and call it unlocked: the table may be
	 * reallocated by a writer as soon as the lock is dropped. */
	pthread_rwlock_rdlock(&b->lock);
	const struct bus_range *found = bus_find(b, addr);
	struct bus_range r = found ? *found : (struct bus_range){ 0 };
	pthread_rwlock_unlock(&b->lock);

	if (!found) {
		if (!is_write)
			memset(data, 0xff, len);
		return false;
	}
	r.fn(r.opaque, addr - r.base, data, len, is_write);
	return true;
}
