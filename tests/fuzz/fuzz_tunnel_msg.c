/*
 * fuzz_tunnel_msg.c - what ee-tunneld does with a websocket text frame from
 * an agent before any state changes: tunnel_msg_parse (lib/tunnel_msg.c),
 * then, by type, the verifier on an attest_response (lib/verifier.c, with
 * the fixture's test root of dcap_fixture.h pinned as sandbox-1's
 * development root, at its time, and an allowlist directory that holds
 * nothing), the canonical measurement digest, and strict base64 on a
 * proxy_response body (lib/base64.c).  The PCCS and GitHub URLs point at a
 * closed loopback port: a fuzz run never reaches the network.
 * Properties: no crash, no leak, no read past the frame; a parsed message
 * has a known type and every string it exposes is NUL-terminated inside
 * the parse; its headers (read again as bytes when they carry \udcXX) are
 * the tree's; a refused one gives at most a printable request id; base64 that decodes re-encodes to the same text; the verifier
 * never accepts a quote on forge-1 and always answers with a reason.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_TARGET "fuzz_tunnel_msg"
#include "fuzz_support.h"

#include "attest.h"
#include "base64.h"
#include "dcap_fixture.h"
#include "tunnel_msg.h"
#include "util.h"
#include "verifier.h"

static struct verifier *verifier;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	struct verifier_options opts;
	verifier_options_default(&opts);
	opts.dev_root_pem = strdup(dcap_fixture_root_pem);
	opts.dev_collateral_json = strdup(dcap_fixture_collateral_json);
	opts.fixed_time_s = DCAP_FIXTURE_TIME;
	snprintf(opts.allowlist_dir, sizeof(opts.allowlist_dir), "/nonexistent/ee-fuzz-allowlists");
	snprintf(opts.pccs.base_url, sizeof(opts.pccs.base_url), "http://127.0.0.1:1");
	snprintf(opts.pccs.root_ca_crl_url, sizeof(opts.pccs.root_ca_crl_url), "http://127.0.0.1:1");
	snprintf(opts.allowlist.api_url, sizeof(opts.allowlist.api_url), "http://127.0.0.1:1");
	struct ee_error err;
	if (!opts.dev_root_pem || !opts.dev_collateral_json ||
	    verifier_create(&opts, NULL, &verifier, &err) != 0)
		abort();
	verifier_options_free(&opts);
	return 0;
}

static void check_base64(const uint8_t *data, size_t size, const char *text, size_t len)
{
	unsigned char *raw = malloc(base64_decoded_max(len) + 1);
	size_t n;
	if (!raw)
		return;
	if (base64_decode(text, len, raw, &n) == 0) {
		if (n > base64_decoded_max(len))
			fuzz_fail("base64 decoded more than its bound", data, size);
		char *again = malloc(base64_encoded_len(n) + 1);
		if (again) {
			base64_encode(raw, n, again);
			if (strlen(again) != len || memcmp(again, text, len) != 0)
				fuzz_fail("base64 that decodes does not re-encode to itself", data, size);
			free(again);
		}
	}
	free(raw);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text;
	if (!fuzz_input_copy(data, size, &text))
		return 0;
	struct tunnel_msg m;
	struct ee_error err;
	if (tunnel_msg_parse(text ? text : "", size, &m, &err) != 0) {
		if (strcmp(err.reason, "invalid_json") != 0 && strcmp(err.reason, "unknown_message") != 0)
			fuzz_fail("an unexpected parse reason", data, size);
		/* What ee-tunneld takes from an answer it cannot read: an id to end, no more. */
		char id[25];
		if (tunnel_msg_request_id(text ? text : "", size, TUNNEL_MSG_PROXY_RESPONSE, id,
		                          sizeof(id)) &&
		    !util_valid_printable(id, strlen(id), sizeof(id) - 1))
			fuzz_fail("the id of an unreadable answer is not printable", data, size);
		free(text);
		return 0;
	}
	if (strcmp(tunnel_msg_type_name(m.type), "unknown") == 0)
		fuzz_fail("a parsed message of no known type", data, size);
	const char *strings[] = {m.repo, m.release_tag, m.app_name, m.network, m.agent_id,
	                         m.nonce, m.quote, m.report_data, m.status, m.state,
	                         m.request_id, m.method, m.path, m.body_b64, m.reason};
	size_t total = 0;
	for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++)
		total += strings[i] ? strlen(strings[i]) : 0;
	(void)total;

	if (m.type == TUNNEL_MSG_ATTEST_RESPONSE) {
		static const char *const networks[] = {"sandbox-1", "forge-1"};
		for (int i = 0; i < 2; i++) {
			struct attest_evidence ev = {
				.nonce_hex = m.nonce ? m.nonce : "00000000000000000000000000000000",
				.quote_b64 = m.quote,
				.quote_b64_len = m.quote_len,
				.report_data_hex = m.report_data,
				.measurements = m.measurements,
				.network = networks[i],
				.repo = "org/repo",
				.release_tag = "v1",
			};
			struct attest_verdict v;
			verifier_verify(verifier, &ev, &v);
			if (!v.reason[0])
				fuzz_fail("a verdict without a reason", data, size);
			if (i == 1 && v.verified)
				fuzz_fail("a development-root quote accepted on forge-1", data, size);
		}
		unsigned char digest[32];
		attest_measurements_digest(m.measurements, digest, &err);
	}
	if (m.type == TUNNEL_MSG_PROXY_RESPONSE && m.body_b64)
		check_base64(data, size, m.body_b64, m.body_b64_len);
	if (m.headers) {
		/* The tree's headers are the message's own, read again as bytes or not. */
		struct json_object *h;
		if (!json_object_object_get_ex(m.root, "headers", &h) || h != m.headers)
			fuzz_fail("headers that are not the message's", data, size);
	}
	if (m.quote)
		check_base64(data, size, m.quote, m.quote_len);
	tunnel_msg_free(&m);
	free(text);
	return 0;
}
