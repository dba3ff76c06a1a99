-- bench/run.sh: the objects every benchmark uses, in the throw-away cluster.
-- psql variables: mock_url (the mock Marketo), gov_url (an instance that is
-- never called: the governor benchmark only takes and gives back slots).
\set ON_ERROR_STOP 1
CREATE EXTENSION marketo_fdw;
CREATE EXTENSION marketo_fdw_bench;

-- Marketo's largest limits, and a daily quota the benchmark never reaches.
CREATE SERVER mkto FOREIGN DATA WRAPPER marketo_fdw
  OPTIONS (base_url :'mock_url', rate_limit '100', max_concurrency '10',
           daily_quota '100000000');
CREATE SERVER gov FOREIGN DATA WRAPPER marketo_fdw
  OPTIONS (base_url :'gov_url', rate_limit '100', max_concurrency '10',
           daily_quota '100000000');
CREATE USER MAPPING FOR PUBLIC SERVER mkto
  OPTIONS (client_id 'mock-client', client_secret 'mock-secret');
CREATE USER MAPPING FOR PUBLIC SERVER gov
  OPTIONS (client_id 'mock-client', client_secret 'mock-secret');

CREATE SCHEMA bench;
CREATE FOREIGN TABLE bench.leads (id integer, email text, first_name text)
  SERVER mkto OPTIONS (object 'leads');
-- every kind of column the converters handle
CREATE FOREIGN TABLE bench.leads_wide (
  id integer, email text, first_name text, last_name text, segment text,
  company text, title text, phone text, website text, lead_role text,
  lead_score integer, pct_complete numeric, rating float8,
  annual_revenue numeric, unsubscribed boolean, is_vip boolean,
  birth_date date, created_at timestamptz, updated_at timestamptz,
  interests jsonb
) SERVER mkto OPTIONS (object 'leads');

-- The mock's raw answers to the FDW's calls, for the decoding baseline.
CREATE TABLE bench.raw (n integer, body text, bodyb jsonb);
-- out of line but not compressed: the baseline parses, it does not inflate
ALTER TABLE bench.raw ALTER body SET STORAGE EXTERNAL, ALTER bodyb SET STORAGE EXTERNAL;

-- jsonb_to_recordset over those answers, with the columns of leads_wide:
-- from the text as it came (parsed here, as the FDW must), and from jsonb
-- parsed beforehand (conversion to columns only).
\set leadcols '"id" integer, "email" text, "firstName" text, "lastName" text, "segment" text, "company" text, "title" text, "phone" text, "website" text, "leadRole" text, "leadScore" integer, "pctComplete" numeric, "rating" float8, "annualRevenue" numeric, "unsubscribed" boolean, "isVip" boolean, "birthDate" date, "createdAt" timestamptz, "updatedAt" timestamptz, "interests" jsonb'
CREATE VIEW bench.raw_leads AS
SELECT x.* FROM bench.raw r, jsonb_to_recordset(r.body::jsonb -> 'result') AS x(:leadcols);
CREATE VIEW bench.raw_leads_b AS
SELECT x.* FROM bench.raw r, jsonb_to_recordset(r.bodyb -> 'result') AS x(:leadcols);

-- The governor runs: one row per backend per run.
CREATE TABLE bench.gov_runs (
  backends integer, pid integer, calls_made integer, late boolean,
  timer_us float8, admit_s float8[], begin_us float8[], end_us float8[]);

-- Milliseconds each of reps executions of q takes.
CREATE FUNCTION bench.time_ms(q text, reps integer) RETURNS float8[]
LANGUAGE plpgsql AS $$
DECLARE
  t0 timestamptz;
  r float8[] := '{}';
BEGIN
  FOR i IN 1..reps LOOP
    t0 := clock_timestamp();
    EXECUTE q;
    r := r || (extract(epoch FROM clock_timestamp() - t0) * 1000)::float8;
  END LOOP;
  RETURN r;
END $$;

-- Each query of queries once per round, in turn; milliseconds into bench.timings.
CREATE TABLE bench.timings (label text, ms float8);
CREATE FUNCTION bench.time_rounds(labels text[], queries text[], rounds integer)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  t0 timestamptz;
BEGIN
  FOR r IN 1..rounds LOOP
    FOR i IN 1..array_length(queries, 1) LOOP
      t0 := clock_timestamp();
      EXECUTE queries[i];
      INSERT INTO bench.timings
        VALUES (labels[i], extract(epoch FROM clock_timestamp() - t0) * 1000);
    END LOOP;
  END LOOP;
END $$;

CREATE FUNCTION bench.median(float8[]) RETURNS float8
LANGUAGE sql IMMUTABLE AS $$
  SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x) FROM unnest($1) x $$;

-- One lookup by id through the FDW, batches * per_batch times, each timed
-- (planning, the governor, HTTP to the mock, decoding).  A pause before
-- each batch lets the previous one leave the rate window, so no lookup
-- waits for the governor.
CREATE FUNCTION bench.loopback_lookups(batches integer, per_batch integer,
  pause_s float8, OUT lookups integer, OUT mean_us float8,
  OUT median_us float8, OUT hits integer)
LANGUAGE plpgsql AS $$
DECLARE
  t0 timestamptz;
  us float8[] := '{}';
  v text;
  id integer := 100;
BEGIN
  hits := 0;
  -- warm up: the token, the connection, the catalog caches
  FOR i IN 1..5 LOOP
    EXECUTE format('SELECT email FROM bench.leads WHERE id = %s', i) INTO v;
  END LOOP;
  FOR b IN 1..batches LOOP
    PERFORM pg_sleep(pause_s);
    FOR i IN 1..per_batch LOOP
      id := id + 1;
      t0 := clock_timestamp();
      EXECUTE format('SELECT email FROM bench.leads WHERE id = %s', id) INTO v;
      us := us || (extract(epoch FROM clock_timestamp() - t0) * 1e6)::float8;
      IF v IS NOT NULL THEN hits := hits + 1; END IF;
    END LOOP;
  END LOOP;
  SELECT count(*), avg(x), bench.median(us) INTO lookups, mean_us, median_us
    FROM unnest(us) x;
END $$;

-- The governor runs of n backends: the acquire+release cost of the pairs
-- that did not wait (< 1 ms), and the share of the rate budget used.
--
-- Under the rate window (lim calls per window_s) the call k*lim+1 can start
-- no sooner than k windows after the first, so the budget-limited rate is
-- lim*k / (t[k*lim+1] - t[1]); k is the largest the run reached.  This
-- leaves out the first window's free burst, which a plain calls/seconds
-- would count as more than the budget.
CREATE FUNCTION bench.gov_report(n integer, window_s float8, lim integer,
  OUT calls bigint, OUT fast bigint, OUT mean_us float8, OUT median_us float8,
  OUT p99_us float8, OUT begin_median_us float8, OUT end_median_us float8,
  OUT timer_us float8, OUT calls_per_s float8, OUT budget_per_s float8,
  OUT share float8, OUT late boolean, OUT min_calls integer,
  OUT max_calls integer, OUT waits bigint, OUT longest_wait_ms float8)
LANGUAGE sql AS $$
  WITH r AS (SELECT * FROM bench.gov_runs WHERE backends = n),
  pairs AS (SELECT b + e AS us, b, e FROM r, unnest(r.begin_us, r.end_us) AS u(b, e)),
  fast_pairs AS (SELECT * FROM pairs WHERE us < 50),
  admits AS (SELECT t, row_number() OVER (ORDER BY t) AS i FROM r, unnest(r.admit_s) AS t),
  k AS (SELECT (count(*) - 1) / lim AS k FROM admits)
  SELECT
    (SELECT count(*) FROM pairs),
    (SELECT count(*) FROM fast_pairs),
    (SELECT avg(us) FROM fast_pairs),
    (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY us) FROM fast_pairs),
    (SELECT percentile_cont(0.99) WITHIN GROUP (ORDER BY us) FROM fast_pairs),
    (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY b) FROM fast_pairs),
    (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY e) FROM fast_pairs),
    (SELECT avg(r.timer_us) FROM r),
    (SELECT lim * k.k / ((SELECT t FROM admits WHERE i = k.k * lim + 1) -
                         (SELECT t FROM admits WHERE i = 1)) FROM k WHERE k.k > 0),
    lim / window_s,
    (SELECT k.k * window_s / ((SELECT t FROM admits WHERE i = k.k * lim + 1) -
                              (SELECT t FROM admits WHERE i = 1)) FROM k WHERE k.k > 0),
    (SELECT bool_or(r.late) FROM r),
    (SELECT min(r.calls_made) FROM r),
    (SELECT max(r.calls_made) FROM r),
    (SELECT count(*) FROM pairs WHERE us >= 1000),
    (SELECT max(us) / 1000 FROM pairs)
$$;
