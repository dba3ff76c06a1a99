/*-------------------------------------------------------------------------
 * token.c
 *		Access tokens from Marketo's identity service.
 *
 * The governor shares tokens between backends per (instance, client id);
 * when none is valid, one backend fetches a token while the others wait.
 * The identity call's URL carries the client secret and its answer the
 * token: neither is ever quoted in a message, and both are scrubbed from
 * our memory once used.  Identity calls do not count against Marketo's
 * limits, so they take no governor slot.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <json.h>

#include "miscadmin.h"
#include "storage/latch.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "governor.h"
#include "http_internal.h"
#include "marketo_fdw.h"

#define IDENTITY_PATH			"/identity/oauth/token"
#define MAX_IDENTITY_RESPONSE	(64 * 1024)

/* Marketo's tokens live an hour; anything far longer is not believed. */
#define MAX_EXPIRES_IN			(24 * 3600)
/* a token with less left than this is not worth a call */
#define DYING_TOKEN_MS			2000

/*
 * The identity URL with client id and secret.  Buffers are sized up front
 * so that no reallocation leaves a copy of the secret in freed memory.
 */
static char *
identity_url(const MarketoConn *conn)
{
	StringInfoData query;
	size_t		len;
	char	   *url;

	initStringInfo(&query);
	enlargeStringInfo(&query, 3 * (strlen(conn->client_id) +
								   strlen(conn->client_secret)) + 128);
	marketo_append_param(&query, "grant_type", "client_credentials");
	marketo_append_param(&query, "client_id", conn->client_id);
	marketo_append_param(&query, "client_secret", conn->client_secret);

	len = strlen(conn->base_url) + strlen(IDENTITY_PATH) + 1 + query.len + 1;
	url = palloc(len);
	snprintf(url, len, "%s%s?%s", conn->base_url, IDENTITY_PATH, query.data);

	explicit_bzero(query.data, query.maxlen);
	pfree(query.data);
	return url;
}

static bool
identity_transient(const HttpResponse *resp)
{
	if (resp->too_large)
		return false;
	if (resp->curl_code != CURLE_OK)
		return http_transport_is_transient(resp->curl_code);
	return http_status_is_transient(resp->status);
}

/*
 * "error: error_description" of an OAuth error body, or NULL.  Such a
 * body holds no token, but an echo of the secret is withheld anyway.
 */
static char *
oauth_error(const MarketoConn *conn, HttpResponse *resp)
{
	JsonGuard  *guard;
	const char *why;
	struct json_object *root;
	struct json_object *error;
	struct json_object *description;
	StringInfoData text;
	char	   *result;

	if (resp->body == NULL ||
		(root = http_parse_json(resp->body, &guard, &why)) == NULL)
		return NULL;

	initStringInfo(&text);
	if (json_object_is_type(root, json_type_object))
	{
		if (json_object_object_get_ex(root, "error", &error) &&
			json_object_is_type(error, json_type_string))
			appendStringInfoString(&text, json_object_get_string(error));
		if (json_object_object_get_ex(root, "error_description", &description) &&
			json_object_is_type(description, json_type_string))
			appendStringInfo(&text, "%s%s", text.len > 0 ? ": " : "",
							 json_object_get_string(description));
	}
	http_json_release(guard);

	if (text.len == 0)
		return NULL;
	if (conn->client_secret[0] != '\0' && strstr(text.data, conn->client_secret))
		return pstrdup("(withheld: it quotes the client secret)");
	result = text_excerpt(text.data, text.len);
	pfree(text.data);
	return result;
}

/* Copy a plausible token: printable ASCII only, as it goes into a header. */
static bool
copy_token(struct json_object *root, char *token, size_t tokenlen)
{
	struct json_object *value;
	const char *s;
	size_t		len;

	if (!json_object_object_get_ex(root, "access_token", &value) ||
		!json_object_is_type(value, json_type_string))
		return false;
	s = json_object_get_string(value);
	len = strlen(s);
	if (len == 0 || len >= tokenlen)
		return false;
	for (size_t i = 0; i < len; i++)
	{
		if (s[i] <= ' ' || s[i] > '~')
			return false;
	}
	memcpy(token, s, len + 1);
	return true;
}

/* Interruptible sleep until t. */
static void
sleep_until(TimestampTz t)
{
	for (;;)
	{
		long		ms = (long) ((t - GetCurrentTimestamp() + 999) / 1000);

		if (ms <= 0)
			return;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 ms, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

static bool
read_expires_in(struct json_object *root, int64 *expires_in)
{
	struct json_object *value;

	if (!json_object_object_get_ex(root, "expires_in", &value) ||
		!(json_object_is_type(value, json_type_int) ||
		  json_object_is_type(value, json_type_double)))
		return false;
	*expires_in = json_object_get_int64(value);
	if (*expires_in < 0)
		return false;
	*expires_in = Min(*expires_in, MAX_EXPIRES_IN);
	return true;
}

/*
 * The token and its lifetime from the identity service's answer, or an
 * error.  Marketo hands out the live token with its *remaining* seconds,
 * possibly few; the governor decides how long it is worth sharing.
 */
static void
read_token(const MarketoConn *conn, const HttpRequest *req,
		   HttpResponse *resp, int retries, char *token, size_t tokenlen,
		   int64 *expires_in)
{
	JsonGuard  *guard;
	struct json_object *root;
	const char *why;
	bool		ok;

	if (resp->too_large)
		raise_invalid_response(conn, req, "the answer is too large", NULL);
	if (resp->curl_code != CURLE_OK)
		raise_transport_error(conn, req, resp, retries);
	if (resp->status != 200)
		raise_identity_error(conn, resp->status, oauth_error(conn, resp),
							 retries);

	root = http_parse_json(resp->body, &guard, &why);
	explicit_bzero(resp->body->data, resp->body->maxlen);
	/* no excerpt: the body may hold a token */
	if (root == NULL)
		raise_invalid_response(conn, req, why, NULL);

	ok = json_object_is_type(root, json_type_object) &&
		copy_token(root, token, tokenlen) &&
		read_expires_in(root, expires_in);
	http_json_release(guard);
	if (!ok)
		raise_invalid_response(conn, req,
							   "the answer has no usable access_token and expires_in",
							   NULL);
}

/*
 * Call the identity service, retrying lost answers and gateway errors
 * like any idempotent call, and return a token and its expiry.
 */
static void
fetch_token(const MarketoConn *conn, char *token, size_t tokenlen,
			TimestampTz *expires_at, MarketoCallStats *stats)
{
	HttpRequest req;
	HttpResponse resp;
	TimestampTz sent_at = 0;
	int			retries = 0;
	int64		expires_in = 0;

	memset(&req, 0, sizeof(HttpRequest));
	req.method = req.http_method = "GET";
	req.path = IDENTITY_PATH;
	req.idempotent = true;
	req.secret = true;
	req.max_response = MAX_IDENTITY_RESPONSE;
	req.url = identity_url(conn);

	PG_TRY();
	{
		for (;;)
		{
			/* measured before sending: the lifetime runs from Marketo's clock */
			sent_at = GetCurrentTimestamp();
			if (stats)
				stats->token_fetches++;
			http_perform(conn, &req, NULL, &resp);
			if (retries >= marketo_max_retries || !identity_transient(&resp))
				break;
			governor_backoff(conn, retries++);
		}
	}
	PG_FINALLY();
	{
		explicit_bzero(req.url, strlen(req.url));
		pfree(req.url);
	}
	PG_END_TRY();
	req.url = NULL;

	read_token(conn, &req, &resp, retries, token, tokenlen, &expires_in);
	*expires_at = sent_at + expires_in * USECS_PER_SEC;
}

/*
 * A valid access token for conn into token[tokenlen]: the shared one, or
 * one this backend fetches for everybody.  Also raises the governor's
 * error when the library was not preloaded.
 */
void
token_acquire(const MarketoConn *conn, char *token, size_t tokenlen,
			  MarketoCallStats *stats)
{
	TimestampTz expires_at;

	if (governor_token_get(conn, token, tokenlen))
		return;

	/* other backends wait for this one: tell the governor if we fail */
	PG_TRY();
	{
		/*
		 * Marketo hands back its current token while it lives, even with a
		 * second left (§1 of the API notes); such a token would only earn a
		 * 602.  Wait it out and ask again, a couple of times at most.
		 */
		for (int tries = 0;; tries++)
		{
			fetch_token(conn, token, tokenlen, &expires_at, stats);
			if (tries >= 2 ||
				expires_at > TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
														 DYING_TOKEN_MS))
				break;
			sleep_until(TimestampTzPlusMilliseconds(expires_at, 1000));
		}
		governor_token_put(conn, token, expires_at);
	}
	PG_CATCH();
	{
		governor_token_abandon(conn);
		PG_RE_THROW();
	}
	PG_END_TRY();
}
