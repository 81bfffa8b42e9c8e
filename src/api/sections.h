/* sections.h: one parser per config section, shared by request bodies and config files. */
#pragma once

#include <jansson.h>

#include "api/api.h"

/*
 * Each reads the JSON object o (named `w` in messages, e.g. "drives[0]") and applies it to c
 * only if the whole object is valid. url_id is the {id} from the URL, or NULL in a config
 * file (then the body's id is used). Return 0, -EINVAL with a message, or -ENOMEM.
 */
/* A path field: non-empty, at most API_PATH_MAX - 1 bytes, and (if must_exist) naming a
 * regular file (or, with allow_blockdev, a block device) that kiln can open for reading, and
 * writing with want_write. The same return convention as the api_json getters. */
int api_get_path(const json_t *o, const char *key, const char *what, bool required,
		 bool must_exist, bool want_write, bool allow_blockdev, const char **out, char *err,
		 size_t errlen) __must_check;

int api_sec_boot_source(struct api_config *c, const json_t *o, const char *w, char *err,
			size_t n) __must_check;
int api_sec_machine(struct api_config *c, const json_t *o, const char *w, bool patch, char *err,
		    size_t n) __must_check;
int api_sec_drive(struct api_config *c, const json_t *o, const char *url_id, const char *w,
		  char *err, size_t n) __must_check;
int api_sec_net(struct api_config *c, const json_t *o, const char *url_id, const char *w, char *err,
		size_t n) __must_check;
int api_sec_entropy(struct api_config *c, const json_t *o, const char *w, char *err,
		    size_t n) __must_check;
int api_sec_serial(struct api_config *c, const json_t *o, const char *w, char *err,
		   size_t n) __must_check;
int api_sec_logger(struct api_config *c, const json_t *o, const char *w, char *err,
		   size_t n) __must_check;
int api_sec_metrics(struct api_config *c, const json_t *o, const char *w, char *err,
		    size_t n) __must_check;
