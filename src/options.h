/*-------------------------------------------------------------------------
 * options.h
 *		Server, user mapping, foreign table and column options.
 *-------------------------------------------------------------------------
 */
#ifndef MARKETO_OPTIONS_H
#define MARKETO_OPTIONS_H

#include "postgres.h"
#include "access/attnum.h"
#include "nodes/pg_list.h"

#include "objects.h"

/*
 * Everything needed to call one Marketo instance as one API user: the
 * server's options merged with the user mapping's.  Built per query and
 * kept in the query's memory context.
 */
typedef struct MarketoConn
{
	Oid			serverid;
	Oid			userid;
	char	   *base_url;		/* scheme://host[:port], no trailing / or /rest */
	char	   *instance;		/* host[:port]: the governor's key */
	int			rate_limit;		/* calls per rate window (1..100) */
	int			max_concurrency;	/* calls in flight (1..10) */
	int64		daily_quota;	/* calls per Chicago day */
	int			bulk_export_mb; /* bulk extract MB per day */
	int			request_timeout;	/* seconds for one HTTP request */
	char	   *ca_file;		/* NULL: the system store */
	char	   *client_id;
	char	   *client_secret;	/* never printed anywhere */
} MarketoConn;

/*
 * A foreign table's options, as far as reading needs them.  cache_ttl and
 * the write options are validated already; the issues that use them add
 * them here.
 */
typedef struct MarketoTableOptions
{
	const MarketoObject *object;
} MarketoTableOptions;

/* One column: its attribute number and the Marketo field (path) it reads. */
typedef struct MarketoColumn
{
	AttrNumber	attnum;
	char	   *name;			/* the column's name */
	char	   *field;			/* Marketo field, or dotted path */
	bool		field_given;	/* by the field option, spelled as meant */
	bool		dropped;
} MarketoColumn;

extern MarketoConn *marketo_conn_for_table(Oid foreigntableid);
extern MarketoConn *marketo_conn_for_server(Oid serverid, Oid userid);
extern MarketoTableOptions *marketo_table_options(Oid foreigntableid);
extern List *marketo_table_columns(Oid foreigntableid);	/* of MarketoColumn */
extern char *marketo_field_from_column_name(const char *colname);
extern bool marketo_host_is_loopback(const char *instance);
extern void marketo_validate_options(List *options, Oid catalog);

#endif							/* MARKETO_OPTIONS_H */
