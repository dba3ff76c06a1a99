"""Envelope helpers, Marketo error messages and the routing table.

A handler is `func(call, match) -> dict | Response`:
  * a dict is the envelope payload WITHOUT requestId (use ok()); the
    pipeline prepends requestId;
  * raising ApiError(code[, message]) produces a success:false envelope;
  * a Response is sent as is (e.g. bulk file downloads, plain text).
`call` is a server.Call (method, path, params, json, body, headers, state,
client_id, request_id).
"""

import re

# Calls answered with these codes do not consume quota (Marketo docs: '*').
NOT_COUNTED = {"601", "602", "604", "605", "608", "611"}

MESSAGES = {
    "601": "Access token invalid",
    "602": "Access token expired",
    "603": "Access denied",
    "604": "Request timed out",
    "605": "Request method not supported",
    "606": "Max rate limit '{rate_limit}' exceeded with in '{rate_window}' secs",
    "607": "Daily quota reached",
    "608": "API Temporarily Unavailable",
    "609": "Invalid JSON",
    "610": "Requested resource not found",
    "611": "System error",
    "612": "Invalid Content Type",
    "613": "Invalid Multipart Request",
    "614": "Invalid Subscription",
    "615": "Concurrent access limit '{max_in_flight}' reached",
    "616": "Invalid subscription type",
    "701": "Field cannot be blank",
    "702": "No data found for given search scenario",
    "703": "The feature is not enabled for the subscription",
    "704": "Invalid date format",
    "709": "Business rule violation",
    "710": "Parent folder not found",
    "711": "Incompatible folder type",
    "713": "Transient error, system resource unavailable",
    "719": "Lock wait timeout exception",
    "1001": "Invalid value",
    "1002": "Missing value for required parameter",
    "1003": "Invalid data",
    "1004": "Lead not found",
    "1005": "Lead already exists",
    "1006": "Field not found",
    "1007": "Multiple leads match the lookup criteria",
    "1011": "Field not supported",
    "1013": "Object not found",
    "1016": "Too many imports",
    "1019": "Import in progress",
    "1029": "Too many jobs in queue",
    "1035": "Unsupported filter type for target subscription",
}


def message_for(code, config=None):
    msg = MESSAGES.get(code, "Mock error %s" % code)
    if config is not None and "{" in msg:
        msg = msg.format(**{k: fmt_num(v) for k, v in config.items()})
    return msg


def fmt_num(v):
    """20.0 -> '20', 0.5 -> '0.5' (for the 606/615 messages)."""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


class ApiError(Exception):
    def __init__(self, code, message=None):
        code = str(code)
        super().__init__(code, message)
        self.code = code
        self.message = message if message is not None else message_for(code)


class Response:
    """A raw answer: status, body bytes, content type, extra headers."""

    def __init__(self, status=200, body=b"", content_type="application/json;charset=UTF-8",
                 headers=None, compressible=True, code=None):
        self.status = status
        self.body = body
        self.content_type = content_type
        self.headers = list(headers or [])
        self.compressible = compressible
        self.code = code          # Marketo error code to log, if any


def ok(result, **extra):
    """Success payload: result, success, then any extra keys (moreResult...)."""
    d = {"result": result, "success": True}
    d.update(extra)
    return d


class Router:
    """Method + path-regex routing table.  Patterns are full-match regexes
    against the path (no query).  `template` names the endpoint in the
    summary's by_endpoint (e.g. 'GET /rest/v1/lead/{id}.json')."""

    def __init__(self):
        self.routes = []

    def add(self, method, pattern, func, template=None):
        self.routes.append((method.upper(), re.compile(pattern + r"\Z"), func,
                            template or pattern.replace("\\", "")))

    def resolve(self, method, path):
        """-> (func, match, template).  Raises ApiError 605 (path known,
        method not) or 610 (unknown path)."""
        path_known = False
        for m, rx, func, template in self.routes:
            mt = rx.match(path)
            if mt is None:
                continue
            if m == method:
                return func, mt, "%s %s" % (method, template)
            path_known = True
        if path_known:
            raise ApiError("605", "Request method '%s' not supported" % method)
        raise ApiError("610")

    def template_for(self, method, path):
        for m, rx, func, template in self.routes:
            if m == method and rx.match(path):
                return "%s %s" % (method, template)
        return "%s %s" % (method, path)
