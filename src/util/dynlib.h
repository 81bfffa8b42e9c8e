/* dynlib.h: load an optional library (libmicrohttpd) the first time it is needed, in the
 * dynamic glibc build (tests, ASan, hosts without musl; the static kiln links it).
 *
 * A library that a feature alone needs, and that brings a tree of others (Debian's
 * libmicrohttpd: gnutls and 9 more), is opened with dlopen() when that feature starts: `kiln
 * run` never maps it, which keeps exec -> first guest instruction and the VMM's RSS small
 * (docs/design.md "Start-up order"). Each user declares its function pointers with the types of the library's own
 * header (__typeof__), so a call through them is checked like a direct call.
 */
#pragma once

#include <pthread.h>
#include <stddef.h>

struct dynlib_sym {
	const char *name;
	void **slot; /* where the address goes: a function pointer of the symbol's type */
};

struct dynlib {
	const char *soname; /* e.g. "libslirp.so.0" */
	const struct dynlib_sym *syms;
	size_t nr_syms;
	/* state */
	pthread_mutex_t lock;
	void *handle; /* set once every symbol resolved */
};

#define DYNLIB_INIT(so, s) \
	{ .soname = (so), .syms = (s), .nr_syms = sizeof(s) / sizeof((s)[0]), \
	  .lock = PTHREAD_MUTEX_INITIALIZER }

/* Open the library and resolve every symbol, once; later calls return at once. 0, or -ENOENT
 * with "cannot load SONAME: why" in err when the library or a symbol is missing (every slot
 * is then left NULL). Thread-safe. The library stays loaded until exit. */
int dynlib_load(struct dynlib *lib, char *err, size_t errlen);
