/* format_write.c: building a snapshot state file (snapshot/format.h) and writing it in place
 * atomically. */
#include "snapshot/format.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kiln-build.h"
#include "snapshot/crc64.h"

static_assert(sizeof(KILN_VERSION) <= SNAP_VERSION_LEN, "kiln's version fits the header");

struct snap_file_writer_section {
	uint32_t id, instance;
	uint8_t *data;
	size_t len;
};

void snap_file_writer_init(struct snap_file_writer *w)
{
	memset(w, 0, sizeof(*w));
}

void snap_file_writer_free(struct snap_file_writer *w)
{
	for (uint32_t i = 0; i < w->nr; i++)
		free(w->secs[i].data);
	free(w->secs);
	snap_file_writer_init(w);
}

static __printf(3, 4) int fail(struct snap_file_writer *w, int error, const char *fmt, ...)
{
	va_list ap;

	if (w->error)
		return error;
	w->error = error;
	va_start(ap, fmt);
	vsnprintf(w->why, sizeof(w->why), fmt, ap);
	va_end(ap);
	return error;
}

int snap_file_add(struct snap_file_writer *w, uint32_t id, uint32_t instance,
		  struct snap_buf *sec)
{
	char name[SNAP_SECTION_NAME_LEN];
	uint8_t *data = sec->data;
	size_t len = sec->len;
	bool oom = snap_buf_failed(sec) != 0;
	int ret;

	/* The bytes are ours from here, whatever happens. */
	snap_buf_init(sec);
	snap_section_name(id, instance, name, sizeof(name));
	if (w->error) {
		ret = w->error;
		goto drop;
	}
	if (oom) {
		ret = fail(w, -ENOMEM, "section '%s': out of memory while saving it", name);
		goto drop;
	}
	if (id < SNAP_SEC_FIRST || id > SNAP_SEC_LAST) {
		ret = fail(w, -EINVAL, "%s: not a section this format has", name);
		goto drop;
	}
	if (instance != 0 && id != SNAP_SEC_VCPU && id != SNAP_SEC_VIRTIO) {
		ret = fail(w, -EINVAL, "section '%s': instance %u of a section that comes once",
			   name, instance);
		goto drop;
	}
	for (uint32_t i = 0; i < w->nr; i++) {
		if (w->secs[i].id == id && w->secs[i].instance == instance) {
			ret = fail(w, -EEXIST, "section '%s': added twice", name);
			goto drop;
		}
	}
	/* Both limits of the reader, so that a file written is a file that can be read. */
	uint64_t fixed = SNAP_HEADER_SIZE + (uint64_t)(w->nr + 1) * SNAP_TABLE_ENTRY_SIZE +
			 SNAP_TRAILER_SIZE;
	if (w->nr >= SNAP_MAX_SECTIONS || len > SNAP_FILE_MAX - fixed - w->payload) {
		ret = fail(w, -EFBIG, "section '%s': the file would pass %u sections or %llu bytes",
			   name, SNAP_MAX_SECTIONS, SNAP_FILE_MAX);
		goto drop;
	}
	if (w->nr == w->cap) {
		uint32_t cap = w->cap ? w->cap * 2 : 16;
		struct snap_file_writer_section *s = realloc(w->secs, cap * sizeof(*s));

		if (!s) {
			ret = fail(w, -ENOMEM, "section '%s': out of memory for the table", name);
			goto drop;
		}
		w->secs = s;
		w->cap = cap;
	}
	w->secs[w->nr++] = (struct snap_file_writer_section){
	    .id = id, .instance = instance, .data = data, .len = len};
	w->payload += len;
	return 0;

drop:
	free(data);
	return ret;
}

/* Where the bytes go: a buffer, or a file descriptor. Either way the CRC follows them. */
struct sink {
	struct snap_buf *buf;
	int fd;
	uint64_t crc;
};

static int emit(struct sink *s, const void *p, size_t n, char *err, size_t errlen)
{
	const uint8_t *b = p;

	s->crc = crc64_xz(s->crc, p, n);
	if (s->buf) {
		snap_put_bytes(s->buf, p, n);
		if (snap_buf_failed(s->buf)) {
			snprintf(err, errlen, "out of memory");
			return -ENOMEM;
		}
		return 0;
	}
	while (n) { /* bounded: each pass writes at least one byte or leaves */
		ssize_t r = write(s->fd, b, n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			int e = r < 0 ? errno : EIO;

			snprintf(err, errlen, "write: %s", strerror(e));
			return -e;
		}
		b += r;
		n -= (size_t)r;
	}
	return 0;
}

/* Header, table, sections, checksum, into s. */
static int emit_file(const struct snap_file_writer *w, struct sink *s, char *err, size_t errlen)
{
	char version[SNAP_VERSION_LEN] = {0};
	struct snap_buf head;
	uint64_t at = SNAP_HEADER_SIZE + (uint64_t)w->nr * SNAP_TABLE_ENTRY_SIZE;
	int ret;

	if (w->error) {
		snprintf(err, errlen, "%s", w->why);
		return w->error;
	}
	memcpy(version, KILN_VERSION, sizeof(KILN_VERSION));
	snap_buf_init(&head);
	snap_put_bytes(&head, SNAP_MAGIC, sizeof(SNAP_MAGIC) - 1);
	snap_put_u32(&head, SNAP_FORMAT_VERSION);
	snap_put_u32(&head, SNAP_HEADER_SIZE);
	snap_put_bytes(&head, version, sizeof(version));
	snap_put_u32(&head, w->nr);
	snap_put_u32(&head, 0); /* flags */
	for (uint32_t i = 0; i < w->nr; i++) {
		snap_put_u32(&head, w->secs[i].id);
		snap_put_u32(&head, w->secs[i].instance);
		snap_put_u64(&head, at);
		snap_put_u64(&head, w->secs[i].len);
		at += w->secs[i].len;
	}
	if (snap_buf_failed(&head)) {
		snprintf(err, errlen, "out of memory for the section table");
		ret = -ENOMEM;
		goto out;
	}
	ret = emit(s, head.data, head.len, err, errlen);
	for (uint32_t i = 0; i < w->nr && !ret; i++)
		ret = emit(s, w->secs[i].data, w->secs[i].len, err, errlen);
	if (!ret) {
		uint8_t trailer[SNAP_TRAILER_SIZE];
		uint64_t crc = s->crc;

		for (unsigned i = 0; i < SNAP_TRAILER_SIZE; i++)
			trailer[i] = (uint8_t)(crc >> (8 * i));
		ret = emit(s, trailer, sizeof(trailer), err, errlen);
	}
out:
	snap_buf_free(&head);
	return ret;
}

int snap_file_serialize(const struct snap_file_writer *w, struct snap_buf *out, char *err,
			size_t errlen)
{
	struct sink s = {.buf = out, .fd = -1};
	int ret;

	snap_buf_init(out);
	ret = emit_file(w, &s, err, errlen);
	if (ret)
		snap_buf_free(out);
	return ret;
}

/* fsync the directory path is in, so that the rename into it is on disk. */
static int sync_dir(const char *path)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	int fd, ret = 0;

	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == path)
		snprintf(dir, sizeof(dir), "/");
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

int snap_file_write(const struct snap_file_writer *w, const char *path, char *err,
		    size_t errlen)
{
	char tmp[PATH_MAX], why[256];
	struct sink s = {.fd = -1};
	int ret;

	if (w->error) {
		snprintf(err, errlen, "snapshot file '%s': %s", path, w->why);
		return w->error;
	}
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp-XXXXXX", path) >= sizeof(tmp)) {
		snprintf(err, errlen, "snapshot file '%s': the path is too long", path);
		return -ENAMETOOLONG;
	}
	s.fd = mkostemp(tmp, O_CLOEXEC);
	if (s.fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "snapshot file '%s': create %s: %s", path, tmp, strerror(-ret));
		return ret;
	}
	ret = emit_file(w, &s, why, sizeof(why));
	if (ret)
		goto fail;
	if (fsync(s.fd) < 0) {
		ret = -errno;
		snprintf(why, sizeof(why), "fsync: %s", strerror(-ret));
		goto fail;
	}
	ret = close(s.fd) < 0 ? -errno : 0;
	s.fd = -1;
	if (ret) {
		snprintf(why, sizeof(why), "close: %s", strerror(-ret));
		goto fail;
	}
	if (rename(tmp, path) < 0) {
		ret = -errno;
		snprintf(why, sizeof(why), "rename over it: %s", strerror(-ret));
		goto fail;
	}
	/* path now holds the whole new file; only its durability is in question here. */
	ret = sync_dir(path);
	if (ret) {
		snprintf(err, errlen, "snapshot file '%s': fsync of its directory: %s", path,
			 strerror(-ret));
		return ret;
	}
	return 0;

fail:
	if (s.fd >= 0)
		close(s.fd);
	unlink(tmp);
	snprintf(err, errlen, "snapshot file '%s': %s", path, why);
	return ret;
}
