#!/usr/bin/python3
"""Mock Marketo REST server for the marketo_fdw tests (Python 3.11 stdlib only).

Behaves as /work/shared/marketo-api.md says the real Marketo does (sections
0-5, 12).  Implementation lives in test/mock/ (data, routes, leads, state,
server); this file is the entry point and the reference for the facts the
tests rely on.

COMMAND LINE
  python3 test/mock_marketo.py --port 0 --port-file FILE
      [--rate-window SECONDS (float, 20)] [--rate-limit 100] [--max-in-flight 10]
      [--daily-quota 50000] [--latency-ms 0 (float)] [--token-lifetime 3600 (float s)]
      [--log-file FILE] [--verbose]
  Binds 127.0.0.1 (port 0 = any free port), writes "PORT\\n" to --port-file
  atomically (tmp file + rename), prints "mock marketo listening on
  127.0.0.1:PORT", serves until SIGTERM/SIGINT, then exits 0.  HTTP/1.1
  keep-alive, Content-Length always, TCP_NODELAY, listen backlog 128.

IDENTITY
  GET|POST /identity/oauth/token?grant_type=client_credentials&client_id=&client_secret=
  (POST may carry them as an x-www-form-urlencoded body).  Clients:
  mock-client/mock-secret and mock-client-2/mock-secret-2 (independent tokens).
  200 {"access_token":"<uuid4>:ab","token_type":"bearer","expires_in":N,
       "scope":"api@mock.example"} + Cache-Control: no-store, Pragma: no-cache.
  expires_in = floor(remaining seconds); the same token is returned until it
  expires, then a new one is minted (lifetime = token_lifetime at mint time).
  Bad client/secret -> 401 {"error":"invalid_client","error_description":"Bad client credentials"}.
  grant_type missing -> 400 invalid_request; other grant_type -> 400 unsupported_grant_type.
  Identity calls are logged (kind "identity") but never limited or counted.

REST AUTH  (every /rest/... and /bulk/... call)
  Authorization: Bearer <token> (scheme case-insensitive).  Else the deprecated
  access_token query/form parameter (auth "param"; every call that carries the
  parameter, even alongside a header, counts in access_token_param_uses).
  Unknown/absent token -> 601 "Access token invalid"; expired -> 602
  "Access token expired".  Both HTTP 200, not admitted, not counted.

ENVELOPE
  HTTP 200, Content-Type application/json;charset=UTF-8, requestId "hex#hex",
  errors[].code a string.  Success: {"requestId","result","success":true}
  (+ "moreResult":true,"nextPageToken" on non-last pages).  Error:
  {"requestId","success":false,"errors":[{"code","message"}]} (no result).
  gzip (Content-Encoding: gzip) when Accept-Encoding contains "gzip" and the
  body is >= 1024 bytes (REST JSON only; identity/control never).
  URI (path+query) > 8192 bytes -> 414 text/plain; body > 1048576 -> 413
  text/plain + Connection: close (also answered to Expect: 100-continue).
  Both are logged (status 414/413, admitted false, errors "http414"/"http413").
  POST <path>?_method=GET (or _method=GET inside the form body) with an
  x-www-form-urlencoded body = that GET with query+form params (first
  occurrence of a name wins, query before body); logged method GET,
  override true.  _method works for any method name (e.g. DELETE).
  Unknown REST path -> 610 "Requested resource not found" (counted); known
  path, other method -> 605 "Request method 'POST' not supported" (not counted).
  Paths outside /rest/, /bulk/, /identity/, /_mock/ -> HTTP 404 text/plain,
  logged with kind "other".  This includes "//rest/..." (checked on the raw
  request line; Marketo is deprecating double-slash URLs).
  A handler exception -> 611 "System error" (traceback on stderr).

LIMITS  (REST calls only)  check order:
  auth 601/602 -> quota 607 -> rate 606 -> concurrency 615 -> faults -> handler
  607 "Daily quota reached" when quota_used >= daily_quota.
  606 "Max rate limit '100' exceeded with in '20' secs" when the number of
      admitted calls with start time in (now - rate_window, now] >= rate_limit.
  615 "Concurrent access limit '10' reached" when admitted calls in flight
      (admission .. response ready to write) >= max_in_flight.
  Admitted calls then sleep latency_ms (while in flight).  quota_used counts
  admitted calls whose answer code is not 601/602/604/605/608/611 (reserved at
  admission, released at the end if not counted).  606/607/615 rejections are
  not admitted, not in flight, get no latency; 606 and 615 count against the
  daily quota (Marketo exempts only 601/602/604/605/608/611), 607 does not.

LEAD DATA  (static; /_mock/reset never changes it)
  2500 leads, id 1..2500, ordered by id in every answer.
  id            integer   readOnly
  email         email     lead{id}@example.com; 2401 and 2402 both
                          shared@example.com; 2500 null
  firstName     string    First{id}; null when id%10==0; 3 'Zoë', 4 '山田',
                          5 'Łukasz', 6 "O'Brien"
  lastName      string    Last{id}
  segment       string    'enterprise' 1..650, 'smb' 651..1900, 'mid' 1901..2500
  company       string    'Company N', N = (id-1)//100 + 1 (100 leads each,
                          Company 1..Company 25; never null)
  -- the fields below are null when id % 7 == 0 unless noted --
  title         string    ['Engineer','Manager','Director','VP','Analyst'][id%5]
  notes         text      'Line 1 for lead {id}\\nShe said "hi"' (newline + quotes)
  description   textarea  'Description for lead {id}, a textarea'
  phone         phone     '+1-555-%04d' % id
  website       url       'https://www.example.com/lead/{id}'
  leadPartitionId reference  JSON int 1 for 1..2000, 2 for 2001..2500; never null
  acquisitionProgramId reference  JSON int 1000 + id%5
  leadRole      lead_function ['Decision Maker','Influencer','User','Evaluator'][id%4]
  leadScore     integer   id % 100
  customScore   score     (id*3) % 200
  pctComplete   percent   id % 100 + 0.5   (decimals!)
  rating        float     id / 8           (e.g. 0.125)
  annualRevenue currency  round(id*1000 + 234.56, 2)   (lead 1: 1234.56)
  unsubscribed  boolean   id % 2 == 0
  isVip         boolean   id % 25 == 0; never null (unset custom boolean = false)
  birthDate     date      1970-01-01 + id days, 'YYYY-MM-DD' (lead 1: 1970-01-02)
  createdAt     datetime  readOnly; 2024-01-01T00:00:00Z + id hours
                          (lead 1: 2024-01-01T01:00:00Z), never null
  updatedAt     datetime  readOnly; createdAt + 1 day, never null
  interests     array     JSON array ['golf','tennis','chess'][:id%3+1]
  formulaScore  formula   readOnly; string 'score-{id%10}'
  describe order = the order above (ids 1..26 in the order of
  mock/data.py FIELD_SPECS: id,email,firstName,lastName,segment,company,title,
  notes,description,phone,website,leadPartitionId,acquisitionProgramId,leadRole,
  leadScore,customScore,pctComplete,rating,annualRevenue,unsubscribed,isVip,
  birthDate,createdAt,updatedAt,interests,formulaScore).
  length: 255 for string/email/phone/url/lead_function, 30000 for text/textarea,
  absent otherwise.  soap absent for createdAt/updatedAt only.

  GET /rest/v1/leads/describe.json   result[] {id,displayName,dataType,[length],
      rest:{name,readOnly},[soap:{name,readOnly}]}
  GET /rest/v1/leads/describe2.json  result[0] {name:"API Lead",searchableFields,
      fields[] {name,displayName,dataType,[length],updateable,crmManaged:false}}
  searchableFields: email,id,cookies,facebookId,linkedInId,twitterId,
      leadPartitionId,sfdcAccountId,sfdcContactId,sfdcLeadId,sfdcLeadOwnerId,
      sfdcOpptyId,segment,company (the sfdc*/cookies/... ones are not fields:
      filtering on them matches nothing; asking for them in fields -> 1006).

GET /rest/v1/leads.json  filterType, filterValues, fields, batchSize, nextPageToken
  Validation order (first failure wins):
    filterType missing/blank          -> 1002 "Required parameter 'filterType' is missing"
    filterValues missing/blank        -> 1002 "Required parameter 'filterValues' is missing"
    batchSize not an integer          -> 1001; < 1 or > 300 -> 1003
    filterType not a field/searchable -> 1006 "Lookup field 'x' not found"
    filterType not searchable         -> 1011 "Lookup field 'x' not supported"
    more than 300 filterValues        -> 1003 (counted before de-duplication)
    unknown name in fields            -> 1006 "Field 'x' not found"
    non-integer value for id/leadPartitionId -> 1001
    more than 1000 matching leads     -> 1003 "Too many results match the filter"
  Names (filterType, fields) are case-sensitive.  Lists are comma-separated,
  items trimmed, empty items ignored.  Matching: id/leadPartitionId numeric,
  other fields case-insensitive exact; duplicates match once.
  fields default id,email,updatedAt,createdAt,firstName,lastName; records are
  {"id":..., <requested fields in requested order>} with JSON null for empty.
  Paging (default/max batchSize 300): non-last page adds "moreResult":true and
  "nextPageToken" (base32, opaque, server-side, never expires, survives reset);
  the last page has neither key; an unknown token -> 1003.  A page request
  with nextPageToken needs no filterType/filterValues (the token holds the
  query; fields/batchSize, if given, override the stored ones).
  Examples: segment=enterprise -> 300+300+50; segment=smb (1250) -> 1003;
  segment=mid -> 600 = 300+300; leadPartitionId=2 -> 500; company=company 1 -> 100.
  No match -> {"requestId":..,"result":[],"success":true}.
GET /rest/v1/lead/{id}.json[?fields=..]  -> result [record] or [].

CONTROL API  (/_mock/..., no auth, never limited/counted/logged)
  POST   /_mock/reset   clear log, faults, tokens, in-flight/window/max state,
                        quota_used; config back to the command line.
                        -> {"ok":true,"config":{...}}
  GET    /_mock/config  -> effective config (+ quota_used)
  POST   /_mock/config  {rate_window, rate_limit, max_in_flight, daily_quota,
                        latency_ms, token_lifetime, quota_used} (any subset)
                        -> effective config; unknown key/bad value -> HTTP 400
  POST   /_mock/fault   {"kind":K,"count":1,"after":0,"path":prefix,"delay_ms":0,
                        "message":optional text} or a list of them
                        -> {"ok":true,"added":[...],"pending":n}
  GET    /_mock/fault   -> {"faults":[pending...]};  DELETE /_mock/fault clears
  GET    /_mock/log     -> {"calls":[...],"summary":{...}} (calls sorted by seq;
                        a call appears once its response is finished)
  GET    /_mock/summary -> summary;  GET /_mock/health -> {"ok":true}
  Fault kinds: any 3-4 digit Marketo code ("601","602","604","606","607",
  "608","611","615","1029",...: HTTP 200 success:false with the usual message
  or "message"), "http500"/"http502"/"http503" (any httpNNN: that status,
  text/plain), "slow" (sleep delay_ms, default 1000, then answer normally),
  "truncated" (full Content-Length, half the body, then close), "malformed"
  (200, body {"requestId":"bad#1","success":tru), "reset" (RST via SO_LINGER 0,
  no response), "expire_token" (caller's token expires now; answer 602).
  delay_ms delays any kind.  Faults are checked after auth and limits;
  each queued fault counts matching calls: while its "after" > 0 it lets a
  matching call pass (after -= 1); the first due fault in queue order fires
  (count -= 1).  No path = every REST call; path = prefix of the request path
  ("/identity" prefixes make a fault apply to identity calls instead).
  606/607/615 faults are not admitted; 601/602/604/605/608/611 and
  expire_token are admitted but not counted; all other kinds are counted.
  Every call is logged (and leaves in-flight) just BEFORE its response is
  written, so once a client has an answer, /_mock/log already holds the call.
  Log entry: seq, kind ("rest"|"identity"|"other"), t_start, t_end (seconds
  since mock start, monotonic; t_end = answer ready), method (effective), path, override, params
  (query+form, without access_token, client_secret, _method), status (null for
  "reset"), code (Marketo code string or null), counted, admitted, auth
  ("bearer"|"param"|"none"), in_flight_at_start (admitted calls in flight
  when it arrived, excluding itself), client, fault, request_id,
  access_token_param, endpoint ("GET /rest/v1/lead/{id}.json" style).
  Summary: calls (REST), identity_calls, other_calls, counted, admitted, by_endpoint
  (REST, route templates), errors (REST: code strings, "httpNNN" for non-200
  statuses, "truncated"/"malformed"/"reset"), faults_fired (by kind),
  max_in_flight, max_in_window (exact, over admitted start times, windows
  (t - rate_window, t], current rate_window), access_token_param_uses,
  bearer_calls, in_flight, quota_used, pending_faults, config.
  Tokens and secrets are never logged.  --log-file appends each log entry as
  one JSON line (flushed).
"""

import os
import sys

sys.dont_write_bytecode = True      # keep test/mock/ free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from mock.server import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
