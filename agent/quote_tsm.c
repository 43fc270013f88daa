/*
 * quote_tsm.c - a TDX quote from the kernel's configfs-tsm interface
 * (Documentation/ABI/testing/configfs-tsm, Linux 6.7 and later).
 *
 * Each quote gets its own report entry: mkdir an entry, write the 64 bytes
 * of REPORTDATA to inblob, read the quote from outblob, check that the
 * entry's generation is still the one our write made (another writer to
 * the same entry would have changed it, and the quote would not be ours),
 * and remove the entry.  The kernel makes the quote during the read.
 */
#include "agent.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "attest.h"

#define TSM_QUOTE_MAX (ATTEST_MAX_QUOTE_B64 / 4 * 3) /* what the control plane takes */
#define TSM_PATH_MAX 4096

static int entry_file(const char *entry, const char *name, char *out, size_t out_len)
{
	int n = snprintf(out, out_len, "%s/%s", entry, name);
	return (n < 0 || (size_t)n >= out_len) ? -1 : 0;
}

/* Reads a small attribute file (provider, generation) as text without its newline. */
static int read_attribute(const char *entry, const char *name, char *out, size_t out_len)
{
	char path[TSM_PATH_MAX];
	if (entry_file(entry, name, path, sizeof(path)) != 0)
		return -1;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, out, out_len - 1);
	close(fd);
	if (n < 0)
		return -1;
	while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\0'))
		n--;
	out[n] = '\0';
	return 0;
}

static int write_inblob(const char *entry, const unsigned char report_data[64])
{
	char path[TSM_PATH_MAX];
	if (entry_file(entry, "inblob", path, sizeof(path)) != 0)
		return -1;
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = write(fd, report_data, 64);
	int saved = errno;
	close(fd);
	errno = saved;
	return n == 64 ? 0 : -1;
}

static int read_outblob(const char *entry, unsigned char **quote, size_t *quote_len)
{
	char path[TSM_PATH_MAX];
	if (entry_file(entry, "outblob", path, sizeof(path)) != 0)
		return -1;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	unsigned char *buf = malloc(TSM_QUOTE_MAX + 1);
	size_t len = 0;
	int rc = buf ? 0 : -1;
	while (rc == 0) {
		ssize_t n = read(fd, buf + len, TSM_QUOTE_MAX + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			rc = -1;
		else if (n == 0)
			break;
		else if ((len += (size_t)n) > TSM_QUOTE_MAX)
			rc = -1, errno = EFBIG;
	}
	int saved = errno;
	close(fd);
	if (rc != 0 || len == 0) {
		free(buf);
		errno = rc != 0 ? saved : ENODATA;
		return -1;
	}
	*quote = buf;
	*quote_len = len;
	return 0;
}

int quote_tsm_get(const char *dir, const unsigned char report_data[64], unsigned char **quote,
                  size_t *quote_len, struct ee_error *err)
{
	static unsigned long counter; /* only the attestation thread calls this */
	char entry[TSM_PATH_MAX];
	int n = snprintf(entry, sizeof(entry), "%s/ee-agent-%ld-%lu", dir, (long)getpid(), counter++);
	if (n < 0 || (size_t)n >= sizeof(entry))
		return ee_fail(err, 500, "tsm_path_too_long");
	if (mkdir(entry, 0700) != 0)
		return ee_fail_detail(err, 503, "tsm_unavailable", strerror(errno));

	char provider[64] = "";
	int rc = 0;
	if (read_attribute(entry, "provider", provider, sizeof(provider)) == 0 &&
	    strcmp(provider, "tdx_guest") != 0) {
		rc = ee_fail_detail(err, 503, "tsm_provider", provider);
	} else if (write_inblob(entry, report_data) != 0) {
		rc = ee_fail_detail(err, 503, "tsm_inblob", strerror(errno));
	} else if (read_outblob(entry, quote, quote_len) != 0) {
		rc = ee_fail_detail(err, 503, "tsm_outblob", strerror(errno));
	} else {
		char generation[32] = "";
		if (read_attribute(entry, "generation", generation, sizeof(generation)) != 0 ||
		    strcmp(generation, "1") != 0) {
			free(*quote);
			*quote = NULL;
			rc = ee_fail(err, 503, "tsm_generation_changed");
		}
	}
	rmdir(entry);
	return rc;
}
