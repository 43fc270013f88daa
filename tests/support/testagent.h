/*
 * testagent.h - an agent that speaks the tunnel protocol (DESIGN.md
 * section 4) for the ee-tunneld tests, on top of wsclient.h.
 *
 * It does what ee-agent does, message for message (register, answer
 * attestation challenges with TDX quotes, heartbeats, answer proxied
 * requests), and lets a test break any part of it: every field of
 * register is editable and an empty one is left out, attest_response can
 * be corrupted piece by piece, requests can be held and answered out of
 * order, and a->ws gives the raw websocket for bad frames.
 *
 * Quotes are real DCAP quotes signed by a test hierarchy (dcapgen.h), the
 * one of the development network the agent attests to: stack_start sets
 * it for the whole process (agent_set_hierarchy), and forked children keep
 * it.  Before registering, an agent writes the default allowlist of its
 * release (the registers it reports) into the development network's
 * allowlist directories (agent_add_allowlist_dir), unless one is there.
 *
 * Messages that arrive while the agent waits for something else (a
 * proxy_request during a periodic re-attestation, say) are kept, in
 * order, for the next agent_recv / agent_recv_request.
 */
#ifndef EE_TEST_AGENT_H
#define EE_TEST_AGENT_H

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

#include "util.h"
#include "wsclient.h"

#define AGENT_FIELD_MAX 512        /* room for oversize values in tests of the limits */
#define AGENT_REASON_MAX 256
#define AGENT_DEFAULT_RELEASE "v1.0.0"
#define AGENT_TUNNEL_PATH "/v1/tunnel"
#define AGENT_CONNECT_TIMEOUT_MS 5000
/* How long an automatic re-attestation waits for its verdict, whatever the caller's timeout. */
#define AGENT_VERDICT_WAIT_MS 5000
/* The measurements every test agent reports (96 hex digits: a SHA-384). */
#define AGENT_TEST_MRTD                                                                   \
	"a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecf"
#define AGENT_TEST_RTMR0                                                                  \
	"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f"
#define AGENT_TEST_RTMR1                                                                  \
	"303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f"
#define AGENT_TEST_RTMR2                                                                  \
	"606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f"
#define AGENT_TEST_RTMR3                                                                  \
	"909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf"

struct agent_pending; /* messages kept for later, oldest first */
struct dcapgen;
struct dcapgen_quote_options;

/*
 * The hierarchy that signs every agent's quotes, process-wide (borrowed;
 * NULL: none, and attest_response cannot be built).
 */
void agent_set_hierarchy(struct dcapgen *g);
struct dcapgen *agent_hierarchy(void);

#define AGENT_ALLOWLIST_DIRS 8
/*
 * The allowlist directories (EE_ALLOWLIST_DIR layout: <dir>/<owner>/<repo>/<tag>.json)
 * that agent_send_register fills with the default allowlist of the agent's
 * release.  At most AGENT_ALLOWLIST_DIRS; add returns -1 past that.
 */
int agent_add_allowlist_dir(const char *dir);
void agent_remove_allowlist_dir(const char *dir);
/*
 * Writes an allowlist (JSON text; NULL: the default one) for repo@tag into
 * dir, atomically: replace false keeps a file already there.  -1 when repo
 * or tag cannot name a file there (not owner/name of [A-Za-z0-9._-], a
 * leading dot) or the write fails.
 */
int agent_write_allowlist(const char *dir, const char *repo, const char *tag, const char *json,
                          bool replace);
/* The default allowlist: AGENT_TEST_* as both measurements and quote_measurements. */
const char *agent_default_allowlist(void);

struct test_agent {
	struct ws_client *ws;  /* the raw websocket, for frames the helpers do not send */
	/* What register sends; edit before agent_register.  "" leaves a field out. */
	char agent_id[AGENT_FIELD_MAX];
	char app_name[AGENT_FIELD_MAX];
	char repo[AGENT_FIELD_MAX];
	char release_tag[AGENT_FIELD_MAX];
	char network[AGENT_FIELD_MAX];
	char tunnel_version[AGENT_FIELD_MAX]; /* "" by default: not sent */
	/* How automatic re-attestation answers (agent_up sets it). */
	bool sealed;
	/* agent_send_register writes the default allowlist of repo@release_tag (default true). */
	bool write_allowlist;
	/* Periodic attest_requests are answered inside agent_serve / agent_recv_request. */
	bool auto_attest;
	/* The last attest_request: its reason ("register"/"periodic"), deadline_s, nonce. */
	char attest_reason[32];
	int attest_deadline_s;
	char attest_nonce[AGENT_FIELD_MAX];
	int attestations;           /* "status ok attested" answers received */
	int periodic_attestations;  /* of those, answers to a "periodic" request */
	/*
	 * Why the last call failed: the control plane's status reason
	 * ("missing_fields", "nonce_mismatch", ...), or "timeout", "closed",
	 * "invalid_json", "ws_error", "unexpected:<type>", "no_attest_response"
	 * (the answer could not be built: no hierarchy, out of memory).
	 */
	char last_reason[AGENT_REASON_MAX];
	struct agent_pending *pending;
};

struct agent_connect_options {
	const char *path;                 /* default AGENT_TUNNEL_PATH */
	const char *const *headers;       /* extra "Name: value" lines, NULL-terminated */
	const struct ws_connect_options *ws; /* handshake variations */
	int timeout_ms;                   /* default AGENT_CONNECT_TIMEOUT_MS */
	char *why;                        /* why the connection failed, if not NULL */
	size_t why_size;
};

/*
 * Connects a websocket to host:port/v1/tunnel; nothing is sent yet.
 * agent_id NULL makes a random "agent-<16 hex>"; network NULL leaves the
 * field out of register (the control plane then assumes forge-1); release
 * tag AGENT_DEFAULT_RELEASE.  NULL when the connection fails.
 */
struct test_agent *agent_connect(const char *host, int port, const char *app, const char *repo,
                                 const char *agent_id, const char *network);
struct test_agent *agent_connect_ex(const char *host, int port, const char *app,
                                    const char *repo, const char *agent_id, const char *network,
                                    const struct agent_connect_options *opt);

/* Sends {"type":"register",...} from the fields; no wait. */
int agent_send_register(struct test_agent *a);
/*
 * Sends register and waits for attest_request: 0 with the nonce (32 hex
 * and a NUL) in nonce_out (may be NULL) and a->attest_reason set.  -1 if
 * a status invalid, a close or the timeout came instead (agent_last_reason).
 */
int agent_register(struct test_agent *a, char nonce_out[33], int timeout_ms);

/*
 * How to build an attest_response, and how to break it.  Zeroed options
 * (with .sealed chosen) build the correct answer; every pointer left NULL
 * keeps its correct value, every omit_* leaves that field out.
 *
 * The quote is a TDX quote of the current hierarchy.  Its REPORTDATA is
 * attest_expected_report_data(quote_report_data_measurements or the
 * measurements sent, quote_nonce or the nonce answered); its MRTD and
 * RTMR0-3 are the "mrtd" / "rtmr0".."rtmr3" values of quote_measurements
 * or the measurements sent, where those are 96 hex digits, and the
 * defaults (AGENT_TEST_*) otherwise.
 */
struct agent_attest_options {
	bool sealed;                     /* "sealed" in the measurements */
	const char *nonce;               /* the "nonce" field sent (default: the one answered) */
	const char *report_data_nonce;   /* nonce that report_data binds */
	const char *quote_nonce;         /* nonce that the quote's REPORTDATA binds */
	struct json_object *measurements;         /* sent instead of the defaults (borrowed) */
	struct json_object *report_data_measurements; /* what report_data binds (borrowed) */
	struct json_object *quote_report_data_measurements; /* what the quote's REPORTDATA binds */
	struct json_object *quote_measurements;   /* the quote's registers (borrowed) */
	bool debug_td;                   /* the quote is a debug TD's (TD_ATTRIBUTES bit 0) */
	/* The quote's other fields and breakages (dcapgen.h); NULL: its defaults. */
	const struct dcapgen_quote_options *quote_options;
	const char *report_data_hex;     /* sent verbatim instead of the computed one */
	const char *quote_b64;           /* sent verbatim instead of the signed quote */
	bool omit_nonce, omit_quote, omit_report_data, omit_measurements;
};

/* The default measurements: mrtd, rtmr0..3 and "sealed".  The caller owns them. */
struct json_object *agent_test_measurements(bool sealed);
/*
 * Builds {"type":"attest_response",...} answering nonce, as attest.h and
 * the options above define it; opt NULL means correct and unsealed.
 * Measurements that attest.h cannot digest (nested, null, too many) bind
 * 64 zero bytes, so they can still be sent.  The caller owns the result;
 * NULL when out of memory or when no hierarchy is set (said on stderr).
 */
struct json_object *agent_build_attest_response(const char *nonce,
                                                const struct agent_attest_options *opt);
/* Sends a built attest_response; no wait. */
int agent_send_attest_response(struct test_agent *a, const char *nonce,
                               const struct agent_attest_options *opt);
/*
 * Answers nonce and waits for {"type":"status","state":"ok","reason":"attested"}:
 * 0, or -1 on status invalid (its reason), close or timeout.
 */
int agent_attest(struct test_agent *a, const char *nonce, bool sealed, int timeout_ms);
int agent_attest_ex(struct test_agent *a, const char *nonce,
                    const struct agent_attest_options *opt, int timeout_ms);
/* agent_register then agent_attest; a->sealed remembers the choice for re-attestation. */
int agent_up(struct test_agent *a, bool sealed, int timeout_ms);

/* Sends {"type":"health","status":status}; status NULL leaves the field out. */
int agent_health(struct test_agent *a, const char *status);

/*
 * One proxied request, decoded.  Strings are "" when the field was absent.
 * Header values are bytes, as ee-agent reads them: \udc80..\udcff escapes
 * (lib/json_bytes.h) are the bytes they stand for.
 */
struct agent_request {
	char *request_id;
	char *method;
	char *path;
	struct json_object *headers;  /* the "headers" value as sent (NULL if absent) */
	unsigned char *body;          /* body_b64 decoded, NUL after body_len bytes */
	size_t body_len;
	bool body_invalid;            /* body_b64 present but not valid base64 */
	struct json_object *msg;      /* the whole message */
};
void agent_request_free(struct agent_request *req);

/* What a handler answers; the agent sends and frees it. */
struct agent_response {
	int status;                   /* 200 unless the handler says otherwise */
	struct json_object *headers;  /* an empty object to fill */
	struct buf body;
	bool no_reply;                /* send nothing for this request */
};
typedef void (*agent_handler)(const struct agent_request *req, struct agent_response *resp,
                              void *ctx);
/*
 * Echoes: status 200, the request body as the body, X-Echo-Method and
 * X-Echo-Path headers, and X-Echo-Header-<name> for each request header.
 */
void agent_echo_handler(const struct agent_request *req, struct agent_response *resp,
                        void *ctx);

/*
 * Waits for one proxy_request (answering attest_requests meanwhile when
 * a->auto_attest), calls fn (NULL: agent_echo_handler) and sends its
 * proxy_response.  0, or -1 with agent_last_reason.  An attest_request
 * answered just before the timeout is waited on until its verdict (up to
 * AGENT_VERDICT_WAIT_MS): so the call may return that much late.
 */
int agent_serve(struct test_agent *a, int timeout_ms, agent_handler fn, void *ctx);
/* Receives one proxy_request without answering it (for timeouts, many in flight, reordering). */
int agent_recv_request(struct test_agent *a, struct agent_request *req, int timeout_ms);
/* Sends {"type":"proxy_response","request_id","status","headers","body_b64"}; headers borrowed, NULL = {}. */
int agent_send_response(struct test_agent *a, const char *request_id, int status,
                        struct json_object *headers, const void *body, size_t body_len);

/* Sends any JSON value as one text frame; obj stays the caller's. */
int agent_send_json(struct test_agent *a, struct json_object *obj);
/*
 * The next message, kept ones first, parsed and handed over as is (no
 * automatic answers).  NULL on timeout, close or non-JSON (agent_last_reason).
 */
struct json_object *agent_recv(struct test_agent *a, int timeout_ms);
/*
 * Reads and drops messages until the control plane closes the socket;
 * returns the close code (WS_CLOSE_ABNORMAL when no close frame came), or
 * -1 on timeout.  A status invalid on the way sets agent_last_reason.
 */
int agent_wait_closed(struct test_agent *a, int timeout_ms);
const char *agent_last_reason(const struct test_agent *a);

/* Close handshake with code 1000, then frees. */
void agent_disconnect(struct test_agent *a);
/* Closes the TCP socket with no close frame, then frees. */
void agent_drop(struct test_agent *a);

#endif
