/*-------------------------------------------------------------------------
 * progress.h
 *		Per-backend progress of Marketo scans, shown by
 *		marketo_fdw_progress(): object, phase, pages, rows, calls, wait.
 *-------------------------------------------------------------------------
 */
#ifndef MARKETO_PROGRESS_H
#define MARKETO_PROGRESS_H

#include "postgres.h"
#include "fmgr.h"

extern Size progress_shmem_size(void);
extern void progress_shmem_init(void);	/* under AddinShmemInitLock */

extern void progress_begin(const char *object, const char *instance);
extern void progress_phase(const char *phase);	/* "fetching", "decoding" */
extern void progress_add(int64 pages, int64 rows, int64 calls);
extern void progress_waiting(const char *what);	/* NULL: not waiting */
extern void progress_end(void);

/*
 * Set up a set-returning function that materialises its rows in a
 * tuplestore (InitMaterializedSRF from PostgreSQL 15 on); the status and
 * progress functions share it.
 */
extern void marketo_init_srf(FunctionCallInfo fcinfo);

#endif							/* MARKETO_PROGRESS_H */
