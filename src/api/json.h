/* json.h: strict reading of JSON objects (jansson) with one-line errors naming the field. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/compiler.h"

/*
 * Every message has the form "<what>: <field>: <problem>", where `what` names the object
 * ("machine-config", "drives[1]") and user text in it is clipped and has its control
 * characters replaced by '?'. A JSON null counts as an absent field (optional fields only).
 */

/* Format a message into err and return -EINVAL. */
int api_json_fail(char *err, size_t errlen, const char *fmt, ...) __printf(3, 4);

/* User text made safe to quote: clipped to 96 bytes, control characters as '?'. */
struct api_json_quote {
	char s[128];
};
const char *api_json_quote(struct api_json_quote *q, const char *s);

/* "object", "array", "string", "integer", "number", "boolean" or "null". */
const char *api_json_type(const json_t *v);

/* Parse a request body (len bytes) as one JSON object: no trailing data, no duplicate keys,
 * no NUL in strings. Returns the object (caller owns it) or NULL with a message. */
json_t *api_json_parse_object(const char *body, size_t len, const char *what, char *err,
			      size_t errlen);

/* v must be an object whose keys are all in the NULL-terminated `allowed`. */
int api_json_check_object(const json_t *v, const char *what, const char *const *allowed, char *err,
			  size_t errlen) __must_check;

/* Getters: return 1 when the field is present, 0 when it is absent or null (then -EINVAL
 * with "missing" if `required`), -EINVAL on a wrong type or value. */
int api_json_str(const json_t *o, const char *key, const char *what, bool required, size_t maxlen,
		 const char **out, char *err, size_t errlen) __must_check;
int api_json_bool(const json_t *o, const char *key, const char *what, bool required, bool *out,
		  char *err, size_t errlen) __must_check;
int api_json_uint(const json_t *o, const char *key, const char *what, bool required, uint64_t min,
		  uint64_t max, uint64_t *out, char *err, size_t errlen) __must_check;
/* A string that must be one of the NULL-terminated `names` (compared with strcmp, or
 * strcasecmp when nocase); *index is its position. */
int api_json_enum(const json_t *o, const char *key, const char *what, bool required,
		  const char *const *names, bool nocase, unsigned *index, char *err,
		  size_t errlen) __must_check;
/* A field kiln does not implement: absent or null is fine, anything else is rejected with
 * "<what>: <key>: <why>". */
int api_json_unsupported(const json_t *o, const char *key, const char *what, const char *why,
			 char *err, size_t errlen) __must_check;
