/*
 * bench_attest.c - attestation verifications per second with the collateral
 * already prepared, against OpenSSL's ECDSA P-256 verify rate measured in
 * the same process.
 *
 *   bench_attest <dir> <seconds> [threads]      (threads: default nproc)
 *
 * The development network as ee-tunneld runs it: a dcapgen hierarchy
 * (tests/support/dcapgen.h) is the sandbox-1 root with its collateral, and
 * the release's allowlist is a file in <dir>/allowlists.  Each
 * verification is verifier_verify() (lib/verifier.c) on a whole
 * attest_response as an agent sends it (testagent.h builds it: quote
 * signed over REPORTDATA = SHA-256(measurements) || SHA-256(nonce)), every
 * step included: REPORTDATA and register binding, the allowlist, and DCAP
 * (lib/dcap.c) on the quote.  64 responses to 64 nonces are made first and
 * verified in turn, so no answer is verified twice in a row.  The first
 * verification of each verifier prepares the collateral; the timed ones
 * find it cached, as a running ee-tunneld does between collateral updates.
 *
 * A quote costs two ECDSA P-256 verifications once the collateral is
 * prepared and its PCK chain is in the verifier's cache of verified chains
 * (lib/dcap.c; every timed quote here, as for a platform seen before): the
 * QE report (signed by the PCK key) and the quote (signed by the
 * attestation key).  The reference is EVP_DigestVerify with SHA-256 over a
 * 1 KiB message, the same call lib/dcap_x509.c makes.
 *
 * Prints name/value lines:
 *   ecdsa_p256_verify_per_s_1thread, ecdsa_p256_verify_per_s_Nthreads (N
 *   threads at once: how far the cores scale with nothing shared),
 *   quote_verify_per_s_1thread, quote_verify_per_s_Nthreads, threads,
 *   quote_verify_per_s_per_core,
 *   ecdsa_verifies_per_quote, ecdsa_share (the part of one quote's time
 *   that two bare ECDSA verifications would take).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>
#include <openssl/evp.h>

#include "db.h"
#include "dcapgen.h"
#include "log.h"
#include "testagent.h"
#include "timeutil.h"
#include "verifier.h"

#define EVIDENCE_COUNT 64
#define MAX_THREADS 64
#define REPO "bench/attest"
#define TAG "v1.0.0"
#define NETWORK "sandbox-1"
#define ECDSA_MESSAGE_LEN 1024
#define ECDSA_VERIFIES_PER_QUOTE 2

struct evidence {
	char nonce[33];
	struct json_object *msg; /* the attest_response */
};

static struct evidence evidence[EVIDENCE_COUNT];
static struct verifier_options vopts;
static char db_path[600];
static double seconds;

struct thread_result {
	long long done;
	long long failed;
	char reason[EE_REASON_MAX + 16];
	double elapsed_ms;
};

static const char *field(struct json_object *o, const char *key)
{
	struct json_object *v;
	return json_object_object_get_ex(o, key, &v) ? json_object_get_string(v) : NULL;
}

static void evidence_of(const struct evidence *e, struct attest_evidence *ev)
{
	struct json_object *m = NULL;
	json_object_object_get_ex(e->msg, "measurements", &m);
	const char *quote = field(e->msg, "quote");
	*ev = (struct attest_evidence){
		.nonce_hex = e->nonce,
		.quote_b64 = quote,
		.quote_b64_len = quote ? strlen(quote) : 0,
		.report_data_hex = field(e->msg, "report_data"),
		.measurements = m,
		.network = NETWORK,
		.repo = REPO,
		.release_tag = TAG,
	};
}

/* One verifier with its own database connection, as each of ee-tunneld's verify threads. */
static void *verify_thread(void *arg)
{
	struct thread_result *r = arg;
	struct ee_db_options dbo = {5000, "NORMAL", false};
	struct ee_db *db = NULL;
	struct verifier *v = NULL;
	struct ee_error err;
	if (db_open(db_path, &dbo, &db, &err) != 0 || verifier_create(&vopts, db, &v, &err) != 0) {
		snprintf(r->reason, sizeof(r->reason), "setup: %s", err.reason);
		r->failed = 1;
		db_close(db);
		return NULL;
	}
	struct attest_evidence ev;
	struct attest_verdict verdict;
	evidence_of(&evidence[0], &ev);
	verifier_verify(v, &ev, &verdict); /* prepares the collateral */
	int64_t start = time_monotonic_ms(), end = start + (int64_t)(seconds * 1000);
	long long i = 0;
	for (;;) {
		/* The clock is read every 16 verifications: a verification is tens of microseconds. */
		if ((i & 15) == 0 && time_monotonic_ms() >= end)
			break;
		evidence_of(&evidence[i % EVIDENCE_COUNT], &ev);
		verifier_verify(v, &ev, &verdict);
		if (!verdict.verified) {
			if (!r->failed)
				snprintf(r->reason, sizeof(r->reason), "%s", verdict.reason);
			r->failed++;
		}
		i++;
	}
	r->elapsed_ms = (double)(time_monotonic_ms() - start);
	r->done = i;
	verifier_destroy(v);
	db_close(db);
	return NULL;
}

/* Verifications per second over n threads; -1 if any failed. */
static double verify_rate(int n)
{
	pthread_t tids[MAX_THREADS];
	struct thread_result results[MAX_THREADS];
	memset(results, 0, sizeof(results));
	for (int t = 0; t < n; t++)
		if (pthread_create(&tids[t], NULL, verify_thread, &results[t]) != 0)
			return -1;
	double rate = 0;
	int bad = 0;
	for (int t = 0; t < n; t++) {
		pthread_join(tids[t], NULL);
		if (results[t].failed) {
			fprintf(stderr, "bench_attest: %lld verifications failed: %s\n", results[t].failed,
			        results[t].reason);
			bad = 1;
		}
		if (results[t].elapsed_ms > 0)
			rate += (double)results[t].done * 1000.0 / results[t].elapsed_ms;
	}
	return bad ? -1 : rate;
}

/* OpenSSL's ECDSA P-256 verify rate: EVP_DigestVerify with SHA-256 over 1 KiB. */
static double ecdsa_rate(void)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	unsigned char msg[ECDSA_MESSAGE_LEN], sig[128];
	size_t sig_len = sizeof(sig);
	memset(msg, 0x5a, sizeof(msg));
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	if (!key || !ctx || EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key) != 1 ||
	    EVP_DigestSign(ctx, sig, &sig_len, msg, sizeof(msg)) != 1) {
		EVP_MD_CTX_free(ctx);
		EVP_PKEY_free(key);
		return -1;
	}
	long long n = 0;
	int64_t start = time_monotonic_ms(), end = start + (int64_t)(seconds * 1000);
	bool ok = true;
	while (ok) {
		if ((n & 63) == 0 && time_monotonic_ms() >= end)
			break;
		/* A fresh context each time, as lib/dcap_x509.c does per signature. */
		EVP_MD_CTX *v = EVP_MD_CTX_new();
		ok = v && EVP_DigestVerifyInit(v, NULL, EVP_sha256(), NULL, key) == 1 &&
		     EVP_DigestVerify(v, sig, sig_len, msg, sizeof(msg)) == 1;
		EVP_MD_CTX_free(v);
		n++;
	}
	double elapsed = (double)(time_monotonic_ms() - start);
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(key);
	return ok && elapsed > 0 ? (double)n * 1000.0 / elapsed : -1;
}

static void *ecdsa_thread(void *arg)
{
	*(double *)arg = ecdsa_rate();
	return NULL;
}

/* The ECDSA rate over n threads at once: what the cores give when nothing is shared. */
static double ecdsa_rate_threads(int n)
{
	pthread_t tids[MAX_THREADS];
	double rates[MAX_THREADS];
	for (int t = 0; t < n; t++)
		if (pthread_create(&tids[t], NULL, ecdsa_thread, &rates[t]) != 0)
			return -1;
	double total = 0;
	bool bad = false;
	for (int t = 0; t < n; t++) {
		pthread_join(tids[t], NULL);
		bad |= rates[t] <= 0;
		total += rates[t];
	}
	return bad ? -1 : total;
}

static int setup(const char *dir)
{
	struct dcapgen_options o;
	dcapgen_defaults(&o);
	struct dcapgen *g;
	if (dcapgen_create(&o, &g) != 0)
		return -1;
	agent_set_hierarchy(g);
	char allow[sizeof(vopts.allowlist_dir)];
	if ((size_t)snprintf(allow, sizeof(allow), "%s/allowlists", dir) >= sizeof(allow))
		return -1;
	mkdir(allow, 0700);
	if (agent_write_allowlist(allow, REPO, TAG, NULL, true) != 0)
		return -1;
	verifier_options_default(&vopts);
	memcpy(vopts.allowlist_dir, allow, sizeof(allow));
	if (dcapgen_root_pem(g, &vopts.dev_root_pem) != 0 ||
	    dcapgen_collateral_json(g, &vopts.dev_collateral_json) != 0)
		return -1;
	snprintf(db_path, sizeof(db_path), "%s/bench-attest.db", dir);
	struct ee_db_options dbo = {5000, "NORMAL", true};
	struct ee_db *db;
	struct ee_error err;
	if (db_open(db_path, &dbo, &db, &err) != 0) {
		fprintf(stderr, "bench_attest: %s: %s\n", db_path, err.reason);
		return -1;
	}
	db_close(db);
	for (int i = 0; i < EVIDENCE_COUNT; i++) {
		util_random_hex(evidence[i].nonce, 16);
		evidence[i].msg = agent_build_attest_response(evidence[i].nonce, NULL);
		if (!evidence[i].msg)
			return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	ee_log_init("bench_attest", EE_LOG_WARN);
	if (argc < 3 || argc > 4) {
		fprintf(stderr, "usage: bench_attest <dir> <seconds> [threads]\n");
		return 2;
	}
	seconds = atof(argv[2]);
	long threads = argc == 4 ? atol(argv[3]) : sysconf(_SC_NPROCESSORS_ONLN);
	if (seconds <= 0 || threads < 1 || threads > MAX_THREADS) {
		fprintf(stderr, "bench_attest: bad seconds or threads\n");
		return 2;
	}
	if (setup(argv[1]) != 0) {
		fprintf(stderr, "bench_attest: setup failed\n");
		return 1;
	}
	double ecdsa = ecdsa_rate();
	double ecdsa_all = ecdsa_rate_threads((int)threads);
	double one = verify_rate(1);
	double all = verify_rate((int)threads);
	if (ecdsa <= 0 || ecdsa_all <= 0 || one <= 0 || all <= 0)
		return 1;
	printf("ecdsa_p256_verify_per_s_1thread %.0f\n", ecdsa);
	printf("ecdsa_p256_verify_per_s_%ldthreads %.0f\n", threads, ecdsa_all);
	printf("quote_verify_per_s_1thread %.0f\n", one);
	printf("quote_verify_per_s_%ldthreads %.0f\n", threads, all);
	printf("threads %ld\n", threads);
	printf("quote_verify_per_s_per_core %.0f\n", all / (double)threads);
	printf("ecdsa_verifies_per_quote %d\n", ECDSA_VERIFIES_PER_QUOTE);
	printf("ecdsa_share %.2f\n", one * ECDSA_VERIFIES_PER_QUOTE / ecdsa);
	for (int i = 0; i < EVIDENCE_COUNT; i++)
		json_object_put(evidence[i].msg);
	verifier_options_free(&vopts);
	dcapgen_destroy(agent_hierarchy());
	return 0;
}
