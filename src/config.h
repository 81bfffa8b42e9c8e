/* config.h: struct vm_config, the single description of a VM built by the CLI, a config file or the API. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "util/compiler.h"

#define VM_CONFIG_DEFAULT_CPUS 1
#define VM_CONFIG_DEFAULT_MEM (512ULL * 1024 * 1024)
#define VM_CONFIG_MIN_MEM (64ULL * 1024 * 1024)
#define VM_CONFIG_MAX_CPUS 32 /* also bounded by KVM_CAP_MAX_VCPUS at start-up */

/* Kernel command line used when the user gives none. */
#define VM_CONFIG_DEFAULT_CMDLINE "console=ttyS0 reboot=k panic=-1 i8042.noaux i8042.nomux i8042.dumbkbd"

enum serial_mode {
	SERIAL_STDIO = 0,
	SERIAL_FILE,
	SERIAL_OFF,
};

struct vm_config {
	char *kernel_path; /* NULL: the default guest */
	char *initrd_path; /* NULL: none (or the default guest's) */
	char *cmdline;     /* NULL: VM_CONFIG_DEFAULT_CMDLINE */
	unsigned cpus;
	uint64_t mem_size; /* bytes */
	enum serial_mode serial_mode;
	char *serial_path; /* SERIAL_FILE only */
};

/* Fill defaults. */
void vm_config_init(struct vm_config *c);
/* Free the strings a config owns. */
void vm_config_free(struct vm_config *c);
/* Check ranges that do not need the host (cpus, memory). On error writes a one-line message
 * naming the field into err and returns -EINVAL. */
int vm_config_validate(const struct vm_config *c, char *err, size_t errlen) __must_check;
