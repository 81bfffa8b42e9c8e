/* internal.h: helpers shared by the files of src/cli/ (not part of the CLI's interface). */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "util/compiler.h"

/* User text quoted in a message is cut to this many bytes so the message's tail survives. */
#define CLI_CLIP 96

struct cli_clip {
	char s[CLI_CLIP + 4];
};

/* Write a message into err (if any) with control characters shown as '?'. Returns -EINVAL. */
int cli_fail(char *err, size_t errlen, const char *fmt, ...) __printf(3, 4);
/* s, or its first CLI_CLIP bytes followed by "...". */
const char *cli_clip(struct cli_clip *b, const char *s);

/* A console-like value: stdio, file=PATH or off (--serial, --console). */
int cli_parse_mode(const char *opt, const char *val, enum serial_mode *mode, char **path, char *err,
		   size_t errlen) __must_check;

/* An id given with id=: at most VM_CONFIG_ID_MAX - 1 bytes of letters, digits, '.', '_', '-'. */
int cli_check_id_chars(const char *opt, const char *id, char *err, size_t errlen) __must_check;

/* net.c: --net (once per interface); naming the interfaces without an id. */
int cli_set_net(struct vm_config *c, const char *opt, const char *val, char *err,
		size_t errlen) __must_check;
void cli_name_nets(struct vm_config *c);

/* devices.c: --disk (once per disk), --rng, --console. */
int cli_set_disk(struct vm_config *c, const char *opt, const char *val, char *err,
		 size_t errlen) __must_check;
int cli_set_rng(struct vm_config *c, const char *opt, const char *val, char *err,
		size_t errlen) __must_check;
int cli_set_console(struct vm_config *c, const char *opt, const char *val, char *err,
		    size_t errlen) __must_check;
/* After every option: name the disks without an id, and settle who owns stdin (serial_given:
 * --serial was on the command line). */
int cli_check_devices(struct vm_config *c, bool serial_given, char *err,
		      size_t errlen) __must_check;
