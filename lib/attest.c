/* attest.c - REPORTDATA binding and the interim verifier; see attest.h. */
#include "attest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "registry.h"
#include "testquote.h"
#include "util.h"

struct verifier {
	struct verifier_options opts;
};

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

int verifier_create(const struct verifier_options *opts, struct verifier **out,
                    struct ee_error *err)
{
	*out = calloc(1, sizeof(**out));
	if (!*out)
		return ee_fail(err, 503, "out_of_memory");
	(*out)->opts = *opts;
	return 0;
}

void verifier_destroy(struct verifier *v) { free(v); }

static void verdict(struct attest_verdict *out, bool verified, bool sealed, const char *reason)
{
	out->verified = verified;
	out->sealed = sealed;
	snprintf(out->reason, sizeof(out->reason), "%s", reason);
}

void verifier_verify(struct verifier *v, const struct attest_evidence *ev,
                     struct attest_verdict *out)
{
	struct ee_error err;
	if (!ev->quote_b64 || ev->quote_b64_len == 0 || !ev->measurements ||
	    !json_object_is_type(ev->measurements, json_type_object) ||
	    json_object_object_length(ev->measurements) == 0)
		return verdict(out, false, false, "missing_quote_or_measurements");
	struct json_object *sealed_value = NULL;
	bool sealed = json_object_object_get_ex(ev->measurements, "sealed", &sealed_value) &&
	              json_object_is_type(sealed_value, json_type_boolean) &&
	              json_object_get_boolean(sealed_value);

	unsigned char expected[ATTEST_REPORT_DATA_LEN];
	if (attest_expected_report_data(ev->measurements, ev->nonce_hex, expected, &err) != 0)
		return verdict(out, false, sealed, err.reason);
	if (registry_network_requires_sealed(ev->network) && !sealed)
		return verdict(out, false, sealed, "sealed_required");

	unsigned char claimed[ATTEST_REPORT_DATA_LEN];
	size_t claimed_len = 0;
	if (!ev->report_data_hex ||
	    util_hex_decode(ev->report_data_hex, strlen(ev->report_data_hex), claimed,
	                    sizeof(claimed), &claimed_len) != 0 ||
	    claimed_len != ATTEST_REPORT_DATA_LEN ||
	    memcmp(claimed, expected, ATTEST_REPORT_DATA_LEN) != 0)
		return verdict(out, false, sealed, "report_data_mismatch");

	if (!v->opts.test_quotes_on_sandbox || strcmp(ev->network, "sandbox-1") != 0)
		return verdict(out, false, sealed, "dcap_unavailable");
	unsigned char quoted[ATTEST_REPORT_DATA_LEN];
	bool quoted_sealed;
	if (testquote_parse(ev->quote_b64, ev->quote_b64_len, quoted, &quoted_sealed) != 0)
		return verdict(out, false, sealed, "dcap_verification_failed");
	/* The quote, not the agent's JSON, is what binds the nonce. */
	if (memcmp(quoted, expected, ATTEST_REPORT_DATA_LEN) != 0)
		return verdict(out, false, sealed, "report_data_mismatch");
	if (quoted_sealed != sealed)
		return verdict(out, false, sealed, "sealed_mismatch");
	verdict(out, true, sealed, "ok");
}
