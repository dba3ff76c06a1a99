/*-------------------------------------------------------------------------
 *
 * progress.c
 *		What each backend's Marketo scan is doing, for
 *		marketo_fdw_progress(): object, phase, pages, rows, calls, wait.
 *
 * One entry per PGPROC in shared memory (the governor requests and
 * initialises it with its own), written only by the backend that owns it.
 * The owner writes and readers copy under the entry's spinlock, so a
 * reader never sees half an update.  Without shared memory (the library
 * was not preloaded) every progress_* function does nothing.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#if PG_VERSION_NUM < 150000
#include "postmaster/autovacuum.h"
#include "replication/walsender.h"
#include "utils/tuplestore.h"
#endif

#include "governor.h"
#include "progress.h"

PG_FUNCTION_INFO_V1(marketo_fdw_progress);

#define PROGRESS_INSTANCE_LEN	64
#define PROGRESS_PHASE_LEN		32
#define PROGRESS_WAIT_LEN		48
#define PROGRESS_COLS			9

#if PG_VERSION_NUM >= 170000
#define MY_PROCNO			MyProcNumber
#else
#define MY_PROCNO			(MyProc->pgprocno)
#endif

typedef struct ProgressEntry
{
	slock_t		mutex;
	int			pid;			/* 0: no scan */
	char		object[NAMEDATALEN];
	char		instance[PROGRESS_INSTANCE_LEN];
	char		phase[PROGRESS_PHASE_LEN];
	int64		pages;
	int64		rows;
	int64		calls;
	char		waiting_for[PROGRESS_WAIT_LEN];	/* "": not waiting */
	TimestampTz started_at;
} ProgressEntry;

typedef struct ProgressShared
{
	int			nentries;
	ProgressEntry entries[FLEXIBLE_ARRAY_MEMBER];
} ProgressShared;

static ProgressShared *progress = NULL;

/* The transaction nesting level that began this backend's scan */
static int	scan_nest_level = 0;

/*
 * Scans open in this backend (a join of two Marketo tables has two): the
 * entry shows the first and counts for all, and goes when the last ends.
 */
static int	open_scans = 0;

static void progress_clear(void);


/* Entries for every PGPROC that can run a scan: backends, workers, aux. */
static int
progress_nentries(void)
{
#if PG_VERSION_NUM >= 150000
	return MaxBackends + NUM_AUXILIARY_PROCS;
#else
	/* _PG_init requests the memory before MaxBackends is computed */
	return MaxConnections + autovacuum_max_workers + 1 +
		max_worker_processes + max_wal_senders + NUM_AUXILIARY_PROCS;
#endif
}

Size
progress_shmem_size(void)
{
	return add_size(offsetof(ProgressShared, entries),
					mul_size(progress_nentries(), sizeof(ProgressEntry)));
}

void
progress_shmem_init(void)
{
	bool		found;

	progress = ShmemInitStruct("marketo_fdw progress", progress_shmem_size(),
							   &found);
	if (found)
		return;

	memset(progress, 0, progress_shmem_size());
	progress->nentries = progress_nentries();
	for (int i = 0; i < progress->nentries; i++)
		SpinLockInit(&progress->entries[i].mutex);
}

/* This backend's entry; NULL without shared memory. */
static ProgressEntry *
own_entry(void)
{
	int			procno;

	if (progress == NULL || MyProc == NULL)
		return NULL;
	procno = MY_PROCNO;
	return procno < progress->nentries ? &progress->entries[procno] : NULL;
}

/* This backend's entry while a scan is shown in it, else NULL. */
static ProgressEntry *
active_entry(void)
{
	ProgressEntry *entry = own_entry();

	/* only this backend writes pid, so it may read it without the lock */
	return entry != NULL && entry->pid == MyProcPid ? entry : NULL;
}

/*
 * An error ends the scan it interrupts, so an abort clears the entry; a
 * subtransaction's abort only when the scan began inside it.
 */
static void
progress_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
		progress_clear();
}

static void
progress_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						  SubTransactionId parentSubid, void *arg)
{
	if (event != SUBXACT_EVENT_ABORT_SUB)
		return;
	if (scan_nest_level >= GetCurrentTransactionNestLevel())
		progress_clear();
	else
		progress_waiting(NULL);
}

static void
progress_exit_callback(int code, Datum arg)
{
	progress_clear();
}

void
progress_begin(const char *object, const char *instance)
{
	static bool callbacks_registered = false;
	ProgressEntry *entry = own_entry();
	TimestampTz now = GetCurrentTimestamp();

	if (entry == NULL)
		return;
	if (!callbacks_registered)
	{
		RegisterXactCallback(progress_xact_callback, NULL);
		RegisterSubXactCallback(progress_subxact_callback, NULL);
		before_shmem_exit(progress_exit_callback, (Datum) 0);
		callbacks_registered = true;
	}
	if (open_scans++ > 0 && entry->pid == MyProcPid)
		return;
	scan_nest_level = GetCurrentTransactionNestLevel();

	SpinLockAcquire(&entry->mutex);
	entry->pid = MyProcPid;
	strlcpy(entry->object, object, sizeof(entry->object));
	strlcpy(entry->instance, instance, sizeof(entry->instance));
	strlcpy(entry->phase, "starting", sizeof(entry->phase));
	entry->pages = 0;
	entry->rows = 0;
	entry->calls = 0;
	entry->waiting_for[0] = '\0';
	entry->started_at = now;
	SpinLockRelease(&entry->mutex);
}

void
progress_phase(const char *phase)
{
	ProgressEntry *entry = active_entry();

	if (entry == NULL)
		return;
	SpinLockAcquire(&entry->mutex);
	strlcpy(entry->phase, phase, sizeof(entry->phase));
	SpinLockRelease(&entry->mutex);
}

void
progress_add(int64 pages, int64 rows, int64 calls)
{
	ProgressEntry *entry = active_entry();

	if (entry == NULL)
		return;
	SpinLockAcquire(&entry->mutex);
	entry->pages += pages;
	entry->rows += rows;
	entry->calls += calls;
	SpinLockRelease(&entry->mutex);
}

void
progress_waiting(const char *what)
{
	ProgressEntry *entry = active_entry();

	if (entry == NULL)
		return;
	SpinLockAcquire(&entry->mutex);
	strlcpy(entry->waiting_for, what ? what : "", sizeof(entry->waiting_for));
	SpinLockRelease(&entry->mutex);
}

/* Take the entry down, whatever scans were open (an error ended them). */
static void
progress_clear(void)
{
	ProgressEntry *entry = active_entry();

	open_scans = 0;
	if (entry == NULL)
		return;
	SpinLockAcquire(&entry->mutex);
	entry->pid = 0;
	SpinLockRelease(&entry->mutex);
}

void
progress_end(void)
{
	if (open_scans > 0 && --open_scans > 0)
		return;
	progress_clear();
}

void
marketo_init_srf(FunctionCallInfo fcinfo)
{
#if PG_VERSION_NUM >= 150000
	InitMaterializedSRF(fcinfo, 0);
#else
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MemoryContext oldcontext;
	TupleDesc	tupdesc;

	if (rsinfo == NULL || !IsA(rsinfo, ReturnSetInfo))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("set-valued function called in context that cannot accept a set")));
	if (!(rsinfo->allowedModes & SFRM_Materialize))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("materialize mode required, but it is not allowed in this context")));

	oldcontext = MemoryContextSwitchTo(rsinfo->econtext->ecxt_per_query_memory);
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	rsinfo->returnMode = SFRM_Materialize;
	rsinfo->setResult = tuplestore_begin_heap(true, false, work_mem);
	rsinfo->setDesc = tupdesc;
	MemoryContextSwitchTo(oldcontext);
#endif
}

static void
progress_row(ReturnSetInfo *rsinfo, const ProgressEntry *entry)
{
	Datum		values[PROGRESS_COLS];
	bool		nulls[PROGRESS_COLS];

	memset(nulls, 0, sizeof(nulls));
	values[0] = Int32GetDatum(entry->pid);
	values[1] = CStringGetTextDatum(entry->object);
	values[2] = CStringGetTextDatum(entry->instance);
	values[3] = CStringGetTextDatum(entry->phase);
	values[4] = Int64GetDatum(entry->pages);
	values[5] = Int64GetDatum(entry->rows);
	values[6] = Int64GetDatum(entry->calls);
	values[7] = CStringGetTextDatum(entry->waiting_for);
	nulls[7] = entry->waiting_for[0] == '\0';
	values[8] = TimestampTzGetDatum(entry->started_at);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

Datum
marketo_fdw_progress(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	governor_require_preload();
	marketo_init_srf(fcinfo);

	for (int i = 0; i < progress->nentries; i++)
	{
		ProgressEntry *entry = &progress->entries[i];
		ProgressEntry copy;

		SpinLockAcquire(&entry->mutex);
		memcpy(&copy, entry, sizeof(copy));
		SpinLockRelease(&entry->mutex);
		if (copy.pid != 0)
			progress_row(rsinfo, &copy);
	}
	return (Datum) 0;
}
