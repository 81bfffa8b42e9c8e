/* config.c: defaults, freeing and host-independent validation of struct vm_config. */
#include <arpa/inet.h>
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
		free(c->nets[i].passt);
	}
	c->nr_disks = c->nr_nets = 0;
	c->console_path = NULL;
	c->kernel_path = NULL;
	c->initrd_path = NULL;
	c->cmdline = NULL;
	c->serial_path = NULL;
}

int vm_config_parse_mac(const char *s, uint8_t mac[6])
{
	static const char hex[] = "0123456789abcdefABCDEF";

	if (strlen(s) != 17)
		return -EINVAL;
	for (unsigned i = 0; i < 6; i++) {
		const char *p = s + 3 * i;
		char byte[3] = {p[0], p[1], 0};

		if (!p[0] || !strchr(hex, p[0]) || !p[1] || !strchr(hex, p[1]) ||
		    (i < 5 && p[2] != ':'))
			return -EINVAL;
		mac[i] = (uint8_t)strtoul(byte, NULL, 16);
	}
	return 0;
}

void vm_config_format_mac(const uint8_t mac[6], char buf[18])
{
	snprintf(buf, 18, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4],
		 mac[5]);
}

void vm_config_default_mac(const char *id, uint8_t mac[6])
{
	uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a 64 */

	for (const unsigned char *p = (const unsigned char *)id; *p; p++) {
		h ^= *p;
		h *= 0x100000001b3ULL;
	}
	for (unsigned i = 0; i < 6; i++)
		mac[i] = (uint8_t)(h >> (8 * i));
	mac[0] = (uint8_t)((mac[0] & 0xfc) | 0x02); /* unicast, locally administered */
}

bool vm_config_ifname_valid(const char *s)
{
	size_t len = strlen(s);

	if (len == 0 || len > VM_CONFIG_IFNAME_MAX || !strcmp(s, ".") || !strcmp(s, ".."))
		return false;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] <= ' ' || s[i] == '/' || s[i] == ':' || s[i] == 0x7f)
			return false;
	return true;
}

/* "[ADDR]:PORT" in the len bytes at s; an empty ADDR gives 0. */
static int parse_addr_port(const char *s, size_t len, uint32_t *addr, uint16_t *port)
{
	char buf[32], *colon, *endp;
	struct in_addr a;
	unsigned long p;

	if (len == 0 || len >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, len);
	buf[len] = '\0';
	colon = strrchr(buf, ':');
	if (!colon)
		return -EINVAL;
	*colon = '\0';
	*addr = 0;
	if (buf[0]) {
		if (inet_pton(AF_INET, buf, &a) != 1)
			return -EINVAL;
		*addr = a.s_addr;
	}
	if (colon[1] < '0' || colon[1] > '9')
		return -EINVAL;
	errno = 0;
	p = strtoul(colon + 1, &endp, 10);
	if (errno || *endp || p == 0 || p > 65535)
		return -EINVAL;
	*port = (uint16_t)p;
	return 0;
}

int vm_config_parse_hostfwd(const char *s, struct net_hostfwd *fwd, unsigned *n, char *err,
			    size_t errlen)
{
	*n = 0;
	while (*s) {
		const char *end = strchr(s, ','), *dash;
		size_t len = end ? (size_t)(end - s) : strlen(s);
		struct net_hostfwd f = {0};
		const char *p = s;

		if (*n == VM_CONFIG_MAX_HOSTFWD) {
			snprintf(err, errlen, "hostfwd: more than %u forwards", VM_CONFIG_MAX_HOSTFWD);
			return -EINVAL;
		}
		if (len >= 4 && !strncmp(p, "tcp:", 4)) {
			p += 4;
		} else if (len >= 4 && !strncmp(p, "udp:", 4)) {
			f.udp = true;
			p += 4;
		} else {
			snprintf(err, errlen,
				 "hostfwd: '%.*s' does not start with tcp: or udp: (expected "
				 "tcp:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT)",
				 (int)MIN(len, 64), s);
			return -EINVAL;
		}
		dash = memchr(p, '-', len - (size_t)(p - s));
		if (!dash ||
		    parse_addr_port(p, (size_t)(dash - p), &f.host_addr, &f.host_port) ||
		    parse_addr_port(dash + 1, len - (size_t)(dash + 1 - s), &f.guest_addr,
				    &f.guest_port)) {
			snprintf(err, errlen,
				 "hostfwd: '%.*s' is not [tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:"
				 "GUESTPORT (IPv4 addresses, ports 1-65535)",
				 (int)MIN(len, 64), s);
			return -EINVAL;
		}
		/* passt delivers to the guest's own address, and forwards a host port once. */
		if (f.guest_addr && f.guest_addr != htonl(0x0a00020f)) {
			snprintf(err, errlen,
				 "hostfwd: '%.*s': the guest address must be empty or 10.0.2.15 "
				 "(the guest's own)",
				 (int)MIN(len, 64), s);
			return -EINVAL;
		}
		for (unsigned i = 0; i < *n; i++) {
			if (fwd[i].udp == f.udp && fwd[i].host_port == f.host_port) {
				snprintf(err, errlen, "hostfwd: host port %s:%u is forwarded twice",
					 f.udp ? "udp" : "tcp", f.host_port);
				return -EINVAL;
			}
		}
		fwd[(*n)++] = f;
		if (!end)
			break;
		s = end + 1;
		if (!*s) {
			snprintf(err, errlen, "hostfwd: trailing comma");
			return -EINVAL;
		}
	}
	if (*n == 0) {
		snprintf(err, errlen, "hostfwd: empty list");
		return -EINVAL;
	}
	return 0;
}

/* The network interfaces: ids, one backend each, names, MTU, MAC, forwards. */
static int validate_nets(const struct vm_config *c, char *buf, size_t len)
{
	struct net_hostfwd fwd[VM_CONFIG_MAX_HOSTFWD];
	char why[160];
	unsigned n;

	for (unsigned i = 0; i < c->nr_nets; i++) {
		const struct net_config *nc = &c->nets[i];
		unsigned max_mtu = nc->user ? VM_CONFIG_MAX_USER_MTU : VM_CONFIG_MAX_MTU;

		if (!nc->id[0]) {
			snprintf(buf, len, "net %u: missing id", i);
			return -EINVAL;
		}
		for (unsigned j = 0; j < i; j++) {
			if (!strcmp(c->nets[j].id, nc->id)) {
				snprintf(buf, len, "net '%s': duplicate id", nc->id);
				return -EINVAL;
			}
			if (nc->tap && c->nets[j].tap && !strcmp(nc->tap, c->nets[j].tap)) {
				snprintf(buf, len, "net '%s': tap '%s' is already used by net '%s'",
					 nc->id, nc->tap, c->nets[j].id);
				return -EINVAL;
			}
		}
		if (!nc->tap == !nc->user) {
			snprintf(buf, len, "net '%s': needs exactly one of tap=NAME or user", nc->id);
			return -EINVAL;
		}
		if (nc->tap && !vm_config_ifname_valid(nc->tap)) {
			snprintf(buf, len, "net '%s': tap '%.32s' is not a valid interface name", nc->id,
				 nc->tap);
			return -EINVAL;
		}
		if (nc->mtu && (nc->mtu < VM_CONFIG_MIN_MTU || nc->mtu > max_mtu)) {
			snprintf(buf, len, "net '%s': mtu %u is out of range (%u-%u)", nc->id, nc->mtu,
				 VM_CONFIG_MIN_MTU, max_mtu);
			return -EINVAL;
		}
		if (nc->mac_set && (nc->mac[0] & 1)) {
			snprintf(buf, len, "net '%s': mac is a multicast address", nc->id);
			return -EINVAL;
		}
		if (nc->hostfwd && !nc->user) {
			snprintf(buf, len, "net '%s': hostfwd needs user-mode networking", nc->id);
			return -EINVAL;
		}
		if (nc->host_loopback && !nc->user) {
			snprintf(buf, len, "net '%s': host_loopback needs user-mode networking",
				 nc->id);
			return -EINVAL;
		}
		if (nc->passt && !nc->user) {
			snprintf(buf, len, "net '%s': passt needs user-mode networking", nc->id);
			return -EINVAL;
		}
		if (nc->passt && (nc->hostfwd || nc->host_loopback)) {
			snprintf(buf, len,
				 "net '%s': hostfwd and host_loopback are options of the passt kiln "
				 "starts; give them to the passt at passt=PATH instead (-t, -u, "
				 "--no-map-gw)",
				 nc->id);
			return -EINVAL;
		}
		if (nc->hostfwd && vm_config_parse_hostfwd(nc->hostfwd, fwd, &n, why, sizeof(why))) {
			snprintf(buf, len, "net '%s': %s", nc->id, why);
			return -EINVAL;
		}
	}
	return 0;
}

int vm_config_validate(const struct vm_config *c, char *err, size_t errlen)
{
	const char *msg = NULL;
	char buf[320];

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
	} else if (validate_nets(c, buf, sizeof(buf))) {
		msg = buf;
	}
	if (!msg)
		return 0;
	if (err && errlen)
		snprintf(err, errlen, "%s", msg);
	return -EINVAL;
}
