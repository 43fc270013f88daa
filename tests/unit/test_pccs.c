/*
 * test_pccs.c - collateral fetching and caching (lib/pccs.c) against a fake
 * PCCS (tests/support/fakehttp.c) serving Intel's real collateral: the
 * testdata collateral (../shared/testdata/dcap, read at run time) is split
 * back into the PCCS v4 responses it came from, and what lib/pccs.c
 * assembles must equal it field by field, tcb_info and qe_identity byte for
 * byte.  Then the cache (served, refreshed inside the margin, used stale
 * when the PCCS fails before nextUpdate, refused after), and every failure:
 * statuses, timeout, hang-up, oversized bodies, missing headers, garbage.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <json-c/json.h>
#include <openssl/evp.h>

#include "check.h"
#include "db.h"
#include "fakehttp.h"
#include "log.h"
#include "pccs.h"
#include "stack.h"
#include "timeutil.h"
#include "util.h"

#define TESTDATA_DIR "../shared/testdata/dcap"
#define FMSPC "B0C06F000000"

#define PATH_TCB "/tdx/certification/v4/tcb?fmspc=" FMSPC
#define PATH_QE "/tdx/certification/v4/qe/identity"
#define PATH_PCK "/sgx/certification/v4/pckcrl?ca=platform"
#define PATH_ROOT "/sgx/certification/v4/rootcacrl"

static const char *const fields[] = {
	"pck_crl_issuer_chain", "root_ca_crl", "pck_crl",     "tcb_info_issuer_chain",
	"tcb_info",             "tcb_info_signature",          "qe_identity_issuer_chain",
	"qe_identity",          "qe_identity_signature",
};

/* A call that must succeed; err is the caller's struct ee_error. */
#define CHECK_OK(expr)                                                                    \
	do {                                                                              \
		int rc_ = (expr);                                                         \
		if (rc_ != 0)                                                             \
			test_fail(__FILE__, __LINE__, "%s = %d (%s)", #expr, rc_, err.reason); \
	} while (0)

static char tmp_dir[512];
static struct fakehttp server;
static struct json_object *testdata; /* tdx_quote_collateral.json */

/* The PCCS responses the testdata came from. */
static char *tcb_body, *tcb_header, *qe_body, *qe_header, *pck_header, *root_hex, *pck_pem,
	*root_pem;
static unsigned char *pck_der, *root_der;
static size_t pck_der_len, root_der_len;

/* Times of the testdata (Unix ms). */
static int64_t t_verify, tcb_next, qe_next, pck_next;

static const char *td(const char *field)
{
	struct json_object *v;
	if (!json_object_object_get_ex(testdata, field, &v))
		return NULL;
	return json_object_get_string(v);
}

static char *read_file(const char *path, size_t *len_out)
{
	FILE *fp = fopen(path, "rb");
	if (!fp)
		return NULL;
	struct buf b;
	buf_init(&b);
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
		buf_append(&b, chunk, n);
	fclose(fp);
	if (len_out)
		*len_out = b.len;
	return b.data;
}

/* Percent-encodes everything but unreserved characters, as Intel's PCS does. */
static char *url_encode(const char *s)
{
	struct buf b;
	buf_init(&b);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		    *p == '-' || *p == '_' || *p == '.' || *p == '~')
			buf_append(&b, p, 1);
		else
			buf_printf(&b, "%%%02X", *p);
	}
	return b.data;
}

static char *strprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *strprintf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	char *out = n >= 0 ? malloc((size_t)n + 1) : NULL;
	if (out) {
		va_start(ap, fmt);
		vsnprintf(out, (size_t)n + 1, fmt, ap);
		va_end(ap);
	}
	return out;
}

static unsigned char *hex_to_bytes(const char *hex, size_t *len)
{
	size_t n = strlen(hex) / 2;
	unsigned char *out = malloc(n ? n : 1);
	if (!out || util_hex_decode(hex, strlen(hex), out, n, len) != 0) {
		free(out);
		return NULL;
	}
	return out;
}

static char *pem_of(const char *label, const unsigned char *der, size_t len)
{
	unsigned char *b64 = malloc(4 * ((len + 2) / 3) + 1);
	int n = EVP_EncodeBlock(b64, der, (int)len);
	struct buf b;
	buf_init(&b);
	buf_printf(&b, "-----BEGIN %s-----\n", label);
	for (int i = 0; i < n; i += 64)
		buf_printf(&b, "%.*s\n", n - i < 64 ? n - i : 64, (const char *)b64 + i);
	buf_printf(&b, "-----END %s-----\n", label);
	free(b64);
	return b.data;
}

static int load_testdata(void)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/tdx_quote_collateral.json", TESTDATA_DIR);
	char *text = read_file(path, NULL);
	if (!text) {
		fprintf(stderr, "cannot read %s: %s (the DCAP testdata must be beside the checkout)\n",
		        path, strerror(errno));
		return -1;
	}
	testdata = json_tokener_parse(text);
	free(text);
	if (!testdata)
		return -1;
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		if (!td(fields[i]))
			return -1;
	}
	char *enc;
	tcb_body = strprintf("{\"tcbInfo\":%s,\"signature\":\"%s\"}", td("tcb_info"),
	                     td("tcb_info_signature"));
	enc = url_encode(td("tcb_info_issuer_chain"));
	tcb_header = strprintf("TCB-Info-Issuer-Chain: %s\r\n", enc);
	free(enc);
	qe_body = strprintf("{\"enclaveIdentity\":%s,\"signature\":\"%s\"}", td("qe_identity"),
	                    td("qe_identity_signature"));
	enc = url_encode(td("qe_identity_issuer_chain"));
	qe_header = strprintf("SGX-Enclave-Identity-Issuer-Chain: %s\r\n", enc);
	free(enc);
	enc = url_encode(td("pck_crl_issuer_chain"));
	pck_header = strprintf("SGX-PCK-CRL-Issuer-Chain: %s\r\n", enc);
	free(enc);
	pck_der = hex_to_bytes(td("pck_crl"), &pck_der_len);
	root_der = hex_to_bytes(td("root_ca_crl"), &root_der_len);
	root_hex = strdup(td("root_ca_crl"));
	if (!pck_der || !root_der)
		return -1;
	pck_pem = pem_of("X509 CRL", pck_der, pck_der_len);
	root_pem = pem_of("X509 CRL", root_der, root_der_len);

	const char *tv[] = {"2025-07-19T10:16:03Z", "2025-07-19T10:32:27Z", "2025-07-19T10:00:35Z"};
	int64_t *tp[] = {&tcb_next, &qe_next, &pck_next};
	for (int i = 0; i < 3; i++)
		time_parse_rfc3339(tv[i], strlen(tv[i]), tp[i]);
	t_verify = INT64_C(1751624655) * 1000;
	return 0;
}

enum { R_TCB, R_QE, R_PCK, R_ROOT, R_COUNT };

/* The four answers of a good PCCS: PCK CRL as DER (Intel's form), root CRL as hex. */
static void good_routes(struct fakehttp_route r[R_COUNT])
{
	memset(r, 0, sizeof(struct fakehttp_route) * R_COUNT);
	r[R_TCB] = (struct fakehttp_route){
		.target = PATH_TCB, .status = 200, .headers = tcb_header, .body = tcb_body};
	r[R_QE] = (struct fakehttp_route){
		.target = PATH_QE, .status = 200, .headers = qe_header, .body = qe_body};
	r[R_PCK] = (struct fakehttp_route){.target = PATH_PCK,
	                                   .status = 200,
	                                   .headers = pck_header,
	                                   .body = (const char *)pck_der,
	                                   .body_len = pck_der_len};
	r[R_ROOT] = (struct fakehttp_route){.target = PATH_ROOT, .status = 200, .body = root_hex};
}

static void serve(const struct fakehttp_route *r, size_t n)
{
	if (fakehttp_serve(&server, r, n) != 0)
		test_fail(__FILE__, __LINE__, "fakehttp_serve failed");
	fakehttp_clear_log(&server);
}

static struct ee_db *open_db(const char *name)
{
	char path[700];
	snprintf(path, sizeof(path), "%s/%s.sqlite", tmp_dir, name);
	struct ee_db_options o = {.busy_timeout_ms = 5000, .synchronous = "NORMAL", .create = true};
	struct ee_db *db = NULL;
	struct ee_error err;
	if (db_open(path, &o, &db, &err) != 0) {
		test_fail(__FILE__, __LINE__, "db_open %s: %s", path, err.reason);
		return NULL;
	}
	return db;
}

static struct pccs_client *client(long timeout_ms, size_t max_body)
{
	struct pccs_options o;
	pccs_options_default(&o);
	snprintf(o.base_url, sizeof(o.base_url), "%s/", server.base_url);
	if (timeout_ms)
		o.timeout_ms = timeout_ms;
	if (max_body)
		o.max_body_bytes = max_body;
	struct pccs_client *c = NULL;
	struct ee_error err;
	if (pccs_client_create(&o, &c, &err) != 0)
		test_fail(__FILE__, __LINE__, "pccs_client_create: %s", err.reason);
	return c;
}

/* Each field of the assembled JSON against the testdata. */
static void check_equals_testdata(const char *json, const char *tcb_info_want)
{
	struct json_object *got = json ? json_tokener_parse(json) : NULL;
	CHECK(got != NULL, "assembled collateral does not parse");
	if (!got)
		return;
	CHECK_INT(json_object_object_length(got), sizeof(fields) / sizeof(fields[0]));
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		struct json_object *v;
		const char *want = strcmp(fields[i], "tcb_info") == 0 && tcb_info_want ? tcb_info_want
		                                                                      : td(fields[i]);
		if (!json_object_object_get_ex(got, fields[i], &v) ||
		    !json_object_is_type(v, json_type_string)) {
			test_fail(__FILE__, __LINE__, "field %s missing", fields[i]);
			continue;
		}
		const char *s = json_object_get_string(v);
		size_t n = (size_t)json_object_get_string_len(v);
		if (n != strlen(want) || memcmp(s, want, n) != 0)
			test_fail(__FILE__, __LINE__, "field %s differs from the testdata", fields[i]);
	}
	json_object_put(got);
}

/* One call; returns its rc, the JSON in *json (freed by the caller), the reason in err. */
static int get(struct pccs_client *c, struct ee_db *db, const char *fmspc, const char *ca,
               int64_t now, char **json, struct ee_error *err)
{
	ee_error_clear(err);
	*json = NULL;
	return pccs_get_collateral(c, db, fmspc, ca, now, json, err);
}

static void test_assemble_and_cache(void)
{
	struct fakehttp_route r[R_COUNT];
	good_routes(r);
	serve(r, R_COUNT);
	struct ee_db *db = open_db("cache");
	struct pccs_client *c = client(0, 0);
	if (!db || !c)
		return;
	struct ee_error err;
	char *json;

	test_case("collateral assembled from PCCS v4 responses equals the testdata field by field");
	CHECK_OK(get(c, db, "b0c06f000000", "platform", t_verify, &json, &err));
	check_equals_testdata(json, NULL);
	CHECK_INT(fakehttp_count(&server, NULL), 4);
	CHECK_INT(fakehttp_count(&server, "GET " PATH_TCB " HTTP/1.1"), 1);
	CHECK_INT(fakehttp_count(&server, "GET " PATH_QE " HTTP/1.1"), 1);
	CHECK_INT(fakehttp_count(&server, "GET " PATH_PCK " HTTP/1.1"), 1);
	CHECK_INT(fakehttp_count(&server, "GET " PATH_ROOT " HTTP/1.1"), 1);
	free(json);

	test_case("a second call is served from the cache: no request");
	fakehttp_clear_log(&server);
	CHECK_OK(get(c, db, FMSPC, "platform", t_verify + 60000, &json, &err));
	check_equals_testdata(json, NULL);
	CHECK_INT(fakehttp_count(&server, NULL), 0);
	free(json);

	test_case("a fresh client (another thread) uses the same cache");
	struct pccs_client *c2 = client(0, 0);
	fakehttp_clear_log(&server);
	CHECK_OK(get(c2, db, FMSPC, "platform", t_verify, &json, &err));
	CHECK_INT(fakehttp_count(&server, NULL), 0);
	free(json);
	pccs_client_destroy(c2);

	test_case("just outside the margin (1 h before nextUpdate): still cached");
	fakehttp_clear_log(&server);
	/* PCK CRL's nextUpdate is the earliest: 10:00:35. */
	CHECK_OK(get(c, db, FMSPC, "platform", pck_next - 3600 * 1000 - 1000, &json, &err));
	CHECK_INT(fakehttp_count(&server, NULL), 0);
	free(json);

	test_case("inside the margin: the items near nextUpdate are fetched again, the others not");
	fakehttp_clear_log(&server);
	int64_t now = tcb_next - 59 * 60 * 1000; /* 09:17:03 */
	CHECK_OK(get(c, db, FMSPC, "platform", now, &json, &err));
	check_equals_testdata(json, NULL);
	CHECK_INT(fakehttp_count(&server, PATH_TCB), 1);
	CHECK_INT(fakehttp_count(&server, PATH_PCK), 1);
	CHECK_INT(fakehttp_count(&server, PATH_QE), 0);   /* 10:32:27 - 1 h is later */
	CHECK_INT(fakehttp_count(&server, PATH_ROOT), 0); /* next update in 2026 */
	free(json);

	test_case("a refreshed item gets a margin of a tenth of its remaining life");
	fakehttp_clear_log(&server);
	/* Refetched at 09:17:03 with 59 min left: margin 5.9 min. */
	CHECK_INT(get(c, db, FMSPC, "platform", tcb_next - 7 * 60 * 1000, &json, &err), 0);
	CHECK_INT(fakehttp_count(&server, PATH_TCB), 0);
	free(json);
	fakehttp_clear_log(&server);
	CHECK_INT(get(c, db, FMSPC, "platform", tcb_next - 5 * 60 * 1000, &json, &err), 0);
	CHECK_INT(fakehttp_count(&server, PATH_TCB), 1);
	free(json);

	test_case("a redirected item is followed; the chain header is the final answer's");
	struct fakehttp_route moved[R_COUNT + 1];
	memcpy(moved, r, sizeof(r));
	moved[R_COUNT] = r[R_ROOT];
	moved[R_COUNT].target = "/moved/IntelSGXRootCA.der";
	moved[R_ROOT] = (struct fakehttp_route){
		.target = PATH_ROOT, .status = 301, .headers = "Location: /moved/IntelSGXRootCA.der\r\n"};
	moved[R_TCB].status = 307;
	moved[R_TCB].headers = "Location: /moved/tcb\r\nTCB-Info-Issuer-Chain: junk\r\n";
	moved[R_TCB].target = PATH_TCB;
	struct fakehttp_route moved_all[R_COUNT + 2];
	memcpy(moved_all, moved, sizeof(moved));
	moved_all[R_COUNT + 1] = r[R_TCB];
	moved_all[R_COUNT + 1].target = "/moved/tcb";
	serve(moved_all, R_COUNT + 2);
	struct ee_db *db_moved = open_db("moved");
	CHECK_OK(get(c, db_moved, FMSPC, "platform", t_verify, &json, &err));
	check_equals_testdata(json, NULL);
	CHECK_INT(fakehttp_count(&server, NULL), 6);
	free(json);
	db_close(db_moved);
	serve(r, R_COUNT);

	test_case("the other PCK CA is another cache entry");
	struct fakehttp_route r2[R_COUNT + 1];
	memcpy(r2, r, sizeof(r));
	r2[R_COUNT] = r[R_PCK];
	r2[R_COUNT].target = "/sgx/certification/v4/pckcrl?ca=processor";
	serve(r2, R_COUNT + 1);
	CHECK_OK(get(c, db, FMSPC, "processor", t_verify, &json, &err));
	CHECK_INT(fakehttp_count(&server, NULL), 1);
	CHECK_INT(fakehttp_count(&server, "ca=processor"), 1);
	free(json);

	pccs_client_destroy(c);
	db_close(db);
}

/* pccs_collateral: the same text from memory while no item is due, without the database. */
static void test_memo(void)
{
	struct fakehttp_route r[R_COUNT + 1];
	good_routes(r);
	r[R_COUNT] = r[R_PCK];
	r[R_COUNT].target = "/sgx/certification/v4/pckcrl?ca=processor";
	serve(r, R_COUNT + 1);
	struct ee_db *db = open_db("memo"), *other = open_db("memo-other");
	struct pccs_client *c = client(0, 0);
	if (!db || !other || !c)
		return;
	struct ee_error err;
	const char *json = NULL, *again = NULL;
	uint64_t gen = 0, gen2 = 0;

	test_case("pccs_collateral: assembled as pccs_get_collateral, with a generation");
	CHECK_OK(pccs_collateral(c, db, FMSPC, "platform", t_verify, &json, &gen, &err));
	check_equals_testdata(json, NULL);
	CHECK(gen != 0);
	CHECK_INT(fakehttp_count(&server, NULL), 4);

	test_case("pccs_collateral: a second call is answered from memory (not even the database)");
	fakehttp_clear_log(&server);
	CHECK_OK(pccs_collateral(c, other, FMSPC, "platform", t_verify + 60000, &again, &gen2, &err));
	CHECK(again == json, "not the kept text");
	CHECK(gen2 == gen);
	CHECK_INT(fakehttp_count(&server, NULL), 0);

	test_case("pccs_collateral: once an item is due, the database and PCCS as usual; same text, "
	          "same generation");
	fakehttp_clear_log(&server);
	CHECK_OK(pccs_collateral(c, db, FMSPC, "platform", pck_next - 3600 * 1000 + 1000, &json, &gen2,
	                         &err));
	check_equals_testdata(json, NULL);
	CHECK_INT(fakehttp_count(&server, PATH_PCK), 1);
	CHECK(gen2 == gen);

	test_case("pccs_collateral: the other CA is another text with another generation");
	CHECK_OK(pccs_collateral(c, db, FMSPC, "processor", t_verify, &json, &gen2, &err));
	CHECK(gen2 != 0 && gen2 != gen);

	test_case("pccs_collateral: bad arguments, no request");
	fakehttp_clear_log(&server);
	CHECK_INT(pccs_collateral(c, db, "b0c06f", "platform", t_verify, &json, &gen2, &err), -1);
	CHECK_STR(err.reason, "invalid_fmspc");
	CHECK_INT(pccs_collateral(c, db, FMSPC, "other", t_verify, &json, &gen2, &err), -1);
	CHECK_STR(err.reason, "invalid_pck_ca");
	CHECK_INT(fakehttp_count(&server, NULL), 0);
	pccs_client_destroy(c);
	db_close(db);
	db_close(other);
}

static void test_stale_cache(void)
{
	struct fakehttp_route r[R_COUNT];
	good_routes(r);
	serve(r, R_COUNT);
	struct ee_db *db = open_db("stale");
	struct pccs_client *c = client(0, 0);
	if (!db || !c)
		return;
	struct ee_error err;
	char *json;
	CHECK_OK(get(c, db, FMSPC, "platform", t_verify, &json, &err));
	free(json);

	struct fakehttp_route failing[R_COUNT];
	good_routes(failing);
	for (int i = 0; i < R_COUNT; i++) {
		failing[i].status = 500;
		failing[i].headers = NULL;
		failing[i].body = "{\"error\":\"down\"}";
		failing[i].body_len = 0;
	}
	serve(failing, R_COUNT);

	test_case("PCCS failing inside the margin, cache before nextUpdate: the cache is used");
	int64_t now;
	time_parse_rfc3339("2025-07-19T10:00:00Z", 20, &now);
	CHECK_OK(get(c, db, FMSPC, "platform", now, &json, &err));
	check_equals_testdata(json, NULL);
	CHECK_INT(fakehttp_count(&server, NULL), 3); /* tcb, qe, pck tried; root not due */
	free(json);

	test_case("PCCS failing after an item's nextUpdate: collateral_unavailable:<item>");
	CHECK_INT(get(c, db, FMSPC, "platform", tcb_next + 1000, &json, &err), -1);
	CHECK_STR(err.reason, "collateral_unavailable:tcb_info");
	CHECK_INT(err.status, 503);
	CHECK(json == NULL);

	test_case("PCCS failing with nothing cached: collateral_unavailable");
	struct ee_db *empty = open_db("stale-empty");
	CHECK_INT(get(c, empty, FMSPC, "platform", t_verify, &json, &err), -1);
	CHECK_STR(err.reason, "collateral_unavailable:tcb_info");
	db_close(empty);

	test_case("PCCS down (nothing listening) with nothing cached: collateral_unavailable");
	struct pccs_options o;
	pccs_options_default(&o);
	snprintf(o.base_url, sizeof(o.base_url), "http://127.0.0.1:%d", stack_free_port());
	struct pccs_client *down = NULL;
	CHECK_INT(pccs_client_create(&o, &down, &err), 0);
	struct ee_db *empty2 = open_db("stale-down");
	if (down) {
		CHECK_INT(get(down, empty2, FMSPC, "platform", t_verify, &json, &err), -1);
		CHECK_STR(err.reason, "collateral_unavailable:tcb_info");
	}
	pccs_client_destroy(down);
	db_close(empty2);

	pccs_client_destroy(c);
	db_close(db);
}

/* One failing scenario on a fresh database: the routes, then the expected reason. */
static void expect_failure(const char *name, const struct fakehttp_route *r, size_t n,
                           long timeout_ms, size_t max_body, const char *fmspc, const char *want)
{
	static int seq;
	char dbname[64];
	snprintf(dbname, sizeof(dbname), "fail-%d", ++seq);
	serve(r, n);
	struct ee_db *db = open_db(dbname);
	struct pccs_client *c = client(timeout_ms, max_body);
	if (!db || !c) {
		db_close(db);
		pccs_client_destroy(c);
		return;
	}
	struct ee_error err;
	char *json = NULL;
	int64_t start = time_monotonic_ms();
	int rc = get(c, db, fmspc ? fmspc : FMSPC, "platform", t_verify, &json, &err);
	int64_t took = time_monotonic_ms() - start;
	if (rc != -1 || strcmp(err.reason, want) != 0)
		test_fail(__FILE__, __LINE__, "%s: rc %d reason \"%s\", want \"%s\"", name, rc,
		          err.reason, want);
	if (timeout_ms && took > timeout_ms + 1500)
		test_fail(__FILE__, __LINE__, "%s: took %lld ms with a %ld ms timeout", name,
		          (long long)took, timeout_ms);
	free(json);
	pccs_client_destroy(c);
	db_close(db);
}

static void test_failures(void)
{
	struct fakehttp_route r[R_COUNT];

	test_case("TCB info 404: collateral_unavailable:tcb_info");
	good_routes(r);
	r[R_TCB].status = 404;
	expect_failure("404", r, R_COUNT, 0, 0, NULL, "collateral_unavailable:tcb_info");

	test_case("QE identity 500: collateral_unavailable:qe_identity");
	good_routes(r);
	r[R_QE].status = 500;
	expect_failure("500", r, R_COUNT, 0, 0, NULL, "collateral_unavailable:qe_identity");

	test_case("a redirect to nowhere: collateral_unavailable:tcb_info");
	good_routes(r);
	r[R_TCB].status = 302;
	r[R_TCB].headers = "Location: /elsewhere\r\n";
	expect_failure("302", r, R_COUNT, 0, 0, NULL, "collateral_unavailable:tcb_info");

	test_case("a redirect loop: collateral_unavailable:tcb_info");
	good_routes(r);
	r[R_TCB].status = 302;
	r[R_TCB].headers = "Location: " PATH_TCB "\r\n";
	expect_failure("loop", r, R_COUNT, 0, 0, NULL, "collateral_unavailable:tcb_info");

	test_case("a PCCS slower than the timeout: collateral_unavailable, within the timeout");
	good_routes(r);
	r[R_TCB].delay_ms = 2500;
	expect_failure("timeout", r, R_COUNT, 300, 0, NULL, "collateral_unavailable:tcb_info");

	test_case("a PCCS that hangs up: collateral_unavailable:pck_crl");
	good_routes(r);
	r[R_PCK].hang_up = true;
	expect_failure("hang-up", r, R_COUNT, 0, 0, NULL, "collateral_unavailable:pck_crl");

	char *big = malloc(200 * 1024 + 1);
	memset(big, ' ', 200 * 1024);
	big[200 * 1024] = '\0';
	memcpy(big, tcb_body, strlen(tcb_body)); /* valid JSON, then 190 KiB of spaces */

	test_case("a body over the limit (Content-Length): collateral_invalid:tcb_info");
	good_routes(r);
	r[R_TCB].body = big;
	expect_failure("large", r, R_COUNT, 0, 64 * 1024, NULL, "collateral_invalid:tcb_info");

	test_case("a body over the limit without Content-Length: cut off while downloading");
	good_routes(r);
	r[R_TCB].body = big;
	r[R_TCB].no_length = true;
	expect_failure("large-stream", r, R_COUNT, 0, 64 * 1024, NULL,
	               "collateral_invalid:tcb_info");

	test_case("the same body under the limit is accepted (trailing spaces are JSON)");
	good_routes(r);
	r[R_TCB].body = big;
	r[R_TCB].no_length = true;
	serve(r, R_COUNT);
	struct ee_db *db = open_db("large-ok");
	struct pccs_client *c = client(0, 0);
	struct ee_error err;
	char *json = NULL;
	CHECK_OK(get(c, db, FMSPC, "platform", t_verify, &json, &err));
	check_equals_testdata(json, NULL);
	free(json);
	pccs_client_destroy(c);
	db_close(db);
	free(big);

	test_case("TCB info without its issuer-chain header: collateral_invalid:tcb_info");
	good_routes(r);
	r[R_TCB].headers = NULL;
	expect_failure("no header", r, R_COUNT, 0, 0, NULL, "collateral_invalid:tcb_info");

	test_case("PCK CRL without its issuer-chain header: collateral_invalid:pck_crl");
	good_routes(r);
	r[R_PCK].headers = NULL;
	expect_failure("no pck header", r, R_COUNT, 0, 0, NULL, "collateral_invalid:pck_crl");

	test_case("an issuer-chain header that is not PEM: collateral_invalid:qe_identity");
	good_routes(r);
	r[R_QE].headers = "SGX-Enclave-Identity-Issuer-Chain: -----BEGIN%20CERTIFICATE-----%0Azzz\r\n";
	expect_failure("bad chain", r, R_COUNT, 0, 0, NULL, "collateral_invalid:qe_identity");

	test_case("garbage instead of JSON: collateral_invalid:qe_identity");
	good_routes(r);
	r[R_QE].body = "{\"enclaveIdentity\": {\"id\":\"TD_QE\", ";
	expect_failure("garbage", r, R_COUNT, 0, 0, NULL, "collateral_invalid:qe_identity");

	test_case("JSON without a signature: collateral_invalid:tcb_info");
	char *unsigned_body = strprintf("{\"tcbInfo\":%s}", td("tcb_info"));
	good_routes(r);
	r[R_TCB].body = unsigned_body;
	expect_failure("no signature", r, R_COUNT, 0, 0, NULL, "collateral_invalid:tcb_info");
	free(unsigned_body);

	test_case("tcbInfo given twice: collateral_invalid (which one was signed is ambiguous)");
	char *twice = strprintf("{\"tcbInfo\":%s,\"tcbInfo\":%s,\"signature\":\"%s\"}",
	                        td("tcb_info"), td("tcb_info"), td("tcb_info_signature"));
	good_routes(r);
	r[R_TCB].body = twice;
	expect_failure("twice", r, R_COUNT, 0, 0, NULL, "collateral_invalid:tcb_info");
	free(twice);

	test_case("TCB info of another FMSPC: collateral_invalid:tcb_info");
	good_routes(r);
	r[R_TCB].target = "/tdx/certification/v4/tcb?fmspc=00906ED50000";
	expect_failure("fmspc", r, R_COUNT, 0, 0, "00906ed50000", "collateral_invalid:tcb_info");

	test_case("a root CA CRL that is no CRL: collateral_invalid:root_ca_crl");
	good_routes(r);
	r[R_ROOT].body = "this is not a CRL";
	expect_failure("bad crl", r, R_COUNT, 0, 0, NULL, "collateral_invalid:root_ca_crl");

	test_case("a CRL with trailing bytes: collateral_invalid:pck_crl");
	unsigned char *longer = malloc(pck_der_len + 2);
	memcpy(longer, pck_der, pck_der_len);
	longer[pck_der_len] = 0;
	longer[pck_der_len + 1] = 0;
	good_routes(r);
	r[R_PCK].body = (const char *)longer;
	r[R_PCK].body_len = pck_der_len + 2;
	expect_failure("trailing", r, R_COUNT, 0, 0, NULL, "collateral_invalid:pck_crl");
	free(longer);

	test_case("bad arguments: invalid_fmspc, invalid_pck_ca, no request");
	good_routes(r);
	serve(r, R_COUNT);
	db = open_db("args");
	c = client(0, 0);
	CHECK_INT(get(c, db, "B0C06F00000", "platform", t_verify, &json, &err), -1);
	CHECK_STR(err.reason, "invalid_fmspc");
	CHECK_INT(get(c, db, "B0C06F00000G", "platform", t_verify, &json, &err), -1);
	CHECK_STR(err.reason, "invalid_fmspc");
	CHECK_INT(get(c, db, FMSPC, "Platform", t_verify, &json, &err), -1);
	CHECK_STR(err.reason, "invalid_pck_ca");
	CHECK_INT(fakehttp_count(&server, NULL), 0);
	pccs_client_destroy(c);
	db_close(db);
}

static void test_encodings(void)
{
	struct fakehttp_route r[R_COUNT];
	struct ee_error err;
	char *json;

	test_case("CRLs as PEM (PCK) and DER (root): the same hex DER");
	good_routes(r);
	r[R_PCK].body = pck_pem;
	r[R_PCK].body_len = 0;
	r[R_ROOT].body = (const char *)root_der;
	r[R_ROOT].body_len = root_der_len;
	serve(r, R_COUNT);
	struct ee_db *db = open_db("enc-1");
	struct pccs_client *c = client(0, 0);
	CHECK_OK(get(c, db, FMSPC, "platform", t_verify, &json, &err));
	check_equals_testdata(json, NULL);
	free(json);
	db_close(db);

	test_case("CRLs as hex (PCK, upper case, with a newline) and PEM (root)");
	char *upper = strprintf("%s\n", td("pck_crl"));
	for (char *p = upper; *p; p++)
		if (*p >= 'a' && *p <= 'f')
			*p = (char)(*p - 'a' + 'A');
	good_routes(r);
	r[R_PCK].body = upper;
	r[R_PCK].body_len = 0;
	r[R_ROOT].body = root_pem;
	serve(r, R_COUNT);
	db = open_db("enc-2");
	CHECK_OK(get(c, db, FMSPC, "platform", t_verify, &json, &err));
	check_equals_testdata(json, NULL);
	free(json);
	db_close(db);
	free(upper);

	test_case("tcbInfo text edited (spacing, escapes, number form, decoys): taken byte for byte");
	/* The same TCB info written differently: re-serialising would lose all of it. */
	const char *orig = td("tcb_info");
	struct buf edited;
	buf_init(&edited);
	buf_puts(&edited, "{ \"id\" : \"T\\u0044X\",\n  \"version\":3.0e0 ,");
	const char *rest = strstr(orig, "\"issueDate\"");
	buf_puts(&edited, rest);
	char *body = strprintf("{\"decoy\":\"}{\\\"tcbInfo\\\":{\\\"x\\\":1}}\","
	                       "\"nested\":{\"tcbInfo\":{\"id\":\"NOPE\"}},"
	                       "\n \"tcbInfo\" :  %s ,\t\"signature\":\"%s\"}\n",
	                       edited.data, td("tcb_info_signature"));
	good_routes(r);
	r[R_TCB].body = body;
	serve(r, R_COUNT);
	db = open_db("enc-3");
	CHECK_OK(get(c, db, FMSPC, "platform", t_verify, &json, &err));
	check_equals_testdata(json, edited.data);
	free(json);

	test_case("the edited text comes back byte for byte from the cache too");
	fakehttp_clear_log(&server);
	CHECK_OK(get(c, db, FMSPC, "platform", t_verify, &json, &err));
	CHECK_INT(fakehttp_count(&server, NULL), 0);
	check_equals_testdata(json, edited.data);
	free(json);
	db_close(db);
	free(body);
	buf_free(&edited);
	pccs_client_destroy(c);
}

static void test_options(void)
{
	struct pccs_options o;
	struct ee_error err;

	test_case("options: EE_PCCS_URL unset is Intel's PCS");
	unsetenv("EE_PCCS_URL");
	CHECK_INT(pccs_options_from_env(&o, &err), 0);
	CHECK_STR(o.base_url, PCCS_DEFAULT_URL);
	CHECK_INT(o.connect_timeout_ms, 5000);
	CHECK_INT(o.timeout_ms, 20000);

	test_case("options: a PCCS URL loses its trailing slash");
	setenv("EE_PCCS_URL", "https://pccs.example:8081/", 1);
	CHECK_INT(pccs_options_from_env(&o, &err), 0);
	CHECK_STR(o.base_url, "https://pccs.example:8081");

	test_case("options: an invalid EE_PCCS_URL is named");
	const char *bad[] = {"ftp://pccs.example", "pccs.example", "https://", "https://a b",
	                     "https://pccs.example/?x=1"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		setenv("EE_PCCS_URL", bad[i], 1);
		ee_error_clear(&err);
		CHECK(pccs_options_from_env(&o, &err) == -1, "%s", bad[i]);
		CHECK_STR(err.reason, "invalid_config:EE_PCCS_URL");
	}
	unsetenv("EE_PCCS_URL");
}

int main(void)
{
	ee_log_init("test_pccs", EE_LOG_ERROR);
	if (load_testdata() != 0) {
		test_fail(__FILE__, __LINE__, "the DCAP testdata at %s is missing or unreadable",
		          TESTDATA_DIR);
		return test_finish();
	}
	if (stack_make_dir(tmp_dir, sizeof(tmp_dir), "pccs") != 0) {
		perror("mkdtemp");
		return 1;
	}
	char log_path[600];
	snprintf(log_path, sizeof(log_path), "%s/requests.log", tmp_dir);
	if (fakehttp_open(&server, log_path) != 0) {
		perror("fakehttp_open");
		return 1;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);

	test_assemble_and_cache();
	test_memo();
	test_stale_cache();
	test_failures();
	test_encodings();
	test_options();

	fakehttp_close(&server);
	curl_global_cleanup();
	json_object_put(testdata);
	free(tcb_body);
	free(tcb_header);
	free(qe_body);
	free(qe_header);
	free(pck_header);
	free(root_hex);
	free(pck_pem);
	free(root_pem);
	free(pck_der);
	free(root_der);
	if (stack_remove_dir(tmp_dir) != 0)
		fprintf(stderr, "cannot remove %s: %s\n", tmp_dir, strerror(errno));
	return test_finish();
}
