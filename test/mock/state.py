"""Mutable server state: config, tokens, limits, faults, call log, summary.

Everything lives under State.lock.  The lock is never held while sleeping or
doing network I/O (appending a line to --log-file is done under it).
"""

import base64
import collections
import json
import re
import secrets
import threading
import time
import uuid

from .routes import NOT_COUNTED

CONFIG_KEYS = {
    "rate_window": float, "rate_limit": int, "max_in_flight": int,
    "daily_quota": int, "latency_ms": float, "token_lifetime": float,
}

CLIENTS = {"mock-client": "mock-secret", "mock-client-2": "mock-secret-2"}
TOKEN_SUFFIX = ":ab"
SCOPE = "api@mock.example"

LIMIT_FAULTS = {"606", "607", "615"}          # not admitted
FAULT_KIND_RX = re.compile(r"^(\d{3,4}|http\d{3}|slow|truncated|malformed|reset|expire_token)$")


class ControlError(Exception):
    """Bad control-API input -> HTTP 400."""


def _num(v, typ, key):
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ControlError("%s must be a number" % key)
    if v < 0:
        raise ControlError("%s must be >= 0" % key)
    return typ(v) if typ is int else float(v)


class Fault:
    def __init__(self, spec):
        if not isinstance(spec, dict):
            raise ControlError("fault must be a JSON object")
        unknown = set(spec) - {"kind", "count", "after", "path", "delay_ms", "message"}
        if unknown:
            raise ControlError("unknown fault keys: %s" % ", ".join(sorted(unknown)))
        kind = spec.get("kind")
        if isinstance(kind, int) and not isinstance(kind, bool):
            kind = str(kind)
        if not isinstance(kind, str) or not FAULT_KIND_RX.match(kind):
            raise ControlError("bad fault kind %r" % (kind,))
        self.kind = kind
        self.count = _num(spec.get("count", 1), int, "count")
        if self.count < 1:
            raise ControlError("count must be >= 1")
        self.after = _num(spec.get("after", 0), int, "after")
        self.path = spec.get("path")
        if self.path is not None and (not isinstance(self.path, str) or not self.path.startswith("/")):
            raise ControlError("path must be a string starting with /")
        self.delay_ms = _num(spec.get("delay_ms", 1000 if kind == "slow" else 0), float, "delay_ms")
        self.message = spec.get("message")
        if self.message is not None and not isinstance(self.message, str):
            raise ControlError("message must be a string")
        self.id = None                    # assigned under the state lock

    def matches(self, kind, path):
        if self.path is None:
            return kind == "rest"
        if self.path.startswith("/identity"):
            return kind == "identity" and path.startswith(self.path)
        return kind == "rest" and path.startswith(self.path)

    def to_json(self):
        return {"id": self.id, "kind": self.kind, "count": self.count, "after": self.after,
                "path": self.path, "delay_ms": self.delay_ms, "message": self.message}


class Admission:
    """Outcome of State.admit() for one REST call."""
    __slots__ = ("seq", "t_start", "in_flight_at_start", "client", "reject_code",
                 "admitted", "fault", "gen", "token", "counted")

    def __init__(self):
        self.reject_code = None
        self.counted = False
        self.admitted = False
        self.fault = None
        self.client = None
        self.gen = None
        self.token = None


class State:
    def __init__(self, config, log_file=None):
        self.lock = threading.Lock()
        self.t0 = time.monotonic()
        self.base_config = dict(config)
        self.log_fh = open(log_file, "a", encoding="utf-8") if log_file else None
        self.page_tokens = {}            # survive /_mock/reset (data unchanged)
        self.gen = 0
        self.fault_ids = 0
        with self.lock:
            self._reset_locked()

    # ----------------------------------------------------------------- misc
    def now(self):
        return time.monotonic()

    def rel(self, t):
        return round(t - self.t0, 6)

    def _reset_locked(self, keep_tokens=False):
        self.config = dict(self.base_config)
        if not keep_tokens:
            self.tokens = {}                 # token -> {"client", "expires"}
            self.client_token = {}           # client_id -> current token
        self.calls = []                  # finished log entries
        self.seq = 0
        self.faults = []
        self.window = collections.deque()   # admitted start times (pruned)
        self.admitted_starts = []           # all admitted start times (sorted)
        self.in_flight = 0
        self.max_in_flight = 0
        self.counted_today = 0
        self.faults_fired = collections.Counter()
        self.gen += 1

    def reset(self, keep_tokens=False):
        """Forget everything but the data; keep_tokens keeps issued tokens
        valid, so a test's first call is not a 601."""
        with self.lock:
            self._reset_locked(keep_tokens)
            return self.effective_config_locked()

    def effective_config_locked(self):
        c = dict(self.config)
        c["quota_used"] = self.counted_today
        return c

    def get_config(self):
        with self.lock:
            return self.effective_config_locked()

    def set_config(self, body):
        if not isinstance(body, dict):
            raise ControlError("config must be a JSON object")
        unknown = set(body) - set(CONFIG_KEYS) - {"quota_used"}
        if unknown:
            raise ControlError("unknown config keys: %s" % ", ".join(sorted(unknown)))
        new = {}
        for k, v in body.items():
            if k == "quota_used":
                new[k] = _num(v, int, k)
            else:
                new[k] = _num(v, CONFIG_KEYS[k], k)
        with self.lock:
            for k, v in new.items():
                if k == "quota_used":
                    self.counted_today = v
                else:
                    self.config[k] = v
            return self.effective_config_locked()

    # -------------------------------------------------------------- faults
    def add_faults(self, specs):
        if isinstance(specs, dict):
            specs = [specs]
        if not isinstance(specs, list) or not specs:
            raise ControlError("fault body must be an object or a non-empty list")
        faults = [Fault(s) for s in specs]
        with self.lock:
            for f in faults:
                self.fault_ids += 1
                f.id = self.fault_ids
            self.faults.extend(faults)
            return [f.to_json() for f in faults], len(self.faults)

    def list_faults(self):
        with self.lock:
            return [f.to_json() for f in self.faults]

    def clear_faults(self):
        with self.lock:
            n = len(self.faults)
            self.faults = []
            return n

    def _take_fault_locked(self, kind, path):
        """Each queued fault counts the matching calls it has seen: while its
        `after` is > 0 it lets the call pass (after -= 1).  The first fault
        in queue order that is due fires (count -= 1, removed at 0)."""
        fired = None
        for f in self.faults:
            if not f.matches(kind, path):
                continue
            if f.after > 0:
                f.after -= 1
                continue
            if fired is None:
                fired = f
        if fired is None:
            return None
        fired.count -= 1
        if fired.count <= 0:
            self.faults.remove(fired)
        self.faults_fired[fired.kind] += 1
        return fired

    # -------------------------------------------------------------- tokens
    def identity(self, client_id, secret):
        """-> (token, expires_in) or None for bad credentials."""
        if client_id not in CLIENTS or CLIENTS[client_id] != secret:
            return None
        with self.lock:
            now = self.now()
            tok = self.client_token.get(client_id)
            info = self.tokens.get(tok) if tok else None
            if info is None or now >= info["expires"]:
                tok = "%s%s" % (uuid.uuid4(), TOKEN_SUFFIX)
                info = {"client": client_id, "expires": now + self.config["token_lifetime"]}
                self.tokens[tok] = info
                self.client_token[client_id] = tok
            return tok, max(0, int(info["expires"] - now))

    def expire_token(self, token):
        with self.lock:
            info = self.tokens.get(token)
            if info is not None:
                info["expires"] = min(info["expires"], self.now())

    def expire_client_token(self, client_id):
        with self.lock:
            tok = self.client_token.get(client_id)
            if tok and tok in self.tokens:
                self.tokens[tok]["expires"] = min(self.tokens[tok]["expires"], self.now())

    # ---------------------------------------------------------- admission
    def next_seq_locked(self):
        self.seq += 1
        return self.seq

    def begin_other(self):
        """seq and t_start for a call that is not subject to limits."""
        with self.lock:
            return self.next_seq_locked(), self.now(), self.in_flight

    def identity_fault(self, path):
        with self.lock:
            return self._take_fault_locked("identity", path)

    def admit(self, token, path):
        """Auth -> quota 607 -> rate 606 -> concurrency 615 -> faults."""
        a = Admission()
        with self.lock:
            now = self.now()
            a.seq = self.next_seq_locked()
            a.t_start = now
            a.in_flight_at_start = self.in_flight
            a.token = token
            info = self.tokens.get(token) if token else None
            if info is None:
                a.reject_code = "601"
                return a
            if now >= info["expires"]:
                a.reject_code = "602"
                a.client = info["client"]
                return a
            a.client = info["client"]
            cfg = self.config
            if self.counted_today >= cfg["daily_quota"]:
                a.reject_code = "607"
                return a
            w = cfg["rate_window"]
            while self.window and self.window[0] <= now - w:
                self.window.popleft()
            if len(self.window) >= cfg["rate_limit"]:
                return self._reject_locked(a, "606")
            if self.in_flight >= cfg["max_in_flight"]:
                return self._reject_locked(a, "615")
            f = self._take_fault_locked("rest", path)
            if f is not None and f.kind in LIMIT_FAULTS:
                a.fault = f
                return self._reject_locked(a, f.kind)
            a.fault = f
            a.admitted = True
            a.gen = self.gen
            self.window.append(now)
            self.admitted_starts.append(now)
            self.in_flight += 1
            if self.in_flight > self.max_in_flight:
                self.max_in_flight = self.in_flight
            self.counted_today += 1        # provisional; undone in finish()
            return a

    def _reject_locked(self, a, code):
        """Refuse a call for a limit.  606 and 615 are not among the codes
        Marketo's docs exempt (601/602/604/605/608/611), so they count
        against the daily quota, though not in the rate window."""
        a.reject_code = code
        a.counted = code in ("606", "615")
        if a.counted:
            self.counted_today += 1
        return a

    def finish_admitted(self, adm, code):
        """Response written: leave in-flight; undo the provisional quota
        count when the answer code is not counted."""
        counted = code not in NOT_COUNTED
        with self.lock:
            if adm.gen == self.gen:
                self.in_flight -= 1
                if not counted:
                    self.counted_today -= 1
        return counted

    def config_snapshot(self):
        with self.lock:
            return dict(self.config)

    # ----------------------------------------------------------- paging
    def page_put(self, q):
        key = base64.b32encode(secrets.token_bytes(20)).decode("ascii").rstrip("=")
        with self.lock:
            self.page_tokens[key] = q
        return key

    def page_get(self, key):
        with self.lock:
            return self.page_tokens.get(key)

    # -------------------------------------------------------------- log
    def log_call(self, entry):
        with self.lock:
            self.calls.append(entry)
            if self.log_fh is not None:
                self.log_fh.write(json.dumps(entry, ensure_ascii=False) + "\n")
                self.log_fh.flush()

    def get_log(self):
        with self.lock:
            calls = sorted(self.calls, key=lambda e: e["seq"])
            return {"calls": calls, "summary": self._summary_locked(calls)}

    def summary(self):
        with self.lock:
            return self._summary_locked(self.calls)

    def _max_in_window_locked(self):
        ts = self.admitted_starts
        w = self.config["rate_window"]
        best = 0
        i = 0
        for j in range(len(ts)):
            while ts[j] - ts[i] >= w:
                i += 1
            best = max(best, j - i + 1)
        return best

    def _summary_locked(self, calls):
        rest = [c for c in calls if c["kind"] == "rest"]
        by_endpoint = collections.Counter(c["endpoint"] for c in rest)
        errors = collections.Counter()
        for c in rest:
            if c["code"] is not None:
                errors[c["code"]] += 1
            elif c["status"] is not None and c["status"] != 200:
                errors["http%d" % c["status"]] += 1
            if c["fault"] in ("truncated", "malformed", "reset"):
                errors[c["fault"]] += 1
        return {
            "calls": len(rest),
            "identity_calls": sum(1 for c in calls if c["kind"] == "identity"),
            "other_calls": sum(1 for c in calls if c["kind"] == "other"),
            "counted": sum(1 for c in rest if c["counted"]),
            "admitted": sum(1 for c in rest if c["admitted"]),
            "by_endpoint": dict(sorted(by_endpoint.items())),
            "errors": dict(sorted(errors.items())),
            "faults_fired": dict(sorted(self.faults_fired.items())),
            "max_in_flight": self.max_in_flight,
            "max_in_window": self._max_in_window_locked(),
            "access_token_param_uses": sum(1 for c in rest if c["access_token_param"]),
            "bearer_calls": sum(1 for c in rest if c["auth"] == "bearer"),
            "in_flight": self.in_flight,
            "quota_used": self.counted_today,
            "pending_faults": len(self.faults),
            "config": dict(self.config),
        }
