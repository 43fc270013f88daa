/*
 * status.c - the readiness listener, for a supervisor (systemd, a container
 * runtime, a load balancer's probe) to see whether the agent is serving.
 *
 *   GET /ready   200 when connected and attested, else 503; a JSON document
 *                says which state the agent is in and the last reason
 *   GET /health  200 while the process runs (liveness)
 *
 * It listens on EE_STATUS_ADDR (loopback by default) on the same event loop
 * as the tunnel, and says nothing secret: no tokens, no quotes.
 */
#include "agent.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libwebsockets.h>

#include "timeutil.h"

#define STATUS_BODY_MAX 2048

struct status_session {
	char body[STATUS_BODY_MAX];
	size_t len;
	bool refused; /* a method other than GET or HEAD: 405 after its body */
};

static void add_string(struct json_object *o, const char *key, const char *value)
{
	json_object_object_add(o, key, json_object_new_string(value ? value : ""));
}

char *agent_status_json(struct agent *a, bool *ready)
{
	*ready = a->wsi && a->state == AGENT_ATTESTED;
	struct json_object *o = json_object_new_object();
	if (!o)
		return NULL;
	char since[EE_RFC3339_MAX];
	time_format_rfc3339(a->state_since_ms, since);
	json_object_object_add(o, "ready", json_object_new_boolean(*ready));
	add_string(o, "state", agent_state_name(a->state));
	add_string(o, "since", since);
	json_object_object_add(o, "connected", json_object_new_boolean(a->state >= AGENT_REGISTERED));
	json_object_object_add(o, "attested", json_object_new_boolean(*ready));
	add_string(o, "last_reason", a->last_reason);
	add_string(o, "app_name", a->cfg->app_name);
	add_string(o, "agent_id", a->cfg->agent_id);
	add_string(o, "network", a->cfg->network);
	add_string(o, "quote_source", a->cfg->quote_source == QUOTE_SOURCE_DEV ? "dev" : "tsm");
	json_object_object_add(o, "quote_source_ready",
	                       json_object_new_boolean(attester_source_ready(a->attester)));
	json_object_object_add(o, "connects", json_object_new_int64((int64_t)a->connects));
	json_object_object_add(o, "attestations", json_object_new_int64((int64_t)a->attestations));
	json_object_object_add(o, "backend_busy",
	                       json_object_new_int(backend_pool_busy(a->pool)));
	const char *s =
		json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	char *text = s ? strdup(s) : NULL;
	json_object_put(o);
	return text;
}

static int answer(struct lws *wsi, struct status_session *ss, int status)
{
	unsigned char headers[LWS_PRE + 512];
	unsigned char *start = headers + LWS_PRE, *p = start, *end = headers + sizeof(headers) - 1;
	if (lws_add_http_common_headers(wsi, (unsigned int)status, "application/json", ss->len, &p,
	                                end) ||
	    lws_add_http_header_by_name(wsi, (const unsigned char *)"cache-control:",
	                                (const unsigned char *)"no-store", 8, &p, end) ||
	    lws_finalize_write_http_header(wsi, start, &p, end))
		return -1;
	lws_callback_on_writable(wsi);
	return 0;
}

static void set_body(struct status_session *ss, const char *text)
{
	ss->len = (size_t)snprintf(ss->body, sizeof(ss->body), "%s\n", text);
	if (ss->len >= sizeof(ss->body))
		ss->len = sizeof(ss->body) - 1;
}

static int callback_status(struct lws *wsi, enum lws_callback_reasons reason, void *user,
                           void *in, size_t len)
{
	struct status_session *ss = user;
	struct agent *a = lws_context_user(lws_get_context(wsi));
	(void)len;
	switch (reason) {
	case LWS_CALLBACK_HTTP: {
		const char *uri = in ? in : "";
		char method[8] = "";
		if (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) > 0)
			strcpy(method, "GET");
		else if (lws_hdr_total_length(wsi, WSI_TOKEN_HEAD_URI) > 0)
			strcpy(method, "HEAD");
		if (!method[0]) {
			set_body(ss, "{\"error\":\"method_not_allowed\"}");
			ss->refused = true;
			/* With a body, lws wants it read first: answered at BODY_COMPLETION. */
			char length[24] = "";
			if (lws_hdr_copy(wsi, length, sizeof(length), WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0 &&
			    strtoull(length, NULL, 10) > 0)
				return 0;
			return answer(wsi, ss, 405);
		}
		if (strcmp(uri, "/ready") == 0) {
			bool ready;
			char *text = agent_status_json(a, &ready);
			set_body(ss, text ? text : "{\"ready\":false}");
			free(text);
			return answer(wsi, ss, ready ? 200 : 503);
		}
		if (strcmp(uri, "/health") == 0) {
			set_body(ss, "{\"status\":\"ok\"}");
			return answer(wsi, ss, 200);
		}
		set_body(ss, "{\"error\":\"not_found\"}");
		return answer(wsi, ss, 404);
	}
	case LWS_CALLBACK_HTTP_BODY:
		return 0; /* nothing here takes a body */
	case LWS_CALLBACK_HTTP_BODY_COMPLETION:
		return ss->refused ? answer(wsi, ss, 405) : -1;
	case LWS_CALLBACK_HTTP_WRITEABLE: {
		unsigned char out[LWS_PRE + STATUS_BODY_MAX];
		memcpy(out + LWS_PRE, ss->body, ss->len);
		bool head = lws_hdr_total_length(wsi, WSI_TOKEN_HEAD_URI) > 0;
		if (!head && lws_write(wsi, out + LWS_PRE, ss->len, LWS_WRITE_HTTP_FINAL) != (int)ss->len)
			return -1;
		return lws_http_transaction_completed(wsi) ? -1 : 0;
	}
	default:
		return lws_callback_http_dummy(wsi, reason, user, in, len);
	}
}

static const struct lws_protocols status_protocols[] = {
	{"http", callback_status, sizeof(struct status_session), 0, 0, NULL, 0},
	{NULL, NULL, 0, 0, 0, NULL, 0},
};

const struct lws_protocols *agent_status_protocols(void)
{
	return status_protocols;
}
