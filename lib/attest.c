/* attest.c - the REPORTDATA binding of measurements and nonce; see attest.h. */
#include "attest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "util.h"

struct measurement_line {
	const char *key;
	char value[ATTEST_MAX_MEASUREMENT_LEN + 1];
};

static int compare_lines(const void *a, const void *b)
{
	return strcmp(((const struct measurement_line *)a)->key,
	              ((const struct measurement_line *)b)->key);
}

static bool text_ok(const char *s, size_t len)
{
	if (len > ATTEST_MAX_MEASUREMENT_LEN || strlen(s) != len)
		return false;
	for (size_t i = 0; i < len; i++) {
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	}
	return true;
}

int attest_measurements_digest(struct json_object *measurements, unsigned char out[32],
                               struct ee_error *err)
{
	if (!measurements || !json_object_is_type(measurements, json_type_object))
		return ee_fail(err, 400, "invalid_measurements");
	size_t count = (size_t)json_object_object_length(measurements);
	if (count > ATTEST_MAX_MEASUREMENTS)
		return ee_fail(err, 400, "invalid_measurements");
	struct measurement_line *lines = calloc(count ? count : 1, sizeof(*lines));
	if (!lines)
		return ee_fail(err, 503, "out_of_memory");
	size_t n = 0;
	int rc = 0;
	json_object_object_foreach(measurements, key, value) {
		if (!text_ok(key, strlen(key)) || strchr(key, '=')) {
			rc = -1;
			break;
		}
		lines[n].key = key;
		switch (value ? json_object_get_type(value) : json_type_null) {
		case json_type_string:
			if (!text_ok(json_object_get_string(value), (size_t)json_object_get_string_len(value)))
				rc = -1;
			else
				snprintf(lines[n].value, sizeof(lines[n].value), "%s", json_object_get_string(value));
			break;
		case json_type_boolean:
			snprintf(lines[n].value, sizeof(lines[n].value), "%s",
			         json_object_get_boolean(value) ? "true" : "false");
			break;
		case json_type_int:
			snprintf(lines[n].value, sizeof(lines[n].value), "%lld",
			         (long long)json_object_get_int64(value));
			break;
		default:
			rc = -1; /* null, floating point, nested objects and arrays have no one form */
		}
		if (rc != 0)
			break;
		n++;
	}
	if (rc != 0) {
		free(lines);
		return ee_fail(err, 400, "invalid_measurements");
	}
	qsort(lines, n, sizeof(*lines), compare_lines);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned int dlen = 0;
	bool ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1;
	for (size_t i = 0; ok && i < n; i++) {
		ok = EVP_DigestUpdate(md, lines[i].key, strlen(lines[i].key)) == 1 &&
		     EVP_DigestUpdate(md, "=", 1) == 1 &&
		     EVP_DigestUpdate(md, lines[i].value, strlen(lines[i].value)) == 1 &&
		     EVP_DigestUpdate(md, "\n", 1) == 1;
	}
	ok = ok && EVP_DigestFinal_ex(md, out, &dlen) == 1;
	EVP_MD_CTX_free(md);
	free(lines);
	return ok ? 0 : ee_fail(err, 500, "digest_failed");
}

int attest_expected_report_data(struct json_object *measurements, const char *nonce_hex,
                                unsigned char out[ATTEST_REPORT_DATA_LEN], struct ee_error *err)
{
	if (attest_measurements_digest(measurements, out, err) != 0)
		return -1;
	unsigned int dlen = 0;
	if (EVP_Digest(nonce_hex, strlen(nonce_hex), out + 32, &dlen, EVP_sha256(), NULL) != 1)
		return ee_fail(err, 500, "digest_failed");
	return 0;
}

