/* density.c: start VMs one after another for N seconds, keep them all alive, sum their memory. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "bench.h"
#include "vmmproc.h"

static void usage(FILE *f)
{
	fputs("usage: density [--seconds S] [--max N] [--mem-mib M] [--at STR] -- VMM [ARGS...]\n"
	      "\n"
	      "Starts VMM again and again (each start waits for STR, default \"K\", on its serial\n"
	      "output, so a VM counts once its guest runs) until S seconds (default 10) have\n"
	      "passed or N VMs (default 1000) run, keeps them all running, then prints\n"
	      "  vms=COUNT seconds=T vms_per_s=R total_rss_kib total_pss_kib overhead_rss_kib\n"
	      "  stop=REASON\n"
	      "(memory summed over every VMM process from /proc/PID/smaps; overhead excludes the\n"
	      "guest RAM mapping of exactly M MiB, default 128) and kills every VMM it started.\n"
	      "Exits 1 when not even one VM started, or when a running VM died.\n",
	      f);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"seconds", required_argument, NULL, 's'}, {"max", required_argument, NULL, 'n'},
	    {"mem-mib", required_argument, NULL, 'm'}, {"at", required_argument, NULL, 'a'},
	    {"help", no_argument, NULL, 'h'},	       {NULL, 0, NULL, 0},
	};
	double seconds = 10;
	long max = 1000;
	unsigned long long mem_mib = 128;
	const char *at = "K";
	int c;

	while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		char *end = NULL;
		switch (c) {
		case 's':
			seconds = strtod(optarg, &end);
			break;
		case 'n':
			max = strtol(optarg, &end, 10);
			break;
		case 'm':
			mem_mib = strtoull(optarg, &end, 10);
			break;
		case 'a':
			at = optarg;
			end = (char *)"";
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
		if (!end || *end || seconds <= 0 || max <= 0 || mem_mib == 0 || !*at) {
			fprintf(stderr, "density: bad value '%s'\n", optarg);
			return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	char **vmm_argv = argv + optind;

	/* One pipe per VM stays open: raise the open-file limit as far as allowed. */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	struct vmm *vms = calloc((size_t)max, sizeof(*vms));
	if (!vms) {
		perror("density: calloc");
		return 1;
	}
	vmm_cleanup_on_signal();

	char stop[512] = "time up";
	long n = 0;
	int ret = 0;
	uint64_t t0 = now_ns(), t_end = t0 + (uint64_t)(seconds * 1e9), t_last = t0;
	while (n < max) {
		uint64_t t;
		int status = 0;
		if (now_ns() >= t_end)
			break;
		if (vmm_spawn(&vms[n], vmm_argv, VMM_OUT_PIPE, NULL)) {
			snprintf(stop, sizeof(stop), "fork/exec failed for VM %ld", n + 1);
			break;
		}
		int r = vmm_wait_for(&vms[n], at, t_end, &t, &status);
		if (r == -ETIMEDOUT) { /* started, but not running by the deadline: not counted */
			vmm_kill(&vms[n]);
			break;
		}
		if (r) {
			snprintf(stop, sizeof(stop), "VM %ld failed to start (%s)", n + 1,
				 r == -ECHILD ? "VMM exited" : strerror(-r));
			vmm_report_tail(&vms[n], "density: a VM failed");
			vmm_kill(&vms[n]);
			break;
		}
		t_last = t;
		n++;
	}
	if (n == max)
		snprintf(stop, sizeof(stop), "reached --max %ld", max);

	/* All alive? Then their memory. */
	unsigned long long rss = 0, pss = 0, over = 0;
	for (long i = 0; i < n; i++) {
		struct vmm_mem m;
		if (!vmm_alive(&vms[i]) || vmm_mem(vms[i].pid, mem_mib << 20, &m)) {
			fprintf(stderr, "density: VM %ld (pid %d) is no longer running\n", i + 1,
				(int)vms[i].pid);
			ret = 1;
			continue;
		}
		rss += m.total_rss_kib;
		pss += m.total_pss_kib;
		over += m.rss_kib;
	}
	double secs = (double)(t_last - t0) / 1e9;
	if (n == 0) {
		fprintf(stderr, "density: no VM started: %s\n", stop);
		ret = 1;
	} else {
		printf("vms=%ld seconds=%.3f vms_per_s=%.1f total_rss_kib=%llu total_pss_kib=%llu "
		       "overhead_rss_kib=%llu stop=%s\n",
		       n, secs, (double)n / secs, rss, pss, over, stop);
	}
	for (long i = 0; i < n; i++)
		vmm_kill(&vms[i]);
	free(vms);
	return ret;
}
