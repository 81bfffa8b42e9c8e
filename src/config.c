/* config.c: defaults, freeing and host-independent validation of struct vm_config. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

/* Guest RAM is mapped in whole x86 pages. */
#define CONFIG_PAGE_SIZE 4096ULL

void vm_config_init(struct vm_config *c)
{
	memset(c, 0, sizeof(*c));
	c->cpus = VM_CONFIG_DEFAULT_CPUS;
	c->mem_size = VM_CONFIG_DEFAULT_MEM;
	c->serial_mode = SERIAL_STDIO;
	c->rng = true;
	c->console_mode = SERIAL_OFF;
}

void vm_config_free(struct vm_config *c)
{
	free(c->kernel_path);
	free(c->initrd_path);
	free(c->cmdline);
	free(c->serial_path);
	free(c->console_path);
	for (unsigned i = 0; i < c->nr_disks; i++)
		free(c->disks[i].path);
	for (unsigned i = 0; i < c->nr_nets; i++) {
		free(c->nets[i].tap);
		free(c->nets[i].hostfwd);
	}
	c->nr_disks = c->nr_nets = 0;
	c->console_path = NULL;
	c->kernel_path = NULL;
	c->initrd_path = NULL;
	c->cmdline = NULL;
	c->serial_path = NULL;
}

int vm_config_validate(const struct vm_config *c, char *err, size_t errlen)
{
	const char *msg = NULL;
	char buf[160];

	if (c->cpus < 1 || c->cpus > VM_CONFIG_MAX_CPUS) {
		snprintf(buf, sizeof(buf), "cpus: %u is out of range (1-%u)", c->cpus,
			 (unsigned)VM_CONFIG_MAX_CPUS);
		msg = buf;
	} else if (c->mem_size < VM_CONFIG_MIN_MEM) {
		snprintf(buf, sizeof(buf), "memory: %llu bytes is below the %llu MiB minimum",
			 (unsigned long long)c->mem_size,
			 (unsigned long long)(VM_CONFIG_MIN_MEM / MiB));
		msg = buf;
	} else if (c->mem_size % CONFIG_PAGE_SIZE) {
		snprintf(buf, sizeof(buf),
			 "memory: %llu bytes is not a multiple of the %llu-byte page size",
			 (unsigned long long)c->mem_size, CONFIG_PAGE_SIZE);
		msg = buf;
	} else if (c->kernel_path && !c->kernel_path[0]) {
		msg = "kernel: empty path";
	} else if (c->initrd_path && !c->initrd_path[0]) {
		msg = "initrd: empty path";
	} else if (c->serial_mode != SERIAL_STDIO && c->serial_mode != SERIAL_FILE &&
		   c->serial_mode != SERIAL_OFF) {
		snprintf(buf, sizeof(buf), "serial: unknown mode %d", (int)c->serial_mode);
		msg = buf;
	} else if (c->serial_mode == SERIAL_FILE && (!c->serial_path || !c->serial_path[0])) {
		msg = "serial: file mode needs a path";
	}
	if (!msg)
		return 0;
	if (err && errlen)
		snprintf(err, errlen, "%s", msg);
	return -EINVAL;
}
