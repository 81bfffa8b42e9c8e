/* cli.h: `kiln run` option parsing (key=value style) into a struct vm_config. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "config.h"
#include "util/compiler.h"

/* Parse the arguments after "run" (argv[0] is the first option, not "run").
 * Returns 0 on success, 1 if --help was printed to `out` (may be NULL: print nothing),
 * or -EINVAL with a one-line message naming the option in err (control characters from
 * the user's input are shown as '?'). c is initialised here; on any return other than 0
 * it holds only the defaults and owns nothing, so calling vm_config_free() is optional.
 * Every option may be given once, as `--opt VALUE` or `--opt=VALUE`; in the first form a
 * VALUE starting with "--" is taken as a missing value (write `--cmdline=--x` instead).
 * Kernel and initrd paths must name readable regular files at parse time. */
int cli_parse_run(int argc, char **argv, struct vm_config *c, FILE *out, char *err,
		  size_t errlen) __must_check;
/* The same, and *api_sock is the value of --api-sock (the API socket `kiln run` also serves,
 * which is not the VM's configuration), NULL when not given; cli_parse_run refuses it with
 * a line. */
int cli_parse_run_api(int argc, char **argv, struct vm_config *c, const char **api_sock,
		      FILE *out, char *err, size_t errlen) __must_check;

/* Print the `kiln run` usage (every option with its default) to out. */
void cli_usage(FILE *out);

/* Parse a size: decimal digits, then optionally a unit B, K, M, G or T, the last four
 * optionally followed by "iB" or "B" (K, KB, KiB...). Case-insensitive; every unit is a
 * power of 1024. No sign, spaces or fractions. Plain numbers are bytes unless default_unit
 * is nonzero (e.g. MiB for --memory). Returns 0, -EINVAL (not a size) or -ERANGE (the
 * result does not fit in 64 bits). */
int cli_parse_size(const char *s, uint64_t default_unit, uint64_t *out) __must_check;

/* Write bytes with the largest unit that divides it exactly ("512M", "1G", "4097B"), so that
 * cli_parse_size(buf, 0, &x) gives back bytes. Always NUL-terminates when len > 0. */
void cli_format_size(uint64_t bytes, char *buf, size_t len);

/* Parse a decimal unsigned integer in [min, max]. Returns 0, -EINVAL (not a number: empty,
 * spaces, '+', trailing junk) or -ERANGE (out of [min, max], too big for 64 bits, or a
 * negative number such as "-1"). */
int cli_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out) __must_check;

/* Parse on/off/true/false/yes/no/1/0 (case-sensitive, lower case). Returns 0 or -EINVAL. */
int cli_parse_bool(const char *s, bool *out) __must_check;

/*
 * Key=value lists, the value syntax of options such as
 *     --serial file=/tmp/console.log
 *     --disk path=rootfs.img,readonly=on,id=root
 *     --net user,hostfwd=tcp::2222-:22
 * Items are separated by ','; ",," stands for a literal ',' inside a key or value (as in
 * QEMU), so `file=a,,b` gives the path "a,b". An item is key=value, split at the first
 * '=' (so the value may contain '='). With CLI_KV_BARE the first item may instead be a bare
 * word without '=' (a mode or backend name), returned in kv->bare.
 * Rejected with a one-line message naming the option: an empty list, an empty item
 * (leading or trailing comma), a missing key ("=x"), an empty value ("path="), a key that
 * is not in `keys`, a key given twice, and a bare word where one is not allowed.
 */
#define CLI_KV_MAX_KEYS 16
#define CLI_KV_BARE (1u << 0) /* the first item may be a bare word */
/* The LAST key of `keys` takes a list: an item without '=' right after it continues its value,
 * and the key given again right after itself adds to it, both joined with ','. So with
 * "hostfwd" last, "hostfwd=A,B" and "hostfwd=A,hostfwd=B" both give it the value "A,B". */
#define CLI_KV_CONTINUE (1u << 1)

struct cli_kvlist {
	char *buf;			   /* owned copy of the list, split in place */
	const char *const *keys;	   /* the caller's NULL-terminated key names */
	const char *bare;		   /* the bare first item, or NULL */
	const char *vals[CLI_KV_MAX_KEYS]; /* vals[i]: the value of keys[i], or NULL if absent */
	int last;			   /* index of the key of the item before, or -1 */
};

/* Parse s for option opt (e.g. "--disk", used in messages) accepting the NULL-terminated
 * keys (at most CLI_KV_MAX_KEYS). Returns 0, -EINVAL with a message in err, or -ENOMEM.
 * On failure kv owns nothing. Call cli_kvlist_free() after a success. */
int cli_kvlist_parse(struct cli_kvlist *kv, const char *opt, const char *s, const char *const *keys,
		     unsigned flags, char *err, size_t errlen) __must_check;
/* The value given for key, or NULL if absent or if key is not one of kv->keys. Never "". */
const char *cli_kvlist_get(const struct cli_kvlist *kv, const char *key);
/* Free what a parsed list owns; safe to call twice. */
void cli_kvlist_free(struct cli_kvlist *kv);
