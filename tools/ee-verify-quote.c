/*
 * ee-verify-quote - verify one TDX quote the way ee-tunneld does, and say
 * why it passes or fails, as JSON on stdout.  For operators and for people
 * debugging an agent that is not attested.
 *
 *   ee-verify-quote (--quote FILE | --quote-b64 TEXT | --quote-b64-file FILE)
 *                   (--collateral FILE | --pccs URL)
 *                   [--root PEM_FILE] [--at TIME] [--accept STATUSES] [--deny ADVISORIES]
 *
 * Trust: Intel's SGX Root CA, pinned by its SHA-256 fingerprint (the quote
 * carries the certificate); --root pins another root instead (a
 * development hierarchy).  --collateral reads collateral in the JSON form
 * docs/ATTESTATION.md describes; --pccs fetches it (Intel PCS API v4).
 * --at verifies at a Unix time or RFC 3339 instant instead of now.
 * Exit status: 0 verified and accepted, 1 refused, 2 could not run.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "base64.h"
#include "dcap.h"
#include "dcap_x509.h"
#include "jsonutil.h"
#include "log.h"
#include "pccs.h"
#include "tdx_quote.h"
#include "timeutil.h"
#include "util.h"
#include "verifier.h"

#define FILE_MAX (4 * 1024 * 1024)

static char *slurp(const char *path, size_t *len)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	if (!f)
		return NULL;
	struct buf b;
	buf_init(&b);
	char chunk[8192];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0 && b.len <= FILE_MAX)
		buf_append(&b, chunk, n);
	if (f != stdin)
		fclose(f);
	if (b.failed || b.len > FILE_MAX || !b.data) {
		buf_free(&b);
		return NULL;
	}
	*len = b.len;
	return b.data;
}

static void put_hex(struct json_object *o, const char *key, const uint8_t *p, size_t n)
{
	char hex[2 * 128 + 1];
	if (!p || n > 128) {
		json_put_string(o, key, NULL);
		return;
	}
	util_hex_encode(p, n, hex);
	json_put_string(o, key, hex);
}

static struct json_object *quote_json(const struct tdx_quote *q)
{
	struct json_object *o = json_object_new_object();
	json_put_int(o, "version", q->version);
	json_put_int(o, "body_type", q->body_type);
	json_put_int(o, "tee_type", q->tee_type);
	put_hex(o, "tee_tcb_svn", q->td.tee_tcb_svn, 16);
	put_hex(o, "mrseam", q->td.mr_seam, 48);
	put_hex(o, "mrsignerseam", q->td.mr_signer_seam, 48);
	put_hex(o, "td_attributes", q->td.td_attributes, 8);
	json_put_bool(o, "debug", tdx_quote_is_debug(q));
	put_hex(o, "xfam", q->td.xfam, 8);
	put_hex(o, "mrtd", q->td.mr_td, 48);
	put_hex(o, "mrconfigid", q->td.mr_config_id, 48);
	put_hex(o, "mrowner", q->td.mr_owner, 48);
	put_hex(o, "mrownerconfig", q->td.mr_owner_config, 48);
	static const char *const rtmr[] = {"rtmr0", "rtmr1", "rtmr2", "rtmr3"};
	for (int i = 0; i < 4; i++)
		put_hex(o, rtmr[i], q->td.rtmr[i], 48);
	put_hex(o, "report_data", q->td.report_data, 64);
	return o;
}

/* Trust from the quote's own root when it is Intel's, by fingerprint. */
static int intel_trust(const struct tdx_quote *q, struct dcap_trust **trust, struct ee_error *err)
{
	struct dcap_chain chain;
	if (dcap_chain_from_pem(q->pck_chain_pem, q->pck_chain_pem_len, &chain) != 0 || chain.count < 2)
		return ee_fail(err, 400, "pck_chain_invalid");
	struct dcap_cert *root = &chain.certs[chain.count - 1];
	unsigned char sha[32];
	unsigned int n;
	EVP_Digest(root->der, root->der_len, sha, &n, EVP_sha256(), NULL);
	int rc = -1;
	if (memcmp(sha, verifier_intel_root_sha256, 32) != 0) {
		ee_fail(err, 403, "pck_chain_untrusted");
	} else {
		BIO *bio = BIO_new(BIO_s_mem());
		char *pem;
		long len;
		if (bio && PEM_write_bio_X509(bio, root->x509) == 1 &&
		    (len = BIO_get_mem_data(bio, &pem)) > 0 && dcap_trust_create(trust, err) == 0 &&
		    dcap_trust_add_pem(*trust, pem, (size_t)len, err) == 0)
			rc = 0;
		BIO_free(bio);
	}
	dcap_chain_free(&chain);
	return rc;
}

static int parse_time(const char *text, int64_t *out)
{
	char *end;
	long long v = strtoll(text, &end, 10);
	if (*end == '\0' && end != text && v >= 0) {
		*out = v;
		return 0;
	}
	int64_t ms;
	if (time_parse_rfc3339(text, strlen(text), &ms) != 0)
		return -1;
	*out = ms / 1000;
	return 0;
}

static void usage(FILE *out)
{
	fprintf(out,
	        "usage: ee-verify-quote (--quote FILE | --quote-b64 TEXT | --quote-b64-file FILE)\n"
	        "                       (--collateral FILE | --pccs URL)\n"
	        "                       [--root PEM_FILE] [--at UNIX_SECONDS|RFC3339]\n"
	        "                       [--accept UpToDate,...] [--deny INTEL-SA-...,...]\n");
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{"quote", required_argument, NULL, 'q'},      {"quote-b64", required_argument, NULL, 'b'},
		{"quote-b64-file", required_argument, NULL, 'B'}, {"collateral", required_argument, NULL, 'c'},
		{"pccs", required_argument, NULL, 'p'},       {"root", required_argument, NULL, 'r'},
		{"at", required_argument, NULL, 'a'},         {"accept", required_argument, NULL, 'A'},
		{"deny", required_argument, NULL, 'd'},       {"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *quote_file = NULL, *quote_b64 = NULL, *quote_b64_file = NULL;
	const char *collateral_file = NULL, *pccs_url = NULL, *root_file = NULL;
	const char *accept = "UpToDate", *deny = "";
	int64_t at = time_now_ms() / 1000;
	int opt;
	while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (opt) {
		case 'q': quote_file = optarg; break;
		case 'b': quote_b64 = optarg; break;
		case 'B': quote_b64_file = optarg; break;
		case 'c': collateral_file = optarg; break;
		case 'p': pccs_url = optarg; break;
		case 'r': root_file = optarg; break;
		case 'a':
			if (parse_time(optarg, &at) != 0) {
				fprintf(stderr, "ee-verify-quote: --at wants Unix seconds or RFC 3339\n");
				return 2;
			}
			break;
		case 'A': accept = optarg; break;
		case 'd': deny = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!!quote_file + !!quote_b64 + !!quote_b64_file != 1 || !!collateral_file + !!pccs_url != 1) {
		usage(stderr);
		return 2;
	}
	ee_log_init("ee-verify-quote", EE_LOG_WARN);

	/* The quote, raw or base64. */
	unsigned char *quote = NULL;
	size_t quote_len = 0, text_len = 0;
	char *text = NULL;
	if (quote_file) {
		quote = (unsigned char *)slurp(quote_file, &quote_len);
	} else {
		text = quote_b64 ? strdup(quote_b64) : slurp(quote_b64_file, &text_len);
		if (text) {
			text_len = strlen(text);
			while (text_len && (text[text_len - 1] == '\n' || text[text_len - 1] == '\r' ||
			                    text[text_len - 1] == ' '))
				text[--text_len] = '\0';
			quote = malloc(base64_decoded_max(text_len) + 1);
			if (quote && base64_decode(text, text_len, quote, &quote_len) != 0) {
				free(quote);
				quote = NULL;
			}
		}
		free(text);
	}
	if (!quote) {
		fprintf(stderr, "ee-verify-quote: cannot read the quote (or it is not base64)\n");
		return 2;
	}

	struct json_object *out = json_object_new_object();
	struct ee_error err;
	struct tdx_quote q;
	struct dcap_trust *trust = NULL;
	char *collateral = NULL;
	int status = 1;
	char at_text[EE_RFC3339_MAX];
	time_format_rfc3339(at * 1000, at_text);
	json_put_string(out, "verified_at", at_text);
	if (tdx_quote_parse(quote, quote_len, &q, &err) != 0) {
		json_put_bool(out, "verified", false);
		json_put_string(out, "reason", err.reason);
		json_put_string(out, "step", "parse");
		goto print;
	}
	json_object_object_add(out, "quote", quote_json(&q));

	if (root_file) {
		size_t n;
		char *pem = slurp(root_file, &n);
		if (!pem || dcap_trust_create(&trust, &err) != 0 ||
		    dcap_trust_add_pem(trust, pem, n, &err) != 0) {
			free(pem);
			fprintf(stderr, "ee-verify-quote: cannot use %s as a root\n", root_file);
			status = 2;
			goto done;
		}
		free(pem);
	} else if (intel_trust(&q, &trust, &err) != 0) {
		json_put_bool(out, "verified", false);
		json_put_string(out, "reason", err.reason);
		json_put_string(out, "step", "trust");
		goto print;
	}

	if (collateral_file) {
		size_t n;
		collateral = slurp(collateral_file, &n);
		if (!collateral) {
			fprintf(stderr, "ee-verify-quote: cannot read %s\n", collateral_file);
			status = 2;
			goto done;
		}
	} else {
		/* A throwaway cache: one run, one fetch. */
		char dir[] = "/tmp/ee-verify-quote-XXXXXX", path[64];
		struct ee_db *db = NULL;
		struct pccs_client *client = NULL;
		struct pccs_options po;
		pccs_options_default(&po);
		snprintf(po.base_url, sizeof(po.base_url), "%s", pccs_url);
		struct dcap_chain chain;
		struct dcap_sgx_extension ext;
		curl_global_init(CURL_GLOBAL_DEFAULT);
		if (!mkdtemp(dir) ||
		    dcap_chain_from_pem(q.pck_chain_pem, q.pck_chain_pem_len, &chain) != 0) {
			status = 2;
			goto done;
		}
		int rc = dcap_sgx_extension_from_cert(chain.certs[0].x509, &ext);
		char cn[128] = "";
		if (chain.count > 1)
			X509_NAME_get_text_by_NID(X509_get_subject_name(chain.certs[1].x509), NID_commonName,
			                          cn, sizeof(cn));
		dcap_chain_free(&chain);
		char fmspc[13];
		util_hex_encode(ext.fmspc, 6, fmspc);
		snprintf(path, sizeof(path), "%s/cache.db", dir);
		struct ee_db_options dbo = {5000, "NORMAL", true};
		if (rc == 0 && db_open(path, &dbo, &db, &err) == 0 &&
		    pccs_client_create(&po, &client, &err) == 0)
			rc = pccs_get_collateral(client, db, fmspc, strstr(cn, "Processor") ? "processor" : "platform",
			                         time_now_ms(), &collateral, &err);
		else
			rc = -1;
		pccs_client_destroy(client);
		db_close(db);
		unlink(path);
		char wal[80];
		snprintf(wal, sizeof(wal), "%s-wal", path);
		unlink(wal);
		snprintf(wal, sizeof(wal), "%s-shm", path);
		unlink(wal);
		rmdir(dir);
		if (rc != 0 || !collateral) {
			json_put_bool(out, "verified", false);
			json_put_string(out, "reason", err.reason[0] ? err.reason : "collateral_unavailable");
			json_put_string(out, "step", "collateral");
			goto print;
		}
	}

	struct dcap_collateral c;
	struct dcap_result r;
	if (dcap_collateral_from_json(collateral, strlen(collateral), &c, &err) != 0) {
		json_put_bool(out, "verified", false);
		json_put_string(out, "reason", err.reason);
		json_put_string(out, "step", "collateral");
		goto print;
	}
	dcap_verify(trust, &c, quote, quote_len, at, &r, &err);
	dcap_collateral_free(&c);
	json_put_bool(out, "signatures_verified", r.signatures_verified);
	json_put_string(out, "tcb_status", r.tcb_status[0] ? r.tcb_status : NULL);
	json_put_string(out, "platform_status", r.platform_status[0] ? r.platform_status : NULL);
	json_put_string(out, "module_status", r.module_status[0] ? r.module_status : NULL);
	json_put_string(out, "qe_status", r.qe_status[0] ? r.qe_status : NULL);
	struct json_object *advisories = json_object_new_array();
	for (size_t i = 0; i < r.advisory_count; i++)
		json_object_array_add(advisories, json_object_new_string(r.advisory_ids[i]));
	json_object_object_add(out, "advisory_ids", advisories);
	if (r.have_pck_extension) {
		put_hex(out, "fmspc", r.fmspc, 6);
		put_hex(out, "pce_id", r.pce_id, 2);
	}
	json_put_time(out, "collateral_next_update", r.collateral_next_update * 1000);
	if (!r.verified) {
		json_put_bool(out, "verified", false);
		json_put_string(out, "reason", r.reason);
		json_put_string(out, "step", "dcap");
		goto print;
	}
	/* The policy, as ee-tunneld's EE_TCB_ACCEPT and EE_ADVISORY_DENY. */
	bool accepted = false;
	for (const char *p = accept; *p;) {
		size_t len = strcspn(p, ",");
		if (len == strlen(r.tcb_status) && strncmp(p, r.tcb_status, len) == 0)
			accepted = true;
		p += len + (p[len] == ',');
	}
	const char *denied = NULL;
	for (size_t i = 0; i < r.advisory_count && !denied; i++) {
		for (const char *p = deny; *p;) {
			size_t len = strcspn(p, ",");
			if (len == strlen(r.advisory_ids[i]) && strncmp(p, r.advisory_ids[i], len) == 0)
				denied = r.advisory_ids[i];
			p += len + (p[len] == ',');
		}
	}
	char reason[EE_REASON_MAX];
	if (!accepted)
		snprintf(reason, sizeof(reason), "tcb_status_not_accepted:%s", r.tcb_status);
	else if (denied)
		snprintf(reason, sizeof(reason), "advisory_refused:%s", denied);
	else
		snprintf(reason, sizeof(reason), "ok");
	json_put_bool(out, "verified", accepted && !denied);
	json_put_string(out, "reason", reason);
	json_put_string(out, "step", accepted && !denied ? "done" : "policy");
	status = accepted && !denied ? 0 : 1;
print:
	printf("%s\n", json_object_to_json_string_ext(out, JSON_C_TO_STRING_PRETTY |
	                                                      JSON_C_TO_STRING_NOSLASHESCAPE));
done:
	json_object_put(out);
	dcap_trust_destroy(trust);
	free(collateral);
	free(quote);
	return status;
}
