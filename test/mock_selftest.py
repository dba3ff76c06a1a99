#!/usr/bin/python3
"""Self-test of test/mock_marketo.py: starts it on port 0 and exercises every
feature with urllib.  Prints 'N passed, N failed'; exits 1 on any failure.

    /usr/bin/python3 test/mock_selftest.py [-v]
"""

import gzip
import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
MOCK = os.path.join(HERE, "mock_marketo.py")
VERBOSE = "-v" in sys.argv

PASSED = 0
FAILED = 0
BASE = None
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def check(name, cond, detail=""):
    global PASSED, FAILED
    if cond:
        PASSED += 1
        if VERBOSE:
            print("ok   %s" % name)
    else:
        FAILED += 1
        print("FAIL %s %s" % (name, detail))
    return cond


class Resp:
    def __init__(self, status, headers, raw):
        self.status = status
        self.headers = headers
        self.raw = raw

    @property
    def body(self):
        data = self.raw
        if self.headers.get("Content-Encoding") == "gzip":
            data = gzip.decompress(data)
        return data

    def json(self):
        return json.loads(self.body.decode("utf-8"))


def request(method, path, params=None, token=None, data=None, headers=None, ctype=None):
    url = BASE + path
    if params:
        url += ("&" if "?" in url else "?") + urllib.parse.urlencode(params)
    hdrs = dict(headers or {})
    if token:
        hdrs["Authorization"] = "Bearer " + token
    if isinstance(data, dict):
        data = urllib.parse.urlencode(data).encode()
        hdrs.setdefault("Content-Type", "application/x-www-form-urlencoded")
    if ctype:
        hdrs["Content-Type"] = ctype
    req = urllib.request.Request(url, data=data, headers=hdrs, method=method)
    try:
        with OPENER.open(req, timeout=30) as r:
            return Resp(r.status, r.headers, r.read())
    except urllib.error.HTTPError as e:
        return Resp(e.code, e.headers, e.read())


def get(path, params=None, token=None, **kw):
    return request("GET", path, params, token, **kw)


def control(path, body=None, method=None):
    if method is None:
        method = "POST" if (body is not None or path == "reset") else "GET"
    data = json.dumps(body).encode() if body is not None else (None if method == "GET" else b"")
    r = request(method, "/_mock/" + path, data=data, ctype="application/json" if data is not None else None)
    return r.status, r.json()


def reset():
    return control("reset")


def cfg(**kw):
    return control("config", kw)


def fault(**kw):
    return control("fault", kw)


def summary():
    return control("summary")[1]


def calls():
    return control("log")[1]["calls"]


def token(client="mock-client", secret="mock-secret"):
    r = get("/identity/oauth/token", {"grant_type": "client_credentials",
                                      "client_id": client, "client_secret": secret})
    return r.json()["access_token"]


def leads(tok, **params):
    return get("/rest/v1/leads.json", params, tok).json()


def err_code(js):
    try:
        return js["errors"][0]["code"] if js.get("success") is False else None
    except (KeyError, IndexError, TypeError):
        return "?"


# ---------------------------------------------------------------- tests

def t_identity():
    reset()
    q = {"grant_type": "client_credentials", "client_id": "mock-client", "client_secret": "mock-secret"}
    r1 = get("/identity/oauth/token", q)
    j1 = r1.json()
    check("identity 200", r1.status == 200, r1.status)
    check("identity keys", set(j1) == {"access_token", "token_type", "expires_in", "scope"}, j1)
    check("identity token format", j1["access_token"].endswith(":ab") and len(j1["access_token"]) == 39, j1)
    check("identity bearer/scope", j1["token_type"] == "bearer" and j1["scope"] == "api@mock.example")
    check("identity expires_in fresh", 3598 <= j1["expires_in"] <= 3600, j1["expires_in"])
    check("identity no-store", r1.headers.get("Cache-Control") == "no-store"
          and r1.headers.get("Pragma") == "no-cache")
    check("identity content-type", r1.headers.get("Content-Type") == "application/json;charset=UTF-8")
    time.sleep(1.1)
    j2 = get("/identity/oauth/token", q).json()
    check("identity same token", j2["access_token"] == j1["access_token"])
    check("identity remaining lifetime", j2["expires_in"] < j1["expires_in"], (j1["expires_in"], j2["expires_in"]))
    j3 = request("POST", "/identity/oauth/token", data=q).json()
    check("identity POST form same token", j3.get("access_token") == j1["access_token"], j3)
    j4 = get("/identity/oauth/token", {"grant_type": "client_credentials",
                                       "client_id": "mock-client-2", "client_secret": "mock-secret-2"}).json()
    check("identity client 2 own token", j4["access_token"] != j1["access_token"])
    r5 = get("/identity/oauth/token", dict(q, client_secret="wrong"))
    check("identity 401", r5.status == 401 and r5.json() == {
        "error": "invalid_client", "error_description": "Bad client credentials"}, (r5.status, r5.raw))
    r6 = get("/identity/oauth/token", {"client_id": "mock-client", "client_secret": "mock-secret"})
    check("identity missing grant_type 400", r6.status == 400)
    # expiry -> 602 -> new token
    reset()                      # forget tokens, then mint short-lived ones
    cfg(token_lifetime=1)
    t1 = token()
    j = leads(t1, filterType="id", filterValues="1")
    check("short token works", j.get("success") is True, j)
    time.sleep(1.2)
    j = leads(t1, filterType="id", filterValues="1")
    check("expired token 602", err_code(j) == "602" and j["errors"][0]["message"] == "Access token expired", j)
    t2 = token()
    check("new token after expiry", t2 != t1)
    s = summary()
    check("602 not counted", s["counted"] == 1 and s["identity_calls"] == 2, s)
    check("identity calls not in rest calls", s["calls"] == 2, s)
    log = json.dumps(control("log")[1])
    check("log has no tokens/secrets", t1 not in log and t2 not in log and "mock-secret" not in log)


def t_auth():
    reset()
    j = leads(None, filterType="id", filterValues="1")
    check("601 no auth", err_code(j) == "601" and j["errors"][0]["message"] == "Access token invalid", j)
    check("601 envelope", set(j) == {"requestId", "success", "errors"} and "#" in j["requestId"], j)
    j = leads("bogus:ab", filterType="id", filterValues="1")
    check("601 bad token", err_code(j) == "601", j)
    tok = token()
    j = get("/rest/v1/leads.json", {"filterType": "id", "filterValues": "2", "access_token": tok}).json()
    check("access_token param accepted", j.get("success") is True and j["result"][0]["id"] == 2, j)
    j = request("POST", "/rest/v1/leads.json?_method=GET",
                data={"filterType": "id", "filterValues": "3", "access_token": tok}).json()
    check("access_token form param accepted", j.get("success") is True and j["result"][0]["id"] == 3, j)
    s = summary()
    check("access_token_param_uses", s["access_token_param_uses"] == 2 and s["bearer_calls"] == 1, s)
    check("601 not counted", s["counted"] == 2 and s["errors"].get("601") == 2, s)
    cl = calls()
    check("log auth kinds", [c["auth"] for c in cl if c["kind"] == "rest"] == ["none", "bearer", "param", "param"],
          [c["auth"] for c in cl])
    check("log params redacted", all("access_token" not in c["params"] for c in cl)
          and tok not in json.dumps(cl))


def t_leads_lookup():
    reset()
    tok = token()
    r = get("/rest/v1/leads.json", {"filterType": "id", "filterValues": "3,1,2,2"}, tok)
    j = r.json()
    check("lookup content-type", r.headers.get("Content-Type") == "application/json;charset=UTF-8")
    check("lookup single page keys", list(j) == ["requestId", "result", "success"], list(j))
    check("lookup ids ordered/dedup", [x["id"] for x in j["result"]] == [1, 2, 3], j)
    check("default fields", list(j["result"][0]) == ["id", "email", "updatedAt", "createdAt", "firstName", "lastName"],
          j["result"][0])
    check("lead 1 values", j["result"][0] == {"id": 1, "email": "lead1@example.com",
                                              "updatedAt": "2024-01-02T01:00:00Z",
                                              "createdAt": "2024-01-01T01:00:00Z",
                                              "firstName": "First1", "lastName": "Last1"}, j["result"][0])
    j = leads(tok, filterType="email", filterValues="lead5@example.com,LEAD6@EXAMPLE.COM")
    check("lookup email ci", [(x["id"], x["firstName"]) for x in j["result"]] == [(5, "\u0141ukasz"), (6, "O'Brien")], j)
    j = leads(tok, filterType="email", filterValues="shared@example.com")
    check("duplicate email", [x["id"] for x in j["result"]] == [2401, 2402], j)
    j = leads(tok, filterType="id", filterValues="10,2500,3,4")
    by = {x["id"]: x for x in j["result"]}
    check("null firstName", by[10]["firstName"] is None and "firstName" in by[10])
    check("null email", by[2500]["email"] is None)
    check("unicode names", by[3]["firstName"] == "Zo\u00eb" and by[4]["firstName"] == "\u5c71\u7530")
    j = leads(tok, filterType="email", filterValues="nobody@example.com")
    check("no match", j == {"requestId": j.get("requestId"), "result": [], "success": True}, j)
    j = leads(tok, filterType="company", filterValues="company 1")
    check("company ci 100", len(j["result"]) == 100 and "nextPageToken" not in j, len(j.get("result", [])))
    j = leads(tok, filterType="leadPartitionId", filterValues="2", fields="leadPartitionId")
    check("leadPartitionId 2 -> 500", len(j["result"]) == 300 and j.get("moreResult") is True, len(j["result"]))
    j = leads(tok, filterType="cookies", filterValues="abc")
    check("searchable non-field -> empty", j.get("success") is True and j["result"] == [], j)
    allf = ("company,title,notes,description,phone,website,leadPartitionId,acquisitionProgramId,leadRole,"
            "leadScore,customScore,pctComplete,rating,annualRevenue,unsubscribed,isVip,birthDate,interests,"
            "formulaScore,segment,createdAt,updatedAt")
    j = leads(tok, filterType="id", filterValues="1,7,25", fields=allf)
    r1, r7, r25 = j["result"]
    check("all fields keys", list(r1) == ["id"] + allf.split(","), list(r1))
    check("lead 1 typed values", r1["notes"] == 'Line 1 for lead 1\nShe said "hi"' and r1["pctComplete"] == 1.5
          and r1["rating"] == 0.125 and r1["annualRevenue"] == 1234.56 and r1["unsubscribed"] is False
          and r1["isVip"] is False and r1["birthDate"] == "1970-01-02" and r1["interests"] == ["golf", "tennis"]
          and r1["leadPartitionId"] == 1 and r1["acquisitionProgramId"] == 1001 and r1["leadScore"] == 1
          and r1["customScore"] == 3 and r1["formulaScore"] == "score-1" and r1["segment"] == "enterprise", r1)
    check("lead 7 nulls", all(r7[k] is None for k in ("title", "notes", "description", "phone", "website",
                                                      "acquisitionProgramId", "leadRole", "leadScore",
                                                      "customScore", "pctComplete", "rating", "annualRevenue",
                                                      "unsubscribed", "birthDate", "interests", "formulaScore"))
          and r7["isVip"] is False and r7["leadPartitionId"] == 1, r7)
    check("lead 25 isVip", r25["isVip"] is True)
    j = get("/rest/v1/lead/42.json", {"fields": "id,email,segment"}, tok).json()
    check("lead by id", j.get("result") == [{"id": 42, "email": "lead42@example.com", "segment": "enterprise"}], j)
    j = get("/rest/v1/lead/99999.json", None, tok).json()
    check("lead by id missing", j.get("result") == [] and j.get("success") is True, j)
    # describe
    j = get("/rest/v1/leads/describe.json", None, tok).json()
    d = {x["rest"]["name"]: x for x in j["result"]}
    check("describe types", {k: v["dataType"] for k, v in d.items()}.get("pctComplete") == "percent"
          and d["interests"]["dataType"] == "array" and d["leadRole"]["dataType"] == "lead_function"
          and d["formulaScore"]["dataType"] == "formula" and d["notes"]["dataType"] == "text"
          and d["description"]["dataType"] == "textarea", d.keys())
    check("describe soap/readOnly", "soap" not in d["createdAt"] and "soap" not in d["updatedAt"]
          and d["company"]["soap"]["name"] == "Company" and d["id"]["rest"]["readOnly"] is True
          and d["createdAt"]["rest"]["readOnly"] is True and d["email"]["rest"]["readOnly"] is False)
    check("describe length", d["company"]["length"] == 255 and "length" not in d["leadScore"])
    j = get("/rest/v1/leads/describe2.json", None, tok).json()
    r0 = j["result"][0]
    check("describe2", r0["name"] == "API Lead" and ["segment"] in r0["searchableFields"]
          and ["firstName"] not in r0["searchableFields"]
          and {f["name"] for f in r0["fields"]} == set(d), r0["searchableFields"])


def t_paging():
    reset()
    tok = token()
    p1 = leads(tok, filterType="segment", filterValues="enterprise", fields="segment")
    check("page1 300 + more", len(p1["result"]) == 300 and p1.get("moreResult") is True
          and isinstance(p1.get("nextPageToken"), str), {k: v for k, v in p1.items() if k != "result"})
    p2 = leads(tok, filterType="segment", filterValues="enterprise", fields="segment",
               nextPageToken=p1["nextPageToken"])
    check("page2 300 + more", len(p2["result"]) == 300 and p2.get("moreResult") is True
          and p2["nextPageToken"] != p1["nextPageToken"])
    p3 = leads(tok, nextPageToken=p2["nextPageToken"], fields="segment")
    check("page3 50, no token, no moreResult", len(p3["result"]) == 50 and "nextPageToken" not in p3
          and "moreResult" not in p3 and list(p3) == ["requestId", "result", "success"], list(p3))
    ids = [x["id"] for x in p1["result"] + p2["result"] + p3["result"]]
    check("paging ids 1..650", ids == list(range(1, 651)))
    again = leads(tok, nextPageToken=p1["nextPageToken"], fields="segment")
    check("token reusable", [x["id"] for x in again["result"]] == list(range(301, 601)))
    j = leads(tok, filterType="segment", filterValues="enterprise", batchSize="100")
    check("batchSize 100", len(j["result"]) == 100 and j.get("moreResult") is True)
    j = leads(tok, nextPageToken="NOTATOKEN")
    check("bad token 1003", err_code(j) == "1003", j)


def t_lead_errors():
    reset()
    tok = token()
    j = leads(tok, filterType="segment", filterValues="smb")
    check("smb 1003", err_code(j) == "1003" and j["errors"][0]["message"] == "Too many results match the filter"
          and "result" not in j, j)
    j = leads(tok, filterType="firstName", filterValues="First1")
    check("1011 firstName", err_code(j) == "1011" and j["errors"][0]["message"] == "Lookup field 'firstName' not supported", j)
    j = leads(tok, filterType="createdAt", filterValues="x")
    check("1011 createdAt", err_code(j) == "1011", j)
    j = leads(tok, filterType="bogus", filterValues="x")
    check("1006 lookup", err_code(j) == "1006" and j["errors"][0]["message"] == "Lookup field 'bogus' not found", j)
    j = leads(tok, filterType="id", filterValues="1", fields="id,bogus")
    check("1006 field", err_code(j) == "1006" and j["errors"][0]["message"] == "Field 'bogus' not found", j)
    j = leads(tok, filterType="id")
    check("1002 filterValues", err_code(j) == "1002", j)
    j = leads(tok, filterValues="1")
    check("1002 filterType", err_code(j) == "1002", j)
    j = leads(tok, filterType="id", filterValues="1", batchSize="301")
    check("1003 batchSize", err_code(j) == "1003", j)
    j = leads(tok, filterType="id", filterValues=",".join(str(i) for i in range(1, 302)))
    check("1003 301 values", err_code(j) == "1003", j)
    j = leads(tok, filterType="id", filterValues=",".join(str(i) for i in range(1, 301)))
    check("300 values ok", j.get("success") is True and len(j["result"]) == 300 and "nextPageToken" not in j)
    j = leads(tok, filterType="id", filterValues="abc")
    check("1001 non-int id", err_code(j) == "1001", j)
    j = get("/rest/v1/nothing.json", None, tok).json()
    check("610 unknown path", err_code(j) == "610" and j["errors"][0]["message"] == "Requested resource not found", j)
    r = request("POST", "/rest/v1/leads.json", token=tok, data=b"{}", ctype="application/json")
    check("605 wrong method", err_code(r.json()) == "605", r.raw)
    r = get("/other", None, tok)
    check("404 non-rest path", r.status == 404)
    hc = http.client.HTTPConnection("127.0.0.1", int(BASE.rsplit(":", 1)[1]), timeout=10)
    hc.request("GET", "//rest/v1/lead/1.json", headers={"Authorization": "Bearer " + tok})
    hr = hc.getresponse()
    hr.read()
    hc.close()
    check("404 double-slash path", hr.status == 404, hr.status)
    check("other_calls", summary()["other_calls"] == 2)
    s = summary()
    check("counted excludes 605", s["counted"] == s["calls"] - 1, s)
    check("by_endpoint", s["by_endpoint"].get("GET /rest/v1/leads.json") == 11
          and s["by_endpoint"].get("POST /rest/v1/leads.json") == 1, s["by_endpoint"])


def t_override_and_sizes():
    reset()
    tok = token()
    r = request("POST", "/rest/v1/leads.json?_method=GET", token=tok,
                data={"filterType": "id", "filterValues": "5,6", "fields": "id,lastName"})
    j = r.json()
    check("_method=GET", [x["id"] for x in j.get("result", [])] == [5, 6] and list(j["result"][0]) == ["id", "lastName"], j)
    r = request("POST", "/rest/v1/leads.json", token=tok,
                data={"filterType": "id", "filterValues": "8", "_method": "GET"})
    check("_method in body", r.json().get("result", [{}])[0].get("id") == 8, r.raw)
    c = calls()[-1]
    check("log override", c["method"] == "GET" and c["override"] is True and c["path"] == "/rest/v1/leads.json"
          and c["params"] == {"filterType": "id", "filterValues": "8"}, c)
    long_vals = ",".join("lead%d@example.com" % i for i in range(1, 460))
    r = get("/rest/v1/leads.json", {"filterType": "email", "filterValues": long_vals}, tok)
    check("414", r.status == 414 and r.headers.get("Content-Type", "").startswith("text/plain"), r.status)
    r = request("POST", "/rest/v1/leads.json?_method=GET", token=tok,
                data={"filterType": "email", "filterValues": ",".join("lead%d@example.com" % i for i in range(1, 301))})
    check("long list via override", len(r.json().get("result", [])) == 300, r.raw[:200])
    r = request("POST", "/rest/v1/leads.json", token=tok, data=b"x" * (1048576 + 10), ctype="application/json")
    check("413", r.status == 413, r.status)
    s = summary()
    check("414/413 logged", s["errors"].get("http414") == 1 and s["errors"].get("http413") == 1, s["errors"])


def t_gzip():
    reset()
    tok = token()
    r = get("/rest/v1/leads.json", {"filterType": "segment", "filterValues": "enterprise"}, tok,
            headers={"Accept-Encoding": "gzip"})
    check("gzip big", r.headers.get("Content-Encoding") == "gzip"
          and int(r.headers["Content-Length"]) == len(r.raw) and len(r.json()["result"]) == 300)
    r = get("/rest/v1/leads.json", {"filterType": "id", "filterValues": "1"}, tok, headers={"Accept-Encoding": "gzip"})
    check("no gzip small", r.headers.get("Content-Encoding") is None and len(r.raw) < 1024)
    r = get("/rest/v1/leads.json", {"filterType": "segment", "filterValues": "enterprise"}, tok)
    check("no gzip unasked", r.headers.get("Content-Encoding") is None and r.json()["success"] is True)


def t_faults():
    reset()
    tok = token()
    q = {"filterType": "id", "filterValues": "1"}
    codes = {"601": "Access token invalid", "602": "Access token expired", "604": "Request timed out",
             "606": "Max rate limit '100' exceeded with in '20' secs", "607": "Daily quota reached",
             "608": "API Temporarily Unavailable", "611": "System error",
             "615": "Concurrent access limit '10' reached", "1029": "Too many jobs in queue"}
    for code, msg in codes.items():
        fault(kind=code)
        j = get("/rest/v1/leads.json", q, tok).json()
        check("fault %s" % code, err_code(j) == code and j["errors"][0]["message"] == msg, j)
        j = get("/rest/v1/leads.json", q, tok).json()
        check("fault %s consumed" % code, j.get("success") is True, j)
    fault(kind="1029", message="Export daily quota 500MB exceeded.")
    j = get("/rest/v1/leads.json", q, tok).json()
    check("fault message override", j["errors"][0]["message"] == "Export daily quota 500MB exceeded.", j)
    for st in (500, 502, 503):
        fault(kind="http%d" % st)
        r = get("/rest/v1/leads.json", q, tok)
        check("fault http%d" % st, r.status == st and r.headers.get("Content-Type", "").startswith("text/plain"), r.status)
    fault(kind="slow", delay_ms=400)
    t0 = time.monotonic()
    j = get("/rest/v1/leads.json", q, tok).json()
    check("fault slow", time.monotonic() - t0 >= 0.4 and j.get("success") is True)
    fault(kind="malformed")
    r = get("/rest/v1/leads.json", q, tok)
    check("fault malformed", r.status == 200 and r.raw == b'{"requestId":"bad#1","success":tru', r.raw)
    fault(kind="truncated")
    try:
        r = get("/rest/v1/leads.json", {"filterType": "segment", "filterValues": "enterprise"}, tok)
        check("fault truncated", False, "read %d bytes" % len(r.raw))
    except http.client.IncompleteRead as e:
        check("fault truncated", len(e.partial) > 1000 and e.expected == len(e.partial), repr(e)[:200])
    fault(kind="reset")
    try:
        r = get("/rest/v1/leads.json", q, tok)
        check("fault reset", False, r.status)
    except (ConnectionResetError, urllib.error.URLError, http.client.RemoteDisconnected) as e:
        reason = getattr(e, "reason", e)
        check("fault reset is RST", isinstance(reason, ConnectionResetError) or isinstance(e, ConnectionResetError),
              repr(e))
    fault(kind="expire_token")
    j = get("/rest/v1/leads.json", q, tok).json()
    check("fault expire_token", err_code(j) == "602", j)
    j = get("/rest/v1/leads.json", q, tok).json()
    check("expired stays expired", err_code(j) == "602", j)
    tok2 = token()
    check("new token after expire_token", tok2 != tok)
    tok = tok2
    # after / count / path
    fault(kind="608", after=2, count=2, path="/rest/v1/leads.json")
    res = [err_code(get("/rest/v1/leads.json", q, tok).json()) for _ in range(5)]
    check("fault after/count", res == [None, None, "608", "608", None], res)
    fault(kind="604", path="/rest/v1/lead/")
    j1 = get("/rest/v1/leads.json", q, tok).json()
    j2 = get("/rest/v1/lead/1.json", None, tok).json()
    check("fault path prefix", j1.get("success") is True and err_code(j2) == "604", (j1, j2))
    fault(kind="http503", path="/identity")
    r = get("/identity/oauth/token", {"grant_type": "client_credentials", "client_id": "mock-client",
                                      "client_secret": "mock-secret"})
    check("identity fault", r.status == 503, r.status)
    st, out = control("fault", {"kind": "bogus"})
    check("bad fault kind 400", st == 400, out)
    fault(kind="611", count=3)
    st, out = control("fault", method="GET")
    check("list faults", len(out["faults"]) == 1 and out["faults"][0]["count"] == 3, out)
    st, out = control("fault", method="DELETE")
    check("clear faults", out["cleared"] == 1 and summary()["pending_faults"] == 0, out)
    s = summary()
    check("fault errors summary", s["errors"].get("http503") == 1 and s["errors"].get("reset") == 1
          and s["errors"].get("truncated") == 1 and s["errors"].get("malformed") == 1
          and s["errors"].get("608") == 3, s["errors"])
    cl = [c for c in calls() if c["kind"] == "rest"]
    f = {c["fault"]: c for c in cl if c["fault"]}
    check("606/615/607 faults not admitted", all(f[k]["admitted"] is False for k in ("606", "607", "615")),
          [f[k] for k in ("606",)])
    # only 601/602/604/605/608/611 are exempt from the quota in Marketo's docs
    check("606/615 counted, 607 not", f["606"]["counted"] and f["615"]["counted"]
          and not f["607"]["counted"], [f[k] for k in ("606", "615", "607")])
    check("604/608/611 faults admitted not counted", all(f[k]["admitted"] is True and f[k]["counted"] is False
                                                         for k in ("601", "602", "604", "608", "611", "expire_token")))
    check("other faults counted", all(f[k]["counted"] is True for k in
                                      ("1029", "http500", "slow", "malformed", "truncated", "reset")))
    check("reset status null", f["reset"]["status"] is None)


def t_rate():
    reset()
    cfg(rate_window=1, rate_limit=5)
    tok = token()
    q = {"filterType": "id", "filterValues": "1"}
    res = [err_code(get("/rest/v1/leads.json", q, tok).json()) for _ in range(7)]
    check("rate 5 ok then 606", res == [None] * 5 + ["606", "606"], res)
    j = get("/rest/v1/leads.json", q, tok).json()
    check("606 message", j.get("errors", [{}])[0].get("message") == "Max rate limit '5' exceeded with in '1' secs", j)
    time.sleep(1.05)
    j = get("/rest/v1/leads.json", q, tok).json()
    check("rate window slides", j.get("success") is True, j)
    s = summary()
    check("max_in_window", s["max_in_window"] == 5, s["max_in_window"])
    check("606 counted, not admitted", s["counted"] == 9 and s["admitted"] == 6 and s["errors"].get("606") == 3, s)


def t_concurrency():
    reset()
    cfg(latency_ms=500, max_in_flight=2)
    tok = token()
    out = []
    barrier = threading.Barrier(3)

    def worker():
        barrier.wait()
        out.append(err_code(leads(tok, filterType="id", filterValues="1")))

    ths = [threading.Thread(target=worker) for _ in range(3)]
    t0 = time.monotonic()
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    check("615 with 3 vs 2", sorted(map(str, out)) == ["615", "None", "None"], out)
    check("latency applied", time.monotonic() - t0 >= 0.5)
    fault(kind="615")
    j = leads(tok, filterType="id", filterValues="1")
    check("615 message uses config", j.get("errors", [{}])[0].get("message") == "Concurrent access limit '2' reached", j)
    s = summary()
    check("max_in_flight", s["max_in_flight"] == 2 and s["in_flight"] == 0, s)
    cl = [c for c in calls() if c["kind"] == "rest"]
    rej = [c for c in cl if c["code"] == "615" and c["fault"] is None]
    check("615 log", len(rej) == 1 and rej[0]["admitted"] is False and rej[0]["in_flight_at_start"] == 2, rej)
    check("t_end after latency", all(c["t_end"] - c["t_start"] >= 0.49 for c in cl if c["admitted"]))


def t_burst():
    reset()
    cfg(max_in_flight=1000)
    tok = token()
    errs = []

    def worker(k):
        hc = http.client.HTTPConnection("127.0.0.1", int(BASE.rsplit(":", 1)[1]), timeout=30)
        for i in range(5):          # keep-alive: 5 requests on one connection
            hc.request("GET", "/rest/v1/lead/%d.json" % (k * 5 + i + 1), headers={"Authorization": "Bearer " + tok})
            r = hc.getresponse()
            j = json.loads(r.read())
            if j.get("result", [{}])[0].get("id") != k * 5 + i + 1:
                errs.append(j)
        hc.close()

    ths = [threading.Thread(target=worker, args=(k,)) for k in range(20)]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    s = summary()
    check("burst 100 keep-alive calls", not errs and s["calls"] == 100 and s["counted"] == 100
          and s["in_flight"] == 0 and s["max_in_window"] == 100, (errs[:2], s))


def t_quota():
    reset()
    cfg(daily_quota=3)
    tok = token()
    leads(None, filterType="id", filterValues="1")        # 601: not counted
    res = [err_code(leads(tok, filterType="id", filterValues="1")) for _ in range(4)]
    check("607 after quota", res == [None, None, None, "607"], res)
    j = leads(tok, filterType="id", filterValues="1")
    check("607 message", j.get("errors", [{}])[0].get("message") == "Daily quota reached", j)
    st, c = cfg(quota_used=0)
    check("quota_used reset", c["quota_used"] == 0 and c["daily_quota"] == 3, c)
    check("quota usable again", leads(tok, filterType="id", filterValues="1").get("success") is True)
    st, c = cfg(quota_used=3)
    check("quota_used set", err_code(leads(tok, filterType="id", filterValues="1")) == "607")
    st, c = control("reset")
    check("reset restores config", c["config"]["daily_quota"] == 50000 and c["config"]["quota_used"] == 0, c)
    st, c = control("config", {"nope": 1})
    check("bad config key 400", st == 400, c)


def t_log_file(path):
    with open(path, encoding="utf-8") as f:
        lines = [json.loads(x) for x in f if x.strip()]
    check("log file lines", len(lines) > 50 and all("seq" in x for x in lines), len(lines))
    txt = open(path, encoding="utf-8").read()
    check("log file no secrets", "mock-secret" not in txt and ":ab\"" not in txt)
    need = {"seq", "t_start", "t_end", "method", "path", "override", "params", "status", "code", "counted",
            "admitted", "auth", "in_flight_at_start"}
    check("log entry fields", need <= set(lines[-1]), set(lines[-1]))


def main():
    global BASE
    tmp = tempfile.mkdtemp(prefix="mockst")
    port_file = os.path.join(tmp, "port")
    log_file = os.path.join(tmp, "calls.jsonl")
    proc = subprocess.Popen([sys.executable, MOCK, "--port", "0", "--port-file", port_file,
                             "--log-file", log_file], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while not os.path.exists(port_file) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    if not os.path.exists(port_file):
        print("mock did not start:", proc.communicate(timeout=5))
        print("0 passed, 1 failed")
        return 1
    port = int(open(port_file).read())
    BASE = "http://127.0.0.1:%d" % port
    line = proc.stdout.readline().decode().strip()
    check("startup line", line == "mock marketo listening on 127.0.0.1:%d" % port, line)
    try:
        for t in (t_identity, t_auth, t_leads_lookup, t_paging, t_lead_errors,
                  t_override_and_sizes, t_gzip, t_faults, t_rate, t_concurrency, t_burst, t_quota):
            try:
                t()
            except Exception as e:  # a crash in one group is a failure, go on
                import traceback
                traceback.print_exc()
                check("no exception in %s" % getattr(t, "__name__", t), False, repr(e))
        t_log_file(log_file)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = None
        err = proc.stderr.read().decode()
        check("clean exit on SIGTERM", rc == 0, rc)
        check("quiet stderr", err == "", err[-2000:])
    print("%d passed, %d failed" % (PASSED, FAILED))
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
