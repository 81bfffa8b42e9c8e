/* passt.h: inside the passt backend: the passt process kiln starts (passt_spawn.c) for the
 * stream socket that passt.c carries frames over. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "config.h"
#include "util/compiler.h"
#include "vmm/event.h"

/* The addresses passt gives the guest (docs/guest.md, "User-mode networking"). */
#define PASST_GUEST_ADDR "10.0.2.15"
#define PASST_GATEWAY "10.0.2.2"
#define PASST_DNS "10.0.2.3"
#define PASST_PREFIX_LEN "24"
#define PASST_MAC "52:55:0a:00:02:02" /* the gateway's, locally administered */
#define PASST_MAX_ARGS (32 + 2 * VM_CONFIG_MAX_HOSTFWD)
#define PASST_START_MS 5000 /* passt has this long to be ready */

struct passt_child {
	pid_t pid;    /* 0: none (the user started passt) */
	int pidfd;    /* readable when passt exits (-1 where pidfd_open is missing) */
	int err_fd;   /* passt's stderr and stdout, relayed to kiln's log */
	bool reaped;
	struct event_loop *ev;
	char name[VM_CONFIG_ID_MAX + 24]; /* "net 'net0': passt (pid 1234)" for log lines */
	char line[256];			  /* a line of its output being put together */
	char last[256];			  /* its last whole line (for an error message) */
	size_t line_len;
};

/* The argument vector for a passt that serves the stream socket at fd 3 for interface cfg,
 * writes its pid to ready_path once it is ready, and runs as runas ("UID:GID", or NULL for
 * kiln's own user): strings in store (storelen bytes), pointers in argv[PASST_MAX_ARGS]
 * (NULL-terminated). Returns 0, or -EINVAL with a one-line message. */
int passt_build_argv(const char *bin, const struct net_config *cfg, const char *ready_path,
		     const char *runas, char *store, size_t storelen, const char **argv,
		     char *err, size_t errlen) __must_check;
/* Start passt for cfg on sock (one end of a stream socketpair, left open in kiln) and wait
 * until it is ready. On error a one-line message (passt missing, exited at start with its last
 * line of output, or too slow), and nothing is left running. */
int passt_spawn(const struct net_config *cfg, int sock, struct event_loop *ev,
		struct passt_child *ch, char *err, size_t errlen) __must_check;
/* Watch the child from ev: log its output and how it ends. */
int passt_child_watch(struct passt_child *ch) __must_check;
/* End the child (its socket is closed first: passt then exits by itself) and reap it. */
void passt_child_stop(struct passt_child *ch);
