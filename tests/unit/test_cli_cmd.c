/* test_cli_cmd.c: `kiln run --api-sock` (cli_parse_run_api), the option parser of `kiln
 * snapshot` / `kiln restore` (cmd_opts.c), `kiln restore`'s options (cli_restore_parse), and
 * the HTTP client against a fake API peer. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <cmocka.h>

#include "cli/cli.h"
#include "cli/commands.h"

static char err[512];

static void test_run_api_sock(void **st)
{
	(void)st;
	struct vm_config c;
	const char *sock;

	char *a[] = {"--cpus", "2", "--api-sock", "/s", "--memory=64", NULL};
	assert_int_equal(cli_parse_run_api(5, a, &c, &sock, NULL, err, sizeof(err)), 0);
	assert_string_equal(sock, "/s");
	assert_int_equal(c.cpus, 2);
	vm_config_free(&c);
	char *b[] = {"--api-sock=/t", NULL};
	assert_int_equal(cli_parse_run_api(1, b, &c, &sock, NULL, err, sizeof(err)), 0);
	assert_string_equal(sock, "/t");
	vm_config_free(&c);
	char *n[] = {"--cpus", "1", NULL};
	assert_int_equal(cli_parse_run_api(2, n, &c, &sock, NULL, err, sizeof(err)), 0);
	assert_null(sock);
	vm_config_free(&c);

	static const struct {
		char *argv[4];
		int argc;
		const char *msg;
	} bad[] = {
	    {{"--api-sock", "--cpus", "2"}, 3, "--api-sock: missing value"},
	    {{"--api-sock="}, 1, "--api-sock: empty value"},
	    {{"--api-sock=a", "--api-sock", "b"}, 3, "--api-sock given twice"},
	    {{"--api-sock=a", "--cpus", "0"}, 3, "--cpus"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(cli_parse_run_api(bad[i].argc, (char **)bad[i].argv, &c, &sock,
						   NULL, err, sizeof(err)),
				 -EINVAL);
		assert_non_null(strstr(err, bad[i].msg));
		assert_null(sock);
	}
	/* The parser of callers that serve no API refuses it. */
	assert_int_equal(cli_parse_run(1, b, &c, NULL, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "--api-sock: this caller serves no API");
}

static int parse(const char **one, const char **many, struct cli_cmd_opt *o, int argc, char **argv)
{
	o[0] = (struct cli_cmd_opt){.name = "--one", .vals = one};
	o[1] = (struct cli_cmd_opt){.name = "--many", .vals = many, .max = 2};
	o[2] = (struct cli_cmd_opt){.name = "--flag", .flag = true};
	return cli_cmd_parse("kiln t", o, 3, argc, argv, err, sizeof(err));
}

static void test_cmd_parse(void **st)
{
	(void)st;
	const char *one = NULL, *many[2] = {NULL, NULL};
	struct cli_cmd_opt o[3];

	char *ok[] = {"--one", "a", "--many=b", "--many", "c", "--flag"};
	assert_int_equal(parse(&one, many, o, 6, ok), 0);
	assert_string_equal(one, "a");
	assert_string_equal(many[0], "b");
	assert_string_equal(many[1], "c");
	assert_int_equal(o[2].n, 1);
	assert_int_equal(o[1].n, 2);

	static const struct {
		char *argv[4];
		int argc;
		const char *msg;
	} bad[] = {
	    {{"--two", "a"}, 2, "kiln t: unknown option '--two' (try `kiln t --help`)"},
	    {{"--one"}, 1, "kiln t: --one needs a value"},
	    {{"--one", "--flag"}, 2, "kiln t: --one needs a value"},
	    {{"--one="}, 1, "kiln t: --one: empty value"},
	    {{"--one=a", "--one=b"}, 2, "kiln t: --one given twice"},
	    {{"--many=a", "--many=b", "--many=c"}, 3, "kiln t: --many given more than 2 times"},
	    {{"--flag=1"}, 1, "kiln t: --flag takes no value"},
	    {{"x"}, 1, "kiln t: unexpected argument 'x'"},
	    {{"--one", "a\nb", "--one=c"}, 3, "kiln t: --one given twice"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(parse(&one, many, o, bad[i].argc, (char **)bad[i].argv), -EINVAL);
		assert_string_equal(err, bad[i].msg);
	}
	char *help[] = {"--one", "a", "-h"};
	assert_int_equal(parse(&one, many, o, 3, help), 1);
}

/* A fake API: accepts one connection, reads the request, sends `answer` (NULL: nothing, and
 * holds the connection open until the client gives up) and closes. */
struct peer {
	int lfd;
	const char *answer;
	char request[4096];
};

static void *peer_main(void *arg)
{
	struct peer *p = arg;
	int fd = accept(p->lfd, NULL, NULL);
	size_t n = 0;

	if (fd < 0)
		return NULL;
	/* The whole request: headers, then the body its Content-Length announces. */
	while (n < sizeof(p->request) - 1) {
		ssize_t r = read(fd, p->request + n, sizeof(p->request) - 1 - n);
		if (r <= 0)
			break;
		n += (size_t)r;
		p->request[n] = '\0';
		char *h = strstr(p->request, "\r\n\r\n"),
		     *cl = strstr(p->request, "Content-Length: ");
		if (h && cl && n >= (size_t)(h + 4 - p->request) + strtoul(cl + 16, NULL, 10))
			break;
	}
	if (p->answer)
		(void)!write(fd, p->answer, strlen(p->answer));
	else
		sleep(1);
	close(fd);
	return NULL;
}

static int ask(const char *answer, int timeout_ms, struct cli_http_resp *r, struct peer *p)
{
	char path[108];
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	pthread_t t;

	snprintf(path, sizeof(path), "/tmp/kiln-cli-cmd-%d.sock", (int)getpid());
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	unlink(path);
	p->lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(p->lfd >= 0);
	assert_int_equal(bind(p->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(p->lfd, 1), 0);
	p->answer = answer;
	assert_int_equal(pthread_create(&t, NULL, peer_main, p), 0);
	int ret = cli_http_request(path, "PUT", "/snapshot/create", "{\"a\": 1}", timeout_ms, r,
				   err, sizeof(err));
	pthread_join(t, NULL);
	close(p->lfd);
	unlink(path);
	return ret;
}

/* `kiln restore`: the options become the load and the `kiln api` it runs in. */
static void test_restore_parse(void **st)
{
	(void)st;
	static struct cli_restore r;
	char dir[] = "/tmp/kiln-restore-XXXXXX", snap[64], sock[64];
	struct sockaddr_un sa = {.sun_family = AF_UNIX};

	assert_non_null(mkdtemp(dir));
	snprintf(snap, sizeof(snap), "%s/vm.snap", dir);
	snprintf(sock, sizeof(sock), "%s/uffd.sock", dir);
	FILE *f = fopen(snap, "w");
	assert_non_null(f);
	fclose(f);
	int lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);

	/* The File backend, and every option. */
	char *file[] = {"--snapshot",
			snap,
			"--mem-file",
			snap,
			"--net",
			"id=eth0,tap=tap1",
			"--api-sock",
			"/s",
			"--paused",
			"--id",
			"vm-7",
			"--seccomp=log",
			"--track-dirty-pages",
			"--clock-realtime",
			NULL};
	assert_int_equal(cli_restore_parse(14, file, &r, err, sizeof(err)), 0);
	assert_string_equal(r.load.snapshot_path, snap);
	assert_int_equal(r.load.backend, API_MEM_FILE);
	assert_string_equal(r.load.backend_path, snap);
	assert_int_equal(r.load.nr_net_overrides, 1);
	assert_string_equal(r.load.net_overrides[0].iface_id, "eth0");
	assert_string_equal(r.load.net_overrides[0].host_dev_name, "tap1");
	assert_false(r.load.resume_vm);
	assert_true(r.load.track_dirty_pages);
	assert_true(r.load.clock_realtime);
	assert_string_equal(r.api.sock_path, "/s");
	assert_false(r.api.no_api);
	assert_string_equal(r.api.id, "vm-7");
	assert_ptr_equal(r.api.load, &r.load);
	assert_true(r.seccomp_set);
	assert_int_equal(r.seccomp, SECCOMP_MODE_LOG);

	/* The Uffd backend; no socket, no id, no --seccomp: the defaults. */
	char *uffd[] = {"--snapshot", snap, "--uffd", sock, NULL};
	assert_int_equal(cli_restore_parse(4, uffd, &r, err, sizeof(err)), 0);
	assert_int_equal(r.load.backend, API_MEM_UFFD);
	assert_string_equal(r.load.backend_path, sock);
	assert_true(r.load.resume_vm);
	assert_true(r.api.no_api);
	assert_null(r.api.id);
	assert_false(r.seccomp_set);
	char *seccomp_off[] = {"--snapshot", snap, "--uffd", sock, "--seccomp", "off", NULL};
	assert_int_equal(cli_restore_parse(6, seccomp_off, &r, err, sizeof(err)), 0);
	assert_int_equal(r.seccomp, SECCOMP_MODE_OFF);

	char *help[] = {"--snapshot", snap, "--help", NULL};
	assert_int_equal(cli_restore_parse(3, help, &r, err, sizeof(err)), 1);

	/* Bad values: one line naming the option. */
	static const struct {
		const char *argv[6];
		const char *msg;
	} bad[] = {
	    {{"--snapshot", "S", "--mem-file", "S", "--uffd", "U"},
	     "kiln restore: --mem-file and --uffd exclude each other (guest memory comes from "
	     "one)"},
	    {{"--snapshot", "S"},
	     "kiln restore: --mem-file is required, or --uffd (try `kiln restore --help`)"},
	    {{"--mem-file", "S"},
	     "kiln restore: --snapshot is required (try `kiln restore --help`)"},
	    {{"--snapshot", "S", "--uffd", "S"},
	     "kiln restore: --uffd: $S: not a Unix socket (the page-fault handler's: it must be "
	     "listening before the restore)"},
	    {{"--snapshot", "S", "--mem-file", "U"},
	     "kiln restore: --mem-file: $U: not a regular file"},
	    {{"--snapshot", "S", "--uffd", "/nonexistent.sock"},
	     "kiln restore: --uffd: /nonexistent.sock: No such file or directory"},
	    {{"--snapshot", "S", "--mem-file", "S", "--id", "a/b"},
	     "kiln restore: --id: 'a/b' is not valid (1-63 characters of A-Z a-z 0-9 _ -)"},
	    {{"--snapshot", "S", "--mem-file", "S", "--id="}, "kiln restore: --id: empty value"},
	    {{"--snapshot", "S", "--mem-file", "S", "--seccomp", "strict"},
	     "kiln restore: --seccomp: 'strict' is not on, log or off"},
	    {{"--snapshot", "S", "--mem-file", "S", "--seccomp"},
	     "kiln restore: --seccomp needs a value"},
	    {{"--snapshot", "S", "--mem-file", "S", "--paused"},
	     "kiln restore: --paused needs --api-sock (nothing could resume the VM)"},
	    {{"--snapshot", "S", "--uffd", "U", "--net", "id=eth0"},
	     "kiln restore: --net: 'id=eth0' needs both id=ID and tap=TAP"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *argv[6];
		int argc = 0;
		for (; argc < 6 && bad[i].argv[argc]; argc++)
			argv[argc] = strcmp(bad[i].argv[argc], "S") == 0 ? snap
				     : strcmp(bad[i].argv[argc], "U") == 0
					 ? sock
					 : (char *)bad[i].argv[argc];
		assert_int_equal(cli_restore_parse(argc, argv, &r, err, sizeof(err)), -EINVAL);
		/* $S and $U in the messages: the test's state file and socket */
		char want[512] = "";
		for (const char *m = bad[i].msg; *m; m++) {
			if (m[0] == '$' && (m[1] == 'S' || m[1] == 'U')) {
				strcat(want, m[1] == 'S' ? snap : sock);
				m++;
			} else {
				strncat(want, m, 1);
			}
		}
		if (strcmp(err, want) != 0)
			fail_msg("case %zu: got \"%s\", want \"%s\"", i, err, want);
	}
	close(lfd);
	unlink(sock);
	unlink(snap);
	rmdir(dir);
}

static void test_http(void **st)
{
	(void)st;
	static struct cli_http_resp r;
	static struct peer p;
	char fault[256];

	assert_int_equal(ask("HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n", 5000, &r, &p),
			 0);
	assert_int_equal(r.status, 204);
	assert_non_null(strstr(p.request, "PUT /snapshot/create HTTP/1.1\r\n"));
	assert_non_null(strstr(p.request, "Content-Length: 8\r\n"));
	assert_non_null(strstr(p.request, "\r\n\r\n{\"a\": 1}"));

	const char *bad = "HTTP/1.1 400 Bad Request\r\nContent-Length: 28\r\n\r\n"
			  "{\"fault_message\": \"no\\nway\"}xxxx";
	assert_int_equal(ask(bad, 5000, &r, &p), 0);
	assert_int_equal(r.status, 400);
	assert_string_equal(cli_http_fault(&r, fault, sizeof(fault)), "no?way");
	assert_int_equal(ask("HTTP/1.1 500 Oops\r\n\r\nnot json", 5000, &r, &p), 0);
	assert_string_equal(cli_http_fault(&r, fault, sizeof(fault)),
			    "the API answered 500 with no fault_message");

	assert_int_equal(ask("HTTP/1.1 20 x\r\n\r\n", 5000, &r, &p), -EPROTO);
	assert_non_null(strstr(err, "not an HTTP answer"));
	assert_int_equal(ask("HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n{}", 5000, &r, &p),
			 -EPROTO);
	assert_int_equal(ask("", 5000, &r, &p), -EPROTO);
	assert_non_null(strstr(err, "closed with no answer"));
	/* A peer that never answers: the client gives up at its deadline. */
	assert_int_equal(ask(NULL, 200, &r, &p), -ETIMEDOUT);
	assert_non_null(strstr(err, "no answer within the time allowed"));
}

/* `kiln api`'s options: kiln's and Firecracker's VMM flags (cli_api_parse). */
static void test_api_parse(void **st)
{
	(void)st;
	struct cli_api r;

	/* firecracker-go-sdk's exact argument list */
	char *sdk[] = {"--api-sock", "/s", "--id", "vm-1", "--no-seccomp", NULL};
	assert_int_equal(cli_api_parse(5, sdk, &r, err, sizeof(err)), CLI_API_RUN);
	assert_string_equal(r.api.sock_path, "/s");
	assert_string_equal(r.api.id, "vm-1");
	assert_true(r.seccomp_set);
	assert_int_equal(r.seccomp, SECCOMP_MODE_OFF);
	assert_false(r.api.logger.set);
	assert_null(r.api.metrics_path);
	assert_int_equal(r.api.body_max, 0);

	/* every flag that takes effect, both spellings of a value */
	char *all[] = {"--api-sock=/s",
		       "--log-path",
		       "/l",
		       "--level",
		       "debug",
		       "--module",
		       "api",
		       "--show-level",
		       "--show-log-origin",
		       "--metrics-path",
		       "/m",
		       "--start-time-us",
		       "12",
		       "--start-time-cpu-us=34",
		       "--parent-cpu-time-us",
		       "56",
		       "--http-api-max-payload-size",
		       "1000",
		       "--mmds-size-limit",
		       "4096",
		       "--enable-pci",
		       "--seccomp",
		       "log",
		       NULL};
	assert_int_equal(cli_api_parse(23, all, &r, err, sizeof(err)), CLI_API_RUN);
	assert_true(r.api.logger.set);
	assert_string_equal(r.api.logger.log_path, "/l");
	assert_int_equal(r.api.logger.level, LOG_DEBUG);
	assert_string_equal(r.api.logger.module, "api");
	assert_true(r.api.logger.show_level);
	assert_true(r.api.logger.show_origin);
	assert_string_equal(r.api.metrics_path, "/m");
	assert_true(r.api.start_time_set);
	assert_int_equal(r.api.start_time_us, 12);
	assert_true(r.api.start_cpu_set);
	assert_int_equal(r.api.start_time_cpu_us, 34);
	assert_int_equal(r.api.parent_cpu_time_us, 56);
	assert_int_equal(r.api.body_max, 1000);
	assert_int_equal(r.mmds_size_limit, 4096);
	assert_true(r.enable_pci);
	assert_int_equal(r.seccomp, SECCOMP_MODE_LOG);

	/* any one logger flag configures the logger (no --log-path: stderr), at Info unless
	 * --level says otherwise, as PUT /logger */
	char *lvl[] = {"--api-sock", "/s", "--show-level", NULL};
	assert_int_equal(cli_api_parse(3, lvl, &r, err, sizeof(err)), CLI_API_RUN);
	assert_true(r.api.logger.set);
	assert_null(r.api.logger.log_path);
	assert_int_equal(r.api.logger.level, LOG_INFO);
	char *off[] = {"--api-sock",   "/s",	    "--level", "Off",
		       "--no-seccomp", "--seccomp", "off",     NULL};
	assert_int_equal(cli_api_parse(7, off, &r, err, sizeof(err)), CLI_API_RUN);
	assert_int_equal(r.api.logger.level, LOG_OFF);
	assert_int_equal(r.seccomp, SECCOMP_MODE_OFF);
	char *noapi[] = {"--no-api", "--config-file", "vm.json", NULL};
	assert_int_equal(cli_api_parse(3, noapi, &r, err, sizeof(err)), CLI_API_RUN);
	assert_true(r.api.no_api);
	assert_false(r.seccomp_set);

	/* what prints and exits */
	char *ver[] = {"--version", NULL};
	assert_int_equal(cli_api_parse(1, ver, &r, err, sizeof(err)), CLI_API_VERSION);
	char *sver[] = {"--snapshot-version", NULL};
	assert_int_equal(cli_api_parse(1, sver, &r, err, sizeof(err)), CLI_API_SNAPSHOT_VERSION);
	char *desc[] = {"--describe-snapshot", "/snap", NULL};
	assert_int_equal(cli_api_parse(2, desc, &r, err, sizeof(err)), CLI_API_DESCRIBE);
	assert_string_equal(r.describe, "/snap");
	char *help[] = {"--api-sock", "/s", "-h", NULL};
	assert_int_equal(cli_api_parse(3, help, &r, err, sizeof(err)), CLI_API_HELP);

	/* bad input: one line naming the option */
	static const struct {
		const char *argv[6];
		const char *msg;
	} bad[] = {
	    {{"--api-sock", "/s", "--seccomp-filter", "/f"},
	     "kiln api: --seccomp-filter: Firecracker's"},
	    {{"--api-sock", "/s", "--no-seccomp", "--seccomp", "on"},
	     "--no-seccomp and --seccomp on"},
	    {{"--api-sock", "/s", "--no-seccomp", "--no-seccomp"}, "--no-seccomp given twice"},
	    {{"--api-sock", "/s", "--seccomp", "strict"}, "--seccomp: 'strict'"},
	    {{"--api-sock", "/s", "--boot-timer"}, "--boot-timer: kiln has no boot timer"},
	    {{"--api-sock", "/s", "--metadata", "/md.json"}, "--metadata: kiln has no MMDS"},
	    {{"--api-sock", "/s", "--level", "Loud"}, "--level: 'Loud' is not"},
	    {{"--api-sock", "/s", "--level"}, "--level needs a value"},
	    {{"--api-sock", "/s", "--log-path="}, "--log-path: empty value"},
	    {{"--api-sock", "/s", "--show-level=true"}, "--show-level takes no value"},
	    {{"--api-sock", "/s", "--module",
	      "0123456789012345678901234567890123456789012345678901234567890123"},
	     "--module: longer than 63"},
	    {{"--api-sock", "/s", "--start-time-us", "-5"}, "--start-time-us: '-5' is not"},
	    {{"--api-sock", "/s", "--start-time-cpu-us", "1e3"}, "--start-time-cpu-us: '1e3'"},
	    {{"--api-sock", "/s", "--parent-cpu-time-us", "99999999999999999999"},
	     "--parent-cpu-time-us: '99999999999999999999'"},
	    {{"--api-sock", "/s", "--parent-cpu-time-us", "5"},
	     "--parent-cpu-time-us needs --start-time-cpu-us"},
	    {{"--api-sock", "/s", "--http-api-max-payload-size", "255"},
	     "--http-api-max-payload-size: 255 is out of range (256-1048576 bytes)"},
	    {{"--api-sock", "/s", "--http-api-max-payload-size", "1048577"}, "1048577 is out of"},
	    {{"--api-sock", "/s", "--http-api-max-payload-size", "64k"},
	     "--http-api-max-payload-size: '64k'"},
	    {{"--api-sock", "/s", "--mmds-size-limit", "lots"}, "--mmds-size-limit: 'lots'"},
	    {{"--api-sock", "/s", "--enable-pci=1"}, "--enable-pci takes no value"},
	    {{"--api-sock", "/s", "--id", "a b"}, "--id: 'a b' is not valid"},
	    {{"--no-api"}, "--no-api needs --config-file"},
	    {{"--no-api", "--config-file", "f", "--api-sock", "/s"}, "exclude each other"},
	    {{"--id", "x"}, "--api-sock PATH is required"},
	    {{"--api-sock", "/s", "--vsock"}, "unknown option '--vsock'"},
	    {{"--api-sock", "/s", "stray"}, "unexpected argument 'stray'"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int argc = 0;
		while (argc < 6 && bad[i].argv[argc])
			argc++;
		err[0] = '\0';
		assert_int_equal(cli_api_parse(argc, (char **)bad[i].argv, &r, err, sizeof(err)),
				 -EINVAL);
		if (!strstr(err, bad[i].msg))
			fail_msg("case %zu: '%s' lacks '%s'", i, err, bad[i].msg);
		assert_null(strchr(err, '\n'));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_run_api_sock),  cmocka_unit_test(test_cmd_parse),
	    cmocka_unit_test(test_restore_parse), cmocka_unit_test(test_api_parse),
	    cmocka_unit_test(test_http),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
