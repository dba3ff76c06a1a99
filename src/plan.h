/*-------------------------------------------------------------------------
 * plan.h
 *		From quals to a Marketo request plan, and the plan's EXPLAIN.
 *-------------------------------------------------------------------------
 */
#ifndef MARKETO_PLAN_H
#define MARKETO_PLAN_H

#include "postgres.h"
#include "commands/explain.h"
#include "foreign/fdwapi.h"
#include "nodes/pathnodes.h"

/*
 * What the planner hands the executor in ForeignScan.fdw_private (a List,
 * so copyObject works).  The filter's value expression, if any, is the
 * only element of fdw_exprs.
 */
typedef enum MarketoPlanIndex
{
	PLAN_FILTER_FIELD,			/* String: Marketo filterType, "" if none */
	PLAN_FILTER_IS_ARRAY,		/* Integer 0/1: col = ANY (array); no
								 * Boolean node before PostgreSQL 15 */
	PLAN_FILTER_TYPE,			/* Integer: type of the value (element) */
	PLAN_FILTER_NVALUES,		/* Integer: values known at plan time, -1 */
	PLAN_FIELDS,				/* List of String: the fields= list */
	PLAN_ATTNUMS,				/* List of Integer: columns to fill */
	PLAN_PATHS,					/* List of String: their fields */
	PLAN_EST_CALLS,				/* Integer: estimated API calls */
	PLAN_N_ITEMS
} MarketoPlanIndex;

extern char *marketo_join_strings(List *strings);

/* Estimated calls to look up nvalues values of one filter. */
extern int	marketo_filter_calls(int nvalues, int max_values);

extern void marketoGetForeignRelSize(PlannerInfo *root, RelOptInfo *baserel,
									 Oid foreigntableid);
extern void marketoGetForeignPaths(PlannerInfo *root, RelOptInfo *baserel,
								   Oid foreigntableid);
extern ForeignScan *marketoGetForeignPlan(PlannerInfo *root,
										  RelOptInfo *baserel,
										  Oid foreigntableid,
										  ForeignPath *best_path,
										  List *tlist, List *scan_clauses,
										  Plan *outer_plan);
extern void marketoExplainForeignScan(ForeignScanState *node,
									  ExplainState *es);

#endif							/* MARKETO_PLAN_H */
