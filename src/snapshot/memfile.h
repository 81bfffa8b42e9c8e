/* memfile.h: a snapshot's memory file: guest RAM written Full (sparse) or Diff (dirty pages
 * only), and the rebase that overlays a Diff onto its Full base.
 *
 * Layout: RAM offsets (vmm/memory.h): region 0's bytes, then region 1's, ...; the file is
 * exactly ram_size bytes. Pages not written are holes and read as zero. A Diff file holds the
 * pages dirtied since the previous snapshot at their own offsets, zero pages included as
 * data, so "base + diff" is a plain overlay of the Diff's data extents onto the base.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "util/compiler.h"
#include "vmm/memory.h"

struct memfile_stats {
	uint64_t pages_written; /* pages stored as data */
	uint64_t pages_scanned; /* pages whose contents were read (zero check) */
	uint64_t writes;	/* pwrite calls */
};

/*
 * Write m's RAM to path, through a temporary file in the same directory that is fsync'd and
 * renamed over path, so path is either the old file or the whole new one.
 * dirty == NULL: Full. Pages never touched (not present and not swapped, per
 *   /proc/self/pagemap; for file-backed RAM, in a hole of the file too) and pages of zeros
 *   are left as holes.
 * dirty != NULL: Diff. Exactly the pages set in dirty (guest_mem_bitmap_words(m) words, bit n
 *   = RAM page n), zero or not.
 * Call with the vCPUs stopped and device I/O drained. st may be NULL.
 * Returns 0, or -errno with one line in err naming the file and the problem.
 */
int memfile_write(const struct guest_mem *m, const char *path, const uint64_t *dirty,
		  struct memfile_stats *st, char *err, size_t errlen) __must_check;

/*
 * Overlay diff_path's data extents (SEEK_DATA/SEEK_HOLE) onto base_path at the same offsets,
 * then fsync the base. Both must be regular files of the same size. On failure the base may
 * hold part of the diff (it is the caller's copy to keep or drop). Returns 0, or -errno with
 * one line in err. *bytes (if not NULL) gets the number of bytes copied.
 */
int memfile_rebase(const char *base_path, const char *diff_path, uint64_t *bytes, char *err,
		   size_t errlen) __must_check;

/* `kiln snapshot-rebase --base-file B --diff-file D`: argv after the subcommand. Returns the
 * process exit status. */
int memfile_rebase_main(int argc, char **argv);
