/*-------------------------------------------------------------------------
 * errors.c
 *		Failed Marketo calls as PostgreSQL errors: an FDW SQLSTATE, the
 *		endpoint and Marketo's requestId in the detail, and a hint where
 *		the error code says what to do about it.
 *
 * Messages name the instance, method and path, never a URL: query strings
 * can carry personal data, and the identity URL carries the client secret.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "foreign/foreign.h"
#include "utils/timestamp.h"

#include "governor.h"
#include "http_internal.h"

#define EXCERPT_BYTES	160

/*
 * Hints for Marketo error codes; message_contains, when set, narrows a
 * hint to one meaning of a code Marketo uses for several things.
 */
typedef struct ErrorHint
{
	const char *code;
	const char *message_contains;
	const char *hint;
} ErrorHint;

static const ErrorHint error_hints[] = {
	{"603", NULL, "Check the API user's role permissions and the instance's IP allow-list."},
	{"604", NULL, "Marketo timed out; try again later."},
	{"605", NULL, "Marketo does not accept this HTTP method on the endpoint; this is a bug in marketo_fdw."},
	{"606", NULL, "Every integration on the instance shares its rate limit; lower the server option rate_limit or try again later."},
	{"608", NULL, "The Marketo API is temporarily unavailable; try again later."},
	{"609", NULL, "Marketo could not parse the request body; this is a bug in marketo_fdw."},
	{"610", NULL, "The instance has no such endpoint; check the server option base_url."},
	{"611", NULL, "Marketo had an internal error; try again later."},
	{"612", NULL, "Marketo refused the request's content type; this is a bug in marketo_fdw."},
	{"614", NULL, "The subscription could not be reached; check the server option base_url, or try again later."},
	{"615", NULL, "Every integration on the instance shares its 10 concurrent calls; lower the server option max_concurrency or try again later."},
	{"703", NULL, "The feature is not enabled for this Marketo subscription."},
	{"1003", "too many results", "Narrow the filter: Marketo answers at most 1000 leads per filter."},
	{"1006", NULL, "A column names a field this instance does not have; check the column's field option or re-import the schema."},
	{"1008", NULL, "The API user has no access to that lead partition."},
	{"1011", NULL, "That field cannot be used as a lookup filter."},
	{"1013", NULL, "The object does not exist on this instance."},
	{"1029", "export daily quota", "The daily bulk export volume is used up; it resets at midnight US Central time."},
	{"1029", "too many jobs", "Marketo allows 10 queued bulk jobs per instance; try again when some have finished."},
	{"1035", NULL, "This subscription does not support that bulk extract filter."},
};

/* Case-insensitive strstr, spelled out for portability. */
static bool
contains_ci(const char *haystack, const char *needle)
{
	size_t		n = strlen(needle);

	for (const char *p = haystack; *p != '\0'; p++)
	{
		if (pg_strncasecmp(p, needle, n) == 0)
			return true;
	}
	return false;
}

static const char *
error_hint(const char *code, const char *message)
{
	for (int i = 0; i < lengthof(error_hints); i++)
	{
		const ErrorHint *h = &error_hints[i];

		if (strcmp(code, h->code) != 0)
			continue;
		if (h->message_contains == NULL ||
			(message != NULL && contains_ci(message, h->message_contains)))
			return h->hint;
	}
	return NULL;
}

/*
 * Bodies that are not what we expected may be HTML from a gateway, or
 * not text at all; quote the start as printable ASCII so the message
 * stays valid in any encoding.
 */
char *
text_excerpt(const char *data, size_t len)
{
	StringInfoData buf;
	size_t		i;

	initStringInfo(&buf);
	for (i = 0; i < len && buf.len < EXCERPT_BYTES; i++)
	{
		unsigned char c = (unsigned char) data[i];

		if (c >= ' ' && c <= '~')
			appendStringInfoChar(&buf, (char) c);
		else
			appendStringInfoChar(&buf, (c == '\n' || c == '\r' || c == '\t') ? ' ' : '?');
	}
	if (i < len)
		appendStringInfoString(&buf, "...");
	return buf.data;
}

/* errdetail naming the request, and the retries spent if any */
static int
errdetail_request(const HttpRequest *req, int retries)
{
	if (retries > 0)
		return errdetail_plural("Request: %s %s. Gave up after %d retry.",
								"Request: %s %s. Gave up after %d retries.",
								retries, req->method, req->path, retries);
	return errdetail("Request: %s %s.", req->method, req->path);
}

/* errdetail naming the endpoint and Marketo's requestId */
static int
errdetail_endpoint(const HttpRequest *req, const char *request_id, int retries)
{
	const char *rid = request_id ? request_id : "unknown";

	if (retries > 0)
		return errdetail_plural("Endpoint: %s %s; requestId %s. Gave up after %d retry.",
								"Endpoint: %s %s; requestId %s. Gave up after %d retries.",
								retries, req->method, req->path, rid, retries);
	return errdetail("Endpoint: %s %s; requestId %s.", req->method, req->path, rid);
}

static int
errhint_transport(const MarketoConn *conn, CURLcode code)
{
	switch (code)
	{
		case CURLE_OPERATION_TIMEDOUT:
			return errhint_plural("Raise the server option request_timeout (now %d second) if Marketo is slow to answer.",
								  "Raise the server option request_timeout (now %d seconds) if Marketo is slow to answer.",
								  conn->request_timeout, conn->request_timeout);
		case CURLE_PEER_FAILED_VERIFICATION:
		case CURLE_SSL_CACERT_BADFILE:
		case CURLE_SSL_CONNECT_ERROR:
			return errhint("Check the instance's TLS certificate and the server option ca_file.");
		case CURLE_COULDNT_RESOLVE_HOST:
			return errhint("Check the server option base_url.");
		default:
			return 0;
	}
}

void
raise_transport_error(const MarketoConn *conn, const HttpRequest *req,
					  const HttpResponse *resp, int retries)
{
	ereport(ERROR,
			(errcode(ERRCODE_FDW_UNABLE_TO_ESTABLISH_CONNECTION),
			 errmsg("could not complete request to Marketo instance %s: %s",
					conn->instance, resp->curl_error),
			 errdetail_request(req, retries),
			 errhint_transport(conn, resp->curl_code)));
}

void
raise_http_status(const MarketoConn *conn, const HttpRequest *req,
				  long status, int retries)
{
	switch (status)
	{
		case 401:
			ereport(ERROR,
					(errcode(ERRCODE_FDW_UNABLE_TO_ESTABLISH_CONNECTION),
					 errmsg("Marketo instance %s rejected a freshly issued access token",
							conn->instance),
					 errdetail("Marketo answered HTTP status 401 to %s %s.",
							   req->method, req->path)));
			break;
		case 404:
			ereport(ERROR,
					(errcode(ERRCODE_FDW_ERROR),
					 errmsg("Marketo instance %s has no endpoint %s",
							conn->instance, req->path),
					 errdetail("Marketo answered HTTP status 404 to %s %s.",
							   req->method, req->path),
					 errhint("Check the server option base_url.")));
			break;
		case 413:
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("request body too large for Marketo endpoint %s",
							req->path),
					 errdetail("Marketo answered HTTP status 413; it accepts bodies of at most 1 MB.")));
			break;
		case 414:
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("request URI too long for Marketo endpoint %s",
							req->path),
					 errdetail("Marketo answered HTTP status 414; it accepts URIs of at most 8 KB.")));
			break;
	}
	ereport(ERROR,
			(errcode(ERRCODE_FDW_ERROR),
			 errmsg("Marketo instance %s answered HTTP status %ld",
					conn->instance, status),
			 errdetail_request(req, retries)));
	pg_unreachable();
}

void
raise_invalid_response(const MarketoConn *conn, const HttpRequest *req,
					   const char *why, const char *excerpt)
{
	ereport(ERROR,
			(errcode(ERRCODE_FDW_ERROR),
			 errmsg("invalid response from Marketo instance %s", conn->instance),
			 excerpt ?
			 errdetail("Endpoint: %s %s; %s. The answer begins: %s",
					   req->method, req->path, why, excerpt) :
			 errdetail("Endpoint: %s %s; %s.", req->method, req->path, why)));
	pg_unreachable();
}

static void
raise_too_large(const MarketoConn *conn, const HttpRequest *req)
{
	ereport(ERROR,
			(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
			 errmsg("answer from Marketo instance %s is too large", conn->instance),
			 errdetail("Endpoint: %s %s. marketo_fdw accepts answers of at most %zu bytes.",
					   req->method, req->path, req->max_response)));
}

static void
raise_token_rejected(const MarketoConn *conn, const HttpRequest *req,
					 const MarketoAnswer *answer)
{
	if (answer->code == NULL)
		raise_http_status(conn, req, answer->resp.status, 0);
	ereport(ERROR,
			(errcode(ERRCODE_FDW_UNABLE_TO_ESTABLISH_CONNECTION),
			 errmsg("Marketo instance %s rejected a freshly issued access token",
					conn->instance),
			 errdetail("Marketo error %s: %s (endpoint %s %s; requestId %s).",
					   answer->code,
					   answer->message ? answer->message : "no message",
					   req->method, req->path,
					   answer->request_id ? answer->request_id : "unknown"),
			 errhint("Check that the API user and the custom service of the user mapping's client_id are still active.")));
}

static void
raise_quota_exhausted(const MarketoConn *conn, const HttpRequest *req,
					  const MarketoAnswer *answer)
{
	ereport(ERROR,
			(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
			 errmsg("Marketo daily API quota for instance \"%s\" is used up",
					conn->instance),
			 errdetail("Marketo error 607: %s (endpoint %s %s; requestId %s).",
					   answer->message ? answer->message : "no message",
					   req->method, req->path,
					   answer->request_id ? answer->request_id : "unknown"),
			 errhint("The quota resets at %s.",
					 timestamptz_to_str(governor_quota_reset_time()))));
}

static void
raise_marketo_error(const HttpRequest *req, const MarketoAnswer *answer,
					int retries)
{
	const char *hint;

	if (answer->code == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("Marketo reported a failure without an error code"),
				 errdetail_endpoint(req, answer->request_id, retries)));

	hint = error_hint(answer->code, answer->message);
	ereport(ERROR,
			(errcode(ERRCODE_FDW_ERROR),
			 errmsg("Marketo error %s: %s", answer->code,
					answer->message ? answer->message : "no message"),
			 errdetail_endpoint(req, answer->request_id, retries),
			 hint ? errhint("%s", hint) : 0));
}

/*
 * Raise the error an answer stands for.  retries is the number of retries
 * spent on the call when they ran out, else 0.
 */
void
raise_answer_error(const MarketoConn *conn, const HttpRequest *req,
				   const MarketoAnswer *answer, int retries)
{
	const HttpResponse *resp = &answer->resp;

	if (resp->too_large)
		raise_too_large(conn, req);
	if (resp->curl_code != CURLE_OK)
		raise_transport_error(conn, req, resp, retries);
	if (answer->kind == ANSWER_TOKEN_REJECTED)
		raise_token_rejected(conn, req, answer);
	if (resp->status != 200)
		raise_http_status(conn, req, resp->status, retries);
	if (answer->invalid)
		raise_invalid_response(conn, req, answer->invalid, answer->excerpt);
	if (answer->code && strcmp(answer->code, "607") == 0)
		raise_quota_exhausted(conn, req, answer);
	raise_marketo_error(req, answer, retries);
	pg_unreachable();
}

/*
 * The identity service refused a token.  401 means bad credentials; the
 * OAuth error it quotes never holds the secret (oauth_error checks).
 * retries is the number spent on gateway errors before giving up.
 */
void
raise_identity_error(const MarketoConn *conn, long status,
					 const char *oauth_error, int retries)
{
	ForeignServer *server = GetForeignServerExtended(conn->serverid,
													 FSV_MISSING_OK);

	if (status == 401)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_UNABLE_TO_ESTABLISH_CONNECTION),
				 server ?
				 errmsg("Marketo rejected the client credentials of the user mapping for server \"%s\"",
						server->servername) :
				 errmsg("Marketo instance %s rejected the client credentials of the user mapping",
						conn->instance),
				 oauth_error ?
				 errdetail("The identity service of %s answered: %s.",
						   conn->instance, oauth_error) :
				 errdetail("The identity service of %s answered HTTP status 401.",
						   conn->instance),
				 errhint("Check the client_id and client_secret options of the user mapping.")));

	ereport(ERROR,
			(errcode(ERRCODE_FDW_UNABLE_TO_ESTABLISH_CONNECTION),
			 errmsg("could not get an access token from Marketo instance %s",
					conn->instance),
			 oauth_error ?
			 errdetail("The identity service answered HTTP status %ld: %s.",
					   status, oauth_error) :
			 retries > 0 ?
			 errdetail_plural("The identity service answered HTTP status %ld. Gave up after %d retry.",
							  "The identity service answered HTTP status %ld. Gave up after %d retries.",
							  retries, status, retries) :
			 errdetail("The identity service answered HTTP status %ld.", status)));
	pg_unreachable();
}
