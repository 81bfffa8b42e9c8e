/* control.c: `kiln api` on the main thread: set-up, running the commands the API's threads
 * post (queue.c), InstanceStart, and the VM's run until it stops. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "api/api.h"
#include "api/snapshot_body.h"
#include "snapshot/config_state.h"
#include "util/file.h"
#include "vmm/restore.h"
#include "vmm/snapshot.h"
#include "vmm/vm.h"
#include "util/clock.h"

/* The main thread's state. */
struct control {
	struct api a;
	struct vm vm;
	struct vm_config vm_cfg; /* what the VM was built from (root drive first...) */
	struct vm_restore restore; /* PUT /snapshot/load: the snapshot the VM came from */
	bool restored;
	bool vm_live;
	int timer_fd; /* periodic metrics */
	int sig_fd;   /* before boot; vm_run takes signals after */
	int stop_signal;
};

static void set_state(struct api *a, enum api_state s)
{
	pthread_mutex_lock(&a->lock);
	a->state = s;
	pthread_mutex_unlock(&a->lock);
}

static void metrics_tick(void *opaque, uint32_t events)
{
	struct control *m = opaque;
	uint64_t n;
	(void)events;
	if (read(m->timer_fd, &n, sizeof(n)) == sizeof(n))
		(void)!api_metrics_write(&m->a, m->vm_live ? &m->vm : NULL);
}

int api_logger_apply(struct api *a, const struct api_logger_config *l, char *err, size_t n)
{
	if (!l->set)
		return 0;
	if (l->log_path) {
		/* Non-blocking, a FIFO without a reader included: a slow reader loses lines. */
		int fd = file_open_output(l->log_path);
		if (fd < 0) {
			snprintf(err, n, "logger: log_path: %s: %s", l->log_path,
				 api_output_strerror(fd));
			return -EINVAL;
		}
		a->log_fd = fd; /* the previous one stays open: other threads may hold it */
		log_set_fd(fd);
	}
	log_set_show(l->show_level, l->show_origin);
	log_set_filter(l->module);
	log_set_level(l->level);
	return 0;
}

static void cmd_ready(void *opaque, uint32_t events);

/* The VM is built (by InstanceStart or a snapshot load): hook the command queue and the
 * metrics timer into its event loop. */
static int go_live(struct control *m, char *err, size_t n)
{
	struct api *a = &m->a;
	int ret;

	if ((ret = vm_pause_init(&m->vm)) ||
	    (ret = event_add_control(&m->vm.ev, a->cmd_efd, EPOLLIN, cmd_ready, m)) ||
	    (m->timer_fd >= 0 &&
	     (ret = event_add_control(&m->vm.ev, m->timer_fd, EPOLLIN, metrics_tick, m)))) {
		snprintf(err, n, "event loop set-up: %s", strerror(-ret));
		vm_destroy(&m->vm);
		return ret;
	}
	m->vm_live = true;
	return 0;
}

/* InstanceStart: build the VM from the current config and hook the queue and the metrics
 * timer into its event loop. On failure the config stays as it was and nothing runs. */
static int start_vm(struct control *m, char *err, size_t n)
{
	struct api *a = &m->a;
	int ret;

	pthread_mutex_lock(&a->lock);
	if (a->state != API_NOT_STARTED) {
		pthread_mutex_unlock(&a->lock);
		snprintf(err, n, "InstanceStart: the microVM is already running");
		return -EINVAL;
	}
	if (!a->cfg.boot_source_set) {
		pthread_mutex_unlock(&a->lock);
		snprintf(err, n, "InstanceStart: no boot source (PUT /boot-source first)");
		return -EINVAL;
	}
	a->state = API_STARTING;
	ret = api_boot_config(&a->cfg, &m->vm_cfg);
	pthread_mutex_unlock(&a->lock);
	if (ret) {
		snprintf(err, n, "InstanceStart: out of memory");
		goto fail;
	}
	char msg[512];
	if ((ret = vm_config_validate(&m->vm_cfg, msg, sizeof(msg))) ||
	    (ret = vm_create(&m->vm, &m->vm_cfg, msg, sizeof(msg)))) {
		snprintf(err, n, "InstanceStart: %s", msg);
		vm_config_free(&m->vm_cfg);
		goto fail;
	}
	if ((ret = go_live(m, msg, sizeof(msg)))) {
		snprintf(err, n, "InstanceStart: %s", msg);
		vm_config_free(&m->vm_cfg);
		goto fail;
	}
	set_state(a, API_RUNNING);
	log_info("api: InstanceStart: %u vCPUs, %llu MiB", m->vm_cfg.cpus,
		 (unsigned long long)(m->vm_cfg.mem_size / MiB));
	return 0;
fail:
	set_state(a, API_NOT_STARTED);
	return ret ? ret : -EINVAL;
}

/* What makes a process no longer fresh for a snapshot load (Firecracker's rule: nothing but
 * the logger and the metrics configured before). */
static const char *configured(const struct api_config *c)
{
	if (c->boot_source_set)
		return "boot-source";
	if (c->machine_config_set)
		return "machine-config";
	if (c->vm.nr_disks)
		return "drives";
	if (c->vm.nr_nets)
		return "network-interfaces";
	if (c->vm.rng)
		return "entropy";
	if (c->serial_set)
		return "serial";
	return NULL;
}

/* PUT /snapshot/load: the VM the snapshot describes, its state applied, running or paused. */
static int load_snapshot(struct control *m, const struct api_snapshot_load *l, char *err,
			 size_t n)
{
	struct api *a = &m->a;
	struct vm_config shown; /* the restored configuration, for GET /vm/config */
	const char *what;
	char msg[400];
	int ret;

	pthread_mutex_lock(&a->lock);
	what = configured(&a->cfg);
	if (a->state != API_NOT_STARTED || what) {
		pthread_mutex_unlock(&a->lock);
		if (a->state != API_NOT_STARTED) /* after a load, cfg shows its VM */
			snprintf(err, n, "the microVM is already running");
		else
			snprintf(err, n,
				 "a snapshot loads only into a fresh microVM: %s was "
				 "configured",
				 what);
		return -EINVAL;
	}
	a->state = API_STARTING;
	pthread_mutex_unlock(&a->lock);
	ret = vm_restore_open(&m->restore, l->snapshot_path,
			      l->backend == API_MEM_FILE ? l->backend_path : NULL, msg, sizeof(msg));
	if (l->backend == API_MEM_UFFD) /* l outlives the restore: the command waits for it */
		m->restore.uffd_sock = l->backend_path;
	for (unsigned i = 0; !ret && i < l->nr_net_overrides; i++)
		ret = config_state_override_net(&m->restore.cfg, l->net_overrides[i].iface_id,
						l->net_overrides[i].host_dev_name, msg, sizeof(msg));
	if (!ret)
		ret = vm_config_validate(&m->restore.cfg, msg, sizeof(msg));
	if (!ret && (ret = api_vm_config_copy(&shown, &m->restore.cfg)))
		snprintf(msg, sizeof(msg), "out of memory");
	if (ret) {
		snprintf(err, n, "%s", msg);
		goto fail_restore;
	}
	m->restore.clock_realtime = l->clock_realtime;
	m->restore.track_dirty = l->track_dirty_pages;
	ret = vm_create_restore(&m->vm, &m->restore, msg, sizeof(msg));
	m->restore.uffd_sock = NULL; /* the command's, used only while the VM was built */
	if (ret) {
		snprintf(err, n, "%s", msg);
		goto fail_shown;
	}
	if ((ret = go_live(m, err, n)))
		goto fail_shown;
	if (!l->resume_vm && (ret = vm_pause_preboot(&m->vm)))
		log_warn("snapshot/load: holding device handlers: %s", strerror(-ret));
	m->restored = true;
	pthread_mutex_lock(&a->lock);
	api_config_take_restored(&a->cfg, &shown, l->track_dirty_pages);
	a->state = l->resume_vm ? API_RUNNING : API_PAUSED;
	pthread_mutex_unlock(&a->lock);
	log_info("api: snapshot loaded from %s: %u vCPUs, %llu MiB, %s", l->snapshot_path,
		 m->restore.cfg.cpus, (unsigned long long)(m->restore.cfg.mem_size / MiB),
		 l->resume_vm ? "running" : "paused");
	return 0;
fail_shown:
	vm_config_free(&shown);
fail_restore:
	vm_restore_free(&m->restore);
	set_state(a, API_NOT_STARTED);
	return ret ? ret : -EINVAL;
}

static int run_cmd(struct control *m, struct api_cmd *cmd)
{
	struct api *a = &m->a;
	int ret;

	if (cmd->type == API_CMD_START)
		return start_vm(m, cmd->err, sizeof(cmd->err));
	if (cmd->type == API_CMD_FLUSH_METRICS)
		return api_metrics_write(a, m->vm_live ? &m->vm : NULL);
	if (cmd->type == API_CMD_SNAPSHOT_LOAD)
		return load_snapshot(m, cmd->arg, cmd->err, sizeof(cmd->err));
	if (!m->vm_live) {
		snprintf(cmd->err, sizeof(cmd->err), "the microVM is not running");
		return -EINVAL;
	}
	switch (cmd->type) {
	case API_CMD_PAUSE:
		ret = vm_pause(&m->vm, cmd->err, sizeof(cmd->err));
		if (!ret)
			set_state(a, API_PAUSED);
		return ret;
	case API_CMD_RESUME:
		ret = vm_resume(&m->vm, cmd->err, sizeof(cmd->err));
		if (!ret)
			set_state(a, API_RUNNING);
		return ret;
	case API_CMD_CTRL_ALT_DEL:
		/* No PS/2 keyboard to send the keys through: a hard reset, which ends kiln as a
		 * guest reboot does (docs/api.md). */
		log_info("api: SendCtrlAltDel: resetting the VM");
		vm_request_stop(&m->vm, VM_STOP_RESET);
		return 0;
	case API_CMD_DRIVE_PATH: {
		char msg[sizeof(cmd->err) - 32];
		ret = vm_drive_update_path(&m->vm, cmd->id, cmd->path, msg, sizeof(msg));
		if (ret) {
			snprintf(cmd->err, sizeof(cmd->err), "drive: path_on_host: %s", msg);
			return ret;
		}
		pthread_mutex_lock(&a->lock);
		for (unsigned i = 0; i < a->cfg.vm.nr_disks; i++) {
			struct disk_config *d = &a->cfg.vm.disks[i];
			char *p = strcmp(d->id, cmd->id) == 0 ? strdup(cmd->path) : NULL;
			if (p) {
				free(d->path);
				d->path = p;
			}
		}
		pthread_mutex_unlock(&a->lock);
		return 0;
	}
	case API_CMD_SNAPSHOT_CREATE: {
		const struct api_snapshot_create *c = cmd->arg;
		return vm_snapshot_create(&m->vm, c->type == API_SNAPSHOT_DIFF, c->snapshot_path,
					  c->mem_file_path, cmd->err, sizeof(cmd->err));
	}
	default:
		snprintf(cmd->err, sizeof(cmd->err), "unknown command %d", (int)cmd->type);
		return -EINVAL;
	}
}

static void drain(struct control *m)
{
	struct api_cmd *cmd;
	uint64_t n;

	if (read(m->a.cmd_efd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		log_warn("api: command eventfd: %s", strerror(errno));
	while ((cmd = api_queue_pop(&m->a)))
		api_queue_finish(&m->a, cmd, run_cmd(m, cmd));
}

static void cmd_ready(void *opaque, uint32_t events)
{
	(void)events;
	drain(opaque);
}

/* Before boot: serve the queue, the metrics timer and the stop signals until a VM runs or a
 * signal ends the process. */
static void preboot_loop(struct control *m)
{
	struct pollfd p[3] = {
	    {.fd = m->a.cmd_efd, .events = POLLIN},
	    {.fd = m->sig_fd, .events = POLLIN},
	    {.fd = m->timer_fd, .events = POLLIN},
	};
	while (!m->vm_live) {
		if (poll(p, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			log_err("api: poll: %s", strerror(errno));
			return;
		}
		if (p[1].revents) {
			struct signalfd_siginfo si;
			if (read(m->sig_fd, &si, sizeof(si)) == sizeof(si)) {
				log_info("api: signal %u before boot: exiting", si.ssi_signo);
				m->stop_signal = (int)si.ssi_signo;
				return;
			}
		}
		if (p[2].revents)
			metrics_tick(m, 0);
		if (p[0].revents)
			drain(m);
	}
}

/* `kiln api`'s --log-path... and --metrics-path: what PUT /logger and PUT /metrics would do,
 * recorded in the configuration as they would be (GET /vm/config shows them; PUT /metrics
 * then answers "already configured", and PUT /logger updates the logger, as Firecracker's
 * routes do after these flags). */
static int cli_flags(struct api *a, const struct api_options *o, char *err, size_t n)
{
	char msg[500];

	if (o->logger.set) {
		struct api_logger_config l = o->logger;
		if (api_logger_apply(a, &l, msg, sizeof(msg))) {
			snprintf(err, n, "--log-path: %s", msg);
			return -EINVAL;
		}
		l.log_path = l.log_path ? strdup(l.log_path) : NULL;
		l.module = l.module ? strdup(l.module) : NULL;
		if ((o->logger.log_path && !l.log_path) || (o->logger.module && !l.module)) {
			free(l.log_path);
			snprintf(err, n, "--log-path: out of memory");
			return -ENOMEM;
		}
		a->cfg.logger = l;
		a->logger_from_cli = true;
		log_info("api: logger configured from the command line");
	}
	if (o->metrics_path) {
		a->metrics_fd = api_metrics_open(o->metrics_path, msg, sizeof(msg));
		if (a->metrics_fd < 0) {
			snprintf(err, n, "--metrics-path: %s", msg);
			return a->metrics_fd;
		}
		if (!(a->cfg.metrics_path = strdup(o->metrics_path))) {
			snprintf(err, n, "--metrics-path: out of memory");
			return -ENOMEM;
		}
	}
	return 0;
}

/* --start-time-us and --start-time-cpu-us: how long the process took to serve its socket
 * (Firecracker's process_startup_time_us and process_startup_time_cpu_us). */
static void startup_times(struct api *a, const struct api_options *o)
{
	struct timespec ts;

	if (o->start_time_set && !clock_gettime(CLOCK_MONOTONIC, &ts)) {
		uint64_t now = (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
		a->startup_us = now > o->start_time_us ? now - o->start_time_us : 0;
	}
	if (o->start_cpu_set && !clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)) {
		uint64_t now = (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
		a->startup_cpu_us = (now > o->start_time_cpu_us ? now - o->start_time_cpu_us : 0) +
				    o->parent_cpu_time_us;
	}
}

static int setup(struct control *m, const struct api_options *o, char *err, size_t n)
{
	struct api *a = &m->a;
	sigset_t mask;

	/* Stop signals come through a signalfd (here, then vm_run's), and the vCPU kick signal
	 * is for vCPU threads only: block them all before any thread (the API's) exists. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGUSR1);
	sigaddset(&mask, SIGRTMIN);
	pthread_sigmask(SIG_BLOCK, &mask, NULL);
	sigdelset(&mask, SIGUSR1);
	sigdelset(&mask, SIGRTMIN);
	m->sig_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	a->cmd_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	m->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (m->sig_fd < 0 || a->cmd_efd < 0 || m->timer_fd < 0) {
		snprintf(err, n, "api: set-up: %s", strerror(errno));
		return -errno;
	}
	struct itimerspec period = {.it_interval.tv_sec = API_METRICS_PERIOD_S,
				    .it_value.tv_sec = API_METRICS_PERIOD_S};
	timerfd_settime(m->timer_fd, 0, &period, NULL);

	if (o->boot_config) {
		/* What PUT /boot-source and /machine-config would have set, taken over whole. */
		vm_config_free(&a->cfg.vm);
		a->cfg.vm = *o->boot_config;
		vm_config_init(o->boot_config);
		a->cfg.boot_source_set = a->cfg.machine_config_set = true;
		a->cfg.track_dirty_pages = a->cfg.vm.track_dirty_pages;
	}
	if (o->config_file) {
		int ret = api_config_load_file(&a->cfg, o->config_file, err, n);
		if (ret)
			return ret;
		if ((o->logger.set && a->cfg.logger.set) ||
		    (o->metrics_path && a->cfg.metrics_path)) {
			snprintf(err, n, "%s: %s: also given on the command line (%s)",
				 o->config_file,
				 o->logger.set && a->cfg.logger.set ? "logger" : "metrics",
				 o->logger.set && a->cfg.logger.set ? "--log-path, --level..."
								    : "--metrics-path");
			return -EINVAL;
		}
		if ((ret = api_logger_apply(a, &a->cfg.logger, err, n)))
			return ret;
		if (a->cfg.metrics_path) {
			char msg[400];
			a->metrics_fd = api_metrics_open(a->cfg.metrics_path, msg, sizeof(msg));
			if (a->metrics_fd < 0) {
				snprintf(err, n, "metrics: metrics_path: %s", msg);
				return a->metrics_fd;
			}
		}
	}
	return cli_flags(a, o, err, n);
}

int api_run(const struct api_options *o)
{
	static struct control m; /* big (struct vm): not on the stack */
	struct api *a = &m.a;
	char err[600] = "";
	int status = 1;

	memset(&m, 0, sizeof(m));
	int ret = api_queue_init(a);
	if (ret) {
		fprintf(stderr, "kiln: api: set-up: %s\n", strerror(-ret));
		return 1;
	}
	api_config_init(&a->cfg);
	a->metrics_fd = a->log_fd = a->cmd_efd = m.timer_fd = m.sig_fd = -1;
	a->start_ms = clock_ms();
	a->body_max = o->body_max;
	snprintf(a->id, sizeof(a->id), "%s", o->id ? o->id : "anonymous-instance");
	log_set_id(a->id);

	/* With a config file (or `kiln run`'s configuration, or `kiln restore`'s snapshot) the VM
	 * exists before the socket does: the first GET / sees it. */
	if (setup(&m, o, err, sizeof(err)) ||
	    ((o->config_file || o->boot_config) && start_vm(&m, err, sizeof(err))) ||
	    (o->load && load_snapshot(&m, o->load, err, sizeof(err))) ||
	    (!o->no_api && api_server_start(a, o->sock_path, err, sizeof(err))))
		goto out;
	startup_times(a, o);
	preboot_loop(&m);
	if (m.vm_live) {
		close(m.sig_fd); /* vm_run reads the stop signals from here on */
		m.sig_fd = -1;
		uint64_t one = 1; /* commands queued behind InstanceStart */
		(void)!write(a->cmd_efd, &one, sizeof(one));
		enum vm_stop_reason why = vm_run(&m.vm);
		status = vm_exit_status(why, m.vm.stop_signal);
		log_info("api: the VM stopped (reason %d)", (int)why);
	} else {
		status = m.stop_signal ? 128 + m.stop_signal : 1;
	}
	err[0] = '\0';
out:
	if (err[0])
		fprintf(stderr, "kiln: %s\n", err);
	(void)!api_metrics_write(a, m.vm_live ? &m.vm : NULL); /* the final line */
	api_queue_shut(a);
	api_server_stop(a);
	if (m.vm_live) {
		vm_destroy(&m.vm);
		if (m.restored)
			vm_restore_free(&m.restore);
		else
			vm_config_free(&m.vm_cfg);
	}
	api_config_free(&a->cfg);
	if (a->metrics_fd >= 0)
		close(a->metrics_fd);
	if (a->cmd_efd >= 0)
		close(a->cmd_efd);
	if (m.timer_fd >= 0)
		close(m.timer_fd);
	if (m.sig_fd >= 0)
		close(m.sig_fd);
	api_queue_destroy(a);
	return status;
}
