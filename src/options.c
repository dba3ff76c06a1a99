/*-------------------------------------------------------------------------
 * options.c
 *		Option validation and lookup for servers, user mappings, foreign
 *		tables and columns.
 *
 * One table lists every option with the catalog it belongs to and how its
 * value is checked, so the validator, the error hints and the lookups all
 * agree.  Values of client_id and client_secret are never echoed.
 *-------------------------------------------------------------------------
 */
#include "marketo_fdw.h"

#include <arpa/inet.h>

#include "access/htup_details.h"
#include "access/reloptions.h"
#include "catalog/pg_foreign_server.h"
#include "catalog/pg_foreign_table.h"
#include "catalog/pg_user_mapping.h"
#include "catalog/pg_attribute.h"
#include "commands/defrem.h"
#include "foreign/foreign.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "access/table.h"

#include "options.h"

typedef enum OptionCheck
{
	CHECK_URL,
	CHECK_INT,
	CHECK_TEXT,
	CHECK_SECRET,				/* text whose value is never printed */
	CHECK_OBJECT,
	CHECK_INTERVAL,
	CHECK_CHOICE
} OptionCheck;

typedef struct MarketoOption
{
	const char *name;
	Oid			catalog;
	OptionCheck check;
	int64		min;			/* CHECK_INT */
	int64		max;
	const char *const *choices; /* CHECK_CHOICE; NULL-ended */
	bool		superuser_only;
} MarketoOption;

static const char *const write_modes[] = {"commit", "bulk", "queue", NULL};
static const char *const actions[] = {"createOrUpdate", "createOnly", "updateOnly", NULL};
static const char *const record_error_modes[] = {"error", "warning", NULL};

static const MarketoOption options[] = {
	{"base_url", ForeignServerRelationId, CHECK_URL},
	{"rate_limit", ForeignServerRelationId, CHECK_INT, 1, MARKETO_MAX_RATE_LIMIT},
	{"max_concurrency", ForeignServerRelationId, CHECK_INT, 1, MARKETO_MAX_CONCURRENCY},
	{"daily_quota", ForeignServerRelationId, CHECK_INT, 1, INT64CONST(100000000)},
	{"bulk_export_mb", ForeignServerRelationId, CHECK_INT, 1, 1000000},
	{"request_timeout", ForeignServerRelationId, CHECK_INT, 1, 3600},
	{"ca_file", ForeignServerRelationId, CHECK_TEXT, .superuser_only = true},

	{"client_id", UserMappingRelationId, CHECK_SECRET},
	{"client_secret", UserMappingRelationId, CHECK_SECRET},

	{"object", ForeignTableRelationId, CHECK_OBJECT},
	{"cache_ttl", ForeignTableRelationId, CHECK_INTERVAL},
	{"write_mode", ForeignTableRelationId, CHECK_CHOICE, .choices = write_modes},
	{"lookup_field", ForeignTableRelationId, CHECK_TEXT},
	{"action", ForeignTableRelationId, CHECK_CHOICE, .choices = actions},
	{"partition_name", ForeignTableRelationId, CHECK_TEXT},
	{"on_record_error", ForeignTableRelationId, CHECK_CHOICE, .choices = record_error_modes},

	{"field", AttributeRelationId, CHECK_TEXT},
};

/* Options a catalog cannot do without. */
static const struct
{
	Oid			catalog;
	const char *name;
}			required_options[] = {
	{ForeignServerRelationId, "base_url"},
	{UserMappingRelationId, "client_id"},
	{UserMappingRelationId, "client_secret"},
	{ForeignTableRelationId, "object"},
};

static const MarketoOption *
find_option(const char *name, Oid catalog)
{
	for (int i = 0; i < lengthof(options); i++)
	{
		if (options[i].catalog == catalog && strcmp(options[i].name, name) == 0)
			return &options[i];
	}
	return NULL;
}

static char *
valid_option_names(Oid catalog)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (int i = 0; i < lengthof(options); i++)
	{
		if (options[i].catalog == catalog)
			appendStringInfo(&buf, "%s%s", buf.len > 0 ? ", " : "", options[i].name);
	}
	return buf.data;
}

/*
 * host[:port] names this machine: localhost, [::1] or an IPv4 address in
 * 127.0.0.0/8 (a DNS name merely starting with "127." is not one).
 */
bool
marketo_host_is_loopback(const char *instance)
{
	char	   *host = pstrdup(instance);
	struct in_addr addr;
	bool		loopback;

	if (host[0] == '[')
	{
		char	   *bracket = strchr(host, ']');

		if (bracket != NULL)
			bracket[1] = '\0';
	}
	else if (strchr(host, ':') != NULL)
		*strchr(host, ':') = '\0';

	loopback = pg_strcasecmp(host, "localhost") == 0 ||
		strcmp(host, "[::1]") == 0 ||
		(inet_pton(AF_INET, host, &addr) == 1 &&
		 (ntohl(addr.s_addr) >> 24) == 127);
	pfree(host);
	return loopback;
}

/* host[:port] is a Marketo REST host: <munchkin>.mktorest.com */
static bool
is_marketo_host(const char *host)
{
	const char *suffix = ".mktorest.com";
	size_t		len = strlen(host);
	size_t		slen = strlen(suffix);

	return len > slen && pg_strcasecmp(host + len - slen, suffix) == 0;
}

/*
 * Split a base URL into its normalised form (no trailing "/" or "/rest")
 * and its host[:port], or raise an error saying what is wrong with it.
 */
static void
parse_base_url(const char *url, bool setting, char **base_url, char **instance)
{
	const char *rest;
	const char *host_end;
	bool		https;
	char	   *host;
	char	   *path;
	int			len;

	if (strncmp(url, "https://", 8) == 0)
		https = true;
	else if (strncmp(url, "http://", 7) == 0)
		https = false;
	else
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
				 errmsg("invalid base_url \"%s\"", url),
				 errhint("Use the REST endpoint of the instance, such as https://123-ABC-456.mktorest.com.")));

	rest = url + (https ? 8 : 7);
	host_end = rest + strcspn(rest, "/?#");
	if (host_end == rest || *host_end == '?' || *host_end == '#' ||
		strpbrk(rest, "@ \t\r\n\\") != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
				 errmsg("invalid base_url \"%s\"", url),
				 errhint("Use the REST endpoint of the instance, such as https://123-ABC-456.mktorest.com.")));

	host = pnstrdup(rest, host_end - rest);
	path = pstrdup(host_end);
	len = strlen(path);
	while (len > 0 && path[len - 1] == '/')
		path[--len] = '\0';
	if (len >= 5 && strcmp(path + len - 5, "/rest") == 0)
		path[len -= 5] = '\0';
	while (len > 0 && path[len - 1] == '/')
		path[--len] = '\0';
	if (len > 0)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
				 errmsg("invalid base_url \"%s\"", url),
				 errdetail("The URL may end in /rest but have no other path.")));

	if (!https)
	{
		if (!marketo_host_is_loopback(host))
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
					 errmsg("base_url must use https"),
					 errdetail("Plain http is allowed only for loopback hosts, for testing.")));
	}

	/*
	 * The backend calls whatever host base_url names; letting any user aim
	 * it at an internal service would be a server-side request forgery.
	 * Checked when the option is set: a superuser's server stays usable.
	 */
	if (setting && !superuser() && !is_marketo_host(host))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("only superusers may set a base_url outside *.mktorest.com"),
				 errdetail("The host is \"%s\".", host)));

	if (base_url)
		*base_url = psprintf("%s://%s", https ? "https" : "http", host);
	if (instance)
		*instance = host;
}

static int64
parse_int_option(const char *name, const char *value, int64 min, int64 max)
{
	char	   *end;
	int64		v;

	errno = 0;
	v = strtoi64(value, &end, 10);
	if (errno != 0 || end == value || *end != '\0' || v < min || v > max)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
				 errmsg("invalid value for option \"%s\": \"%s\"", name, value),
				 errdetail("The value must be an integer from " INT64_FORMAT " to " INT64_FORMAT ".",
						   min, max)));
	return v;
}

static int64
parse_interval_ms(const char *name, const char *value)
{
	Interval   *iv;
	int64		ms;

	iv = DatumGetIntervalP(DirectFunctionCall3(interval_in,
											   CStringGetDatum(value),
											   ObjectIdGetDatum(InvalidOid),
											   Int32GetDatum(-1)));
	ms = iv->time / 1000 + (int64) iv->day * 86400000 +
		(int64) iv->month * 30 * 86400000;
	if (ms < 0)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
				 errmsg("invalid value for option \"%s\": \"%s\"", name, value),
				 errdetail("The interval must not be negative.")));
	return ms;
}

static void
check_option_value(const MarketoOption *opt, const char *value)
{
	switch (opt->check)
	{
		case CHECK_URL:
			parse_base_url(value, true, NULL, NULL);
			break;
		case CHECK_INT:
			(void) parse_int_option(opt->name, value, opt->min, opt->max);
			break;
		case CHECK_SECRET:
		case CHECK_TEXT:
			if (value[0] == '\0')
				ereport(ERROR,
						(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
						 errmsg("option \"%s\" must not be empty", opt->name)));
			break;
		case CHECK_OBJECT:
			if (marketo_object_lookup(value) == NULL)
				ereport(ERROR,
						(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
						 errmsg("unknown Marketo object \"%s\"", value),
						 errhint("Valid objects are: %s.", marketo_object_names())));
			break;
		case CHECK_INTERVAL:
			(void) parse_interval_ms(opt->name, value);
			break;
		case CHECK_CHOICE:
			{
				StringInfoData valid;

				for (const char *const *c = opt->choices; *c; c++)
				{
					if (strcmp(*c, value) == 0)
						return;
				}
				initStringInfo(&valid);
				for (const char *const *c = opt->choices; *c; c++)
					appendStringInfo(&valid, "%s%s", valid.len ? ", " : "", *c);
				ereport(ERROR,
						(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
						 errmsg("invalid value for option \"%s\": \"%s\"", opt->name, value),
						 errhint("Valid values are: %s.", valid.data)));
			}
			break;
	}
}

/*
 * The validator: every option known for its catalog, each value checked,
 * required options present, superuser-only options set by a superuser.
 */
void
marketo_validate_options(List *options_list, Oid catalog)
{
	ListCell   *lc;
	const char *object = NULL;
	bool		has_write_option = false;

	foreach(lc, options_list)
	{
		DefElem    *def = lfirst_node(DefElem, lc);
		const MarketoOption *opt = find_option(def->defname, catalog);
		const char *value;

		if (opt == NULL)
		{
			char	   *valid = valid_option_names(catalog);

			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
					 errmsg("invalid option \"%s\"", def->defname),
					 valid[0] ? errhint("Valid options in this context are: %s.", valid)
					 : errhint("There are no valid options in this context.")));
		}
		if (opt->superuser_only && !superuser())
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("only superusers may set option \"%s\"", opt->name)));

		value = defGetString(def);
		check_option_value(opt, value);

		if (strcmp(opt->name, "object") == 0)
			object = value;
		else if (catalog == ForeignTableRelationId &&
				 strcmp(opt->name, "cache_ttl") != 0)
			has_write_option = true;
	}

	/*
	 * The FDW itself takes no options, so only the catalogs with required
	 * options are checked for them.
	 */
	for (int i = 0; i < lengthof(required_options); i++)
	{
		bool		found = false;

		if (required_options[i].catalog != catalog)
			continue;
		foreach(lc, options_list)
		{
			if (strcmp(lfirst_node(DefElem, lc)->defname, required_options[i].name) == 0)
				found = true;
		}
		if (!found)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
					 errmsg("option \"%s\" is required", required_options[i].name)));
	}

	if (has_write_option && object != NULL && strcmp(object, "leads") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
				 errmsg("write options are valid only for object \"leads\"")));
}

static const char *
option_value(List *opts, const char *name)
{
	ListCell   *lc;

	foreach(lc, opts)
	{
		DefElem    *def = lfirst_node(DefElem, lc);

		if (strcmp(def->defname, name) == 0)
			return defGetString(def);
	}
	return NULL;
}

static int64
int_option(List *opts, const char *name, int64 dflt)
{
	const char *value = option_value(opts, name);
	const MarketoOption *opt = find_option(name, ForeignServerRelationId);

	if (value == NULL)
		return dflt;
	return parse_int_option(name, value, opt->min, opt->max);
}

MarketoConn *
marketo_conn_for_server(Oid serverid, Oid userid)
{
	ForeignServer *server = GetForeignServer(serverid);
	UserMapping *mapping = GetUserMapping(userid, serverid);
	MarketoConn *conn = palloc0(sizeof(MarketoConn));
	const char *url = option_value(server->options, "base_url");

	if (url == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
				 errmsg("server \"%s\" has no base_url", server->servername)));
	conn->serverid = serverid;
	conn->userid = userid;
	parse_base_url(url, false, &conn->base_url, &conn->instance);
	conn->rate_limit = int_option(server->options, "rate_limit", 50);
	conn->max_concurrency = int_option(server->options, "max_concurrency", 5);
	conn->daily_quota = int_option(server->options, "daily_quota", 10000);
	conn->bulk_export_mb = int_option(server->options, "bulk_export_mb", 500);
	conn->request_timeout = int_option(server->options, "request_timeout", 60);
	conn->ca_file = (char *) option_value(server->options, "ca_file");
	conn->client_id = (char *) option_value(mapping->options, "client_id");
	conn->client_secret = (char *) option_value(mapping->options, "client_secret");
	if (conn->client_id == NULL || conn->client_secret == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
				 errmsg("user mapping for server \"%s\" needs client_id and client_secret",
						server->servername)));
	return conn;
}

MarketoConn *
marketo_conn_for_table(Oid foreigntableid)
{
	ForeignTable *table = GetForeignTable(foreigntableid);

	return marketo_conn_for_server(table->serverid, GetUserId());
}

MarketoTableOptions *
marketo_table_options(Oid foreigntableid)
{
	ForeignTable *table = GetForeignTable(foreigntableid);
	MarketoTableOptions *opts = palloc0(sizeof(MarketoTableOptions));
	const char *object = option_value(table->options, "object");

	if (object == NULL || (opts->object = marketo_object_lookup(object)) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_TABLE_NOT_FOUND),
				 errmsg("foreign table \"%s\" names no known Marketo object",
						get_rel_name(foreigntableid)),
				 errhint("Valid objects are: %s.", marketo_object_names())));
	return opts;
}

/* first_name -> firstName */
char *
marketo_field_from_column_name(const char *colname)
{
	char	   *field = palloc(strlen(colname) + 1);
	char	   *out = field;
	bool		upper_next = false;

	for (const char *c = colname; *c; c++)
	{
		if (*c == '_' && out != field)
			upper_next = true;
		else
		{
			*out++ = upper_next ? pg_toupper((unsigned char) *c) : *c;
			upper_next = false;
		}
	}
	*out = '\0';
	return field;
}

List *
marketo_table_columns(Oid foreigntableid)
{
	Relation	rel = table_open(foreigntableid, AccessShareLock);
	TupleDesc	tupdesc = RelationGetDescr(rel);
	List	   *columns = NIL;

	for (int i = 0; i < tupdesc->natts; i++)
	{
		Form_pg_attribute attr = TupleDescAttr(tupdesc, i);
		MarketoColumn *col = palloc0(sizeof(MarketoColumn));
		const char *field;

		col->attnum = attr->attnum;
		col->dropped = attr->attisdropped;
		col->name = pstrdup(NameStr(attr->attname));
		if (!col->dropped)
		{
			field = option_value(GetForeignColumnOptions(foreigntableid, attr->attnum),
								 "field");
			col->field = field ? pstrdup(field)
				: marketo_field_from_column_name(col->name);
			col->field_given = field != NULL;
		}
		columns = lappend(columns, col);
	}
	table_close(rel, AccessShareLock);
	return columns;
}
