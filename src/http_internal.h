/*-------------------------------------------------------------------------
 * http_internal.h
 *		What http.c, token.c and errors.c share; not for other modules.
 *
 * transport.c moves the bytes (libcurl), http.c decides what answers mean
 * and retries, token.c fetches access tokens from the identity service,
 * errors.c turns failed answers into ereports.
 *-------------------------------------------------------------------------
 */
#ifndef MARKETO_HTTP_INTERNAL_H
#define MARKETO_HTTP_INTERNAL_H

#include <curl/curl.h>

#include "http.h"
#include "governor.h"

/* Room for an access token ("<uuid>:<pod>", about 40 bytes in practice) */
#define MARKETO_TOKEN_BUFSIZE	256

/* One HTTP request as libcurl sends it. */
typedef struct HttpRequest
{
	const char *method;			/* the caller's method, for messages */
	const char *http_method;	/* what is sent: "GET" or "POST" */
	const char *path;			/* for messages: never carries the query */
	char	   *url;			/* what libcurl fetches */
	const char *body;			/* POST body, or NULL */
	const char *content_type;	/* of body */
	bool		idempotent;		/* may be repeated after a lost answer */
	bool		secret;			/* url carries client_secret: never show it */
	size_t		max_response;	/* bytes of body accepted */
} HttpRequest;

/* What came back: a transport failure, or a status and a body. */
typedef struct HttpResponse
{
	CURLcode	curl_code;
	char		curl_error[CURL_ERROR_SIZE];	/* never holds a secret */
	long		status;			/* 0 if no answer arrived */
	bool		too_large;		/* the body passed max_response */
	StringInfo	body;
} HttpResponse;

/* How one answer of a REST call is handled. */
typedef enum AnswerKind
{
	ANSWER_OK,					/* success: true */
	ANSWER_TOKEN_REJECTED,		/* 601/602 or HTTP 401: new token, repeat */
	ANSWER_RATE_LIMITED,		/* 606: the governor waits, retry */
	ANSWER_CONCURRENCY_LIMITED, /* 615: likewise */
	ANSWER_TRANSIENT,			/* 604/608/611, 5xx, lost answer: back off */
	ANSWER_FAILED				/* anything else: raise */
} AnswerKind;

typedef struct MarketoAnswer
{
	AnswerKind	kind;
	GovernorOutcome outcome;	/* what the governor is told */
	HttpResponse resp;
	struct json_object *root;	/* the envelope, for ANSWER_OK */
	const char *invalid;		/* why the body is no valid envelope */
	char	   *excerpt;		/* the start of such a body */
	char	   *code;			/* errors[0] of a success:false envelope */
	char	   *message;
	char	   *request_id;
} MarketoAnswer;

/*
 * A json-c tree (malloc'd) tied to the memory context that was current
 * when it was parsed: released when that context is reset or deleted, or
 * earlier by http_json_release.
 */
typedef struct JsonGuard
{
	MemoryContextCallback cb;
	struct json_object *obj;
} JsonGuard;

/* transport.c */
extern void http_perform(const MarketoConn *conn, const HttpRequest *req,
						 const char *token, HttpResponse *resp);
extern bool http_transport_is_transient(CURLcode code);
extern bool http_transport_never_sent(CURLcode code);

/* http.c */
extern struct json_object *http_parse_json(StringInfo body, JsonGuard **guard,
										   const char **why);
extern void http_json_release(JsonGuard *guard);
extern bool http_status_is_transient(long status);

/* token.c */
extern void token_acquire(const MarketoConn *conn, char *token,
						  size_t tokenlen, MarketoCallStats *stats);

/* errors.c */
extern void raise_answer_error(const MarketoConn *conn, const HttpRequest *req,
							   const MarketoAnswer *answer, int retries)
			pg_attribute_noreturn();
extern void raise_transport_error(const MarketoConn *conn,
								  const HttpRequest *req,
								  const HttpResponse *resp, int retries)
			pg_attribute_noreturn();
extern void raise_http_status(const MarketoConn *conn, const HttpRequest *req,
							  long status, int retries)
			pg_attribute_noreturn();
extern void raise_invalid_response(const MarketoConn *conn,
								   const HttpRequest *req, const char *why,
								   const char *excerpt)
			pg_attribute_noreturn();
extern void raise_identity_error(const MarketoConn *conn, long status,
								 const char *oauth_error, int retries)
			pg_attribute_noreturn();
/* The start of a text, printable ASCII only, safe to quote in a message */
extern char *text_excerpt(const char *data, size_t len);

#endif							/* MARKETO_HTTP_INTERNAL_H */
