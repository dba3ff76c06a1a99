/*-------------------------------------------------------------------------
 * plan.c
 *		Which quals Marketo can answer, what the request will cost in API
 *		calls, and how EXPLAIN shows it.
 *
 * A foreign scan's cost is its API calls: a lookup by id or email costs
 * one call per 300 values, a scan Marketo cannot filter costs more than
 * any instance's quota, so the planner prefers what spends least.  Every
 * qual also stays in the local recheck: Marketo matches case-insensitively
 * and a pushed filter only narrows what comes back.
 *-------------------------------------------------------------------------
 */
#include "marketo_fdw.h"

#include "access/sysattr.h"
#include "catalog/pg_type.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/clauses.h"
#include "optimizer/optimizer.h"
#include "optimizer/pathnode.h"
#include "optimizer/planmain.h"
#include "optimizer/restrictinfo.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "describe.h"
#include "options.h"
#include "plan.h"
#include "scan.h"

/* The planner's cost of one API call, in units of seq_page_cost. */
#define MARKETO_CALL_COST		1000.0
/* Calls assumed for a scan Marketo cannot filter: more than any quota. */
#define UNFILTERED_CALLS		1000000
/* Values assumed for a filter whose values come from a parameter. */
#define PARAM_VALUES_GUESS		10
#define METADATA_TTL_MS			((int64) 24 * 60 * 60 * 1000)

/* The planner's notes on one foreign table (baserel->fdw_private). */
typedef struct MarketoRelInfo
{
	MarketoConn *conn;
	MarketoTableOptions *topts;
	List	   *columns;		/* MarketoColumn, indexed by attnum - 1 */

	/* the pushed filter, if any */
	RestrictInfo *filter_rinfo;
	char	   *filter_field;
	Expr	   *filter_value;	/* evaluated at execution */
	Oid			filter_type;
	bool		filter_is_array;
	int			nvalues;		/* -1: known only at execution */
	double		est_values;		/* the planner's guess when nvalues is -1 */

	List	   *fields;			/* String */
	List	   *attnums;		/* Integer */
	List	   *paths;			/* String: each attnum's field, as spelled */
	int			est_calls;
	char	   *join_hint;		/* how to filter a join Marketo cannot answer */
} MarketoRelInfo;

/* One candidate for filterType/filterValues. */
typedef struct FilterCandidate
{
	RestrictInfo *rinfo;
	MarketoColumn *column;
	Expr	   *value;
	bool		is_array;
	int			nvalues;
	double		est_values;
} FilterCandidate;

int
marketo_filter_calls(int nvalues, int max_values)
{
	if (nvalues <= 0)
		return 0;
	return (nvalues + max_values - 1) / max_values;
}

static Node *
strip_relabel(Node *node)
{
	while (node && IsA(node, RelabelType))
		node = (Node *) ((RelabelType *) node)->arg;
	return node;
}

/* The column of this rel that node is, or NULL. */
static MarketoColumn *
column_of(Node *node, RelOptInfo *baserel, MarketoRelInfo *info)
{
	Var		   *var = (Var *) strip_relabel(node);

	if (var == NULL || !IsA(var, Var) || var->varno != baserel->relid ||
		var->varlevelsup != 0 || var->varattno <= 0)
		return NULL;
	return list_nth(info->columns, var->varattno - 1);
}

/*
 * A value Marketo can be sent: computable at execution start, before any
 * row of this rel is read (constants, parameters, initplans).
 */
static bool
is_sendable_value(Node *node)
{
	return !contain_var_clause(node) &&
		!contain_volatile_functions(node) &&
		!contain_subplans(node);
}

static bool
is_equality(Oid opno)
{
	return get_oprrest(opno) == F_EQSEL;
}

/*
 * Rows an initplan is expected to return, for a filter like
 * email = ANY (ARRAY(SELECT ...)): the values of its Param.  -1 if param
 * is not set by an initplan of this query level.
 */
static double
initplan_rows(PlannerInfo *root, Node *value)
{
	Param	   *param = (Param *) strip_relabel(value);
	ListCell   *lc;

	if (!IsA(param, Param) || param->paramkind != PARAM_EXEC)
		return -1;
	foreach(lc, root->init_plans)
	{
		SubPlan    *subplan = lfirst(lc);

		if (list_member_int(subplan->setParam, param->paramid))
			return ((Plan *) list_nth(root->glob->subplans,
									  subplan->plan_id - 1))->plan_rows;
	}
	return -1;
}

/* Values of an array value known at plan time, else -1. */
static int
count_array_values(Node *value)
{
	value = strip_relabel(value);
	if (IsA(value, Const) && !((Const *) value)->constisnull)
	{
		ArrayType  *arr = DatumGetArrayTypeP(((Const *) value)->constvalue);

		return ArrayGetNItems(ARR_NDIM(arr), ARR_DIMS(arr));
	}
	if (IsA(value, ArrayExpr))
		return list_length(((ArrayExpr *) value)->elements);
	return -1;
}

/* Is rinfo "col = value" or "col = ANY (values)" on a searchable field? */
static bool
match_filter(PlannerInfo *root, RestrictInfo *rinfo, RelOptInfo *baserel,
			 MarketoRelInfo *info, FilterCandidate *cand)
{
	Expr	   *clause = rinfo->clause;
	Node	   *left;
	Node	   *right;

	memset(cand, 0, sizeof(*cand));
	cand->rinfo = rinfo;
	if (IsA(clause, OpExpr))
	{
		OpExpr	   *op = (OpExpr *) clause;

		if (list_length(op->args) != 2 || !is_equality(op->opno))
			return false;
		left = linitial(op->args);
		right = lsecond(op->args);
		if (column_of(right, baserel, info) && !column_of(left, baserel, info))
		{
			Node	   *tmp = left;

			left = right;
			right = tmp;
		}
		cand->nvalues = 1;
	}
	else if (IsA(clause, ScalarArrayOpExpr))
	{
		ScalarArrayOpExpr *saop = (ScalarArrayOpExpr *) clause;

		if (!saop->useOr || !is_equality(saop->opno))
			return false;
		left = linitial(saop->args);
		right = lsecond(saop->args);
		cand->is_array = true;
		cand->nvalues = count_array_values(right);
		if (cand->nvalues < 0)
			cand->est_values = initplan_rows(root, right);
	}
	else
		return false;

	cand->column = column_of(left, baserel, info);
	if (cand->column == NULL || !is_sendable_value(right))
		return false;
	cand->value = (Expr *) right;
	return marketo_field_searchable(info->conn, info->topts->object,
									cand->column->field, METADATA_TTL_MS);
}

/*
 * Rank candidates: values known now over parameters, then the unique keys
 * (id, then email), then the fewest values.
 */
static int
candidate_rank(const FilterCandidate *c)
{
	int			rank = 0;

	if (c->nvalues < 0)
		rank += 4;
	if (pg_strcasecmp(c->column->field, "id") != 0)
		rank += pg_strcasecmp(c->column->field, "email") == 0 ? 1 : 2;
	return rank;
}

static void
choose_filter(PlannerInfo *root, RelOptInfo *baserel, MarketoRelInfo *info)
{
	ListCell   *lc;
	FilterCandidate best = {0};
	bool		found = false;

	foreach(lc, baserel->baserestrictinfo)
	{
		FilterCandidate cand;

		if (!match_filter(root, lfirst_node(RestrictInfo, lc), baserel, info, &cand))
			continue;
		if (!found || candidate_rank(&cand) < candidate_rank(&best) ||
			(candidate_rank(&cand) == candidate_rank(&best) &&
			 cand.nvalues < best.nvalues))
		{
			best = cand;
			found = true;
		}
	}
	if (!found)
		return;

	info->filter_rinfo = best.rinfo;
	info->filter_field = best.column->field;
	info->filter_value = best.value;
	info->filter_is_array = best.is_array;
	info->nvalues = best.nvalues;
	info->est_values = best.nvalues >= 0 ? best.nvalues
		: best.est_values > 0 ? best.est_values : PARAM_VALUES_GUESS;
	info->filter_type = exprType((Node *) best.value);
	if (best.is_array)
		info->filter_type = get_element_type(info->filter_type);
}

/*
 * With no filter of its own, a table joined on a searchable field ("ON
 * l.email = c.email") can still be read cheaply if the query hands it the
 * other side's values in one array.  Say how, naming the query's tables.
 */
static char *
join_rewrite_hint(PlannerInfo *root, RelOptInfo *baserel, MarketoRelInfo *info)
{
	ListCell   *lc;

	/* "l.email = c.email" lives in an equivalence class, not in joininfo */
	foreach(lc, root->eq_classes)
	{
		EquivalenceClass *ec = lfirst(lc);
		MarketoColumn *col = NULL;
		Var		   *other = NULL;
		ListCell   *lm;

		if (ec->ec_has_const || ec->ec_has_volatile)
			continue;
		foreach(lm, ec->ec_members)
		{
			Node	   *expr = strip_relabel((Node *) ((EquivalenceMember *) lfirst(lm))->em_expr);
			MarketoColumn *mine = column_of(expr, baserel, info);

			if (mine != NULL)
				col = mine;
			else if (IsA(expr, Var) && ((Var *) expr)->varlevelsup == 0 &&
					 ((Var *) expr)->varattno > 0 &&
					 root->simple_rte_array[((Var *) expr)->varno]->rtekind == RTE_RELATION)
				other = (Var *) expr;
		}
		if (col == NULL || other == NULL ||
			!marketo_object_field_searchable(info->topts->object, col->field))
			continue;
		return psprintf("To join on %s, add WHERE %s.%s = ANY (ARRAY(SELECT %s FROM %s)): one call per 300 values instead of one per row.",
						col->name,
						quote_identifier(root->simple_rte_array[baserel->relid]->eref->aliasname),
						quote_identifier(col->name),
						quote_identifier(get_attname(root->simple_rte_array[other->varno]->relid,
													 other->varattno, false)),
						quote_identifier(get_rel_name(root->simple_rte_array[other->varno]->relid)));
	}
	return NULL;
}

/* The Marketo field a fields= list names for a column ("folder.value" -> "folder"). */
static char *
top_level_field(const char *field)
{
	const char *dot = strchr(field, '.');

	return dot ? pnstrdup(field, dot - field) : pstrdup(field);
}

/*
 * Whether a column's field needs no describe call to be spelled right:
 * given by the field option, or turned from a snake_case name into the
 * camelCase Marketo uses (first_name -> firstName).  A name like
 * "firstname" or "LeadScore" may differ from its field in case only.
 */
static bool
spelled_as_meant(const MarketoColumn *col)
{
	if (col->field_given)
		return true;
	if (strchr(col->name, '_') == NULL)
		return false;
	for (const char *c = col->name; *c; c++)
	{
		if (*c >= 'A' && *c <= 'Z')
			return false;
	}
	return true;
}

/*
 * The columns the query reads (output and quals), with their fields
 * spelled as Marketo spells them: a column matches its field whatever the
 * case, but Marketo's parameters are case-sensitive.  Only the columns
 * read are resolved, so an unused odd column costs nothing.
 */
static void
choose_columns(RelOptInfo *baserel, MarketoRelInfo *info)
{
	Bitmapset  *attrs = NULL;
	ListCell   *lc;
	bool		whole_row;

	pull_varattnos((Node *) baserel->reltarget->exprs, baserel->relid, &attrs);
	foreach(lc, baserel->baserestrictinfo)
		pull_varattnos((Node *) lfirst_node(RestrictInfo, lc)->clause,
					   baserel->relid, &attrs);
	whole_row = bms_is_member(0 - FirstLowInvalidHeapAttributeNumber, attrs);

	foreach(lc, info->columns)
	{
		MarketoColumn *col = lfirst(lc);

		if (col->dropped ||
			(!whole_row &&
			 !bms_is_member(col->attnum - FirstLowInvalidHeapAttributeNumber, attrs)))
			continue;
		if (!spelled_as_meant(col))
			col->field = marketo_canonical_field(info->conn, info->topts->object,
												 col->field, METADATA_TTL_MS);
		info->attnums = lappend_int(info->attnums, col->attnum);
		info->paths = lappend(info->paths, makeString(col->field));
	}
}

/* The fields= list: the top level of each column's path, once each. */
static void
choose_fields(MarketoRelInfo *info)
{
	ListCell   *lc;

	foreach(lc, info->paths)
	{
		char	   *field = top_level_field(strVal(lfirst(lc)));

		if (!list_member(info->fields, makeString(field)))
			info->fields = lappend(info->fields, makeString(field));
	}
	/* Marketo needs some field; id is the cheapest and always sent. */
	if (info->fields == NIL)
		info->fields = list_make1(makeString(pstrdup("id")));
}

void
marketoGetForeignRelSize(PlannerInfo *root, RelOptInfo *baserel,
						 Oid foreigntableid)
{
	MarketoRelInfo *info = palloc0(sizeof(MarketoRelInfo));
	double		rows;

	info->conn = marketo_conn_for_table(foreigntableid);
	info->topts = marketo_table_options(foreigntableid);
	info->columns = marketo_table_columns(foreigntableid);
	info->nvalues = -1;
	baserel->fdw_private = info;

	choose_columns(baserel, info);
	choose_filter(root, baserel, info);
	choose_fields(info);

	if (info->filter_field == NULL)
	{
		info->join_hint = join_rewrite_hint(root, baserel, info);
		info->est_calls = UNFILTERED_CALLS;
		rows = (double) UNFILTERED_CALLS * info->topts->object->page_size;
	}
	else
	{
		int			nvalues = (int) Min(info->est_values, INT_MAX);

		info->est_calls = Max(1, marketo_filter_calls(nvalues,
													  info->topts->object->max_filter_values));
		/* ids and emails name about one lead each; other fields many */
		rows = nvalues;
		if (pg_strcasecmp(info->filter_field, "id") != 0 &&
			pg_strcasecmp(info->filter_field, "email") != 0)
			rows *= 100;
	}
	baserel->rows = clamp_row_est(rows *
								  clauselist_selectivity(root,
														 list_difference_ptr(baserel->baserestrictinfo,
																			 list_make1(info->filter_rinfo)),
														 baserel->relid,
														 JOIN_INNER, NULL));
}

void
marketoGetForeignPaths(PlannerInfo *root, RelOptInfo *baserel,
					   Oid foreigntableid)
{
	MarketoRelInfo *info = baserel->fdw_private;
	Cost		startup_cost = MARKETO_CALL_COST;
	Cost		total_cost;

	total_cost = info->est_calls * MARKETO_CALL_COST +
		baserel->rows * cpu_tuple_cost;
	add_path(baserel, (Path *)
			 create_foreignscan_path(root, baserel, NULL, baserel->rows,
									 Min(startup_cost, total_cost), total_cost,
									 NIL, NULL, NULL, NIL));
}

static void
refuse_unfiltered_scan(MarketoRelInfo *info, Oid foreigntableid)
{
	ereport(ERROR,
			(errcode(ERRCODE_FDW_UNABLE_TO_CREATE_EXECUTION),
			 errmsg("a scan of foreign table \"%s\" needs a filter Marketo can answer",
					get_rel_name(foreigntableid)),
			 errdetail("Marketo looks %s up only by id, email or another searchable field; reading them all needs a bulk extract, which is not supported yet.",
					   info->topts->object->name),
			 info->join_hint ? errhint("%s", info->join_hint)
			 : errhint("Add a condition such as WHERE email = '...' or WHERE id = ANY ('{...}').")));
}

ForeignScan *
marketoGetForeignPlan(PlannerInfo *root, RelOptInfo *baserel,
					  Oid foreigntableid, ForeignPath *best_path,
					  List *tlist, List *scan_clauses, Plan *outer_plan)
{
	MarketoRelInfo *info = baserel->fdw_private;
	List	   *private = NIL;
	List	   *exprs = NIL;

	if (info->filter_field == NULL && info->topts->object->filter_required)
		refuse_unfiltered_scan(info, foreigntableid);

	private = lappend(private, makeString(info->filter_field ? info->filter_field : ""));
	private = lappend(private, makeInteger(info->filter_is_array));
	private = lappend(private, makeInteger(info->filter_type));
	private = lappend(private, makeInteger(info->nvalues));
	private = lappend(private, info->fields);
	private = lappend(private, info->attnums);
	private = lappend(private, info->paths);
	private = lappend(private, makeInteger(info->est_calls));
	if (info->filter_value)
		exprs = list_make1(info->filter_value);

	/* Every qual is rechecked locally, the pushed one included. */
	scan_clauses = extract_actual_clauses(scan_clauses, false);
	return make_foreignscan(tlist, scan_clauses, baserel->relid, exprs,
							private, NIL, NIL, outer_plan);
}

/* "a,b,c" from a List of String: Marketo's list parameters, and EXPLAIN */
char *
marketo_join_strings(List *strings)
{
	StringInfoData buf;
	ListCell   *lc;

	initStringInfo(&buf);
	foreach(lc, strings)
		appendStringInfo(&buf, "%s%s", buf.len ? "," : "", strVal(lfirst(lc)));
	return buf.data;
}

void
marketoExplainForeignScan(ForeignScanState *node, ExplainState *es)
{
	ForeignScan *plan = (ForeignScan *) node->ss.ps.plan;
	List	   *private = plan->fdw_private;
	const char *field = strVal(list_nth(private, PLAN_FILTER_FIELD));
	int			nvalues = intVal(list_nth(private, PLAN_FILTER_NVALUES));
	MarketoTableOptions *topts =
		marketo_table_options(RelationGetRelid(node->ss.ss_currentRelation));

	ExplainPropertyText("Marketo Endpoint",
						psprintf("GET %s", topts->object->path), es);
	if (field[0] != '\0')
	{
		ExplainPropertyText("Marketo Filter", field, es);
		if (nvalues >= 0)
			ExplainPropertyInteger("Marketo Filter Values", NULL, nvalues, es);
		else
			ExplainPropertyText("Marketo Filter Values", "from parameter", es);
	}
	ExplainPropertyText("Marketo Fields",
						marketo_join_strings(list_nth(private, PLAN_FIELDS)), es);
	ExplainPropertyInteger("Marketo Estimated Calls", NULL,
						   intVal(list_nth(private, PLAN_EST_CALLS)), es);
	if (es->analyze)
		marketo_explain_scan_stats(node, es);
}
