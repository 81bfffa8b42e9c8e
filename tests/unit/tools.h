/* tools.h: running host tools (iasl, acpiexec) from unit tests: find one on PATH, run it in a
 * directory with its output captured, read back what it wrote. */
#pragma once
/* Include after <cmocka.h>: the helpers use its assert macros. */

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Where run_tool() puts the tool's stdout and stderr, in the directory it runs in. */
#define TOOL_LOG "tool.log"

static inline char *find_in_path(const char *prog)
{
	const char *path = getenv("PATH");
	char *copy, *dir, *save = NULL, *found = NULL;

	if (!path)
		return NULL;
	copy = strdup(path);
	assert_non_null(copy);
	for (dir = strtok_r(copy, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
		char *cand;

		if (asprintf(&cand, "%s/%s", *dir ? dir : ".", prog) < 0)
			break;
		if (access(cand, X_OK) == 0) {
			found = cand;
			break;
		}
		free(cand);
	}
	free(copy);
	return found;
}


/* Run argv (argv[0] a full path) in dir, output to dir/tool.log (truncated). Exit status. */
static inline int run_tool(const char *dir, char *const argv[])
{
	pid_t pid = fork();
	int status;

	assert_true(pid >= 0);
	if (pid == 0) {
		int fd;

		if (chdir(dir))
			_exit(127);
		fd = open(TOOL_LOG, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd < 0)
			_exit(127);
		dup2(fd, 1);
		dup2(fd, 2);
		execv(argv[0], argv);
		_exit(127);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* A whole file, NUL-terminated; its length in *len. NULL if it cannot be read. */
static inline char *slurp(const char *dir, const char *name, size_t *len)
{
	char *path, *s = NULL;
	FILE *f;
	long n;

	assert_true(asprintf(&path, "%s/%s", dir, name) > 0);
	f = fopen(path, "rb");
	free(path);
	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
		s = calloc(1, (size_t)n + 1);
		if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
			free(s);
			s = NULL;
		}
		if (s && len)
			*len = (size_t)n;
	}
	fclose(f);
	return s;
}

