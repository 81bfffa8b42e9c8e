/* client.h: test helpers for the API tests: start `kiln api`, talk HTTP/1.1 over its socket. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Set by each test program's main from its arguments (client_args). */
extern const char *kiln_path; /* the kiln binary */
extern const char *tick_path; /* tests/guests/tick.elf, or NULL when not built */

/* main's arguments: KILN, and with tick [TICK_GUEST] (an empty one: not built). Sets kiln_path
 * and tick_path; false (usage printed) when KILN is missing. */
bool client_args(int argc, char **argv, bool tick);
/* True, after one SKIP line naming the test, when this host has no usable /dev/kvm: a test
 * that boots a guest then exits 77 (meson's SKIP). */
bool client_kvm_missing(const char *test);

struct resp {
	int status; /* -1: no response */
	char head[4096];
	char body[65536];
};

/* A kiln process and its working directory (socket, logs, outputs). */
struct kiln {
	pid_t pid;
	char dir[256];
	char sock[300];
	char out[300]; /* its stdout + stderr */
};

/* Make a fresh temporary directory for one kiln in k->dir. */
void kiln_prepare(struct kiln *k);
/* Start `kiln api` with extra arguments (NULL-terminated; the socket is k->sock unless the
 * arguments contain --no-api). wait_sock: wait (up to 10 s) for the socket to accept. */
void kiln_start(struct kiln *k, bool wait_sock, const char *const *extra);
/* Wait up to timeout_ms for the process to exit; returns its exit status (128+signal if
 * killed) or -1 on timeout. */
int kiln_wait(struct kiln *k, int timeout_ms);
/* SIGKILL if still running, reap, and remove the directory. */
void kiln_cleanup(struct kiln *k);
/* Path of a file in k->dir (static buffer, one of 4 rotating). */
const char *kiln_file(struct kiln *k, const char *name);
/* tmpl with its one "%s" replaced by kiln_file(k, name) (a static buffer). */
const char *kiln_body_with_path(struct kiln *k, const char *tmpl, const char *name);

struct sockaddr_un;
/* Fill a Unix socket address (the test fails if path is too long). */
void sockaddr_set(struct sockaddr_un *sa, const char *path);

/* One request on a new connection ("Connection: close"). body NULL: no body. */
void http(const char *sock, const char *method, const char *path, const char *body, struct resp *r);
/* Send raw bytes on a new connection and read the response. */
void http_raw(const char *sock, const char *raw, size_t len, struct resp *r);
/* Connect to the socket; returns the fd (test fails on error). */
int http_connect(const char *sock);
/* Read a whole response from fd (until EOF, 10 s timeout) and parse it. */
void http_read(int fd, struct resp *r);

/* Assert a response: status and (if non-NULL) a substring of fault_message; a status of 400
 * or more needs a fault_message. Prints the request and the response on failure. */
void expect(const char *sock, const char *method, const char *path, const char *body, int status,
	    const char *fault_substr);
/* The same with the whole fault_message (if non-NULL) equal to fault. */
void expect_exact(const char *sock, const char *method, const char *path, const char *body,
		  int status, const char *fault);
/* PUT {"field": "value"} to path, expecting 204. */
void put_string(const char *sock, const char *path, const char *field, const char *value);
/* PUT /metrics (metrics.json), /boot-source (the tick guest) and /serial (serial.out), the
 * files in k->dir: the pre-boot configuration the running-guest tests share. */
void put_tick_config(struct kiln *k);
/* GET /vm/config: the body (static buffer, valid until the next call). */
const char *vm_config(const char *sock);

/* A string field of a JSON body ("" if absent), copied to a static buffer. */
const char *json_field(const char *body, const char *key);
/* An integer field of a JSON object at a '/'-separated path ("uart/tx_bytes"); -1 if absent. */
long long json_int(const char *body, const char *path);

/* Copy the file's last line (at most len - 1 bytes of it) to buf; the test fails if the file
 * cannot be opened. */
void file_last_line(const char *path, char *buf, size_t len);
/* Does the file contain substr? */
bool file_contains(const char *path, const char *substr);
/* Count lines in a file that start with prefix (0 if the file is missing). */
int count_lines(const char *path, const char *prefix);
/* Wait up to timeout_ms until count_lines(path, prefix) >= n. */
bool wait_lines(const char *path, const char *prefix, int n, int timeout_ms);
/* Write text to path. */
void write_file(const char *path, const char *text);
void sleep_ms(int ms);
/* Start the example page-fault handler ($KILN_UFFD_HANDLER SOCK MEMFILE, output in log);
 * returns its pid once its socket exists (the test fails otherwise). */
pid_t uffd_handler_start(const char *sock, const char *mem, const char *log);
/* The tick guest's lines ("tick N") in a file: the highest N, the first N; 0 if none. */
int last_tick(const char *path);
int first_tick(const char *path);
