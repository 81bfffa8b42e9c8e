/* slirp_none.c: user-mode networking in the static build, which cannot load libslirp.
 *
 * The static `kiln` (docs/design.md, "Two builds") has no dlopen, so it runs a VM with a
 * user-mode interface by executing kiln-full before it creates anything (main.c). This is
 * the backend that build links in its place: reached only if that hand-over was skipped. */
#include "backends/net.h"

#include <errno.h>
#include <stdio.h>

int net_slirp_create(const struct net_config *cfg, struct event_loop *ev, struct net_backend **out,
		     char *err, size_t errlen)
{
	snprintf(err, errlen, "user-mode networking needs kiln-full (this build cannot load libslirp)");
	return -ENOTSUP;
}
