--
-- Paging by nextPageToken, LIMIT, and a token that expires mid-paging.
--
SELECT mock_reset();

-- 650 leads match: pages of 300, 300 and 50
SELECT count(*), min(id), max(id) FROM mkto.leads WHERE segment = 'enterprise';
SELECT data_calls('GET /rest/v1/leads.json');
SELECT (c->'params' ? 'nextPageToken') AS has_token, c->'params'->>'batchSize' AS batch
  FROM mock_log() c WHERE c->>'path' = '/rest/v1/leads.json' ORDER BY (c->>'seq')::int;

-- LIMIT: no page is fetched that nobody reads
SELECT mock_reset();
SELECT id FROM mkto.leads WHERE segment = 'enterprise' LIMIT 3;
SELECT data_calls('GET /rest/v1/leads.json');
-- (a sort must read every page first)
SELECT mock_reset();
SELECT id FROM mkto.leads WHERE segment = 'enterprise' ORDER BY id DESC LIMIT 3;
SELECT data_calls('GET /rest/v1/leads.json');
SELECT mock_reset();
SELECT count(*) FROM (SELECT id FROM mkto.leads WHERE segment = 'enterprise' LIMIT 301) s;
SELECT data_calls('GET /rest/v1/leads.json');
-- a local qual under LIMIT still reads as far as it must
SELECT mock_reset();
SELECT id FROM mkto.leads WHERE segment = 'enterprise' AND id > 640 LIMIT 2;
SELECT data_calls('GET /rest/v1/leads.json');

-- the access token expires on the second page: refreshed, and the same page asked again
SELECT mock_reset();
SELECT mock_fault('{"kind": "expire_token", "after": 1, "path": "/rest/v1/leads.json"}');
SELECT count(*), count(DISTINCT id) FROM mkto.leads WHERE segment = 'enterprise';
SELECT data_calls('GET /rest/v1/leads.json') AS data_calls, error_calls('602') AS expired,
       (mock('GET', '/_mock/summary')->>'identity_calls')::int AS new_tokens;
-- the call after the 602 repeats its nextPageToken
SELECT token IS NOT NULL AND token = next_token AS same_page_repeated
  FROM (SELECT c->>'code' AS code, c->'params'->>'nextPageToken' AS token,
               lead(c->'params'->>'nextPageToken') OVER (ORDER BY (c->>'seq')::int) AS next_token
          FROM mock_log() c WHERE c->>'path' = '/rest/v1/leads.json') s
 WHERE code = '602';
-- bearer header always, never the access_token parameter
SELECT (mock('GET', '/_mock/summary')->>'access_token_param_uses')::int AS param_uses;
