/* vmmproc.h: start a VMM with its serial output on a pipe, watch for a string, sample /proc. */
#ifndef BENCH_VMMPROC_H
#define BENCH_VMMPROC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "bench.h" /* now_ns */

/* A VMM started by vmm_spawn(): its own process group, SIGKILL if the harness dies. */
struct vmm {
	pid_t pid;
	int out_fd;	/* read end of the VMM's stdout, non-blocking; -1 with VMM_OUT_NULL */
	char tail[256]; /* the last bytes read: needle matching and error messages */
	size_t tail_len;
	uint64_t out_bytes;	/* serial bytes read so far */
	int log_fd;		/* if >= 0, everything read is copied there (set after vmm_spawn) */
	const char *err_path;	/* with err_needle: the VMM's stderr file, watched while waiting */
	const char *err_needle; /* a VMM that writes this to stderr has failed (see vmm_wait_for) */
	long err_off;		/* how far err_path has been searched */
};

enum vmm_out { VMM_OUT_PIPE, VMM_OUT_NULL };

/* fork + exec argv[0] (PATH searched) with stdin from /dev/null, stdout to a pipe or
 * /dev/null, stderr to stderr_path (NULL: /dev/null). Returns 0 or -errno (message printed). */
int vmm_spawn(struct vmm *v, char *const argv[], enum vmm_out out, const char *stderr_path)
    __attribute__((warn_unused_result));

/* Read the VMM's output until `needle` (at most 255 bytes) has appeared, the VMM exits or
 * `deadline_ns` (CLOCK_MONOTONIC) passes. On success *t_ns is the time the read that completed the
 * needle returned. Returns 0, -ETIMEDOUT, -ECHILD (VMM exited; *status set) or another -errno. */
int vmm_wait_for(struct vmm *v, const char *needle, uint64_t deadline_ns, uint64_t *t_ns,
		 int *status) __attribute__((warn_unused_result));

/* Keep reading (and dropping) the VMM's output until `until_ns`; 0 or -ECHILD. */
int vmm_drain(struct vmm *v, uint64_t until_ns, int *status) __attribute__((warn_unused_result));

/* Wait for the VMM to exit by itself until deadline_ns: 0 (*status set) or -ETIMEDOUT. */
int vmm_wait_exit(struct vmm *v, uint64_t deadline_ns, int *status)
    __attribute__((warn_unused_result));

/* Is the VMM still running? Reaps it (and forgets it) when it has exited. */
bool vmm_alive(struct vmm *v);

/* SIGKILL the VMM's process group, reap it, close the pipe. Safe to call twice. */
void vmm_kill(struct vmm *v);

/* Memory of a process from /proc/PID/smaps, in KiB. The guest RAM is every mapping whose
 * size is exactly guest_bytes (Firecracker's memory-overhead test does the same), or a run of
 * adjacent anonymous rw-p mappings spanning exactly that (a VMM that madvise()s part of its
 * guest RAM splits the kernel's mapping). */
struct vmm_mem {
	uint64_t rss_kib;	/* RSS of all other mappings: the VMM's overhead */
	uint64_t pss_kib;	/* PSS of all other mappings */
	uint64_t uss_kib;	/* Private_Clean + Private_Dirty of all other mappings */
	uint64_t guest_rss_kib; /* RSS of the guest RAM mapping(s) */
	uint64_t total_rss_kib; /* everything */
	uint64_t total_pss_kib;
	unsigned guest_maps; /* runs of adjacent anonymous mappings taken as guest RAM */
};
int vmm_mem(pid_t pid, uint64_t guest_bytes, struct vmm_mem *m) __attribute__((warn_unused_result));

/* CPU time of the whole process (all threads, exited ones included) from /proc/PID/stat, in
 * clock ticks converted to ms: utime and stime, and guest_time (vCPU time in guest mode,
 * which the kernel also counts in utime). vmm = utime + stime - guest.
 * vcpu_stime: stime of the live vCPU threads (threads of /proc/PID/task named vcpuN, anything with
 * "vcpu", or "CPU n/KVM"): KVM_RUN's kernel side. Where KVM emulates guest kernel code in the host
 * kernel (PVM) that work lands there, as stime, not as guest_time. */
struct vmm_cpu {
	double utime_ms, stime_ms, guest_ms, vmm_ms, vcpu_stime_ms;
	unsigned vcpu_threads;
};
int vmm_cpu(pid_t pid, struct vmm_cpu *c) __attribute__((warn_unused_result));

/* SIGINT/SIGTERM/SIGHUP: SIGKILL every VMM still running (each was started with
 * vmm_spawn), then exit 130. Call once before the first vmm_spawn. */
void vmm_cleanup_on_signal(void);

/* Print the last bytes the VMM wrote (escaped) to stderr after `what`. */
void vmm_report_tail(const struct vmm *v, const char *what);

#endif
