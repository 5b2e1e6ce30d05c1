/* fuzz_config.c: the config file parser (libcommon/config.c over inih's
 * ini_parse), with the relay's and the charger's real option tables, then
 * the relay's cross-checks of what it read (relay_config_check: URLs,
 * metrics address, mail address, timing rules).
 *
 * Input: the bytes of the file, given as --config /proc/self/fd/N of a
 * memfd (cfg_load reads its file by path, like the daemons do).
 *
 * Properties: every outcome is CFG_OK or CFG_ERROR with a one-line message
 * (terminated, not empty, no newline); a file the relay accepts can be
 * checked; every string read is freed by cfg_free (no leak); no crash. */
#include "fuzz.h"

#include "../../charger/charger_config.h"
#include "relay_config.h"

#include <sys/mman.h>
#include <unistd.h>

/* Load spec from the file at path into cfg; the outcome, checked. */
static int load(const struct cfg_spec *spec, void *cfg, const char *path)
{
	char *argv[] = {(char *)spec->program, (char *)"--config", (char *)path, NULL};
	char err[512];
	int rc = cfg_load(spec, cfg, 3, argv, err, sizeof(err));
	FUZZ_CHECK(rc == CFG_OK || rc == CFG_ERROR, "cfg_load: neither OK nor ERROR for a file");
	FUZZ_CHECK_STRING(err);
	FUZZ_CHECK(rc == CFG_OK ? !err[0] : err[0] != '\0', "a refusal without a message");
	FUZZ_CHECK(!strchr(err, '\n'), "a message of more than one line");
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int fd = memfd_create("fuzz_config", MFD_CLOEXEC);
	if (fd < 0)
		return 0;
	if (size && write(fd, data, size) != (ssize_t)size) {
		close(fd);
		return 0;
	}
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);

	struct relay_config relay = {0};
	if (load(&relay_cfg_spec, &relay, path) == CFG_OK) {
		char why[512];
		why[0] = '\0';
		relay_config_check(&relay, why, sizeof(why));
		FUZZ_CHECK_STRING(why);
	}
	cfg_free(&relay_cfg_spec, &relay);

	struct charger_config charger = {0};
	load(&charger_cfg_spec, &charger, path);
	cfg_free(&charger_cfg_spec, &charger);
	close(fd);
	return 0;
}
