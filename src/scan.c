/*-------------------------------------------------------------------------
 * scan.c
 *		Begin, iterate, rescan and end a Marketo scan.
 *
 * A scan walks batches of filter values (at most 300 a call) and, inside
 * each batch, Marketo's pages.  A page is fetched only when the executor
 * asks for a row past the previous one, so a LIMIT stops the calls; its
 * JSON lives in a memory context reset when the next page comes.  Rows
 * already read are kept, so a rescan with the same filter values replays
 * them instead of spending the calls again.
 *-------------------------------------------------------------------------
 */
#include "marketo_fdw.h"

#include <json-c/json.h>

#include "executor/executor.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/tuplestore.h"

#include "convert.h"
#include "http.h"
#include "options.h"
#include "plan.h"
#include "progress.h"
#include "scan.h"

typedef struct MarketoScanState
{
	MarketoConn *conn;
	const MarketoObject *object;

	/* from the plan */
	char	   *filter_field;	/* NULL: no filter */
	bool		filter_is_array;
	Oid			filter_type;
	ExprState  *filter_value;
	char	   *fields;			/* the fields= value */
	int			est_calls;

	/* columns to fill: attnums and their converters */
	int			ncolumns;
	AttrNumber *attnums;
	char	  **paths;
	MarketoConverter *converters;

	/* the filter values of this pass, in batches */
	MemoryContext pass_cxt;		/* holds values */
	MemoryContext next_cxt;		/* a rescan's values, until compared */
	List	   *values;			/* String */
	int			next_value;		/* first value of the next batch */
	bool		values_ready;

	/* the page being read */
	MemoryContext page_cxt;
	struct json_object *page;	/* result array */
	int			page_len;
	int			page_row;
	char	   *next_page_token;	/* in page_cxt */
	bool		batch_open;		/* more pages of the current batch */

	/* rows read so far, replayed by a rescan with the same values */
	Tuplestorestate *rows;
	bool		pass_complete;
	bool		replaying;

	MarketoCallStats stats;
} MarketoScanState;

/*
 * The columns to fill, with the fields the planner resolved for them; the
 * relation's descriptor has the rest, so no column options are read again.
 */
static void
init_columns(MarketoScanState *st, Relation rel, List *attnums, List *paths)
{
	TupleDesc	tupdesc = RelationGetDescr(rel);
	ListCell   *lc;
	int			i = 0;

	st->ncolumns = list_length(attnums);
	st->attnums = palloc(sizeof(AttrNumber) * st->ncolumns);
	st->paths = palloc(sizeof(char *) * st->ncolumns);
	st->converters = palloc(sizeof(MarketoConverter) * st->ncolumns);
	foreach(lc, attnums)
	{
		Form_pg_attribute attr = TupleDescAttr(tupdesc, lfirst_int(lc) - 1);

		st->attnums[i] = attr->attnum;
		st->paths[i] = strVal(list_nth(paths, i));
		marketo_converter_init(&st->converters[i], attr->atttypid,
							   attr->atttypmod, NameStr(attr->attname),
							   st->paths[i]);
		i++;
	}
}

void
marketoBeginForeignScan(ForeignScanState *node, int eflags)
{
	ForeignScan *plan = (ForeignScan *) node->ss.ps.plan;
	List	   *private = plan->fdw_private;
	Relation	rel = node->ss.ss_currentRelation;
	MarketoScanState *st = palloc0(sizeof(MarketoScanState));
	const char *field = strVal(list_nth(private, PLAN_FILTER_FIELD));

	node->fdw_state = st;
	if (eflags & EXEC_FLAG_EXPLAIN_ONLY)
		return;

	st->conn = marketo_conn_for_table(RelationGetRelid(rel));
	st->object = marketo_table_options(RelationGetRelid(rel))->object;
	st->filter_field = field[0] ? pstrdup(field) : NULL;
	st->filter_is_array = intVal(list_nth(private, PLAN_FILTER_IS_ARRAY)) != 0;
	st->filter_type = intVal(list_nth(private, PLAN_FILTER_TYPE));
	st->fields = marketo_join_strings(list_nth(private, PLAN_FIELDS));
	st->est_calls = intVal(list_nth(private, PLAN_EST_CALLS));
	if (plan->fdw_exprs != NIL)
		st->filter_value = ExecInitExpr(linitial(plan->fdw_exprs),
										(PlanState *) node);
	init_columns(st, rel, list_nth(private, PLAN_ATTNUMS),
				 list_nth(private, PLAN_PATHS));

	st->page_cxt = AllocSetContextCreate(node->ss.ps.state->es_query_cxt,
										 "marketo_fdw page",
										 ALLOCSET_DEFAULT_SIZES);
	st->pass_cxt = AllocSetContextCreate(node->ss.ps.state->es_query_cxt,
										 "marketo_fdw filter values",
										 ALLOCSET_SMALL_SIZES);
	st->next_cxt = AllocSetContextCreate(node->ss.ps.state->es_query_cxt,
										 "marketo_fdw filter values",
										 ALLOCSET_SMALL_SIZES);
	/* keep rows only where the executor may ask for them again */
	if (eflags & (EXEC_FLAG_REWIND | EXEC_FLAG_BACKWARD))
		st->rows = tuplestore_begin_heap(false, false, work_mem);
	progress_begin(st->object->name, st->conn->instance);
}

/* Add one filter value, unless Marketo cannot be sent it. */
static List *
add_filter_value(MarketoScanState *st, List *values, Datum value, bool isnull)
{
	char	   *text;

	if (isnull)
		return values;
	text = marketo_datum_to_text(value, st->filter_type);

	/*
	 * filterValues is comma-separated, so a value with a comma cannot be
	 * asked for.  Marketo refuses such an email address, so no lead can
	 * match it and leaving it out keeps the answer right; for any other
	 * field it could match a lead we would then miss.
	 */
	if (strchr(text, ',') != NULL)
	{
		if (pg_strcasecmp(st->filter_field, "email") == 0)
			return values;
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_STRING_FORMAT),
				 errmsg("cannot look up a value containing a comma in Marketo field \"%s\"",
						st->filter_field),
				 errdetail("Value: %s", text),
				 errhint("Marketo's filterValues parameter is comma-separated.")));
	}
	return lappend(values, makeString(text));
}

static int
compare_values(const ListCell *a, const ListCell *b)
{
	return strcmp(strVal(lfirst(a)), strVal(lfirst(b)));
}

/*
 * Sorted, each value once: a duplicate would waste a slot of a 300-value
 * call, and a stable order lets a rescan see that its values are the same.
 * Sorting keeps this O(n log n) for long lists.
 */
static List *
sort_unique_values(List *values)
{
	List	   *unique = NIL;
	ListCell   *lc;
	char	   *prev = NULL;

	list_sort(values, compare_values);
	foreach(lc, values)
	{
		char	   *text = strVal(lfirst(lc));

		if (prev == NULL || strcmp(prev, text) != 0)
			unique = lappend(unique, lfirst(lc));
		prev = text;
	}
	list_free(values);
	return unique;
}

/* Evaluate the filter's values into cxt (parameters change between passes). */
static List *
evaluate_filter_values(MarketoScanState *st, ExprContext *econtext,
					   MemoryContext cxt)
{
	List	   *values = NIL;
	bool		isnull;
	Datum		value;
	MemoryContext old;

	if (st->filter_value == NULL)
		return NIL;
	old = MemoryContextSwitchTo(cxt);
	value = ExecEvalExpr(st->filter_value, econtext, &isnull);
	if (!st->filter_is_array)
		values = add_filter_value(st, values, value, isnull);
	else if (!isnull)
	{
		ArrayType  *arr = DatumGetArrayTypeP(value);
		int16		typlen;
		bool		typbyval;
		char		typalign;
		Datum	   *elems;
		bool	   *nulls;
		int			n;

		get_typlenbyvalalign(ARR_ELEMTYPE(arr), &typlen, &typbyval, &typalign);
		deconstruct_array(arr, ARR_ELEMTYPE(arr), typlen, typbyval, typalign,
						  &elems, &nulls, &n);
		for (int i = 0; i < n; i++)
			values = add_filter_value(st, values, elems[i], nulls[i]);
	}
	values = sort_unique_values(values);
	MemoryContextSwitchTo(old);
	return values;
}

/* marketo_fdw.max_calls_per_statement: refuse a scan that must exceed it. */
static void
check_call_budget(MarketoScanState *st)
{
	int			needed;

	if (marketo_max_calls_per_statement <= 0)
		return;
	needed = st->filter_field
		? marketo_filter_calls(list_length(st->values), st->object->max_filter_values)
		: st->est_calls;
	if (marketo_statement_calls() + needed > marketo_max_calls_per_statement)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("Marketo scan would need at least %d API calls, over marketo_fdw.max_calls_per_statement (%d)",
						needed, marketo_max_calls_per_statement)));
}

/* Start a pass over values (in pass_cxt). */
static void
use_values(MarketoScanState *st, List *values)
{
	st->values = values;
	st->next_value = 0;
	st->batch_open = false;
	st->values_ready = true;
	check_call_budget(st);
}

static void
start_pass(MarketoScanState *st, ExprContext *econtext)
{
	MemoryContextReset(st->pass_cxt);
	use_values(st, evaluate_filter_values(st, econtext, st->pass_cxt));
}

/* The query string of the next call of the current batch. */
static char *
build_query(MarketoScanState *st, int first_value, int nvalues)
{
	StringInfoData query;
	char		page_size[16];

	initStringInfo(&query);
	if (st->filter_field)
	{
		StringInfoData vals;

		initStringInfo(&vals);
		for (int i = first_value; i < first_value + nvalues; i++)
			appendStringInfo(&vals, "%s%s", vals.len ? "," : "",
							 strVal(list_nth(st->values, i)));
		marketo_append_param(&query, "filterType", st->filter_field);
		marketo_append_param(&query, "filterValues", vals.data);
		pfree(vals.data);
	}
	if (st->object->fields_param)
		marketo_append_param(&query, st->object->fields_param, st->fields);
	snprintf(page_size, sizeof(page_size), "%d", st->object->page_size);
	marketo_append_param(&query, st->object->page_size_param, page_size);
	if (st->next_page_token)
		marketo_append_param(&query, "nextPageToken", st->next_page_token);
	return query.data;
}

/*
 * The token of the page after the one in root, in page_cxt, or NULL at the
 * end of the data, by the object's paging style.
 */
static char *
next_page(MarketoScanState *st, struct json_object *root)
{
	struct json_object *token;

	switch (st->object->paging)
	{
		case PAGING_NEXT_PAGE_TOKEN:
			/* the end: no nextPageToken, or an empty result */
			token = json_object_object_get(root, "nextPageToken");
			if (token == NULL || json_object_get_string_len(token) == 0 ||
				st->page_len == 0)
				return NULL;
			return MemoryContextStrdup(st->page_cxt,
									   json_object_get_string(token));
	}
	return NULL;
}

/*
 * Fetch the next page: the next page of the open batch, or the first page
 * of the next batch.  Returns false when there is nothing left.
 */
static bool
fetch_page(MarketoScanState *st)
{
	struct json_object *root;
	struct json_object *result;
	int			batch_first;
	int			batch_len;
	char	   *query;
	MemoryContext old;

	if (!st->batch_open)
	{
		if (st->next_value >= list_length(st->values))
			return false;
		st->next_page_token = NULL;
	}
	batch_first = st->next_value;
	batch_len = Min(list_length(st->values) - batch_first,
					st->object->max_filter_values);

	/* the previous page's JSON and token go with its context */
	query = build_query(st, batch_first, batch_len);
	MemoryContextReset(st->page_cxt);
	st->page = NULL;
	progress_phase("fetching");
	old = MemoryContextSwitchTo(st->page_cxt);
	root = marketo_call(st->conn, "GET", st->object->path, query, NULL,
						&st->stats);
	MemoryContextSwitchTo(old);
	pfree(query);

	result = json_object_object_get(root, "result");
	st->page = (result && json_object_is_type(result, json_type_array)) ? result : NULL;
	st->page_len = st->page ? (int) json_object_array_length(st->page) : 0;
	st->page_row = 0;

	st->next_page_token = next_page(st, root);
	st->batch_open = st->next_page_token != NULL;
	if (!st->batch_open)
		st->next_value = batch_first + batch_len;
	progress_add(1, st->page_len, 0);
	return true;
}

static void
fill_slot(MarketoScanState *st, TupleTableSlot *slot, struct json_object *record)
{
	ExecClearTuple(slot);
	memset(slot->tts_isnull, true, sizeof(bool) * slot->tts_tupleDescriptor->natts);
	for (int i = 0; i < st->ncolumns; i++)
	{
		int			att = st->attnums[i] - 1;
		struct json_object *value = marketo_json_get_path(record, st->paths[i]);

		slot->tts_values[att] = marketo_json_to_datum(&st->converters[i], value,
													  &slot->tts_isnull[att]);
	}
	ExecStoreVirtualTuple(slot);
}

TupleTableSlot *
marketoIterateForeignScan(ForeignScanState *node)
{
	MarketoScanState *st = node->fdw_state;
	TupleTableSlot *slot = node->ss.ss_ScanTupleSlot;
	ExprContext *econtext = node->ss.ps.ps_ExprContext;

	if (st->replaying)
	{
		if (tuplestore_gettupleslot(st->rows, true, false, slot))
			return slot;
		return ExecClearTuple(slot);
	}
	if (!st->values_ready)
		start_pass(st, econtext);

	while (st->page == NULL || st->page_row >= st->page_len)
	{
		if (!fetch_page(st))
		{
			st->pass_complete = true;
			progress_phase("done");
			return ExecClearTuple(slot);
		}
	}

	/* Datums are built in the per-tuple context, reset by the executor. */
	{
		MemoryContext old = MemoryContextSwitchTo(econtext->ecxt_per_tuple_memory);

		fill_slot(st, slot,
				  json_object_array_get_idx(st->page, st->page_row++));
		MemoryContextSwitchTo(old);
	}
	if (st->rows)
		tuplestore_puttupleslot(st->rows, slot);
	return slot;
}

void
marketoReScanForeignScan(ForeignScanState *node)
{
	MarketoScanState *st = node->fdw_state;
	List	   *values;

	if (!st->values_ready)
		return;

	/* The same values, all read already: replay instead of calling again. */
	MemoryContextReset(st->next_cxt);
	values = evaluate_filter_values(st, node->ss.ps.ps_ExprContext, st->next_cxt);
	if (st->rows && st->pass_complete && equal(values, st->values))
	{
		tuplestore_rescan(st->rows);
		st->replaying = true;
		return;
	}
	MemoryContextReset(st->page_cxt);
	st->page = NULL;
	st->next_page_token = NULL;
	st->pass_complete = false;
	st->replaying = false;
	if (st->rows)
		tuplestore_clear(st->rows);

	/* the new values are this pass's: they trade places with the old */
	{
		MemoryContext old_values = st->pass_cxt;

		st->pass_cxt = st->next_cxt;
		st->next_cxt = old_values;
		MemoryContextReset(old_values);
	}
	use_values(st, values);
}

void
marketoEndForeignScan(ForeignScanState *node)
{
	MarketoScanState *st = node->fdw_state;

	if (st == NULL || st->conn == NULL)
		return;
	if (st->rows)
		tuplestore_end(st->rows);
	MemoryContextDelete(st->page_cxt);
	MemoryContextDelete(st->pass_cxt);
	MemoryContextDelete(st->next_cxt);
	progress_end();
}

void
marketo_explain_scan_stats(ForeignScanState *node, ExplainState *es)
{
	MarketoScanState *st = node->fdw_state;

	if (st == NULL || st->conn == NULL)
		return;
	ExplainPropertyInteger("Marketo Calls", NULL, st->stats.calls, es);
	ExplainPropertyInteger("Marketo Retries", NULL, st->stats.retries, es);
}
