--
-- Shared fixtures: helpers that read the mock Marketo's call log, the
-- server, user mapping and foreign tables every later suite uses.
--
\getenv mock_url MARKETO_MOCK_URL
SET client_min_messages = warning;

CREATE TABLE mock_conf (url text);
INSERT INTO mock_conf VALUES (:'mock_url');
CREATE TABLE mock_out (line text);

-- Call the mock's control API with curl (as the server's OS user).
CREATE FUNCTION mock(method text, path text, body text DEFAULT '{}')
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  cmd text;
  answer jsonb;
BEGIN
  cmd := format('curl -sS -X %s -H ''Content-Type: application/json'' --data-binary %s %s%s',
                method, '''' || replace(body, '''', '''\''''') || '''',
                (SELECT url FROM mock_conf), path);
  DELETE FROM mock_out;
  EXECUTE format('COPY mock_out FROM PROGRAM %L WITH (FORMAT csv, DELIMITER E''\x01'', QUOTE E''\x02'')', cmd);
  SELECT string_agg(line, E'\n')::jsonb INTO answer FROM mock_out;
  RETURN answer;
END $$;

-- A clean log and no faults; issued tokens stay valid (no 601 first).
CREATE FUNCTION mock_reset() RETURNS void LANGUAGE sql
  AS $$ SELECT mock('POST', '/_mock/reset', '{"keep_tokens": true}'); $$;
CREATE FUNCTION mock_fault(fault jsonb) RETURNS void LANGUAGE sql
  AS $$ SELECT mock('POST', '/_mock/fault', fault::text); $$;
CREATE FUNCTION mock_config(config jsonb) RETURNS void LANGUAGE sql
  AS $$ SELECT mock('POST', '/_mock/config', config::text); $$;
-- Every REST call the mock saw since the last reset (identity calls aside).
CREATE FUNCTION mock_log() RETURNS SETOF jsonb LANGUAGE sql
  AS $$ SELECT c FROM jsonb_array_elements(mock('GET', '/_mock/log')->'calls') c
        WHERE c->>'kind' = 'rest'; $$;
-- Calls of one endpoint ("GET /rest/v1/leads.json") that Marketo answered with data.
CREATE FUNCTION data_calls(endpoint text) RETURNS bigint LANGUAGE sql
  AS $$ SELECT count(*) FROM mock_log() c
        WHERE c->>'method' || ' ' || (c->>'path') = endpoint
          AND c->>'code' IS NULL AND (c->>'status')::int = 200; $$;
-- Answers with a Marketo error code or HTTP status.
CREATE FUNCTION error_calls(code text) RETURNS bigint LANGUAGE sql
  AS $$ SELECT count(*) FROM mock_log() c
        WHERE c->>'code' = code OR 'http' || (c->>'status') = code; $$;

-- Run a statement; show its error with Marketo's request ids, timestamps
-- and call counts (which vary from run to run) masked.
CREATE FUNCTION masked(t text) RETURNS text LANGUAGE sql AS $$
  SELECT regexp_replace(regexp_replace(regexp_replace(t,
    '[0-9a-f]+#[0-9a-f]+', '<requestId>', 'g'),
    '\d{4}-\d\d-\d\d \d\d:\d\d:\d\d[+-]\d\d', '<timestamp>', 'g'),
    '\d+ calls counted', '<n> calls counted', 'g'); $$;
CREATE FUNCTION try(query text,
  OUT state text, OUT message text, OUT detail text, OUT hint text)
LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE query;
  state := '00000';
EXCEPTION WHEN others THEN
  GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, message = MESSAGE_TEXT,
                          detail = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT;
  message := masked(message); detail := masked(detail); hint := masked(hint);
END $$;

\set base_url :mock_url '/rest/'
CREATE SERVER mkto FOREIGN DATA WRAPPER marketo_fdw
  OPTIONS (base_url :'base_url', rate_limit '50', max_concurrency '5');
CREATE USER MAPPING FOR CURRENT_USER SERVER mkto
  OPTIONS (client_id 'mock-client', client_secret 'mock-secret');

CREATE SCHEMA mkto;
CREATE FOREIGN TABLE mkto.leads (
  id integer,
  email text,
  first_name text,
  surname text OPTIONS (field 'lastName'),
  company text,
  segment text,
  phone text,
  website text,
  lead_score integer,
  pct_complete numeric,
  rating float8,
  annual_revenue numeric(12,2),
  unsubscribed boolean,
  is_vip boolean,
  birth_date date,
  created_at timestamptz,
  updated_at timestamptz,
  notes text,
  interests jsonb,
  lead_partition_id integer
) SERVER mkto OPTIONS (object 'leads');

-- the local CRM tables a report joins with
CREATE TABLE crm_contacts (email text PRIMARY KEY, owner text);
INSERT INTO crm_contacts VALUES
  ('lead3@example.com', 'ana'), ('lead4@example.com', 'bo'),
  ('lead5@example.com', 'cy'), ('nobody@example.com', 'dee');
ANALYZE crm_contacts;

SELECT mock_reset();
SELECT count(*) FROM mock_log();
