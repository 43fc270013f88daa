/* pccs.c - Intel collateral from a PCCS or the PCS, and its cache; see pccs.h. */
#include "pccs.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <json-c/json.h>
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "config.h"
#include "fetch.h"
#include "jsonutil.h"
#include "log.h"
#include "timeutil.h"
#include "util.h"

#define FMSPC_HEX_LEN 12
#define SIGNATURE_HEX_LEN 128 /* ECDSA P-256 r||s */
#define CACHE_KEY_MAX 64

#define MEMO_SLOTS 8

/*
 * The collateral last assembled for one FMSPC and CA, kept in memory until
 * the first of its items is due for a refresh (the moment item_get would
 * stop serving that item from the database), so a verification with
 * current collateral costs no database read, no CRL decoding and no JSON
 * assembly.
 */
struct memo {
	char fmspc[FMSPC_HEX_LEN + 1];
	char ca[16];
	char *json;
	int64_t serve_until; /* Unix ms */
	uint64_t generation; /* changes whenever json does */
	int64_t used;
};

struct pccs_client {
	struct pccs_options opt;
	CURL *curl;
	struct buf body; /* the last response body, reused between fetches */
	struct memo memo[MEMO_SLOTS];
	uint64_t generation;
	int64_t tick;
};

enum item_kind { ITEM_TCB_INFO, ITEM_QE_IDENTITY, ITEM_PCK_CRL, ITEM_ROOT_CA_CRL, ITEM_COUNT };

struct item_spec {
	const char *name;         /* the <item> of reasons and logs */
	const char *chain_header; /* response header holding the issuer chain, or NULL */
	const char *member;       /* body member holding the signed JSON, NULL for a CRL */
};

static const struct item_spec item_specs[ITEM_COUNT] = {
	[ITEM_TCB_INFO] = {"tcb_info", "TCB-Info-Issuer-Chain", "tcbInfo"},
	[ITEM_QE_IDENTITY] = {"qe_identity", "SGX-Enclave-Identity-Issuer-Chain", "enclaveIdentity"},
	[ITEM_PCK_CRL] = {"pck_crl", "SGX-PCK-CRL-Issuer-Chain", NULL},
	[ITEM_ROOT_CA_CRL] = {"root_ca_crl", NULL, NULL},
};

/*
 * One collateral item.  body is what collateral_cache keeps: the verbatim
 * response body for TCB info and QE identity (the signed value and its
 * signature are taken out of it again on every read, so the cache holds
 * exactly what Intel signed), hex DER for a CRL.  value and signature are
 * decoded from body.
 */
struct item {
	char *body;
	char *chain;     /* PEM issuer chain, or NULL */
	int64_t next_update;
	int64_t fetched_at;
	char *value;     /* the signed JSON text; for a CRL, body itself */
	char *signature; /* hex, JSON items only */
};

static void item_free(struct item *it)
{
	if (it->value != it->body)
		free(it->value);
	free(it->body);
	free(it->chain);
	free(it->signature);
	memset(it, 0, sizeof(*it));
}

void pccs_options_default(struct pccs_options *o)
{
	memset(o, 0, sizeof(*o));
	snprintf(o->base_url, sizeof(o->base_url), "%s", PCCS_DEFAULT_URL);
	o->connect_timeout_ms = PCCS_DEFAULT_CONNECT_TIMEOUT_MS;
	o->timeout_ms = PCCS_DEFAULT_TIMEOUT_MS;
	o->max_body_bytes = PCCS_DEFAULT_MAX_BODY_BYTES;
	o->refresh_margin_ms = PCCS_DEFAULT_REFRESH_MARGIN_MS;
}

int pccs_options_from_env(struct pccs_options *o, struct ee_error *err)
{
	pccs_options_default(o);
	char *url = config_get_string("EE_PCCS_URL", PCCS_DEFAULT_URL);
	if (!url)
		return ee_fail(err, 500, "out_of_memory");
	int rc = fetch_base_url(url, o->base_url, sizeof(o->base_url));
	free(url);
	if (rc != 0)
		return ee_fail_detail(err, 500, "invalid_config", "EE_PCCS_URL");
	return 0;
}

int pccs_client_create(const struct pccs_options *o, struct pccs_client **out,
                       struct ee_error *err)
{
	*out = NULL;
	struct pccs_client *c = calloc(1, sizeof(*c));
	if (!c)
		return ee_fail(err, 503, "out_of_memory");
	c->opt = *o;
	if (fetch_base_url(o->base_url, c->opt.base_url, sizeof(c->opt.base_url)) != 0) {
		free(c);
		return ee_fail_detail(err, 500, "invalid_config", "EE_PCCS_URL");
	}
	if (!o->root_ca_crl_url[0]) {
		/* Intel's PCS does not serve the root CA CRL under its API; a PCCS does. */
		if (strcmp(c->opt.base_url, PCCS_DEFAULT_URL) == 0)
			snprintf(c->opt.root_ca_crl_url, sizeof(c->opt.root_ca_crl_url), "%s",
			         PCCS_INTEL_ROOT_CA_CRL_URL);
		else if (snprintf(c->opt.root_ca_crl_url, sizeof(c->opt.root_ca_crl_url),
		                  "%s/sgx/certification/v4/rootcacrl",
		                  c->opt.base_url) >= (int)sizeof(c->opt.root_ca_crl_url)) {
			free(c);
			return ee_fail_detail(err, 500, "invalid_config", "EE_PCCS_URL");
		}
	}
	if (o->connect_timeout_ms <= 0 || o->timeout_ms <= 0 || o->max_body_bytes == 0 ||
	    o->refresh_margin_ms < 0) {
		free(c);
		return ee_fail(err, 500, "invalid_config");
	}
	c->curl = curl_easy_init();
	if (!c->curl) {
		free(c);
		return ee_fail(err, 503, "out_of_memory");
	}
	buf_init(&c->body);
	*out = c;
	return 0;
}

void pccs_client_destroy(struct pccs_client *c)
{
	if (!c)
		return;
	for (int i = 0; i < MEMO_SLOTS; i++)
		free(c->memo[i].json);
	curl_easy_cleanup(c->curl);
	buf_free(&c->body);
	free(c);
}

/* ---- taking the signed value out of a body, byte for byte ---- */

static size_t skip_space(const char *s, size_t len, size_t i)
{
	while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
		i++;
	return i;
}

/* s[i] is '"': the index just past the closing quote, or 0. */
static size_t string_end(const char *s, size_t len, size_t i)
{
	for (i++; i < len; i++) {
		if (s[i] == '\\')
			i++;
		else if (s[i] == '"')
			return i + 1;
	}
	return 0;
}

/* The index just past the JSON value starting at s[i], or 0. */
static size_t value_end(const char *s, size_t len, size_t i)
{
	if (i >= len)
		return 0;
	if (s[i] == '"')
		return string_end(s, len, i);
	if (s[i] == '{' || s[i] == '[') {
		size_t depth = 0;
		while (i < len) {
			char ch = s[i];
			if (ch == '"') {
				i = string_end(s, len, i);
				if (i == 0)
					return 0;
				continue;
			}
			if (ch == '{' || ch == '[')
				depth++;
			else if (ch == '}' || ch == ']') {
				if (--depth == 0)
					return i + 1;
			}
			i++;
		}
		return 0;
	}
	size_t start = i;
	while (i < len && s[i] != ',' && s[i] != '}' && s[i] != ']' && s[i] != ' ' &&
	       s[i] != '\t' && s[i] != '\n' && s[i] != '\r')
		i++;
	return i > start ? i : 0;
}

/*
 * The raw text of member key of the top-level object in s: found exactly
 * once (a duplicate would let json-c and this scanner disagree on which one
 * counts), the key written without escapes.  0 with the value's
 * start and length, or -1.
 * The caller has already checked that s parses as JSON.
 */
static int raw_member(const char *s, size_t len, const char *key, const char **out,
                      size_t *out_len)
{
	size_t key_len = strlen(key);
	bool found = false;
	size_t i = skip_space(s, len, 0);
	if (i >= len || s[i] != '{')
		return -1;
	i = skip_space(s, len, i + 1);
	if (i < len && s[i] == '}')
		return -1;
	for (;;) {
		if (i >= len || s[i] != '"')
			return -1;
		size_t key_end = string_end(s, len, i);
		if (key_end == 0)
			return -1;
		bool match = key_end - i - 2 == key_len && memcmp(s + i + 1, key, key_len) == 0;
		i = skip_space(s, len, key_end);
		if (i >= len || s[i] != ':')
			return -1;
		i = skip_space(s, len, i + 1);
		size_t end = value_end(s, len, i);
		if (end == 0)
			return -1;
		if (match) {
			if (found)
				return -1;
			found = true;
			*out = s + i;
			*out_len = end - i;
		}
		i = skip_space(s, len, end);
		if (i < len && s[i] == ',') {
			i = skip_space(s, len, i + 1);
			continue;
		}
		if (i < len && s[i] == '}')
			break;
		return -1;
	}
	return found ? 0 : -1;
}

static bool is_hex(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		char ch = s[i];
		if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F')))
			return false;
	}
	return true;
}

/*
 * A TCB info or QE identity response: {"<member>":{...},"signature":"<hex>"}.
 * The signed value is taken as the exact bytes of the body and parsed on
 * its own, so what is checked here (nextUpdate, FMSPC) is what the verifier
 * will check the signature over.
 */
static int decode_signed_json(const struct item_spec *spec, const char *body, size_t len,
                              const char *fmspc, struct item *it)
{
	int rc = -1;
	struct json_object *whole = json_parse_value(body, len);
	struct json_object *inner = NULL;
	const char *raw = NULL, *sig, *next, *fm;
	size_t raw_len = 0, sig_len, next_len, fm_len;
	if (!whole || !json_object_is_type(whole, json_type_object)) {
		log_warn("collateral %s: body is not a JSON object", spec->name);
		goto out;
	}
	if (raw_member(body, len, spec->member, &raw, &raw_len) != 0 || raw[0] != '{') {
		log_warn("collateral %s: no single \"%s\" object in the body", spec->name, spec->member);
		goto out;
	}
	inner = json_parse_value(raw, raw_len);
	if (!inner || !json_object_is_type(inner, json_type_object)) {
		log_warn("collateral %s: \"%s\" does not parse", spec->name, spec->member);
		goto out;
	}
	if (json_get_string(inner, "nextUpdate", &next, &next_len) != JSON_FIELD_OK ||
	    time_parse_rfc3339(next, next_len, &it->next_update) != 0) {
		log_warn("collateral %s: no valid nextUpdate", spec->name);
		goto out;
	}
	if (fmspc && (json_get_string(inner, "fmspc", &fm, &fm_len) != JSON_FIELD_OK ||
	              fm_len != FMSPC_HEX_LEN || strncasecmp(fm, fmspc, FMSPC_HEX_LEN) != 0)) {
		log_warn("collateral %s: not the TCB info of FMSPC %s", spec->name, fmspc);
		goto out;
	}
	if (json_get_string(whole, "signature", &sig, &sig_len) != JSON_FIELD_OK ||
	    sig_len != SIGNATURE_HEX_LEN || !is_hex(sig, sig_len)) {
		log_warn("collateral %s: no valid signature", spec->name);
		goto out;
	}
	it->value = strndup(raw, raw_len);
	it->signature = strndup(sig, sig_len);
	if (!it->value || !it->signature)
		goto out;
	rc = 0;
out:
	json_object_put(inner);
	json_object_put(whole);
	return rc;
}

/* ---- CRLs ---- */

static int64_t asn1_time_ms(const ASN1_TIME *t, bool *ok)
{
	struct tm tm;
	*ok = false;
	if (!t || ASN1_TIME_to_tm(t, &tm) != 1)
		return 0;
	time_t secs = timegm(&tm);
	if (secs == (time_t)-1)
		return 0;
	*ok = true;
	return (int64_t)secs * 1000;
}

/*
 * A CRL as DER, PEM or hex text: its DER as hex (malloc'd) and its
 * nextUpdate.  The DER is kept exactly as sent (PEM is only unwrapped), so
 * the CRL's signature still covers it.
 */
static int decode_crl(const char *name, const unsigned char *data, size_t len, char **hex_out,
                      int64_t *next_update)
{
	unsigned char *der = NULL;
	long der_len = 0;
	enum { DER_BORROWED, DER_OPENSSL, DER_MALLOC } owner = DER_BORROWED;
	int rc = -1;
	*hex_out = NULL;

	size_t start = 0, end = len;
	while (start < end && (data[start] == ' ' || data[start] == '\n' || data[start] == '\r' ||
	                       data[start] == '\t'))
		start++;
	while (end > start && (data[end - 1] == ' ' || data[end - 1] == '\n' ||
	                       data[end - 1] == '\r' || data[end - 1] == '\t'))
		end--;
	if (end - start >= 10 && memcmp(data + start, "-----BEGIN", 10) == 0) {
		BIO *bio = BIO_new_mem_buf(data + start, (int)(end - start));
		char *pem_name = NULL, *pem_header = NULL;
		if (bio && PEM_read_bio(bio, &pem_name, &pem_header, &der, &der_len) == 1 &&
		    strcmp(pem_name, "X509 CRL") == 0)
			owner = DER_OPENSSL;
		else {
			OPENSSL_free(der);
			der = NULL;
		}
		OPENSSL_free(pem_name);
		OPENSSL_free(pem_header);
		BIO_free(bio);
		if (!der) {
			log_warn("collateral %s: PEM body is not an X509 CRL", name);
			goto out;
		}
	} else if (end > start && (end - start) % 2 == 0 &&
	           is_hex((const char *)data + start, end - start)) {
		size_t n = (end - start) / 2, got;
		der = malloc(n);
		if (!der ||
		    util_hex_decode((const char *)data + start, end - start, der, n, &got) != 0) {
			free(der);
			der = NULL;
			goto out;
		}
		der_len = (long)got;
		owner = DER_MALLOC;
	} else {
		if (len > (size_t)INT32_MAX)
			goto out;
		der = (unsigned char *)data;
		der_len = (long)len;
	}

	const unsigned char *p = der;
	X509_CRL *crl = d2i_X509_CRL(NULL, &p, der_len);
	if (!crl || p != der + der_len) {
		log_warn("collateral %s: body is not one DER CRL", name);
		X509_CRL_free(crl);
		goto out;
	}
	bool ok;
	*next_update = asn1_time_ms(X509_CRL_get0_nextUpdate(crl), &ok);
	X509_CRL_free(crl);
	if (!ok) {
		log_warn("collateral %s: CRL has no usable nextUpdate", name);
		goto out;
	}
	*hex_out = malloc((size_t)der_len * 2 + 1);
	if (!*hex_out)
		goto out;
	util_hex_encode(der, (size_t)der_len, *hex_out);
	rc = 0;
out:
	if (owner == DER_OPENSSL)
		OPENSSL_free(der);
	else if (owner == DER_MALLOC)
		free(der);
	ERR_clear_error();
	return rc;
}

/* ---- issuer chains ---- */

static int hex_digit(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/*
 * An issuer-chain header: URL-encoded PEM.  '+' stays '+' (base64 uses it);
 * the only control characters PEM may hold are line ends.  The result must
 * be one or more certificates that OpenSSL reads.  malloc'd, or NULL.
 */
static char *decode_issuer_chain(const char *value)
{
	size_t len = strlen(value);
	char *out = malloc(len + 1);
	if (!out)
		return NULL;
	size_t n = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)value[i];
		if (ch == '%') {
			int hi = i + 2 < len ? hex_digit(value[i + 1]) : -1;
			int lo = i + 2 < len ? hex_digit(value[i + 2]) : -1;
			if (hi < 0 || lo < 0)
				goto bad;
			ch = (unsigned char)(hi << 4 | lo);
			i += 2;
		}
		if ((ch < 0x20 && ch != '\n' && ch != '\r') || ch == 0x7f)
			goto bad;
		out[n++] = (char)ch;
	}
	out[n] = '\0';

	BIO *bio = BIO_new_mem_buf(out, (int)n);
	if (!bio)
		goto bad;
	int certs = 0;
	X509 *x;
	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
		certs++;
		X509_free(x);
	}
	unsigned long last = ERR_peek_last_error();
	BIO_free(bio);
	ERR_clear_error();
	/* Reading stops at the end ("no start line"), not at a broken certificate. */
	if (certs == 0 || ERR_GET_LIB(last) != ERR_LIB_PEM || ERR_GET_REASON(last) != PEM_R_NO_START_LINE)
		goto bad;
	return out;
bad:
	free(out);
	return NULL;
}

/* ---- one item: cache, fetch, fallback ---- */

static int item_decode(enum item_kind k, struct item *it, const char *fmspc)
{
	const struct item_spec *spec = &item_specs[k];
	if (spec->member)
		return decode_signed_json(spec, it->body, strlen(it->body),
		                          k == ITEM_TCB_INFO ? fmspc : NULL, it);
	char *hex;
	if (decode_crl(spec->name, (const unsigned char *)it->body, strlen(it->body), &hex,
	               &it->next_update) != 0)
		return -1;
	free(it->body);
	it->body = hex;
	it->value = it->body;
	return 0;
}

/* A cached item, decoded; false if there is none or it cannot be used. */
static bool cache_read(struct ee_db *db, enum item_kind k, const char *key, const char *fmspc,
                       struct item *it)
{
	struct ee_error e;
	sqlite3_stmt *stmt = db_stmt(db, SQL_COLLATERAL_CACHE_GET, &e);
	if (!stmt) {
		log_warn("collateral cache: cannot read %s: %s", key, e.reason);
		return false;
	}
	db_bind_text(stmt, 1, key);
	int rc = sqlite3_step(stmt);
	bool found = false;
	if (rc == SQLITE_ROW) {
		const char *body = db_column_text(stmt, 0), *chain = db_column_text(stmt, 1);
		it->body = body ? strdup(body) : NULL;
		it->chain = chain ? strdup(chain) : NULL;
		it->next_update = sqlite3_column_int64(stmt, 2);
		it->fetched_at = sqlite3_column_int64(stmt, 3);
		found = it->body && (!chain || it->chain);
	} else if (rc != SQLITE_DONE) {
		db_fail(db, rc, &e);
	}
	sqlite3_reset(stmt);
	if (found && item_specs[k].chain_header && !it->chain)
		found = false;
	if (found && item_decode(k, it, fmspc) != 0) {
		log_warn("collateral cache: %s does not decode; fetching it again", key);
		found = false;
	}
	if (!found)
		item_free(it);
	return found;
}

static void cache_write(struct ee_db *db, const char *key, const struct item *it)
{
	struct ee_error e;
	if (db_in_transaction(db)) {
		log_error("collateral cache: called inside a transaction; %s not stored", key);
		return;
	}
	if (db_begin_write(db, &e) != 0) {
		log_warn("collateral cache: cannot store %s: %s", key, e.reason);
		return;
	}
	sqlite3_stmt *stmt = db_stmt(db, SQL_COLLATERAL_CACHE_PUT, &e);
	if (stmt) {
		db_bind_text(stmt, 1, key);
		db_bind_text(stmt, 2, it->body);
		db_bind_text(stmt, 3, it->chain);
		db_bind_int64(stmt, 4, it->next_update);
		db_bind_int64(stmt, 5, it->fetched_at);
	}
	if (!stmt || db_exec_stmt(db, stmt, &e) != 0) {
		db_rollback(db);
		log_warn("collateral cache: cannot store %s: %s", key, e.reason);
		return;
	}
	if (db_commit(db, &e) != 0)
		log_warn("collateral cache: cannot store %s: %s", key, e.reason);
}

static int item_fetch(struct pccs_client *c, enum item_kind k, const char *url,
                      const char *fmspc, int64_t now, struct item *it, struct ee_error *err)
{
	const struct item_spec *spec = &item_specs[k];
	struct fetch_options fo = {
		.connect_timeout_ms = c->opt.connect_timeout_ms,
		.timeout_ms = c->opt.timeout_ms,
		.max_body_bytes = c->opt.max_body_bytes,
		/* No credentials go with these requests, and what comes back is
		 * checked by its signatures, so a moved PCCS path or Intel's CDN
		 * redirecting the root CA CRL is followed (https stays https). */
		.follow_redirects = true,
	};
	long status;
	enum fetch_result r = fetch_get(c->curl, url, NULL, &fo, &status, &c->body);
	if (r == FETCH_NO_MEMORY)
		return ee_fail(err, 503, "out_of_memory");
	if (r == FETCH_TOO_LARGE) {
		log_warn("collateral %s: response body over %zu bytes", spec->name,
		         c->opt.max_body_bytes);
		return ee_fail_detail(err, 502, "collateral_invalid", spec->name);
	}
	if (r != FETCH_OK) {
		log_warn("collateral %s: fetch failed: %s", spec->name, fetch_result_text(r));
		return ee_fail_detail(err, 503, "collateral_unavailable", spec->name);
	}
	if (status != 200) {
		log_warn("collateral %s: HTTP status %ld", spec->name, status);
		return ee_fail_detail(err, 503, "collateral_unavailable", spec->name);
	}
	if (spec->chain_header) {
		const char *h = fetch_header(c->curl, spec->chain_header);
		if (!h) {
			log_warn("collateral %s: response has no %s header", spec->name,
			         spec->chain_header);
			return ee_fail_detail(err, 502, "collateral_invalid", spec->name);
		}
		it->chain = decode_issuer_chain(h);
		if (!it->chain) {
			log_warn("collateral %s: %s is not a URL-encoded PEM chain", spec->name,
			         spec->chain_header);
			return ee_fail_detail(err, 502, "collateral_invalid", spec->name);
		}
	}
	if (spec->member) {
		if (strlen(c->body.data) != c->body.len) {
			log_warn("collateral %s: body holds a NUL byte", spec->name);
			return ee_fail_detail(err, 502, "collateral_invalid", spec->name);
		}
		it->body = strdup(c->body.data);
		if (!it->body)
			return ee_fail(err, 503, "out_of_memory");
		if (decode_signed_json(spec, it->body, c->body.len,
		                       k == ITEM_TCB_INFO ? fmspc : NULL, it) != 0)
			return ee_fail_detail(err, 502, "collateral_invalid", spec->name);
	} else {
		if (decode_crl(spec->name, (const unsigned char *)c->body.data, c->body.len,
		               &it->body, &it->next_update) != 0)
			return ee_fail_detail(err, 502, "collateral_invalid", spec->name);
		it->value = it->body;
	}
	it->fetched_at = now;
	return 0;
}

/* Refresh this long before nextUpdate: the margin, or a tenth of the item's life if shorter. */
static int64_t refresh_margin(const struct pccs_client *c, const struct item *it)
{
	int64_t life = it->next_update - it->fetched_at;
	int64_t tenth = life > 0 ? life / 10 : 0;
	return tenth < c->opt.refresh_margin_ms ? tenth : c->opt.refresh_margin_ms;
}

static int item_get(struct pccs_client *c, struct ee_db *db, enum item_kind k, const char *key,
                    const char *url, const char *fmspc, int64_t now, struct item *out,
                    struct ee_error *err)
{
	struct item cached = {0}, fresh = {0};
	bool have = cache_read(db, k, key, fmspc, &cached);
	if (have && now < cached.next_update - refresh_margin(c, &cached)) {
		*out = cached;
		return 0;
	}
	struct ee_error fetch_err;
	ee_error_clear(&fetch_err);
	if (item_fetch(c, k, url, fmspc, now, &fresh, &fetch_err) == 0) {
		cache_write(db, key, &fresh);
		item_free(&cached);
		*out = fresh;
		return 0;
	}
	item_free(&fresh);
	if (have && now < cached.next_update) {
		char until[EE_RFC3339_MAX];
		time_format_rfc3339(cached.next_update, until);
		log_warn("collateral %s: refresh failed (%s); using the cached one, valid until %s",
		         key, fetch_err.reason, until);
		*out = cached;
		return 0;
	}
	item_free(&cached);
	if (err)
		*err = fetch_err;
	return -1;
}

/* ---- the collateral ---- */

static int put_string(struct json_object *o, const char *key, const char *value)
{
	struct json_object *s = json_object_new_string(value ? value : "");
	if (!s)
		return -1;
	if (json_object_object_add(o, key, s) != 0) {
		json_object_put(s);
		return -1;
	}
	return 0;
}

static int assemble(struct item items[ITEM_COUNT], char **out)
{
	struct json_object *o = json_object_new_object();
	if (!o)
		return -1;
	const struct item *tcb = &items[ITEM_TCB_INFO], *qe = &items[ITEM_QE_IDENTITY];
	const struct item *pck = &items[ITEM_PCK_CRL], *root = &items[ITEM_ROOT_CA_CRL];
	int rc = -1;
	if (put_string(o, "pck_crl_issuer_chain", pck->chain) == 0 &&
	    put_string(o, "root_ca_crl", root->value) == 0 &&
	    put_string(o, "pck_crl", pck->value) == 0 &&
	    put_string(o, "tcb_info_issuer_chain", tcb->chain) == 0 &&
	    put_string(o, "tcb_info", tcb->value) == 0 &&
	    put_string(o, "tcb_info_signature", tcb->signature) == 0 &&
	    put_string(o, "qe_identity_issuer_chain", qe->chain) == 0 &&
	    put_string(o, "qe_identity", qe->value) == 0 &&
	    put_string(o, "qe_identity_signature", qe->signature) == 0) {
		size_t len;
		const char *text = json_text(o, &len);
		*out = text ? strndup(text, len) : NULL;
		rc = *out ? 0 : -1;
	}
	json_object_put(o);
	return rc;
}

/* FMSPC in upper case into fmspc; 0, or -1 with the reason for bad arguments. */
static int check_arguments(const char *fmspc_hex, const char *ca, char fmspc[FMSPC_HEX_LEN + 1],
                           struct ee_error *err)
{
	if (!fmspc_hex || strlen(fmspc_hex) != FMSPC_HEX_LEN || !is_hex(fmspc_hex, FMSPC_HEX_LEN))
		return ee_fail(err, 400, "invalid_fmspc");
	if (!ca || (strcmp(ca, "platform") != 0 && strcmp(ca, "processor") != 0))
		return ee_fail(err, 400, "invalid_pck_ca");
	for (int i = 0; i < FMSPC_HEX_LEN; i++) {
		char ch = fmspc_hex[i];
		fmspc[i] = (ch >= 'a' && ch <= 'f') ? (char)(ch - 'a' + 'A') : ch;
	}
	fmspc[FMSPC_HEX_LEN] = '\0';
	return 0;
}

/* The collateral from the cache or the network; *serve_until: when an item of it is due. */
static int collect(struct pccs_client *c, struct ee_db *db, const char *fmspc, const char *ca,
                   int64_t now_ms, char **collateral_json, int64_t *serve_until,
                   struct ee_error *err)
{
	*collateral_json = NULL;
	char keys[ITEM_COUNT][CACHE_KEY_MAX];
	char urls[ITEM_COUNT][PCCS_URL_MAX + 64];
	const char *base = c->opt.base_url;
	snprintf(keys[ITEM_TCB_INFO], CACHE_KEY_MAX, "tcb:%s", fmspc);
	snprintf(urls[ITEM_TCB_INFO], sizeof(urls[0]), "%s/tdx/certification/v4/tcb?fmspc=%s", base,
	         fmspc);
	snprintf(keys[ITEM_QE_IDENTITY], CACHE_KEY_MAX, "qe");
	snprintf(urls[ITEM_QE_IDENTITY], sizeof(urls[0]), "%s/tdx/certification/v4/qe/identity",
	         base);
	snprintf(keys[ITEM_PCK_CRL], CACHE_KEY_MAX, "pckcrl:%s", ca);
	snprintf(urls[ITEM_PCK_CRL], sizeof(urls[0]), "%s/sgx/certification/v4/pckcrl?ca=%s", base,
	         ca);
	snprintf(keys[ITEM_ROOT_CA_CRL], CACHE_KEY_MAX, "rootcacrl");
	snprintf(urls[ITEM_ROOT_CA_CRL], sizeof(urls[0]), "%s", c->opt.root_ca_crl_url);

	struct item items[ITEM_COUNT];
	memset(items, 0, sizeof(items));
	int rc = 0;
	*serve_until = INT64_MAX;
	for (int k = 0; k < ITEM_COUNT && rc == 0; k++) {
		rc = item_get(c, db, (enum item_kind)k, keys[k], urls[k], fmspc, now_ms, &items[k], err);
		if (rc == 0) {
			int64_t due = items[k].next_update - refresh_margin(c, &items[k]);
			*serve_until = due < *serve_until ? due : *serve_until;
		}
	}
	if (rc == 0 && assemble(items, collateral_json) != 0)
		rc = ee_fail(err, 503, "out_of_memory");
	for (int k = 0; k < ITEM_COUNT; k++)
		item_free(&items[k]);
	return rc;
}

int pccs_get_collateral(struct pccs_client *c, struct ee_db *db, const char *fmspc_hex,
                        const char *ca, int64_t now_ms, char **collateral_json,
                        struct ee_error *err)
{
	*collateral_json = NULL;
	char fmspc[FMSPC_HEX_LEN + 1];
	int64_t serve_until;
	if (check_arguments(fmspc_hex, ca, fmspc, err) != 0)
		return -1;
	return collect(c, db, fmspc, ca, now_ms, collateral_json, &serve_until, err);
}

int pccs_collateral(struct pccs_client *c, struct ee_db *db, const char *fmspc_hex,
                    const char *ca, int64_t now_ms, const char **collateral_json,
                    uint64_t *generation, struct ee_error *err)
{
	*collateral_json = NULL;
	*generation = 0;
	char fmspc[FMSPC_HEX_LEN + 1];
	if (check_arguments(fmspc_hex, ca, fmspc, err) != 0)
		return -1;
	struct memo *slot = NULL, *oldest = &c->memo[0];
	for (int i = 0; i < MEMO_SLOTS; i++) {
		struct memo *m = &c->memo[i];
		if (m->json && strcmp(m->fmspc, fmspc) == 0 && strcmp(m->ca, ca) == 0)
			slot = m;
		if (!m->json || m->used < oldest->used)
			oldest = m;
	}
	if (slot && now_ms < slot->serve_until) {
		slot->used = ++c->tick;
		*collateral_json = slot->json;
		*generation = slot->generation;
		return 0;
	}
	char *text;
	int64_t serve_until;
	if (collect(c, db, fmspc, ca, now_ms, &text, &serve_until, err) != 0)
		return -1;
	if (!slot) {
		slot = oldest;
		free(slot->json);
		slot->json = NULL;
	}
	if (!slot->json || strcmp(slot->json, text) != 0) {
		free(slot->json);
		slot->json = text;
		slot->generation = ++c->generation;
	} else {
		free(text);
	}
	snprintf(slot->fmspc, sizeof(slot->fmspc), "%s", fmspc);
	snprintf(slot->ca, sizeof(slot->ca), "%s", ca);
	slot->serve_until = serve_until;
	slot->used = ++c->tick;
	*collateral_json = slot->json;
	*generation = slot->generation;
	return 0;
}
