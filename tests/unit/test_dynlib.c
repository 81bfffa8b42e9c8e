/* test_dynlib: util/dynlib.c, the dynamic build's on-demand loader of libmicrohttpd. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "kiln-build.h"
#include "util/dynlib.h"

static double (*cos_p)(double);
static double (*sqrt_p)(double);
static void *missing_p;

static void test_load_resolves_every_symbol(void **state)
{
	(void)state;
	static const struct dynlib_sym syms[] = { { "cos", (void **)&cos_p },
						  { "sqrt", (void **)&sqrt_p } };
	struct dynlib lib = DYNLIB_INIT("libm.so.6", syms);
	char err[256] = "";
	cos_p = NULL;
	sqrt_p = NULL;
	assert_int_equal(dynlib_load(&lib, err, sizeof(err)), 0);
	assert_non_null(cos_p);
	assert_true(sqrt_p(16.0) == 4.0);
	/* A second load is a no-op that keeps the pointers. */
	double (*before)(double) = cos_p;
	assert_int_equal(dynlib_load(&lib, err, sizeof(err)), 0);
	assert_ptr_equal(cos_p, before);
}

static void test_missing_library_is_a_clear_error(void **state)
{
	(void)state;
	static const struct dynlib_sym syms[] = { { "cos", (void **)&cos_p } };
	struct dynlib lib = DYNLIB_INIT("libkiln-no-such-lib.so.7", syms);
	char err[256] = "";
	cos_p = NULL;
	assert_int_equal(dynlib_load(&lib, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "cannot load libkiln-no-such-lib.so.7: "));
	assert_null(strchr(err, '\n'));
	assert_null(cos_p);
	/* Not cached as loaded: it fails again the same way. */
	assert_int_equal(dynlib_load(&lib, err, sizeof(err)), -ENOENT);
}

static void test_missing_symbol_leaves_no_pointer(void **state)
{
	(void)state;
	static const struct dynlib_sym syms[] = { { "cos", (void **)&cos_p },
						  { "kiln_no_such_symbol", &missing_p } };
	struct dynlib lib = DYNLIB_INIT("libm.so.6", syms);
	char err[256] = "";
	cos_p = NULL;
	assert_int_equal(dynlib_load(&lib, err, sizeof(err)), -ENOENT);
	assert_string_equal(err, "cannot load libm.so.6: no symbol kiln_no_such_symbol");
	assert_null(cos_p); /* the one that resolved is cleared again */
	assert_null(missing_p);
}

/* The soname kiln was configured with (meson option mhd_soname) is the one this host has: a
 * wrong one would fail only when the API starts. */
static void test_configured_sonames_exist(void **state)
{
	(void)state;
	static void *p;
	static const struct dynlib_sym mhd[] = { { "MHD_start_daemon", &p } };
	struct dynlib b = DYNLIB_INIT(KILN_MHD_SONAME, mhd);
	char err[256] = "";
	assert_int_equal(dynlib_load(&b, err, sizeof(err)), 0);
	assert_non_null(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_load_resolves_every_symbol),
		cmocka_unit_test(test_missing_library_is_a_clear_error),
		cmocka_unit_test(test_missing_symbol_leaves_no_pointer),
		cmocka_unit_test(test_configured_sonames_exist),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
