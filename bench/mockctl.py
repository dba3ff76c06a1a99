#!/usr/bin/python3
"""Talk to the mock Marketo's control API for bench/run.sh (stdlib only).

  mockctl.py URL reset             clear the log and window (tokens kept)
  mockctl.py URL calls             REST calls logged since the reset, as
                                   "calls describe errors" (errors: JSON)
  mockctl.py URL last-urls N       the full URLs of the last N REST calls
                                   (what the FDW sent), one a line
  mockctl.py URL server-ms N       milliseconds the mock spent answering
                                   the last N REST calls (admission to
                                   answer ready), summed
  mockctl.py URL token             an access token for mock-client
"""

import json
import sys
import urllib.parse
import urllib.request


def request(url, method="GET", body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read().decode("utf-8"))


def rest_calls(base):
    return [c for c in request(base + "/_mock/log")["calls"] if c["kind"] == "rest"]


def main(argv):
    base, cmd = argv[1], argv[2]
    if cmd == "reset":
        request(base + "/_mock/reset", "POST", {"keep_tokens": True})
    elif cmd == "calls":
        s = request(base + "/_mock/summary")
        describe = sum(n for ep, n in s["by_endpoint"].items() if "describe" in ep)
        print(s["calls"], describe, json.dumps(s["errors"], separators=(",", ":")))
    elif cmd == "last-urls":
        for c in rest_calls(base)[-int(argv[3]):]:
            print("%s%s?%s" % (base, c["path"], urllib.parse.urlencode(c["params"])))
    elif cmd == "server-ms":
        calls = rest_calls(base)[-int(argv[3]):]
        print("%.3f" % (1000 * sum(c["t_end"] - c["t_start"] for c in calls)))
    elif cmd == "token":
        q = urllib.parse.urlencode({"grant_type": "client_credentials",
                                    "client_id": "mock-client",
                                    "client_secret": "mock-secret"})
        print(request(base + "/identity/oauth/token?" + q)["access_token"])
    else:
        sys.exit("unknown command %r" % cmd)


if __name__ == "__main__":
    main(sys.argv)
