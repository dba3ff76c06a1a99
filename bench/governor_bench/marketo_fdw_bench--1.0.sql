-- marketo_fdw_bench: benchmark hooks into the marketo_fdw governor
\echo Use "CREATE EXTENSION marketo_fdw_bench" to load this file. \quit

-- Loop governor_begin_call / governor_end_call against server's instance,
-- from start_at (NULL: now) for seconds (0: no time limit), at most calls
-- times.  One row: the calls made, whether the backend reached start_at
-- late, the cost of reading the clock twice (µs), and per call the
-- admission time (seconds after start_at) and the µs spent in begin_call
-- and in end_call.
CREATE FUNCTION marketo_fdw_bench_governor(
	server name,
	calls integer,
	start_at timestamptz DEFAULT NULL,
	seconds float8 DEFAULT 0,
	counted boolean DEFAULT true,
	OUT calls_made integer,
	OUT late boolean,
	OUT timer_us float8,
	OUT admit_s float8[],
	OUT begin_us float8[],
	OUT end_us float8[])
RETURNS record
AS 'MODULE_PATHNAME', 'marketo_fdw_bench_governor'
LANGUAGE C VOLATILE;

REVOKE ALL ON FUNCTION marketo_fdw_bench_governor(name, integer, timestamptz, float8, boolean) FROM PUBLIC;
