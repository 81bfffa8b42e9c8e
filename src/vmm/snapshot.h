/* snapshot.h: snapshots of a running VM and restores from them (docs/snapshot.md). */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "util/compiler.h"

struct vm;

/* Write a Full (diff false) or Diff snapshot of a paused VM: the state file at state_path
 * and the memory file at mem_path, each replaced whole or not at all. On the event-loop
 * thread. The VM stays paused. 0, or -errno with one line in err (-EINVAL: not paused, or a
 * Diff without dirty tracking; -EBUSY: a device's I/O did not drain, or a vCPU parked inside
 * an I/O instruction: resume and try again). */
int vm_snapshot_create(struct vm *vm, bool diff, const char *state_path, const char *mem_path,
		       char *err, size_t errlen) __must_check;

/* Probe, once per VM, what this host's KVM saves and restores (vcpu_state.h). */
int vm_host_facts(struct vm *vm, char *err, size_t errlen) __must_check;
