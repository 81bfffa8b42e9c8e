/* startup.c: time a VMM from exec to strings on its serial output or to its exit; RSS, CPU. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "bench.h"
#include "vmmproc.h"

#define MAX_AT 8

static void usage(FILE *f)
{
	fputs("usage: startup [--at STR]... [--timeout SEC] [--settle SEC] [--mem-mib N] [--cpu]\n"
	      "               [--stderr FILE [--fail-stderr STR]] [--log FILE] -- VMM [ARGS...]\n"
	      "       startup --exit [--timeout SEC] [--stderr FILE] -- VMM [ARGS...]\n"
	      "\n"
	      "Starts VMM (stdin /dev/null, stdout a pipe) and prints one line per --at string\n"
	      "(default \"K\"), in order, when it has appeared on the VMM's stdout:\n"
	      "  at=I t_us=T                 time from just before fork+exec (CLOCK_MONOTONIC)\n"
	      "  rss_kib pss_kib uss_kib guest_rss_kib guest_maps  with --mem-mib: smaps,\n"
	      "                              every mapping of exactly N MiB taken as guest RAM\n"
	      "  utime_ms stime_ms guest_ms vmm_cpu_ms vcpu_stime_ms vcpu_threads\n"
	      "                              with --cpu: /proc/PID/stat, /proc/PID/task/*/stat\n"
	      "--settle waits (draining output) before the last string's memory sample. Then the\n"
	      "VMM is killed. --log copies the VMM's stdout to FILE. --exit: stdout to\n"
	      "/dev/null, prints t_us to the VMM's exit and its status; a status other than 0\n"
	      "fails. --fail-stderr: the run fails as soon as STR appears in the VMM's stderr\n"
	      "(for a VMM that stops its guest on an error but does not exit). Any failure prints\n"
	      "why and exits 1.\n",
	      f);
}

static int run_exit_mode(char **argv, double timeout_s, const char *err_path)
{
	struct vmm v;
	int status = 0;
	uint64_t t0 = now_ns();
	if (vmm_spawn(&v, argv, VMM_OUT_NULL, err_path))
		return 1;
	int r = vmm_wait_exit(&v, t0 + (uint64_t)(timeout_s * 1e9), &status);
	uint64_t t1 = now_ns();
	if (r) {
		fprintf(stderr, "startup: %s still running after %.0f s\n", argv[0], timeout_s);
		vmm_kill(&v);
		return 1;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "startup: %s ended with %s %d\n", argv[0],
			WIFEXITED(status) ? "status" : "signal",
			WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
		return 1;
	}
	printf("t_us=%.1f status=0\n", (double)(t1 - t0) / 1e3);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"at", required_argument, NULL, 'a'},
	    {"timeout", required_argument, NULL, 't'},
	    {"settle", required_argument, NULL, 's'},
	    {"mem-mib", required_argument, NULL, 'm'},
	    {"cpu", no_argument, NULL, 'c'},
	    {"stderr", required_argument, NULL, 'e'},
	    {"exit", no_argument, NULL, 'x'},
	    {"log", required_argument, NULL, 'l'},
	    {"fail-stderr", required_argument, NULL, 'f'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *at[MAX_AT];
	int nat = 0;
	double timeout_s = 30, settle_s = 0;
	unsigned long long mem_mib = 0;
	bool cpu = false, exit_mode = false;
	const char *err_path = NULL, *log_path = NULL, *fail_stderr = NULL;
	int c;

	while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		char *end;
		switch (c) {
		case 'a':
			if (nat == MAX_AT || !*optarg) {
				fprintf(stderr, "startup: at most %d non-empty --at strings\n",
					MAX_AT);
				return 2;
			}
			at[nat++] = optarg;
			break;
		case 't':
		case 's': {
			double d = strtod(optarg, &end);
			if (*end || d < 0) {
				fprintf(stderr, "startup: bad number of seconds '%s'\n", optarg);
				return 2;
			}
			*(c == 't' ? &timeout_s : &settle_s) = d;
			break;
		}
		case 'm':
			mem_mib = strtoull(optarg, &end, 10);
			if (*end || mem_mib == 0) {
				fprintf(stderr, "startup: bad --mem-mib '%s'\n", optarg);
				return 2;
			}
			break;
		case 'c':
			cpu = true;
			break;
		case 'e':
			err_path = optarg;
			break;
		case 'x':
			exit_mode = true;
			break;
		case 'l':
			log_path = optarg;
			break;
		case 'f':
			fail_stderr = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	char **vmm_argv = argv + optind;
	vmm_cleanup_on_signal();
	if (exit_mode)
		return run_exit_mode(vmm_argv, timeout_s, err_path);
	if (nat == 0)
		at[nat++] = "K";

	struct vmm v;
	int status = 0, ret = 1;
	uint64_t t0 = now_ns();
	if (vmm_spawn(&v, vmm_argv, VMM_OUT_PIPE, err_path))
		return 1;
	if (fail_stderr && !err_path) {
		fprintf(stderr, "startup: --fail-stderr needs --stderr FILE\n");
		vmm_kill(&v);
		return 2;
	}
	v.err_path = err_path;
	v.err_needle = fail_stderr;
	if (log_path) {
		v.log_fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (v.log_fd < 0)
			fprintf(stderr, "startup: --log %s: %s (going on without)\n", log_path,
				strerror(errno));
	}
	uint64_t deadline = t0 + (uint64_t)(timeout_s * 1e9);
	for (int i = 0; i < nat; i++) {
		uint64_t t;
		struct vmm_cpu cu;
		struct vmm_mem mu;
		char msg[512];
		int r = vmm_wait_for(&v, at[i], deadline, &t, &status);
		if (r) {
			if (r == -ECHILD)
				snprintf(msg, sizeof(msg),
					 "startup: %s exited (%s %d) before \"%s\"", vmm_argv[0],
					 WIFEXITED(status) ? "status" : "signal",
					 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status),
					 at[i]);
			else if (r == -EPROTO)
				snprintf(
				    msg, sizeof(msg),
				    "startup: %s wrote \"%s\" to its stderr (%s) before \"%s\"",
				    vmm_argv[0], fail_stderr, err_path, at[i]);
			else
				snprintf(msg, sizeof(msg), "startup: no \"%s\" from %s: %s", at[i],
					 vmm_argv[0], r == -ETIMEDOUT ? "timed out" : strerror(-r));
			vmm_report_tail(&v, msg);
			goto out;
		}
		/* CPU first (it moves), then memory after the settle time on the last string. */
		if (cpu && vmm_cpu(v.pid, &cu))
			goto out;
		if (mem_mib && i == nat - 1 && settle_s > 0 &&
		    vmm_drain(&v, now_ns() + (uint64_t)(settle_s * 1e9), &status)) {
			fprintf(stderr, "startup: %s exited during the settle time\n", vmm_argv[0]);
			goto out;
		}
		if (mem_mib && vmm_mem(v.pid, mem_mib << 20, &mu))
			goto out;
		printf("at=%d t_us=%.1f", i + 1, (double)(t - t0) / 1e3);
		if (mem_mib)
			printf(" rss_kib=%llu pss_kib=%llu uss_kib=%llu guest_rss_kib=%llu "
			       "guest_maps=%u",
			       (unsigned long long)mu.rss_kib, (unsigned long long)mu.pss_kib,
			       (unsigned long long)mu.uss_kib, (unsigned long long)mu.guest_rss_kib,
			       mu.guest_maps);
		if (cpu)
			printf(" utime_ms=%.0f stime_ms=%.0f guest_ms=%.0f vmm_cpu_ms=%.0f "
			       "vcpu_stime_ms=%.0f vcpu_threads=%u",
			       cu.utime_ms, cu.stime_ms, cu.guest_ms, cu.vmm_ms, cu.vcpu_stime_ms,
			       cu.vcpu_threads);
		printf("\n");
		fflush(stdout);
	}
	ret = 0;
out:
	vmm_kill(&v);
	if (v.log_fd >= 0)
		close(v.log_fd);
	return ret;
}
