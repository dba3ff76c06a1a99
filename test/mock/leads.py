"""Lead-database read endpoints: leads.json, lead/{id}.json, describe(2)."""

from . import data
from .routes import ApiError, ok

MAX_BATCH = 300
MAX_FILTER_VALUES = 300
MAX_MATCHES = 1000


def _split(s):
    """Comma-separated list; items stripped, empty items dropped."""
    return [x.strip() for x in s.split(",") if x.strip()]


def parse_fields(raw):
    """fields param -> list of field names (default when absent/blank).
    Unknown name -> 1006 "Field 'x' not found"."""
    if raw is None or not raw.strip():
        return list(data.DEFAULT_FIELDS)
    fields = []
    for f in _split(raw):
        if f not in data.FIELD_SET:
            raise ApiError("1006", "Field '%s' not found" % f)
        if f not in fields:
            fields.append(f)
    return fields


def parse_batch_size(raw):
    if raw is None or raw.strip() == "":
        return MAX_BATCH
    try:
        n = int(raw)
    except ValueError:
        raise ApiError("1001", "Invalid value '%s'. Required of type 'Integer'" % raw)
    if n < 1 or n > MAX_BATCH:
        raise ApiError("1003", "Invalid batchSize '%s', must be between 1 and %d" % (raw, MAX_BATCH))
    return n


def get_leads(call, match):
    p = call.params
    token = p.get("nextPageToken")
    if token:
        q = call.state.page_get(token)
        if q is None:
            raise ApiError("1003", "Invalid nextPageToken '%s'" % token)
        batch = parse_batch_size(p["batchSize"]) if "batchSize" in p else q["batch"]
        fields = parse_fields(p["fields"]) if "fields" in p else q["fields"]
        ids = q["ids"]
        offset = q["offset"]
    else:
        ftype = (p.get("filterType") or "").strip()
        if not ftype:
            raise ApiError("1002", "Required parameter 'filterType' is missing")
        raw_values = p.get("filterValues")
        values = _split(raw_values) if raw_values is not None else []
        if not values:
            raise ApiError("1002", "Required parameter 'filterValues' is missing")
        batch = parse_batch_size(p.get("batchSize"))
        if ftype not in data.FIELD_SET and ftype not in data.SEARCHABLE_SET:
            raise ApiError("1006", "Lookup field '%s' not found" % ftype)
        if ftype not in data.SEARCHABLE_SET:
            raise ApiError("1011", "Lookup field '%s' not supported" % ftype)
        if len(values) > MAX_FILTER_VALUES:
            raise ApiError("1003", "Too many filterValues (%d), max %d"
                           % (len(values), MAX_FILTER_VALUES))
        fields = parse_fields(p.get("fields"))
        try:
            ids = data.lookup(ftype, values)
        except data.LookupError_ as e:
            raise ApiError("1001", "Invalid value '%s'. Required of type 'Integer'" % e.value)
        if len(ids) > MAX_MATCHES:
            raise ApiError("1003", "Too many results match the filter")
        offset = 0

    page_ids = ids[offset:offset + batch]
    result = [data.project(data.LEADS_BY_ID[i], fields) for i in page_ids]
    nxt = offset + batch
    if nxt < len(ids):
        tok = call.state.page_put({"ids": ids, "offset": nxt, "batch": batch, "fields": fields})
        return ok(result, moreResult=True, nextPageToken=tok)
    return ok(result)


def get_lead_by_id(call, match):
    fields = parse_fields(call.params.get("fields"))
    lead = data.LEADS_BY_ID.get(int(match.group(1)))
    return ok([data.project(lead, fields)] if lead else [])


def describe(call, match):
    return ok(data.describe())


def describe2(call, match):
    return ok(data.describe2())


def register(router):
    router.add("GET", r"/rest/v1/leads\.json", get_leads, "/rest/v1/leads.json")
    router.add("GET", r"/rest/v1/lead/(\d+)\.json", get_lead_by_id, "/rest/v1/lead/{id}.json")
    router.add("GET", r"/rest/v1/leads/describe\.json", describe, "/rest/v1/leads/describe.json")
    router.add("GET", r"/rest/v1/leads/describe2\.json", describe2, "/rest/v1/leads/describe2.json")
