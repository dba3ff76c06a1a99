/*-------------------------------------------------------------------------
 * governor_internal.h
 *		What the pieces of the governor share; not for other modules.
 *
 * governor.c keeps the shared memory, the instances and their limits and
 * admits calls; governor_day.c knows when Marketo's day starts;
 * governor_file.c keeps the day's counters over a clean restart;
 * governor_status.c shows them in marketo_fdw_status(); governor_token.c
 * shares access tokens.
 *-------------------------------------------------------------------------
 */
#ifndef MARKETO_GOVERNOR_INTERNAL_H
#define MARKETO_GOVERNOR_INTERNAL_H

#include "pgtime.h"
#include "storage/condition_variable.h"
#include "storage/lwlock.h"
#include "storage/spin.h"

#include "governor.h"
#include "marketo_fdw.h"

#define GOVERNOR_INSTANCE_LEN	264 /* a 253-byte host, ':', port, NUL */

#define GOV_MAX_INSTANCES	16
#define GOV_RING_SIZE		MARKETO_MAX_RATE_LIMIT
#define GOV_MAX_SLOTS		MARKETO_MAX_CONCURRENCY

/*
 * The servers (of any database) whose limits apply to an instance.  A
 * server's limits stop applying when it has not called for a while, so an
 * ALTER SERVER that raises a limit takes effect at once, and a server no
 * longer used does not hold the instance down forever.
 */
#define GOV_MAX_SOURCES		8

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
 * A backend waiting for its call to start.  Waiters start in the order
 * they began waiting, so no backend waits while later ones take the
 * budget (with a 20 s window that could mean minutes).
 */
#define GOV_MAX_WAITERS		64

typedef struct GovWaiter
{
	int			pid;			/* 0: free */
	int			procno;
	TimestampTz since;
} GovWaiter;

/*
 * What is counted per Chicago day.  The same struct, after the instance's
 * name, is the record of GOV_STAT_FILE (governor_file.c).
 */
typedef struct GovDay
{
	int32		day_key;		/* Julian day number of the date in Chicago */
	int64		calls;			/* counted calls plus calls in flight */
	int64		errors_606;
	int64		errors_615;
	int64		errors_607;
	int64		retries;
	double		bulk_mb;
} GovDay;

typedef struct GovInstance
{
	char		name[GOVERNOR_INSTANCE_LEN];	/* set once, under GovShared.lock */
	ConditionVariable cv;		/* broadcast when a slot is freed or a
								 * waiter leaves the queue */
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
	GovWaiter	waiters[GOV_MAX_WAITERS];

	/* The pause every backend keeps after Marketo answered 606 or 615 */
	TimestampTz cooldown_until;
	TimestampTz throttled_at;	/* when the pause was last lengthened */
	int			throttle_streak;	/* throttles since the last counted call */
	GovernorOutcome throttle_kind;

	GovDay		day;

	/*
	 * After a 607 nobody calls until then: a while, not the whole day, since
	 * clocks and Marketo's own reset time may differ from ours, and an
	 * admin may raise the quota.
	 */
	TimestampTz exhausted_until;

	int			bulk_running;
	int			bulk_queued;
} GovInstance;

typedef struct GovShared
{
	LWLock	   *lock;			/* claims instances */
	int			ninstances;
	GovInstance instances[GOV_MAX_INSTANCES];
} GovShared;

/* NULL unless the library was preloaded */
extern GovShared *governor_shared;

/* governor.c */
/* Preloaded, name not too long, this backend's abort and exit backstops set */
extern void governor_attach(const char *instance);
extern void governor_instance_lock(GovInstance *inst, int32 today);
extern int	governor_window_calls(const GovInstance *inst, TimestampTz now);
extern int	governor_slots_in_use(const GovInstance *inst);

/* governor_day.c: Marketo's day, from midnight to midnight in Chicago */
extern pg_tz *governor_quota_tz(int elevel);
extern int32 governor_day_key_at(TimestampTz ts, pg_tz *tz);
extern int32 governor_current_day(TimestampTz now);
extern TimestampTz governor_day_end(int32 day_key);

/* governor_file.c: in the postmaster, under no lock */
extern void governor_load(void);
extern void governor_save(int code, Datum arg);

/* governor_token.c */
extern Size governor_token_shmem_size(void);
extern void governor_token_shmem_init(LWLock *lock);	/* under AddinShmemInitLock */
extern void governor_token_release(void);	/* backstop: end this backend's fetches */

#endif							/* MARKETO_GOVERNOR_INTERNAL_H */
