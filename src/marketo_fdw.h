/*-------------------------------------------------------------------------
 * marketo_fdw.h
 *		Settings shared by every part of marketo_fdw.
 *
 * Each source file has its own small header for its interface; this one
 * holds only the GUCs and the SQLSTATE conventions used everywhere.
 *-------------------------------------------------------------------------
 */
#ifndef MARKETO_FDW_H
#define MARKETO_FDW_H

#include "postgres.h"

/* GUCs (marketo_fdw.c); times are in milliseconds */
extern int	marketo_rate_window_ms;		/* marketo_fdw.rate_window */
extern int	marketo_bulk_poll_interval_ms;	/* marketo_fdw.bulk_poll_interval */
extern int	marketo_max_calls_per_statement;	/* 0 = unlimited */
extern int	marketo_max_retries;		/* marketo_fdw.max_retries */

/*
 * Marketo's documented limits, which no option may exceed.
 */
#define MARKETO_MAX_RATE_LIMIT		100
#define MARKETO_MAX_CONCURRENCY		10
#define MARKETO_LEAD_BATCH			300 /* records per lead-database call */
#define MARKETO_MAX_URI				8192	/* longer URIs answer 414 */
#define MARKETO_MAX_BODY			(1024 * 1024)	/* larger bodies answer 413 */

#endif							/* MARKETO_FDW_H */
