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
 * Locking: governor_shared->lock, an LWLock, is taken only to find or
 * claim an instance.  Everything else about an instance is under its
 * spinlock, held for a few instructions and never across a wait, an
 * ereport or an HTTP call.  A backend waiting for capacity sleeps on the
 * instance's condition variable with a timeout, so cancel and
 * statement_timeout work.
 *
 * A call takes a concurrency slot in governor_begin_call and gives it back
 * in governor_end_call.  Each backend also notes the slots it holds, so
 * that when an error or exit comes in between, the abort and exit
 * backstops give them back.  A crash makes the postmaster reinitialise
 * shared memory, which starts the governor clean.
 *
 * The rest of the governor: governor_day.c says when Marketo's day starts,
 * governor_file.c keeps the daily counters over a clean restart,
 * governor_status.c shows them, governor_token.c shares access tokens.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "storage/shmem.h"
#include "utils/timestamp.h"
#if PG_VERSION_NUM >= 150000
#include "common/pg_prng.h"
#endif

#include "governor_internal.h"
#include "progress.h"

#define GOV_TRANCHE			"marketo_fdw"
#define GOV_MAX_BULK_RUNNING	2
#define GOV_MAX_BULK_QUEUED	10	/* the running ones included */

/* How often a backend waiting for a slot looks for dead slot owners */
#define GOV_SLOT_RECHECK_MS	1000

/* The pause after 615; after 606 it scales with the rate window instead */
#define GOV_615_BASE_MS		100
#define GOV_615_CAP_MS		2000
#define GOV_MAX_DOUBLINGS	16	/* keeps base << n far from overflowing */

/* Per-call retry back-off (governor_backoff) */
#define GOV_RETRY_MIN_BASE_MS	50

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

/* How long every backend stops after Marketo answered 607 */
#define GOV_EXHAUSTED_PAUSE_MS	(10 * 60 * 1000)

/* How long a server's limits apply after its last call (GovLimitSource) */
#define GOV_SOURCE_TTL_MS	(10 * 60 * 1000)

/* What stands between a call and its start. */
typedef enum Verdict
{
	ADMITTED,
	WAIT_COOLDOWN,
	WAIT_RATE,
	WAIT_SLOT,
	WAIT_TURN,					/* backends that began waiting earlier go first */
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

/* This backend's place in each instance's queue of waiters, -1 if none */
static int	my_waiter[GOV_MAX_INSTANCES];

static void leave_queue(int i);

/* A call this backend holds a slot for. */
typedef struct HeldCall
{
	bool		held;
	int32		day_key;		/* the day its quota reservation belongs to */
	TimestampTz started_at;
} HeldCall;

GovShared  *governor_shared = NULL;
static HeldCall held_calls[GOV_MAX_INSTANCES][GOV_MAX_SLOTS];

#if PG_VERSION_NUM >= 150000
static shmem_request_hook_type prev_shmem_request_hook = NULL;
#endif
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static void governor_shmem_request(void);
static void governor_shmem_startup(void);


/*
 * Shared memory
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

static void
governor_shmem_init(LWLock *lock)
{
	memset(governor_shared, 0, sizeof(GovShared));
	governor_shared->lock = lock;
	for (int i = 0; i < GOV_MAX_INSTANCES; i++)
	{
		SpinLockInit(&governor_shared->instances[i].mutex);
		ConditionVariableInit(&governor_shared->instances[i].cv);
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
	governor_shared = ShmemInitStruct("marketo_fdw governor",
									  sizeof(GovShared), &found);
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
	for (int i = 0; i < governor_shared->ninstances; i++)
	{
		if (strcmp(governor_shared->instances[i].name, name) == 0)
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

	LWLockAcquire(governor_shared->lock, LW_SHARED);
	idx = find_instance(name);
	LWLockRelease(governor_shared->lock);
	if (idx >= 0)
		return idx;

	LWLockAcquire(governor_shared->lock, LW_EXCLUSIVE);
	idx = find_instance(name);
	if (idx < 0 && governor_shared->ninstances < GOV_MAX_INSTANCES)
	{
		idx = governor_shared->ninstances++;
		strlcpy(governor_shared->instances[idx].name, name,
				GOVERNOR_INSTANCE_LEN);
	}
	LWLockRelease(governor_shared->lock);

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
void
governor_instance_lock(GovInstance *inst, int32 today)
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
	GovLimitSource mine = {MyDatabaseId, conn->serverid, now,
		Min(conn->rate_limit, GOV_RING_SIZE),
		Min(conn->max_concurrency, GOV_MAX_SLOTS),
		conn->daily_quota, conn->bulk_export_mb};

	/*
	 * More servers than entries: one still in force is not dropped but
	 * merged, so its smaller limits keep applying until it falls silent.
	 */
	if ((src->dbid != MyDatabaseId || src->serverid != conn->serverid) &&
		src->dbid != InvalidOid && src->seen_at >= since)
	{
		mine.rate_limit = Min(mine.rate_limit, src->rate_limit);
		mine.max_concurrency = Min(mine.max_concurrency, src->max_concurrency);
		mine.daily_quota = Min(mine.daily_quota, src->daily_quota);
		mine.bulk_export_mb = Min(mine.bulk_export_mb, src->bulk_export_mb);
	}
	*src = mine;

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
	int			idx = instance_index(conn->instance);
	GovInstance *inst = &governor_shared->instances[idx];
	TimestampTz now = GetCurrentTimestamp();

	governor_instance_lock(inst, governor_current_day(now));
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

/* Calls in flight, and calls that ended within the window ending now. */
int
governor_window_calls(const GovInstance *inst, TimestampTz now)
{
	TimestampTz since = TimestampTzPlusMilliseconds(now,
													-marketo_rate_window_ms);
	int			n = 0;
	int			in_flight = governor_slots_in_use(inst);

	while (n < inst->ring_len &&
		   inst->starts[(inst->ring_next - 1 - n + GOV_RING_SIZE) %
						GOV_RING_SIZE] > since)
		n++;
	return n + in_flight;
}

int
governor_slots_in_use(const GovInstance *inst)
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
 * Free the slots and queue places of backends that are gone.  Every exit
 * path gives them back, so this is defence in depth: a slot lost to a bug
 * would otherwise shrink the instance's concurrency until the next
 * restart, and a lost place would stall the queue behind it.
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
	for (int w = 0; w < GOV_MAX_WAITERS; w++)
	{
		GovWaiter	waiter;

		SpinLockAcquire(&inst->mutex);
		waiter = inst->waiters[w];
		SpinLockRelease(&inst->mutex);
		if (waiter.pid == 0 || backend_alive(waiter.pid, waiter.procno))
			continue;
		SpinLockAcquire(&inst->mutex);
		if (inst->waiters[w].pid == waiter.pid &&
			inst->waiters[w].since == waiter.since)
		{
			inst->waiters[w].pid = 0;
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
	if (governor_shared == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("marketo_fdw must be loaded via shared_preload_libraries"),
				 errhint("Add marketo_fdw to shared_preload_libraries in postgresql.conf and restart the server.")));
}

/*
 * The backstop: give back every slot, queue place and token fetch this
 * backend still holds.  It runs when a transaction or subtransaction aborts, since only
 * an error can cut a call short, and at exit.  The quota reservation of
 * such a call stays: Marketo may well have counted it.
 */
static void
release_backend(void)
{
	TimestampTz now = GetCurrentTimestamp();

	for (int i = 0; i < GOV_MAX_INSTANCES; i++)
	{
		GovInstance *inst = &governor_shared->instances[i];
		bool		freed = false;

		for (int s = 0; s < GOV_MAX_SLOTS; s++)
		{
			if (!held_calls[i][s].held)
				continue;
			held_calls[i][s].held = false;
			SpinLockAcquire(&inst->mutex);
			free_slot(inst, s, now);
			SpinLockRelease(&inst->mutex);
			freed = true;
		}
		if (freed)
			ConditionVariableBroadcast(&inst->cv);
		leave_queue(i);
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
		for (int i = 0; i < GOV_MAX_INSTANCES; i++)
			my_waiter[i] = -1;
		backstops_registered = true;
	}
}


/*
 * Starting a call
 */

/*
 * Under the spinlock: does another backend wait ahead of the one at place
 * (-1: one not queued yet, behind every waiter)?
 */
static bool
earlier_waiter(const GovInstance *inst, int place)
{
	const GovWaiter *me = place >= 0 ? &inst->waiters[place] : NULL;

	for (int w = 0; w < GOV_MAX_WAITERS; w++)
	{
		const GovWaiter *other = &inst->waiters[w];

		if (other->pid == 0 || w == place)
			continue;
		if (me == NULL || other->since < me->since ||
			(other->since == me->since && other->procno < me->procno))
			return true;
	}
	return false;
}

/* Under the spinlock: join the queue; a full queue just means no place. */
static int
enqueue_waiter(GovInstance *inst, TimestampTz now)
{
	for (int w = 0; w < GOV_MAX_WAITERS; w++)
	{
		if (inst->waiters[w].pid == 0)
		{
			inst->waiters[w].pid = MyProcPid;
			inst->waiters[w].procno = MY_PROCNO;
			inst->waiters[w].since = now;
			return w;
		}
	}
	return -1;
}

/* Leave instance i's queue, if in it; the next in line must look again. */
static void
leave_queue(int i)
{
	GovInstance *inst = &governor_shared->instances[i];
	int			place = my_waiter[i];

	if (place < 0)
		return;
	my_waiter[i] = -1;
	SpinLockAcquire(&inst->mutex);
	if (inst->waiters[place].pid == MyProcPid)
		inst->waiters[place].pid = 0;
	SpinLockRelease(&inst->mutex);
	ConditionVariableBroadcast(&inst->cv);
}

/* Under the spinlock: what, if anything, stops a call starting now. */
static Verdict
admission_verdict(const GovInstance *inst, int my_place, TimestampTz now,
				  Admission *adm)
{
	TimestampTz rate_free;
	int			in_flight;

	if (inst->exhausted_until > now)
		return QUOTA_EXHAUSTED;
	if (inst->day.calls >= inst->daily_quota)
		return QUOTA_USED;
	if (earlier_waiter(inst, my_place))
		return WAIT_TURN;
	if (inst->cooldown_until > now)
	{
		adm->until = inst->cooldown_until;
		adm->throttle_kind = inst->throttle_kind;
		return WAIT_COOLDOWN;
	}
	in_flight = governor_slots_in_use(inst);
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
	int			i = inst - governor_shared->instances;

	governor_instance_lock(inst, today);
	apply_limits(inst, conn, now);
	adm->verdict = admission_verdict(inst, my_waiter[i], now, adm);
	if (adm->verdict == ADMITTED)
	{
		adm->slot = take_slot(inst, now);
		inst->day.calls++;
	}
	else if (adm->verdict != QUOTA_USED && adm->verdict != QUOTA_EXHAUSTED &&
			 my_waiter[i] < 0)
		my_waiter[i] = enqueue_waiter(inst, now);
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
		case WAIT_TURN:
			return "turn behind other backends";
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
	if (adm->verdict == WAIT_SLOT || adm->verdict == WAIT_TURN)
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
	Admission	adm = {0};
	TimestampTz now;
	bool		waited = false;

	call->active = false;
	call->slot = -1;
	call->instance = instance_index(conn->instance);
	inst = &governor_shared->instances[call->instance];

	/*
	 * Each pass admits the call or sleeps until the first moment it might
	 * be admitted: the end of the cool-down, the oldest counted start
	 * leaving the window, or a slot being freed.
	 */
	for (;;)
	{
		now = GetCurrentTimestamp();
		try_admit(inst, conn, now, governor_current_day(now), &adm);
		if (adm.verdict == ADMITTED)
			break;
		if (adm.verdict == QUOTA_USED || adm.verdict == QUOTA_EXHAUSTED)
		{
			leave_queue(call->instance);
			stop_waiting(waited);
			quota_error(conn->instance, &adm);
		}

		progress_waiting(wait_reason(&adm));
		waited = true;
		if (ConditionVariableTimedSleep(&inst->cv, wait_ms(&adm, now),
										PG_WAIT_EXTENSION) &&
			(adm.verdict == WAIT_SLOT || adm.verdict == WAIT_TURN))
			reclaim_dead_owners(inst);
	}
	leave_queue(call->instance);

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
			/* 606 and 615 are not among the codes Marketo does not count */
			inst->day.errors_606++;
			throttle(inst, outcome, held->started_at, now, jitter);
			return;
		case GOV_CONCURRENCY_LIMITED:
			inst->day.errors_615++;
			throttle(inst, outcome, held->started_at, now, jitter);
			return;
		case GOV_QUOTA_EXHAUSTED:
			inst->day.errors_607++;
			inst->exhausted_until =
				Min(TimestampTzPlusMilliseconds(now, GOV_EXHAUSTED_PAUSE_MS),
					governor_day_end(inst->day.day_key));
			return;
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

	inst = &governor_shared->instances[call->instance];
	now = GetCurrentTimestamp();
	today = governor_current_day(now);
	jitter = random_fraction();

	held->held = false;
	governor_instance_lock(inst, today);
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
