/* net.c: `kiln run --net` (tap=NAME or user, with mac, mtu, id, passt, hostfwd, host_loopback) ->
 * struct net_config. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/internal.h"

/* hostfwd last: it takes a list (CLI_KV_CONTINUE). */
static const char *const net_keys[] = {"tap",	    "mac",	       "mtu",	  "id",
				       "passt", "host_loopback", "hostfwd", NULL};

/* Backend: exactly one of tap=NAME and the bare word "user". */
static int net_backend(struct net_config *nc, const struct cli_kvlist *kv, const char *opt,
		       char *err, size_t errlen)
{
	const char *tap = cli_kvlist_get(kv, "tap");
	struct cli_clip cl;

	if (kv->bare && strcmp(kv->bare, "user"))
		return cli_fail(err, errlen, "%s: unknown backend '%s' (expected tap=NAME or user)",
				opt, cli_clip(&cl, kv->bare));
	if (tap && kv->bare)
		return cli_fail(err, errlen, "%s: give tap=NAME or user, not both", opt);
	if (!tap && !kv->bare)
		return cli_fail(err, errlen, "%s: tap=NAME or user is required", opt);
	if (!tap) {
		nc->user = true;
		return 0;
	}
	if (!vm_config_ifname_valid(tap))
		return cli_fail(err, errlen,
				"%s: tap: '%s' is not an interface name (1-%u bytes, no '/', ':' "
				"or spaces)",
				opt, cli_clip(&cl, tap), VM_CONFIG_IFNAME_MAX);
	nc->tap = strdup(tap);
	return nc->tap ? 0 : -ENOMEM;
}

static int net_options(const struct vm_config *c, struct net_config *nc,
		       const struct cli_kvlist *kv, const char *opt, char *err, size_t errlen)
{
	unsigned max_mtu = nc->user ? VM_CONFIG_MAX_USER_MTU : VM_CONFIG_MAX_MTU;
	struct net_hostfwd fwd[VM_CONFIG_MAX_HOSTFWD];
	char why[200];
	struct cli_clip cl;
	const char *v;
	uint64_t mtu;
	unsigned n;
	int ret;

	if ((v = cli_kvlist_get(kv, "mac"))) {
		if (vm_config_parse_mac(v, nc->mac))
			return cli_fail(err, errlen,
					"%s: mac: '%s' is not a MAC address (xx:xx:xx:xx:xx:xx)", opt,
					cli_clip(&cl, v));
		if (nc->mac[0] & 1)
			return cli_fail(err, errlen, "%s: mac: %s is a multicast address", opt, v);
		nc->mac_set = true;
	}
	if ((v = cli_kvlist_get(kv, "mtu"))) {
		ret = cli_parse_uint(v, VM_CONFIG_MIN_MTU, max_mtu, &mtu);
		if (ret == -ERANGE)
			return cli_fail(err, errlen, "%s: mtu: '%s' is out of range (%u-%u)", opt,
					cli_clip(&cl, v), VM_CONFIG_MIN_MTU, max_mtu);
		if (ret)
			return cli_fail(err, errlen, "%s: mtu: '%s' is not a number", opt,
					cli_clip(&cl, v));
		nc->mtu = (unsigned)mtu;
	}
	if ((v = cli_kvlist_get(kv, "id"))) {
		if ((ret = cli_check_id_chars(opt, v, err, errlen)))
			return ret;
		for (unsigned i = 0; i < c->nr_nets; i++)
			if (!strcmp(c->nets[i].id, v))
				return cli_fail(err, errlen, "%s: duplicate id '%s'", opt, v);
		snprintf(nc->id, sizeof(nc->id), "%s", v);
	}
	if ((v = cli_kvlist_get(kv, "hostfwd"))) {
		if (!nc->user)
			return cli_fail(err, errlen, "%s: hostfwd needs user (user-mode networking)",
					opt);
		if (vm_config_parse_hostfwd(v, fwd, &n, why, sizeof(why)))
			return cli_fail(err, errlen, "%s: %s", opt, why);
		nc->hostfwd = strdup(v);
		if (!nc->hostfwd)
			return -ENOMEM;
	}
	if ((v = cli_kvlist_get(kv, "passt"))) {
		if (!nc->user)
			return cli_fail(err, errlen, "%s: passt needs user (user-mode networking)",
					opt);
		if (!*v || v[0] != '/')
			return cli_fail(err, errlen,
					"%s: passt: '%s' is not an absolute path to passt's socket",
					opt, cli_clip(&cl, v));
		nc->passt = strdup(v);
		if (!nc->passt)
			return -ENOMEM;
	}
	if ((v = cli_kvlist_get(kv, "host_loopback"))) {
		if (!nc->user)
			return cli_fail(err, errlen,
					"%s: host_loopback needs user (user-mode networking)", opt);
		if (cli_parse_bool(v, &nc->host_loopback))
			return cli_fail(err, errlen, "%s: host_loopback: '%s' is not on or off",
					opt, cli_clip(&cl, v));
	}
	if (nc->passt && (nc->hostfwd || nc->host_loopback))
		return cli_fail(err, errlen,
				"%s: hostfwd and host_loopback are for the passt kiln starts; give "
				"the passt at passt=PATH its own -t, -u and --no-map-gw",
				opt);
	for (unsigned i = 0; nc->tap && i < c->nr_nets; i++)
		if (c->nets[i].tap && !strcmp(c->nets[i].tap, nc->tap))
			return cli_fail(err, errlen, "%s: tap '%s' is already used by another --net",
					opt, nc->tap);
	return 0;
}

int cli_set_net(struct vm_config *c, const char *opt, const char *val, char *err, size_t errlen)
{
	struct net_config *nc;
	struct cli_kvlist kv;
	int ret;

	if (c->nr_nets >= VM_CONFIG_MAX_NETS)
		return cli_fail(err, errlen, "%s: at most %u network interfaces", opt,
				VM_CONFIG_MAX_NETS);
	ret = cli_kvlist_parse(&kv, opt, val, net_keys, CLI_KV_BARE | CLI_KV_CONTINUE, err,
			       errlen);
	if (ret)
		return ret;
	nc = &c->nets[c->nr_nets];
	memset(nc, 0, sizeof(*nc));
	ret = net_backend(nc, &kv, opt, err, errlen);
	if (!ret)
		ret = net_options(c, nc, &kv, opt, err, errlen);
	if (!ret) {
		c->nr_nets++;
	} else {
		free(nc->tap);
		free(nc->hostfwd);
		free(nc->passt);
		memset(nc, 0, sizeof(*nc));
	}
	cli_kvlist_free(&kv);
	return ret;
}

void cli_name_nets(struct vm_config *c)
{
	for (unsigned i = 0; i < c->nr_nets; i++) {
		if (c->nets[i].id[0])
			continue;
		for (unsigned n = 0;; n++) {
			char id[VM_CONFIG_ID_MAX];
			bool used = false;

			snprintf(id, sizeof(id), "net%u", n);
			for (unsigned j = 0; j < c->nr_nets && !used; j++)
				used = !strcmp(c->nets[j].id, id);
			if (!used) {
				memcpy(c->nets[i].id, id, sizeof(id));
				break;
			}
		}
	}
}
