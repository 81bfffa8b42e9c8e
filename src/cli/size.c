/* size.c: strict parsers and formatters for numbers, sizes and booleans given on the command line.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "cli/cli.h"

/* Parse the leading decimal digits of s into *v. *end points past them. Returns 0, -EINVAL
 * if s does not start with a digit, or -ERANGE on overflow (after consuming every digit). */
static int parse_digits(const char *s, const char **end, uint64_t *v)
{
	uint64_t x = 0;
	int ret = 0;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	for (; *s >= '0' && *s <= '9'; s++) {
		unsigned d = (unsigned)(*s - '0');

		if (x > (UINT64_MAX - d) / 10)
			ret = -ERANGE;
		else
			x = x * 10 + d;
	}
	*end = s;
	*v = x;
	return ret;
}

int cli_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	const char *end;
	uint64_t v;
	int ret;

	if (!s)
		return -EINVAL;
	/* "-5" is a number, just not one in range; "-x" or "-" is not a number. */
	if (s[0] == '-' && s[1] >= '0' && s[1] <= '9') {
		(void)parse_digits(s + 1, &end, &v);
		return *end ? -EINVAL : -ERANGE;
	}
	ret = parse_digits(s, &end, &v);
	if (ret == -EINVAL || *end)
		return -EINVAL;
	if (ret == -ERANGE || v < min || v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

/* Multiplier for a unit suffix ("B", "K", "KB", "KiB", ... "TiB", any case), or 0. */
static uint64_t unit_of(const char *u)
{
	static const char letters[] = "KMGT";
	uint64_t mult = KiB;
	int i;

	if (!strcasecmp(u, "B"))
		return 1;
	for (i = 0; letters[i]; i++) {
		if (u[0] == letters[i] || u[0] == letters[i] + ('a' - 'A'))
			break;
	}
	if (!letters[i])
		return 0;
	while (i--)
		mult *= KiB;
	u++;
	if (!*u || !strcasecmp(u, "B") || !strcasecmp(u, "iB"))
		return mult;
	return 0;
}

int cli_parse_size(const char *s, uint64_t default_unit, uint64_t *out)
{
	const char *end;
	uint64_t v, mult;
	int ret;

	if (!s)
		return -EINVAL;
	ret = parse_digits(s, &end, &v);
	if (ret == -EINVAL)
		return ret;
	if (*end) {
		mult = unit_of(end);
		if (!mult)
			return -EINVAL;
	} else {
		mult = default_unit ? default_unit : 1;
	}
	if (ret == -ERANGE || (v && mult > UINT64_MAX / v))
		return -ERANGE;
	*out = v * mult;
	return 0;
}

void cli_format_size(uint64_t bytes, char *buf, size_t len)
{
	static const char units[] = "KMGT";
	int i = -1;

	if (!len)
		return;
	while (bytes && i < 3 && !(bytes & (KiB - 1))) {
		bytes >>= 10;
		i++;
	}
	if (i < 0)
		snprintf(buf, len, "%lluB", (unsigned long long)bytes);
	else
		snprintf(buf, len, "%llu%c", (unsigned long long)bytes, units[i]);
}

int cli_parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = {"on", "true", "yes", "1"};
	static const char *const no[] = {"off", "false", "no", "0"};

	if (!s)
		return -EINVAL;
	for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
		if (!strcmp(s, yes[i])) {
			*out = true;
			return 0;
		}
		if (!strcmp(s, no[i])) {
			*out = false;
			return 0;
		}
	}
	return -EINVAL;
}
