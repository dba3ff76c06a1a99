/*-------------------------------------------------------------------------
 * import.c
 *		IMPORT FOREIGN SCHEMA marketo FROM SERVER s INTO local_schema.
 *
 * One foreign table per Marketo object; columns from the instance's own
 * describe (custom fields included), named in snake_case, with a field
 * option wherever the name alone would not lead back to the field.
 *-------------------------------------------------------------------------
 */
#include "marketo_fdw.h"

#include "foreign/foreign.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/builtins.h"

#include "describe.h"
#include "import.h"
#include "objects.h"
#include "options.h"

#define MARKETO_REMOTE_SCHEMA	"marketo"

/* Marketo dataType -> PostgreSQL type; anything unknown reads as text. */
static const struct
{
	const char *data_type;
	const char *pg_type;
}			type_map[] = {
	{"integer", "integer"},
	{"score", "integer"},
	/* percent fields are declared integer but carry decimals */
	{"percent", "numeric"},
	{"float", "double precision"},
	{"currency", "numeric"},
	{"boolean", "boolean"},
	{"date", "date"},
	{"datetime", "timestamptz"},
	{"array", "jsonb"},
};

static const char *
pg_type_for(const char *data_type)
{
	for (int i = 0; i < lengthof(type_map); i++)
	{
		if (strcmp(type_map[i].data_type, data_type) == 0)
			return type_map[i].pg_type;
	}
	return "text";
}

/* firstName -> first_name; sfdcLeadID -> sfdc_lead_id */
static char *
snake_case(const char *name)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (const char *c = name; *c; c++)
	{
		bool		upper = (*c >= 'A' && *c <= 'Z');
		bool		prev_lower = c > name && ((c[-1] >= 'a' && c[-1] <= 'z') ||
											  (c[-1] >= '0' && c[-1] <= '9'));
		bool		next_lower = c[1] >= 'a' && c[1] <= 'z';
		bool		prev_upper = c > name && c[-1] >= 'A' && c[-1] <= 'Z';

		if (upper && (prev_lower || (prev_upper && next_lower)))
			appendStringInfoChar(&buf, '_');
		appendStringInfoChar(&buf, upper ? *c - 'A' + 'a' : *c);
	}
	return buf.data;
}

/*
 * The column for a field: its snake_case name, cut to what an identifier
 * holds and numbered if two fields come to the same name (mobilePhone and
 * Mobile_Phone).
 */
static char *
unique_column_name(const char *field, List **used)
{
	char	   *name = snake_case(field);
	char	   *column;

	name[pg_mbcliplen(name, strlen(name), NAMEDATALEN - 1)] = '\0';
	column = name;
	for (int n = 2; list_member(*used, makeString(column)); n++)
	{
		char		suffix[16];
		int			keep;

		snprintf(suffix, sizeof(suffix), "_%d", n);
		keep = pg_mbcliplen(name, strlen(name), NAMEDATALEN - 1 - strlen(suffix));
		column = psprintf("%.*s%s", keep, name, suffix);
	}
	*used = lappend(*used, makeString(column));
	return column;
}

static bool
wanted(ImportForeignSchemaStmt *stmt, const char *table)
{
	ListCell   *lc;
	bool		listed = false;

	foreach(lc, stmt->table_list)
	{
		if (strcmp(((RangeVar *) lfirst(lc))->relname, table) == 0)
			listed = true;
	}
	switch (stmt->list_type)
	{
		case FDW_IMPORT_SCHEMA_LIMIT_TO:
			return listed;
		case FDW_IMPORT_SCHEMA_EXCEPT:
			return !listed;
		default:
			return true;
	}
}

static char *
create_table_command(ImportForeignSchemaStmt *stmt, const MarketoObject *obj,
					 List *fields)
{
	StringInfoData cmd;
	ListCell   *lc;
	bool		first = true;
	List	   *used = NIL;

	initStringInfo(&cmd);
	appendStringInfo(&cmd, "CREATE FOREIGN TABLE %s (\n",
					 quote_identifier(obj->name));
	foreach(lc, fields)
	{
		MarketoFieldDesc *field = lfirst(lc);
		char	   *column = unique_column_name(field->name, &used);

		appendStringInfo(&cmd, "%s  %s %s", first ? "" : ",\n",
						 quote_identifier(column), pg_type_for(field->data_type));

		/*
		 * The field option is written wherever the name alone would not lead
		 * straight back to the field: a name changed to stay unique or short,
		 * or one word the planner would have to look up to be sure of its
		 * case (the option saves that describe call on every backend).
		 */
		if (strcmp(marketo_field_from_column_name(column), field->name) != 0 ||
			(strchr(column, '_') == NULL &&
			 !marketo_object_field_known(obj, field->name)))
			appendStringInfo(&cmd, " OPTIONS (field %s)",
							 quote_literal_cstr(field->name));
		first = false;
	}
	appendStringInfo(&cmd, "\n) SERVER %s OPTIONS (object %s)",
					 quote_identifier(stmt->server_name),
					 quote_literal_cstr(obj->name));
	return cmd.data;
}

List *
marketoImportForeignSchema(ImportForeignSchemaStmt *stmt, Oid serverOid)
{
	MarketoConn *conn;
	List	   *commands = NIL;

	if (strcmp(stmt->remote_schema, MARKETO_REMOTE_SCHEMA) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_SCHEMA_NOT_FOUND),
				 errmsg("Marketo has no schema \"%s\"", stmt->remote_schema),
				 errhint("Use IMPORT FOREIGN SCHEMA %s.", MARKETO_REMOTE_SCHEMA)));

	conn = marketo_conn_for_server(serverOid, GetUserId());
	for (int i = 0; i < marketo_object_count(); i++)
	{
		const MarketoObject *obj = marketo_object_at(i);

		if (!wanted(stmt, obj->name) || obj->describe_path == NULL)
			continue;
		commands = lappend(commands,
						   create_table_command(stmt, obj,
												marketo_describe_fields(conn, obj)));
	}
	return commands;
}
