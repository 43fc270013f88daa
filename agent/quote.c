/*
 * quote.c - the agent's attestation answer: measurements, REPORTDATA and a
 * quote that carries it (DESIGN.md section 5, docs/PROTOCOL.md).
 *
 * The measurements are the quote's own registers (MRTD, RTMR0-3, as the
 * control plane compares them with the quote), "sealed", and the
 * original's "vm_image_id" when the machine has one.  The agent cannot read
 * its registers except through a quote, so it learns them from the quotes
 * it makes: the first answer costs one extra quote, and an RTMR extended
 * since the last answer is noticed in the new quote and answered again.
 */
#include "agent.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "attest.h"
#include "base64.h"
#include "tdx_quote.h"
#include "util.h"

#define REGISTER_HEX 97 /* 48 bytes as hex, and a NUL */
#define LEARN_ATTEMPTS 3

struct quote_source {
	enum quote_source_kind kind;
	char *tsm_dir;
	struct quote_dev *dev;
	bool sealed;
	char *vm_image_id;
	bool have_registers;
	char registers[5][REGISTER_HEX]; /* mrtd, rtmr0..rtmr3 */
};

static const char *const register_names[5] = {"mrtd", "rtmr0", "rtmr1", "rtmr2", "rtmr3"};

int quote_source_open(const struct agent_config *cfg, struct quote_source **out,
                      struct ee_error *err)
{
	struct quote_source *qs = calloc(1, sizeof(*qs));
	if (!qs)
		return ee_fail(err, 500, "out_of_memory");
	qs->kind = cfg->quote_source;
	qs->sealed = cfg->sealed;
	qs->tsm_dir = strdup(cfg->tsm_dir);
	qs->vm_image_id = cfg->vm_image_id ? strdup(cfg->vm_image_id) : NULL;
	if (!qs->tsm_dir || (cfg->vm_image_id && !qs->vm_image_id)) {
		quote_source_close(qs);
		return ee_fail(err, 500, "out_of_memory");
	}
	if (qs->kind == QUOTE_SOURCE_DEV &&
	    quote_dev_open(cfg->dev_quote_dir, &qs->dev, err) != 0) {
		quote_source_close(qs);
		return -1;
	}
	/* configfs-tsm is there when its report directory is. */
	struct stat st;
	if (qs->kind == QUOTE_SOURCE_TSM && (stat(qs->tsm_dir, &st) != 0 || !S_ISDIR(st.st_mode))) {
		quote_source_close(qs);
		return ee_fail_detail(err, 503, "tsm_unavailable", "no report directory");
	}
	*out = qs;
	return 0;
}

void quote_source_close(struct quote_source *qs)
{
	if (!qs)
		return;
	quote_dev_close(qs->dev);
	free(qs->tsm_dir);
	free(qs->vm_image_id);
	free(qs);
}

const char *quote_source_name(const struct quote_source *qs)
{
	return qs->kind == QUOTE_SOURCE_DEV ? "dev" : "tsm";
}

int quote_source_get(struct quote_source *qs, const unsigned char report_data[64],
                     unsigned char **quote, size_t *quote_len, struct ee_error *err)
{
	if (qs->kind == QUOTE_SOURCE_DEV)
		return quote_dev_get(qs->dev, report_data, quote, quote_len, err);
	return quote_tsm_get(qs->tsm_dir, report_data, quote, quote_len, err);
}

/* Reads the registers of a quote; 1 when they differ from the ones known. */
static int take_registers(struct quote_source *qs, const unsigned char *quote, size_t len,
                          struct ee_error *err)
{
	struct tdx_quote q;
	struct ee_error perr;
	if (tdx_quote_parse(quote, len, &q, &perr) != 0)
		return ee_fail_detail(err, 502, "quote_unreadable", perr.reason);
	const uint8_t *regs[5] = {q.td.mr_td, q.td.rtmr[0], q.td.rtmr[1], q.td.rtmr[2],
	                          q.td.rtmr[3]};
	int changed = !qs->have_registers;
	for (int i = 0; i < 5; i++) {
		char hex[REGISTER_HEX];
		util_hex_encode(regs[i], 48, hex);
		if (strcmp(hex, qs->registers[i]) != 0) {
			memcpy(qs->registers[i], hex, sizeof(hex));
			changed = 1;
		}
	}
	qs->have_registers = true;
	return changed;
}

static struct json_object *build_measurements(const struct quote_source *qs)
{
	struct json_object *m = json_object_new_object();
	if (!m)
		return NULL;
	for (int i = 0; i < 5; i++)
		json_object_object_add(m, register_names[i], json_object_new_string(qs->registers[i]));
	json_object_object_add(m, "sealed", json_object_new_boolean(qs->sealed));
	if (qs->vm_image_id)
		json_object_object_add(m, "vm_image_id", json_object_new_string(qs->vm_image_id));
	return m;
}

/* Makes a throwaway quote to learn the registers, if they are not known yet. */
static int learn_registers(struct quote_source *qs, struct ee_error *err)
{
	if (qs->have_registers)
		return 0;
	unsigned char zero[64] = {0};
	unsigned char *quote = NULL;
	size_t len = 0;
	if (quote_source_get(qs, zero, &quote, &len, err) != 0)
		return -1;
	int rc = take_registers(qs, quote, len, err);
	free(quote);
	return rc < 0 ? -1 : 0;
}

struct json_object *quote_measurements(struct quote_source *qs, struct ee_error *err)
{
	if (learn_registers(qs, err) != 0)
		return NULL;
	struct json_object *m = build_measurements(qs);
	if (!m)
		ee_fail(err, 500, "out_of_memory");
	return m;
}

static char *response_text(const char *nonce, const unsigned char *quote, size_t quote_len,
                           const unsigned char report_data[64], struct json_object *measurements)
{
	char *b64 = malloc(base64_encoded_len(quote_len) + 1);
	char rd_hex[129];
	struct json_object *msg = json_object_new_object();
	char *text = NULL;
	if (b64 && msg) {
		base64_encode(quote, quote_len, b64);
		util_hex_encode(report_data, 64, rd_hex);
		json_object_object_add(msg, "type", json_object_new_string("attest_response"));
		json_object_object_add(msg, "nonce", json_object_new_string(nonce));
		json_object_object_add(msg, "quote", json_object_new_string(b64));
		json_object_object_add(msg, "report_data", json_object_new_string(rd_hex));
		json_object_object_add(msg, "measurements", json_object_get(measurements));
		const char *s = json_object_to_json_string_ext(
			msg, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
		text = s ? strdup(s) : NULL;
	}
	free(b64);
	json_object_put(msg);
	return text;
}

char *quote_attest_response(struct quote_source *qs, const char *nonce, struct ee_error *err)
{
	if (learn_registers(qs, err) != 0)
		return NULL;
	for (int attempt = 0; attempt < LEARN_ATTEMPTS; attempt++) {
		struct json_object *measurements = build_measurements(qs);
		unsigned char report_data[64];
		if (!measurements) {
			ee_fail(err, 500, "out_of_memory");
			return NULL;
		}
		if (attest_expected_report_data(measurements, nonce, report_data, err) != 0) {
			json_object_put(measurements);
			return NULL;
		}
		unsigned char *quote = NULL;
		size_t len = 0;
		if (quote_source_get(qs, report_data, &quote, &len, err) != 0) {
			json_object_put(measurements);
			return NULL;
		}
		int changed = take_registers(qs, quote, len, err);
		char *text = NULL;
		if (changed == 0) {
			text = response_text(nonce, quote, len, report_data, measurements);
			if (!text)
				ee_fail(err, 500, "out_of_memory");
		}
		free(quote);
		json_object_put(measurements);
		if (changed <= 0)
			return text;
		/* The registers moved under us: bind the new ones. */
	}
	ee_fail(err, 503, "registers_unstable");
	return NULL;
}
