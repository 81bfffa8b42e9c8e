/* dynlib.c: load an optional library the first time it is needed (see dynlib.h). */
#include "util/dynlib.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>

int dynlib_load(struct dynlib *lib, char *err, size_t errlen)
{
	int ret = 0;
	pthread_mutex_lock(&lib->lock);
	if (lib->handle)
		goto out;
	/* RTLD_NOW: a missing symbol fails here, with a message, not at a first call later. */
	void *h = dlopen(lib->soname, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		const char *why = dlerror();
		snprintf(err, errlen, "cannot load %s: %s", lib->soname, why ? why : "dlopen failed");
		ret = -ENOENT;
		goto out;
	}
	for (size_t i = 0; i < lib->nr_syms; i++) {
		dlerror();
		void *p = dlsym(h, lib->syms[i].name);
		if (!p) {
			snprintf(err, errlen, "cannot load %s: no symbol %s", lib->soname,
				 lib->syms[i].name);
			for (size_t j = 0; j < i; j++)
				*lib->syms[j].slot = NULL;
			dlclose(h);
			ret = -ENOENT;
			goto out;
		}
		*lib->syms[i].slot = p;
	}
	lib->handle = h;
out:
	pthread_mutex_unlock(&lib->lock);
	return ret;
}
