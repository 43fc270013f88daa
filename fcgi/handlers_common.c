/* handlers_common.c - responses, the database handle and field checks for handlers. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "jsonutil.h"
#include "log.h"
#include "timeutil.h"

/*
 * Handles SQLite could open only read-only (permissions, a read-only file
 * system).  The connections of one process share the file's WAL index, and
 * while one of them holds it read-only every handle opened beside it is
 * read-only too, even after the fault is fixed.  So a read-only handle is
 * held by one thread at a time, only for its request, and closed at the end
 * of it (api_release_db): the first open after the fault is fixed, and so
 * every one after it, is writable again, with nothing restarted.
 */
static pthread_mutex_t readonly_handle = PTHREAD_MUTEX_INITIALIZER;

struct ee_db *api_db(struct api_context *ctx)
{
	if (ctx->db)
		return ctx->db;
	/* Not open yet, unreachable at start, or read-only at the last request:
	 * open it now, so recovery needs no restart. */
	struct ee_db_options opts = {ctx->cfg->db_busy_timeout_ms, ctx->cfg->db_synchronous, true};
	struct ee_error err;
	pthread_mutex_lock(&readonly_handle);
	if (db_open(ctx->cfg->db_path, &opts, &ctx->db, &err) != 0) {
		pthread_mutex_unlock(&readonly_handle);
		api_respond_ee_error(ctx, &err);
		return NULL;
	}
	if (db_read_only(ctx->db))
		ctx->holds_readonly_handle = true;
	else
		pthread_mutex_unlock(&readonly_handle);
	return ctx->db;
}

void api_release_db(struct api_context *ctx)
{
	if (!ctx->holds_readonly_handle)
		return;
	db_close(ctx->db);
	ctx->db = NULL;
	ctx->holds_readonly_handle = false;
	pthread_mutex_unlock(&readonly_handle);
}

void api_add_header(struct api_context *ctx, const char *name, const char *value)
{
	buf_printf(&ctx->res->headers, "%s: %s\r\n", name, value);
}

void api_respond_text(struct api_context *ctx, int status, const char *content_type,
                      const char *body, size_t len)
{
	ctx->res->status = status;
	ctx->res->content_type = content_type;
	buf_reset(&ctx->res->body);
	buf_append(&ctx->res->body, body, len);
}

void api_respond_json(struct api_context *ctx, int status, struct json_object *payload)
{
	size_t len;
	const char *text = json_text(payload, &len);
	api_respond_text(ctx, status, "application/json", text, len);
}

struct json_writer *api_begin_json(struct api_context *ctx, int status, struct json_writer *w)
{
	ctx->res->status = status;
	ctx->res->content_type = "application/json";
	buf_reset(&ctx->res->body);
	json_writer_init(w, &ctx->res->body);
	return w;
}

void api_respond_error(struct api_context *ctx, int status, const char *reason)
{
	if (status == 503)
		api_add_header(ctx, "Retry-After", "1");
	struct json_writer w;
	json_write_object_begin(api_begin_json(ctx, status, &w), NULL);
	json_write_string(&w, "error", reason);
	json_write_object_end(&w);
}

void api_respond_ee_error(struct api_context *ctx, const struct ee_error *err)
{
	api_respond_error(ctx, err->status ? err->status : 500,
	                  err->reason[0] ? err->reason : "internal_error");
}

int api_field_identifier(struct api_context *ctx, const char *key,
                         bool (*valid)(const char *, size_t), const char *missing_reason,
                         const char *invalid_reason, const char **out, struct ee_error *err)
{
	size_t len;
	switch (json_get_string(ctx->json, key, out, &len)) {
	case JSON_FIELD_ABSENT:
	case JSON_FIELD_NULL:
		return ee_fail(err, 400, missing_reason);
	case JSON_FIELD_WRONG_TYPE:
		return ee_fail(err, 400, invalid_reason);
	case JSON_FIELD_OK:
		break;
	}
	/* The original treated "" like a missing field. */
	if (len == 0)
		return ee_fail(err, 400, missing_reason);
	if (!valid(*out, len))
		return ee_fail(err, 400, invalid_reason);
	return 0;
}

int api_field_time(struct api_context *ctx, const char *key, bool required,
                   const char *missing_reason, bool *present, int64_t *out, struct ee_error *err)
{
	const char *text;
	size_t len;
	*present = false;
	switch (json_get_string(ctx->json, key, &text, &len)) {
	case JSON_FIELD_ABSENT:
	case JSON_FIELD_NULL:
		return required ? ee_fail(err, 400, missing_reason) : 0;
	case JSON_FIELD_WRONG_TYPE:
		return ee_fail(err, 400, "invalid_period");
	case JSON_FIELD_OK:
		break;
	}
	if (len == 0)
		return required ? ee_fail(err, 400, missing_reason) : 0;
	if (len > 64 || time_parse_rfc3339(text, len, out) != 0)
		return ee_fail(err, 400, "invalid_period");
	*present = true;
	return 0;
}

int api_field_text(struct api_context *ctx, const char *key, size_t max, const char *invalid_reason,
                   const char **out, struct ee_error *err)
{
	size_t len;
	switch (json_get_string(ctx->json, key, out, &len)) {
	case JSON_FIELD_ABSENT:
	case JSON_FIELD_NULL:
		*out = NULL;
		return 0;
	case JSON_FIELD_WRONG_TYPE:
		return ee_fail(err, 400, invalid_reason);
	case JSON_FIELD_OK:
		break;
	}
	if (len > max)
		return ee_fail(err, 400, invalid_reason);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)(*out)[i];
		if (c < 0x20 || c == 0x7f)
			return ee_fail(err, 400, invalid_reason);
	}
	if (len == 0)
		*out = NULL;
	return 0;
}

long api_query_param(const char *query, const char *name, char *out, size_t out_size)
{
	size_t nlen = strlen(name);
	const char *p = query;
	while (p && *p) {
		const char *end = strchr(p, '&');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (len > nlen && strncmp(p, name, nlen) == 0 && p[nlen] == '=') {
			size_t n;
			if (util_percent_decode(p + nlen + 1, len - nlen - 1, true, out, out_size, &n) != 0)
				return API_QUERY_INVALID; /* also when it does not fit: no valid value is that long */
			return (long)n;
		}
		p = end ? end + 1 : NULL;
	}
	return API_QUERY_ABSENT;
}
