/* json.c: strict JSON object reading for API bodies and config files: types, ranges, unknown
 * fields, one-line errors naming the field. */
#include "api/json.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define QUOTE_CLIP 96

int api_json_fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return -EINVAL;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	for (char *p = err; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	return -EINVAL;
}

const char *api_json_quote(struct api_json_quote *q, const char *s)
{
	size_t n = strlen(s);
	size_t keep = n > QUOTE_CLIP ? QUOTE_CLIP : n;

	static_assert(sizeof(q->s) >= QUOTE_CLIP + 4, "room for the clip mark");
	for (size_t i = 0; i < keep; i++) {
		unsigned char c = (unsigned char)s[i];
		q->s[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
	if (n > keep)
		memcpy(q->s + keep, "...", 4);
	else
		q->s[keep] = '\0';
	return q->s;
}

const char *api_json_type(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "object";
	case JSON_ARRAY:
		return "array";
	case JSON_STRING:
		return "string";
	case JSON_INTEGER:
		return "integer";
	case JSON_REAL:
		return "number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "boolean";
	case JSON_NULL:
		return "null";
	}
	return "value";
}

json_t *api_json_parse_object(const char *body, size_t len, const char *what, char *err,
			      size_t errlen)
{
	json_error_t jerr;
	json_t *v;

	if (!body || len == 0) {
		api_json_fail(err, errlen, "%s: empty; expected a JSON object", what);
		return NULL;
	}
	v = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
	if (!v) {
		api_json_fail(err, errlen, "%s: invalid JSON at line %d column %d: %s", what,
			      jerr.line, jerr.column, jerr.text);
		return NULL;
	}
	if (!json_is_object(v)) {
		api_json_fail(err, errlen, "%s: expected a JSON object, got %s", what,
			      api_json_type(v));
		json_decref(v);
		return NULL;
	}
	return v;
}

int api_json_check_object(const json_t *v, const char *what, const char *const *allowed, char *err,
			  size_t errlen)
{
	const char *key;
	json_t *val;
	struct api_json_quote q;

	if (!json_is_object(v))
		return api_json_fail(err, errlen, "%s: expected a JSON object, got %s", what,
				     api_json_type(v));
	json_object_foreach((json_t *)v, key, val)
	{
		bool known = false;
		for (unsigned i = 0; allowed[i]; i++)
			if (strcmp(key, allowed[i]) == 0)
				known = true;
		if (!known)
			return api_json_fail(err, errlen, "%s: unknown field '%s'", what,
					     api_json_quote(&q, key));
	}
	return 0;
}

/* The field's value, or NULL if absent or null (with -EINVAL in *ret if required). */
static json_t *field(const json_t *o, const char *key, const char *what, bool required, int *ret,
		     char *err, size_t errlen)
{
	json_t *v = json_object_get(o, key);

	*ret = 0;
	if (v && !json_is_null(v))
		return v;
	if (required)
		*ret = api_json_fail(err, errlen, "%s: %s: missing (required)", what, key);
	return NULL;
}

static int wrong_type(const json_t *v, const char *key, const char *what, const char *want,
		      char *err, size_t errlen)
{
	return api_json_fail(err, errlen, "%s: %s: expected %s, got %s", what, key, want,
			     api_json_type(v));
}

int api_json_str(const json_t *o, const char *key, const char *what, bool required, size_t maxlen,
		 const char **out, char *err, size_t errlen)
{
	int ret;
	json_t *v = field(o, key, what, required, &ret, err, errlen);

	if (!v)
		return ret;
	if (!json_is_string(v))
		return wrong_type(v, key, what, "a string", err, errlen);
	if (json_string_length(v) > maxlen)
		return api_json_fail(err, errlen, "%s: %s: longer than %zu bytes", what, key,
				     maxlen);
	*out = json_string_value(v);
	return 1;
}

int api_json_bool(const json_t *o, const char *key, const char *what, bool required, bool *out,
		  char *err, size_t errlen)
{
	int ret;
	json_t *v = field(o, key, what, required, &ret, err, errlen);

	if (!v)
		return ret;
	if (!json_is_boolean(v))
		return wrong_type(v, key, what, "a boolean", err, errlen);
	*out = json_is_true(v);
	return 1;
}

int api_json_uint(const json_t *o, const char *key, const char *what, bool required, uint64_t min,
		  uint64_t max, uint64_t *out, char *err, size_t errlen)
{
	int ret;
	json_t *v = field(o, key, what, required, &ret, err, errlen);

	if (!v)
		return ret;
	if (!json_is_integer(v))
		return wrong_type(v, key, what, "an integer", err, errlen);
	json_int_t i = json_integer_value(v);
	if (i < 0 || (uint64_t)i < min || (uint64_t)i > max)
		return api_json_fail(err, errlen, "%s: %s: %lld is out of range (%llu-%llu)", what,
				     key, (long long)i, (unsigned long long)min,
				     (unsigned long long)max);
	*out = (uint64_t)i;
	return 1;
}

int api_json_enum(const json_t *o, const char *key, const char *what, bool required,
		  const char *const *names, bool nocase, unsigned *index, char *err, size_t errlen)
{
	const char *s = NULL;
	char list[256] = "";
	size_t used = 0;
	struct api_json_quote q;
	int ret = api_json_str(o, key, what, required, 64, &s, err, errlen);

	if (ret <= 0) {
		/* A too-long string is still an unknown name: say which names are valid. */
		json_t *v = json_object_get(o, key);
		if (ret == 0 || !json_is_string(v))
			return ret;
		s = json_string_value(v);
	} else {
		for (unsigned i = 0; names[i]; i++) {
			if ((nocase ? strcasecmp(s, names[i]) : strcmp(s, names[i])) == 0) {
				*index = i;
				return 1;
			}
		}
	}
	for (unsigned i = 0; names[i] && used < sizeof(list); i++) {
		int n = snprintf(list + used, sizeof(list) - used, "%s\"%s\"",
				 i == 0 ? "" : (names[i + 1] ? ", " : " or "), names[i]);
		if (n < 0)
			break;
		used += (size_t)n;
	}
	return api_json_fail(err, errlen, "%s: %s: unknown value \"%s\" (expected %s)", what, key,
			     api_json_quote(&q, s), list);
}

int api_json_unsupported(const json_t *o, const char *key, const char *what, const char *why,
			 char *err, size_t errlen)
{
	json_t *v = json_object_get(o, key);

	if (!v || json_is_null(v))
		return 0;
	return api_json_fail(err, errlen, "%s: %s: %s", what, key, why);
}
