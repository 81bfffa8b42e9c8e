/* restore.h: building a VM from a snapshot (docs/snapshot.md, "Restore"). */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "snapshot/format.h"
#include "util/compiler.h"

struct vm;

/* A snapshot opened for a restore: the checked state file, the configuration it describes
 * (which the caller may override: network TAPs, drive paths) and the memory file. */
struct vm_restore {
	struct snap_file file;
	struct vm_config cfg;
	int mem_fd; /* File backend: the memory file, read-only (mapped MAP_PRIVATE) */
	char mem_name[256];
	const char *uffd_sock; /* Uffd backend: the page-fault handler's socket, else NULL */
	bool clock_realtime; /* step kvmclock by the realtime that passed (KVM_CLOCK_REALTIME) */
	bool track_dirty;    /* dirty page tracking from the start, for Diff snapshots */
};

/* Read and check the state file and its configuration, and open the memory file (mem_path
 * NULL: none, for a backend that brings its own). 0, or -errno with one line in err; call
 * vm_restore_free either way. */
int vm_restore_open(struct vm_restore *r, const char *state_path, const char *mem_path,
		    char *err, size_t errlen) __must_check;
void vm_restore_free(struct vm_restore *r);

/* vm_create's last step for a restore (vm.c): every saved state onto the VM it built, before
 * any vCPU runs. 0, or -errno with one line in err naming the section. */
int vm_restore_apply(struct vm *vm, const struct vm_restore *r, char *err,
		     size_t errlen) __must_check;
