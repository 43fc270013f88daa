/* dcap_tcb.c - TCB info and QE identity: parsing and level matching; see dcap_tcb.h. */
#include "dcap_tcb.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "jsonutil.h"
#include "timeutil.h"
#include "util.h"

static const struct {
	const char *name;
	unsigned flags;
} statuses[] = {
	{"UpToDate", 0},
	{"SWHardeningNeeded", DCAP_TCB_SW_HARDENING_NEEDED},
	{"ConfigurationNeeded", DCAP_TCB_CONFIGURATION_NEEDED},
	{"ConfigurationAndSWHardeningNeeded",
	 DCAP_TCB_CONFIGURATION_NEEDED | DCAP_TCB_SW_HARDENING_NEEDED},
	{"OutOfDate", DCAP_TCB_OUT_OF_DATE},
	{"OutOfDateConfigurationNeeded", DCAP_TCB_OUT_OF_DATE | DCAP_TCB_CONFIGURATION_NEEDED},
	{"Revoked", DCAP_TCB_REVOKED},
};

const char *dcap_tcb_status_name(unsigned status)
{
	if (status & DCAP_TCB_REVOKED)
		return "Revoked";
	if (status & DCAP_TCB_OUT_OF_DATE)
		return status & DCAP_TCB_CONFIGURATION_NEEDED ? "OutOfDateConfigurationNeeded" : "OutOfDate";
	if (status & DCAP_TCB_CONFIGURATION_NEEDED)
		return status & DCAP_TCB_SW_HARDENING_NEEDED ? "ConfigurationAndSWHardeningNeeded"
		                                             : "ConfigurationNeeded";
	if (status & DCAP_TCB_SW_HARDENING_NEEDED)
		return "SWHardeningNeeded";
	return "UpToDate";
}

int dcap_tcb_status_parse(const char *name, unsigned *out)
{
	for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
		if (strcmp(name, statuses[i].name) == 0) {
			*out = statuses[i].flags;
			return 0;
		}
	}
	return -1;
}

/* Typed access to the JSON; each returns -1 when the field is absent or not what it must be. */

static struct json_object *field(struct json_object *obj, const char *key, enum json_type type)
{
	struct json_object *v = NULL;
	if (!obj || !json_object_object_get_ex(obj, key, &v) || !v || !json_object_is_type(v, type))
		return NULL;
	return v;
}

static int get_uint(struct json_object *obj, const char *key, uint32_t max, uint32_t *out)
{
	struct json_object *v = field(obj, key, json_type_int);
	if (!v)
		return -1;
	int64_t n = json_object_get_int64(v);
	if (n < 0 || (uint64_t)n > max)
		return -1;
	*out = (uint32_t)n;
	return 0;
}

static int get_string(struct json_object *obj, const char *key, const char **s, size_t *len)
{
	struct json_object *v = field(obj, key, json_type_string);
	if (!v)
		return -1;
	*s = json_object_get_string(v);
	*len = (size_t)json_object_get_string_len(v);
	return strlen(*s) == *len ? 0 : -1;
}

static int get_equal(struct json_object *obj, const char *key, const char *want)
{
	const char *s;
	size_t len;
	return get_string(obj, key, &s, &len) == 0 && strcmp(s, want) == 0 ? 0 : -1;
}

/* Exactly n bytes as 2n hex digits. */
static int get_hex(struct json_object *obj, const char *key, uint8_t *out, size_t n)
{
	const char *s;
	size_t len, got;
	if (get_string(obj, key, &s, &len) != 0 || len != 2 * n)
		return -1;
	return util_hex_decode(s, len, out, n, &got) == 0 && got == n ? 0 : -1;
}

static int get_time(struct json_object *obj, const char *key, int64_t *out)
{
	const char *s;
	size_t len;
	int64_t ms;
	if (get_string(obj, key, &s, &len) != 0 || time_parse_rfc3339(s, len, &ms) != 0)
		return -1;
	/* Intel writes whole seconds; round down any fraction, before 1970 too. */
	*out = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
	return 0;
}

static int get_status(struct json_object *obj, unsigned *out)
{
	const char *s;
	size_t len;
	return get_string(obj, "tcbStatus", &s, &len) == 0 ? dcap_tcb_status_parse(s, out) : -1;
}

static bool advisory_id_ok(const char *s, size_t len)
{
	if (len == 0 || len >= DCAP_ADVISORY_ID_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_' || c == '.'))
			return false;
	}
	return true;
}

/* The optional "advisoryIDs" array of a level. */
static int get_advisories(struct json_object *level, struct dcap_advisories *out)
{
	struct json_object *v = NULL;
	out->count = 0;
	out->ids = NULL;
	if (!json_object_object_get_ex(level, "advisoryIDs", &v))
		return 0;
	if (!v || !json_object_is_type(v, json_type_array))
		return -1;
	size_t n = json_object_array_length(v);
	if (n > DCAP_LEVEL_ADVISORIES_MAX)
		return -1;
	if (n == 0)
		return 0;
	out->ids = calloc(n, sizeof(*out->ids));
	if (!out->ids)
		return -1;
	for (size_t i = 0; i < n; i++) {
		struct json_object *id = json_object_array_get_idx(v, i);
		if (!id || !json_object_is_type(id, json_type_string))
			return -1;
		const char *s = json_object_get_string(id);
		size_t len = (size_t)json_object_get_string_len(id);
		if (strlen(s) != len || !advisory_id_ok(s, len))
			return -1;
		memcpy(out->ids[i], s, len + 1);
		out->count++;
	}
	return 0;
}

/* A JSON array of 1..max elements. */
static struct json_object *get_array(struct json_object *obj, const char *key, size_t max,
                                     size_t *n)
{
	struct json_object *v = field(obj, key, json_type_array);
	if (!v)
		return NULL;
	*n = json_object_array_length(v);
	return *n >= 1 && *n <= max ? v : NULL;
}

/* "sgxtcbcomponents" / "tdxtcbcomponents": exactly 16 objects with an "svn" of 0..255. */
static int get_components(struct json_object *tcb, const char *key, uint8_t out[16])
{
	size_t n;
	struct json_object *arr = get_array(tcb, key, 16, &n);
	if (!arr || n != 16)
		return -1;
	for (size_t i = 0; i < 16; i++) {
		struct json_object *c = json_object_array_get_idx(arr, i);
		uint32_t svn;
		if (!c || !json_object_is_type(c, json_type_object) || get_uint(c, "svn", 255, &svn) != 0)
			return -1;
		out[i] = (uint8_t)svn;
	}
	return 0;
}

static int parse_platform_level(struct json_object *lv, struct dcap_platform_level *out)
{
	struct json_object *tcb = field(lv, "tcb", json_type_object);
	uint32_t pce_svn;
	if (!tcb || get_components(tcb, "sgxtcbcomponents", out->sgx_svn) != 0 ||
	    get_uint(tcb, "pcesvn", 65535, &pce_svn) != 0 ||
	    get_components(tcb, "tdxtcbcomponents", out->tdx_svn) != 0 ||
	    get_time(lv, "tcbDate", &out->tcb_date) != 0 || get_status(lv, &out->status) != 0)
		return -1;
	out->pce_svn = (uint16_t)pce_svn;
	return get_advisories(lv, &out->advisories);
}

static int parse_module_identity(struct json_object *m, struct dcap_module_identity *out)
{
	const char *id;
	size_t id_len, out_len;
	uint8_t version;
	if (!json_object_is_type(m, json_type_object) || get_string(m, "id", &id, &id_len) != 0 ||
	    id_len != 6 || memcmp(id, "TDX_", 4) != 0 ||
	    util_hex_decode(id + 4, 2, &version, 1, &out_len) != 0)
		return -1;
	snprintf(out->id, sizeof(out->id), "TDX_%02X", version);
	if (get_hex(m, "mrsigner", out->mr_signer, 48) != 0 ||
	    get_hex(m, "attributes", out->attributes, 8) != 0 ||
	    get_hex(m, "attributesMask", out->attributes_mask, 8) != 0)
		return -1;
	size_t n;
	struct json_object *levels = get_array(m, "tcbLevels", DCAP_TCB_LEVELS_MAX, &n);
	if (!levels)
		return -1;
	out->levels = calloc(n, sizeof(*out->levels));
	if (!out->levels)
		return -1;
	for (size_t i = 0; i < n; i++) {
		struct json_object *lv = json_object_array_get_idx(levels, i);
		struct dcap_module_level *l = &out->levels[i];
		struct json_object *tcb = field(lv, "tcb", json_type_object);
		uint32_t isv_svn;
		out->level_count++;
		if (!tcb || get_uint(tcb, "isvsvn", 255, &isv_svn) != 0 ||
		    get_time(lv, "tcbDate", &l->tcb_date) != 0 || get_status(lv, &l->status) != 0 ||
		    get_advisories(lv, &l->advisories) != 0)
			return -1;
		l->isv_svn = (uint8_t)isv_svn;
	}
	return 0;
}

void dcap_tcb_info_free(struct dcap_tcb_info *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->identity_count; i++) {
		for (size_t j = 0; j < t->identities[i].level_count; j++)
			free(t->identities[i].levels[j].advisories.ids);
		free(t->identities[i].levels);
	}
	free(t->identities);
	for (size_t i = 0; i < t->level_count; i++)
		free(t->levels[i].advisories.ids);
	free(t->levels);
	memset(t, 0, sizeof(*t));
}

static int tcb_info_fill(struct json_object *root, struct dcap_tcb_info *out)
{
	uint32_t version, tcb_type;
	if (!json_object_is_type(root, json_type_object) || get_equal(root, "id", "TDX") != 0 ||
	    get_uint(root, "version", 1000, &version) != 0 || version != 3 ||
	    get_time(root, "issueDate", &out->issue_date) != 0 ||
	    get_time(root, "nextUpdate", &out->next_update) != 0 ||
	    out->next_update <= out->issue_date || get_hex(root, "fmspc", out->fmspc, 6) != 0 ||
	    get_hex(root, "pceId", out->pce_id, 2) != 0 ||
	    get_uint(root, "tcbType", 1000, &tcb_type) != 0 || tcb_type != 0 ||
	    get_uint(root, "tcbEvaluationDataNumber", UINT32_MAX, &out->tcb_evaluation_data_number) != 0)
		return -1;
	struct json_object *module = field(root, "tdxModule", json_type_object);
	if (!module || get_hex(module, "mrsigner", out->module_mr_signer, 48) != 0 ||
	    get_hex(module, "attributes", out->module_attributes, 8) != 0 ||
	    get_hex(module, "attributesMask", out->module_attributes_mask, 8) != 0)
		return -1;

	struct json_object *ids = NULL;
	if (json_object_object_get_ex(root, "tdxModuleIdentities", &ids)) {
		size_t n;
		ids = get_array(root, "tdxModuleIdentities", DCAP_MODULE_IDENTITIES_MAX, &n);
		if (!ids)
			return -1;
		out->identities = calloc(n, sizeof(*out->identities));
		if (!out->identities)
			return -1;
		for (size_t i = 0; i < n; i++) {
			out->identity_count++;
			if (parse_module_identity(json_object_array_get_idx(ids, i), &out->identities[i]) != 0)
				return -1;
			for (size_t j = 0; j < i; j++) {
				if (strcmp(out->identities[j].id, out->identities[i].id) == 0)
					return -1; /* two answers for one module version */
			}
		}
	}

	size_t n;
	struct json_object *levels = get_array(root, "tcbLevels", DCAP_TCB_LEVELS_MAX, &n);
	if (!levels)
		return -1;
	out->levels = calloc(n, sizeof(*out->levels));
	if (!out->levels)
		return -1;
	for (size_t i = 0; i < n; i++) {
		struct json_object *lv = json_object_array_get_idx(levels, i);
		out->level_count++;
		if (!json_object_is_type(lv, json_type_object) ||
		    parse_platform_level(lv, &out->levels[i]) != 0)
			return -1;
	}
	return 0;
}

int dcap_tcb_info_parse(const char *text, size_t len, struct dcap_tcb_info *out,
                        struct ee_error *err)
{
	memset(out, 0, sizeof(*out));
	if (!text || len > DCAP_TCB_JSON_MAX)
		return ee_fail(err, 503, "tcb_info_invalid");
	struct json_object *root = json_parse_value(text, len);
	int rc = root ? tcb_info_fill(root, out) : -1;
	json_object_put(root);
	if (rc != 0) {
		dcap_tcb_info_free(out);
		return ee_fail(err, 503, "tcb_info_invalid");
	}
	return 0;
}

void dcap_qe_identity_free(struct dcap_qe_identity *q)
{
	if (!q)
		return;
	for (size_t i = 0; i < q->level_count; i++)
		free(q->levels[i].advisories.ids);
	free(q->levels);
	memset(q, 0, sizeof(*q));
}

static int qe_identity_fill(struct json_object *root, struct dcap_qe_identity *out)
{
	uint32_t version, prod_id;
	if (!json_object_is_type(root, json_type_object) || get_equal(root, "id", "TD_QE") != 0 ||
	    get_uint(root, "version", 1000, &version) != 0 || version != 2 ||
	    get_time(root, "issueDate", &out->issue_date) != 0 ||
	    get_time(root, "nextUpdate", &out->next_update) != 0 ||
	    out->next_update <= out->issue_date ||
	    get_uint(root, "tcbEvaluationDataNumber", UINT32_MAX, &out->tcb_evaluation_data_number) != 0 ||
	    get_hex(root, "miscselect", out->miscselect, 4) != 0 ||
	    get_hex(root, "miscselectMask", out->miscselect_mask, 4) != 0 ||
	    get_hex(root, "attributes", out->attributes, 16) != 0 ||
	    get_hex(root, "attributesMask", out->attributes_mask, 16) != 0 ||
	    get_hex(root, "mrsigner", out->mr_signer, 32) != 0 ||
	    get_uint(root, "isvprodid", 65535, &prod_id) != 0)
		return -1;
	out->isv_prod_id = (uint16_t)prod_id;
	size_t n;
	struct json_object *levels = get_array(root, "tcbLevels", DCAP_TCB_LEVELS_MAX, &n);
	if (!levels)
		return -1;
	out->levels = calloc(n, sizeof(*out->levels));
	if (!out->levels)
		return -1;
	for (size_t i = 0; i < n; i++) {
		struct json_object *lv = json_object_array_get_idx(levels, i);
		struct dcap_qe_level *l = &out->levels[i];
		uint32_t isv_svn;
		out->level_count++;
		struct json_object *tcb = field(lv, "tcb", json_type_object);
		if (!tcb || get_uint(tcb, "isvsvn", 65535, &isv_svn) != 0 ||
		    get_time(lv, "tcbDate", &l->tcb_date) != 0 || get_status(lv, &l->status) != 0 ||
		    get_advisories(lv, &l->advisories) != 0)
			return -1;
		l->isv_svn = (uint16_t)isv_svn;
	}
	return 0;
}

int dcap_qe_identity_parse(const char *text, size_t len, struct dcap_qe_identity *out,
                           struct ee_error *err)
{
	memset(out, 0, sizeof(*out));
	if (!text || len > DCAP_TCB_JSON_MAX)
		return ee_fail(err, 503, "qe_identity_invalid");
	struct json_object *root = json_parse_value(text, len);
	int rc = root ? qe_identity_fill(root, out) : -1;
	json_object_put(root);
	if (rc != 0) {
		dcap_qe_identity_free(out);
		return ee_fail(err, 503, "qe_identity_invalid");
	}
	return 0;
}

/* (value & mask) == want, byte by byte. */
static bool masked_equal(const uint8_t *value, const uint8_t *mask, const uint8_t *want, size_t n)
{
	uint8_t diff = 0;
	for (size_t i = 0; i < n; i++)
		diff |= (uint8_t)((value[i] & mask[i]) ^ want[i]);
	return diff == 0;
}

bool dcap_qe_identity_matches(const struct dcap_qe_identity *qi, const uint8_t mr_signer[32],
                              uint16_t isv_prod_id, const uint8_t miscselect[4],
                              const uint8_t attributes[16])
{
	return memcmp(qi->mr_signer, mr_signer, 32) == 0 && qi->isv_prod_id == isv_prod_id &&
	       masked_equal(miscselect, qi->miscselect_mask, qi->miscselect, 4) &&
	       masked_equal(attributes, qi->attributes_mask, qi->attributes, 16);
}

const struct dcap_qe_level *dcap_qe_identity_level(const struct dcap_qe_identity *qi,
                                                   uint16_t isv_svn)
{
	for (size_t i = 0; i < qi->level_count; i++) {
		if (qi->levels[i].isv_svn <= isv_svn)
			return &qi->levels[i];
	}
	return NULL;
}

/* Each have[i] >= need[i]. */
static bool svns_meet(const uint8_t have[16], const uint8_t need[16])
{
	for (int i = 0; i < 16; i++) {
		if (have[i] < need[i])
			return false;
	}
	return true;
}

const struct dcap_platform_level *dcap_tcb_platform_level(const struct dcap_tcb_info *t,
                                                          const uint8_t sgx_svn[16],
                                                          uint16_t pce_svn,
                                                          const uint8_t tee_tcb_svn[16])
{
	bool sgx_found = false;
	for (size_t i = 0; i < t->level_count; i++) {
		const struct dcap_platform_level *l = &t->levels[i];
		if (!svns_meet(sgx_svn, l->sgx_svn) || pce_svn < l->pce_svn)
			continue;
		if (!sgx_found && (l->status & DCAP_TCB_REVOKED))
			return l;
		sgx_found = true;
		if (svns_meet(tee_tcb_svn, l->tdx_svn))
			return l;
	}
	return NULL;
}

int dcap_tcb_module_check(const struct dcap_tcb_info *t, const uint8_t tee_tcb_svn[16],
                          const uint8_t mr_signer_seam[48], const uint8_t seam_attributes[8],
                          const struct dcap_module_level **level, const char **reason)
{
	*level = NULL;
	*reason = NULL;
	if (tee_tcb_svn[1] == 0 || t->identity_count == 0) {
		if (memcmp(mr_signer_seam, t->module_mr_signer, 48) != 0 ||
		    !masked_equal(seam_attributes, t->module_attributes_mask, t->module_attributes, 8)) {
			*reason = "tdx_module_mismatch";
			return -1;
		}
		return 0;
	}
	char id[8];
	snprintf(id, sizeof(id), "TDX_%02X", tee_tcb_svn[1]);
	const struct dcap_module_identity *m = NULL;
	for (size_t i = 0; i < t->identity_count && !m; i++) {
		if (strcmp(t->identities[i].id, id) == 0)
			m = &t->identities[i];
	}
	if (!m || memcmp(mr_signer_seam, m->mr_signer, 48) != 0 ||
	    !masked_equal(seam_attributes, m->attributes_mask, m->attributes, 8)) {
		*reason = "tdx_module_mismatch";
		return -1;
	}
	for (size_t i = 0; i < m->level_count; i++) {
		if (m->levels[i].isv_svn <= tee_tcb_svn[0]) {
			*level = &m->levels[i];
			return 0;
		}
	}
	*reason = "tdx_module_tcb_unknown";
	return -1;
}
