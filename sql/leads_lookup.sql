--
-- Reading leads: pushdown of = and = ANY to filterType/filterValues, the
-- API calls each lookup spends, projection, conversion of every type.
--
SELECT mock_reset();

-- one lead by email: one call, only the fields the query needs
SELECT id, email, first_name FROM mkto.leads WHERE email = 'lead1@example.com';
SELECT data_calls('GET /rest/v1/leads.json');
SELECT c->'params'->>'filterType' AS filter, c->'params'->>'filterValues' AS vals,
       c->'params'->>'fields' AS fields, c->>'auth' AS auth
  FROM mock_log() c WHERE c->>'code' IS NULL;

-- every Marketo data type, nulls and UTF-8
SELECT mock_reset();
SELECT * FROM mkto.leads WHERE id IN (3, 4, 5, 6, 7, 10) ORDER BY id;
-- one-word custom columns (segment, rating...) are spelled as describe2 says: one
-- describe call, kept by this backend for a day
SELECT data_calls('GET /rest/v1/leads.json') AS lead_calls,
       data_calls('GET /rest/v1/leads/describe2.json') AS describe_calls;

-- lookups of 1, 300, 301 and 1000 ids: 1, 1, 2 and 4 calls
SELECT mock_reset();
SELECT count(*) FROM mkto.leads WHERE id = ANY (ARRAY(SELECT generate_series(1, 1)));
SELECT data_calls('GET /rest/v1/leads.json');
SELECT mock_reset();
SELECT count(*) FROM mkto.leads WHERE id = ANY (ARRAY(SELECT generate_series(1, 300)));
SELECT data_calls('GET /rest/v1/leads.json');
SELECT mock_reset();
SELECT count(*), min(id), max(id) FROM mkto.leads WHERE id = ANY (ARRAY(SELECT generate_series(1, 301)));
SELECT data_calls('GET /rest/v1/leads.json');
SELECT mock_reset();
SELECT count(*), count(DISTINCT id) FROM mkto.leads WHERE id = ANY (ARRAY(SELECT generate_series(1, 1000)));
SELECT data_calls('GET /rest/v1/leads.json');
SELECT max(jsonb_array_length(to_jsonb(string_to_array(c->'params'->>'filterValues', ','))))
  FROM mock_log() c WHERE c->>'code' IS NULL;

-- 300 long emails do not fit an 8 KB URI: sent as POST ?_method=GET, still one call
SELECT mock_reset();
SELECT count(*) FROM mkto.leads
 WHERE email = ANY (ARRAY(SELECT CASE WHEN g % 2 = 0 THEN 'lead' || g || '@example.com'
                                 ELSE 'somebody.with.a.long.address.' || g || '@example.com' END
                            FROM generate_series(1001, 1300) g));
SELECT data_calls('GET /rest/v1/leads.json'), bool_and((c->>'override')::bool) AS overridden
  FROM mock_log() c WHERE c->>'code' IS NULL;

-- an initplan over a local table drives the lookup: one call for all of them
SELECT mock_reset();
SELECT c.owner, l.id, l.first_name
  FROM crm_contacts c JOIN mkto.leads l ON l.email = c.email
 WHERE l.email = ANY (ARRAY(SELECT email FROM crm_contacts))
 ORDER BY l.id;
SELECT data_calls('GET /rest/v1/leads.json');

-- a correlated subquery looks each row up with its own value: one call per outer row
SELECT mock_reset();
SELECT c.owner, (SELECT l.id FROM mkto.leads l WHERE l.email = c.email) AS lead_id
  FROM crm_contacts c ORDER BY c.owner;
SELECT data_calls('GET /rest/v1/leads.json');

-- duplicates are sent once; a value with a comma is never sent, the answer stays right
SELECT mock_reset();
SELECT id FROM mkto.leads WHERE id IN (1, 1, 2, 2, 2) ORDER BY id;
SELECT id, email FROM mkto.leads WHERE email IN ('lead8@example.com', 'x,y@example.com', 'lead8@example.com');
SELECT c->'params'->>'filterValues' AS vals FROM mock_log() c WHERE c->>'code' IS NULL ORDER BY c->>'seq';

-- Marketo matches emails case-insensitively; PostgreSQL's = decides
SELECT mock_reset();
SELECT id FROM mkto.leads WHERE email = 'LEAD9@example.com';
SELECT id FROM mkto.leads WHERE lower(email) = 'lead9@example.com' AND email = ANY ('{LEAD9@example.com,lead9@example.com}');
-- duplicate emails in Marketo come back as two leads
SELECT id, email FROM mkto.leads WHERE email = 'shared@example.com' ORDER BY id;

-- other quals stay local; the pushed one is rechecked too
SELECT id, first_name FROM mkto.leads WHERE id IN (9, 10, 11) AND first_name LIKE 'First1%' ORDER BY id;

-- prepared statements push their parameters (generic plans too)
SELECT mock_reset();
PREPARE by_id(int) AS SELECT id, email FROM mkto.leads WHERE id = $1;
SET plan_cache_mode = force_generic_plan;
EXECUTE by_id(42);
EXECUTE by_id(43);
RESET plan_cache_mode;
PREPARE by_emails(text[]) AS SELECT id FROM mkto.leads WHERE email = ANY ($1) ORDER BY id;
EXECUTE by_emails('{lead44@example.com,lead45@example.com}');
SELECT data_calls('GET /rest/v1/leads.json');

-- a custom searchable field, from describe2 (already fetched by this backend)
SELECT mock_reset();
SELECT count(*) FROM mkto.leads WHERE segment = 'mid' AND id < 2000;
SELECT count(*) FROM mkto.leads WHERE segment = 'mid' AND id < 2010;
SELECT data_calls('GET /rest/v1/leads/describe2.json') AS describe_calls,
       data_calls('GET /rest/v1/leads.json') AS lead_calls;

-- columns match fields whatever their case; Marketo gets the field's own spelling
SELECT mock_reset();
CREATE FOREIGN TABLE mkto.leads_caseless (id integer, firstname text, "LeadScore" integer,
  annualrevenue numeric, "isVIP" boolean) SERVER mkto OPTIONS (object 'leads');
SELECT * FROM mkto.leads_caseless WHERE id = 12;
SELECT c->'params'->>'fields' AS fields FROM mock_log() c WHERE c->>'path' = '/rest/v1/leads.json';
SELECT data_calls('GET /rest/v1/leads/describe2.json') AS describe_calls;
DROP FOREIGN TABLE mkto.leads_caseless;

-- nested loops and cursors read the same rows again without new calls
SELECT mock_reset();
SET enable_hashjoin = off; SET enable_mergejoin = off; SET enable_material = off;
SELECT g, l.id FROM generate_series(1, 3) g, mkto.leads l WHERE l.id IN (21, 22) ORDER BY g, l.id;
RESET enable_hashjoin; RESET enable_mergejoin; RESET enable_material;
SELECT data_calls('GET /rest/v1/leads.json');
BEGIN;
DECLARE cur SCROLL CURSOR FOR SELECT id FROM mkto.leads WHERE id IN (31, 32, 33);
FETCH 2 FROM cur;
FETCH ABSOLUTE 0 FROM cur;
FETCH ALL FROM cur;
COMMIT;

-- no filter Marketo can answer: refused before any call
SELECT mock_reset();
SELECT * FROM mkto.leads;
SELECT * FROM mkto.leads WHERE first_name = 'First1';
-- a join alone would cost a call per row: refused, with the rewrite that costs one per 300
SELECT c.owner, l.id FROM crm_contacts c JOIN mkto.leads l ON l.email = c.email;
SELECT count(*) AS calls FROM mock_log();

-- EXPLAIN shows the request and its cost in calls
EXPLAIN (COSTS OFF) SELECT id, email FROM mkto.leads WHERE email = 'lead1@example.com';
EXPLAIN (COSTS OFF) SELECT first_name FROM mkto.leads WHERE id IN (1, 2, 3);
EXPLAIN (COSTS OFF) SELECT id FROM mkto.leads WHERE id = ANY (ARRAY(SELECT generate_series(1, 700)));
EXPLAIN (VERBOSE, COSTS OFF) SELECT l.id FROM crm_contacts c JOIN mkto.leads l ON l.email = c.email
 WHERE l.email = ANY (ARRAY(SELECT email FROM crm_contacts));
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF)
  SELECT id FROM mkto.leads WHERE id = ANY (ARRAY(SELECT generate_series(1, 700)));
