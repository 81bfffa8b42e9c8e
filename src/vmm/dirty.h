/* dirty.h: which guest pages changed since the last snapshot: KVM's dirty log (guest writes)
 * folded together with the VMM's own bitmap (device writes, memory.h) for a Diff snapshot. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/compiler.h"
#include "vmm/memory.h"

/*
 * Register every RAM region of m as KVM memory slot i (i = region index), with
 * KVM_MEM_LOG_DIRTY_PAGES if log_dirty. Calling it again with the same m only changes the
 * flag: KVM then starts (with an empty log) or stops logging. Returns 0, or -errno with one
 * line in err naming the slot.
 */
int dirty_set_slots(int vm_fd, const struct guest_mem *m, bool log_dirty, char *err,
		    size_t errlen) __must_check;

/*
 * One bit per page of RAM, in RAM-offset order (memory.h), so bit n is the page at offset
 * n * 4096 of the memory file. KVM's log and the VMM's bitmap are each cleared as they are
 * read; what they held accumulates in pages until dirty_log_clear, so a snapshot that fails
 * to be written loses nothing: the next Diff still includes those pages.
 */
struct dirty_log {
	int vm_fd;
	struct guest_mem *mem;
	uint64_t *pages;   /* guest_mem_bitmap_words(mem) words */
	uint64_t *scratch; /* KVM_GET_DIRTY_LOG buffer, sized for the largest slot */
	bool on;
};

/* Start tracking: the slots get KVM_MEM_LOG_DIRTY_PAGES and m's VMM bitmap is allocated.
 * Every page written from now on is reported. Returns 0 or -errno with err set. */
int dirty_log_start(struct dirty_log *d, int vm_fd, struct guest_mem *m, char *err,
		    size_t errlen) __must_check;

/*
 * Also count as dirty every page of anonymous or memfd RAM that was ever touched (present or
 * swapped, per /proc/self/pagemap; for memfd RAM, any page the memfd holds). For tracking
 * started at boot: kiln's own boot writes (kernel, initrd, boot_params, ACPI) happen before
 * the log starts, and a first Diff with no snapshot before it must hold every written page to
 * stand on its own. Not for file-backed (restored) RAM: there the base is the loaded snapshot.
 * Returns 0, or -errno with err set.
 */
int dirty_log_mark_touched(struct dirty_log *d, char *err, size_t errlen) __must_check;

/* Fold KVM's log (KVM_GET_DIRTY_LOG per slot, which also write-protects the pages again) and
 * the VMM's bitmap into d->pages. Call with the vCPUs stopped and device I/O drained for a
 * consistent picture. Returns 0 or -errno with err set (d->pages keeps what it had). */
int dirty_log_sync(struct dirty_log *d, char *err, size_t errlen) __must_check;

/* Forget d->pages: call once a snapshot (Full or Diff) is safely written. */
void dirty_log_clear(struct dirty_log *d);

/* Number of pages set in d->pages. */
uint64_t dirty_log_count(const struct dirty_log *d);

/* Stop tracking (slots without the flag, VMM bitmap freed) and free d. Safe on a zeroed d. */
void dirty_log_stop(struct dirty_log *d);
/* Free d and leave KVM's slots as they are: for a VM being destroyed, whose slots go with its
 * fd and whose event loop's seccomp list has no KVM_SET_USER_MEMORY_REGION. The VMM bitmap is
 * guest memory's, freed with it. Safe on a zeroed d. */
void dirty_log_free(struct dirty_log *d);
