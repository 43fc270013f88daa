/*
 * test_idempotency.c - Idempotency-Key storage (lib/idempotency.c) on a real
 * SQLite file: a stored answer is replayed for the same request, refused as
 * idempotency_key_reused for a different one, kept apart per scope; and the
 * rules for a valid key.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "db.h"
#include "idempotency.h"
#include "log.h"
#include "stack.h"
#include "util.h"

static char tmp_dir[512];
static char db_path[600];

static void hash_of(const char *request, char out[65])
{
	util_sha256_hex(request, strlen(request), out);
}

static void test_store_and_lookup(struct ee_db *db)
{
	struct ee_error err;
	struct buf response;
	buf_init(&response);
	char h1[65], h2[65];
	hash_of("POST /v1/credits/purchase {\"account_id\":\"alice\",\"amount_usd\":\"1\"}", h1);
	hash_of("POST /v1/credits/purchase {\"account_id\":\"alice\",\"amount_usd\":\"2\"}", h2);
	const char *answer = "{\"txn_id\":\"abc\",\"balance_cents\":100,\"note\":\"caf\xc3\xa9\"}";

	test_case("lookup of a key never stored: not found, no error");
	bool found = true;
	int status = -1;
	ee_error_clear(&err);
	CHECK_INT(db_begin_write(db, &err), 0);
	CHECK_INT(idempotency_lookup(db, "credits.purchase", "key-1", h1, &found, &status, &response,
	                             &err),
	          0);
	CHECK(!found);

	test_case("store, then lookup with the same hash: the stored answer");
	CHECK_INT(idempotency_store(db, "credits.purchase", "key-1", h1, 200, answer, &err), 0);
	CHECK_INT(db_commit(db, &err), 0);
	found = false;
	CHECK_INT(db_begin_write(db, &err), 0);
	CHECK_INT(idempotency_lookup(db, "credits.purchase", "key-1", h1, &found, &status, &response,
	                             &err),
	          0);
	CHECK(found);
	CHECK_INT(status, 200);
	CHECK_STR(response.data, answer);
	CHECK_INT(response.len, strlen(answer));

	test_case("lookup with a different hash: 422 idempotency_key_reused");
	ee_error_clear(&err);
	found = true;
	CHECK_INT(idempotency_lookup(db, "credits.purchase", "key-1", h2, &found, &status, &response,
	                             &err),
	          -1);
	CHECK(!found);
	CHECK_INT(err.status, 422);
	CHECK_STR(err.reason, "idempotency_key_reused");

	test_case("the same key in another scope is another key");
	ee_error_clear(&err);
	found = true;
	CHECK_INT(idempotency_lookup(db, "credits.transfer", "key-1", h2, &found, &status, &response,
	                             &err),
	          0);
	CHECK(!found);
	CHECK_INT(idempotency_store(db, "credits.transfer", "key-1", h2, 201, "{}", &err), 0);
	CHECK_INT(idempotency_lookup(db, "credits.transfer", "key-1", h2, &found, &status, &response,
	                             &err),
	          0);
	CHECK(found);
	CHECK_INT(status, 201);
	CHECK_STR(response.data, "{}");
	/* the first scope still has its own answer */
	CHECK_INT(idempotency_lookup(db, "credits.purchase", "key-1", h1, &found, &status, &response,
	                             &err),
	          0);
	CHECK_STR(response.data, answer);

	test_case("keys are case-sensitive");
	CHECK_INT(idempotency_lookup(db, "credits.purchase", "KEY-1", h2, &found, &status, &response,
	                             &err),
	          0);
	CHECK(!found);

	test_case("storing the same key twice is a conflict, not a silent overwrite");
	ee_error_clear(&err);
	CHECK_INT(idempotency_store(db, "credits.purchase", "key-1", h2, 200, "{\"other\":1}", &err),
	          -1);
	CHECK_INT(err.status, 409);
	CHECK_STR(err.reason, "conflict");
	CHECK_INT(idempotency_lookup(db, "credits.purchase", "key-1", h1, &found, &status, &response,
	                             &err),
	          0);
	CHECK(found);
	CHECK_STR(response.data, answer);
	CHECK_INT(db_commit(db, &err), 0);

	test_case("a rolled-back store leaves nothing behind");
	CHECK_INT(db_begin_write(db, &err), 0);
	CHECK_INT(idempotency_store(db, "credits.purchase", "key-2", h1, 200, "{}", &err), 0);
	db_rollback(db);
	CHECK_INT(db_begin_write(db, &err), 0);
	found = true;
	CHECK_INT(idempotency_lookup(db, "credits.purchase", "key-2", h1, &found, &status, &response,
	                             &err),
	          0);
	CHECK(!found);
	db_rollback(db);

	test_case("answers survive reopening the database");
	db_close(db);
	struct ee_db_options o = {.busy_timeout_ms = 5000, .synchronous = "FULL", .create = false};
	struct ee_db *again = NULL;
	CHECK_INT(db_open(db_path, &o, &again, &err), 0);
	if (again) {
		CHECK_INT(db_begin_read(again, &err), 0);
		CHECK_INT(idempotency_lookup(again, "credits.purchase", "key-1", h1, &found, &status,
		                             &response, &err),
		          0);
		CHECK(found);
		CHECK_STR(response.data, answer);
		db_rollback(again);
		db_close(again);
	}
	buf_free(&response);
}

static void test_key_rules(void)
{
	char max[IDEMPOTENCY_KEY_MAX + 2];
	memset(max, 'k', sizeof(max));
	max[IDEMPOTENCY_KEY_MAX] = '\0';

	test_case("valid keys: 1 character, 255 characters, any printable ASCII");
	CHECK(idempotency_key_valid("a"));
	CHECK(idempotency_key_valid(max));
	CHECK(idempotency_key_valid("550e8400-e29b-41d4-a716-446655440000"));
	const char *punctuation = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";
	CHECK(idempotency_key_valid(punctuation));

	test_case("invalid keys: NULL, empty, 256 characters");
	CHECK(!idempotency_key_valid(NULL));
	CHECK(!idempotency_key_valid(""));
	max[IDEMPOTENCY_KEY_MAX] = 'k';
	max[IDEMPOTENCY_KEY_MAX + 1] = '\0';
	CHECK(!idempotency_key_valid(max));

	test_case("invalid keys: spaces, controls, DEL, non-ASCII");
	static const char *const bad[] = {" ", "a b", " a", "a ", "a\tb", "a\nb", "a\rb",
	                                  "\x01", "a\x7f", "caf\xc3\xa9", "\xff"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (idempotency_key_valid(bad[i]))
			test_fail(__FILE__, __LINE__, "accepted bad key %zu", i);
	}
}

int main(void)
{
	ee_log_init("test_idempotency", EE_LOG_ERROR);
	if (stack_make_dir(tmp_dir, sizeof(tmp_dir), "idem") != 0) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(db_path, sizeof(db_path), "%s/idem.sqlite", tmp_dir);
	struct ee_db_options o = {.busy_timeout_ms = 5000, .synchronous = "NORMAL", .create = true};
	struct ee_db *db = NULL;
	struct ee_error err;
	if (db_open(db_path, &o, &db, &err) != 0) {
		fprintf(stderr, "db_open: %s\n", err.reason);
		return 1;
	}
	test_store_and_lookup(db); /* closes db */
	test_key_rules();

	if (stack_remove_dir(tmp_dir) != 0)
		fprintf(stderr, "cannot remove %s: %s\n", tmp_dir, strerror(errno));
	return test_finish();
}
