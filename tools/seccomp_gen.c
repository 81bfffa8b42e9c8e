/* seccomp_gen.c: kiln's seccomp allowlists, one per thread kind, compiled to BPF at build time.
 *
 * Runs on the build machine (meson: tools/meson.build) and writes a C file of classic BPF
 * programs (struct sock_filter arrays) that both builds of kiln compile in, the static musl one
 * included: libseccomp does the compiling here and is not linked into kiln. Each kind gets two
 * programs that differ only in the default action: SECCOMP_RET_TRAP (`--seccomp on`: kiln's
 * SIGSYS handler names the thread and the call and stops) and SECCOMP_RET_LOG (`--seccomp log`:
 * the call goes through and the kernel logs it). With a third argument it writes the name table
 * (system call number -> name) that the SIGSYS handler prints from.
 *
 * The lists are what each thread does after its filter is in place (docs/security.md):
 *  vcpu  KVM_RUN and the vCPU state ioctls; the device register handlers that run on it (PIO
 *        and MMIO exits): interrupts, ioeventfd moves, MSI routes, console output.
 *  vmm   the event loop (main thread): device queues, disk and network I/O, the API's commands,
 *        pause/resume, snapshot/create (the vCPU and VM state ioctls while the vCPUs are
 *        parked, the state and memory files: open with O_CREAT, rename), the stop and its
 *        clean-up.
 *  api   the API server: libmicrohttpd's accepting thread and a thread per connection.
 *  setup the vCPUs' set-up thread at start-up (vmm/vm.c, "prep"), once it has started the vCPU
 *        threads: the host's CPUID list, then each vCPU (KVM_CREATE_VCPU, its kvm_run mapping,
 *        CPUID, MSRs, LAPIC). The only list with KVM_CREATE_VCPU, and it cannot make threads.
 * No list has execve, fork, ptrace, mount, socket, KVM_CREATE_VM or the like. ioctl is allowed
 * by request number only (compared on 32 bits: musl passes the request sign-extended), mmap and
 * mprotect never with PROT_EXEC, fcntl for a few commands, clone only for threads, and clone3
 * fails with ENOSYS so that glibc's pthread_create falls back to clone, whose flags the filter can
 * see.
 */
#define _GNU_SOURCE
#include <sys/ioctl.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/if_tun.h>
#include <linux/kvm.h>
#include <linux/sockios.h>
#include <sched.h>
#include <seccomp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Every thread: memory, time, futexes, I/O on fds it already has, logging, exit. */
static const char *const common[] = {
	"read", "write", "readv", "writev", "pread64", "pwrite64", "close", "lseek", "fstat",
	"newfstatat", "statx", "stat", "lstat", "futex", "get_robust_list", "set_robust_list", "rseq",
	"munmap", "madvise", "brk", "mremap", "membarrier",
	"clock_gettime", "clock_getres", "gettimeofday", "clock_nanosleep", "nanosleep",
	"sched_yield", "getcpu", "getpid", "gettid", "getuid", "geteuid", "getgid", "getegid",
	"getrandom", "restart_syscall", "rt_sigreturn", "rt_sigprocmask", "tgkill", "tkill",
	"sigaltstack", /* a thread's own signal stack: sanitizer runtimes set and drop one */
	"sendmsg",     /* logging (util/outfd.c) when stderr is a socket: journald, a supervisor */
	"exit", "exit_group",
};

static const char *const vcpu_calls[] = {
	"epoll_ctl", "eventfd2", "io_uring_enter",
	"sched_getaffinity", "sched_setaffinity", /* back to its own CPUs after the start */
};

static const char *const vmm_calls[] = {
	"epoll_wait", "epoll_pwait", "epoll_ctl", "poll", "ppoll", "eventfd2", "timerfd_settime",
	"timerfd_gettime", "preadv", "pwritev", "preadv2", "pwritev2", "sendto", "recvfrom",
	"sendmsg", "recvmsg", "shutdown", "getsockopt", "fsync", "fdatasync", "fallocate",
	"flock", "io_uring_enter", "io_uring_setup", "io_uring_register", "dup", "dup3",
	"dup2", "kill", "wait4", "waitid", "pidfd_send_signal", "unlink", "unlinkat", "rmdir",
	"access", "faccessat", "faccessat2", "readlink", "getcwd", "sched_getaffinity",
	"sched_setaffinity", "rt_sigaction", "rt_sigtimedwait", "uname",
	/* snapshot/create (vmm/snapshot.c): the state and memory files, each written to a
	 * temporary file renamed over its path */
	"ftruncate", "rename", "renameat", "renameat2", "copy_file_range",
};

static const char *const api_calls[] = {
	"accept", "accept4", "poll", "ppoll", "select", "pselect6", "epoll_wait", "epoll_pwait",
	"epoll_ctl", "epoll_create1", "eventfd2", "pipe2", "sendto", "recvfrom", "sendmsg",
	"recvmsg", "shutdown", "setsockopt", "getsockopt", "getsockname", "getpeername",
	"access", "faccessat", "faccessat2", "readlink",
	"getcwd", "fsync", "fdatasync", "ftruncate", "sched_getaffinity", "uname",
	"rt_sigaction",
};

/* ioctl requests by thread. */
static const unsigned long vcpu_ioctls[] = {
	KVM_RUN, KVM_GET_REGS, KVM_SET_REGS, KVM_GET_SREGS, KVM_SET_SREGS, KVM_GET_FPU,
	KVM_SET_FPU, KVM_GET_MSRS, KVM_SET_MSRS, KVM_GET_LAPIC, KVM_SET_LAPIC,
	KVM_GET_VCPU_EVENTS, KVM_SET_VCPU_EVENTS, KVM_GET_MP_STATE, KVM_SET_MP_STATE,
	KVM_GET_XSAVE, KVM_GET_XCRS, KVM_GET_DEBUGREGS, KVM_TRANSLATE, KVM_GET_DEVICE_ATTR,
	KVM_SET_DEVICE_ATTR, KVM_KVMCLOCK_CTRL,
	/* device register handlers */
	KVM_IRQ_LINE, KVM_IRQ_LINE_STATUS, KVM_IOEVENTFD, KVM_IRQFD, KVM_SET_GSI_ROUTING,
	KVM_SIGNAL_MSI, TUNSETOFFLOAD, TUNSETVNETHDRSZ, SIOCOUTQ, FIONBIO, TCGETS,
};

static const unsigned long vmm_ioctls[] = {
	KVM_IRQ_LINE, KVM_IRQ_LINE_STATUS, KVM_IOEVENTFD, KVM_IRQFD, KVM_SET_GSI_ROUTING,
	KVM_SIGNAL_MSI, KVM_GET_CLOCK, KVM_SET_CLOCK, KVM_CHECK_EXTENSION,
	/* pause and resume (vmm/pause.c): the BSP's TSC, every vCPU's TSC offset */
	KVM_GET_MSRS, KVM_GET_DEVICE_ATTR, KVM_SET_DEVICE_ATTR, KVM_KVMCLOCK_CTRL,
	TUNSETOFFLOAD, TUNSETVNETHDRSZ, TUNGETFEATURES, SIOCOUTQ, FIONREAD, FIONBIO,
	BLKGETSIZE64, TCGETS, TCSETS, TCSETSW, TCSETSF,
	/* snapshot/create: every vCPU's state (the vCPUs are parked), the VM's, the dirty log,
	 * and the host's MSR list (probed at the first snapshot) */
	KVM_GET_REGS, KVM_GET_SREGS, KVM_GET_SREGS2, KVM_GET_FPU, KVM_GET_XSAVE, KVM_GET_XSAVE2, KVM_GET_XCRS,
	KVM_GET_LAPIC, KVM_GET_VCPU_EVENTS, KVM_GET_MP_STATE, KVM_GET_DEBUGREGS, KVM_GET_CPUID2,
	KVM_GET_TSC_KHZ, KVM_GET_IRQCHIP, KVM_GET_PIT2, KVM_GET_DIRTY_LOG, KVM_GET_MSR_INDEX_LIST,
};

static const unsigned long api_ioctls[] = {
	FIONREAD, FIONBIO, TCGETS,
};

/* The set-up thread: nothing beyond the common calls (its kvm_run mappings are mmap without
 * PROT_EXEC, its allocations brk and mmap), and these requests. */
static const unsigned long setup_ioctls[] = {
	KVM_GET_SUPPORTED_CPUID, /* on /dev/kvm */
	KVM_CREATE_VCPU,	 /* on the VM fd */
	KVM_SET_CPUID2, KVM_SET_MSRS, KVM_GET_LAPIC, KVM_SET_LAPIC, /* on each new vCPU */
};

static const int fcntl_cmds[] = {
	F_GETFD, F_SETFD, F_GETFL, F_SETFL, F_DUPFD_CLOEXEC, F_GETPIPE_SZ, F_SETPIPE_SZ,
};

struct kind {
	const char *name;
	const char *const *calls;
	size_t nr_calls;
	const unsigned long *ioctls;
	size_t nr_ioctls;
	bool threads; /* may create threads (clone with CLONE_THREAD) */
	enum { OPEN_NONE, OPEN_READ, OPEN_ANY } open; /* open/openat: never, no O_CREAT, any */
};

#define LIST(a) a, ARRAY_SIZE(a)
static const struct kind kinds[] = {
	{ "vcpu", LIST(vcpu_calls), LIST(vcpu_ioctls), false, OPEN_NONE },
	{ "vmm", LIST(vmm_calls), LIST(vmm_ioctls), false, OPEN_ANY }, /* snapshot files */
	{ "api", LIST(api_calls), LIST(api_ioctls), true, OPEN_ANY },
	{ "setup", NULL, 0, LIST(setup_ioctls), false, OPEN_NONE },
};

static _Noreturn void die(const char *what, const char *name, int err)
{
	fprintf(stderr, "seccomp_gen: %s %s: %s\n", what, name ? name : "", strerror(-err));
	exit(1);
}

static int nr(const char *name)
{
	int n = seccomp_syscall_resolve_name_arch(SCMP_ARCH_X86_64, name);
	if (n == __NR_SCMP_ERROR)
		die("unknown system call", name, -EINVAL);
	return n;
}

static void allow(scmp_filter_ctx ctx, const char *name, unsigned n, const struct scmp_arg_cmp *a)
{
	int ret = seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, nr(name), n, a);
	if (ret)
		die("rule for", name, ret);
}

static void add_rules(scmp_filter_ctx ctx, const struct kind *k)
{
	struct scmp_arg_cmp a;

	for (size_t i = 0; i < ARRAY_SIZE(common); i++)
		allow(ctx, common[i], 0, NULL);
	for (size_t i = 0; i < k->nr_calls; i++)
		allow(ctx, k->calls[i], 0, NULL);
	/* The low 32 bits only: the kernel reads an int, and musl's ioctl sign-extends it. */
	for (size_t i = 0; i < k->nr_ioctls; i++) {
		a = SCMP_A1_64(SCMP_CMP_MASKED_EQ, 0xffffffffu, (uint32_t)k->ioctls[i]);
		allow(ctx, "ioctl", 1, &a);
	}
	for (size_t i = 0; i < ARRAY_SIZE(fcntl_cmds); i++) {
		a = SCMP_A1_64(SCMP_CMP_MASKED_EQ, 0xffffffffu, (uint32_t)fcntl_cmds[i]);
		allow(ctx, "fcntl", 1, &a);
	}
	/* No executable mappings: nothing kiln does after start-up maps code. */
	a = SCMP_A2_64(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0);
	allow(ctx, "mmap", 1, &a);
	allow(ctx, "mprotect", 1, &a);
	/* The thread's name, in every log line (util/log.c) and set by new threads. */
	a = SCMP_A0_64(SCMP_CMP_MASKED_EQ, 0xffffffffu, PR_GET_NAME);
	allow(ctx, "prctl", 1, &a);
	a = SCMP_A0_64(SCMP_CMP_MASKED_EQ, 0xffffffffu, PR_SET_NAME);
	allow(ctx, "prctl", 1, &a);
	if (k->threads) {
		a = SCMP_A0_64(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD);
		allow(ctx, "clone", 1, &a);
	}
	/* musl opens with open(2), glibc with openat(2). */
	if (k->open == OPEN_ANY) {
		allow(ctx, "openat", 0, NULL);
		allow(ctx, "open", 0, NULL);
	} else if (k->open == OPEN_READ) {
		a = SCMP_A2_64(SCMP_CMP_MASKED_EQ, O_CREAT | O_TMPFILE, 0);
		allow(ctx, "openat", 1, &a);
		a = SCMP_A1_64(SCMP_CMP_MASKED_EQ, O_CREAT | O_TMPFILE, 0);
		allow(ctx, "open", 1, &a);
	}
	/* glibc's pthread_create tries clone3 first and falls back to clone on ENOSYS. */
	int ret = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), nr("clone3"), 0);
	if (ret)
		die("rule for", "clone3", ret);
}

/* One program as a C array, read back from seccomp_export_bpf. */
static void emit(FILE *out, const struct kind *k, const char *mode, uint32_t dflt)
{
	scmp_filter_ctx ctx = seccomp_init(dflt);
	FILE *tmp = tmpfile();
	unsigned char insn[8];
	size_t count = 0;
	int ret;

	if (!ctx || !tmp)
		die("set-up for", k->name, -ENOMEM);
	/* A binary search over the system call numbers (libseccomp's level 2) instead of a chain
	 * of compares: fewer instructions per call, and far fewer for the kernel to walk at
	 * install time, when it tries every system call number to build its cache of calls
	 * allowed whatever their arguments (half of the install cost with a chain). */
	if ((ret = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, dflt)) ||
	    (ret = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0)) ||
	    (ret = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2)))
		die("attributes for", k->name, ret);
	add_rules(ctx, k);
	if ((ret = seccomp_export_bpf(ctx, fileno(tmp))))
		die("export of", k->name, ret);
	rewind(tmp);
	fprintf(out, "static const struct sock_filter %s_%s[] = {\n", k->name, mode);
	while (fread(insn, 1, sizeof(insn), tmp) == sizeof(insn)) {
		unsigned code = insn[0] | insn[1] << 8;
		unsigned long kv = insn[4] | insn[5] << 8 | insn[6] << 16 | (unsigned long)insn[7] << 24;
		fprintf(out, "\t{ 0x%04x, %u, %u, 0x%08lx },\n", code, insn[2], insn[3], kv);
		count++;
	}
	fprintf(out, "};\n\n");
	if (!count || count > 4096)
		die("program size of", k->name, -E2BIG);
	fclose(tmp);
	seccomp_release(ctx);
}

static void emit_filters(FILE *out)
{
	fprintf(out, "/* Generated by tools/seccomp_gen.c at build time: do not edit. */\n"
		     "#include \"sandbox/seccomp_filters.h\"\n\n");
	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++) {
		emit(out, &kinds[i], "trap", SCMP_ACT_TRAP);
		emit(out, &kinds[i], "log", SCMP_ACT_LOG);
	}
	fprintf(out, "const struct seccomp_filter_pair seccomp_filters[SECCOMP_NR_KINDS] = {\n");
	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++) {
		const char *k = kinds[i].name;
		char up[16];
		size_t j;
		for (j = 0; k[j] && j + 1 < sizeof(up); j++)
			up[j] = (char)(k[j] >= 'a' && k[j] <= 'z' ? k[j] - 'a' + 'A' : k[j]);
		up[j] = '\0';
		fprintf(out,
			"\t[SECCOMP_%s] = { \"%s\", { %s_trap, sizeof(%s_trap) / sizeof(%s_trap[0]) },\n"
			"\t\t{ %s_log, sizeof(%s_log) / sizeof(%s_log[0]) } },\n",
			up, k, k, k, k, k, k, k);
	}
	fprintf(out, "};\n");
}

static void emit_names(FILE *out)
{
	int max = 0;

	for (int n = 0; n < 1024; n++) {
		char *s = seccomp_syscall_resolve_num_arch(SCMP_ARCH_X86_64, n);
		if (s)
			max = n;
		free(s);
	}
	fprintf(out, "/* Generated by tools/seccomp_gen.c at build time: do not edit. */\n"
		     "#include \"sandbox/seccomp_filters.h\"\n\n"
		     "const char *const seccomp_syscall_names[%d] = {\n",
		max + 1);
	for (int n = 0; n <= max; n++) {
		char *s = seccomp_syscall_resolve_num_arch(SCMP_ARCH_X86_64, n);
		if (s)
			fprintf(out, "\t[%d] = \"%s\",\n", n, s);
		free(s);
	}
	fprintf(out, "};\nconst unsigned seccomp_nr_syscall_names = %d;\n", max + 1);
}

int main(int argc, char **argv)
{
	FILE *f, *n;

	if (argc != 3) {
		fprintf(stderr, "usage: seccomp_gen FILTERS.c NAMES.c\n");
		return 2;
	}
	if (!(f = fopen(argv[1], "w")) || !(n = fopen(argv[2], "w")))
		die("cannot write", argv[1], -errno);
	emit_filters(f);
	emit_names(n);
	if (fclose(f) || fclose(n))
		die("cannot write", argv[1], -errno);
	return 0;
}
