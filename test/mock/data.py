"""Deterministic lead data model of the mock Marketo server.

The facts are listed in the docstring of test/mock_marketo.py (tests rely on
them); this module is the single implementation of those facts.  Nothing here
changes at run time: the data is built once at import and never written.
"""

import datetime

NUM_LEADS = 2500
BASE_TIME = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)
BIRTH_BASE = datetime.date(1970, 1, 1)

# ---------------------------------------------------------------------------
# Field metadata
# (rest name, displayName, dataType, readOnly, soap name or None)
# Order = describe order; describe ids are 1..N in this order.
# ---------------------------------------------------------------------------
FIELD_SPECS = [
    ("id", "Id", "integer", True, "Id"),
    ("email", "Email Address", "email", False, "Email"),
    ("firstName", "First Name", "string", False, "FirstName"),
    ("lastName", "Last Name", "string", False, "LastName"),
    ("segment", "Segment", "string", False, "Segment"),
    ("company", "Company Name", "string", False, "Company"),
    ("title", "Job Title", "string", False, "Title"),
    ("notes", "Notes", "text", False, "Notes"),
    ("description", "Description", "textarea", False, "Description"),
    ("phone", "Phone Number", "phone", False, "Phone"),
    ("website", "Website", "url", False, "Website"),
    ("leadPartitionId", "Lead Partition ID", "reference", False, "Lead Partition ID"),
    ("acquisitionProgramId", "Acquisition Program Id", "reference", False, "Acquisition Program Id"),
    ("leadRole", "Role", "lead_function", False, "LeadRole"),
    ("leadScore", "Lead Score", "integer", False, "LeadScore"),
    ("customScore", "Custom Score", "score", False, "CustomScore"),
    ("pctComplete", "Percent Complete", "percent", False, "PctComplete"),
    ("rating", "Rating", "float", False, "Rating"),
    ("annualRevenue", "Annual Revenue", "currency", False, "AnnualRevenue"),
    ("unsubscribed", "Unsubscribed", "boolean", False, "Unsubscribed"),
    ("isVip", "Is VIP", "boolean", False, "IsVip"),
    ("birthDate", "Date of Birth", "date", False, "DateofBirth"),
    ("createdAt", "Created At", "datetime", True, None),
    ("updatedAt", "Updated At", "datetime", True, None),
    ("interests", "Interests", "array", False, "Interests"),
    ("formulaScore", "Formula Score", "formula", True, "FormulaScore"),
]

# describe "length" is present only for text-like types
TEXT_LENGTH = {
    "string": 255, "email": 255, "phone": 255, "url": 255, "lead_function": 255,
    "text": 30000, "textarea": 30000,
}

FIELD_NAMES = [f[0] for f in FIELD_SPECS]
FIELD_TYPES = {f[0]: f[2] for f in FIELD_SPECS}
FIELD_SET = set(FIELD_NAMES)

DEFAULT_FIELDS = ["id", "email", "updatedAt", "createdAt", "firstName", "lastName"]

# describe2 searchableFields (= allowed filterType values), in order.
SEARCHABLE = ["email", "id", "cookies", "facebookId", "linkedInId", "twitterId",
              "leadPartitionId", "sfdcAccountId", "sfdcContactId", "sfdcLeadId",
              "sfdcLeadOwnerId", "sfdcOpptyId", "segment", "company"]
SEARCHABLE_SET = set(SEARCHABLE)
# fields compared numerically in filterValues (their values are JSON integers)
NUMERIC_LOOKUP = {"id", "leadPartitionId"}

TITLES = ["Engineer", "Manager", "Director", "VP", "Analyst"]
ROLES = ["Decision Maker", "Influencer", "User", "Evaluator"]
INTERESTS = ["golf", "tennis", "chess"]
SPECIAL_FIRST = {3: "Zo\u00eb", 4: "\u5c71\u7530", 5: "\u0141ukasz", 6: "O'Brien"}


def _iso(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def make_lead(i):
    """All field values of lead i (None = null)."""
    n7 = (i % 7 == 0)          # the "mostly null" leads: 7, 14, 21, ...
    created = BASE_TIME + datetime.timedelta(hours=i)
    if i in (2401, 2402):
        email = "shared@example.com"
    elif i == 2500:
        email = None
    else:
        email = "lead%d@example.com" % i
    if i in SPECIAL_FIRST:
        first = SPECIAL_FIRST[i]
    elif i % 10 == 0:
        first = None
    else:
        first = "First%d" % i
    if i <= 650:
        segment = "enterprise"
    elif i <= 1900:
        segment = "smb"
    else:
        segment = "mid"
    return {
        "id": i,
        "email": email,
        "firstName": first,
        "lastName": "Last%d" % i,
        "segment": segment,
        "company": "Company %d" % ((i - 1) // 100 + 1),
        "title": None if n7 else TITLES[i % 5],
        "notes": None if n7 else 'Line 1 for lead %d\nShe said "hi"' % i,
        "description": None if n7 else "Description for lead %d, a textarea" % i,
        "phone": None if n7 else "+1-555-%04d" % i,
        "website": None if n7 else "https://www.example.com/lead/%d" % i,
        "leadPartitionId": 1 if i <= 2000 else 2,
        "acquisitionProgramId": None if n7 else 1000 + i % 5,
        "leadRole": None if n7 else ROLES[i % 4],
        "leadScore": None if n7 else i % 100,
        "customScore": None if n7 else (i * 3) % 200,
        "pctComplete": None if n7 else i % 100 + 0.5,
        "rating": None if n7 else i / 8,
        "annualRevenue": None if n7 else round(i * 1000 + 234.56, 2),
        "unsubscribed": None if n7 else (i % 2 == 0),
        "isVip": (i % 25 == 0),
        "birthDate": None if n7 else (BIRTH_BASE + datetime.timedelta(days=i)).isoformat(),
        "createdAt": _iso(created),
        "updatedAt": _iso(created + datetime.timedelta(days=1)),
        "interests": None if n7 else INTERESTS[: i % 3 + 1],
        "formulaScore": None if n7 else "score-%d" % (i % 10),
    }


LEADS = [make_lead(i) for i in range(1, NUM_LEADS + 1)]
LEADS_BY_ID = {r["id"]: r for r in LEADS}


def _build_index(field):
    idx = {}
    for r in LEADS:
        v = r.get(field)
        if v is None:
            continue
        key = v if field in NUMERIC_LOOKUP else str(v).lower()
        idx.setdefault(key, []).append(r["id"])
    return idx


# Lookup indexes for every searchable field that exists in the data
# (cookies, facebookId, ... are searchable but hold no values: never match).
INDEX = {f: _build_index(f) for f in SEARCHABLE if f in FIELD_SET}


class LookupError_(Exception):
    """Bad filterValue (non-integer for a numeric filterType)."""

    def __init__(self, value):
        super().__init__(value)
        self.value = value


def lookup(filter_type, values):
    """Sorted list of lead ids matching any of values (deduplicated).

    filter_type must be searchable.  Raises LookupError_ for a non-integer
    value of a numeric lookup field."""
    idx = INDEX.get(filter_type)
    if idx is None:
        return []
    ids = set()
    for v in values:
        if filter_type in NUMERIC_LOOKUP:
            try:
                key = int(v)
            except ValueError:
                raise LookupError_(v)
        else:
            key = v.lower()
        ids.update(idx.get(key, ()))
    return sorted(ids)


def project(lead, fields):
    """Record with id first, then the requested fields (JSON null when empty)."""
    out = {"id": lead["id"]}
    for f in fields:
        if f != "id":
            out[f] = lead.get(f)
    return out


def describe():
    result = []
    for n, (name, disp, dtype, ro, soap) in enumerate(FIELD_SPECS, 1):
        d = {"id": n, "displayName": disp, "dataType": dtype}
        if dtype in TEXT_LENGTH:
            d["length"] = TEXT_LENGTH[dtype]
        d["rest"] = {"name": name, "readOnly": ro}
        if soap is not None:
            d["soap"] = {"name": soap, "readOnly": ro}
        result.append(d)
    return result


def describe2():
    fields = []
    for name, disp, dtype, ro, soap in FIELD_SPECS:
        d = {"name": name, "displayName": disp, "dataType": dtype}
        if dtype in TEXT_LENGTH:
            d["length"] = TEXT_LENGTH[dtype]
        d["updateable"] = not ro
        d["crmManaged"] = False
        fields.append(d)
    return [{"name": "API Lead",
             "searchableFields": [[f] for f in SEARCHABLE],
             "fields": fields}]
