/* api.h: kiln's Firecracker-compatible REST API (HTTP on a Unix socket) and JSON config files. */
#pragma once

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "util/compiler.h"
#include "util/log.h"

/*
 * Threads. The HTTP server (libmicrohttpd) gives each connection a thread of its own (named
 * "api"), so a client that is slow to send, slow to read or waiting for the main thread holds
 * only its own connection. Those threads read and change the pre-boot configuration (struct
 * api_config) under api->lock, and never touch a running VM: actions that need the VM
 * (InstanceStart, pause/resume, FlushMetrics, SendCtrlAltDel, PATCH /drives) are posted to
 * the main thread as a struct api_cmd through a queue and an eventfd, and the connection's
 * thread waits for the result, at most API_POST_TIMEOUT_MS (queue.c). The main thread serves
 * that queue one command at a time, from a small poll loop before boot and from the VM's
 * event loop (a control handler, so it also runs while the VM is paused) after.
 */

/* How long a request waits for the main thread. A command still queued then is taken off the
 * queue and never runs (503); one the main thread has begun runs to its end, and the client
 * has had 504 (queue.c). */
#define API_POST_TIMEOUT_MS 5000
/* Limits of the HTTP server (server.c): connections open at once (one more is closed at
 * once), and the time a connection gets to send a whole request (headers and body), to take
 * its response, and to send the next request on a kept-alive connection. The time a handler
 * waits for the main thread is not counted. */
#define API_MAX_CONNECTIONS 64
#define API_IO_TIMEOUT_MS 10000
#define API_BODY_MAX (64 * 1024) /* larger request bodies get 413 (the default) */
/* The bounds of `kiln api --http-api-max-payload-size`: below the minimum not even a drive
 * with a short path fits; above the maximum 64 connections could hold 64 MiB of bodies. */
#define API_BODY_MAX_MIN 256
#define API_BODY_MAX_MAX (1024 * 1024)
#define API_PATH_MAX 4096	      /* host paths, bytes including NUL */
#define API_BOOT_ARGS_MAX 4096	      /* boot_args, bytes including NUL */
#define API_DEFAULT_MEM_MIB 128	      /* Firecracker's default machine-config */
#define API_MAX_MEM_MIB (1024 * 1024) /* 1 TiB */
#define API_PARTUUID_MAX 64
#define API_METRICS_PERIOD_S 60

enum api_state {
	API_NOT_STARTED = 0,
	API_STARTING, /* InstanceStart in progress: shown as "Not started" */
	API_RUNNING,
	API_PAUSED,
	API_EXITING, /* the VM has stopped; the process is about to exit */
};

struct api_logger_config {
	bool set;
	char *log_path; /* NULL: keep stderr */
	enum log_level level;
	bool show_level;
	bool show_origin;
	char *module; /* NULL: no filter */
	unsigned given; /* API_LOG_GIVEN_*: the fields a PUT /logger body had */
};

#define API_LOG_GIVEN_PATH 1u
#define API_LOG_GIVEN_SHOW_LEVEL 2u
#define API_LOG_GIVEN_SHOW_ORIGIN 4u
#define API_LOG_GIVEN_MODULE 8u

/* Everything a config file or the API can set: the VM itself plus what vm_config does not
 * carry. Owned strings are freed by api_config_free(). */
struct api_config {
	struct vm_config vm;
	bool boot_source_set;
	bool machine_config_set;
	bool track_dirty_pages;
	bool serial_set; /* PUT /serial given: vm.serial_mode is SERIAL_FILE */
	char partuuid[VM_CONFIG_MAX_DISKS][API_PARTUUID_MAX]; /* parallel to vm.disks */
	struct api_logger_config logger;
	char *metrics_path; /* NULL: no metrics */
};

/* Which request body a parser reads (also the fuzzer's selector). */
enum api_body {
	API_BODY_BOOT_SOURCE,
	API_BODY_MACHINE_CONFIG, /* PUT: required fields, the rest reset to defaults */
	API_BODY_MACHINE_PATCH,	 /* PATCH: only what is given changes */
	API_BODY_DRIVE,		 /* PUT /drives/{id} */
	API_BODY_DRIVE_PATCH,	 /* PATCH /drives/{id}: checked only, see api_parse_drive_patch */
	API_BODY_NET,		 /* PUT /network-interfaces/{id} */
	API_BODY_ENTROPY,
	API_BODY_SERIAL,
	API_BODY_LOGGER,
	API_BODY_METRICS,
	API_BODY_ACTION,      /* checked only: api_parse_action */
	API_BODY_VM_STATE,    /* checked only: api_parse_vm_state */
	API_BODY_CONFIG_FILE, /* a whole config file */
	API_BODY__COUNT,
};

enum api_action { API_ACTION_INSTANCE_START, API_ACTION_FLUSH_METRICS, API_ACTION_CTRL_ALT_DEL };

/* ---- json.c: request bodies and config files -> struct api_config -------------------- */

/* Defaults of a VM configured through the API (Firecracker's: 1 vCPU, 128 MiB, no entropy
 * device, serial on stdout). */
void api_config_init(struct api_config *c);
void api_config_free(struct api_config *c);
/* Deep copy; returns 0 or -ENOMEM (dst then holds nothing to free). */
int api_config_copy(struct api_config *dst, const struct api_config *src) __must_check;
/* Deep copy of a VM's configuration; 0 or -ENOMEM (dst then holds nothing to free). */
int api_vm_config_copy(struct vm_config *dst, const struct vm_config *src) __must_check;
/* After a snapshot load: c shows the restored VM, whose configuration vm (the snapshot's, with
 * the load's overrides, copied by api_vm_config_copy) it takes over; the logger and metrics
 * stay. There is no boot source (a restore loads no kernel) and no serial section (the
 * restored serial port writes to stdout). */
void api_config_take_restored(struct api_config *c, struct vm_config *vm, bool track_dirty);

/* Parse body (len bytes, need not be NUL-terminated) of the given kind and apply it to c.
 * id is the {id} of the URL for drives and network interfaces (else NULL). Either the whole
 * body applies or nothing does. On error returns -EINVAL (or -ENOMEM) with a one-line
 * message naming the field in err. Paths are checked against the host (kernel, initrd and
 * drive files must exist); nothing is opened or created. */
int api_apply_body(struct api_config *c, enum api_body kind, const char *id, const char *body,
		   size_t len, char *err, size_t errlen) __must_check;
/* A PATCH /drives body: drive_id must match id and name a configured drive; path_on_host
 * (optional) must exist. *path is set to a malloc'd copy or NULL when not given. */
int api_parse_drive_patch(const struct api_config *c, const char *id, const char *body, size_t len,
			  char **path, char *err, size_t errlen) __must_check;
int api_parse_action(const char *body, size_t len, enum api_action *out, char *err,
		     size_t errlen) __must_check;
/* PATCH /vm: *pause is true for "Paused", false for "Resumed". */
int api_parse_vm_state(const char *body, size_t len, bool *pause, char *err,
		       size_t errlen) __must_check;
/* Read a config file (same schema as GET /vm/config) into c, which must hold defaults; on
 * error c is unchanged and the message names the file. */
int api_config_load_file(struct api_config *c, const char *path, char *err,
			 size_t errlen) __must_check;
/* The same from text; `what` names the text in messages about it as a whole. */
int api_config_load_text(struct api_config *c, const char *text, size_t len, const char *what,
			 char *err, size_t errlen) __must_check;
/* A logger level as PUT /logger takes it (Error, Warning, Info, Debug, Trace, Off, Warn; any
 * case). Returns 0 or -EINVAL. */
int api_log_level_parse(const char *s, enum log_level *out) __must_check;
/* Is s a valid drive or interface id (1-63 of [A-Za-z0-9_-])? */
bool api_id_valid(const char *s);

/* ---- export.c: struct api_config -> JSON text (malloc'd, NULL on ENOMEM) ------------- */

char *api_export_config(const struct api_config *c);
char *api_export_machine_config(const struct api_config *c);
/* The VM's own config with what the API adds at boot: root drive first and "root=" on the
 * kernel command line. Returns 0 or -ENOMEM. */
int api_boot_config(const struct api_config *c, struct vm_config *out) __must_check;

/* ---- the process: control.c (main thread), server.c (HTTP), routes.c ----------------- */

struct api_snapshot_load;

/* At most one of config_file, boot_config and load: the VM that runs at once. */
struct api_options {
	const char *sock_path;	 /* NULL with no_api */
	const char *id;		 /* instance id, default "anonymous-instance" */
	const char *config_file; /* NULL: configure through the API */
	/* `kiln run --api-sock`: a checked configuration booted at once, as with config_file;
	 * api_run takes over what it owns (it is left holding defaults). */
	struct vm_config *boot_config;
	/* `kiln restore`: this snapshot is loaded at once, as PUT /snapshot/load would (it must
	 * outlive api_run). */
	const struct api_snapshot_load *load;
	bool no_api;
	/* `kiln api`'s Firecracker flags (--log-path, --level, --module, --show-level,
	 * --show-log-origin): applied at start as PUT /logger would be, when logger.set. The
	 * strings are the caller's. */
	struct api_logger_config logger;
	const char *metrics_path; /* --metrics-path: as PUT /metrics; NULL: none */
	size_t body_max;	  /* --http-api-max-payload-size; 0: API_BODY_MAX */
	/* --start-time-us (CLOCK_MONOTONIC) and --start-time-cpu-us (the process's CPU clock),
	 * plus --parent-cpu-time-us: the metrics' api.process_startup_time_us and
	 * process_startup_time_cpu_us, measured when the socket is ready (Firecracker's). */
	bool start_time_set, start_cpu_set;
	uint64_t start_time_us, start_time_cpu_us, parent_cpu_time_us;
};

/* Run `kiln api`: returns the process exit status. */
int api_run(const struct api_options *o);

enum api_cmd_type {
	API_CMD_START,
	API_CMD_PAUSE,
	API_CMD_RESUME,
	API_CMD_FLUSH_METRICS,
	API_CMD_CTRL_ALT_DEL,
	API_CMD_DRIVE_PATH,
	API_CMD_SNAPSHOT_CREATE, /* arg: struct api_snapshot_create */
	API_CMD_SNAPSHOT_LOAD,	 /* arg: struct api_snapshot_load */
};

enum api_cmd_phase {
	API_CMD_NEW,	 /* not posted yet */
	API_CMD_QUEUED,	 /* in the queue: can still be taken back */
	API_CMD_RUNNING, /* the main thread took it: it will run to its end */
	API_CMD_DONE,	 /* ret and err hold the result */
};

/*
 * A command's life (queue.c). It is allocated by api_cmd_new() and counted: the poster holds
 * one reference, the queue (and then the main thread, which takes it over with the command)
 * a second from api_post() until api_queue_finish(). Whoever drops the last one frees it, so
 * a poster that gave up waiting never frees a command the main thread is still running, and
 * the main thread never writes into a poster's stack. Fields other than type, id and path
 * (set before posting, then read-only) are under api->lock, except err, which only the main
 * thread writes while RUNNING and the poster reads once DONE.
 */
struct api_cmd {
	enum api_cmd_type type;
	char id[VM_CONFIG_ID_MAX]; /* API_CMD_DRIVE_PATH */
	char *path;		   /* API_CMD_DRIVE_PATH, owned by the command */
	void *arg;		   /* the snapshot commands' request, owned by the command */
	void (*arg_free)(void *arg);
	int ret;		   /* 0 or -errno, once DONE */
	char err[512];
	enum api_cmd_phase phase;
	bool abandoned; /* its poster gave up while it ran: the result is only logged */
	unsigned refs;
	struct api_cmd *next;
};

struct api_counters {
	_Atomic uint64_t requests, responses_2xx, responses_4xx, responses_5xx;
	_Atomic uint64_t body_bytes, body_too_large, connections;
	_Atomic uint64_t connections_refused; /* over API_MAX_CONNECTIONS, or another uid */
	_Atomic uint64_t connections_timed_out; /* dropped after API_IO_TIMEOUT_MS */
	_Atomic uint64_t deprecated;		/* answered with Deprecation: true */
};

struct api_server;

struct api {
	pthread_mutex_t lock; /* state, cfg, the queue, the commands' phases */
	pthread_cond_t done_cond; /* on CLOCK_MONOTONIC: a command is done */
	enum api_state state;
	char id[VM_CONFIG_ID_MAX];
	struct api_config cfg;
	struct api_cmd *queue_head, *queue_tail;
	int cmd_efd; /* eventfd: the main thread has commands to run */
	unsigned post_timeout_ms; /* API_POST_TIMEOUT_MS (tests shorten it) */
	struct api_counters counters;
	int metrics_fd; /* -1: none; written by the main thread only */
	int log_fd;	/* -1: stderr */
	/* The logger was configured by `kiln api --log-path...`: PUT /logger then updates it as
	 * Firecracker's does (the fields a body gives; level back to Info when absent). */
	bool logger_from_cli;
	uint64_t start_ms;
	size_t body_max; /* larger request bodies get 413; 0: API_BODY_MAX */
	/* From --start-time-us / --start-time-cpu-us, when the socket became ready (0: not
	 * given). */
	uint64_t startup_us, startup_cpu_us;
	struct api_server *server;
	_Atomic int inflight; /* requests begun and not yet completed (response sent or dropped) */
};

/* ---- queue.c: the commands the API's threads post to the main thread ----------------- */

/* The lock, the condition variable (on CLOCK_MONOTONIC), an empty queue and the default
 * post_timeout_ms. Returns 0 or -errno. cmd_efd is the caller's. */
int api_queue_init(struct api *a) __must_check;
void api_queue_destroy(struct api *a);
/* A new command of this type with one reference (the caller's), or NULL (ENOMEM). */
struct api_cmd *api_cmd_new(enum api_cmd_type type);
/* Drop the caller's reference (frees the command and its path with the last one). */
void api_cmd_put(struct api *a, struct api_cmd *cmd);
/* A command's name in messages ("InstanceStart", "pause"...). */
const char *api_cmd_name(enum api_cmd_type type);
/* Post cmd to the main thread and wait at most a->post_timeout_ms for its result. Returns
 * cmd->ret (cmd->err then holds the message); -ESHUTDOWN without posting once the VM has
 * stopped or when the queue is shut while it waits; -ECANCELED when the main thread did not
 * take it in time (it was taken off the queue and will not run); -ETIMEDOUT when the main
 * thread took it but did not finish in time (it runs to its end; its result is logged). The
 * caller still holds its reference and drops it with api_cmd_put(). Called without
 * api->lock. */
int api_post(struct api *a, struct api_cmd *cmd) __must_check;
/* Main thread: take the next command (it is then RUNNING and will not be taken back), or
 * NULL when the queue is empty. */
struct api_cmd *api_queue_pop(struct api *a);
/* Main thread: cmd has run with result ret; wake its poster, or log the result if the poster
 * gave up; drops the queue's reference. */
void api_queue_finish(struct api *a, struct api_cmd *cmd, int ret);
/* Main thread, when the VM has stopped: state EXITING, every queued command answered
 * -ESHUTDOWN, and later posts refused. */
void api_queue_shut(struct api *a);

/* Point the logger at l (opening l->log_path) if l->set. Returns 0 or -EINVAL with a
 * message; on error the logger is unchanged. */
int api_logger_apply(struct api *a, const struct api_logger_config *l, char *err,
		     size_t errlen) __must_check;

/* server.c: serve HTTP on sock_path (created 0600; a stale socket is replaced, a live one
 * refused). */
int api_server_start(struct api *a, const char *sock_path, char *err, size_t errlen) __must_check;
void api_server_stop(struct api *a);

/* The response's headers besides Content-Type, as the handler sets them. */
struct api_headers {
	const char *allow; /* 405: the allowed methods (Allow) */
	/* The request used a deprecated field (snapshot/load's mem_file_path or
	 * enable_diff_snapshots, machine-config's cpu_template): "Deprecation: true", as
	 * Firecracker answers once such a body has parsed, whatever the outcome. */
	bool deprecation;
};

/* routes.c: handle one complete request. Returns the HTTP status, sets *body to a malloc'd
 * JSON text (NULL for no body, as with 204) and fills *hdr. body may be NULL when len is 0. */
unsigned api_route(struct api *a, const char *method, const char *url, const char *body, size_t len,
		   char **out, struct api_headers *hdr);
/* A {"fault_message": msg} body (malloc'd). */
char *api_fault(const char *msg);

/* ---- metrics.c ----------------------------------------------------------------------- */

struct vm;
/* Open (create/append) the metrics file with file_open_output(): non-blocking, a FIFO with no
 * reader included. Returns the fd or -errno with a message. */
int api_metrics_open(const char *path, char *err, size_t errlen) __must_check;
/* Why file_open_output() failed with ret, for messages ("not a regular file, FIFO or
 * character device" for -EMEDIUMTYPE). */
const char *api_output_strerror(int ret);
/* Write one JSON line of metrics to a->metrics_fd (main thread). vm may be NULL before boot.
 * Returns 0 or -errno. */
int api_metrics_write(struct api *a, struct vm *vm) __must_check;
