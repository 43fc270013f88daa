/*
 * ee-dcapgen - writes a TDX quote signed by a fake DCAP hierarchy, its
 * collateral and the root a development network pins (EE_DEV_ROOT_CA).
 * TEST AND DEVELOPMENT ONLY: the quote proves nothing about hardware.
 *
 *   ee-dcapgen [-o DIR] [-r REPORTDATA_HEX] [-5] [-t 2|3] [-d] [-k]
 *
 *   -o DIR   output directory (default "."): quote.bin, quote.b64,
 *            collateral.json, root.pem, root.key (mode 0600).  When
 *            DIR/root.key and DIR/root.pem exist they are reused, so the
 *            pinned root stays the same from run to run; the rest of the
 *            hierarchy is new every time.
 *   -r HEX   the quote's 64-byte REPORTDATA (128 hex digits; default zeros)
 *   -5       quote version 5 (default 4)
 *   -t TYPE  version 5 body type: 2 (TDX 1.0, default) or 3 (TDX 1.5)
 *   -d       set the TD's DEBUG attribute (a verifier must refuse it)
 *   -k       also write attestation_key.pem (mode 0600): with quote.bin it
 *            is the development kit ee-agent signs its quotes with
 *            (EE_QUOTE_SOURCE=dev, EE_DEV_QUOTE_DIR; docs/AGENT.md)
 *
 * Everything else is dcapgen's UpToDate default at the current time.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base64.h"
#include "dcapgen.h"
#include "util.h"

#define PATH_MAX_LEN 4096

static void usage(void)
{
	fputs("usage: ee-dcapgen [-o DIR] [-r REPORTDATA_HEX] [-5] [-t 2|3] [-d] [-k]\n", stderr);
	exit(2);
}

static char *read_text(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	char *text = NULL;
	size_t len = 0, cap = 0;
	for (;;) {
		if (cap - len < 4096) {
			cap = cap ? 2 * cap : 8192;
			char *p = realloc(text, cap);
			if (!p) {
				free(text);
				fclose(f);
				return NULL;
			}
			text = p;
		}
		size_t got = fread(text + len, 1, cap - len - 1, f);
		if (got == 0)
			break;
		len += got;
	}
	fclose(f);
	text[len] = '\0';
	return text;
}

static int write_file(const char *dir, const char *name, const void *data, size_t len, mode_t mode)
{
	char path[PATH_MAX_LEN];
	if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path)) {
		fprintf(stderr, "ee-dcapgen: %s/%s: path too long\n", dir, name);
		return -1;
	}
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
	if (fd < 0) {
		fprintf(stderr, "ee-dcapgen: %s: %s\n", path, strerror(errno));
		return -1;
	}
	const unsigned char *p = data;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			fprintf(stderr, "ee-dcapgen: %s: %s\n", path, strerror(errno));
			close(fd);
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	if (close(fd) < 0) {
		fprintf(stderr, "ee-dcapgen: %s: %s\n", path, strerror(errno));
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	const char *dir = ".";
	unsigned char report_data[DCAPGEN_REPORT_DATA_LEN] = { 0 };
	struct dcapgen_quote_options q;
	dcapgen_quote_defaults(&q);
	bool kit = false;
	int c;
	while ((c = getopt(argc, argv, "o:r:5t:dk")) != -1) {
		size_t got = 0;
		switch (c) {
		case 'o':
			dir = optarg;
			break;
		case 'r':
			if (strlen(optarg) != 2 * DCAPGEN_REPORT_DATA_LEN ||
			    util_hex_decode(optarg, strlen(optarg), report_data, sizeof(report_data),
			                    &got) < 0) {
				fputs("ee-dcapgen: -r wants 128 hex digits\n", stderr);
				return 2;
			}
			break;
		case '5':
			q.version = 5;
			break;
		case 't':
			if (strcmp(optarg, "2") != 0 && strcmp(optarg, "3") != 0)
				usage();
			q.body_type = (uint16_t)atoi(optarg);
			break;
		case 'd':
			q.td_attributes[0] |= 1;
			break;
		case 'k':
			kit = true;
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();

	char key_path[PATH_MAX_LEN], cert_path[PATH_MAX_LEN];
	snprintf(key_path, sizeof(key_path), "%s/root.key", dir);
	snprintf(cert_path, sizeof(cert_path), "%s/root.pem", dir);
	struct dcapgen_options o;
	dcapgen_defaults(&o);
	char *old_key = read_text(key_path), *old_cert = read_text(cert_path);
	if (old_key && old_cert) {
		o.root_key_pem = old_key;
		o.root_cert_pem = old_cert;
	}

	struct dcapgen *g = NULL;
	unsigned char *quote = NULL;
	size_t quote_len = 0;
	char *collateral = NULL, *root_pem = NULL, *root_key = NULL, *b64 = NULL, *att_key = NULL;
	int rc = 1;
	if (dcapgen_create(&o, &g) < 0 || dcapgen_quote(g, report_data, &q, &quote, &quote_len) < 0 ||
	    dcapgen_collateral_json(g, &collateral) < 0 || dcapgen_root_pem(g, &root_pem) < 0 ||
	    dcapgen_root_key_pem(g, &root_key) < 0 ||
	    (kit && dcapgen_attestation_key_pem(g, &att_key) < 0))
		goto out;
	b64 = malloc(base64_encoded_len(quote_len) + 2);
	if (!b64)
		goto out;
	base64_encode(quote, quote_len, b64);
	strcat(b64, "\n");
	if (write_file(dir, "quote.bin", quote, quote_len, 0644) < 0 ||
	    write_file(dir, "quote.b64", b64, strlen(b64), 0644) < 0 ||
	    write_file(dir, "collateral.json", collateral, strlen(collateral), 0644) < 0 ||
	    write_file(dir, "root.pem", root_pem, strlen(root_pem), 0644) < 0 ||
	    write_file(dir, "root.key", root_key, strlen(root_key), 0600) < 0 ||
	    (kit && write_file(dir, "attestation_key.pem", att_key, strlen(att_key), 0600) < 0))
		goto out;
	printf("%s/quote.bin (%zu bytes), quote.b64, collateral.json, root.pem%s%s\n", dir,
	       quote_len, old_key && old_cert ? " (kept)" : ", root.key",
	       kit ? ", attestation_key.pem" : "");
	rc = 0;
out:
	free(att_key);
	free(b64);
	free(root_key);
	free(root_pem);
	free(collateral);
	free(quote);
	dcapgen_destroy(g);
	free(old_key);
	free(old_cert);
	return rc;
}
