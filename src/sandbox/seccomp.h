/* seccomp.h: one seccomp allowlist per thread kind (docs/security.md). Each thread installs its
 * own before it touches guest or client input:
 *  - a vCPU thread as soon as it starts (vm_create starts them: vmm/vcpu.c), then waits until
 *    the event loop has its filter too (vm_run): no guest instruction runs before every thread
 *    is confined;
 *  - the event loop (the main thread) in vm_run, after the vCPU threads exist (a thread
 *    inherits its creator's filter, and the vCPUs' calls are not the event loop's);
 *  - the API server's thread before libmicrohttpd starts (its threads inherit it), so before
 *    the first connection is accepted (api/server.c);
 *  - the start-up helper that creates the vCPUs (vmm/vm.c, "prep") once it has started the
 *    vCPU threads, before it fetches the CPUID or creates a vCPU: a thread inherits its
 *    creator's filter, and the set-up list (KVM_CREATE_VCPU, no KVM_RUN) stacked on a vCPU
 *    thread's would stop it at its first KVM_RUN.
 * So every thread has one filter, its own.
 * A call outside the list stops kiln with one line naming the thread and the call (--seccomp
 * on, the default), or goes through and is logged by the kernel (--seccomp log). */
#pragma once

#include <stddef.h>

#include "sandbox/seccomp_filters.h"
#include "util/compiler.h"

enum seccomp_mode { SECCOMP_MODE_ON, SECCOMP_MODE_LOG, SECCOMP_MODE_OFF };

/* "on", "log" or "off". Returns 0 or -EINVAL. */
int seccomp_mode_parse(const char *s, enum seccomp_mode *out) __must_check;
/* The process's mode: on unless the command line (or KILN_SECCOMP) said otherwise. Set it
 * before the first thread starts. */
void seccomp_mode_set(enum seccomp_mode m);
enum seccomp_mode seccomp_mode_get(void);
const char *seccomp_mode_name(enum seccomp_mode m);

/* Confine the calling thread with kind's allowlist; name (at most 15 bytes are kept) is how
 * the stop line calls the thread ("vcpu0", "api"). Nothing in mode off. Returns 0, or -errno
 * with a one-line reason in err: the thread must then not go on to guest or client input. */
int seccomp_enter(enum seccomp_kind kind, const char *name, char *err, size_t errlen) __must_check;

/* Test builds only (-Dtest_hooks=true): when KILN_TEST_SECCOMP names this thread's kind, make
 * a call outside its list (KVM_CREATE_VM on kvm_fd from a vCPU or the set-up thread, else an
 * execve), which must stop kiln. A no-op in other builds. */
void seccomp_test_violation(enum seccomp_kind kind, int kvm_fd);
