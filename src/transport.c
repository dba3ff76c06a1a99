/*-------------------------------------------------------------------------
 * transport.c
 *		HTTP over libcurl for marketo_fdw: one easy handle per backend,
 *		reused so that TCP connections and TLS sessions stay open across
 *		the pages of a scan, every option set afresh for each request.
 *
 * Nothing here decides what an answer means (http.c does); this file
 * only gets the bytes there and back, interruptibly, without letting a
 * secret reach a message.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <curl/curl.h>

#include "miscadmin.h"
#include "utils/wait_event.h"

#include "http_internal.h"

#define USER_AGENT				"marketo_fdw/1.0"

/*
 * One easy handle for the life of the backend, so that its connection
 * cache keeps TCP and TLS sessions open across the pages of a scan.
 */
static CURL *curl_handle = NULL;
static bool curl_busy = false;	/* inside curl_easy_perform */
static char curl_errbuf[CURL_ERROR_SIZE];

/*
 * The request's header list.  Kept here rather than in a local so that a
 * list built by a request that then failed is freed by the next one.
 */
static struct curl_slist *request_headers = NULL;

/* Collects a response body, refusing more than limit bytes. */
typedef struct BodySink
{
	StringInfo	buf;
	size_t		limit;
	bool		too_large;
	bool		out_of_memory;
} BodySink;

#define SETOPT(handle, option, value) \
	do { \
		CURLcode	setopt_rc_ = curl_easy_setopt((handle), (option), (value)); \
		if (setopt_rc_ != CURLE_OK) \
			elog(ERROR, "could not set libcurl option %s: %s", \
				 #option, curl_easy_strerror(setopt_rc_)); \
	} while (0)


void
http_init(void)
{
	static bool done = false;
	CURLcode	rc;

	if (done)
		return;
	rc = curl_global_init(CURL_GLOBAL_ALL);
	if (rc != CURLE_OK)
		ereport(ERROR,
				(errcode(ERRCODE_SYSTEM_ERROR),
				 errmsg("could not initialize libcurl: %s",
						curl_easy_strerror(rc))));
	done = true;
}

/* The backend's easy handle, with every option back at its default. */
static CURL *
curl_handle_get(void)
{
	/*
	 * A transfer left by a longjmp would leave the handle in an unknown
	 * state.  The callbacks never raise errors, so this is a backstop only.
	 */
	if (curl_busy && curl_handle != NULL)
	{
		curl_easy_cleanup(curl_handle);
		curl_handle = NULL;
	}
	curl_busy = false;

	if (curl_handle == NULL)
	{
		http_init();
		curl_handle = curl_easy_init();
		if (curl_handle == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("could not create a libcurl handle")));
	}

	/* Options of the previous request (timeouts, CA file) must not leak. */
	curl_easy_reset(curl_handle);
	return curl_handle;
}

/*
 * libcurl write callback.  It must not raise an error (a longjmp through
 * libcurl corrupts the handle), so it grows the buffer with NO_OOM and
 * reports trouble through flags; returning less than it was given makes
 * libcurl stop with CURLE_WRITE_ERROR.
 */
static size_t
body_write(char *data, size_t size, size_t nmemb, void *arg)
{
	BodySink   *sink = (BodySink *) arg;
	StringInfo	buf = sink->buf;
	size_t		n = size * nmemb;
	size_t		need = (size_t) buf->len + n + 1;

	if (need > sink->limit + 1)
	{
		sink->too_large = true;
		return 0;
	}
	if (need > (size_t) buf->maxlen)
	{
		size_t		newlen = Min(Max((size_t) buf->maxlen * 2, need),
								 sink->limit + 1);
		char	   *grown = palloc_extended(newlen, MCXT_ALLOC_NO_OOM);

		if (grown == NULL)
		{
			sink->out_of_memory = true;
			return 0;
		}
		memcpy(grown, buf->data, buf->len + 1);
		pfree(buf->data);
		buf->data = grown;
		buf->maxlen = (int) newlen;
	}
	memcpy(buf->data + buf->len, data, n);
	buf->len += (int) n;
	buf->data[buf->len] = '\0';
	return n;
}

/*
 * libcurl progress callback, called about once a second even while idle:
 * abort the transfer when PostgreSQL wants to cancel or terminate.  The
 * caller then runs CHECK_FOR_INTERRUPTS, so the error the user sees is
 * PostgreSQL's own (57014 for a cancel or statement_timeout).
 */
static int
transfer_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow,
				  curl_off_t ultotal, curl_off_t ulnow)
{
	if (InterruptPending && (QueryCancelPending || ProcDiePending) &&
		INTERRUPTS_CAN_BE_PROCESSED())
		return 1;
	return 0;
}

static void
headers_reset(void)
{
	/* Scrub before freeing: one of them carries the access token. */
	for (struct curl_slist *h = request_headers; h != NULL; h = h->next)
		explicit_bzero(h->data, strlen(h->data));
	curl_slist_free_all(request_headers);
	request_headers = NULL;
}

static void
headers_add(const char *header)
{
	struct curl_slist *list = curl_slist_append(request_headers, header);

	/* on failure libcurl leaves the list as it was */
	if (list == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	request_headers = list;
}

static void
headers_build(const HttpRequest *req, const char *token)
{
	headers_reset();
	headers_add("Accept: application/json");
	/* no "Expect: 100-continue" round trip before larger POST bodies */
	headers_add("Expect:");
	if (req->content_type)
	{
		char		header[128];

		snprintf(header, sizeof(header), "Content-Type: %s", req->content_type);
		headers_add(header);
	}
	if (token)
	{
		char		header[MARKETO_TOKEN_BUFSIZE + 32];

		snprintf(header, sizeof(header), "Authorization: Bearer %s", token);
		headers_add(header);
		explicit_bzero(header, sizeof(header));
	}
}

/*
 * options.c already allows plain http only to loopback hosts; check again
 * where the bytes leave, so no other path can send a token in clear text.
 */
static void
check_transport_security(const MarketoConn *conn)
{
	if (strncmp(conn->base_url, "https://", 8) == 0)
		return;
	if (strncmp(conn->base_url, "http://", 7) == 0 &&
		marketo_host_is_loopback(conn->instance))
		return;
	ereport(ERROR,
			(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
			 errmsg("refusing to call Marketo instance %s without TLS",
					conn->instance),
			 errdetail("Plain http is allowed only for loopback hosts, for testing.")));
}

static void
set_options(CURL *h, const MarketoConn *conn, const HttpRequest *req,
			BodySink *sink)
{
	SETOPT(h, CURLOPT_URL, req->url);
	SETOPT(h, CURLOPT_ERRORBUFFER, curl_errbuf);
	/* PostgreSQL owns SIGALRM; libcurl must not use it for DNS timeouts */
	SETOPT(h, CURLOPT_NOSIGNAL, 1L);
#if LIBCURL_VERSION_NUM >= 0x075500
	SETOPT(h, CURLOPT_PROTOCOLS_STR, "http,https");
#else
	SETOPT(h, CURLOPT_PROTOCOLS, (long) (CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	SETOPT(h, CURLOPT_FOLLOWLOCATION, 0L);
	SETOPT(h, CURLOPT_SSL_VERIFYPEER, 1L);
	SETOPT(h, CURLOPT_SSL_VERIFYHOST, 2L);
	if (conn->ca_file)
		SETOPT(h, CURLOPT_CAINFO, conn->ca_file);
	SETOPT(h, CURLOPT_CONNECTTIMEOUT, (long) conn->request_timeout);
	SETOPT(h, CURLOPT_TIMEOUT, (long) conn->request_timeout);
	SETOPT(h, CURLOPT_TCP_KEEPALIVE, 1L);
	SETOPT(h, CURLOPT_USERAGENT, USER_AGENT);
	SETOPT(h, CURLOPT_ACCEPT_ENCODING, "");
	SETOPT(h, CURLOPT_WRITEFUNCTION, body_write);
	SETOPT(h, CURLOPT_WRITEDATA, sink);
	SETOPT(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t) sink->limit);
	SETOPT(h, CURLOPT_NOPROGRESS, 0L);
	SETOPT(h, CURLOPT_XFERINFOFUNCTION, transfer_progress);

	if (strcmp(req->http_method, "POST") == 0)
	{
		const char *body = req->body ? req->body : "";

		SETOPT(h, CURLOPT_POST, 1L);
		SETOPT(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) strlen(body));
		SETOPT(h, CURLOPT_POSTFIELDS, body);
	}
	else
		SETOPT(h, CURLOPT_HTTPGET, 1L);
}

/*
 * Did the request certainly never reach Marketo (so it was not counted)?
 */
bool
http_transport_never_sent(CURLcode code)
{
	switch (code)
	{
		case CURLE_COULDNT_RESOLVE_HOST:
		case CURLE_COULDNT_CONNECT:
		case CURLE_SSL_CONNECT_ERROR:
		case CURLE_UNSUPPORTED_PROTOCOL:
		case CURLE_URL_MALFORMAT:
		case CURLE_PEER_FAILED_VERIFICATION:
			return true;
		default:
			return false;
	}
}

/*
 * Could the same request succeed if sent again?  Lost connections and
 * timeouts, yes; a certificate, name or URL that is wrong, no.
 */
bool
http_transport_is_transient(CURLcode code)
{
	switch (code)
	{
		case CURLE_COULDNT_CONNECT:
		case CURLE_OPERATION_TIMEDOUT:
		case CURLE_PARTIAL_FILE:
		case CURLE_GOT_NOTHING:
		case CURLE_SEND_ERROR:
		case CURLE_RECV_ERROR:
		case CURLE_SSL_CONNECT_ERROR:
		case CURLE_HTTP2:
		case CURLE_HTTP2_STREAM:
			return true;
		default:
			return false;
	}
}

/*
 * Send one request and wait for its answer, interruptibly.  Transport
 * failures come back in resp; only interrupts and out-of-memory raise.
 */
void
http_perform(const MarketoConn *conn, const HttpRequest *req,
			 const char *token, HttpResponse *resp)
{
	CURL	   *h;
	BodySink	sink;

	check_transport_security(conn);
	h = curl_handle_get();

	memset(resp, 0, sizeof(HttpResponse));
	resp->body = makeStringInfo();
	sink.buf = resp->body;
	sink.limit = req->max_response;
	sink.too_large = false;
	sink.out_of_memory = false;

	set_options(h, conn, req, &sink);
	headers_build(req, token);
	SETOPT(h, CURLOPT_HTTPHEADER, request_headers);

	curl_errbuf[0] = '\0';
	curl_busy = true;
	pgstat_report_wait_start(PG_WAIT_EXTENSION);
	resp->curl_code = curl_easy_perform(h);
	pgstat_report_wait_end();
	curl_busy = false;

	headers_reset();
	if (resp->curl_code == CURLE_OK)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);

	/* libcurl's message may quote the URL, which may hold the secret */
	if (req->secret || curl_errbuf[0] == '\0')
		strlcpy(resp->curl_error, curl_easy_strerror(resp->curl_code),
				sizeof(resp->curl_error));
	else
		strlcpy(resp->curl_error, curl_errbuf, sizeof(resp->curl_error));
	explicit_bzero(curl_errbuf, sizeof(curl_errbuf));

	/*
	 * Drop the options now: they point at this stack frame, the freed
	 * headers and libcurl's copy of the URL.  The connection stays open.
	 */
	curl_easy_reset(h);

	if (resp->curl_code == CURLE_ABORTED_BY_CALLBACK)
	{
		CHECK_FOR_INTERRUPTS();
		/* interrupts were pending but are not to be processed here */
		ereport(ERROR,
				(errcode(ERRCODE_QUERY_CANCELED),
				 errmsg("canceling Marketo request because of a pending interrupt")));
	}
	if (sink.out_of_memory)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory"),
				 errdetail("Failed while reading an answer from Marketo.")));
	if (sink.too_large || resp->curl_code == CURLE_FILESIZE_EXCEEDED)
		resp->too_large = true;
}
