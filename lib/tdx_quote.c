/* tdx_quote.c - the TDX quote parser; see tdx_quote.h and shared/DCAP.md. */
#include "tdx_quote.h"

#include <string.h>

/*
 * A reader over the quote: take() hands out the next n bytes or fails,
 * so no field is read before its length is known to be there.
 */
struct reader {
	const uint8_t *p;
	size_t left;
};

static const uint8_t *take(struct reader *r, size_t n)
{
	if (n > r->left)
		return NULL;
	const uint8_t *at = r->p;
	r->p += n;
	r->left -= n;
	return at;
}

static uint16_t le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void body_fields(const uint8_t *b, uint16_t body_type, struct tdx_td_report *td)
{
	td->tee_tcb_svn = b + 0;
	td->mr_seam = b + 16;
	td->mr_signer_seam = b + 64;
	td->seam_attributes = b + 112;
	td->td_attributes = b + 120;
	td->xfam = b + 128;
	td->mr_td = b + 136;
	td->mr_config_id = b + 184;
	td->mr_owner = b + 232;
	td->mr_owner_config = b + 280;
	for (int i = 0; i < 4; i++)
		td->rtmr[i] = b + 328 + 48 * i;
	td->report_data = b + 520;
	if (body_type == TDX_BODY_TYPE_TD15) {
		td->tee_tcb_svn2 = b + 584;
		td->mr_service_td = b + 600;
	}
}

static void qe_report_fields(const uint8_t *r, struct tdx_qe_report *qe)
{
	qe->raw = r;
	qe->cpu_svn = r + 0;
	qe->misc_select = r + 16;
	qe->attributes = r + 48;
	qe->mr_enclave = r + 64;
	qe->mr_signer = r + 128;
	qe->isv_prod_id = le16(r + 256);
	qe->isv_svn = le16(r + 258);
	qe->report_data = r + 320;
}

/*
 * The PCK chain must be text that holds a PEM certificate.  Quote
 * generators end it with NULs; inside it, a NUL or another control byte
 * (other than whitespace) means it is not what it claims to be.
 */
static int pem_text_ok(const char *pem, size_t len)
{
	while (len > 0 && pem[len - 1] == '\0')
		len--;
	static const char begin[] = "-----BEGIN CERTIFICATE-----";
	if (len < sizeof(begin) - 1)
		return -1;
	bool found = false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)pem[i];
		if ((c < 0x20 && c != '\n' && c != '\r' && c != '\t') || c >= 0x7f)
			return -1;
		if (!found && c == '-' && len - i >= sizeof(begin) - 1 &&
		    memcmp(pem + i, begin, sizeof(begin) - 1) == 0)
			found = true;
	}
	return found ? 0 : -1;
}

/* Why the first bytes are not a TDX quote we support, judging only those present. */
static const char *header_kind(const uint8_t *p, size_t len)
{
	if (len >= 8 && le32(p + 4) != TDX_TEE_TYPE_TDX)
		return "not_a_tdx_quote";
	if (len >= 2 && le16(p) != 4 && le16(p) != 5)
		return "unsupported_quote_version";
	if (len >= 4 && le16(p + 2) != TDX_ATTESTATION_KEY_ECDSA_P256)
		return "unsupported_attestation_key_type";
	return NULL;
}

static int fail(struct tdx_quote *out, struct ee_error *err, const char *reason)
{
	memset(out, 0, sizeof(*out));
	return ee_fail(err, 400, reason);
}

int tdx_quote_parse(const void *data, size_t len, struct tdx_quote *out, struct ee_error *err)
{
	memset(out, 0, sizeof(*out));
	if (len > TDX_QUOTE_MAX_BYTES)
		return fail(out, err, "quote_too_large");
	if (!data && len)
		return fail(out, err, "quote_truncated");
	struct reader r = {data, len};
	out->data = data;
	out->len = len;

	/*
	 * The header's first 8 bytes say what kind of quote this is: judge them
	 * as soon as they are there, the TEE type first, so that an SGX quote
	 * (version 3) is called what it is.
	 */
	const char *kind = header_kind(data, len);
	if (kind)
		return fail(out, err, kind);
	const uint8_t *h = take(&r, TDX_QUOTE_HEADER_LEN);
	if (!h)
		return fail(out, err, "quote_truncated");
	out->header = h;
	out->version = le16(h);
	out->attestation_key_type = le16(h + 2);
	out->tee_type = le32(h + 4);
	out->qe_svn = le16(h + 8);
	out->pce_svn = le16(h + 10);
	out->qe_vendor_id = h + 12;
	out->user_data = h + 28;
	uint16_t version = out->version;

	uint16_t body_type = TDX_BODY_TYPE_TD10;
	size_t body_len = TDX_TD10_BODY_LEN;
	if (version == 5) {
		const uint8_t *d = take(&r, TDX_QUOTE_BODY_DESCRIPTOR_LEN);
		if (!d)
			return fail(out, err, "quote_truncated");
		body_type = le16(d);
		uint32_t size = le32(d + 2);
		if (body_type == TDX_BODY_TYPE_TD10)
			body_len = TDX_TD10_BODY_LEN;
		else if (body_type == TDX_BODY_TYPE_TD15)
			body_len = TDX_TD15_BODY_LEN;
		else
			return fail(out, err, "unsupported_body_type");
		if (size != body_len)
			return fail(out, err, "body_size_mismatch");
	}
	const uint8_t *b = take(&r, body_len);
	if (!b)
		return fail(out, err, "quote_truncated");
	out->body_type = body_type;
	out->body = b;
	out->body_len = body_len;
	body_fields(b, body_type, &out->td);
	out->signed_data = data;
	out->signed_len = len - r.left;

	const uint8_t *sl = take(&r, 4);
	if (!sl)
		return fail(out, err, "quote_truncated");
	uint32_t sig_len = le32(sl);
	if (sig_len > r.left)
		return fail(out, err, "quote_truncated");
	out->signature_data_len = sig_len;
	/* From here on, read only inside the signature data; what follows is padding. */
	struct reader s = {r.p, sig_len};
	size_t padding = r.left - sig_len;
	const uint8_t *after = r.p + sig_len;

	out->signature = take(&s, TDX_SIGNATURE_LEN);
	out->attestation_key = take(&s, TDX_ATTESTATION_KEY_LEN);
	const uint8_t *ct = take(&s, 6);
	if (!out->signature || !out->attestation_key || !ct)
		return fail(out, err, "quote_truncated");
	uint16_t outer_type = le16(ct);
	uint32_t outer_len = le32(ct + 2);
	if (outer_type != TDX_CERT_DATA_QE_REPORT)
		return fail(out, err, "unsupported_certification_data");
	if (outer_len > s.left)
		return fail(out, err, "quote_truncated");
	if (outer_len != s.left)
		return fail(out, err, "signature_data_size_mismatch");
	out->certification_data_len = outer_len;

	struct reader c = {s.p, outer_len};
	const uint8_t *qe = take(&c, TDX_QE_REPORT_LEN);
	out->qe_report_signature = take(&c, TDX_SIGNATURE_LEN);
	const uint8_t *al = take(&c, 2);
	if (!qe || !out->qe_report_signature || !al)
		return fail(out, err, "quote_truncated");
	qe_report_fields(qe, &out->qe_report);
	size_t auth_len = le16(al);
	out->qe_auth_data = take(&c, auth_len);
	if (!out->qe_auth_data)
		return fail(out, err, "quote_truncated");
	out->qe_auth_data_len = auth_len;
	const uint8_t *it = take(&c, 6);
	if (!it)
		return fail(out, err, "quote_truncated");
	uint16_t inner_type = le16(it);
	uint32_t inner_len = le32(it + 2);
	if (inner_type != TDX_CERT_DATA_PCK_CHAIN)
		return fail(out, err, "unsupported_certification_data");
	if (inner_len > c.left)
		return fail(out, err, "quote_truncated");
	if (inner_len != c.left)
		return fail(out, err, "certification_data_size_mismatch");
	const uint8_t *pem = take(&c, inner_len);
	if (pem_text_ok((const char *)pem, inner_len) != 0)
		return fail(out, err, "invalid_pck_chain");
	out->pck_chain_pem = (const char *)pem;
	out->pck_chain_pem_len = inner_len;

	for (size_t i = 0; i < padding; i++) {
		if (after[i] != 0)
			return fail(out, err, "quote_trailing_bytes");
	}
	out->padding_len = padding;
	return 0;
}

bool tdx_quote_is_debug(const struct tdx_quote *q)
{
	return q->td.td_attributes && (q->td.td_attributes[0] & 1) != 0;
}
