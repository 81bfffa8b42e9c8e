/* seccomp_filters.h: the BPF programs tools/seccomp_gen.c compiles at build time, one pair per
 * thread kind (sandbox/seccomp.h installs them), and the system call name table the SIGSYS
 * handler prints from. */
#ifndef KILN_SANDBOX_SECCOMP_FILTERS_H
#define KILN_SANDBOX_SECCOMP_FILTERS_H

#include <linux/filter.h>

/* The thread kinds, each with its own allowlist (the lists: tools/seccomp_gen.c). */
enum seccomp_kind {
	SECCOMP_VCPU,  /* a vCPU: KVM_RUN and the exits' device handlers */
	SECCOMP_VMM,   /* the event loop (main thread) */
	SECCOMP_API,   /* the API server's threads */
	SECCOMP_SETUP, /* the vCPUs' set-up thread at start-up (vmm/vm.c, "prep") */
	SECCOMP_NR_KINDS,
};

struct seccomp_prog_ref {
	const struct sock_filter *insns;
	unsigned short len;
};

struct seccomp_filter_pair {
	const char *kind;
	struct seccomp_prog_ref trap; /* default action SECCOMP_RET_TRAP: --seccomp on */
	struct seccomp_prog_ref log;  /* default action SECCOMP_RET_LOG: --seccomp log */
};

extern const struct seccomp_filter_pair seccomp_filters[SECCOMP_NR_KINDS];
extern const char *const seccomp_syscall_names[];
extern const unsigned seccomp_nr_syscall_names;

#endif
