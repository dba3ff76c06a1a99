/*-------------------------------------------------------------------------
 * scan.h
 *		Executing a Marketo request plan: batches of filter values, pages,
 *		rows.
 *-------------------------------------------------------------------------
 */
#ifndef MARKETO_SCAN_H
#define MARKETO_SCAN_H

#include "postgres.h"
#include "commands/explain.h"
#include "foreign/fdwapi.h"

extern void marketoBeginForeignScan(ForeignScanState *node, int eflags);
extern TupleTableSlot *marketoIterateForeignScan(ForeignScanState *node);
extern void marketoReScanForeignScan(ForeignScanState *node);
extern void marketoEndForeignScan(ForeignScanState *node);

/* EXPLAIN ANALYZE: the calls a scan actually made. */
extern void marketo_explain_scan_stats(ForeignScanState *node,
									   ExplainState *es);

#endif							/* MARKETO_SCAN_H */
