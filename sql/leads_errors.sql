--
-- Marketo errors, throttling, transport faults, cancel and timeouts.
--
\getenv mock_url MARKETO_MOCK_URL
SELECT mock_reset();
SELECT id FROM mkto.leads WHERE id = 1;

-- 606 (rate limit) is retried after a back-off and the rows still come
SELECT mock_reset();
SELECT mock_fault('{"kind": "606", "count": 2}');
SELECT id, email FROM mkto.leads WHERE id = 2;
SELECT error_calls('606') AS rate_limited, data_calls('GET /rest/v1/leads.json') AS data_calls;
SELECT errors_606 >= 2 AS counted, retries >= 2 AS retried FROM marketo_fdw_status();

-- 615, 604, 611 and HTTP 502/503 are retried too; a dropped connection as well
SELECT mock_reset();
SELECT mock_fault('{"kind": "615"}');
SELECT mock_fault('{"kind": "604"}');
SELECT mock_fault('{"kind": "http503"}');
SELECT mock_fault('{"kind": "reset"}');
SELECT id FROM mkto.leads WHERE id = 3;
SELECT data_calls('GET /rest/v1/leads.json') AS data_calls, count(*) AS all_calls FROM mock_log();

-- more retries than max_retries: an error that says so
SET marketo_fdw.max_retries = 1;
SELECT mock_reset();
SELECT mock_fault('{"kind": "611", "count": 5}');
\x on
SELECT * FROM try('SELECT id FROM mkto.leads WHERE id = 3');
\x off
SELECT count(*) AS calls FROM mock_log();
RESET marketo_fdw.max_retries;

-- malformed and truncated answers are clear errors, not crashes
SELECT mock_reset();
SELECT mock_fault('{"kind": "malformed"}');
SELECT id FROM mkto.leads WHERE id = 4;
SELECT mock_fault('{"kind": "truncated", "count": 10}');
SET marketo_fdw.max_retries = 0;
SELECT id FROM mkto.leads WHERE id = 4;
RESET marketo_fdw.max_retries;
SELECT mock_reset();
SELECT id FROM mkto.leads WHERE id = 4;

-- Marketo's own errors: 1003 (too many matches), 1006 (unknown field)
\x on
SELECT * FROM try($$SELECT count(*) FROM mkto.leads WHERE segment = 'smb'$$);
CREATE FOREIGN TABLE mkto.bad_leads (id int, nope text OPTIONS (field 'noSuchField'))
  SERVER mkto OPTIONS (object 'leads');
SELECT * FROM try('SELECT * FROM mkto.bad_leads WHERE id = 1');
\x off
-- a value that does not fit its column names the column, field and value
CREATE FOREIGN TABLE mkto.typed_leads (id int, pct integer OPTIONS (field 'pctComplete'),
  company integer) SERVER mkto OPTIONS (object 'leads');
SELECT id, pct FROM mkto.typed_leads WHERE id = 11;
SELECT id, company FROM mkto.typed_leads WHERE id = 11;
DROP FOREIGN TABLE mkto.bad_leads, mkto.typed_leads;

-- bad credentials: a clear error, and the secret appears nowhere
CREATE SERVER mkto_badcred FOREIGN DATA WRAPPER marketo_fdw OPTIONS (base_url :'mock_url');
CREATE USER MAPPING FOR CURRENT_USER SERVER mkto_badcred
  OPTIONS (client_id 'mock-client', client_secret 'wrong-secret-xyzzy');
CREATE FOREIGN TABLE bad_cred_leads (id int) SERVER mkto_badcred OPTIONS (object 'leads');
SELECT * FROM bad_cred_leads WHERE id = 1;
DROP SERVER mkto_badcred CASCADE;

-- a statement cap refuses a scan that needs more calls, before it starts
SELECT mock_reset();
SET marketo_fdw.max_calls_per_statement = 2;
SELECT count(*) FROM mkto.leads WHERE id = ANY (ARRAY(SELECT generate_series(1, 700)));
SELECT count(*) FROM mkto.leads WHERE id = ANY (ARRAY(SELECT generate_series(1, 600)));
RESET marketo_fdw.max_calls_per_statement;
SELECT data_calls('GET /rest/v1/leads.json');

-- statement_timeout ends a slow call within a second or so
SELECT mock_reset();
SELECT mock_fault('{"kind": "slow", "delay_ms": 30000}');
SELECT clock_timestamp() AS t0 \gset
SET statement_timeout = '500ms';
SELECT id FROM mkto.leads WHERE id = 5;
RESET statement_timeout;
SELECT clock_timestamp() - :'t0' < interval '5 s' AS prompt;
-- and the slot it held is free again
SELECT in_flight FROM marketo_fdw_status();

-- 607: the daily quota is gone; one call, no retry storm, the reset time in the hint
SELECT mock_reset();
SELECT mock_fault('{"kind": "607"}');
\x on
SELECT * FROM try('SELECT id FROM mkto.leads WHERE id = 6');
SELECT * FROM try('SELECT id FROM mkto.leads WHERE id = 6');
\x off
SELECT count(*) AS calls FROM mock_log();
SELECT errors_607, quota_resets_at > now() AS resets_later FROM marketo_fdw_status();
