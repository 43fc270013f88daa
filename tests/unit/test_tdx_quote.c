/*
 * test_tdx_quote.c - the TDX quote parser (lib/tdx_quote.c) on quotes built
 * by hand: versions 4 and 5 with both body types, every field's offset,
 * wrong versions, key types, TEE types, body descriptors and certification
 * data types, each size one byte past the end or one short, the PCK chain
 * text, padding, the size limit, and every truncation.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "tdx_quote.h"

#define PEM "-----BEGIN CERTIFICATE-----\nTUlJ\n-----END CERTIFICATE-----\n"

/* What a built quote looks like; build() turns it into bytes. */
struct spec {
	uint16_t version;
	uint16_t key_type;
	uint32_t tee_type;
	uint16_t body_type; /* v5 descriptor */
	int64_t body_size;  /* v5 descriptor; -1: the type's own size */
	size_t body_len;    /* bytes of body actually written */
	int64_t sig_len;    /* -1: what the parts add up to */
	uint16_t outer_type;
	int64_t outer_len;
	size_t auth_len;
	int64_t auth_len_field; /* -1: auth_len */
	uint16_t inner_type;
	int64_t inner_len;
	const char *pem;
	size_t pem_len; /* 0: strlen(pem) + 1 (a NUL, as generators write) */
	size_t padding;
	uint8_t padding_byte;
};

static struct spec v4(void)
{
	return (struct spec){
		.version = 4, .key_type = 2, .tee_type = 0x81, .body_type = 2, .body_size = -1,
		.body_len = 584, .sig_len = -1, .outer_type = 6, .outer_len = -1, .auth_len = 32,
		.auth_len_field = -1, .inner_type = 5, .inner_len = -1, .pem = PEM,
	};
}

static struct spec v5(uint16_t body_type)
{
	struct spec s = v4();
	s.version = 5;
	s.body_type = body_type;
	s.body_len = body_type == 3 ? 648 : 584;
	return s;
}

struct out {
	uint8_t *p;
	size_t len;
};

static void put(struct out *o, const void *data, size_t n)
{
	memcpy(o->p + o->len, data, n);
	o->len += n;
}

static void put16(struct out *o, uint32_t v)
{
	uint8_t b[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
	put(o, b, 2);
}

static void put32(struct out *o, uint64_t v)
{
	uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
	put(o, b, 4);
}

/* Every byte of the quote says where it is: byte i of a field region is (i * 7 + 1) & 0xff. */
static void fill(struct out *o, size_t n)
{
	for (size_t i = 0; i < n; i++)
		o->p[o->len + i] = (uint8_t)(((o->len + i) * 7 + 1) & 0xff);
	o->len += n;
}

/* The quote of s in a malloc'd buffer of exactly its length. */
static uint8_t *build(const struct spec *s, size_t *len)
{
	size_t pem_len = s->pem_len ? s->pem_len : strlen(s->pem) + 1;
	size_t cap = 48 + 6 + 648 + 4 + 128 + 6 + 384 + 64 + 2 + s->auth_len + 6 + pem_len + s->padding;
	struct out o = {calloc(1, cap), 0};
	if (!o.p)
		abort();
	put16(&o, s->version);
	put16(&o, s->key_type);
	put32(&o, s->tee_type);
	fill(&o, 40);
	if (s->version == 5) {
		put16(&o, s->body_type);
		put32(&o, (uint64_t)(s->body_size >= 0 ? s->body_size : (int64_t)s->body_len));
	}
	fill(&o, s->body_len);
	size_t inner = 6 + pem_len;
	size_t outer = 384 + 64 + 2 + s->auth_len + inner;
	size_t sig = 64 + 64 + 6 + outer;
	put32(&o, (uint64_t)(s->sig_len >= 0 ? s->sig_len : (int64_t)sig));
	fill(&o, 128);
	put16(&o, s->outer_type);
	put32(&o, (uint64_t)(s->outer_len >= 0 ? s->outer_len : (int64_t)outer));
	fill(&o, 384 + 64);
	put16(&o, (uint32_t)(s->auth_len_field >= 0 ? s->auth_len_field : (int64_t)s->auth_len));
	fill(&o, s->auth_len);
	put16(&o, s->inner_type);
	put32(&o, (uint64_t)(s->inner_len >= 0 ? s->inner_len : (int64_t)pem_len));
	put(&o, s->pem, pem_len);
	memset(o.p + o.len, s->padding_byte, s->padding);
	o.len += s->padding;
	*len = o.len;
	return o.p;
}

/* Parses the quote of s: the reason, or "ok". */
static const char *parse_reason(const struct spec *s)
{
	static char reason[EE_REASON_MAX];
	size_t len;
	uint8_t *q = build(s, &len);
	struct tdx_quote out;
	struct ee_error err;
	int rc = tdx_quote_parse(q, len, &out, &err);
	snprintf(reason, sizeof(reason), "%s", rc == 0 ? "ok" : err.reason);
	if (rc != 0 && err.status != 400)
		snprintf(reason, sizeof(reason), "status %d", err.status);
	free(q);
	return reason;
}

static void test_v4_layout(void)
{
	struct spec s = v4();
	size_t len;
	uint8_t *b = build(&s, &len);
	struct tdx_quote q;
	struct ee_error err;
	test_case("v4: parses; every field at its offset");
	CHECK(tdx_quote_parse(b, len, &q, &err) == 0, "%s", err.reason);
	CHECK(q.data == b && q.len == len);
	CHECK_INT(q.version, 4);
	CHECK_INT(q.attestation_key_type, 2);
	CHECK_INT(q.tee_type, 0x81);
	CHECK(q.header == b && q.qe_vendor_id == b + 12 && q.user_data == b + 28);
	CHECK_INT(q.qe_svn, b[8] | b[9] << 8);
	CHECK_INT(q.pce_svn, b[10] | b[11] << 8);
	CHECK_INT(q.body_type, 2);
	CHECK(q.body == b + 48);
	CHECK_INT(q.body_len, 584);
	const uint8_t *body = b + 48;
	CHECK(q.td.tee_tcb_svn == body && q.td.mr_seam == body + 16 && q.td.mr_signer_seam == body + 64);
	CHECK(q.td.seam_attributes == body + 112 && q.td.td_attributes == body + 120);
	CHECK(q.td.xfam == body + 128 && q.td.mr_td == body + 136 && q.td.mr_config_id == body + 184);
	CHECK(q.td.mr_owner == body + 232 && q.td.mr_owner_config == body + 280);
	for (int i = 0; i < 4; i++)
		CHECK(q.td.rtmr[i] == body + 328 + 48 * i, "rtmr%d", i);
	CHECK(q.td.report_data == body + 520);
	CHECK(q.td.tee_tcb_svn2 == NULL && q.td.mr_service_td == NULL);
	CHECK(q.signed_data == b);
	CHECK_INT(q.signed_len, 632);
	CHECK(q.signature == b + 636 && q.attestation_key == b + 700);
	const uint8_t *qe = b + 636 + 128 + 6;
	CHECK(q.qe_report.raw == qe && q.qe_report.cpu_svn == qe && q.qe_report.misc_select == qe + 16);
	CHECK(q.qe_report.attributes == qe + 48 && q.qe_report.mr_enclave == qe + 64);
	CHECK(q.qe_report.mr_signer == qe + 128 && q.qe_report.report_data == qe + 320);
	CHECK_INT(q.qe_report.isv_prod_id, qe[256] | qe[257] << 8);
	CHECK_INT(q.qe_report.isv_svn, qe[258] | qe[259] << 8);
	CHECK(q.qe_report_signature == qe + 384);
	CHECK_INT(q.qe_auth_data_len, 32);
	CHECK(q.qe_auth_data == qe + 384 + 64 + 2);
	CHECK_INT(q.pck_chain_pem_len, strlen(PEM) + 1);
	CHECK(q.pck_chain_pem == (const char *)qe + 384 + 64 + 2 + 32 + 6);
	CHECK(memcmp(q.pck_chain_pem, PEM, strlen(PEM)) == 0);
	CHECK(q.pck_chain_pem + q.pck_chain_pem_len == (const char *)b + len);
	CHECK_INT(q.signature_data_len, len - 636);
	CHECK_INT(q.certification_data_len, len - 770);
	CHECK_INT(q.padding_len, 0);

	test_case("v4: the debug bit is bit 0 of TD_ATTRIBUTES");
	b[48 + 120] = 0;
	CHECK(tdx_quote_parse(b, len, &q, &err) == 0 && !tdx_quote_is_debug(&q));
	b[48 + 120] = 1;
	CHECK(tdx_quote_parse(b, len, &q, &err) == 0 && tdx_quote_is_debug(&q));
	b[48 + 120] = 0xfe;
	CHECK(tdx_quote_parse(b, len, &q, &err) == 0 && !tdx_quote_is_debug(&q));
	free(b);
}

static void test_v5(void)
{
	struct tdx_quote q;
	struct ee_error err;
	size_t len;
	test_case("v5: body type 2 (TDX 1.0, 584 bytes)");
	struct spec s = v5(2);
	uint8_t *b = build(&s, &len);
	CHECK(tdx_quote_parse(b, len, &q, &err) == 0, "%s", err.reason);
	CHECK_INT(q.version, 5);
	CHECK_INT(q.body_type, 2);
	CHECK(q.body == b + 54);
	CHECK_INT(q.body_len, 584);
	CHECK_INT(q.signed_len, 48 + 6 + 584);
	CHECK(q.td.report_data == b + 54 + 520);
	CHECK(q.td.tee_tcb_svn2 == NULL && q.td.mr_service_td == NULL);
	CHECK(q.signature == b + 54 + 584 + 4);
	free(b);

	test_case("v5: body type 3 (TDX 1.5, 648 bytes)");
	s = v5(3);
	b = build(&s, &len);
	CHECK(tdx_quote_parse(b, len, &q, &err) == 0, "%s", err.reason);
	CHECK_INT(q.body_type, 3);
	CHECK_INT(q.body_len, 648);
	CHECK_INT(q.signed_len, 48 + 6 + 648);
	CHECK(q.td.tee_tcb_svn2 == b + 54 + 584);
	CHECK(q.td.mr_service_td == b + 54 + 600);
	CHECK(q.td.report_data == b + 54 + 520);
	CHECK(q.signature == b + 54 + 648 + 4);
	free(b);

	test_case("v5: unknown body types");
	static const uint16_t bad_types[] = {0, 1, 4, 5, 0x100, 0xffff};
	for (size_t i = 0; i < sizeof(bad_types) / sizeof(bad_types[0]); i++) {
		s = v5(2);
		s.body_type = bad_types[i];
		CHECK_STR(parse_reason(&s), "unsupported_body_type");
	}

	test_case("v5: a body size that is not its type's");
	s = v5(2);
	s.body_size = 648;
	CHECK_STR(parse_reason(&s), "body_size_mismatch");
	s = v5(3);
	s.body_size = 584;
	CHECK_STR(parse_reason(&s), "body_size_mismatch");
	s = v5(3);
	s.body_size = 647;
	CHECK_STR(parse_reason(&s), "body_size_mismatch");
	s = v5(3);
	s.body_size = 0xffffffff;
	CHECK_STR(parse_reason(&s), "body_size_mismatch");

	test_case("v4 with a 1.5 body's length is just a v4 quote with garbage after 584 bytes");
	s = v4();
	s.body_len = 648;
	CHECK(strcmp(parse_reason(&s), "ok") != 0);
}

static void test_header(void)
{
	struct spec s;
	test_case("header: versions other than 4 and 5");
	static const uint16_t versions[] = {0, 1, 2, 3, 6, 0x0400, 0xffff};
	for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
		s = v4();
		s.version = versions[i];
		CHECK_STR(parse_reason(&s), "unsupported_quote_version");
	}
	test_case("header: attestation key types other than 2 (ECDSA P-256)");
	static const uint16_t keys[] = {0, 1, 3, 0x0200, 0xffff};
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		s = v4();
		s.key_type = keys[i];
		CHECK_STR(parse_reason(&s), "unsupported_attestation_key_type");
	}
	test_case("header: TEE types other than 0x81");
	static const uint32_t tees[] = {0, 0x80, 0x82, 0x8100, 0x81000000u, 0xffffffffu};
	for (size_t i = 0; i < sizeof(tees) / sizeof(tees[0]); i++) {
		s = v4();
		s.tee_type = tees[i];
		CHECK_STR(parse_reason(&s), "not_a_tdx_quote");
	}
	test_case("header: an SGX quote (version 3, TEE type 0) is called not TDX first");
	s = v4();
	s.version = 3;
	s.tee_type = 0;
	CHECK_STR(parse_reason(&s), "not_a_tdx_quote");
	s.key_type = 7;
	CHECK_STR(parse_reason(&s), "not_a_tdx_quote");

	test_case("header: the kind is judged from as few bytes as say it");
	struct tdx_quote q;
	struct ee_error err;
	uint8_t sgx[8] = {3, 0, 2, 0, 0, 0, 0, 0};
	CHECK(tdx_quote_parse(sgx, 8, &q, &err) != 0);
	CHECK_STR(err.reason, "not_a_tdx_quote");
	CHECK(tdx_quote_parse(sgx, 2, &q, &err) != 0);
	CHECK_STR(err.reason, "unsupported_quote_version");
	uint8_t tdx[8] = {4, 0, 2, 0, 0x81, 0, 0, 0};
	CHECK(tdx_quote_parse(tdx, 8, &q, &err) != 0);
	CHECK_STR(err.reason, "quote_truncated");
	CHECK(tdx_quote_parse(tdx, 1, &q, &err) != 0);
	CHECK_STR(err.reason, "quote_truncated");
	CHECK(tdx_quote_parse(NULL, 0, &q, &err) != 0);
	CHECK_STR(err.reason, "quote_truncated");
	CHECK(tdx_quote_parse(tdx, 0, &q, &err) != 0);
	CHECK_STR(err.reason, "quote_truncated");
	CHECK(q.data == NULL && q.header == NULL && q.len == 0); /* zeroed on failure */
}

static void test_certification_data(void)
{
	struct spec s;
	test_case("certification data: outer type other than 6");
	static const uint16_t outer[] = {0, 1, 5, 7, 0x0600, 0xffff};
	for (size_t i = 0; i < sizeof(outer) / sizeof(outer[0]); i++) {
		s = v4();
		s.outer_type = outer[i];
		CHECK_STR(parse_reason(&s), "unsupported_certification_data");
	}
	test_case("certification data: inner type other than 5");
	static const uint16_t inner[] = {0, 1, 4, 6, 7, 0x0500, 0xffff};
	for (size_t i = 0; i < sizeof(inner) / sizeof(inner[0]); i++) {
		s = v5(3);
		s.inner_type = inner[i];
		CHECK_STR(parse_reason(&s), "unsupported_certification_data");
	}
}

/* The size the spec would write for each length field, to set it one past the end. */
static void test_lengths(void)
{
	struct spec base = v5(3);
	size_t pem_len = strlen(PEM) + 1;
	size_t inner = 6 + pem_len;
	size_t outer = 384 + 64 + 2 + 32 + inner;
	size_t sig = 128 + 6 + outer;
	struct spec s;
	test_case("lengths: signature data one byte past the end, and far past");
	s = base;
	s.sig_len = (int64_t)sig + 1;
	CHECK_STR(parse_reason(&s), "quote_truncated");
	s.sig_len = 0xffffffff;
	CHECK_STR(parse_reason(&s), "quote_truncated");
	test_case("lengths: signature data one byte short: its parts do not fit");
	s = base;
	s.sig_len = (int64_t)sig - 1;
	CHECK_STR(parse_reason(&s), "quote_truncated");
	s.sig_len = 0;
	CHECK_STR(parse_reason(&s), "quote_truncated");
	test_case("lengths: signature data one byte longer, with padding after it");
	s = base;
	s.sig_len = (int64_t)sig + 1;
	s.padding = 1;
	CHECK_STR(parse_reason(&s), "signature_data_size_mismatch");

	test_case("lengths: outer certification data one past the end, one short");
	s = base;
	s.outer_len = (int64_t)outer + 1;
	CHECK_STR(parse_reason(&s), "quote_truncated");
	s.outer_len = 0xffffffff;
	CHECK_STR(parse_reason(&s), "quote_truncated");
	s.outer_len = (int64_t)outer - 1;
	CHECK_STR(parse_reason(&s), "signature_data_size_mismatch");
	s.outer_len = 0;
	CHECK_STR(parse_reason(&s), "signature_data_size_mismatch");

	test_case("lengths: QE auth data one past the end of the certification data");
	s = base;
	s.auth_len_field = 32 + inner + 1;
	CHECK_STR(parse_reason(&s), "quote_truncated");
	s.auth_len_field = 0xffff;
	CHECK_STR(parse_reason(&s), "quote_truncated");
	test_case("lengths: QE auth data taking the inner header's bytes");
	s.auth_len_field = 32 + inner; /* exactly to the end: no inner header left */
	CHECK_STR(parse_reason(&s), "quote_truncated");
	s.auth_len_field = 33;
	CHECK_STR(parse_reason(&s), "unsupported_certification_data");
	test_case("lengths: empty QE auth data is fine");
	s = base;
	s.auth_len = 0;
	CHECK_STR(parse_reason(&s), "ok");

	test_case("lengths: PCK chain one past the end, one short");
	s = base;
	s.inner_len = (int64_t)pem_len + 1;
	CHECK_STR(parse_reason(&s), "quote_truncated");
	s.inner_len = 0xffffffff;
	CHECK_STR(parse_reason(&s), "quote_truncated");
	s.inner_len = (int64_t)pem_len - 1;
	CHECK_STR(parse_reason(&s), "certification_data_size_mismatch");
}

static void test_pem_text(void)
{
	struct spec s;
	test_case("PCK chain: the text must hold a PEM certificate");
	s = v4();
	s.pem = "";
	s.pem_len = 1; /* a lone NUL */
	CHECK_STR(parse_reason(&s), "invalid_pck_chain");
	s.pem = "hello world, no certificate here";
	s.pem_len = 0;
	CHECK_STR(parse_reason(&s), "invalid_pck_chain");
	s.pem = "-----BEGIN CERTIFICATE-----\n\x01\n-----END CERTIFICATE-----\n";
	CHECK_STR(parse_reason(&s), "invalid_pck_chain");
	s.pem = "-----BEGIN CERTIFICATE-----\n\xc3\xa9\n-----END CERTIFICATE-----\n";
	CHECK_STR(parse_reason(&s), "invalid_pck_chain");
	s.pem = "-----BEGIN CERTIFICATE----";
	CHECK_STR(parse_reason(&s), "invalid_pck_chain");
	test_case("PCK chain: a NUL inside the text (not only at its end)");
	static const char nul_inside[] = "-----BEGIN CERTIFICATE-----\n\0AAAA\n-----END CERTIFICATE-----\n";
	s.pem = nul_inside;
	s.pem_len = sizeof(nul_inside);
	CHECK_STR(parse_reason(&s), "invalid_pck_chain");
	test_case("PCK chain: without a NUL, or with several, or with CRLF lines");
	s.pem = PEM;
	s.pem_len = strlen(PEM);
	CHECK_STR(parse_reason(&s), "ok");
	static const char nuls[] = PEM "\0\0\0";
	s.pem = nuls;
	s.pem_len = sizeof(nuls);
	CHECK_STR(parse_reason(&s), "ok");
	s.pem = "-----BEGIN CERTIFICATE-----\r\nTUlJ\r\n-----END CERTIFICATE-----\r\n";
	s.pem_len = 0;
	CHECK_STR(parse_reason(&s), "ok");
}

static void test_padding_and_size(void)
{
	struct spec s;
	struct tdx_quote q;
	struct ee_error err;
	size_t len;
	test_case("padding: zeros after the signature data are counted, not refused");
	s = v5(2);
	s.padding = 70;
	uint8_t *b = build(&s, &len);
	CHECK(tdx_quote_parse(b, len, &q, &err) == 0, "%s", err.reason);
	CHECK_INT(q.padding_len, 70);
	test_case("padding: one non-zero byte anywhere in it is refused");
	for (size_t i = len - 70; i < len; i++) {
		b[i] = 0x20;
		CHECK(tdx_quote_parse(b, len, &q, &err) != 0);
		CHECK_STR(err.reason, "quote_trailing_bytes");
		b[i] = 0;
	}
	free(b);

	test_case("size: exactly TDX_QUOTE_MAX_BYTES parses, one more does not");
	s = v4();
	size_t base_len;
	free(build(&s, &base_len));
	size_t pem_len = strlen(PEM) + 1 + (TDX_QUOTE_MAX_BYTES - base_len);
	char *pem = malloc(pem_len);
	if (!pem)
		return;
	memset(pem, '\n', pem_len);
	memcpy(pem, PEM, strlen(PEM));
	pem[pem_len - 1] = '\0';
	s.pem = pem;
	s.pem_len = pem_len;
	b = build(&s, &len);
	CHECK_INT(len, TDX_QUOTE_MAX_BYTES);
	CHECK(tdx_quote_parse(b, len, &q, &err) == 0, "%s", err.reason);
	free(b);
	s.padding = 1; /* the same quote and one zero byte after it */
	b = build(&s, &len);
	CHECK_INT(len, TDX_QUOTE_MAX_BYTES + 1);
	CHECK(tdx_quote_parse(b, len, &q, &err) != 0);
	CHECK_STR(err.reason, "quote_too_large");
	free(b);
	free(pem);
}

static void test_truncations(void)
{
	static const uint16_t types[] = {0, 2, 3};
	for (int t = 0; t < 3; t++) {
		struct spec s = types[t] ? v5(types[t]) : v4();
		size_t len;
		uint8_t *full = build(&s, &len);
		test_case("truncate: every length of a %s quote fails with a 400 reason",
		          types[t] ? (types[t] == 3 ? "v5/1.5" : "v5/1.0") : "v4");
		int wrong = 0;
		for (size_t n = 0; n < len; n++) {
			uint8_t *copy = malloc(n ? n : 1);
			if (!copy)
				break;
			memcpy(copy, full, n);
			struct tdx_quote q;
			struct ee_error err;
			ee_error_clear(&err);
			if ((tdx_quote_parse(copy, n, &q, &err) == 0 || err.status != 400 || !err.reason[0]) &&
			    wrong++ < 5)
				test_fail(__FILE__, __LINE__, "length %zu: '%s'", n, err.reason);
			free(copy);
		}
		CHECK_INT(wrong, 0);
		free(full);
	}
}

int main(void)
{
	test_v4_layout();
	test_v5();
	test_header();
	test_certification_data();
	test_lengths();
	test_pem_text();
	test_padding_and_size();
	test_truncations();
	return test_finish();
}
