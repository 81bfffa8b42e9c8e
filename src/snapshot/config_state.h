/* config_state.h: the snapshot's CONFIG and MEMORY sections: what a restore needs to rebuild
 * the VM exactly as it was built at boot, before the VM's, vCPUs' and devices' states are
 * loaded over it.
 *
 * CONFIG (SNAP_SEC_CONFIG), little-endian, strings as u32 length + bytes (no NUL):
 *
 *   u32 cpus, u64 mem_size, bool rng
 *   bool serial_out        the 16550A's output goes somewhere (else SERIAL_OFF)
 *   bool console           a virtio-console exists (console_mode != SERIAL_OFF)
 *   u32 nr_disks           <= VM_CONFIG_MAX_DISKS, then per disk, in device order:
 *       str id, str path, str serial (empty: the id), bool readonly, bool is_root,
 *       u8 engine (enum disk_engine), u8 cache (enum disk_cache)
 *   u32 nr_nets            <= VM_CONFIG_MAX_NETS, then per interface, in device order:
 *       str id, bool user, str tap (empty for user), str passt (empty: kiln starts one),
 *       u8 mac[6] (the effective MAC: the given one or vm_config_default_mac(id)),
 *       u32 mtu (as configured, 0 = default: it decides a feature bit), str hostfwd (empty:
 *       none), bool host_loopback
 *
 * Not recorded, on purpose:
 *   - serial and console output paths (SERIAL_FILE): host state, like Firecracker, which
 *     re-attaches the serial to the new process's output. A port that had output decodes as
 *     SERIAL_STDIO; the restoring process may point it elsewhere (config_state_set_output).
 *   - kernel, initrd and command line: restore loads no kernel, and the command line the
 *     guest booted with is in its RAM. They decode as NULL and mean nothing for a restored VM.
 *
 * MEMORY (SNAP_SEC_MEMORY): u64 ram_size, u32 nr_regions (<= GUEST_MEM_MAX_REGIONS), then per
 * region u64 gpa, u64 size. A restore lays RAM out from the configuration's mem_size with
 * guest_mem_layout; the saved layout must be that one exactly, so a snapshot taken by a kiln
 * with another memory map is refused.
 *
 * Restore order: config_state_decode, the overrides, vm_config_validate (overrides may swap
 * TAP names between interfaces, so only the end result is checked), build the VM,
 * memory_layout_check against its guest_mem, then the other sections.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "snapshot/state.h"
#include "util/compiler.h"
#include "vmm/memory.h"

/* The longest path or other free-form string a section holds (PATH_MAX - 1). */
#define CONFIG_STATE_STR_MAX 4095u

/* Write c, a configuration a VM was built from (vm_config_validate accepted it), into b.
 * Allocation failures are sticky in b (snap_buf_failed). */
void config_state_encode(const struct vm_config *c, struct snap_buf *b);

/* Read a whole CONFIG section from c into out (initialised here): every string bounded and
 * checked, counts and enums in range, ids unique, then vm_config_validate; bytes left over
 * are an error too. 0 with out filled (the caller vm_config_free()s it), or -EINVAL with one
 * line in err ("section 'config': disks[1].path: 5000 bytes (at most 4095)") and out holding
 * nothing, or -ENOMEM (the same, "out of memory"). The cursor is left failed on error. */
int config_state_decode(struct snap_cursor *c, struct vm_config *out, char *err,
			size_t errlen) __must_check;

/* network_overrides: interface iface_id, which must exist in c and be a TAP interface, gets
 * the TAP tap. 0, or -EINVAL/-ENOMEM with one line in err ("network_overrides: no interface
 * 'eth9' in the snapshot"); c is unchanged on error. */
int config_state_override_net(struct vm_config *c, const char *iface_id, const char *tap, char *err,
			      size_t errlen) __must_check;

/* drive_overrides: drive drive_id, which must exist in c, is opened at path instead. 0, or
 * -EINVAL/-ENOMEM with one line in err; c is unchanged on error. */
int config_state_override_disk(struct vm_config *c, const char *drive_id, const char *path,
			       char *err, size_t errlen) __must_check;

/* Where the restored VM's serial port (console false) or virtio-console (console true) writes:
 * SERIAL_STDIO, SERIAL_FILE with path, or SERIAL_OFF. The set of devices cannot change: the
 * console cannot be given output when the snapshot's VM had none, nor be turned off when it
 * had one. 0, or -EINVAL/-ENOMEM with one line in err; c is unchanged on error. */
int config_state_set_output(struct vm_config *c, bool console, enum serial_mode mode,
			    const char *path, char *err, size_t errlen) __must_check;

/* Write m's layout (ram_size, regions' gpa and size) into b. */
void memory_layout_encode(const struct guest_mem *m, struct snap_buf *b);

/* Read a whole MEMORY section from c and compare it with expected, the layout this kiln made
 * for the configuration's mem_size. 0, or -EINVAL with one line in err ("section 'memory':
 * regions[1]: gpa 0x100000000 size 0x40000000, but this kiln lays out gpa ..."). */
int memory_layout_check(struct snap_cursor *c, const struct guest_mem *expected, char *err,
			size_t errlen) __must_check;
