"""HTTP plumbing, request pipeline, control API and main() of the mock."""

import argparse
import gzip
import json
import os
import secrets
import signal
import socket
import socketserver
import struct
import sys
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

from . import leads
from .routes import ApiError, Response, Router, message_for
from .state import ControlError, State

# Modules exposing register(router); add new endpoint families here.
HANDLER_MODULES = [leads]

MAX_URI = 8192
MAX_BODY = 1048576
DRAIN_LIMIT = 16 * 1048576     # bodies up to this size are read and discarded before a 413
JSON_CT = "application/json;charset=UTF-8"
REDACT = ("access_token", "client_secret")


def new_request_id():
    return "%04x#%x" % (secrets.randbits(16), int(time.time() * 1000))


def json_bytes(obj):
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def error_response(request_id, code, message):
    body = {"requestId": request_id, "success": False,
            "errors": [{"code": str(code), "message": message}]}
    return Response(200, json_bytes(body), code=str(code))


def plain_response(status, text=None):
    reason = BaseHTTPRequestHandler.responses.get(status, ("Error",))[0]
    return Response(status, (text or "%d %s\n" % (status, reason)).encode("utf-8"),
                    content_type="text/plain;charset=UTF-8", compressible=False)


def classify(path):
    if path == "/_mock" or path.startswith("/_mock/"):
        return "control"
    if path.startswith("/identity/"):
        return "identity"
    if path.startswith("/rest/") or path.startswith("/bulk/"):
        return "rest"
    return "other"


class Call:
    """What a route handler sees."""

    def __init__(self, **kw):
        self.method = kw["method"]          # effective method (after _method)
        self.path = kw["path"]
        self.params = kw["params"]          # query + form, access_token/_method removed
        self.json = kw["json"]              # parsed JSON body or None
        self.json_error = kw["json_error"]  # True if a JSON body did not parse
        self.body = kw["body"]
        self.headers = kw["headers"]
        self.state = kw["state"]
        self.client_id = kw["client_id"]
        self.request_id = kw["request_id"]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "nginx"
    sys_version = ""
    disable_nagle_algorithm = True

    # ------------------------------------------------------------ basics
    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write("mock: %s %s\n" % (self.address_string(), fmt % args))

    def do_GET(self):
        self._dispatch()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_GET

    def handle_expect_100(self):
        # Reject oversized requests before the client sends the body.
        path = self._raw_target().partition("?")[0]
        if len(self.path) > MAX_URI:
            self.close_connection = True
            self._reject_size(414, path)
            return False
        cl = self._content_length()
        if cl is not None and cl > MAX_BODY:
            self.close_connection = True
            self._reject_size(413, path)
            return False
        return super().handle_expect_100()

    def _content_length(self):
        v = self.headers.get("Content-Length")
        if v is None:
            return None
        try:
            n = int(v)
        except ValueError:
            return -1
        return n if n >= 0 else -1

    # ------------------------------------------------------------ sending
    def _send(self, resp, truncate=False):
        body = resp.body
        headers = list(resp.headers)
        if (resp.compressible and len(body) >= 1024
                and "gzip" in self.headers.get("Accept-Encoding", "").lower()):
            body = gzip.compress(body, compresslevel=6)
            headers.append(("Content-Encoding", "gzip"))
        self.send_response(resp.status)
        self.send_header("Content-Type", resp.content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        if self.command == "HEAD":
            return
        if truncate:
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
        else:
            self.wfile.write(body)

    def _reset_socket(self):
        """Close without any response; SO_LINGER 0 makes the kernel send RST."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        try:
            self.rfile.close()
        except OSError:
            pass
        self.connection.close()

    def _safe_send(self, resp, truncate=False):
        try:
            self._send(resp, truncate)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            self.close_connection = True

    # ------------------------------------------------------------ logging
    def _log(self, kind, seq, t_start, method, path, override, params, status, code,
             counted, admitted, auth, in_flight_at_start, client=None, fault=None,
             request_id=None, access_token_param=False, endpoint=None):
        st = self.server.state
        entry = {
            "seq": seq, "kind": kind,
            "t_start": st.rel(t_start), "t_end": st.rel(st.now()),
            "method": method, "path": path, "override": override,
            "params": {k: v for k, v in params.items() if k not in REDACT},
            "status": status, "code": code, "counted": counted, "admitted": admitted,
            "auth": auth, "in_flight_at_start": in_flight_at_start,
            "client": client, "fault": fault, "request_id": request_id,
            "access_token_param": access_token_param,
            "endpoint": endpoint or "%s %s" % (method, path),
        }
        st.log_call(entry)

    # ------------------------------------------------------------ dispatch
    def _raw_target(self):
        """Request target as sent (http.server collapses a leading '//'
        into '/'; Marketo is deprecating '//' URLs, so the mock rejects them)."""
        words = self.requestline.split()
        return words[1] if len(words) >= 2 else self.path

    def _dispatch(self):
        raw = self._raw_target()
        path, _, query = raw.partition("?")
        path = path.partition("#")[0]
        kind = classify(path)
        if len(raw) > MAX_URI:
            self._drain_or_close()
            self._reject_size(414, path)
            return
        body = self._read_body(path)
        if body is None:
            return
        if kind == "control":
            self._control(path, query, body)
        elif kind == "identity":
            self._identity(path, query, body)
        elif kind == "rest":
            self._rest(path, query, body)
        else:
            seq, t0, ifl = self.server.state.begin_other()
            self._log("other", seq, t0, self.command, path, False, {}, 404, None,
                      False, False, "none", ifl)
            self._safe_send(plain_response(404))

    def _drain_or_close(self):
        cl = self._content_length()
        if cl and 0 < cl <= MAX_BODY:
            try:
                self.rfile.read(cl)
                return
            except OSError:
                pass
        if cl or "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True

    def _reject_size(self, status, path):
        """414 / 413 (plain text); logged for REST and identity paths."""
        kind = classify(path)
        st = self.server.state
        if status == 413 or self.close_connection:
            self.close_connection = True
            resp = plain_response(status)
            resp.headers.append(("Connection", "close"))
        else:
            resp = plain_response(status)
        if kind in ("rest", "identity", "other"):
            seq, t0, ifl = st.begin_other()
            self._log(kind, seq, t0, self.command, path, False, {}, status, None,
                      False, False, "none", ifl)
        self._safe_send(resp)

    def _read_body(self, path):
        """Body bytes, or None when the request was rejected (413/400)."""
        te = self.headers.get("Transfer-Encoding", "").lower()
        if "chunked" in te:
            chunks, total = [], 0
            try:
                while True:
                    line = self.rfile.readline(65537)
                    size = int(line.split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                            pass
                        break
                    total += size
                    if total > DRAIN_LIMIT:
                        self.close_connection = True
                        self._reject_size(413, path)
                        return None
                    data = self.rfile.read(size)
                    if total <= MAX_BODY:
                        chunks.append(data)
                    self.rfile.readline(65537)
            except (ValueError, OSError):
                self.close_connection = True
                self._safe_send(plain_response(400))
                return None
            if total > MAX_BODY:
                self.close_connection = True
                self._reject_size(413, path)
                return None
            return b"".join(chunks)
        cl = self._content_length()
        if cl is None:
            return b""
        if cl < 0:
            self.close_connection = True
            self._safe_send(plain_response(400))
            return None
        if cl > MAX_BODY:
            # like nginx's lingering close: swallow the body (so the client
            # is not hit by EPIPE while still sending) then answer 413
            if cl <= DRAIN_LIMIT:
                left = cl
                try:
                    while left > 0:
                        got = self.rfile.read(min(left, 65536))
                        if not got:
                            break
                        left -= len(got)
                except OSError:
                    pass
            self.close_connection = True
            self._reject_size(413, path)
            return None
        return self.rfile.read(cl) if cl else b""

    def _parse(self, query, body):
        """-> (params dict, json obj or None, json_error)."""
        ctype = self.headers.get("Content-Type", "").lower()
        pairs = parse_qsl(query, keep_blank_values=True, encoding="utf-8", errors="replace")
        if body and ctype.startswith("application/x-www-form-urlencoded"):
            pairs += parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        params = {}
        for k, v in pairs:
            params.setdefault(k, v)
        js, js_err = None, False
        if body and "json" in ctype:
            try:
                js = json.loads(body.decode("utf-8"))
            except (ValueError, UnicodeDecodeError):
                js_err = True
        return params, js, js_err

    # ------------------------------------------------------------ control
    def _control(self, path, query, body):
        st = self.server.state
        m = self.command
        try:
            js = json.loads(body.decode("utf-8")) if body.strip() else {}
        except (ValueError, UnicodeDecodeError):
            self._safe_send(Response(400, json_bytes({"error": "invalid JSON body"}), compressible=False))
            return
        status, out = 200, None
        try:
            if path == "/_mock/reset" and m == "POST":
                out = {"ok": True, "config": st.reset(
                    keep_tokens=bool(isinstance(js, dict) and js.get("keep_tokens")))}
            elif path == "/_mock/config" and m == "GET":
                out = st.get_config()
            elif path == "/_mock/config" and m == "POST":
                out = st.set_config(js)
            elif path == "/_mock/fault" and m == "POST":
                added, pending = st.add_faults(js)
                out = {"ok": True, "added": added, "pending": pending}
            elif path == "/_mock/fault" and m == "GET":
                out = {"faults": st.list_faults()}
            elif path == "/_mock/fault" and m == "DELETE":
                out = {"ok": True, "cleared": st.clear_faults()}
            elif path == "/_mock/log" and m == "GET":
                out = st.get_log()
            elif path == "/_mock/summary" and m == "GET":
                out = st.summary()
            elif path == "/_mock/health" and m == "GET":
                out = {"ok": True}
            else:
                status, out = 404, {"error": "unknown control endpoint %s %s" % (m, path)}
        except ControlError as e:
            status, out = 400, {"error": str(e)}
        self._safe_send(Response(status, json_bytes(out), compressible=False))

    # ------------------------------------------------------------ faults
    def _fault_response(self, fault, request_id):
        """Response for a fault kind that replaces the answer, else None."""
        k = fault.kind
        if k.isdigit():
            msg = fault.message or message_for(k, self.server.state.config_snapshot())
            return error_response(request_id, k, msg)
        if k.startswith("http"):
            return plain_response(int(k[4:]))
        if k == "malformed":
            return Response(200, b'{"requestId":"bad#1","success":tru')
        return None

    # ------------------------------------------------------------ identity
    def _identity(self, path, query, body):
        st = self.server.state
        seq, t0, ifl = st.begin_other()
        params, _, _ = self._parse(query, body)
        client_id = params.get("client_id")
        fault = st.identity_fault(path)
        fault_kind = fault.kind if fault is not None else None
        resp = None
        if fault is not None:
            if fault.delay_ms:
                time.sleep(fault.delay_ms / 1000.0)
            if fault.kind == "expire_token" and client_id:
                st.expire_client_token(client_id)
            resp = self._fault_response(fault, new_request_id())
        if resp is None and fault_kind != "reset":
            resp = self._identity_answer(path, params)
        ok_client = client_id if (resp is not None and resp.status == 200 and fault_kind is None
                                  or fault_kind in ("slow", "truncated", "expire_token")) else None
        # log before writing: once the client has the answer, the log has the call
        self._log("identity", seq, t0, self.command, path, False, params,
                  resp.status if resp is not None else None, None,
                  False, False, "none", ifl, client=ok_client, fault=fault_kind)
        if resp is None:
            self._reset_socket()
        else:
            self._safe_send(resp, truncate=(fault_kind == "truncated"))

    def _identity_answer(self, path, params):
        hdrs = [("Cache-Control", "no-store"), ("Pragma", "no-cache")]
        if path != "/identity/oauth/token" or self.command not in ("GET", "POST"):
            return plain_response(404)
        gt = params.get("grant_type")
        if not gt:
            return Response(400, json_bytes({"error": "invalid_request",
                                             "error_description": "Missing grant type"}),
                            headers=hdrs, compressible=False)
        if gt != "client_credentials":
            return Response(400, json_bytes({"error": "unsupported_grant_type",
                                             "error_description": "Unsupported grant type: %s" % gt}),
                            headers=hdrs, compressible=False)
        got = self.server.state.identity(params.get("client_id"), params.get("client_secret"))
        if got is None:
            return Response(401, json_bytes({"error": "invalid_client",
                                             "error_description": "Bad client credentials"}),
                            headers=hdrs, compressible=False)
        tok, exp = got
        return Response(200, json_bytes({"access_token": tok, "token_type": "bearer",
                                         "expires_in": exp, "scope": "api@mock.example"}),
                        headers=hdrs, compressible=False)

    # ------------------------------------------------------------ REST
    def _rest(self, path, query, body):
        st = self.server.state
        router = self.server.router
        params, js, js_err = self._parse(query, body)
        eff, override = self.command, False
        m = params.pop("_method", None)
        if self.command == "POST" and m:
            eff, override = m.upper(), True
        param_token = params.pop("access_token", None)
        bearer = None
        authz = self.headers.get("Authorization")
        if authz:
            parts = authz.strip().split(None, 1)
            if len(parts) == 2 and parts[0].lower() == "bearer":
                bearer = parts[1].strip()
        if bearer is not None:
            auth, token = "bearer", bearer
        elif param_token:
            auth, token = "param", param_token
        else:
            auth, token = "none", None
        endpoint = router.template_for(eff, path)
        rid = new_request_id()
        adm = st.admit(token, path)
        log_common = dict(access_token_param=param_token is not None, endpoint=endpoint,
                          request_id=rid)

        if not adm.admitted:
            code = adm.reject_code
            if adm.fault is not None and adm.fault.message:
                msg = adm.fault.message
            else:
                msg = message_for(code, st.config_snapshot())
            self._log("rest", adm.seq, adm.t_start, eff, path, override, params, 200, code,
                      adm.counted, False, auth, adm.in_flight_at_start, client=adm.client,
                      fault=adm.fault.kind if adm.fault else None, **log_common)
            self._safe_send(error_response(rid, code, msg))
            return

        status, code = None, None
        fault = adm.fault
        done = False

        def complete():
            # Leave in-flight and log BEFORE the response is written, so a
            # client that has its answer always finds the call in the log.
            nonlocal done
            if not done:
                done = True
                counted = st.finish_admitted(adm, code)
                self._log("rest", adm.seq, adm.t_start, eff, path, override, params, status,
                          code, counted, True, auth, adm.in_flight_at_start, client=adm.client,
                          fault=fault.kind if fault else None, **log_common)

        try:
            lat = st.config_snapshot()["latency_ms"]
            if lat:
                time.sleep(lat / 1000.0)
            if fault is not None and fault.delay_ms:
                time.sleep(fault.delay_ms / 1000.0)
            resp = None
            if fault is None or fault.kind in ("slow", "truncated"):
                call = Call(method=eff, path=path, params=params, json=js, json_error=js_err,
                            body=body, headers=self.headers, state=st, client_id=adm.client,
                            request_id=rid)
                resp = self._run_handler(router, call)
            elif fault.kind == "expire_token":
                st.expire_token(token)
                resp = error_response(rid, "602", message_for("602"))
            elif fault.kind != "reset":
                resp = self._fault_response(fault, rid)
            if resp is None:            # reset fault
                complete()
                self._reset_socket()
            else:
                status, code = resp.status, resp.code
                complete()
                self._safe_send(resp, truncate=(fault is not None and fault.kind == "truncated"))
        finally:
            complete()

    def _run_handler(self, router, call):
        try:
            func, match, _ = router.resolve(call.method, call.path)
            out = func(call, match)
            if isinstance(out, Response):
                return out
            body = {"requestId": call.request_id}
            body.update(out)
            return Response(200, json_bytes(body))
        except ApiError as e:
            return error_response(call.request_id, e.code, e.message)
        except Exception:
            traceback.print_exc()
            return error_response(call.request_id, "611", message_for("611"))


class MockServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    allow_reuse_address = True

    def server_bind(self):
        # skip HTTPServer.server_bind's getfqdn() (DNS) lookup
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = host
        self.server_port = port

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)) and not self.verbose:
            return
        super().handle_error(request, client_address)


def parse_args(argv):
    ap = argparse.ArgumentParser(description="Mock Marketo REST server")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--rate-window", type=float, default=20.0)
    ap.add_argument("--rate-limit", type=int, default=100)
    ap.add_argument("--max-in-flight", type=int, default=10)
    ap.add_argument("--daily-quota", type=int, default=50000)
    ap.add_argument("--latency-ms", type=float, default=0.0)
    ap.add_argument("--token-lifetime", type=float, default=3600.0)
    ap.add_argument("--log-file")
    ap.add_argument("--verbose", action="store_true")
    return ap.parse_args(argv)


def build_router():
    router = Router()
    for mod in HANDLER_MODULES:
        mod.register(router)
    return router


def write_port_file(path, port):
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "w") as f:
        f.write("%d\n" % port)
    os.replace(tmp, path)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    config = {
        "rate_window": args.rate_window, "rate_limit": args.rate_limit,
        "max_in_flight": args.max_in_flight, "daily_quota": args.daily_quota,
        "latency_ms": args.latency_ms, "token_lifetime": args.token_lifetime,
    }
    server = MockServer(("127.0.0.1", args.port), Handler)
    server.verbose = args.verbose
    server.state = State(config, log_file=args.log_file)
    server.router = build_router()
    port = server.server_address[1]

    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    t = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                         name="mock-serve", daemon=True)
    t.start()
    if args.port_file:
        write_port_file(args.port_file, port)
    print("mock marketo listening on 127.0.0.1:%d" % port, flush=True)
    while not stop.wait(0.5):
        pass
    server.shutdown()
    server.server_close()
    if server.state.log_fh is not None:
        server.state.log_fh.close()
    return 0
