/* vcpu.c: vCPU creation, the KVM_RUN thread and the exit dispatch table. */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "arch/x86/cpu.h"
#include "arch/x86/regs.h"
#include "sandbox/seccomp.h"
#include "util/log.h"
#include "vmm/emulate.h"
#include "vmm/vcpu_state.h"
#include "vmm/vm.h"

#define VCPU_KICK_SIGNAL (SIGRTMIN + 0)
/* Exits a vCPU handles on its way to parking before it parks anyway, unsettled (a string
 * I/O instruction exits once per page or so: far fewer for any real one). */
#define SETTLE_MAX 4096u

/* An exit handler returns VM_STOP_NONE to re-enter the guest, else why the VM must stop. */
typedef enum vm_stop_reason (*exit_fn)(struct vcpu *v);

static void kick_handler(int sig)
{
	(void)sig; /* only there to make KVM_RUN return -EINTR */
}

int vcpu_signal_setup(void)
{
	struct sigaction sa = { .sa_handler = kick_handler };
	sigemptyset(&sa.sa_mask);
	return sigaction(VCPU_KICK_SIGNAL, &sa, NULL) < 0 ? -errno : 0;
}

void vcpu_init(struct vm *vm, struct vcpu *v, unsigned id)
{
	memset(v, 0, sizeof(*v));
	v->vm = vm;
	v->id = id;
	v->fd = -1;
}

/* On the set-up thread, under its seccomp list (vm.c, "prep"): every call here is on it. */
int vcpu_create(struct vm *vm, struct vcpu *v, char *err, size_t errlen)
{
	unsigned id = v->id;
	int ret;

	v->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, (unsigned long)id);
	if (v->fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "vcpu %u: KVM_CREATE_VCPU: %s", id, strerror(-ret));
		return ret;
	}
	v->run = mmap(NULL, (size_t)vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
	if (v->run == MAP_FAILED) {
		ret = -errno;
		v->run = NULL;
		snprintf(err, errlen, "vcpu %u: mmap kvm_run: %s", id, strerror(-ret));
		goto err_close;
	}
	ret = x86_cpuid_setup(v->fd, vm->cpuid, id, vm->nr_vcpus);
	if (ret) {
		snprintf(err, errlen, "vcpu %u: KVM_SET_CPUID2: %s", id, strerror(-ret));
		goto err_unmap;
	}
	ret = x86_msrs_setup(v->fd);
	if (ret) {
		snprintf(err, errlen, "vcpu %u: KVM_SET_MSRS: %s", id, strerror(-ret));
		goto err_unmap;
	}
	ret = x86_lapic_setup(v->fd);
	if (ret) {
		snprintf(err, errlen, "vcpu %u: LAPIC set-up: %s", id, strerror(-ret));
		goto err_unmap;
	}
	return 0;

err_unmap:
	munmap(v->run, (size_t)vm->run_size);
	v->run = NULL;
err_close:
	close(v->fd);
	v->fd = -1;
	return ret;
}

void vcpu_destroy(struct vcpu *v)
{
	if (v->run)
		munmap(v->run, (size_t)v->vm->run_size);
	if (v->fd >= 0)
		close(v->fd);
	v->run = NULL;
	v->fd = -1;
}

static uint64_t vcpu_rip(struct vcpu *v)
{
	struct kvm_regs regs;
	if (ioctl(v->fd, KVM_GET_REGS, &regs) < 0)
		return ~0ULL;
	return regs.rip;
}

/* Read up to 15 instruction bytes at the guest's RIP through its page tables. */
static size_t fetch_insn(struct vcpu *v, uint64_t rip, uint8_t *buf, size_t len)
{
	struct kvm_translation tr = { .linear_address = rip };
	if (ioctl(v->fd, KVM_TRANSLATE, &tr) < 0 || !tr.valid)
		return 0;
	/* Stop at the page end: the next page may map elsewhere. */
	size_t n = MIN(len, 4096 - (tr.physical_address & 4095));
	const uint8_t *p = gpa_to_hva(&v->vm->mem, tr.physical_address, n);
	if (!p)
		return 0;
	memcpy(buf, p, n);
	return n;
}

static enum vm_stop_reason exit_io(struct vcpu *v)
{
	struct kvm_run *r = v->run;
	uint8_t *data = (uint8_t *)r + r->io.data_offset;
	uint32_t size = r->io.size;
	bool is_write = r->io.direction == KVM_EXIT_IO_OUT;

	/* String I/O (rep outsb/insb) comes as `count` back-to-back items in one page. */
	for (uint32_t i = 0; i < r->io.count; i++, data += size) {
		if (!bus_access(&v->vm->pio, r->io.port, data, size, is_write))
			log_debug("unclaimed port %s 0x%x size %u", is_write ? "write" : "read",
				  r->io.port, size);
	}
	return VM_STOP_NONE;
}

static enum vm_stop_reason exit_mmio(struct vcpu *v)
{
	struct kvm_run *r = v->run;
	uint32_t len = r->mmio.len;
	if (len == 0 || len > sizeof(r->mmio.data))
		return VM_STOP_NONE;
	if (!bus_access(&v->vm->mmio, r->mmio.phys_addr, r->mmio.data, len, r->mmio.is_write))
		log_warn_ratelimited("vcpu %u: unclaimed MMIO %s at 0x%llx len %u", v->id,
				     r->mmio.is_write ? "write" : "read",
				     (unsigned long long)r->mmio.phys_addr, len);
	return VM_STOP_NONE;
}

static enum vm_stop_reason exit_shutdown(struct vcpu *v)
{
	log_info("vcpu %u: triple fault (shutdown exit) at rip 0x%llx: guest reset", v->id,
		 (unsigned long long)vcpu_rip(v));
	return VM_STOP_RESET;
}

static enum vm_stop_reason exit_system_event(struct vcpu *v)
{
	switch (v->run->system_event.type) {
	case KVM_SYSTEM_EVENT_SHUTDOWN:
		return VM_STOP_POWEROFF;
	case KVM_SYSTEM_EVENT_RESET:
		return VM_STOP_RESET;
	default:
		log_err("vcpu %u: system event %u (crash)", v->id, v->run->system_event.type);
		return VM_STOP_ERROR;
	}
}

static enum vm_stop_reason exit_fail_entry(struct vcpu *v)
{
	log_err("vcpu %u: VM entry failed, hardware reason 0x%llx", v->id,
		(unsigned long long)v->run->fail_entry.hardware_entry_failure_reason);
	return VM_STOP_ERROR;
}

static enum vm_stop_reason exit_hlt(struct vcpu *v)
{
	/* With the in-kernel LAPIC, HLT never reaches user space; if it does the guest can
	 * never be woken. */
	log_err("vcpu %u: HLT exit at rip 0x%llx with no way to wake the vCPU", v->id,
		(unsigned long long)vcpu_rip(v));
	return VM_STOP_ERROR;
}

static int complete_fixup(struct vcpu *v, const struct emul_fixup *f)
{
	struct kvm_regs regs;
	struct kvm_vcpu_events events;

	if (ioctl(v->fd, KVM_GET_REGS, &regs) < 0)
		return -errno;
	if (f->needs_events && ioctl(v->fd, KVM_GET_VCPU_EVENTS, &events) < 0)
		return -errno;
	f->apply(&regs, &events);
	if (ioctl(v->fd, KVM_SET_REGS, &regs) < 0)
		return -errno;
	if (f->needs_events && ioctl(v->fd, KVM_SET_VCPU_EVENTS, &events) < 0)
		return -errno;
	return 0;
}

static enum vm_stop_reason exit_internal_error(struct vcpu *v)
{
	struct kvm_run *r = v->run;
	uint8_t insn[16];
	size_t n = 0;
	uint64_t rip = vcpu_rip(v);
	char bytes[64];

	if (r->internal.suberror != KVM_INTERNAL_ERROR_EMULATION) {
		log_err("vcpu %u: KVM internal error, suberror %u, rip 0x%llx", v->id,
			r->internal.suberror, (unsigned long long)rip);
		return VM_STOP_ERROR;
	}
	if ((r->emulation_failure.flags & KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES) &&
	    r->emulation_failure.insn_size > 0) {
		n = MIN((size_t)r->emulation_failure.insn_size, sizeof(r->emulation_failure.insn_bytes));
		memcpy(insn, r->emulation_failure.insn_bytes, n);
	} else {
		n = fetch_insn(v, rip, insn, 15);
	}

	const struct emul_fixup *f = emul_fixup_find(insn, n);
	if (f) {
		log_once(LOG_INFO, "completing %s for the guest: KVM's emulator cannot (logged once)",
			 f->name);
		int ret = complete_fixup(v, f);
		if (ret == 0)
			return VM_STOP_NONE;
		log_err("vcpu %u: completing %s at rip 0x%llx: %s", v->id, f->name,
			(unsigned long long)rip, strerror(-ret));
		return VM_STOP_ERROR;
	}
	emul_format_bytes(insn, n, bytes, sizeof(bytes));
	log_err("vcpu %u: emulation failure at rip 0x%llx, instruction bytes [%s]: stopping the VM",
		v->id, (unsigned long long)rip, n ? bytes : "unavailable");
	return VM_STOP_ERROR;
}

static const exit_fn exit_handlers[] = {
	[KVM_EXIT_IO] = exit_io,
	[KVM_EXIT_MMIO] = exit_mmio,
	[KVM_EXIT_HLT] = exit_hlt,
	[KVM_EXIT_SHUTDOWN] = exit_shutdown,
	[KVM_EXIT_FAIL_ENTRY] = exit_fail_entry,
	[KVM_EXIT_INTERNAL_ERROR] = exit_internal_error,
	[KVM_EXIT_SYSTEM_EVENT] = exit_system_event,
};

static enum vm_stop_reason exit_unhandled(struct vcpu *v)
{
	uint8_t insn[15];
	char bytes[64];
	uint64_t rip = vcpu_rip(v);
	size_t n = fetch_insn(v, rip, insn, sizeof(insn));
	emul_format_bytes(insn, n, bytes, sizeof(bytes));
	log_err("vcpu %u: unhandled exit reason %u at rip 0x%llx, instruction bytes [%s]: "
		"stopping the VM",
		v->id, v->run->exit_reason, (unsigned long long)rip, n ? bytes : "unavailable");
	return VM_STOP_ERROR;
}

static void dump_state(struct vcpu *v)
{
	struct kvm_regs r;
	struct kvm_sregs s;
	uint8_t insn[15];
	char bytes[64];

	if (ioctl(v->fd, KVM_GET_REGS, &r) < 0 || ioctl(v->fd, KVM_GET_SREGS, &s) < 0) {
		log_warn("vcpu %u: cannot read registers: %s", v->id, strerror(errno));
		return;
	}
	size_t n = fetch_insn(v, r.rip, insn, sizeof(insn));
	emul_format_bytes(insn, n, bytes, sizeof(bytes));
	log_warn("vcpu %u: rip 0x%llx rsp 0x%llx rflags 0x%llx cr0 0x%llx cr3 0x%llx cr4 0x%llx "
		 "efer 0x%llx cs 0x%x insn [%s]",
		 v->id, (unsigned long long)r.rip, (unsigned long long)r.rsp,
		 (unsigned long long)r.rflags, (unsigned long long)s.cr0,
		 (unsigned long long)s.cr3, (unsigned long long)s.cr4,
		 (unsigned long long)s.efer, s.cs.selector, n ? bytes : "unavailable");
}

void vcpu_request_dump(struct vcpu *v)
{
	atomic_store(&v->dump_requested, true);
	if (v->thread_started)
		pthread_kill(v->thread, VCPU_KICK_SIGNAL);
}

/* This thread's seccomp filter, then wait until the event loop has its own (vm_run): no
 * guest instruction runs before every thread is confined. False: the VM is stopping. */
static bool confine(struct vcpu *v, const char *name)
{
	struct vm *vm = v->vm;
	char why[200];

	if (seccomp_enter(SECCOMP_VCPU, name, why, sizeof(why))) {
		log_err("%s", why);
		vm_request_stop(vm, VM_STOP_ERROR);
		return false;
	}
	seccomp_test_violation(SECCOMP_VCPU, vm->kvm_fd);
	while (!atomic_load(&vm->vcpus_go) && atomic_load(&vm->stop_reason) == VM_STOP_NONE)
		syscall(SYS_futex, &vm->vcpus_go, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
	if (v->restore_affinity)
		pthread_setaffinity_np(pthread_self(), sizeof(v->affinity), &v->affinity);
	return atomic_load(&vm->stop_reason) == VM_STOP_NONE;
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *v = arg;
	struct vm *vm = v->vm;
	char name[16];
	sigset_t set;

	snprintf(name, sizeof(name), "vcpu%u", v->id);
	pthread_setname_np(pthread_self(), name);
	/* The stop signals are the event loop's (its signalfd, vm_run); this thread may start
	 * before vm_run blocks them, so it blocks them itself. The kick signal is its own. */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	sigemptyset(&set);
	sigaddset(&set, VCPU_KICK_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	if (!confine(v, name))
		return NULL;

	unsigned settling = 0;
	while (atomic_load(&vm->stop_reason) == VM_STOP_NONE) {
		if (atomic_load(&vm->pause_requested)) {
			/* First let KVM finish the exit handled last (the IN's value into RAX, the
			 * rest of a string I/O), so that the state a snapshot captures is whole:
			 * KVM_RUN with immediate_exit does it without entering the guest, or comes
			 * back with one more exit, handled like any other. A guest that keeps
			 * exiting parks unsettled after SETTLE_MAX (no snapshot until it ran on). */
			int r = vcpu_state_complete_exit(v->fd, v->run);
			if (r == -EAGAIN && settling++ < SETTLE_MAX)
				goto dispatch;
			if (r && r != -EAGAIN) {
				log_err("vcpu %u: KVM_RUN: %s", v->id, strerror(-r));
				vm_request_stop(vm, VM_STOP_ERROR);
				break;
			}
			v->unsettled = r == -EAGAIN;
			settling = 0;
			vcpu_park(v); /* pause.c: returns on resume or stop */
			continue;
		}
		if (atomic_exchange(&v->dump_requested, false))
			dump_state(v);
		if (ioctl(v->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				v->run->immediate_exit = 0;
				continue;
			}
			log_err("vcpu %u: KVM_RUN: %s", v->id, strerror(errno));
			vm_request_stop(vm, VM_STOP_ERROR);
			break;
		}
dispatch:;
		uint32_t reason = v->run->exit_reason;
		exit_fn fn = reason < ARRAY_SIZE(exit_handlers) ? exit_handlers[reason] : NULL;
		enum vm_stop_reason why = fn ? fn(v) : exit_unhandled(v);
		if (why != VM_STOP_NONE)
			vm_request_stop(vm, why);
	}
	return NULL;
}

/* The same stack in every libc (glibc's default is 8 MiB, musl's 128 KiB); only the pages
 * touched are resident. */
#define VCPU_STACK_SIZE (512 * KiB)

int vcpu_start(struct vcpu *v)
{
	pthread_attr_t attr;
	int ret = pthread_attr_init(&attr);

	if (ret)
		return -ret;
	ret = pthread_attr_setstacksize(&attr, VCPU_STACK_SIZE);
	if (!ret)
		ret = pthread_create(&v->thread, &attr, vcpu_thread, v);
	pthread_attr_destroy(&attr);
	if (ret)
		return -ret;
	v->thread_started = true;
	return 0;
}

/*
 * The boot vCPU's thread waits on the start gate, and the event loop that opens it is about to
 * block. Woken where it slept, the thread can wait for an idle CPU to come back or for a busy
 * one's time slice (milliseconds on a loaded or nested host); moved to this CPU first, it runs
 * as soon as the event loop blocks. It takes back its own affinity once it runs (confine).
 */
static void boot_vcpu_here(struct vcpu *v)
{
	int cpu = sched_getcpu();
	cpu_set_t one;

	if (!v->thread_started || cpu < 0 || cpu >= CPU_SETSIZE ||
	    pthread_getaffinity_np(v->thread, sizeof(v->affinity), &v->affinity) ||
	    !CPU_ISSET(cpu, &v->affinity) || CPU_COUNT(&v->affinity) < 2)
		return;
	CPU_ZERO(&one);
	CPU_SET(cpu, &one);
	v->restore_affinity = pthread_setaffinity_np(v->thread, sizeof(one), &one) == 0;
}

void vcpu_release_all(struct vm *vm)
{
	if (vm->vcpus && !atomic_load(&vm->vcpus_go))
		boot_vcpu_here(&vm->vcpus[0]);
	atomic_store(&vm->vcpus_go, 1);
	syscall(SYS_futex, &vm->vcpus_go, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

void vcpu_kick(struct vcpu *v)
{
	/* Before the start gate opens, the thread is not in KVM_RUN and checks for a stop once
	 * past the gate; its vCPU may not even exist yet (the set-up thread starts the threads
	 * first, vm.c), nor may the other threads have started: the set-up thread still writes
	 * thread_started and run. vcpus_go is set after prep_join, which orders those writes. */
	if (!atomic_load(&v->vm->vcpus_go) || !v->thread_started)
		return;
	/* immediate_exit covers the window where the thread is about to enter KVM_RUN; the
	 * signal covers a thread already inside it. */
	v->run->immediate_exit = 1;
	pthread_kill(v->thread, VCPU_KICK_SIGNAL);
}

void vcpu_join(struct vcpu *v)
{
	if (v->thread_started)
		pthread_join(v->thread, NULL);
	v->thread_started = false;
}
