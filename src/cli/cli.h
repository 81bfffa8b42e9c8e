/* cli.h: `kiln run` option parsing (key=value style) into a struct vm_config. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "config.h"
#include "util/compiler.h"

/* Parse the arguments after "run". Returns 0 on success, 1 if --help was printed to `out`,
 * or -EINVAL with a one-line message naming the option in err. c is initialised here. */
int cli_parse_run(int argc, char **argv, struct vm_config *c, FILE *out, char *err,
		  size_t errlen) __must_check;

/* Parse a size such as 512M, 1G, 134217728, 64MiB. Plain numbers are bytes unless
 * default_unit is nonzero (e.g. MiB for --memory). Returns 0 or -EINVAL/-ERANGE. */
int cli_parse_size(const char *s, uint64_t default_unit, uint64_t *out) __must_check;

/* Parse a decimal unsigned integer in [min, max]. Returns 0, -EINVAL or -ERANGE. */
int cli_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out) __must_check;
