/* routes.c: the API's route table and handlers (Firecracker's paths, bodies and statuses). */
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/api.h"
#include "api/json.h"
#include "api/snapshot_body.h"
#include "kiln-build.h"
#include "util/file.h"

/* What a handler sees: the {id} of the URL (or NULL) and the body. */
struct req {
	struct api *a;
	const char *id;
	const char *body;
	size_t len;
	const char *name; /* resource name for messages: "boot-source", "drive"... */
	char **out;	  /* response body (malloc'd JSON) */
	struct api_headers *hdr;
};

typedef unsigned (*handler_fn)(struct req *r);

char *api_fault(const char *msg)
{
	json_t *o = json_pack("{s:s}", "fault_message", msg);
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	return s;
}

static __printf(3, 4) unsigned fault(struct req *r, unsigned status, const char *fmt, ...)
{
	char msg[600];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	*r->out = api_fault(msg);
	return status;
}

static const char *state_name(enum api_state s)
{
	switch (s) {
	case API_RUNNING:
		return "Running";
	case API_PAUSED:
		return "Paused";
	case API_EXITING:
		return "Exiting";
	default:
		return "Not started";
	}
}

/* ---- GET ------------------------------------------------------------------------------ */

static unsigned get_instance(struct req *r)
{
	pthread_mutex_lock(&r->a->lock);
	json_t *o = json_pack("{s:s,s:s,s:s,s:s}", "id", r->a->id, "state", state_name(r->a->state),
			      "vmm_version", KILN_VERSION, "app_name", "kiln");
	pthread_mutex_unlock(&r->a->lock);
	*r->out = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	return *r->out ? 200 : 500;
}

static unsigned get_version(struct req *r)
{
	json_t *o = json_pack("{s:s,s:s}", "firecracker_version", KILN_VERSION, "vmm_version",
			      KILN_VERSION);
	*r->out = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	return *r->out ? 200 : 500;
}

static unsigned get_machine(struct req *r)
{
	pthread_mutex_lock(&r->a->lock);
	*r->out = api_export_machine_config(&r->a->cfg);
	pthread_mutex_unlock(&r->a->lock);
	return *r->out ? 200 : 500;
}

static unsigned get_vm_config(struct req *r)
{
	pthread_mutex_lock(&r->a->lock);
	*r->out = api_export_config(&r->a->cfg);
	pthread_mutex_unlock(&r->a->lock);
	return *r->out ? 200 : 500;
}

/* ---- pre-boot configuration ----------------------------------------------------------- */

static unsigned not_after_boot(struct req *r)
{
	return fault(r, 400, "%s: cannot be changed after InstanceStart (pre-boot only)", r->name);
}

static unsigned apply(struct req *r, enum api_body kind)
{
	char err[512];
	unsigned status = 204;

	pthread_mutex_lock(&r->a->lock);
	if (r->a->state != API_NOT_STARTED) {
		pthread_mutex_unlock(&r->a->lock);
		return not_after_boot(r);
	}
	int ret = api_apply_body(&r->a->cfg, kind, r->id, r->body, r->len, err, sizeof(err));
	pthread_mutex_unlock(&r->a->lock);
	if (ret == -ENOMEM)
		status = fault(r, 500, "%s: out of memory", r->name);
	else if (ret)
		status = fault(r, 400, "%s", err);
	return status;
}

/* A request that used a deprecated field is answered with "Deprecation: true" and logged, as
 * Firecracker does. */
static void deprecated(struct req *r, const char *what)
{
	r->hdr->deprecation = true;
	atomic_fetch_add(&r->a->counters.deprecated, 1);
	log_warn("api: %s", what);
}

/* machine-config: Firecracker deprecates cpu_template (kiln takes only "None"); a body that
 * applied with one gets the header. */
static unsigned apply_machine(struct req *r, enum api_body kind, const char *what)
{
	unsigned status = apply(r, kind);

	if (status != 204)
		return status;
	json_t *o = json_loadb(r->body, r->len, 0, NULL);
	json_t *t = json_object_get(o, "cpu_template");
	if (t && !json_is_null(t))
		deprecated(r, what);
	json_decref(o);
	return status;
}

static unsigned put_boot_source(struct req *r) { return apply(r, API_BODY_BOOT_SOURCE); }
static unsigned put_machine(struct req *r)
{
	return apply_machine(r, API_BODY_MACHINE_CONFIG,
			     "PUT /machine-config: cpu_template is deprecated");
}
static unsigned patch_machine(struct req *r)
{
	return apply_machine(r, API_BODY_MACHINE_PATCH,
			     "PATCH /machine-config: cpu_template is deprecated");
}
static unsigned put_drive(struct req *r) { return apply(r, API_BODY_DRIVE); }
static unsigned put_net(struct req *r) { return apply(r, API_BODY_NET); }
static unsigned put_entropy(struct req *r) { return apply(r, API_BODY_ENTROPY); }

/* Parse into a scratch config so that a body that parses but cannot be applied (a file that
 * cannot be opened) changes nothing. */
static int scratch(struct req *r, enum api_body kind, struct api_config *tmp, unsigned *status)
{
	char err[512];

	api_config_init(tmp);
	int ret = api_apply_body(tmp, kind, NULL, r->body, r->len, err, sizeof(err));
	if (ret) {
		*status = ret == -ENOMEM ? fault(r, 500, "%s: out of memory", r->name)
					 : fault(r, 400, "%s", err);
		api_config_free(tmp);
	}
	return ret;
}

/* PUT /serial. The state and the body are checked first; only then is the file touched:
 * opened (created if missing) the way InstanceStart will open it, without blocking on a FIFO,
 * so that a path kiln cannot write to is a 400 now rather than a failed InstanceStart. */
static unsigned put_serial(struct req *r)
{
	struct api_config tmp;
	unsigned status = 204;

	pthread_mutex_lock(&r->a->lock);
	if (r->a->state != API_NOT_STARTED) {
		pthread_mutex_unlock(&r->a->lock);
		return not_after_boot(r);
	}
	if (scratch(r, API_BODY_SERIAL, &tmp, &status)) {
		pthread_mutex_unlock(&r->a->lock);
		return status;
	}
	if (tmp.vm.serial_path) {
		int fd = file_open_output(tmp.vm.serial_path);
		if (fd < 0)
			status = fault(r, 400, "serial: serial_out_path: %s: %s",
				       tmp.vm.serial_path, api_output_strerror(fd));
		else
			close(fd);
	}
	if (status == 204) {
		struct vm_config *v = &r->a->cfg.vm;
		free(v->serial_path);
		v->serial_path = tmp.vm.serial_path;
		v->serial_mode = tmp.vm.serial_mode;
		tmp.vm.serial_path = NULL;
		r->a->cfg.serial_set = true;
	}
	pthread_mutex_unlock(&r->a->lock);
	api_config_free(&tmp);
	return status;
}

/* After `kiln api --log-path...`, as Firecracker's LOGGER.update: the body's fields replace
 * the logger's, the others stay, and the level is the body's or Info. */
static void logger_merge(struct api_logger_config *l, struct api_logger_config *old)
{
	if (!(l->given & API_LOG_GIVEN_SHOW_LEVEL))
		l->show_level = old->show_level;
	if (!(l->given & API_LOG_GIVEN_SHOW_ORIGIN))
		l->show_origin = old->show_origin;
	if (!(l->given & API_LOG_GIVEN_MODULE))
		l->module = old->module; /* borrowed: put_logger takes it over or gives it back */
}

static unsigned put_logger(struct req *r)
{
	struct api_config tmp;
	char err[600];
	unsigned status = 204;

	if (scratch(r, API_BODY_LOGGER, &tmp, &status))
		return status;
	pthread_mutex_lock(&r->a->lock);
	if (r->a->state != API_NOT_STARTED)
		status = not_after_boot(r);
	else if (r->a->cfg.logger.set && !r->a->logger_from_cli)
		status = fault(r, 400, "logger: already configured (the logger is set up once)");
	if (status == 204 && r->a->logger_from_cli)
		logger_merge(&tmp.logger, &r->a->cfg.logger);
	if (status == 204 && api_logger_apply(r->a, &tmp.logger, err, sizeof(err)))
		status = fault(r, 400, "%s", err);
	if (tmp.logger.module && tmp.logger.module == r->a->cfg.logger.module) {
		if (status == 204)
			r->a->cfg.logger.module = NULL; /* taken over */
		else
			tmp.logger.module = NULL; /* given back */
	}
	if (status == 204) {
		struct api_logger_config *l = &r->a->cfg.logger;
		if (!tmp.logger.log_path) { /* the file stays (api_logger_apply kept it) */
			tmp.logger.log_path = l->log_path;
			l->log_path = NULL;
		}
		free(l->log_path);
		free(l->module);
		*l = tmp.logger;
		tmp.logger.log_path = tmp.logger.module = NULL;
	}
	pthread_mutex_unlock(&r->a->lock);
	api_config_free(&tmp);
	if (status == 204)
		log_info("api: logger configured");
	return status;
}

static unsigned put_metrics(struct req *r)
{
	struct api_config tmp;
	char err[512];
	unsigned status = 204;

	if (scratch(r, API_BODY_METRICS, &tmp, &status))
		return status;
	pthread_mutex_lock(&r->a->lock);
	if (r->a->state != API_NOT_STARTED) {
		status = not_after_boot(r);
	} else if (r->a->metrics_fd >= 0) {
		status = fault(r, 400, "metrics: already configured (metrics are set up once)");
	} else {
		int fd = api_metrics_open(tmp.metrics_path, err, sizeof(err));
		if (fd < 0) {
			status = fault(r, 400, "metrics: metrics_path: %s", err);
		} else {
			r->a->metrics_fd = fd;
			free(r->a->cfg.metrics_path);
			r->a->cfg.metrics_path = tmp.metrics_path;
			tmp.metrics_path = NULL;
		}
	}
	pthread_mutex_unlock(&r->a->lock);
	api_config_free(&tmp);
	return status;
}

/* ---- actions and the running VM -------------------------------------------------------- */

/* Post cmd to the main thread and answer from its result. A failed command's 400 carries
 * its own message, after `what` when name_in_fault (the snapshot commands' messages do not
 * name their resource). */
static unsigned submit(struct req *r, struct api_cmd *cmd, const char *what, bool name_in_fault)
{
	unsigned status = 204;
	int ret = api_post(r->a, cmd);

	if (ret == -ESHUTDOWN)
		status = fault(r, 400, "%s: the microVM has stopped", what);
	else if (ret == -ECANCELED)
		status = fault(r, 503,
			       "%s: the main thread did not take the request within %u ms; it was "
			       "not run",
			       what, r->a->post_timeout_ms);
	else if (ret == -ETIMEDOUT)
		status = fault(r, 504,
			       "%s: the main thread did not finish the request within %u ms; it "
			       "goes on (GET / and the log tell the outcome)",
			       what, r->a->post_timeout_ms);
	else if (ret)
		status = fault(r, 400, "%s%s%s", name_in_fault ? what : "", name_in_fault ? ": " : "",
			       cmd->err[0] ? cmd->err : strerror(-ret));
	api_cmd_put(r->a, cmd);
	return status;
}

/* Post a new command of this type (with path for a drive update, taken over) to the main
 * thread and answer from its result. */
static unsigned post(struct req *r, enum api_cmd_type type, char *path, const char *what)
{
	struct api_cmd *cmd = api_cmd_new(type);

	if (!cmd) {
		free(path);
		return fault(r, 500, "%s: out of memory", what);
	}
	cmd->path = path;
	if (r->id)
		snprintf(cmd->id, sizeof(cmd->id), "%s", r->id);
	return submit(r, cmd, what, false);
}

static enum api_state state_of(struct api *a)
{
	pthread_mutex_lock(&a->lock);
	enum api_state s = a->state;
	pthread_mutex_unlock(&a->lock);
	return s;
}

static unsigned put_actions(struct req *r)
{
	enum api_action act;
	char err[512];

	if (api_parse_action(r->body, r->len, &act, err, sizeof(err)))
		return fault(r, 400, "%s", err);
	enum api_state s = state_of(r->a);
	bool running = s == API_RUNNING || s == API_PAUSED;
	switch (act) {
	case API_ACTION_INSTANCE_START:
		if (s != API_NOT_STARTED)
			return fault(r, 400, "actions: InstanceStart: the microVM is already %s",
				     running ? "running" : "stopping");
		return post(r, API_CMD_START, NULL, "actions: InstanceStart");
	case API_ACTION_FLUSH_METRICS:
		pthread_mutex_lock(&r->a->lock);
		bool have = r->a->metrics_fd >= 0;
		pthread_mutex_unlock(&r->a->lock);
		if (!have)
			return fault(r, 400,
				     "actions: FlushMetrics: metrics are not configured (PUT "
				     "/metrics first)");
		return post(r, API_CMD_FLUSH_METRICS, NULL, "actions: FlushMetrics");
	case API_ACTION_CTRL_ALT_DEL:
		if (!running)
			return fault(r, 400, "actions: SendCtrlAltDel: the microVM is not running");
		return post(r, API_CMD_CTRL_ALT_DEL, NULL, "actions: SendCtrlAltDel");
	}
	return fault(r, 400, "actions: action_type: unknown action");
}

static unsigned patch_vm(struct req *r)
{
	char err[512];
	bool pause;

	if (api_parse_vm_state(r->body, r->len, &pause, err, sizeof(err)))
		return fault(r, 400, "%s", err);
	enum api_state s = state_of(r->a);
	if (s != API_RUNNING && s != API_PAUSED)
		return fault(r, 400, "vm: state: the microVM is not running (InstanceStart first)");
	return post(r, pause ? API_CMD_PAUSE : API_CMD_RESUME, NULL, "vm");
}

/* PATCH /drives/{id}: before InstanceStart it changes the stored drive; after, the running
 * device switches to the new file (vm_drive_update_path, on the main thread). */
static unsigned patch_drive(struct req *r)
{
	char err[512];
	char *path = NULL;

	pthread_mutex_lock(&r->a->lock);
	enum api_state s = r->a->state;
	int ret =
	    api_parse_drive_patch(&r->a->cfg, r->id, r->body, r->len, &path, err, sizeof(err));
	if (!ret && path && s == API_NOT_STARTED) {
		for (unsigned i = 0; i < r->a->cfg.vm.nr_disks; i++) {
			struct disk_config *d = &r->a->cfg.vm.disks[i];
			if (strcmp(d->id, r->id) == 0) {
				free(d->path);
				d->path = path;
				path = NULL;
			}
		}
	}
	pthread_mutex_unlock(&r->a->lock);
	if (ret)
		return fault(r, ret == -ENOMEM ? 500 : 400, "%s",
			     ret == -ENOMEM ? "out of memory" : err);
	if (!path)
		return 204; /* applied before boot, or nothing to change */
	return post(r, API_CMD_DRIVE_PATH, path, "drive");
}

/* ---- snapshots (docs/snapshot.md) ---------------------------------------------------------- */

/* Post a snapshot command whose parsed request (arg, freed with arg_free) it takes over. */
static unsigned post_arg(struct req *r, enum api_cmd_type type, void *arg,
			 void (*arg_free)(void *), const char *what)
{
	struct api_cmd *cmd = api_cmd_new(type);

	if (!cmd) {
		arg_free(arg);
		free(arg);
		return fault(r, 500, "%s: out of memory", what);
	}
	cmd->arg = arg;
	cmd->arg_free = arg_free;
	return submit(r, cmd, what, true);
}

static void free_create(void *p) { api_snapshot_create_free(p); }
static void free_load(void *p) { api_snapshot_load_free(p); }

static unsigned put_snapshot_create(struct req *r)
{
	struct api_snapshot_create *c = calloc(1, sizeof(*c));
	char err[512];

	if (!c)
		return fault(r, 500, "snapshot/create: out of memory");
	if (api_parse_snapshot_create(r->body, r->len, c, err, sizeof(err))) {
		free(c);
		return fault(r, 400, "%s", err);
	}
	enum api_state s = state_of(r->a);
	if (s != API_PAUSED) {
		free_create(c);
		free(c);
		return fault(r, 400, "snapshot/create: the microVM must be paused first (PATCH /vm "
				     "{\"state\": \"Paused\"}); it is %s", state_name(s));
	}
	return post_arg(r, API_CMD_SNAPSHOT_CREATE, c, free_create, "snapshot/create");
}

static unsigned put_snapshot_load(struct req *r)
{
	struct api_snapshot_load *l = calloc(1, sizeof(*l));
	char err[512];

	if (!l)
		return fault(r, 500, "snapshot/load: out of memory");
	if (api_parse_snapshot_load(r->body, r->len, l, err, sizeof(err))) {
		free(l);
		return fault(r, 400, "%s", err);
	}
	/* From here on the answer carries the header, whether the load works or not. */
	if (l->deprecated)
		deprecated(r, "PUT /snapshot/load: mem_file_path and enable_diff_snapshots are "
			      "deprecated (mem_backend, track_dirty_pages)");
	return post_arg(r, API_CMD_SNAPSHOT_LOAD, l, free_load, "snapshot/load");
}

/* ---- the table ------------------------------------------------------------------------ */

enum { M_GET, M_PUT, M_PATCH, M__COUNT };
static const char *const method_names[M__COUNT] = {"GET", "PUT", "PATCH"};

static const struct route {
	const char *path; /* exact path, or the prefix before "/{id}" */
	bool has_id;
	const char *name; /* in messages */
	handler_fn fn[M__COUNT];
	const char *allow; /* Allow header for 405 */
} routes[] = {
    {"/", false, "instance", {get_instance}, "GET"},
    {"/version", false, "version", {get_version}, "GET"},
    {"/boot-source", false, "boot-source", {[M_PUT] = put_boot_source}, "PUT"},
    {"/machine-config",
     false,
     "machine-config",
     {get_machine, put_machine, patch_machine},
     "GET, PUT, PATCH"},
    {"/drives", true, "drive", {[M_PUT] = put_drive, [M_PATCH] = patch_drive}, "PUT, PATCH"},
    {"/network-interfaces", true, "network-interface", {[M_PUT] = put_net}, "PUT"},
    {"/entropy", false, "entropy", {[M_PUT] = put_entropy}, "PUT"},
    {"/serial", false, "serial", {[M_PUT] = put_serial}, "PUT"},
    {"/logger", false, "logger", {[M_PUT] = put_logger}, "PUT"},
    {"/metrics", false, "metrics", {[M_PUT] = put_metrics}, "PUT"},
    {"/actions", false, "actions", {[M_PUT] = put_actions}, "PUT"},
    {"/vm", false, "vm", {[M_PATCH] = patch_vm}, "PATCH"},
    {"/vm/config", false, "vm/config", {get_vm_config}, "GET"},
    {"/snapshot/create", false, "snapshot/create", {[M_PUT] = put_snapshot_create}, "PUT"},
    {"/snapshot/load", false, "snapshot/load", {[M_PUT] = put_snapshot_load}, "PUT"},
};

unsigned api_route(struct api *a, const char *method, const char *url, const char *body, size_t len,
		   char **out, struct api_headers *hdr)
{
	struct req r = {.a = a, .body = body, .len = len, .out = out, .hdr = hdr};
	struct api_json_quote q;
	char id[VM_CONFIG_ID_MAX + 1];

	*out = NULL;
	*hdr = (struct api_headers){0};
	for (size_t i = 0; i < ARRAY_SIZE(routes); i++) {
		const struct route *rt = &routes[i];
		size_t n = strlen(rt->path);
		if (strncmp(url, rt->path, n) != 0)
			continue;
		if (!rt->has_id && url[n] != '\0')
			continue;
		if (rt->has_id) {
			const char *rest = url + n;
			if (rest[0] != '/' || strchr(rest + 1, '/'))
				continue;
			rest++;
			if (!api_id_valid(rest))
				return fault(&r, 400,
					     "%s: id in the URL: \"%s\" is not a valid id "
					     "(1-%u characters of A-Z a-z 0-9 _ -)",
					     rt->name, api_json_quote(&q, rest),
					     VM_CONFIG_ID_MAX - 1);
			snprintf(id, sizeof(id), "%s", rest);
			r.id = id;
		}
		r.name = rt->name;
		for (unsigned m = 0; m < M__COUNT; m++)
			if (strcmp(method, method_names[m]) == 0 && rt->fn[m])
				return rt->fn[m](&r);
		hdr->allow = rt->allow;
		return fault(&r, 405, "%s: method %s is not allowed (allowed: %s)", rt->name,
			     api_json_quote(&q, method), rt->allow);
	}
	return fault(&r, 404, "no such resource: %s", api_json_quote(&q, url));
}
