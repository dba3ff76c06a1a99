/*-------------------------------------------------------------------------
 * http.h
 *		Calls to Marketo: libcurl, access tokens, retries, error mapping.
 *-------------------------------------------------------------------------
 */
#ifndef MARKETO_HTTP_H
#define MARKETO_HTTP_H

#include "postgres.h"
#include "lib/stringinfo.h"

#include "options.h"

struct json_object;

/* What a scan spent, for EXPLAIN ANALYZE and the progress view. */
typedef struct MarketoCallStats
{
	int64		calls;			/* REST calls sent (identity calls excluded) */
	int64		retries;		/* calls repeated after 606/615/604/... */
	int64		token_fetches;	/* identity calls */
} MarketoCallStats;

/*
 * Call one REST endpoint of conn's instance and return the parsed envelope
 * of a successful answer (success: true).
 *
 * method is "GET" or "POST"; path starts with "/" ("/rest/v1/leads.json");
 * query is an already encoded "a=1&b=2" or NULL; json_body is sent as
 * application/json with POST, or NULL.  A GET whose URI would pass 8 KB is
 * sent as POST ?_method=GET with the query as a form body.
 *
 * Every call goes through the governor, carries "Authorization: Bearer",
 * repeats once with a fresh token on 601/602 and retries with backoff on
 * 606/615/604/608/611/502/503 up to marketo_fdw.max_retries.  Any other
 * failure is raised with ereport(ERROR).  The returned object is released
 * when CurrentMemoryContext is reset or deleted, so callers never free it.
 * stats may be NULL.
 */
extern struct json_object *marketo_call(MarketoConn *conn, const char *method,
										const char *path, const char *query,
										const char *json_body,
										MarketoCallStats *stats);

/* _PG_init: initialise libcurl once per process. */
extern void http_init(void);

/* Append name=value to an encoded query string, URL-encoding the value. */
extern void marketo_append_param(StringInfo query, const char *name,
								 const char *value);

/* Calls made by the current statement (marketo_fdw.max_calls_per_statement) */
extern int64 marketo_statement_calls(void);

#endif							/* MARKETO_HTTP_H */
