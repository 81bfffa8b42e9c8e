/* metrics.c: one JSON line of counters (API, VMM, devices) per flush, to the metrics file. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api/api.h"
#include "api/json.h"
#include "util/file.h"
#include "virtio/net.h"
#include "vmm/vm.h"
#include "util/clock.h"

/*
 * A line is {"utc_timestamp_ms": T, "<section>": {...}, ...}. Each section is one function
 * in `sections` below reading counters the devices keep; add a device by adding a row. A
 * section whose device does not exist (before boot, or not configured) writes nothing.
 */

static uint64_t utc_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Resident set size in bytes from /proc/self/statm (0 if unreadable). */
static uint64_t rss_bytes(void)
{
	unsigned long size = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "re");

	if (!f)
		return 0;
	if (fscanf(f, "%lu %lu", &size, &resident) != 2)
		resident = 0;
	fclose(f);
	return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

static bool set_u64(json_t *o, const char *key, uint64_t v)
{
	return json_object_set_new(o, key, json_integer((json_int_t)v)) == 0;
}

static json_t *m_api(struct api *a, struct vm *vm)
{
	const struct api_counters *c = &a->counters;
	json_t *o = json_object();
	(void)vm;
	if (o && set_u64(o, "requests", atomic_load(&c->requests)) &&
	    set_u64(o, "responses_2xx", atomic_load(&c->responses_2xx)) &&
	    set_u64(o, "responses_4xx", atomic_load(&c->responses_4xx)) &&
	    set_u64(o, "responses_5xx", atomic_load(&c->responses_5xx)) &&
	    set_u64(o, "body_bytes", atomic_load(&c->body_bytes)) &&
	    set_u64(o, "body_too_large", atomic_load(&c->body_too_large)) &&
	    set_u64(o, "connections", atomic_load(&c->connections)) &&
	    set_u64(o, "connections_refused", atomic_load(&c->connections_refused)) &&
	    set_u64(o, "connections_timed_out", atomic_load(&c->connections_timed_out)) &&
	    set_u64(o, "deprecated_requests", atomic_load(&c->deprecated)) &&
	    set_u64(o, "process_startup_time_us", a->startup_us) &&
	    set_u64(o, "process_startup_time_cpu_us", a->startup_cpu_us))
		return o;
	json_decref(o);
	return NULL;
}

static json_t *m_vmm(struct api *a, struct vm *vm)
{
	json_t *o = json_object();
	if (o && set_u64(o, "rss_bytes", rss_bytes()) &&
	    set_u64(o, "uptime_ms", clock_ms() - a->start_ms) &&
	    set_u64(o, "vcpus", vm ? vm->nr_vcpus : 0) &&
	    json_object_set_new(o, "paused", json_boolean(vm && vm->paused)) == 0)
		return o;
	json_decref(o);
	return NULL;
}

static json_t *m_uart(struct api *a, struct vm *vm)
{
	struct serial *s;
	struct output_stats tx;
	uint64_t rx, overruns;
	(void)a;

	if (!vm)
		return json_null();
	s = &vm->serial;
	pthread_mutex_lock(&s->lock);
	rx = s->rx_bytes;
	overruns = s->rx_overruns;
	pthread_mutex_unlock(&s->lock);
	output_get_stats(&vm->serial_out, &tx);
	json_t *o = json_object();
	if (o && set_u64(o, "tx_bytes", tx.bytes) && set_u64(o, "rx_bytes", rx) &&
	    set_u64(o, "tx_errors", tx.errors) && set_u64(o, "rx_overruns", overruns) &&
	    set_u64(o, "tx_dropped", tx.dropped))
		return o;
	json_decref(o);
	return NULL;
}

/* virtio-console's output (hvc0), when the VM has a console. */
static json_t *m_console(struct api *a, struct vm *vm)
{
	struct output_stats tx;
	(void)a;

	if (!vm || !vm->console)
		return json_null();
	output_get_stats(virtio_console_output(vm->console), &tx);
	json_t *o = json_object();
	if (o && set_u64(o, "tx_bytes", tx.bytes) && set_u64(o, "tx_dropped", tx.dropped) &&
	    set_u64(o, "tx_errors", tx.errors))
		return o;
	json_decref(o);
	return NULL;
}

/* {"<drive id>": {counters}, ...}: the first cfg->nr_disks virtio devices are the disks, in
 * config order (vm.c). */
static json_t *m_block(struct api *a, struct vm *vm)
{
	(void)a;
	if (!vm || vm->cfg->nr_disks == 0)
		return json_null();
	json_t *o = json_object();
	for (unsigned i = 0; o && i < vm->cfg->nr_disks && i < vm->nr_virtio; i++) {
		struct virtio_blk_stats st;
		json_t *d = json_object();
		virtio_blk_get_stats(vm->virtio[i].dev, &st);
		if (!d || !set_u64(d, "read_reqs", st.read_reqs) ||
		    !set_u64(d, "write_reqs", st.write_reqs) ||
		    !set_u64(d, "flush_reqs", st.flush_reqs) ||
		    !set_u64(d, "discard_reqs", st.discard_reqs + st.write_zeroes_reqs) ||
		    !set_u64(d, "read_bytes", st.read_bytes) ||
		    !set_u64(d, "write_bytes", st.write_bytes) ||
		    !set_u64(d, "io_errors", st.io_errors) ||
		    !set_u64(d, "bad_requests", st.bad_requests) ||
		    json_object_set_new(o, vm->cfg->disks[i].id, d)) {
			json_decref(d);
			json_decref(o);
			return NULL;
		}
	}
	return o;
}

/* {"<interface id>": {counters}, ...}: the network interfaces follow the disks among the
 * virtio devices, in config order (vm.c). */
static json_t *m_net(struct api *a, struct vm *vm)
{
	(void)a;
	if (!vm || vm->cfg->nr_nets == 0)
		return json_null();
	json_t *o = json_object();
	for (unsigned i = 0; o && i < vm->cfg->nr_nets; i++) {
		unsigned v = vm->cfg->nr_disks + i;
		struct virtio_net_stats st;
		json_t *d;

		if (v >= vm->nr_virtio)
			break;
		virtio_net_get_stats(vm->virtio[v].dev, &st);
		d = json_object();
		if (!d || !set_u64(d, "rx_packets", st.rx_packets) ||
		    !set_u64(d, "rx_bytes", st.rx_bytes) ||
		    !set_u64(d, "rx_dropped", st.rx_dropped) ||
		    !set_u64(d, "rx_errors", st.rx_errors) ||
		    !set_u64(d, "tx_packets", st.tx_packets) ||
		    !set_u64(d, "tx_bytes", st.tx_bytes) ||
		    !set_u64(d, "tx_dropped", st.tx_dropped) ||
		    !set_u64(d, "tx_errors", st.tx_errors) ||
		    !set_u64(d, "link_down", st.link_down) ||
		    json_object_set_new(o, vm->cfg->nets[i].id, d)) {
			json_decref(d);
			json_decref(o);
			return NULL;
		}
	}
	return o;
}

/* Returns the section object, json_null() to leave the section out, or NULL (no memory). */
typedef json_t *(*metrics_section_fn)(struct api *a, struct vm *vm);

static const struct {
	const char *name;
	metrics_section_fn fn;
} sections[] = {
    {"api", m_api}, {"vmm", m_vmm}, {"uart", m_uart}, {"console", m_console},
    {"block", m_block}, {"net", m_net},
};

const char *api_output_strerror(int ret)
{
	return ret == -EMEDIUMTYPE ? "not a regular file, FIFO or character device" : strerror(-ret);
}

int api_metrics_open(const char *path, char *err, size_t errlen)
{
	struct api_json_quote q;
	/* Non-blocking, a FIFO without a reader included: a stalled reader loses lines instead
	 * of stalling the main thread, and the open itself never waits. */
	int fd = file_open_output(path);

	if (fd < 0)
		api_json_fail(err, errlen, "%s: %s", api_json_quote(&q, path),
			      api_output_strerror(fd));
	return fd;
}

int api_metrics_write(struct api *a, struct vm *vm)
{
	int fd;

	pthread_mutex_lock(&a->lock);
	fd = a->metrics_fd;
	pthread_mutex_unlock(&a->lock);
	if (fd < 0)
		return 0;

	json_t *root = json_object();
	if (!root || !set_u64(root, "utc_timestamp_ms", utc_ms())) {
		json_decref(root);
		return -ENOMEM;
	}
	for (size_t i = 0; i < ARRAY_SIZE(sections); i++) {
		json_t *s = sections[i].fn(a, vm);
		if (!s) {
			json_decref(root);
			return -ENOMEM;
		}
		if (json_is_null(s))
			continue;
		if (json_object_set_new(root, sections[i].name, s)) {
			json_decref(root);
			return -ENOMEM;
		}
	}
	char *line = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(root);
	if (!line)
		return -ENOMEM;
	size_t len = strlen(line);
	line[len] = '\n'; /* json_dumps' NUL becomes the newline: write len + 1 bytes */
	int ret = 0;
	ssize_t w = write(fd, line, len + 1);
	if (w < 0)
		ret = -errno;
	else if ((size_t)w != len + 1)
		ret = -EAGAIN;
	free(line);
	if (ret)
		log_warn_ratelimited("metrics: write: %s", strerror(-ret));
	return ret;
}
