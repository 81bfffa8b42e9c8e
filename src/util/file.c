/* file.c: opening user-named paths without letting a FIFO or device stall the caller. */
#include "util/file.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

static unsigned kind_of(mode_t m)
{
	if (S_ISREG(m))
		return FILE_KIND_REG;
	if (S_ISBLK(m))
		return FILE_KIND_BLK;
	if (S_ISCHR(m))
		return FILE_KIND_CHR;
	if (S_ISFIFO(m))
		return FILE_KIND_FIFO;
	return 0; /* directory, socket, ... */
}

/* Check fd's type against kinds, then give it the blocking mode flags asked for. Closes fd
 * on error. */
static int finish_open(int fd, int flags, unsigned kinds)
{
	struct stat st;
	int ret;

	if (fstat(fd, &st) < 0) {
		ret = -errno;
		goto fail;
	}
	if (!(kind_of(st.st_mode) & kinds)) {
		ret = -EMEDIUMTYPE;
		goto fail;
	}
	if (!(flags & O_NONBLOCK)) {
		int fl = fcntl(fd, F_GETFL);

		if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
			ret = -errno;
			goto fail;
		}
	}
	return fd;

fail:
	close(fd);
	return ret;
}

int file_open(const char *path, int flags, mode_t mode, unsigned kinds)
{
	int fd = open(path, flags | O_NONBLOCK | O_CLOEXEC, mode);

	if (fd < 0)
		return -errno;
	return finish_open(fd, flags, kinds);
}

const char *file_kinds_name(unsigned kinds)
{
	switch (kinds) {
	case FILE_KIND_REG:
		return "a regular file";
	case FILE_KIND_REG | FILE_KIND_BLK:
		return "a regular file or block device";
	case FILE_KIND_REG | FILE_KIND_CHR | FILE_KIND_FIFO:
		return "a regular file, FIFO or character device";
	default:
		return "a file of an accepted type";
	}
}

int file_open_output(const char *path)
{
	const unsigned kinds = FILE_KIND_REG | FILE_KIND_CHR | FILE_KIND_FIFO;
	int fd = file_open(path, O_WRONLY | O_CREAT | O_APPEND | O_NONBLOCK, 0644, kinds);

	/* O_WRONLY | O_NONBLOCK on a FIFO with no reader fails with ENXIO (fifo(7)); read-write
	 * never waits for a peer. The path must still be a FIFO: checked again after the open. */
	if (fd == -ENXIO)
		fd = file_open(path, O_RDWR | O_NONBLOCK, 0, FILE_KIND_FIFO);
	return fd;
}
