/* cmd_opts.c: the options of `kiln snapshot` and `kiln restore`. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/internal.h"

static bool dashdash(const char *s) { return s[0] == '-' && s[1] == '-'; }

static struct cli_cmd_opt *find(struct cli_cmd_opt *opts, size_t nopts, const char *arg, size_t len)
{
	for (size_t i = 0; i < nopts; i++)
		if (strlen(opts[i].name) == len && !strncmp(opts[i].name, arg, len))
			return &opts[i];
	return NULL;
}

int cli_cmd_parse(const char *cmd, struct cli_cmd_opt *opts, size_t nopts, int argc, char **argv,
		  char *err, size_t errlen)
{
	struct cli_clip cl;

	for (size_t i = 0; i < nopts; i++)
		opts[i].n = 0;
	for (int i = 0; i < argc; i++) {
		const char *arg = argv[i], *eq = strchr(arg, '='), *val;
		size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
		struct cli_cmd_opt *o;

		if (!strcmp(arg, "--help") || !strcmp(arg, "-h"))
			return 1;
		if (!dashdash(arg))
			return cli_fail(err, errlen, "%s: unexpected argument '%s'", cmd,
					cli_clip(&cl, arg));
		o = find(opts, nopts, arg, len);
		if (!o) {
			char name[CLI_CLIP + 4];

			snprintf(name, sizeof(name), "%.*s%s", (int)MIN(len, CLI_CLIP), arg,
				 len > CLI_CLIP ? "..." : "");
			return cli_fail(err, errlen, "%s: unknown option '%s' (try `%s --help`)",
					cmd, name, cmd);
		}
		if (o->n >= (o->max ? o->max : 1))
			return o->max > 1
				   ? cli_fail(err, errlen, "%s: %s given more than %u times", cmd,
					      o->name, o->max)
				   : cli_fail(err, errlen, "%s: %s given twice", cmd, o->name);
		if (o->flag) {
			if (eq)
				return cli_fail(err, errlen, "%s: %s takes no value", cmd, o->name);
			o->n++;
			continue;
		}
		if (eq)
			val = eq + 1;
		else if (i + 1 < argc && !dashdash(argv[i + 1]))
			val = argv[++i];
		else
			return cli_fail(err, errlen, "%s: %s needs a value", cmd, o->name);
		if (!*val)
			return cli_fail(err, errlen, "%s: %s: empty value", cmd, o->name);
		o->vals[o->n++] = val;
	}
	return 0;
}
