/* rebase.c: merge a Diff memory file onto its Full base (Firecracker's rebase-snap), as a
 * function and as `kiln snapshot-rebase`. */
#include "snapshot/memfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define COPY_BUF (1U << 20)

/* pread/pwrite copy of [off, off + len), for file systems without copy_file_range between
 * these two files. */
static int copy_plain(int in, int out, uint64_t off, uint64_t len)
{
	char *buf = malloc(COPY_BUF);
	int ret = 0;

	if (!buf)
		return -ENOMEM;
	/* Bounded: every pass moves at least one byte or fails. */
	while (len) {
		ssize_t n = pread(in, buf, MIN(len, COPY_BUF), (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			ret = n < 0 ? -errno : -EIO; /* 0: the diff shrank under us */
			break;
		}
		for (ssize_t done = 0; done < n;) {
			ssize_t k = pwrite(out, buf + done, (size_t)(n - done), (off_t)off + done);
			if (k < 0 && errno == EINTR)
				continue;
			if (k <= 0) {
				ret = k < 0 ? -errno : -EIO;
				goto out;
			}
			done += k;
		}
		off += (uint64_t)n;
		len -= (uint64_t)n;
	}
out:
	free(buf);
	return ret;
}

static int copy_extent(int in, int out, uint64_t off, uint64_t len)
{
	loff_t src = (loff_t)off, dst = (loff_t)off;

	while (len) {
		ssize_t n = copy_file_range(in, &src, out, &dst, len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 &&
		    (errno == EXDEV || errno == ENOSYS || errno == EINVAL || errno == EOPNOTSUPP))
			return copy_plain(in, out, (uint64_t)src, len);
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO; /* the diff shrank under us */
		len -= (uint64_t)n;
	}
	return 0;
}

int memfile_rebase(const char *base_path, const char *diff_path, uint64_t *bytes, char *err,
		   size_t errlen)
{
	struct stat bs, ds;
	uint64_t copied = 0;
	int base = -1, diff = -1, ret = 0;
	const char *bad = diff_path;

	diff = open(diff_path, O_RDONLY | O_CLOEXEC);
	if (diff < 0 || fstat(diff, &ds) < 0)
		goto sys_err;
	bad = base_path;
	base = open(base_path, O_RDWR | O_CLOEXEC);
	if (base < 0 || fstat(base, &bs) < 0)
		goto sys_err;
	if (!S_ISREG(ds.st_mode) || !S_ISREG(bs.st_mode)) {
		snprintf(err, errlen, "%s file %s: not a regular file",
			 S_ISREG(ds.st_mode) ? "base" : "diff",
			 S_ISREG(ds.st_mode) ? base_path : diff_path);
		ret = -EINVAL;
		goto out;
	}
	if (bs.st_dev == ds.st_dev && bs.st_ino == ds.st_ino) {
		snprintf(err, errlen, "diff file %s: is the base file itself", diff_path);
		ret = -EINVAL;
		goto out;
	}
	if (ds.st_size != bs.st_size) {
		snprintf(err, errlen, "diff file %s: %lld bytes, base file %s is %lld bytes",
			 diff_path, (long long)ds.st_size, base_path, (long long)bs.st_size);
		ret = -EINVAL;
		goto out;
	}

	/* Bounded: each pass starts past the extent before it, so at most one pass per data
	 * extent, and off only grows up to the file size. */
	for (uint64_t off = 0; off < (uint64_t)ds.st_size;) {
		off_t data = lseek(diff, (off_t)off, SEEK_DATA);
		if (data < 0 && errno == ENXIO)
			break; /* no data past off */
		if (data < 0) {
			bad = diff_path;
			goto sys_err;
		}
		off_t hole = lseek(diff, data, SEEK_HOLE);
		if (hole < 0) {
			bad = diff_path;
			goto sys_err;
		}
		if (hole <= data || hole > ds.st_size) {
			snprintf(err, errlen, "diff file %s: extent at %lld ends at %lld",
				 diff_path, (long long)data, (long long)hole);
			ret = -EIO;
			goto out;
		}
		ret = copy_extent(diff, base, (uint64_t)data, (uint64_t)(hole - data));
		if (ret) {
			snprintf(err, errlen, "copy %s -> %s at offset %lld: %s", diff_path,
				 base_path, (long long)data, strerror(-ret));
			goto out;
		}
		copied += (uint64_t)(hole - data);
		off = (uint64_t)hole;
	}
	if (fsync(base) < 0) {
		bad = base_path;
		goto sys_err;
	}
	if (bytes)
		*bytes = copied;
	goto out;
sys_err:
	ret = -errno;
	snprintf(err, errlen, "%s file %s: %s", bad == diff_path ? "diff" : "base", bad,
		 strerror(errno));
out:
	if (base >= 0)
		close(base);
	if (diff >= 0)
		close(diff);
	return ret;
}

static void rebase_usage(FILE *f)
{
	fputs("usage: kiln snapshot-rebase --base-file BASE --diff-file DIFF\n"
	      "\n"
	      "Merge a Diff snapshot's memory file onto the memory file of the snapshot it was\n"
	      "taken after (a Full one, or one already rebased): every page the Diff holds is\n"
	      "copied onto BASE at the same offset. BASE then loads as the Diff snapshot's\n"
	      "memory. Both files must have the same size. Firecracker's rebase-snap.\n"
	      "\n"
	      "  --base-file BASE   memory file to update in place\n"
	      "  --diff-file DIFF   Diff memory file (read only)\n"
	      "  -h, --help         this text\n",
	      f);
}

/* "--name VALUE" or "--name=VALUE" at argv[*i]: the value, advancing *i; NULL if argv[*i] is
 * not that option. *missing is set when the value is absent. */
static const char *opt_value(int argc, char **argv, int *i, const char *name, bool *missing)
{
	size_t n = strlen(name);
	if (strncmp(argv[*i], name, n) != 0)
		return NULL;
	if (argv[*i][n] == '=')
		return argv[*i] + n + 1;
	if (argv[*i][n] != '\0')
		return NULL;
	if (*i + 1 >= argc) {
		*missing = true;
		return NULL;
	}
	return argv[++*i];
}

int memfile_rebase_main(int argc, char **argv)
{
	const char *base = NULL, *diff = NULL, *v;
	bool missing = false;

	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			rebase_usage(stdout);
			return 0;
		}
		if ((v = opt_value(argc, argv, &i, "--base-file", &missing)))
			base = v;
		else if ((v = opt_value(argc, argv, &i, "--diff-file", &missing)))
			diff = v;
		else {
			fprintf(stderr, "kiln snapshot-rebase: %s '%s'\n",
				missing ? "no value for" : "unknown argument", argv[i]);
			rebase_usage(stderr);
			return 1;
		}
	}
	if (!base || !diff) {
		fprintf(stderr, "kiln snapshot-rebase: --base-file and --diff-file are required\n");
		rebase_usage(stderr);
		return 1;
	}
	char err[512];
	if (memfile_rebase(base, diff, NULL, err, sizeof(err))) {
		fprintf(stderr, "kiln snapshot-rebase: %s\n", err);
		return 1;
	}
	return 0;
}
