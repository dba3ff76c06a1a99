/* marketo_fdw--1.0.sql */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION marketo_fdw" to load this file. \quit

CREATE FUNCTION marketo_fdw_handler()
RETURNS fdw_handler
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT;

CREATE FUNCTION marketo_fdw_validator(text[], oid)
RETURNS void
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT;

CREATE FOREIGN DATA WRAPPER marketo_fdw
  HANDLER marketo_fdw_handler
  VALIDATOR marketo_fdw_validator;

-- One row per Marketo instance (host of base_url) the governor has seen.
CREATE FUNCTION marketo_fdw_status(
    OUT instance text,
    OUT calls_today bigint,
    OUT daily_quota bigint,
    OUT quota_resets_at timestamptz,
    OUT window_calls integer,
    OUT rate_limit integer,
    OUT in_flight integer,
    OUT max_concurrency integer,
    OUT cooldown_until timestamptz,
    OUT errors_606 bigint,
    OUT errors_615 bigint,
    OUT errors_607 bigint,
    OUT retries bigint,
    OUT bulk_jobs_running integer,
    OUT bulk_jobs_queued integer,
    OUT bulk_mb_today numeric)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'marketo_fdw_status'
LANGUAGE C STRICT VOLATILE;

-- One row per backend running a Marketo scan: what it is doing now.
CREATE FUNCTION marketo_fdw_progress(
    OUT pid integer,
    OUT object text,
    OUT instance text,
    OUT phase text,
    OUT pages bigint,
    OUT rows bigint,
    OUT calls bigint,
    OUT waiting_for text,
    OUT started_at timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'marketo_fdw_progress'
LANGUAGE C STRICT VOLATILE;

CREATE VIEW marketo_fdw_progress AS SELECT * FROM marketo_fdw_progress();
