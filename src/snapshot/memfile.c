/* memfile.c: write guest RAM to a snapshot memory file: Full (sparse: untouched and zero pages
 * stay holes) or Diff (exactly the dirty pages). */
#include "snapshot/memfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHUNK_PAGES 512ULL	/* pagemap entries read at once: 2 MiB of RAM */
#define PM_PRESENT (1ULL << 63) /* /proc/PID/pagemap: page in RAM */
#define PM_SWAPPED (1ULL << 62) /* /proc/PID/pagemap: page in swap */
#define NO_EXTENT UINT64_MAX

struct writer {
	const struct guest_mem *m;
	const char *path;
	char *err;
	size_t errlen;
	int fd;	     /* the temporary file */
	int pagemap; /* /proc/self/pagemap, or -1: then every page is read */
	struct memfile_stats st;
	uint64_t run_off, run_len; /* pages waiting to be written as one pwrite: RAM offsets */
	uint64_t ext_start,
	    ext_end; /* file-backed RAM: the backing file's data extent found last */
};

static int fail(struct writer *w, int ret, const char *what)
{
	snprintf(w->err, w->errlen, "memory file %s: %s: %s", w->path, what, strerror(-ret));
	return ret;
}

static int flush_run(struct writer *w)
{
	const uint8_t *src = w->m->base + w->run_off;
	uint64_t off = w->run_off, left = w->run_len;

	w->run_len = 0;
	/* Bounded: every pass writes at least one byte or fails. */
	while (left) {
		ssize_t n = pwrite(w->fd, src, left, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return fail(w, n < 0 ? -errno : -EIO, "write");
		w->st.writes++;
		src += n;
		off += (uint64_t)n;
		left -= (uint64_t)n;
	}
	return 0;
}

/* The page at RAM offset off goes into the file. */
static int add_page(struct writer *w, uint64_t off)
{
	w->st.pages_written++;
	if (w->run_len && w->run_off + w->run_len == off) {
		w->run_len += GUEST_PAGE_SIZE;
		return 0;
	}
	int ret = w->run_len ? flush_run(w) : 0;
	w->run_off = off;
	w->run_len = GUEST_PAGE_SIZE;
	return ret;
}

static bool page_is_zero(const uint8_t *p)
{
	const uint64_t *q = (const uint64_t *)p;
	/* 256-byte blocks: a page of data is told apart early, a zero page at memory speed. */
	for (unsigned b = 0; b < GUEST_PAGE_SIZE / 8; b += 32) {
		uint64_t acc = 0;
		for (unsigned i = 0; i < 32; i++)
			acc |= q[b + i];
		if (acc)
			return false;
	}
	return true;
}

/* File- or memfd-backed RAM: may the page at RAM offset off hold data in the backing file?
 * (A page not mapped in this process reads what the file holds there.) */
static bool backing_has_data(struct writer *w, uint64_t off)
{
	if (w->ext_start != NO_EXTENT && off >= w->ext_start && off < w->ext_end)
		return true;
	if (w->ext_start != NO_EXTENT && off < w->ext_start)
		return false; /* in the hole before the extent found last */
	off_t data = lseek(w->m->fd, (off_t)off, SEEK_DATA);
	if (data < 0) {
		if (errno == ENXIO) { /* no data from off to the end */
			w->ext_start = w->ext_end = w->m->ram_size;
			return false;
		}
		return true; /* cannot tell: read the page */
	}
	off_t hole = lseek(w->m->fd, data, SEEK_HOLE);
	w->ext_start = (uint64_t)data;
	w->ext_end = hole > data ? (uint64_t)hole : w->m->ram_size;
	return off >= w->ext_start && off < w->ext_end;
}

static int write_full_region(struct writer *w, const struct mem_region *r)
{
	uint64_t ent[CHUNK_PAGES];
	uint64_t npages = r->size / GUEST_PAGE_SIZE;

	for (uint64_t pg = 0; pg < npages; pg += CHUNK_PAGES) {
		uint64_t n = MIN(CHUNK_PAGES, npages - pg);
		const uint8_t *hva = r->hva + pg * GUEST_PAGE_SIZE;
		size_t want = (size_t)n * sizeof(uint64_t);
		off_t at = (off_t)((uintptr_t)hva / GUEST_PAGE_SIZE * sizeof(uint64_t));

		/* No pagemap (or a short read): treat every page as present and read it. */
		if (w->pagemap < 0 || pread(w->pagemap, ent, want, at) != (ssize_t)want)
			for (uint64_t i = 0; i < n; i++)
				ent[i] = PM_PRESENT;
		for (uint64_t i = 0; i < n; i++) {
			uint64_t off = r->offset + (pg + i) * GUEST_PAGE_SIZE;
			if (!(ent[i] & (PM_PRESENT | PM_SWAPPED))) {
				/* Never touched here: zero for anonymous RAM, the file's bytes
				 * for file- or memfd-backed RAM. */
				if (w->m->backing == GUEST_MEM_ANON || !backing_has_data(w, off))
					continue;
			}
			w->st.pages_scanned++;
			if (page_is_zero(hva + i * GUEST_PAGE_SIZE))
				continue;
			int ret = add_page(w, off);
			if (ret)
				return ret;
		}
	}
	return 0;
}

static int write_diff(struct writer *w, const uint64_t *dirty)
{
	uint64_t total = w->m->ram_size / GUEST_PAGE_SIZE;
	size_t words = guest_mem_bitmap_words(w->m);

	for (size_t i = 0; i < words; i++) {
		uint64_t v = dirty[i];
		/* Bounded: one pass per set bit, at most 64 per word. */
		while (v) {
			uint64_t page = i * 64 + (uint64_t)__builtin_ctzll(v);
			v &= v - 1;
			if (page >= total)
				break; /* padding bits past the last page */
			int ret = add_page(w, page * GUEST_PAGE_SIZE);
			if (ret)
				return ret;
		}
	}
	return 0;
}

int memfile_write(const struct guest_mem *m, const char *path, const uint64_t *dirty,
		  struct memfile_stats *st, char *err, size_t errlen)
{
	struct writer w = {.m = m,
			   .path = path,
			   .err = err,
			   .errlen = errlen,
			   .pagemap = -1,
			   .ext_start = NO_EXTENT};
	size_t len = strlen(path);
	char *tmp;
	int ret;

	if (!m->base) {
		snprintf(err, errlen, "memory file %s: guest RAM is not mapped", path);
		return -EINVAL;
	}
	tmp = malloc(len + 8);
	if (!tmp) {
		snprintf(err, errlen, "memory file %s: out of memory", path);
		return -ENOMEM;
	}
	memcpy(tmp, path, len);
	memcpy(tmp + len, ".XXXXXX", 8);
	w.fd = mkostemp(tmp, O_CLOEXEC);
	if (w.fd < 0) {
		ret = fail(&w, -errno, "create");
		free(tmp);
		return ret;
	}
	/* The full size first: every page not written below is a hole. */
	if (ftruncate(w.fd, (off_t)m->ram_size) < 0) {
		ret = fail(&w, -errno, "set size");
		goto out;
	}
	if (!dirty)
		w.pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	ret = 0;
	if (dirty)
		ret = write_diff(&w, dirty);
	else
		for (unsigned i = 0; i < m->nr_regions && !ret; i++)
			ret = write_full_region(&w, &m->regions[i]);
	if (!ret && w.run_len)
		ret = flush_run(&w);
	if (ret)
		goto out;
	if (fsync(w.fd) < 0) {
		ret = fail(&w, -errno, "fsync");
		goto out;
	}
	if (rename(tmp, path) < 0) {
		ret = fail(&w, -errno, "rename");
		goto out;
	}
	if (st)
		*st = w.st;
out:
	if (w.pagemap >= 0)
		close(w.pagemap);
	close(w.fd);
	if (ret)
		unlink(tmp);
	free(tmp);
	return ret;
}
