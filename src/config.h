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

/* virtio-console uses the same three modes. */
#define VM_CONFIG_MAX_DISKS 16
#define VM_CONFIG_MAX_NETS 8
#define VM_CONFIG_ID_MAX 64     /* bytes including NUL */
#define VM_CONFIG_SERIAL_MAX 20 /* virtio-blk GET_ID length */

enum disk_engine {
	DISK_ENGINE_DEFAULT = 0, /* io_uring when available, else sync */
	DISK_ENGINE_URING,
	DISK_ENGINE_SYNC,
};

enum disk_cache {
	DISK_CACHE_WRITEBACK = 0, /* FLUSH is fdatasync; the guest sees a volatile cache */
	DISK_CACHE_UNSAFE,        /* FLUSH returns at once: for throw-away guests only */
};

struct disk_config {
	char id[VM_CONFIG_ID_MAX]; /* unique; generated ("disk0"...) when not given */
	char *path;
	char serial[VM_CONFIG_SERIAL_MAX + 1]; /* GET_ID string; empty = id */
	bool readonly;
	bool is_root; /* API's is_root_device: informational */
	enum disk_engine engine;
	enum disk_cache cache;
};

struct net_config {
	char id[VM_CONFIG_ID_MAX];
	char *tap;      /* TAP device name, or NULL for user-mode networking */
	bool user;      /* user-mode networking: a passt (docs/guest.md) */
	char *passt;    /* user mode: the Unix socket of a passt the user started; NULL: kiln
			 * starts one */
	uint8_t mac[6];
	bool mac_set;   /* else generated from the id (vm_config_default_mac) */
	unsigned mtu;   /* 0 = default 1500 */
	char *hostfwd;  /* user mode: "tcp:127.0.0.1:2222-:22,..." as given */
	bool host_loopback; /* user mode: the guest reaches the host's 127.0.0.1 at 10.0.2.2
			     * (off by default: untrusted guests must not see local services) */
};

#define VM_CONFIG_MAX_HOSTFWD 16  /* port forwards per user-mode interface */
#define VM_CONFIG_DEFAULT_MTU 1500
#define VM_CONFIG_MIN_MTU 68
#define VM_CONFIG_MAX_MTU 65535   /* TAP */
#define VM_CONFIG_MAX_USER_MTU 65520 /* passt's limit (its DHCP MTU option) */
#define VM_CONFIG_IFNAME_MAX 15   /* Linux IFNAMSIZ - 1 */

/* One host -> guest port forward of user-mode networking. Addresses in network byte order. */
struct net_hostfwd {
	bool udp;
	uint32_t host_addr;  /* 0: every host address */
	uint16_t host_port;  /* 1-65535 */
	uint32_t guest_addr; /* 0 or 10.0.2.15: the guest's DHCP address */
	uint16_t guest_port; /* 1-65535 */
};

struct vm_config {
	char *kernel_path; /* NULL: the default guest */
	char *initrd_path; /* NULL: none (or the default guest's) */
	char *cmdline;     /* NULL: VM_CONFIG_DEFAULT_CMDLINE */
	unsigned cpus;
	uint64_t mem_size; /* bytes */
	enum serial_mode serial_mode;
	char *serial_path; /* SERIAL_FILE only */

	struct disk_config disks[VM_CONFIG_MAX_DISKS];
	unsigned nr_disks;
	struct net_config nets[VM_CONFIG_MAX_NETS];
	unsigned nr_nets;
	bool rng;                       /* virtio-rng, default on */
	enum serial_mode console_mode;  /* virtio-console: default SERIAL_OFF */
	char *console_path;             /* SERIAL_FILE only */
	bool track_dirty_pages;         /* dirty page tracking from the boot (Diff snapshots) */
};

/* Fill defaults. */
void vm_config_init(struct vm_config *c);
/* Free the strings a config owns. */
void vm_config_free(struct vm_config *c);
/* Check ranges that do not need the host (cpus, memory). On error writes a one-line message
 * naming the field into err and returns -EINVAL. */
int vm_config_validate(const struct vm_config *c, char *err, size_t errlen) __must_check;

/* Network interface fields, shared by the CLI, the API and the devices. */
/* Parse "xx:xx:xx:xx:xx:xx" (hex digits of either case). Returns 0 or -EINVAL. */
int vm_config_parse_mac(const char *s, uint8_t mac[6]) __must_check;
/* Format a MAC as "xx:xx:xx:xx:xx:xx" (lower case) into buf[18]. */
void vm_config_format_mac(const uint8_t mac[6], char buf[18]);
/* The MAC of an interface given none: a hash of its id, locally administered unicast
 * (first byte 0x?2, 0x?6, 0x?a or 0x?e), the same for the same id on every run. */
void vm_config_default_mac(const char *id, uint8_t mac[6]);
/* Is s a usable Linux interface name (1-15 bytes, no '/', ':', spaces or control bytes)? */
bool vm_config_ifname_valid(const char *s);
/* Parse a user-mode forward list "tcp:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT[,...]"
 * (udp: for UDP; addresses dotted IPv4; GUESTADDR empty or the guest's 10.0.2.15, where passt
 * delivers) into fwd[0..*n), at most VM_CONFIG_MAX_HOSTFWD.
 * Returns 0 or -EINVAL with a one-line message (naming the bad forward) in err. */
int vm_config_parse_hostfwd(const char *s, struct net_hostfwd *fwd, unsigned *n, char *err,
			    size_t errlen) __must_check;
