/*-------------------------------------------------------------------------
 *
 * governor_status.c
 *		marketo_fdw_status(): what each instance has spent, one row each.
 *
 * The rows come from a snapshot taken first, so that no lock is held while
 * they are built and handed to the tuplestore.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "governor_internal.h"
#include "progress.h"

PG_FUNCTION_INFO_V1(marketo_fdw_status);

#define GOV_STATUS_COLS		16

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

/* Copy every instance, each under its spinlock so that its row agrees. */
static int
snapshot_instances(GovSnapshot *snaps, TimestampTz now, int32 today)
{
	GovShared  *gov = governor_shared;
	int			n;

	LWLockAcquire(gov->lock, LW_SHARED);
	n = gov->ninstances;
	for (int i = 0; i < n; i++)
	{
		GovInstance *inst = &gov->instances[i];
		GovSnapshot *snap = &snaps[i];

		strlcpy(snap->name, inst->name, sizeof(snap->name));
		governor_instance_lock(inst, today);
		snap->day = inst->day;
		snap->daily_quota = inst->daily_quota;
		snap->window_calls = governor_window_calls(inst, now);
		snap->rate_limit = inst->rate_limit;
		snap->in_flight = governor_slots_in_use(inst);
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

	today = governor_current_day(now);
	reset = governor_day_end(today);
	snaps = palloc(sizeof(GovSnapshot) * GOV_MAX_INSTANCES);
	n = snapshot_instances(snaps, now, today);
	for (int i = 0; i < n; i++)
		status_row(rsinfo, &snaps[i], now, reset);

	return (Datum) 0;
}
