/* verifier.c - the whole decision on one attestation; see verifier.h. */
#include "verifier.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "attest.h"
#include "base64.h"
#include "config.h"
#include "dcap.h"
#include "dcap_x509.h"
#include "jsonutil.h"
#include "log.h"
#include "registry.h"
#include "tdx_quote.h"
#include "timeutil.h"
#include "util.h"

/* SHA-256 of the DER of Intel's SGX Root CA ("44:A0:19:6B ... 74:D3"). */
const unsigned char verifier_intel_root_sha256[32] = {
	0x44, 0xa0, 0x19, 0x6b, 0x2b, 0x99, 0xf8, 0x89, 0xb8, 0xe1, 0x49, 0xe9, 0x5b, 0x80, 0x7a, 0x35,
	0x0e, 0x74, 0x24, 0x96, 0x43, 0x99, 0xe8, 0x85, 0xa7, 0xcb, 0xb8, 0xcc, 0xfa, 0xb6, 0x74, 0xd3};

#define PREPARED_SLOTS 8
#define MAX_QUOTE_B64 (TDX_QUOTE_MAX_BYTES / 3 * 4 + 4)
#define ALLOWLIST_FILE_MAX (1024 * 1024)

/*
 * Intel collateral checked once (CRLs and TCB signing chains verified, TCB
 * info and QE identity parsed and their signatures checked) and kept while
 * the PCCS client hands out the same text: its generation says so without
 * hashing the text.
 */
struct prepared_slot {
	char key[48];                /* "intel:<fmspc>:<ca>" */
	uint64_t generation;         /* pccs_collateral's, of the text it was prepared from */
	struct dcap_prepared *prepared;
	int64_t used;
};

struct verifier {
	struct verifier_options opts;
	struct ee_db *db;
	struct pccs_client *pccs;
	struct allowlist_client *allowlist;
	struct dcap_trust *intel_trust; /* built from the first chain whose root has Intel's fingerprint */
	struct dcap_trust *dev_trust;
	unsigned char dev_root_sha[32];
	unsigned char intel_root_sha[32];   /* verifier_intel_root_sha256, or a test's */
	struct dcap_prepared *dev_prepared; /* EE_DEV_COLLATERAL_FILE, prepared on first use */
	struct dcap_pck_cache *pck_cache;   /* verified PCK chains (dcap.h) */
	struct prepared_slot slots[PREPARED_SLOTS];
	int64_t tick;
};

static char *read_file(const char *path, size_t max, struct ee_error *err, const char *var)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		log_error("%s: cannot open %s: %s", var, path, strerror(errno));
		ee_fail_detail(err, 500, "invalid_config", var);
		return NULL;
	}
	struct buf b;
	buf_init(&b);
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0 && b.len <= max)
		buf_append(&b, chunk, n);
	fclose(f);
	if (b.failed || b.len > max || !b.data) {
		buf_free(&b);
		ee_fail_detail(err, 500, "invalid_config", var);
		return NULL;
	}
	return b.data;
}

static void copy_env(const char *name, const char *def, char *out, size_t size)
{
	char *v = config_get_string(name, def);
	snprintf(out, size, "%s", v ? v : "");
	free(v);
}

void verifier_options_default(struct verifier_options *o)
{
	memset(o, 0, sizeof(*o));
	snprintf(o->tcb_accept_forge, sizeof(o->tcb_accept_forge), "UpToDate");
	snprintf(o->tcb_accept_sandbox, sizeof(o->tcb_accept_sandbox), "UpToDate");
	pccs_options_default(&o->pccs);
	allowlist_options_default(&o->allowlist);
}

int verifier_options_from_env(struct verifier_options *o, struct ee_error *err)
{
	memset(o, 0, sizeof(*o));
	copy_env("EE_TCB_ACCEPT", "UpToDate", o->tcb_accept_forge, sizeof(o->tcb_accept_forge));
	copy_env("EE_SANDBOX_TCB_ACCEPT", "UpToDate", o->tcb_accept_sandbox, sizeof(o->tcb_accept_sandbox));
	copy_env("EE_ADVISORY_DENY", "", o->advisory_deny, sizeof(o->advisory_deny));
	copy_env("EE_ALLOWLIST_DIR", "", o->allowlist_dir, sizeof(o->allowlist_dir));
	if (config_get_bool("EE_SANDBOX_LEGACY_NONCE", false, &o->legacy_nonce_sandbox, err) ||
	    pccs_options_from_env(&o->pccs, err) || allowlist_options_from_env(&o->allowlist, err))
		return -1;
	char *root = config_get_string("EE_DEV_ROOT_CA", NULL);
	char *collateral = config_get_string("EE_DEV_COLLATERAL_FILE", NULL);
	int rc = 0;
	if (root) {
		o->dev_root_pem = read_file(root, DCAP_ROOT_PEM_MAX, err, "EE_DEV_ROOT_CA");
		rc = o->dev_root_pem ? 0 : -1;
	}
	if (rc == 0 && collateral) {
		o->dev_collateral_json =
			read_file(collateral, DCAP_COLLATERAL_JSON_MAX, err, "EE_DEV_COLLATERAL_FILE");
		rc = o->dev_collateral_json ? 0 : -1;
	}
	free(root);
	free(collateral);
	return rc;
}

void verifier_options_free(struct verifier_options *o)
{
	free(o->dev_root_pem);
	free(o->dev_collateral_json);
	o->dev_root_pem = o->dev_collateral_json = NULL;
	allowlist_options_clear(&o->allowlist);
}

int verifier_create(const struct verifier_options *opts, struct ee_db *db, struct verifier **out,
                    struct ee_error *err)
{
	*out = NULL;
	struct verifier *v = calloc(1, sizeof(*v));
	if (!v)
		return ee_fail(err, 503, "out_of_memory");
	v->opts = *opts;
	v->opts.dev_root_pem = opts->dev_root_pem ? strdup(opts->dev_root_pem) : NULL;
	v->opts.dev_collateral_json = opts->dev_collateral_json ? strdup(opts->dev_collateral_json) : NULL;
	v->db = db;
	static const unsigned char unset[32];
	memcpy(v->intel_root_sha,
	       memcmp(opts->test_intel_root_sha256, unset, 32) != 0 ? opts->test_intel_root_sha256
	                                                            : verifier_intel_root_sha256,
	       32);
	size_t pck_cache_max = opts->pck_cache_max ? opts->pck_cache_max : DCAP_PCK_CACHE_DEFAULT;
	if (pccs_client_create(&opts->pccs, &v->pccs, err) != 0 ||
	    allowlist_client_create(&opts->allowlist, &v->allowlist, err) != 0 ||
	    dcap_pck_cache_create(pck_cache_max, &v->pck_cache, err) != 0) {
		verifier_destroy(v);
		return -1;
	}
	if (v->opts.dev_root_pem) {
		struct dcap_chain chain;
		if (dcap_trust_create(&v->dev_trust, err) != 0 ||
		    dcap_trust_add_pem(v->dev_trust, v->opts.dev_root_pem, strlen(v->opts.dev_root_pem),
		                       err) != 0 ||
		    dcap_chain_from_pem(v->opts.dev_root_pem, strlen(v->opts.dev_root_pem), &chain) != 0 ||
		    chain.count != 1) {
			log_error("EE_DEV_ROOT_CA must hold exactly one certificate");
			verifier_destroy(v);
			return ee_fail_detail(err, 500, "invalid_config", "EE_DEV_ROOT_CA");
		}
		unsigned int n;
		EVP_Digest(chain.certs[0].der, chain.certs[0].der_len, v->dev_root_sha, &n, EVP_sha256(), NULL);
		dcap_chain_free(&chain);
		if (memcmp(v->dev_root_sha, v->intel_root_sha, 32) == 0) {
			verifier_destroy(v);
			return ee_fail_detail(err, 500, "invalid_config", "EE_DEV_ROOT_CA");
		}
	}
	*out = v;
	return 0;
}

void verifier_destroy(struct verifier *v)
{
	if (!v)
		return;
	for (int i = 0; i < PREPARED_SLOTS; i++)
		dcap_prepared_free(v->slots[i].prepared);
	dcap_prepared_free(v->dev_prepared);
	dcap_pck_cache_destroy(v->pck_cache);
	dcap_trust_destroy(v->intel_trust);
	dcap_trust_destroy(v->dev_trust);
	pccs_client_destroy(v->pccs);
	allowlist_client_destroy(v->allowlist);
	free(v->opts.dev_root_pem);
	free(v->opts.dev_collateral_json);
	free(v);
}

static void verdict(struct attest_verdict *out, bool verified, const char *reason)
{
	out->verified = verified;
	snprintf(out->reason, sizeof(out->reason), "%s", reason);
}

static void verdict_detail(struct attest_verdict *out, const char *reason, const char *detail)
{
	out->verified = false;
	snprintf(out->reason, sizeof(out->reason), "%s:%s", reason, detail);
}

/* True when item is one of the comma-separated entries of list. */
static bool listed(const char *list, const char *item)
{
	size_t n = strlen(item);
	for (const char *p = list; p && *p;) {
		while (*p == ',' || *p == ' ')
			p++;
		size_t len = strcspn(p, ", ");
		if (len == n && n && strncmp(p, item, n) == 0)
			return true;
		p += len;
	}
	return false;
}

static bool hex_equal(const char *text, const uint8_t *bytes, size_t n)
{
	if (strlen(text) != 2 * n)
		return false;
	char hex[2 * TDX_REPORT_DATA_LEN + 1];
	util_hex_encode(bytes, n, hex);
	return strcasecmp(hex, text) == 0;
}

/* The quote register a measurement key names, or NULL. */
static const uint8_t *quote_register(const struct tdx_quote *q, const char *key)
{
	if (strcmp(key, "mrtd") == 0)
		return q->td.mr_td;
	static const char *const rtmr[] = {"rtmr0", "rtmr1", "rtmr2", "rtmr3"};
	for (int i = 0; i < 4; i++) {
		if (strcmp(key, rtmr[i]) == 0)
			return q->td.rtmr[i];
	}
	return NULL;
}

/* Two measurement values are the same JSON value (strings, booleans, integers). */
static bool same_value(struct json_object *a, struct json_object *b)
{
	if (!a || !b || json_object_get_type(a) != json_object_get_type(b))
		return false;
	switch (json_object_get_type(a)) {
	case json_type_string:
		return strcmp(json_object_get_string(a), json_object_get_string(b)) == 0;
	case json_type_boolean:
		return json_object_get_boolean(a) == json_object_get_boolean(b);
	case json_type_int:
		return json_object_get_int64(a) == json_object_get_int64(b);
	default:
		return false;
	}
}

/* The sandbox's local allowlists: <dir>/<owner>/<repo>/<tag>.json. */
static int allowlist_from_dir(struct verifier *v, const char *repo, const char *tag,
                              struct json_object **out, struct ee_error *err)
{
	char path[1024];
	snprintf(path, sizeof(path), "%s/%s/%s.json", v->opts.allowlist_dir, repo, tag);
	FILE *f = fopen(path, "rb");
	if (!f)
		return ee_fail(err, 404, "allowlist_not_found");
	struct buf b;
	buf_init(&b);
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0 && b.len <= ALLOWLIST_FILE_MAX)
		buf_append(&b, chunk, n);
	fclose(f);
	*out = b.data && b.len <= ALLOWLIST_FILE_MAX ? json_parse_value(b.data, b.len) : NULL;
	buf_free(&b);
	if (!*out || allowlist_validate(*out, err) != 0) {
		json_object_put(*out);
		*out = NULL;
		return ee_fail(err, 502, "allowlist_invalid");
	}
	return 0;
}

/* Checks the release's allowlist against what the agent claims and its quote binds. */
static bool check_allowlist(struct verifier *v, const struct attest_evidence *ev,
                            const struct tdx_quote *q, struct attest_verdict *out)
{
	struct json_object *list = NULL;
	struct ee_error err;
	bool local = v->opts.allowlist_dir[0] && strcmp(ev->network, "sandbox-1") == 0;
	int rc = local ? allowlist_from_dir(v, ev->repo, ev->release_tag, &list, &err)
	               : allowlist_get(v->allowlist, v->db, ev->repo, ev->release_tag, time_now_ms(),
	                               &list, &err);
	if (rc != 0) {
		/* Not reachable is our problem; no allowlist for the release is the agent's. */
		out->unavailable = err.status >= 500 && strcmp(err.reason, "allowlist_invalid") != 0;
		verdict(out, false, err.reason);
		return false;
	}
	struct json_object *expected = NULL, *quoted = NULL;
	json_object_object_get_ex(list, "measurements", &expected);
	json_object_object_get_ex(list, "quote_measurements", &quoted);
	bool ok = true;
	if (expected) {
		json_object_object_foreach(expected, key, want) {
			struct json_object *got = NULL;
			json_object_object_get_ex(ev->measurements, key, &got);
			if (!same_value(got, want)) {
				verdict_detail(out, "measurement_mismatch", key);
				ok = false;
				break;
			}
		}
	}
	if (ok && quoted) {
		json_object_object_foreach(quoted, key, want) {
			const uint8_t *reg = quote_register(q, key);
			if (!reg || !json_object_is_type(want, json_type_string) ||
			    !hex_equal(json_object_get_string(want), reg, 48)) {
				verdict_detail(out, "quote_measurement_mismatch", key);
				ok = false;
				break;
			}
		}
	}
	json_object_put(list);
	return ok;
}

/* Prepares collateral text under trust. */
static struct dcap_prepared *prepare_text(const struct dcap_trust *trust, const char *text,
                                          struct ee_error *err)
{
	struct dcap_collateral c;
	if (dcap_collateral_from_json(text, strlen(text), &c, err) != 0)
		return NULL;
	struct dcap_prepared *prepared = NULL;
	dcap_collateral_prepare(trust, &c, &prepared, err);
	dcap_collateral_free(&c);
	return prepared;
}

/* The prepared Intel collateral for key; re-prepared when the PCCS client's text changed. */
static struct dcap_prepared *prepared_for(struct verifier *v, const char *key,
                                          const struct dcap_trust *trust, const char *text,
                                          uint64_t generation, struct ee_error *err)
{
	struct prepared_slot *slot = NULL, *oldest = &v->slots[0];
	for (int i = 0; i < PREPARED_SLOTS; i++) {
		if (v->slots[i].prepared && strcmp(v->slots[i].key, key) == 0)
			slot = &v->slots[i];
		if (!v->slots[i].prepared || v->slots[i].used < oldest->used)
			oldest = &v->slots[i];
	}
	if (slot && slot->generation == generation) {
		slot->used = ++v->tick;
		return slot->prepared;
	}
	if (!slot)
		slot = oldest;
	dcap_prepared_free(slot->prepared);
	slot->prepared = prepare_text(trust, text, err);
	if (!slot->prepared)
		return NULL;
	snprintf(slot->key, sizeof(slot->key), "%s", key);
	slot->generation = generation;
	slot->used = ++v->tick;
	return slot->prepared;
}

/* Trust built from a chain's own root once its fingerprint is Intel's. */
static struct dcap_trust *intel_trust(struct verifier *v, const unsigned char *root_der,
                                      size_t root_len, struct ee_error *err)
{
	if (v->intel_trust)
		return v->intel_trust;
	if (dcap_trust_create(&v->intel_trust, err) != 0 ||
	    dcap_trust_add_der(v->intel_trust, root_der, root_len, err) != 0) {
		dcap_trust_destroy(v->intel_trust);
		v->intel_trust = NULL;
		ee_fail(err, 500, "trust_invalid");
		return NULL;
	}
	return v->intel_trust;
}

void verifier_verify(struct verifier *v, const struct attest_evidence *ev,
                     struct attest_verdict *out)
{
	memset(out, 0, sizeof(*out));
	struct ee_error err;
	if (!ev->quote_b64 || ev->quote_b64_len == 0 || !ev->measurements ||
	    !json_object_is_type(ev->measurements, json_type_object) ||
	    json_object_object_length(ev->measurements) == 0)
		return verdict(out, false, "missing_quote_or_measurements");
	struct json_object *sealed_value = NULL;
	out->sealed = json_object_object_get_ex(ev->measurements, "sealed", &sealed_value) &&
	              json_object_is_type(sealed_value, json_type_boolean) &&
	              json_object_get_boolean(sealed_value);
	unsigned char expected[ATTEST_REPORT_DATA_LEN];
	if (attest_expected_report_data(ev->measurements, ev->nonce_hex, expected, &err) != 0)
		return verdict(out, false, err.reason);
	bool sandbox = strcmp(ev->network, "sandbox-1") == 0;
	if (registry_network_requires_sealed(ev->network) && !out->sealed)
		return verdict(out, false, "sealed_required");
	/* The agent's own copy of REPORTDATA, when sent, must be the one it was challenged for. */
	if (ev->report_data_hex && !hex_equal(ev->report_data_hex, expected, ATTEST_REPORT_DATA_LEN)) {
		bool legacy = v->opts.legacy_nonce_sandbox && sandbox;
		unsigned char zero[32] = {0};
		unsigned char claimed[ATTEST_REPORT_DATA_LEN];
		size_t n = 0;
		if (!legacy || util_hex_decode(ev->report_data_hex, strlen(ev->report_data_hex), claimed,
		                               sizeof(claimed), &n) != 0 ||
		    n != ATTEST_REPORT_DATA_LEN || memcmp(claimed, expected, 32) != 0 ||
		    memcmp(claimed + 32, zero, 32) != 0)
			return verdict(out, false, "report_data_mismatch");
	}
	/* The quote itself. */
	if (ev->quote_b64_len > MAX_QUOTE_B64)
		return verdict(out, false, "quote_too_large");
	unsigned char *raw = malloc(base64_decoded_max(ev->quote_b64_len) + 1);
	size_t raw_len = 0;
	if (!raw)
		return verdict(out, false, "out_of_memory");
	struct tdx_quote q;
	struct dcap_pem_ders ders = {0};
	struct dcap_pck *pck = NULL;
	if (base64_decode(ev->quote_b64, ev->quote_b64_len, raw, &raw_len) != 0) {
		verdict(out, false, "invalid_quote_encoding");
		goto done;
	}
	if (tdx_quote_parse(raw, raw_len, &q, &err) != 0) {
		verdict(out, false, err.reason);
		goto done;
	}
	/* REPORTDATA of the quote binds the measurements and this nonce (no replay). */
	const uint8_t *rd = q.td.report_data;
	unsigned char zero[32] = {0};
	if (memcmp(rd, expected, 32) != 0) {
		verdict(out, false, "report_data_mismatch");
		goto done;
	}
	if (memcmp(rd + 32, expected + 32, 32) != 0) {
		bool legacy = memcmp(rd + 32, zero, 32) == 0;
		if (!legacy) {
			verdict(out, false, "report_data_mismatch");
			goto done;
		}
		if (!(v->opts.legacy_nonce_sandbox && sandbox)) {
			verdict(out, false, "nonce_not_bound");
			goto done;
		}
	}
	/* The registers the agent names are the quote's, not merely claimed. */
	json_object_object_foreach(ev->measurements, name, value) {
		const uint8_t *reg = quote_register(&q, name);
		if (reg && (!json_object_is_type(value, json_type_string) ||
		            !hex_equal(json_object_get_string(value), reg, 48))) {
			verdict_detail(out, "measurement_not_bound", name);
			goto done;
		}
	}
	/* Which root the chain ends at decides the trust and the collateral. */
	if (dcap_pem_split(q.pck_chain_pem, q.pck_chain_pem_len, &ders) != 0 || ders.count < 2) {
		verdict(out, false, "pck_chain_invalid");
		goto done;
	}
	unsigned char root_sha[32];
	unsigned int n;
	const unsigned char *root_der = ders.der[ders.count - 1];
	size_t root_len = ders.len[ders.count - 1];
	EVP_Digest(root_der, root_len, root_sha, &n, EVP_sha256(), NULL);
	bool is_intel = memcmp(root_sha, v->intel_root_sha, 32) == 0;
	bool is_dev = v->dev_trust && sandbox && memcmp(root_sha, v->dev_root_sha, 32) == 0;
	if (!is_intel && !is_dev) {
		verdict(out, false, "pck_chain_untrusted");
		goto done;
	}
	const struct dcap_trust *trust = is_dev ? v->dev_trust : intel_trust(v, root_der, root_len, &err);
	if (!trust) {
		verdict(out, false, err.reason);
		goto done;
	}
	/*
	 * Everything the quote can prove by itself comes before anything is
	 * fetched for it: the PCK chain's signatures up to the pinned root and
	 * its validity, the QE report signature, the attestation key binding
	 * and the quote signature.  A forged quote makes no request to GitHub
	 * or the PCCS.
	 */
	struct dcap_result result;
	int64_t at = v->opts.fixed_time_s ? v->opts.fixed_time_s : time_now_ms() / 1000;
	if (dcap_quote_check(trust, v->pck_cache, &q, at, &pck, &result, &err) != 0) {
		out->unavailable = result.status >= 500;
		verdict(out, false, result.reason[0] ? result.reason : err.reason);
		goto done;
	}
	if (!check_allowlist(v, ev, &q, out))
		goto done;

	/* Collateral: Intel's from the PCCS, the development root's from its file. */
	struct dcap_prepared *prepared = NULL;
	if (is_dev) {
		if (!v->opts.dev_collateral_json) {
			out->unavailable = true;
			verdict(out, false, "collateral_unavailable:dev");
			goto done;
		}
		if (!v->dev_prepared)
			v->dev_prepared = prepare_text(v->dev_trust, v->opts.dev_collateral_json, &err);
		prepared = v->dev_prepared;
	} else {
		const struct dcap_sgx_extension *ext = dcap_pck_extension(pck);
		if (!ext) {
			verdict(out, false, "pck_extension_invalid");
			goto done;
		}
		/* The PCK CRL to fetch is the one of the CA that issued this PCK. */
		const char *ca = dcap_pck_processor_ca(pck) ? "processor" : "platform";
		char fmspc[13], slot_key[48];
		util_hex_encode(ext->fmspc, 6, fmspc);
		snprintf(slot_key, sizeof(slot_key), "intel:%s:%s", fmspc, ca);
		const char *collateral = NULL;
		uint64_t generation = 0;
		if (pccs_collateral(v->pccs, v->db, fmspc, ca, time_now_ms(), &collateral, &generation,
		                    &err) != 0) {
			out->unavailable = true;
			verdict(out, false, err.reason);
			goto done;
		}
		prepared = prepared_for(v, slot_key, trust, collateral, generation, &err);
	}
	if (!prepared) {
		out->unavailable = true;
		verdict(out, false, err.reason);
		goto done;
	}
	if (dcap_quote_check_collateral(prepared, &q, pck, at, &result, &err) != 0 || !result.verified) {
		/* Collateral that has expired or does not fit is ours to fix, not the agent's fault. */
		out->unavailable = result.status == 503;
		snprintf(out->tcb_status, sizeof(out->tcb_status), "%s", result.tcb_status);
		verdict(out, false, result.reason[0] ? result.reason : err.reason);
		goto done;
	}
	snprintf(out->tcb_status, sizeof(out->tcb_status), "%s", result.tcb_status);
	const char *accept = sandbox ? v->opts.tcb_accept_sandbox : v->opts.tcb_accept_forge;
	if (!listed(accept, result.tcb_status)) {
		verdict_detail(out, "tcb_status_not_accepted", result.tcb_status);
		goto done;
	}
	for (size_t i = 0; i < result.advisory_count; i++) {
		if (listed(v->opts.advisory_deny, result.advisory_ids[i])) {
			verdict_detail(out, "advisory_refused", result.advisory_ids[i]);
			goto done;
		}
	}
	verdict(out, true, "ok");
done:
	dcap_pck_release(pck);
	dcap_pem_ders_free(&ders);
	free(raw);
}
