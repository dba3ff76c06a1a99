/*-------------------------------------------------------------------------
 * http.c
 *		Calls to Marketo's REST API: a governor slot around every attempt,
 *		the response envelope, and what to do about each of Marketo's
 *		answers (repeat with a new token, retry, back off, or fail).
 *
 * The bytes travel through transport.c, access tokens come from token.c,
 * failed answers are reported by errors.c.  Tokens travel only in the
 * Authorization header, never in a URL or a message.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <curl/curl.h>
#include <json.h>

#include "access/xact.h"
#include "storage/proc.h"

#include "governor.h"
#include "http_internal.h"
#include "marketo_fdw.h"
#include "progress.h"

#define MAX_RESPONSE_BYTES		(64 * 1024 * 1024)

/*
 * Past this many bytes of base URL, path and query a GET is sent as
 * POST ?_method=GET: Marketo answers 414 from 8 KB on.
 */
#define MAX_GET_URI				8000

/* Marketo's envelopes nest a few levels; leave room for asset objects. */
#define JSON_MAX_DEPTH			64

/* marketo_fdw.max_calls_per_statement: calls of the current statement */
static int64 statement_calls = 0;
static TimestampTz statement_started = 0;
static LocalTransactionId statement_lxid = InvalidLocalTransactionId;

/* How each error code of a success:false envelope is handled. */
typedef struct ErrorCodeRule
{
	const char *code;
	AnswerKind	kind;
	GovernorOutcome outcome;
} ErrorCodeRule;

/*
 * Marketo does not count 601, 602, 604, 605, 608 and 611 against its
 * limits; every other answer is counted.  Codes not listed fail the call.
 */
static const ErrorCodeRule error_code_rules[] = {
	{"601", ANSWER_TOKEN_REJECTED, GOV_NOT_COUNTED},
	{"602", ANSWER_TOKEN_REJECTED, GOV_NOT_COUNTED},
	{"604", ANSWER_TRANSIENT, GOV_NOT_COUNTED},
	{"605", ANSWER_FAILED, GOV_NOT_COUNTED},
	{"606", ANSWER_RATE_LIMITED, GOV_RATE_LIMITED},
	{"607", ANSWER_FAILED, GOV_QUOTA_EXHAUSTED},
	{"608", ANSWER_TRANSIENT, GOV_NOT_COUNTED},
	{"611", ANSWER_TRANSIENT, GOV_NOT_COUNTED},
	{"615", ANSWER_CONCURRENCY_LIMITED, GOV_CONCURRENCY_LIMITED},
	/* transient per Marketo's docs: subscription unreachable, resource busy */
	{"614", ANSWER_TRANSIENT, GOV_COUNTED},
	{"713", ANSWER_TRANSIENT, GOV_COUNTED},
	{"719", ANSWER_TRANSIENT, GOV_COUNTED},
};


/* ----------------------------------------------------------------
 *		JSON
 * ----------------------------------------------------------------
 */

static void
json_guard_fire(void *arg)
{
	JsonGuard  *guard = (JsonGuard *) arg;

	if (guard->obj != NULL)
		json_object_put(guard->obj);
	guard->obj = NULL;
}

/* Release a parsed tree now rather than with its memory context. */
void
http_json_release(JsonGuard *guard)
{
	json_guard_fire(guard);
}

/* JSON's own whitespace, independent of the backend's locale */
static inline bool
is_json_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/*
 * Parse a whole body as one JSON value.  Returns NULL and sets *why when
 * it is not exactly that (truncated, malformed, trailing bytes).  The tree
 * is released when CurrentMemoryContext is reset or deleted; *guard lets
 * the caller release it sooner.
 */
struct json_object *
http_parse_json(StringInfo body, JsonGuard **guard, const char **why)
{
	/* allocated first: nothing may fail between parsing and registering */
	JsonGuard  *g = palloc0(sizeof(JsonGuard));
	struct json_tokener *tok;
	struct json_object *root;
	enum json_tokener_error err;
	size_t		end;

	*guard = NULL;
	if (body->len == 0)
	{
		*why = "the body is empty";
		pfree(g);
		return NULL;
	}

	tok = json_tokener_new_ex(JSON_MAX_DEPTH);
	if (tok == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	/* strings become text datums: refuse invalid UTF-8 here */
	json_tokener_set_flags(tok, JSON_TOKENER_VALIDATE_UTF8);
	root = json_tokener_parse_ex(tok, body->data, body->len);
	err = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);

	if (root == NULL || err != json_tokener_success)
	{
		if (root != NULL)
			json_object_put(root);
		*why = (err == json_tokener_continue) ?
			"the body ends inside the JSON value" : json_tokener_error_desc(err);
		pfree(g);
		return NULL;
	}
	while (end < (size_t) body->len && is_json_space(body->data[end]))
		end++;
	if (end < (size_t) body->len)
	{
		json_object_put(root);
		*why = "the body continues after the JSON value";
		pfree(g);
		return NULL;
	}

	g->cb.func = json_guard_fire;
	g->cb.arg = g;
	g->obj = root;
	MemoryContextRegisterResetCallback(CurrentMemoryContext, &g->cb);
	*guard = g;
	return root;
}

/* A member's value as a palloc'd string, for strings and integers only. */
static char *
json_member_text(struct json_object *obj, const char *key)
{
	struct json_object *value;

	if (obj == NULL || !json_object_is_type(obj, json_type_object) ||
		!json_object_object_get_ex(obj, key, &value))
		return NULL;
	if (!json_object_is_type(value, json_type_string) &&
		!json_object_is_type(value, json_type_int))
		return NULL;
	return pstrdup(json_object_get_string(value));
}


/* ----------------------------------------------------------------
 *		Classifying answers
 * ----------------------------------------------------------------
 */

static void
classify_error_code(MarketoAnswer *answer)
{
	answer->kind = ANSWER_FAILED;
	answer->outcome = GOV_COUNTED;
	if (answer->code == NULL)
		return;
	for (int i = 0; i < lengthof(error_code_rules); i++)
	{
		if (strcmp(answer->code, error_code_rules[i].code) == 0)
		{
			answer->kind = error_code_rules[i].kind;
			answer->outcome = error_code_rules[i].outcome;
			return;
		}
	}
}

/*
 * An HTTP 200 answer: the envelope's success flag decides; a failure's
 * errors[0] says why.  A failed attempt's tree is released at once.
 */
static void
classify_envelope(HttpResponse *resp, MarketoAnswer *answer)
{
	JsonGuard  *guard;
	struct json_object *root;
	struct json_object *success;
	struct json_object *errors;

	answer->kind = ANSWER_FAILED;
	answer->outcome = GOV_COUNTED;

	root = http_parse_json(resp->body, &guard, &answer->invalid);
	if (root == NULL)
	{
		answer->excerpt = text_excerpt(resp->body->data, resp->body->len);
		return;
	}
	/* the tree holds its own copies; a page can be large */
	pfree(resp->body->data);
	pfree(resp->body);
	resp->body = NULL;

	if (!json_object_is_type(root, json_type_object) ||
		!json_object_object_get_ex(root, "success", &success) ||
		!json_object_is_type(success, json_type_boolean))
	{
		answer->invalid = "the answer has no boolean \"success\" member";
		http_json_release(guard);
		return;
	}
	if (json_object_get_boolean(success))
	{
		answer->kind = ANSWER_OK;
		answer->root = root;
		return;
	}

	answer->request_id = json_member_text(root, "requestId");
	if (json_object_object_get_ex(root, "errors", &errors) &&
		json_object_is_type(errors, json_type_array) &&
		json_object_array_length(errors) > 0)
	{
		struct json_object *first = json_object_array_get_idx(errors, 0);

		answer->code = json_member_text(first, "code");
		answer->message = json_member_text(first, "message");
	}
	http_json_release(guard);
	classify_error_code(answer);
}

bool
http_status_is_transient(long status)
{
	/* 500 is not retried: Marketo uses it for malformed requests too */
	return status == 429 || status == 502 || status == 503 || status == 504;
}

/*
 * Decide what an attempt's answer means.  A request that is not
 * idempotent is retried only on answers proving it was not executed
 * (6xx codes, 429, 503), never after a lost answer, 502 or 504.
 */
static void
classify_response(const HttpRequest *req, MarketoAnswer *answer)
{
	HttpResponse *resp = &answer->resp;

	answer->kind = ANSWER_FAILED;
	answer->outcome = GOV_NOT_COUNTED;

	if (resp->too_large)
		answer->outcome = GOV_COUNTED;
	else if (resp->curl_code != CURLE_OK)
	{
		/* Marketo counts what reached it; a lost answer may have */
		if (!http_transport_never_sent(resp->curl_code))
			answer->outcome = GOV_COUNTED;
		if (req->idempotent && http_transport_is_transient(resp->curl_code))
			answer->kind = ANSWER_TRANSIENT;
	}
	else if (resp->status == 200)
		classify_envelope(resp, answer);
	else if (resp->status == 401)
		answer->kind = ANSWER_TOKEN_REJECTED;
	else if (resp->status == 429 || resp->status == 503)
		answer->kind = ANSWER_TRANSIENT;
	else if (http_status_is_transient(resp->status) && req->idempotent)
		answer->kind = ANSWER_TRANSIENT;
}


/* ----------------------------------------------------------------
 *		Calls per statement
 * ----------------------------------------------------------------
 */

/* Start counting afresh when a new top-level statement has begun. */
static void
statement_sync(void)
{
	TimestampTz started = GetCurrentStatementStartTimestamp();
	LocalTransactionId lxid = InvalidLocalTransactionId;

	if (MyProc != NULL)
#if PG_VERSION_NUM >= 170000
		lxid = MyProc->vxid.lxid;
#else
		lxid = MyProc->lxid;
#endif
	if (started != statement_started || lxid != statement_lxid)
	{
		statement_started = started;
		statement_lxid = lxid;
		statement_calls = 0;
	}
}

static void
statement_check_budget(void)
{
	statement_sync();
	if (marketo_max_calls_per_statement > 0 &&
		statement_calls >= marketo_max_calls_per_statement)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("statement would exceed marketo_fdw.max_calls_per_statement (%d)",
						marketo_max_calls_per_statement),
				 errdetail_plural("The statement has already sent %lld call to Marketo.",
								  "The statement has already sent %lld calls to Marketo.",
								  (unsigned long) statement_calls,
								  (long long) statement_calls),
				 errhint("Narrow the query, or raise marketo_fdw.max_calls_per_statement.")));
}

int64
marketo_statement_calls(void)
{
	statement_sync();
	return statement_calls;
}


/* ----------------------------------------------------------------
 *		REST calls
 * ----------------------------------------------------------------
 */

/* Does an encoded query string carry name=value? */
static bool
query_has_param(const char *query, const char *name, const char *value)
{
	size_t		namelen = strlen(name);
	size_t		valuelen = strlen(value);
	const char *p = query;

	while (p != NULL && *p != '\0')
	{
		if (strncmp(p, name, namelen) == 0 && p[namelen] == '=' &&
			strncmp(p + namelen + 1, value, valuelen) == 0 &&
			(p[namelen + 1 + valuelen] == '&' || p[namelen + 1 + valuelen] == '\0'))
			return true;
		p = strchr(p, '&');
		if (p != NULL)
			p++;
	}
	return false;
}

static void
check_body_size(const char *path, const char *body)
{
	size_t		len = body ? strlen(body) : 0;

	if (len > MARKETO_MAX_BODY)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("request body for Marketo endpoint %s is too large", path),
				 errdetail("The body has %zu bytes; Marketo accepts at most %d.",
						   len, MARKETO_MAX_BODY)));
}

/*
 * The request for a REST call.  A GET too long for Marketo's 8 KB URI
 * limit becomes the documented POST ?_method=GET with a form body.
 */
static void
build_rest_request(HttpRequest *req, const MarketoConn *conn,
				   const char *method, const char *path, const char *query,
				   const char *json_body)
{
	StringInfoData url;
	bool		has_query = (query != NULL && query[0] != '\0');

	if (path == NULL || path[0] != '/')
		elog(ERROR, "Marketo endpoint path must start with \"/\"");

	memset(req, 0, sizeof(HttpRequest));
	req->method = method;
	req->path = path;
	req->max_response = MAX_RESPONSE_BYTES;

	initStringInfo(&url);
	appendStringInfo(&url, "%s%s", conn->base_url, path);

	if (strcmp(method, "GET") == 0)
	{
		if (json_body != NULL)
			elog(ERROR, "a GET request to Marketo cannot carry a JSON body");
		req->idempotent = true;
		req->http_method = "GET";
		if (has_query &&
			strlen(conn->base_url) + strlen(path) + 1 + strlen(query) > MAX_GET_URI)
		{
			appendStringInfoString(&url, "?_method=GET");
			req->http_method = "POST";
			req->body = query;
			req->content_type = "application/x-www-form-urlencoded";
		}
		else if (has_query)
			appendStringInfo(&url, "?%s", query);
	}
	else if (strcmp(method, "POST") == 0)
	{
		req->http_method = "POST";
		req->idempotent = has_query && query_has_param(query, "_method", "GET");
		if (has_query)
			appendStringInfo(&url, "?%s", query);
		/* the request line around the URI counts against Marketo's limit too */
		if (url.len > MAX_GET_URI)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("request URI for Marketo endpoint %s is too long", path),
					 errdetail("Marketo accepts URIs of at most %d bytes.",
							   MARKETO_MAX_URI)));
		req->body = json_body;
		req->content_type = json_body ? "application/json" :
			"application/x-www-form-urlencoded";
	}
	else
		elog(ERROR, "unsupported HTTP method \"%s\" for Marketo", method);

	check_body_size(path, req->body);
	req->url = url.data;
}

/*
 * One attempt: take a governor slot, send, read the answer, give the slot
 * back with what Marketo will have counted.  An ERROR in between (a
 * cancel) gives the slot back as counted: the request may have arrived.
 */
static void
attempt_call(const MarketoConn *conn, const HttpRequest *req,
			 const char *token, MarketoAnswer *answer, MarketoCallStats *stats)
{
	GovernorCall call;

	memset(answer, 0, sizeof(MarketoAnswer));
	answer->kind = ANSWER_FAILED;
	answer->outcome = GOV_NOT_COUNTED;

	governor_begin_call(conn, &call);
	PG_TRY();
	{
		statement_calls++;
		progress_add(0, 0, 1);
		if (stats)
			stats->calls++;
		/* a call cut short once sent (a cancel) may well have been counted */
		answer->outcome = GOV_COUNTED;
		http_perform(conn, req, token, &answer->resp);
		classify_response(req, answer);
	}
	PG_FINALLY();
	{
		governor_end_call(&call, answer->outcome);
	}
	PG_END_TRY();
}

struct json_object *
marketo_call(MarketoConn *conn, const char *method, const char *path,
			 const char *query, const char *json_body,
			 MarketoCallStats *stats)
{
	HttpRequest req;
	char		token[MARKETO_TOKEN_BUFSIZE];
	int			retries = 0;
	bool		token_renewed = false;

	build_rest_request(&req, conn, method, path, query, json_body);

	for (;;)
	{
		MarketoAnswer answer;

		/* refuse before fetching a token or waiting for a slot */
		statement_check_budget();
		token_acquire(conn, token, sizeof(token), stats);
		attempt_call(conn, &req, token, &answer, stats);

		switch (answer.kind)
		{
			case ANSWER_OK:
				pfree(req.url);
				return answer.root;

			case ANSWER_TOKEN_REJECTED:

				/*
				 * Revoked or expired early: drop it for every backend and
				 * repeat once with a fresh one (same query, so the same
				 * nextPageToken).  A fresh token refused means more than
				 * bad luck.
				 */
				governor_token_forget(conn, token);
				if (token_renewed)
					raise_answer_error(conn, &req, &answer, 0);
				token_renewed = true;
				break;

			case ANSWER_RATE_LIMITED:
			case ANSWER_CONCURRENCY_LIMITED:
			case ANSWER_TRANSIENT:
				if (retries >= marketo_max_retries)
					raise_answer_error(conn, &req, &answer, retries);

				/*
				 * After 606/615 the governor's shared cool-down makes the
				 * next governor_begin_call wait; other failures back off
				 * here, holding no slot.
				 */
				if (answer.kind == ANSWER_TRANSIENT)
					governor_backoff(conn, retries);
				retries++;
				break;

			case ANSWER_FAILED:
				raise_answer_error(conn, &req, &answer, 0);
		}

		governor_note_retry(conn);
		if (stats)
			stats->retries++;
	}
}

/*
 * RFC 3986: everything but unreserved characters is percent-encoded.
 * Spelled out rather than isalnum(), which depends on the locale.
 */
static inline bool
is_unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		(c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~';
}

static void
append_encoded(StringInfo buf, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";

	for (const unsigned char *p = (const unsigned char *) s; *p; p++)
	{
		if (is_unreserved(*p))
			appendStringInfoChar(buf, (char) *p);
		else
		{
			appendStringInfoChar(buf, '%');
			appendStringInfoChar(buf, hex[*p >> 4]);
			appendStringInfoChar(buf, hex[*p & 0x0F]);
		}
	}
}

void
marketo_append_param(StringInfo query, const char *name, const char *value)
{
	if (query->len > 0)
		appendStringInfoChar(query, '&');
	append_encoded(query, name);
	appendStringInfoChar(query, '=');
	if (value != NULL)
		append_encoded(query, value);
}
