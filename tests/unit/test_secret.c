/* test_secret.c: the gateway key comes only from a file no one else may
 * read, or from the environment (issue 8, part 3): group- or
 * world-readable files, directories, missing files, keys with blanks,
 * control characters (CR/LF: a header injection) or NULs are refused, and
 * no message ever shows the key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "secret.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define KEY "sk_test_SeCrEt4711"
#define ENV "CG_TEST_GATEWAY_KEY"

static char dir[64], path[128];

static int make_dir(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/cg-secret.XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/key", dir);
	unsetenv(ENV);
	return 0;
}

static int remove_dir(void **state)
{
	(void)state;
	unlink(path);
	rmdir(dir);
	unsetenv(ENV);
	return 0;
}

/* Write the key file (len bytes of text) with mode. */
static void key_file(const char *text, size_t len, mode_t mode)
{
	unlink(path);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, len, f), len);
	fclose(f);
	assert_int_equal(chmod(path, mode), 0);
}

/* secret_load from path (or the environment when p is NULL): its result,
 * and the message must never show the key. */
static int load(const char *p, char *key, char *why)
{
	why[0] = '\0';
	int rc = secret_load(p, ENV, key, 256, why, 256);
	if (strstr(why, "SeCrEt4711"))
		fail_msg("the message shows the key: %s", why);
	return rc;
}

static void owner_only_file_is_read(void **state)
{
	(void)state;
	char key[256], why[256];
	key_file(KEY "\n", strlen(KEY) + 1, 0600);
	assert_int_equal(load(path, key, why), 0);
	assert_string_equal(key, KEY); /* the trailing newline is dropped */
	key_file(KEY, strlen(KEY), 0400);
	assert_int_equal(load(path, key, why), 0);
	assert_string_equal(key, KEY);
}

static void readable_by_others_is_refused(void **state)
{
	(void)state;
	const mode_t modes[] = {0640, 0604, 0644, 0660, 0606, 0610, 0601, 0620};
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		char key[256], why[256];
		key_file(KEY, strlen(KEY), modes[i]);
		if (load(path, key, why) != -1)
			fail_msg("mode %04o was accepted", (unsigned)modes[i]);
		assert_non_null(strstr(why, "group or others"));
		assert_non_null(strstr(why, path));
	}
}

static void not_a_key_file_is_refused(void **state)
{
	(void)state;
	char key[256], why[256];
	assert_int_equal(load(dir, key, why), -1); /* a directory */
	assert_non_null(strstr(why, "not a regular file"));
	unlink(path);
	assert_int_equal(load(path, key, why), -1); /* missing */
	assert_non_null(strstr(why, "No such file"));
	key_file("", 0, 0600);
	assert_int_equal(load(path, key, why), -1);
	assert_non_null(strstr(why, "empty"));
}

static void bad_characters_are_refused(void **state)
{
	(void)state;
	static const char *const bad[] = {
		KEY "\r\nX-Evil: 1", KEY "\nAuthorization: Bearer other", "sk_test_ a", "sk_test_\ta",
		"sk_test_\x7f", "sk_test_\xc3\xa9",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char key[256], why[256];
		key_file(bad[i], strlen(bad[i]), 0600);
		if (load(path, key, why) != -1)
			fail_msg("file key %zu was accepted", i);
		setenv(ENV, bad[i], 1);
		if (load(NULL, key, why) != -1)
			fail_msg("environment key %zu was accepted", i);
	}
	char key[256], why[256];
	key_file(KEY "\0tail", strlen(KEY) + 5, 0600);
	assert_int_equal(load(path, key, why), -1);
	assert_non_null(strstr(why, "NUL"));
}

static void environment_when_no_file(void **state)
{
	(void)state;
	char key[256], why[256];
	assert_int_equal(load(NULL, key, why), -1);
	assert_non_null(strstr(why, ENV));
	setenv(ENV, KEY, 1);
	assert_int_equal(load(NULL, key, why), 0);
	assert_string_equal(key, KEY);
	assert_int_equal(load("", key, why), 0);
	/* once read, the variable's bytes are overwritten, then it is gone */
	char *v = getenv(ENV);
	secret_scrub_env(ENV);
	assert_null(getenv(ENV));
	assert_null(strstr(v, "SeCrEt"));
}

static void too_long_is_refused(void **state)
{
	(void)state;
	char big[300], key[256], why[256];
	memset(big, 'k', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	key_file(big, strlen(big), 0600);
	assert_int_equal(load(path, key, why), -1);
	assert_non_null(strstr(why, "too long"));
	setenv(ENV, big, 1);
	assert_int_equal(load(NULL, key, why), -1);
	assert_non_null(strstr(why, "too long"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(owner_only_file_is_read, make_dir, remove_dir),
		cmocka_unit_test_setup_teardown(readable_by_others_is_refused, make_dir, remove_dir),
		cmocka_unit_test_setup_teardown(not_a_key_file_is_refused, make_dir, remove_dir),
		cmocka_unit_test_setup_teardown(bad_characters_are_refused, make_dir, remove_dir),
		cmocka_unit_test_setup_teardown(environment_when_no_file, make_dir, remove_dir),
		cmocka_unit_test_setup_teardown(too_long_is_refused, make_dir, remove_dir),
	};
	return cmocka_run_group_tests_name("secret", tests, NULL, NULL);
}
