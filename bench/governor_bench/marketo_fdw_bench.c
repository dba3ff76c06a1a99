/*-------------------------------------------------------------------------
 * marketo_fdw_bench.c
 *		Benchmark hooks into the marketo_fdw governor, for bench/run.sh.
 *
 * governor_begin_call and governor_end_call are exported by marketo_fdw.so,
 * which the postmaster has loaded (RTLD_GLOBAL) from
 * shared_preload_libraries before forking this backend, so this module
 * links against them at load time.  Nothing here talks to Marketo: it
 * takes and gives back governor slots as fast as the governor lets it and
 * times each pair.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "foreign/foreign.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "portability/instr_time.h"
#include "storage/latch.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "governor.h"
#include "options.h"

PG_MODULE_MAGIC;

PG_FUNCTION_INFO_V1(marketo_fdw_bench_governor);

#define MAX_BENCH_CALLS		2000000
#define TIMER_LOOPS			10000

static double
elapsed_us(instr_time from, instr_time to)
{
	INSTR_TIME_SUBTRACT(to, from);
	/* INSTR_TIME_GET_MICROSEC truncates to whole µs; keep the nanoseconds */
	return INSTR_TIME_GET_DOUBLE(to) * 1000000.0;
}

/* What reading the clock twice costs, in µs: the floor of every figure. */
static double
timer_cost_us(void)
{
	instr_time	a,
				b;
	double		total = 0;

	for (int i = 0; i < TIMER_LOOPS; i++)
	{
		INSTR_TIME_SET_CURRENT(a);
		INSTR_TIME_SET_CURRENT(b);
		total += elapsed_us(a, b);
	}
	return total / TIMER_LOOPS;
}

/* Sleep (interruptibly) until t; false if t had already passed. */
static bool
sleep_until(TimestampTz t)
{
	bool		slept = false;

	for (;;)
	{
		TimestampTz now = GetCurrentTimestamp();

		if (now >= t)
			return slept;
		slept = true;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 Max(1, (long) ((t - now) / 1000)), PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

static Datum
float8_array(double *values, int n)
{
	Datum	   *datums = palloc(sizeof(Datum) * Max(n, 1));

	for (int i = 0; i < n; i++)
		datums[i] = Float8GetDatum(values[i]);
	return PointerGetDatum(construct_array(datums, n, FLOAT8OID, sizeof(float8),
										   FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

Datum
marketo_fdw_bench_governor(PG_FUNCTION_ARGS)
{
	Name		server = PG_GETARG_NAME(0);
	int32		calls = PG_GETARG_INT32(1);
	TimestampTz start_at = PG_ARGISNULL(2) ? 0 : PG_GETARG_TIMESTAMPTZ(2);
	float8		seconds = PG_GETARG_FLOAT8(3);
	GovernorOutcome outcome = PG_GETARG_BOOL(4) ? GOV_COUNTED : GOV_NOT_COUNTED;
	ForeignServer *fs;
	MarketoConn *conn;
	GovernorCall call;
	TimestampTz deadline;
	double	   *admit_s;
	double	   *begin_us;
	double	   *end_us;
	double		timer_us;
	bool		late;
	int			n;
	TupleDesc	tupdesc;
	Datum		values[6];
	bool		nulls[6] = {false};

	if (calls < 0 || calls > MAX_BENCH_CALLS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("calls must be between 0 and %d", MAX_BENCH_CALLS)));
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	fs = GetForeignServerByName(NameStr(*server), false);
	conn = marketo_conn_for_server(fs->serverid, GetUserId());
	admit_s = palloc(sizeof(double) * Max(calls, 1));
	begin_us = palloc(sizeof(double) * Max(calls, 1));
	end_us = palloc(sizeof(double) * Max(calls, 1));

	timer_us = timer_cost_us();

	/*
	 * Warm up once, untimed: the first call attaches the backend (callbacks,
	 * the time zone of the daily quota).  It ends before start_at, so it has
	 * left the rate window by then if start_at is a window away.
	 */
	governor_begin_call(conn, &call);
	governor_end_call(&call, outcome);

	if (start_at == 0)
	{
		start_at = GetCurrentTimestamp();
		late = false;
	}
	else
		late = !sleep_until(start_at);
	deadline = seconds > 0 ?
		start_at + (TimestampTz) (seconds * USECS_PER_SEC) : DT_NOEND;

	for (n = 0; n < calls; n++)
	{
		instr_time	t0,
					t1,
					t2;
		TimestampTz admitted;

		CHECK_FOR_INTERRUPTS();
		if (GetCurrentTimestamp() >= deadline)
			break;
		INSTR_TIME_SET_CURRENT(t0);
		governor_begin_call(conn, &call);
		INSTR_TIME_SET_CURRENT(t1);
		governor_end_call(&call, outcome);
		INSTR_TIME_SET_CURRENT(t2);
		admitted = GetCurrentTimestamp();
		/* a call that waited past the deadline is not part of the run */
		if (admitted > deadline)
			break;
		admit_s[n] = (double) (admitted - start_at) / USECS_PER_SEC;
		begin_us[n] = elapsed_us(t0, t1);
		end_us[n] = elapsed_us(t1, t2);
	}

	values[0] = Int32GetDatum(n);
	values[1] = BoolGetDatum(late);
	values[2] = Float8GetDatum(timer_us);
	values[3] = float8_array(admit_s, n);
	values[4] = float8_array(begin_us, n);
	values[5] = float8_array(end_us, n);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
