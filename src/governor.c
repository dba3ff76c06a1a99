/*-------------------------------------------------------------------------
 *
 * governor.c
 *		The shared-memory governor: every backend together inside one
 *		Marketo instance's limits.
 *
 * Marketo meters an instance (the host of base_url) as a whole: calls
 * started in the last rate window, calls in flight, calls per day counted
 * from midnight in Chicago, bulk jobs and bulk megabytes.  One state per
 * instance lives in shared memory, so the limits hold whichever backend
 * asks; hence the library must be in shared_preload_libraries.
 *
 * Locking: gov->lock, an LWLock, is taken only to find or claim an
 * instance.  Everything else about an instance is under its spinlock, held
 * for a few instructions and never across a wait, an ereport or an HTTP
 * call.  A backend waiting for capacity sleeps on the instance's condition
 * variable with a timeout, so cancel and statement_timeout work.
 *
 * A call takes a concurrency slot in governor_begin_call and gives it back
 * in governor_end_call.  Each backend also notes the slots it holds, so
 * that when an error or exit comes in between, the abort and exit
 * backstops give them back.  A crash makes the postmaster reinitialise
 * shared memory, which starts the governor clean.
 *
 * The daily counters survive a clean restart: the postmaster writes them
 * to GOV_STAT_FILE at shutdown and reads them back at startup, as
 * pg_stat_statements does with its statistics.
 *
 * Access tokens are shared too, by governor_token.c.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <unistd.h>

#include "access/xact.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "pgtime.h"
#include "storage/condition_variable.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/timestamp.h"
#if PG_VERSION_NUM >= 150000
#include "common/pg_prng.h"
#endif

#include "governor.h"
#include "marketo_fdw.h"
#include "progress.h"

PG_FUNCTION_INFO_V1(marketo_fdw_status);

#define GOV_TRANCHE			"marketo_fdw"
#define GOV_MAX_INSTANCES	16
#define GOV_RING_SIZE		MARKETO_MAX_RATE_LIMIT
#define GOV_MAX_SLOTS		MARKETO_MAX_CONCURRENCY
#define GOV_MAX_BULK_RUNNING	2
#define GOV_MAX_BULK_QUEUED	10	/* the running ones included */
#define GOV_QUOTA_TIMEZONE	"America/Chicago"	/* where Marketo's day starts */

/* How often a backend waiting for a slot looks for dead slot owners */
#define GOV_SLOT_RECHECK_MS	1000

/* The pause after 615; after 606 it scales with the rate window instead */
#define GOV_615_BASE_MS		100
#define GOV_615_CAP_MS		2000
#define GOV_MAX_DOUBLINGS	16	/* keeps base << n far from overflowing */

/* Per-call retry back-off (governor_backoff) */
#define GOV_RETRY_MIN_BASE_MS	50

#define GOV_STAT_FILE		PGSTAT_STAT_PERMANENT_DIRECTORY "/marketo_fdw_governor.stat"
#define GOV_STAT_TMPFILE	GOV_STAT_FILE ".tmp"
#define GOV_STAT_MAGIC		0x4d4b4746	/* "MKGF" */
#define GOV_STAT_VERSION	1

#define GOV_STATUS_COLS		16

#if PG_VERSION_NUM >= 170000
#define PROCNO_OF(proc)		GetNumberFromPGProc(proc)
#define MY_PROCNO			MyProcNumber
#else
#define PROCNO_OF(proc)		((proc)->pgprocno)
#define MY_PROCNO			(MyProc->pgprocno)
#endif

/* Where servers disagree on a limit, the smallest wins; 0 is "not known" */
#define LOWER_LIMIT(limit, wanted) \
	do { \
		if ((limit) == 0 || (wanted) < (limit)) \
			(limit) = (wanted); \
	} while (0)

/*
 * The servers (of any database) whose limits apply to an instance.  A
 * server's limits stop applying when it has not called for a while, so an
 * ALTER SERVER that raises a limit takes effect at once, and a server no
 * longer used does not hold the instance down forever.
 */
#define GOV_MAX_SOURCES		8
#define GOV_SOURCE_TTL_MS	(10 * 60 * 1000)

typedef struct GovLimitSource
{
	Oid			dbid;			/* InvalidOid: unused */
	Oid			serverid;
	TimestampTz seen_at;
	int			rate_limit;
	int			max_concurrency;
	int64		daily_quota;
	int			bulk_export_mb;
} GovLimitSource;

/* A call in flight. */
typedef struct GovSlot
{
	int			pid;			/* 0: free */
	int			procno;			/* tells a live owner from a reused pid */
	TimestampTz started_at;
} GovSlot;

/*
 * What is counted per Chicago day.  The same struct, after the instance's
 * name, is the record of GOV_STAT_FILE.
 */
typedef struct GovDay
{
	int32		day_key;		/* Julian day number of the date in Chicago */
	bool		exhausted;		/* Marketo answered 607 */
	int64		calls;			/* counted calls plus calls in flight */
	int64		errors_606;
	int64		errors_615;
	int64		errors_607;
	int64		retries;
	double		bulk_mb;
} GovDay;

typedef struct GovInstance
{
	char		name[GOVERNOR_INSTANCE_LEN];	/* set once, under gov->lock */
	ConditionVariable cv;		/* broadcast whenever a slot is freed */
	slock_t		mutex;			/* protects all that follows */

	/* Limits in force: the smallest of the servers that called lately */
	GovLimitSource sources[GOV_MAX_SOURCES];
	int			rate_limit;
	int			max_concurrency;
	int64		daily_quota;
	int			bulk_export_mb;

	/*
	 * End times of the last finished calls, the newest before ring_next.
	 * Marketo sees a call arrive somewhere between its admission and its
	 * answer, so a call occupies the window from admission (it is in a slot)
	 * until one window after its end: no arrival order can then put more
	 * than rate_limit calls in any window Marketo measures.
	 */
	TimestampTz starts[GOV_RING_SIZE];
	int			ring_next;
	int			ring_len;

	GovSlot		slots[GOV_MAX_SLOTS];

	/* The pause every backend keeps after Marketo answered 606 or 615 */
	TimestampTz cooldown_until;
	TimestampTz throttled_at;	/* when the pause was last lengthened */
	int			throttle_streak;	/* throttles since the last counted call */
	GovernorOutcome throttle_kind;

	GovDay		day;

	int			bulk_running;
	int			bulk_queued;
} GovInstance;

typedef struct GovShared
{
	LWLock	   *lock;			/* claims instances */
	int			ninstances;
	GovInstance instances[GOV_MAX_INSTANCES];
} GovShared;

typedef struct GovFileHeader
{
	uint32		magic;
	uint32		version;
	int32		count;			/* records that follow */
} GovFileHeader;

/* What stands between a call and its start. */
typedef enum Verdict
{
	ADMITTED,
	WAIT_COOLDOWN,
	WAIT_RATE,
	WAIT_SLOT,
	QUOTA_USED,
	QUOTA_EXHAUSTED				/* Marketo answered 607 */
} Verdict;

typedef struct Admission
{
	Verdict		verdict;
	int			slot;			/* ADMITTED: the slot taken */
	int32		day_key;		/* ADMITTED: the day the call is counted on */
	TimestampTz until;			/* WAIT_COOLDOWN, WAIT_RATE: when to look again */
	GovernorOutcome throttle_kind;	/* WAIT_COOLDOWN: after 606 or 615 */
	int64		calls;			/* QUOTA_*: calls counted today */
	int64		daily_quota;
} Admission;

/* A call this backend holds a slot for. */
typedef struct HeldCall
{
	bool		held;
	int32		day_key;		/* the day its quota reservation belongs to */
	TimestampTz started_at;
} HeldCall;

/* One instance as marketo_fdw_status() shows it. */
typedef struct GovSnapshot
{
	char		name[GOVERNOR_INSTANCE_LEN];
	GovDay		day;
	int64		daily_quota;
	int			window_calls;
	int			rate_limit;
	int			in_flight;
	int			max_concurrency;
	TimestampTz cooldown_until;
	int			bulk_running;
	int			bulk_queued;
} GovSnapshot;

static GovShared *gov = NULL;
static HeldCall held_calls[GOV_MAX_INSTANCES][GOV_MAX_SLOTS];

#if PG_VERSION_NUM >= 150000
static shmem_request_hook_type prev_shmem_request_hook = NULL;
#endif
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static void governor_shmem_request(void);
static void governor_shmem_startup(void);


/*
 * Shared memory, and the file that keeps the day's counters over a restart
 */

void
governor_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		return;

#if PG_VERSION_NUM >= 150000
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = governor_shmem_request;
#else
	governor_shmem_request();
#endif
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = governor_shmem_startup;
}

static void
governor_shmem_request(void)
{
#if PG_VERSION_NUM >= 150000
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
#endif
	RequestAddinShmemSpace(add_size(sizeof(GovShared),
									add_size(governor_token_shmem_size(),
											 progress_shmem_size())));
	/* one lock claims instances, the other token entries */
	RequestNamedLWLockTranche(GOV_TRANCHE, 2);
}

/*
 * The rules of Marketo's time zone; NULL, after a message at elevel, if
 * this server has no such zone.
 */
static pg_tz *
quota_tz(int elevel)
{
	static pg_tz *tz = NULL;

	if (tz == NULL)
	{
		tz = pg_tzset(GOV_QUOTA_TIMEZONE);
		if (tz == NULL)
			ereport(elevel,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("time zone \"%s\" is not available",
							GOV_QUOTA_TIMEZONE),
					 errdetail("Marketo counts its daily quota from midnight in that time zone.")));
	}
	return tz;
}

/* The date in Chicago at ts, as a Julian day number. */
static int32
day_key_at(TimestampTz ts, pg_tz *tz)
{
	struct pg_tm tm;
	fsec_t		fsec;
	int			tzoff;

	if (timestamp2tm(ts, &tzoff, &tm, &fsec, NULL, tz) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp out of range")));
	return date2j(tm.tm_year, tm.tm_mon, tm.tm_mday);
}

static int32
current_day(TimestampTz now)
{
	return day_key_at(now, quota_tz(ERROR));
}

/* The midnight in Chicago that ends day day_key, daylight saving included. */
static TimestampTz
day_end(int32 day_key)
{
	struct pg_tm tm;
	int			tzoff;
	TimestampTz result;

	memset(&tm, 0, sizeof(tm));
	j2date(day_key + 1, &tm.tm_year, &tm.tm_mon, &tm.tm_mday);
	tzoff = DetermineTimeZoneOffset(&tm, quota_tz(ERROR));
	if (tm2timestamp(&tm, 0, &tzoff, &result) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp out of range")));
	return result;
}

TimestampTz
governor_quota_reset_time(void)
{
	return day_end(current_day(GetCurrentTimestamp()));
}

/* Today's records of an open GOV_STAT_FILE into gov; false if it is invalid. */
static bool
read_saved_instances(FILE *file, int32 today)
{
	GovFileHeader header;

	if (fread(&header, sizeof(header), 1, file) != 1 ||
		header.magic != GOV_STAT_MAGIC ||
		header.version != GOV_STAT_VERSION ||
		header.count < 0 || header.count > GOV_MAX_INSTANCES)
		return false;

	for (int i = 0; i < header.count; i++)
	{
		char		name[GOVERNOR_INSTANCE_LEN];
		GovDay		day;

		if (fread(name, sizeof(name), 1, file) != 1 ||
			fread(&day, sizeof(day), 1, file) != 1)
			return false;
		name[sizeof(name) - 1] = '\0';

		/* another day's counters are of no use */
		if (day.day_key == today)
		{
			GovInstance *inst = &gov->instances[gov->ninstances++];

			strlcpy(inst->name, name, sizeof(inst->name));
			inst->day = day;
		}
	}
	return true;
}

/*
 * Read back the counters the postmaster saved at the last clean shutdown.
 * No locks: no other process is running yet.
 */
static void
governor_load(void)
{
	FILE	   *file;
	pg_tz	   *tz;

	tz = quota_tz(LOG);
	if (tz == NULL)
		return;

	file = AllocateFile(GOV_STAT_FILE, PG_BINARY_R);
	if (file == NULL)
	{
		if (errno != ENOENT)
			ereport(LOG,
					(errcode_for_file_access(),
					 errmsg("could not read file \"%s\": %m", GOV_STAT_FILE)));
		return;
	}
	if (!read_saved_instances(file, day_key_at(GetCurrentTimestamp(), tz)))
		ereport(LOG,
				(errmsg("ignoring invalid data in file \"%s\"", GOV_STAT_FILE)));
	FreeFile(file);

	/* a crash before the next clean shutdown must not bring these back */
	unlink(GOV_STAT_FILE);
}

/*
 * on_shmem_exit in the postmaster: keep the day's counters over a clean
 * restart.  A temporary file and a durable rename mean a crash while
 * writing leaves the old file or none, never half of one.
 */
static void
governor_save(int code, Datum arg)
{
	FILE	   *file;
	GovFileHeader header = {GOV_STAT_MAGIC, GOV_STAT_VERSION, gov->ninstances};

	/* after a crash, start clean: the counters may be inconsistent */
	if (code != 0)
		return;

	file = AllocateFile(GOV_STAT_TMPFILE, PG_BINARY_W);
	if (file == NULL ||
		fwrite(&header, sizeof(header), 1, file) != 1)
		goto error;
	for (int i = 0; i < gov->ninstances; i++)
	{
		GovInstance *inst = &gov->instances[i];

		if (fwrite(inst->name, sizeof(inst->name), 1, file) != 1 ||
			fwrite(&inst->day, sizeof(inst->day), 1, file) != 1)
			goto error;
	}
	if (FreeFile(file) != 0)
	{
		file = NULL;
		goto error;
	}
	(void) durable_rename(GOV_STAT_TMPFILE, GOV_STAT_FILE, LOG);
	return;

error:
	ereport(LOG,
			(errcode_for_file_access(),
			 errmsg("could not write file \"%s\": %m", GOV_STAT_TMPFILE)));
	if (file)
		FreeFile(file);
	unlink(GOV_STAT_TMPFILE);
}

static void
governor_shmem_init(LWLock *lock)
{
	memset(gov, 0, sizeof(GovShared));
	gov->lock = lock;
	for (int i = 0; i < GOV_MAX_INSTANCES; i++)
	{
		SpinLockInit(&gov->instances[i].mutex);
		ConditionVariableInit(&gov->instances[i].cv);
	}
}

static void
governor_shmem_startup(void)
{
	LWLockPadded *locks;
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	locks = GetNamedLWLockTranche(GOV_TRANCHE);
	gov = ShmemInitStruct("marketo_fdw governor", sizeof(GovShared), &found);
	if (!found)
		governor_shmem_init(&locks[0].lock);
	governor_token_shmem_init(&locks[1].lock);
	progress_shmem_init();
	LWLockRelease(AddinShmemInitLock);

	if (!IsUnderPostmaster)
	{
		on_shmem_exit(governor_save, (Datum) 0);
		if (!found)
			governor_load();
	}
}


/*
 * Instances
 */

static int
find_instance(const char *name)
{
	for (int i = 0; i < gov->ninstances; i++)
	{
		if (strcmp(gov->instances[i].name, name) == 0)
			return i;
	}
	return -1;
}

/* The index of the shared state of instance name, claimed if new. */
static int
instance_index(const char *name)
{
	int			idx;

	governor_attach(name);

	LWLockAcquire(gov->lock, LW_SHARED);
	idx = find_instance(name);
	LWLockRelease(gov->lock);
	if (idx >= 0)
		return idx;

	LWLockAcquire(gov->lock, LW_EXCLUSIVE);
	idx = find_instance(name);
	if (idx < 0 && gov->ninstances < GOV_MAX_INSTANCES)
	{
		idx = gov->ninstances++;
		strlcpy(gov->instances[idx].name, name, GOVERNOR_INSTANCE_LEN);
	}
	LWLockRelease(gov->lock);

	if (idx < 0)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("too many Marketo instances"),
				 errdetail("marketo_fdw governs at most %d instances at once; \"%s\" would be one more.",
						   GOV_MAX_INSTANCES, name),
				 errhint("Restart the server to forget instances no longer used.")));
	return idx;
}

/*
 * Take inst's spinlock, first moving its daily counters on to today when a
 * midnight in Chicago has passed.  Around midnight a backend's today may
 * lag behind another's for a moment; the counters never move back.
 */
static void
instance_lock(GovInstance *inst, int32 today)
{
	SpinLockAcquire(&inst->mutex);
	if (today > inst->day.day_key)
	{
		memset(&inst->day, 0, sizeof(GovDay));
		inst->day.day_key = today;
	}
}

/* conn's server among the instance's sources: its own entry, or the stalest. */
static GovLimitSource *
limit_source(GovInstance *inst, const MarketoConn *conn)
{
	GovLimitSource *stalest = &inst->sources[0];

	for (int i = 0; i < GOV_MAX_SOURCES; i++)
	{
		GovLimitSource *src = &inst->sources[i];

		if (src->dbid == MyDatabaseId && src->serverid == conn->serverid)
			return src;
		if (src->seen_at < stalest->seen_at)
			stalest = src;
	}
	return stalest;
}

/*
 * Under the spinlock: record conn's limits and put in force the smallest
 * of every server that called within GOV_SOURCE_TTL_MS.
 */
static void
apply_limits(GovInstance *inst, const MarketoConn *conn, TimestampTz now)
{
	GovLimitSource *src = limit_source(inst, conn);
	TimestampTz since = TimestampTzPlusMilliseconds(now, -GOV_SOURCE_TTL_MS);

	src->dbid = MyDatabaseId;
	src->serverid = conn->serverid;
	src->seen_at = now;
	src->rate_limit = Min(conn->rate_limit, GOV_RING_SIZE);
	src->max_concurrency = Min(conn->max_concurrency, GOV_MAX_SLOTS);
	src->daily_quota = conn->daily_quota;
	src->bulk_export_mb = conn->bulk_export_mb;

	inst->rate_limit = inst->max_concurrency = 0;
	inst->daily_quota = inst->bulk_export_mb = 0;
	for (int i = 0; i < GOV_MAX_SOURCES; i++)
	{
		src = &inst->sources[i];
		if (src->dbid == InvalidOid || src->seen_at < since)
			continue;
		LOWER_LIMIT(inst->rate_limit, src->rate_limit);
		LOWER_LIMIT(inst->max_concurrency, src->max_concurrency);
		LOWER_LIMIT(inst->daily_quota, src->daily_quota);
		LOWER_LIMIT(inst->bulk_export_mb, src->bulk_export_mb);
	}
}

/* conn's instance, locked, with conn's limits applied. */
static GovInstance *
lock_instance(const MarketoConn *conn)
{
	GovInstance *inst = &gov->instances[instance_index(conn->instance)];
	TimestampTz now = GetCurrentTimestamp();

	instance_lock(inst, current_day(now));
	apply_limits(inst, conn, now);
	return inst;
}


/*
 * The rate window and the slots; all under the instance's spinlock
 */

/*
 * When the window next has room for a call, given that room ended calls
 * may take (rate_limit less the calls in flight).
 */
static TimestampTz
window_frees_at(const GovInstance *inst, int room)
{
	int			oldest_counted;

	if (inst->ring_len < room)
		return DT_NOBEGIN;
	/* the room-th newest end is the first to leave the window */
	oldest_counted = (inst->ring_next - room + GOV_RING_SIZE) %
		GOV_RING_SIZE;
	return TimestampTzPlusMilliseconds(inst->starts[oldest_counted],
									   marketo_rate_window_ms);
}

static void
push_end(GovInstance *inst, TimestampTz now)
{
	int			newest = (inst->ring_next - 1 + GOV_RING_SIZE) % GOV_RING_SIZE;

	/*
	 * Backends read the clock before they take the spinlock, so an end may
	 * arrive a hair earlier than the newest; keep the ring in order.
	 */
	if (inst->ring_len > 0 && inst->starts[newest] > now)
		now = inst->starts[newest];
	inst->starts[inst->ring_next] = now;
	inst->ring_next = (inst->ring_next + 1) % GOV_RING_SIZE;
	if (inst->ring_len < GOV_RING_SIZE)
		inst->ring_len++;
}

static int	slots_in_use(const GovInstance *inst);

/* Calls in flight, and calls that ended within the window ending now. */
static int
window_calls(const GovInstance *inst, TimestampTz now)
{
	TimestampTz since = TimestampTzPlusMilliseconds(now,
													-marketo_rate_window_ms);
	int			n = 0;
	int			in_flight = slots_in_use(inst);

	while (n < inst->ring_len &&
		   inst->starts[(inst->ring_next - 1 - n + GOV_RING_SIZE) %
						GOV_RING_SIZE] > since)
		n++;
	return n + in_flight;
}

static int
slots_in_use(const GovInstance *inst)
{
	int			n = 0;

	for (int s = 0; s < GOV_MAX_SLOTS; s++)
	{
		if (inst->slots[s].pid != 0)
			n++;
	}
	return n;
}

/* There is a free slot: fewer than max_concurrency <= GOV_MAX_SLOTS held. */
static int
take_slot(GovInstance *inst, TimestampTz now)
{
	int			s = 0;

	while (inst->slots[s].pid != 0)
		s++;
	Assert(s < GOV_MAX_SLOTS);
	inst->slots[s].pid = MyProcPid;
	inst->slots[s].procno = MY_PROCNO;
	inst->slots[s].started_at = now;
	return s;
}

/* The call of this slot ended at now: it stays in the window a while yet. */
static void
free_slot(GovInstance *inst, int slot, TimestampTz now)
{
	if (inst->slots[slot].pid == MyProcPid)
	{
		inst->slots[slot].pid = 0;
		push_end(inst, now);
	}
}

static bool
backend_alive(int pid, int procno)
{
	PGPROC	   *proc = BackendPidGetProc(pid);

	return proc != NULL && PROCNO_OF(proc) == procno;
}

/*
 * Free the slots of backends that are gone.  Every exit path gives slots
 * back, so this is defence in depth: a slot lost to a bug would otherwise
 * shrink the instance's concurrency until the next restart.
 */
static void
reclaim_dead_owners(GovInstance *inst)
{
	GovSlot		slots[GOV_MAX_SLOTS];
	bool		freed = false;
	TimestampTz now = GetCurrentTimestamp();

	SpinLockAcquire(&inst->mutex);
	memcpy(slots, inst->slots, sizeof(slots));
	SpinLockRelease(&inst->mutex);

	for (int s = 0; s < GOV_MAX_SLOTS; s++)
	{
		if (slots[s].pid == 0 || backend_alive(slots[s].pid, slots[s].procno))
			continue;
		SpinLockAcquire(&inst->mutex);
		if (inst->slots[s].pid == slots[s].pid &&
			inst->slots[s].started_at == slots[s].started_at)
		{
			inst->slots[s].pid = 0;
			push_end(inst, now);
			freed = true;
		}
		SpinLockRelease(&inst->mutex);
	}
	if (freed)
		ConditionVariableBroadcast(&inst->cv);
}


/*
 * Backend attachment and the backstops
 */

void
governor_require_preload(void)
{
	if (gov == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("marketo_fdw must be loaded via shared_preload_libraries"),
				 errhint("Add marketo_fdw to shared_preload_libraries in postgresql.conf and restart the server.")));
}

/*
 * The backstop: give back every slot and token fetch this backend still
 * holds.  It runs when a transaction or subtransaction aborts, since only
 * an error can cut a call short, and at exit.  The quota reservation of
 * such a call stays: Marketo may well have counted it.
 */
static void
release_backend(void)
{
	for (int i = 0; i < GOV_MAX_INSTANCES; i++)
	{
		GovInstance *inst = &gov->instances[i];
		bool		freed = false;

		for (int s = 0; s < GOV_MAX_SLOTS; s++)
		{
			if (!held_calls[i][s].held)
				continue;
			held_calls[i][s].held = false;
			SpinLockAcquire(&inst->mutex);
			free_slot(inst, s, GetCurrentTimestamp());
			SpinLockRelease(&inst->mutex);
			freed = true;
		}
		if (freed)
			ConditionVariableBroadcast(&inst->cv);
	}
	governor_token_release();
}

static void
governor_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
		release_backend();
}

static void
governor_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						  SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB)
		release_backend();
}

static void
governor_exit_callback(int code, Datum arg)
{
	release_backend();
}

void
governor_attach(const char *instance)
{
	static bool backstops_registered = false;

	governor_require_preload();
	if (strlen(instance) >= GOVERNOR_INSTANCE_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_NAME_TOO_LONG),
				 errmsg("Marketo instance name is too long"),
				 errdetail("The host and port of base_url may have at most %d bytes.",
						   GOVERNOR_INSTANCE_LEN - 1)));

	if (!backstops_registered)
	{
		RegisterXactCallback(governor_xact_callback, NULL);
		RegisterSubXactCallback(governor_subxact_callback, NULL);
		before_shmem_exit(governor_exit_callback, (Datum) 0);
		backstops_registered = true;
	}
}


/*
 * Starting a call
 */

/* Under the spinlock: what, if anything, stops a call starting now. */
static Verdict
admission_verdict(const GovInstance *inst, TimestampTz now, Admission *adm)
{
	TimestampTz rate_free;
	int			in_flight;

	if (inst->day.exhausted)
		return QUOTA_EXHAUSTED;
	if (inst->day.calls >= inst->daily_quota)
		return QUOTA_USED;
	if (inst->cooldown_until > now)
	{
		adm->until = inst->cooldown_until;
		adm->throttle_kind = inst->throttle_kind;
		return WAIT_COOLDOWN;
	}
	in_flight = slots_in_use(inst);
	if (in_flight >= inst->max_concurrency)
		return WAIT_SLOT;
	/* calls in flight fill the window too; one ending makes room */
	if (in_flight >= inst->rate_limit)
		return WAIT_SLOT;
	rate_free = window_frees_at(inst, inst->rate_limit - in_flight);
	if (rate_free > now)
	{
		adm->until = rate_free;
		return WAIT_RATE;
	}
	return ADMITTED;
}

/*
 * See whether a call may start now, and if so take a slot, stamp the rate
 * window and reserve one call of the daily quota, under one spinlock so
 * that no other backend can slip in between.
 */
static void
try_admit(GovInstance *inst, const MarketoConn *conn, TimestampTz now,
		  int32 today, Admission *adm)
{
	instance_lock(inst, today);
	apply_limits(inst, conn, now);
	adm->verdict = admission_verdict(inst, now, adm);
	if (adm->verdict == ADMITTED)
	{
		adm->slot = take_slot(inst, now);
		inst->day.calls++;
	}
	adm->day_key = inst->day.day_key;
	adm->calls = inst->day.calls;
	adm->daily_quota = inst->daily_quota;
	SpinLockRelease(&inst->mutex);
}

static const char *
wait_reason(const Admission *adm)
{
	switch (adm->verdict)
	{
		case WAIT_COOLDOWN:
			return adm->throttle_kind == GOV_RATE_LIMITED ?
				"cool-down after 606" : "cool-down after 615";
		case WAIT_RATE:
			return "rate window";
		default:
			return "concurrency slot";
	}
}

/*
 * Milliseconds from now until t (> now), rounded up: waking early would
 * only mean sleeping again.
 */
static long
ms_until(TimestampTz t, TimestampTz now)
{
	return (long) ((t - now + 999) / 1000);
}

/*
 * How long to sleep before looking again.  A freed slot wakes the sleeper
 * at once; the timeout then only bounds how long a slot lost by a dead
 * backend can go unnoticed.
 */
static long
wait_ms(const Admission *adm, TimestampTz now)
{
	if (adm->verdict == WAIT_SLOT)
		return GOV_SLOT_RECHECK_MS;
	return ms_until(adm->until, now);
}

static void
stop_waiting(bool waited)
{
	ConditionVariableCancelSleep();
	if (waited)
		progress_waiting(NULL);
}

static void
quota_error(const char *instance, const Admission *adm)
{
	TimestampTz reset = governor_quota_reset_time();

	ereport(ERROR,
			(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
			 errmsg("Marketo daily API quota for instance \"%s\" is used up",
					instance),
			 adm->verdict == QUOTA_EXHAUSTED ?
			 errdetail("Marketo answered 607 (daily quota reached) after %lld calls counted here today.",
					   (long long) adm->calls) :
			 errdetail("%lld of %lld calls used today.",
					   (long long) adm->calls, (long long) adm->daily_quota),
			 errhint("The quota resets at %s.", timestamptz_to_str(reset))));
}

void
governor_begin_call(const MarketoConn *conn, GovernorCall *call)
{
	GovInstance *inst;
	Admission	adm;
	TimestampTz now;
	bool		waited = false;

	call->active = false;
	call->slot = -1;
	call->instance = instance_index(conn->instance);
	inst = &gov->instances[call->instance];

	/*
	 * Each pass admits the call or sleeps until the first moment it might
	 * be admitted: the end of the cool-down, the oldest counted start
	 * leaving the window, or a slot being freed.
	 */
	for (;;)
	{
		now = GetCurrentTimestamp();
		try_admit(inst, conn, now, current_day(now), &adm);
		if (adm.verdict == ADMITTED)
			break;
		if (adm.verdict == QUOTA_USED || adm.verdict == QUOTA_EXHAUSTED)
		{
			stop_waiting(waited);
			quota_error(conn->instance, &adm);
		}

		progress_waiting(wait_reason(&adm));
		waited = true;
		if (ConditionVariableTimedSleep(&inst->cv, wait_ms(&adm, now),
										PG_WAIT_EXTENSION) &&
			adm.verdict == WAIT_SLOT)
			reclaim_dead_owners(inst);
	}

	held_calls[call->instance][adm.slot].held = true;
	held_calls[call->instance][adm.slot].day_key = adm.day_key;
	held_calls[call->instance][adm.slot].started_at = now;
	call->slot = adm.slot;
	call->active = true;
	stop_waiting(waited);
}


/*
 * Ending a call, and Marketo's signals
 */

static double
random_fraction(void)
{
#if PG_VERSION_NUM >= 150000
	return pg_prng_double(&pg_global_prng_state);
#else
	return (double) random() / ((double) MAX_RANDOM_VALUE + 1);
#endif
}

/*
 * base * 2^attempt, at most cap, less up to a quarter at random so that
 * clients that failed together do not come back together.
 */
static int64
backoff_ms(int64 base, int64 cap, int attempt, double jitter)
{
	int64		delay;

	attempt = Max(0, Min(attempt, GOV_MAX_DOUBLINGS));
	delay = Min(cap, base << attempt);
	return delay - (int64) (delay * jitter / 4);
}

/*
 * The shared pause after a 606 or 615.  606 means the rate window is full,
 * so the pause starts at a tenth of the window and grows to all of it; a
 * 615 clears as soon as any call in flight ends, so it starts at 100 ms
 * and grows to 2 s.
 */
static int64
throttle_ms(GovernorOutcome kind, int streak, double jitter)
{
	if (kind == GOV_RATE_LIMITED)
		return backoff_ms(Max(1, marketo_rate_window_ms / 10),
						  marketo_rate_window_ms, streak, jitter);
	return backoff_ms(GOV_615_BASE_MS, GOV_615_CAP_MS, streak, jitter);
}

/*
 * Under the spinlock: make every backend pause, longer for each throttle
 * in a row.  Calls already in flight when the pause was last lengthened
 * belong to the burst it answers: their 606s and 615s are counted but do
 * not lengthen it again.
 */
static void
throttle(GovInstance *inst, GovernorOutcome kind, TimestampTz started_at,
		 TimestampTz now, double jitter)
{
	TimestampTz until;

	if (started_at < inst->throttled_at)
		return;
	until = TimestampTzPlusMilliseconds(now, throttle_ms(kind,
														 inst->throttle_streak,
														 jitter));
	inst->cooldown_until = Max(inst->cooldown_until, until);
	inst->throttled_at = now;
	inst->throttle_kind = kind;
	if (inst->throttle_streak < GOV_MAX_DOUBLINGS)
		inst->throttle_streak++;
}

/* Under the spinlock: what Marketo's answer means for everyone. */
static void
record_outcome(GovInstance *inst, GovernorOutcome outcome,
			   const HeldCall *held, TimestampTz now, double jitter)
{
	bool		same_day = held->day_key == inst->day.day_key;

	switch (outcome)
	{
		case GOV_COUNTED:
			/* Marketo keeps up again: the next throttle starts afresh */
			inst->throttle_streak = 0;
			return;
		case GOV_NOT_COUNTED:
			break;
		case GOV_RATE_LIMITED:
			inst->day.errors_606++;
			throttle(inst, outcome, held->started_at, now, jitter);
			break;
		case GOV_CONCURRENCY_LIMITED:
			inst->day.errors_615++;
			throttle(inst, outcome, held->started_at, now, jitter);
			break;
		case GOV_QUOTA_EXHAUSTED:
			inst->day.errors_607++;
			/* a 607 from before midnight in Chicago says nothing of today */
			if (same_day)
				inst->day.exhausted = true;
			break;
	}

	/* Marketo did not count the call: give back what begin_call reserved */
	if (same_day)
		inst->day.calls--;
}

void
governor_end_call(GovernorCall *call, GovernorOutcome outcome)
{
	GovInstance *inst;
	HeldCall   *held;
	TimestampTz now;
	int32		today;
	double		jitter;

	if (!call->active)
		return;
	call->active = false;
	held = &held_calls[call->instance][call->slot];
	if (!held->held)
		return;					/* a backstop has given the slot back */

	inst = &gov->instances[call->instance];
	now = GetCurrentTimestamp();
	today = current_day(now);
	jitter = random_fraction();

	held->held = false;
	instance_lock(inst, today);
	free_slot(inst, call->slot, now);
	record_outcome(inst, outcome, held, now, jitter);
	SpinLockRelease(&inst->mutex);
	ConditionVariableBroadcast(&inst->cv);
}

void
governor_note_retry(const MarketoConn *conn)
{
	GovInstance *inst = lock_instance(conn);

	inst->day.retries++;
	SpinLockRelease(&inst->mutex);
}

/*
 * A retry after a failure only this call saw: base max(50 ms, window/40),
 * doubling per attempt up to one rate window, with jitter.  The sleep ends
 * early on cancel, statement_timeout or shutdown.
 */
void
governor_backoff(const MarketoConn *conn, int attempt)
{
	int64		delay = backoff_ms(Max(GOV_RETRY_MIN_BASE_MS,
									   marketo_rate_window_ms / 40),
								   marketo_rate_window_ms, attempt,
								   random_fraction());
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													   delay);

	progress_waiting("retry back-off");
	for (;;)
	{
		TimestampTz now = GetCurrentTimestamp();

		if (now >= deadline)
			break;
		(void) WaitLatch(MyLatch,
						 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 ms_until(deadline, now), PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
	progress_waiting(NULL);
}


/*
 * Bulk extract accounting
 */

bool
governor_bulk_enqueue(const MarketoConn *conn)
{
	GovInstance *inst = lock_instance(conn);
	bool		queued = inst->bulk_queued < GOV_MAX_BULK_QUEUED;

	if (queued)
		inst->bulk_queued++;
	SpinLockRelease(&inst->mutex);
	return queued;
}

bool
governor_bulk_start(const MarketoConn *conn)
{
	GovInstance *inst = lock_instance(conn);
	bool		started = inst->bulk_running < GOV_MAX_BULK_RUNNING;

	if (started)
		inst->bulk_running++;
	SpinLockRelease(&inst->mutex);
	return started;
}

void
governor_bulk_finish(const MarketoConn *conn, bool was_processing)
{
	GovInstance *inst = lock_instance(conn);

	if (was_processing && inst->bulk_running > 0)
		inst->bulk_running--;
	if (inst->bulk_queued > 0)
		inst->bulk_queued--;
	SpinLockRelease(&inst->mutex);
}

/*
 * Count mb extracted megabytes (Marketo counts them whatever we decide);
 * false once today's total is past bulk_export_mb.
 */
bool
governor_bulk_add_mb(const MarketoConn *conn, double mb)
{
	GovInstance *inst = lock_instance(conn);
	bool		within;

	inst->day.bulk_mb += mb;
	within = inst->day.bulk_mb <= inst->bulk_export_mb;
	SpinLockRelease(&inst->mutex);
	return within;
}


/*
 * marketo_fdw_status()
 */

/* Copy every instance, each under its spinlock so that its row agrees. */
static int
snapshot_instances(GovSnapshot *snaps, TimestampTz now, int32 today)
{
	int			n;

	LWLockAcquire(gov->lock, LW_SHARED);
	n = gov->ninstances;
	for (int i = 0; i < n; i++)
	{
		GovInstance *inst = &gov->instances[i];
		GovSnapshot *snap = &snaps[i];

		strlcpy(snap->name, inst->name, sizeof(snap->name));
		instance_lock(inst, today);
		snap->day = inst->day;
		snap->daily_quota = inst->daily_quota;
		snap->window_calls = window_calls(inst, now);
		snap->rate_limit = inst->rate_limit;
		snap->in_flight = slots_in_use(inst);
		snap->max_concurrency = inst->max_concurrency;
		snap->cooldown_until = inst->cooldown_until;
		snap->bulk_running = inst->bulk_running;
		snap->bulk_queued = inst->bulk_queued;
		SpinLockRelease(&inst->mutex);
	}
	LWLockRelease(gov->lock);
	return n;
}

/*
 * One row.  Limits are NULL for an instance no call has used since the
 * restart that brought back its counters: nobody has told us them yet.
 */
static void
status_row(ReturnSetInfo *rsinfo, const GovSnapshot *snap, TimestampTz now,
		   TimestampTz reset)
{
	Datum		values[GOV_STATUS_COLS];
	bool		nulls[GOV_STATUS_COLS];

	memset(nulls, 0, sizeof(nulls));
	values[0] = CStringGetTextDatum(snap->name);
	values[1] = Int64GetDatum(snap->day.calls);
	values[2] = Int64GetDatum(snap->daily_quota);
	nulls[2] = snap->daily_quota == 0;
	values[3] = TimestampTzGetDatum(reset);
	values[4] = Int32GetDatum(snap->window_calls);
	values[5] = Int32GetDatum(snap->rate_limit);
	nulls[5] = snap->rate_limit == 0;
	values[6] = Int32GetDatum(snap->in_flight);
	values[7] = Int32GetDatum(snap->max_concurrency);
	nulls[7] = snap->max_concurrency == 0;
	values[8] = TimestampTzGetDatum(snap->cooldown_until);
	nulls[8] = snap->cooldown_until <= now;
	values[9] = Int64GetDatum(snap->day.errors_606);
	values[10] = Int64GetDatum(snap->day.errors_615);
	values[11] = Int64GetDatum(snap->day.errors_607);
	values[12] = Int64GetDatum(snap->day.retries);
	values[13] = Int32GetDatum(snap->bulk_running);
	values[14] = Int32GetDatum(snap->bulk_queued);
	values[15] = DirectFunctionCall1(float8_numeric,
									 Float8GetDatum(snap->day.bulk_mb));
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

Datum
marketo_fdw_status(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	TimestampTz now = GetCurrentTimestamp();
	int32		today;
	TimestampTz reset;
	GovSnapshot *snaps;
	int			n;

	governor_require_preload();
	marketo_init_srf(fcinfo);

	today = current_day(now);
	reset = day_end(today);
	snaps = palloc(sizeof(GovSnapshot) * GOV_MAX_INSTANCES);
	n = snapshot_instances(snaps, now, today);
	for (int i = 0; i < n; i++)
		status_row(rsinfo, &snaps[i], now, reset);

	return (Datum) 0;
}
