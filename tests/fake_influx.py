"""A protocol-faithful fake InfluxDB 2 (OSS 2.7) on pytest-httpserver, for the influxdb backend's tests.

It checks each request as the server would and answers with the server's own bodies (the samples in
``../shared/fixtures/influxdb/``; tests/test_influx_fake.py compares them):

- writes: token, org, bucket, precision, gzip, size limit (413), line protocol parsed strictly
  (escapes, field types, timestamps; one bad line rejects the whole body with 400), a field's type
  fixed once seen (422 partial write, the other points stored), empty body 400; points with the
  same series and time merge field by field;
- queries: token, org, the JSON body with ``extern`` params (OptionStatements, parsed from the AST),
  ``from()`` without ``range()`` → 400 unbounded read, unknown bucket → 404, undefined or mistyped
  params → 400. It cannot run arbitrary Flux: it recognises the backend's templates
  (service/store/flux.py) by their exact text and computes each result itself, in plain Python over
  the stored points, and answers in annotated CSV as flux's encoder writes it (CRLF, #datatype /
  #group / #default, table ids, a blank line only on a schema change, ``\\r\\n`` after each result,
  RFC3339Nano times with trailing zeros trimmed, floats without exponent). Any other query text is
  refused with a 400 that says so, never answered loosely. The rollup template's ``to()`` writes into
  the other bucket as the server would (bucket looked up in the org, field types enforced, points
  merged); every query logs which bucket it read and how many stored rows of each measurement its
  range covered (``QueryLog.scanned``), so tests can see what a plan read;
- buckets, orgs, /health, /ping, /ready as the client's bootstrap and health calls use them;
- a ``before_query`` hook; fault switches: ``fail_writes(status, times, retry_after)`` answers the
  next writes with the real 503/429 (Retry-After), 422, 413, 400, 401 bodies; ``healthy = False``
  fails /health.
"""

from __future__ import annotations

import gzip
import json
import math
import re
import threading
import time
import zlib
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from service.store.flux import TEMPLATES
from tests.flux_pushdown import storage_points

VERSION_HEADERS = {"X-Influxdb-Build": "OSS", "X-Influxdb-Version": "v2.7.10"}
HEALTH_BODY = ('{"name":"influxdb", "message":"ready for queries and writes", "status":"pass", "checks":[], '
               '"version": "v2.7.10", "commit": "f302d9730c"}\n')
# Verbatim error bodies of the fixtures (write/*.json, query/*.json) used by the fault switches.
FAULT_BODIES: dict[int, tuple[str, str]] = {
    400: ("invalid", "unable to parse 'invalid': missing fields"),
    401: ("unauthorized", "unauthorized access"),
    413: ("request too large", "unable to read data: points batch is too large"),
    422: ("unprocessable entity", "failure writing points to database: partial write: field type conflict: "
          'input field "NS" on measurement "query_types" is type integer, already exists as type float dropped=1'),
    429: ("too many requests", "org 04014de4ed590000 has exceeded limited_write plan limit"),
    500: ("internal error", "unexpected error writing points to database: error"),
    503: ("unavailable", "service unavailable"),
}
PRECISION_NS = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000}
DURATION_NS = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000, "m": 60_000_000_000,
               "h": 3_600_000_000_000, "d": 86_400_000_000_000, "w": 7 * 86_400_000_000_000}
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _duration_ns(literal: str) -> int:
    """A Flux duration literal as a template writes it (``1h``, ``30m``) → nanoseconds."""
    return sum(int(n) * DURATION_NS[u] for n, u in re.findall(r"(\d+)(ns|us|ms|s|m|h|d|w)", literal))


class HttpError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


# ---------------------------------------------------------------------------------------------
# line protocol (docs-v2 reference/syntax/line-protocol.md; models/points.go messages)
# ---------------------------------------------------------------------------------------------

class LineError(ValueError):
    pass


@dataclass
class ParsedPoint:
    measurement: str
    tags: tuple[tuple[str, str], ...]
    fields: dict[str, tuple[str, Any]]  # key → (type, value); type ∈ float integer unsigned string boolean
    time_ns: int


_FLOAT = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_INT = re.compile(r"^[+-]?\d+i$")
_UINT = re.compile(r"^\d+u$")
_TRUE = {"t", "T", "true", "True", "TRUE"}
_FALSE = {"f", "F", "false", "False", "FALSE"}


def _scan(line: str, i: int, stops: str, escapable: str) -> tuple[str, int]:
    """Read up to an unescaped stop character; ``\\x`` yields x only for escapable x."""
    out = []
    while i < len(line):
        c = line[i]
        if c == "\\" and i + 1 < len(line) and line[i + 1] in escapable:
            out.append(line[i + 1])
            i += 2
            continue
        if c in stops:
            break
        out.append(c)
        i += 1
    return "".join(out), i


def _field_value(raw: str) -> tuple[str, Any]:
    if raw == "":
        raise LineError("missing field value")
    if raw[0] in "tfTF":
        if raw in _TRUE:
            return "boolean", True
        if raw in _FALSE:
            return "boolean", False
        raise LineError("invalid boolean")
    if raw.endswith("i"):
        if not _INT.match(raw):
            raise LineError("invalid number")
        v = int(raw[:-1])
        if not -(2**63) <= v < 2**63:
            raise LineError(f'unable to parse integer {raw[:-1]}: strconv.ParseInt: parsing "{raw[:-1]}": '
                            "value out of range")
        return "integer", v
    if raw.endswith("u"):
        if not _UINT.match(raw):
            raise LineError("invalid number")
        return "unsigned", int(raw[:-1])
    if raw[0] in "+-.0123456789":
        if not _FLOAT.match(raw):
            raise LineError("invalid number")
        f = float(raw)
        if not math.isfinite(f):
            raise LineError("invalid number")
        return "float", f
    raise LineError("invalid field format")


def parse_line(line: str, precision_ns: int, now_ns: int) -> ParsedPoint:
    measurement, i = _scan(line, 0, ", ", ", ")
    if not measurement:
        raise LineError("missing measurement")
    tags: dict[str, str] = {}
    while i < len(line) and line[i] == ",":
        key, i = _scan(line, i + 1, ",= ", ",= ")
        if not key:
            raise LineError("missing tag key")
        if i >= len(line) or line[i] != "=":
            raise LineError("missing tag value")
        value, i = _scan(line, i + 1, ", ", ",= ")
        if not value:
            raise LineError("missing tag value")
        tags[key] = value
    if i >= len(line) or line[i] != " ":
        raise LineError("missing fields")
    i += 1
    fields: dict[str, tuple[str, Any]] = {}
    while True:
        if i >= len(line) or line[i] == " ":
            raise LineError("missing fields")
        key, i = _scan(line, i, ",= ", ",= ")
        if i >= len(line) or line[i] != "=":
            raise LineError("invalid field format")
        if not key:
            raise LineError("missing field key")
        i += 1
        if i < len(line) and line[i] == '"':
            j, chars = i + 1, []
            while j < len(line) and line[j] != '"':
                if line[j] == "\\" and j + 1 < len(line) and line[j + 1] in '"\\':
                    chars.append(line[j + 1])
                    j += 2
                    continue
                chars.append(line[j])
                j += 1
            if j >= len(line):
                raise LineError("unbalanced quotes")
            fields[key] = ("string", "".join(chars))
            i = j + 1
        else:
            j = i
            while j < len(line) and line[j] not in ", ":
                j += 1
            fields[key] = _field_value(line[i:j])
            i = j
        if i < len(line) and line[i] == ",":
            i += 1
            continue
        break
    if i >= len(line):
        return ParsedPoint(measurement, tuple(sorted(tags.items())), fields, now_ns // precision_ns * precision_ns)
    raw_ts = line[i + 1:]
    if not re.fullmatch(r"-?\d+", raw_ts):
        raise LineError("bad timestamp")
    ts = int(raw_ts) * precision_ns
    if not -(2**63) <= ts < 2**63:
        raise LineError("time outside range -9223372036854775806 - 9223372036854775806")
    return ParsedPoint(measurement, tuple(sorted(tags.items())), fields, ts)


# ---------------------------------------------------------------------------------------------
# storage
# ---------------------------------------------------------------------------------------------

@dataclass
class Bucket:
    id: str
    name: str
    org_id: str
    series: dict[tuple[str, tuple[tuple[str, str], ...]], dict[int, dict[str, tuple[str, Any]]]] = \
        field(default_factory=dict)
    types: dict[tuple[str, str], str] = field(default_factory=dict)  # (measurement, field) → type
    every_s: int = 0  # the expiry rule it was created with (0: forever)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "orgID": self.org_id, "type": "user", "name": self.name,
                "retentionRules": [{"type": "expire", "everySeconds": self.every_s,
                                    "shardGroupDurationSeconds": 604800}],
                "createdAt": "2025-10-20T14:56:04.099850752Z", "updatedAt": "2025-10-20T14:56:04.099850819Z",
                "links": {"self": f"/api/v2/buckets/{self.id}", "org": f"/api/v2/orgs/{self.org_id}",
                          "write": f"/api/v2/write?org={self.org_id}&bucket={self.id}"},
                "labels": []}


@dataclass(frozen=True)
class Row:
    """One stored field value, as ``from() |> range()`` would yield it."""

    measurement: str
    tags: dict[str, str]
    field: str
    type: str
    value: Any
    time: int

    def col(self, name: str) -> Any:
        if name == "_measurement":
            return self.measurement
        if name == "_field":
            return self.field
        return self.tags.get(name)


@dataclass
class Fault:
    status: int
    retry_after: str | None = None


@dataclass
class QueryLog:
    text: str
    params: dict[str, Any]
    csv: str = ""  # the body answered
    template: str = ""  # the name in service/store/flux.py
    bucket: str = ""  # the bucket of from()
    scanned: dict[str, int] = field(default_factory=dict)  # measurement → stored rows in the range
    points_read: int = 0  # what storage hands to the query engine, by the planner's pushdown rules


# ---------------------------------------------------------------------------------------------
# annotated CSV (influxdata/flux csv/result.go)
# ---------------------------------------------------------------------------------------------

@dataclass
class Table:
    columns: list[tuple[str, str, bool]]  # (label, datatype, in group key)
    rows: list[list[Any]]


def rfc3339nano(ns: int) -> str:
    dt = EPOCH + timedelta(microseconds=ns // 1000)
    frac = f"{ns % 1_000_000_000:09d}".rstrip("0")
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + (f".{frac}" if frac else "") + "Z"


def go_float(v: float) -> str:
    """strconv.FormatFloat(v, 'f', -1, 64): shortest digits, never an exponent."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    text = format(Decimal(repr(v)), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def _cell(value: Any, datatype: str) -> str:
    if value is None:
        return ""
    if datatype.startswith("dateTime"):
        text = rfc3339nano(int(value))
    elif datatype == "double":
        text = go_float(float(value))
    elif datatype == "boolean":
        text = "true" if value else "false"
    else:
        text = str(value)
    # encoding/csv fieldNeedsQuotes
    if text == "":
        return text
    if any(c in text for c in ',"\r\n') or text[0] in " \t" or text == "\\.":
        return '"' + text.replace('"', '""') + '"'
    return text


def encode_results(results: list[tuple[str, list[Table]]]) -> str:
    """Every line ends in CRLF; a blank line comes before a new annotation block (schema change)
    and after each result, so a result without tables is just ``\r\n``."""
    out: list[str] = []
    for name, tables in results:
        schema: list[tuple[str, str, bool]] | None = None
        for table_id, table in enumerate(tables):
            if table.columns != schema:
                if schema is not None:
                    out.append("\r\n")
                schema = table.columns
                out.append("#datatype,string,long," + ",".join(t for _, t, _ in schema) + "\r\n")
                out.append("#group,false,false," + ",".join("true" if g else "false" for _, _, g in schema) + "\r\n")
                out.append(f"#default,{name},," + ",".join("" for _ in schema) + "\r\n")
                out.append(",result,table," + ",".join(label for label, _, _ in schema) + "\r\n")
            for row in table.rows:
                cells = ",".join(_cell(v, t) for v, (_, t, _) in zip(row, schema, strict=True))
                out.append(f",,{table_id},{cells}\r\n")
        out.append("\r\n")
    return "".join(out)


# ---------------------------------------------------------------------------------------------
# the server
# ---------------------------------------------------------------------------------------------

# Types the backend's template parameters must have (a Flux type error otherwise).
PARAM_TYPES = {"_bucket": "string", "_start": "time", "_stop": "time", "_every": "duration", "_tz": "string",
               "_metric": "string", "_by": "string", "_region": "string", "_limit": "int", "_crop": "string",
               "_reason": "string", "_device": "string", "_worker": "string", "_rollupBucket": "string",
               "_pendingOnly": "bool", "_key": "string", "_byActive": "bool", "_active": "bool",
               "_channel": "string"}
_PARAM_REF = re.compile(r'(?<![\w."])(_[A-Za-z]\w*)\b')


def _literal(node: dict[str, Any]) -> tuple[str, Any]:
    """A Flux AST literal from the client's ``extern`` → (type, Python value)."""
    kind = node.get("type")
    if kind == "StringLiteral":
        return "string", str(node["value"])
    if kind == "IntegerLiteral":
        return "int", int(node["value"])
    if kind == "FloatLiteral":
        return "float", float(node["value"])
    if kind == "BooleanLiteral":
        return "bool", bool(node["value"])
    if kind == "DateTimeLiteral":
        text = str(node["value"])
        m = re.fullmatch(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?Z", text)
        if not m:
            raise HttpError(400, "invalid", f"compilation failed: invalid date time literal {text!r}")
        base = datetime.fromisoformat(m.group(1)).replace(tzinfo=UTC)
        return "time", (base - EPOCH) // timedelta(seconds=1) * 1_000_000_000 + int((m.group(2) or "0").ljust(9, "0"))
    if kind == "DurationLiteral":
        total = 0
        for part in node["values"]:
            unit = part["unit"]
            if unit not in DURATION_NS:
                raise HttpError(400, "invalid", f"fake influxdb: calendar duration unit {unit!r} not supported")
            total += int(part["magnitude"]) * DURATION_NS[unit]
        return "duration", total
    if kind == "UnaryExpression" and node.get("operator") == "-":
        t, v = _literal(node["argument"])
        return t, -v
    if kind == "ArrayExpression":
        return "array", [_literal(e)[1] for e in node.get("elements", [])]
    raise HttpError(400, "invalid", f"compilation failed: unsupported extern expression {kind}")


_RFC3339NANO = re.compile(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})")


def _rfc3339nano_ns(value: Any, name: str) -> int:
    m = _RFC3339NANO.fullmatch(value) if isinstance(value, str) else None
    if m is None:
        example = "2009-01-02T23:00:00Z" if name == "start" else "2009-01-01T23:00:00Z"
        raise HttpError(400, "invalid", f"invalid request; error parsing request json: invalid RFC3339Nano for field "
                        f"{name}, please format your time with RFC3339Nano format, example: {example}")
    zone = "+00:00" if m.group(3) == "Z" else m.group(3)
    base = datetime.fromisoformat(m.group(1) + zone)
    return (base - EPOCH) // timedelta(seconds=1) * 1_000_000_000 + int((m.group(2) or "0").ljust(9, "0"))


_DELETE_TOKEN = re.compile(r'\s*(?:(\()|(\))|("(?:[^"\\]|\\.)*")|([A-Za-z_][\w.-]*)|(!=|=~|!~|=|<>|<=|>=|<|>))')


def parse_delete_predicate(text: str) -> Callable[[dict[str, str]], bool]:
    """The delete predicate's grammar (InfluxDB's predicate package): ``key = "value"`` terms, keys
    bare or double-quoted, joined by AND (any case), parentheses allowed; an empty predicate matches
    every series. Anything else is the server's 400 with its message and position."""
    def bad(message: str) -> HttpError:
        return HttpError(400, "invalid", f"invalid request; error parsing request json: {message}")

    tokens: list[tuple[str, str, int]] = []
    i = 0
    while i < len(text):
        if text[i:].strip() == "":
            break
        m = _DELETE_TOKEN.match(text, i)
        if m is None:
            raise bad(f"invalid predicate at position {i}")
        kind = ("(" if m.group(1) else ")" if m.group(2) else "str" if m.group(3) else "word" if m.group(4) else "op")
        tokens.append((kind, m.group(m.lastindex or 0), m.start(m.lastindex or 0)))
        i = m.end()
    terms: list[tuple[str, str]] = []
    expect_term = True
    for pos, (kind, value, at) in enumerate(tokens):
        if kind in "()":
            continue
        if kind == "word" and value.upper() == "OR":
            raise bad(f"the logical operator OR is not supported yet at position {at}")
        if kind == "word" and value.upper() == "AND":
            if expect_term:
                raise bad(f"invalid predicate: AND without a left operand at position {at}")
            expect_term = True
            continue
        if kind == "op":
            continue
        if not expect_term:
            continue  # the right operand of the term just read
        rest = [t for t in tokens[pos + 1:] if t[0] not in "()"]
        if len(rest) < 2 or rest[0][0] != "op" or rest[1][0] not in ("str", "word"):
            raise bad(f"invalid predicate at position {at}")
        op = rest[0][1]
        if op != "=":
            raise bad(f"the comparison operator {op} is not supported yet at position {rest[0][2]}")
        key = json.loads(value) if kind == "str" else value
        if key in ("_time", "_field", "_value"):
            raise bad(f"{key} is not supported as a predicate key: delete by field, time or value is not supported "
                      "in InfluxDB OSS")
        operand = rest[1][1]
        terms.append((key, json.loads(operand) if rest[1][0] == "str" else operand))
        expect_term = False
    if tokens and expect_term:
        raise bad("invalid predicate: it ends without an operand")
    return lambda series: all(series.get(k) == v for k, v in terms)


def _error_response(exc: HttpError) -> Response:
    body = json.dumps({"code": exc.code, "message": exc.message}, separators=(",", ":"))
    headers = {"X-Platform-Error-Code": exc.code, **VERSION_HEADERS, **exc.headers}
    return Response(body, status=exc.status, headers=headers, content_type="application/json; charset=utf-8")


class _QuickHTTPServer(HTTPServer):
    """pytest-httpserver whose stop() returns in ~20 ms instead of the 0.5 s of the default poll."""

    def thread_target(self) -> None:
        assert self.server is not None
        self.server.serve_forever(poll_interval=0.02)


class FakeInflux:
    """State and handlers; ``start()`` binds it to a pytest-httpserver on 127.0.0.1 and a free port."""

    def __init__(self, token: str = "fake-token", org: str = "nongyun-org",
                 max_body_bytes: int = 10 * 1024 * 1024) -> None:
        self.token = token
        self.orgs = {org: "50f7ba1150f7ba11"}
        self.buckets: dict[str, Bucket] = {}
        self.max_body_bytes = max_body_bytes
        self.healthy = True
        self.faults: list[Fault] = []
        self.queries: list[QueryLog] = []
        self.write_attempts = 0
        self.writes_ok = 0
        self.requests: list[tuple[str, str]] = []
        self.deletes: list[tuple[int, int, str]] = []  # (start ns, stop ns, predicate) of each delete done
        # Called with the template name before a query is evaluated: lets a test interleave another
        # client's request (a write landing while a refresh is under way).
        self.before_query: Callable[[str], None] | None = None
        self._lock = threading.RLock()
        self._ids = 0
        self._server: HTTPServer | None = None

    # -- lifecycle and switches ---------------------------------------------------------------

    def start(self) -> FakeInflux:
        server = _QuickHTTPServer(host="127.0.0.1", port=0, threaded=True)
        server.expect_request(re.compile(".*")).respond_with_handler(self.handle)
        server.start()
        self._server = server
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.clear()
            if self._server.is_running():
                self._server.stop()
            self._server = None

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the fake first"
        return f"http://127.0.0.1:{self._server.port}"

    def create_bucket(self, name: str, org: str | None = None) -> Bucket:
        with self._lock:
            self._ids += 1
            org_id = self.orgs[org] if org else next(iter(self.orgs.values()))
            bucket = Bucket(f"{0xb501e7e557ab000 + self._ids:016x}", name, org_id)
            self.buckets[name] = bucket
            return bucket

    def fail_writes(self, status: int, times: int = 1, retry_after: str | None = None) -> None:
        """Answer the next ``times`` writes with ``status`` and the server's body for it."""
        with self._lock:
            self.faults.extend(Fault(status, retry_after) for _ in range(times))

    def points(self, bucket: str, measurement: str | None = None) -> list[Row]:
        with self._lock:
            return [r for r in self._rows(self.buckets[bucket]) if measurement in (None, r.measurement)]

    # -- dispatch -----------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        with self._lock:
            self.requests.append((request.method, request.full_path))
        try:
            return self._route(request)
        except HttpError as exc:
            return _error_response(exc)

    def _route(self, request: Request) -> Response:
        path, method = request.path, request.method
        if path == "/health" and method == "GET":
            if self.healthy:
                return Response(HEALTH_BODY, 200, content_type="application/json; charset=utf-8")
            body = ('{"name":"influxdb", "message":"not ready", "status":"fail", "checks":[], '
                    '"version": "v2.7.10", "commit": "f302d9730c"}\n')
            return Response(body, 503, content_type="application/json; charset=utf-8")
        if path == "/ping" and method in ("GET", "HEAD"):
            return Response(status=204, headers=VERSION_HEADERS)
        if path == "/ready" and method == "GET":
            body = '{\n    "status": "ready",\n    "started": "2024-09-03T11:00:00.000000000Z",\n    "up": "1h"\n}\n'
            return Response(body, 200, content_type="application/json")
        routes: dict[tuple[str, str], Callable[[Request], Response]] = {
            ("POST", "/api/v2/write"): self._write,
            ("POST", "/api/v2/query"): self._query,
            ("GET", "/api/v2/buckets"): self._list_buckets,
            ("POST", "/api/v2/buckets"): self._create_bucket,
            ("GET", "/api/v2/orgs"): self._list_orgs,
            ("POST", "/api/v2/delete"): self._delete,
        }
        handler = routes.get((method, path))
        if handler is None and method == "DELETE" and path.startswith("/api/v2/buckets/"):
            handler = self._delete_bucket
        if handler is None:
            raise HttpError(404, "not found", "path not found")
        self._authorize(request)
        return handler(request)

    def _authorize(self, request: Request) -> None:
        if request.headers.get("Authorization", "") != f"Token {self.token}":
            raise HttpError(401, "unauthorized", "unauthorized access")

    def _org_id(self, request: Request) -> str:
        org, org_id = request.args.get("org"), request.args.get("orgID")
        if org_id:
            if org_id not in self.orgs.values():
                raise HttpError(404, "not found", "organization not found")
            return org_id
        if not org:
            raise HttpError(400, "invalid", "Please provide either orgID or org")
        if org not in self.orgs:
            raise HttpError(404, "not found", f'organization name "{org}" not found')
        return self.orgs[org]

    def _bucket(self, name: str | None, org_id: str) -> Bucket:
        for b in self.buckets.values():
            if (b.id == name or b.name == name) and b.org_id == org_id:
                return b
        if not name:
            raise HttpError(404, "not found", "bucket not found")
        raise HttpError(404, "not found", f'bucket "{name}" not found')

    # -- buckets and orgs ---------------------------------------------------------------------

    def _list_buckets(self, request: Request) -> Response:
        name = request.args.get("name")
        org_id = None
        if request.args.get("org") or request.args.get("orgID"):
            org_id = self._org_id(request)
        with self._lock:
            found = [b.to_json() for b in self.buckets.values()
                     if (name is None or b.name == name) and (org_id is None or b.org_id == org_id)]
        body = {"links": {"self": "/api/v2/buckets?descending=false&limit=20&offset=0"}, "buckets": found}
        return Response(json.dumps(body), 200, content_type="application/json; charset=utf-8")

    def _create_bucket(self, request: Request) -> Response:
        doc = json.loads(request.get_data() or b"{}")
        name, org_id = doc.get("name"), doc.get("orgID")
        if not name:
            raise HttpError(400, "invalid", "bucket name is required")
        if org_id not in self.orgs.values():
            raise HttpError(404, "not found", "organization not found")
        with self._lock:
            if name in self.buckets:
                raise HttpError(422, "conflict", f"bucket with name {name} already exists")
            org = next(o for o, i in self.orgs.items() if i == org_id)
            bucket = self.create_bucket(name, org)
            rules = doc.get("retentionRules") or []
            bucket.every_s = max((int(r.get("everySeconds", 0)) for r in rules), default=0)
        return Response(json.dumps(bucket.to_json()), 201, content_type="application/json; charset=utf-8")

    def _delete_bucket(self, request: Request) -> Response:
        bucket_id = request.path.rsplit("/", 1)[1]
        with self._lock:
            for name, b in list(self.buckets.items()):
                if b.id == bucket_id:
                    del self.buckets[name]
                    return Response(status=204)
        raise HttpError(404, "not found", "bucket not found")

    def _list_orgs(self, request: Request) -> Response:
        name = request.args.get("org")
        orgs = [{"id": i, "name": n, "description": "", "createdAt": "2025-10-20T14:56:04Z",
                 "updatedAt": "2025-10-20T14:56:04Z", "links": {}}
                for n, i in self.orgs.items() if name in (None, n)]
        if name and not orgs:
            raise HttpError(404, "not found", f'organization name "{name}" not found')
        body = {"links": {"self": "/api/v2/orgs"}, "orgs": orgs}
        return Response(json.dumps(body), 200, content_type="application/json; charset=utf-8")

    # -- write --------------------------------------------------------------------------------

    def _write(self, request: Request) -> Response:
        with self._lock:
            self.write_attempts += 1
            fault = self.faults.pop(0) if self.faults else None
        if fault is not None:
            code, message = FAULT_BODIES[fault.status]
            headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
            raise HttpError(fault.status, code, message, headers)
        precision = request.args.get("precision", "ns")
        if precision not in PRECISION_NS:
            raise HttpError(400, "invalid", "invalid precision; valid precision units are ns, us, ms, and s")
        org_id = self._org_id(request)
        bucket = self._bucket(request.args.get("bucket"), org_id)
        raw = request.get_data()
        if request.headers.get("Content-Encoding", "").lower() == "gzip":
            try:
                raw = gzip.decompress(raw)
            except (OSError, EOFError, zlib.error) as exc:
                raise HttpError(400, "invalid", f"unable to read data: {exc}") from None
        if len(raw) > self.max_body_bytes:
            raise HttpError(413, "request too large", "unable to read data: points batch is too large")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise HttpError(400, "invalid", "unable to parse: invalid UTF-8") from None
        now_ns = time.time_ns()
        points, errors = [], []
        for line in text.split("\n"):
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                continue
            try:
                points.append(parse_line(line.rstrip("\r"), PRECISION_NS[precision], now_ns))
            except LineError as exc:
                errors.append(f"unable to parse '{line}': {exc}")
        if errors:
            raise HttpError(400, "invalid", "\n".join(errors))
        if not points:
            raise HttpError(400, "invalid", "writing requires points")
        with self._lock:
            conflict, dropped = None, 0
            for p in points:
                clash = next(((k, t, bucket.types[(p.measurement, k)]) for k, (t, _) in p.fields.items()
                              if bucket.types.get((p.measurement, k), t) != t), None)
                if clash is not None:
                    dropped += 1
                    conflict = conflict or (f'field type conflict: input field "{clash[0]}" on measurement '
                                            f'"{p.measurement}" is type {clash[1]}, already exists as type {clash[2]}')
                    continue
                for k, (t, _) in p.fields.items():
                    bucket.types[(p.measurement, k)] = t
                slot = bucket.series.setdefault((p.measurement, p.tags), {}).setdefault(p.time_ns, {})
                slot.update(p.fields)
            self.writes_ok += 1
        if conflict:
            raise HttpError(422, "unprocessable entity",
                            f"failure writing points to database: partial write: {conflict} dropped={dropped}")
        return Response(status=204, headers=VERSION_HEADERS)

    # -- delete -------------------------------------------------------------------------------

    def _delete(self, request: Request) -> Response:
        """``POST /api/v2/delete`` as InfluxDB OSS 2.7 answers it (http/delete_handler.go): a JSON body
        {start, stop, predicate?} with RFC3339Nano times, org/orgID and bucket/bucketID parameters,
        204 when done; every point of the bucket whose series key satisfies the predicate and whose
        time lies in [start, stop] goes. The predicate language is the delete one: ``key="value"``
        joined by AND, nothing else (no OR, no !=, no regular expressions, not _time/_field/_value)."""
        try:
            doc = json.loads(request.get_data() or b"null")
        except ValueError as exc:
            raise HttpError(400, "invalid", f"invalid request; error parsing request json: {exc}") from None
        if not isinstance(doc, dict):
            raise HttpError(400, "invalid", "invalid request; error parsing request json: not an object")
        start = _rfc3339nano_ns(doc.get("start"), "start")
        stop = _rfc3339nano_ns(doc.get("stop"), "stop")
        org_id = self._org_id(request)
        name = request.args.get("bucket") or request.args.get("bucketID")
        if not name:
            raise HttpError(400, "invalid", "Please provide either bucketID or bucket")
        bucket = self._bucket(name, org_id)
        if stop < start:
            raise HttpError(400, "invalid", "invalid request; error parsing request json: "
                            "start must not be after stop")
        match = parse_delete_predicate(str(doc.get("predicate") or ""))
        with self._lock:
            for (measurement, tags), times in list(bucket.series.items()):
                if not match({"_measurement": measurement, **dict(tags)}):
                    continue
                for t in [t for t in times if start <= t <= stop]:
                    del times[t]
                if not times:
                    del bucket.series[(measurement, tags)]
            self.deletes.append((start, stop, str(doc.get("predicate") or "")))
        return Response(status=204, headers=VERSION_HEADERS)

    # -- query --------------------------------------------------------------------------------

    def _query(self, request: Request) -> Response:
        org_id = self._org_id(request)
        ctype = request.headers.get("Content-Type", "").split(";")[0].strip()
        params: dict[str, tuple[str, Any]] = {}
        if ctype == "application/vnd.flux":
            text = request.get_data(as_text=True)
        elif ctype == "application/json":
            try:
                doc = json.loads(request.get_data())
            except ValueError as exc:
                raise HttpError(400, "invalid", f"failed to decode request body: {exc}") from None
            text = doc.get("query") or ""
            if doc.get("type", "flux") != "flux":
                raise HttpError(400, "invalid", f"unsupported query type {doc.get('type')!r}")
            for stmt in (doc.get("extern") or {}).get("body", []):
                if stmt.get("type") != "OptionStatement":
                    raise HttpError(400, "invalid", "compilation failed: extern may only hold option statements")
                assignment = stmt["assignment"]
                if assignment.get("type") == "VariableAssignment":
                    params[assignment["id"]["name"]] = _literal(assignment["init"])
        else:
            raise HttpError(415, "unsupported media type", f"unsupported media type {ctype!r}")
        if not text.strip():
            raise HttpError(400, "invalid", "query cannot be empty")
        bucket_name = self._from_bucket(text, params)
        if "from(" in text and "range(" not in text:
            raise HttpError(400, "invalid", "error in building plan while starting program: cannot submit "
                            f"unbounded read to \"{bucket_name}\"; try bounding 'from' with a call to 'range'")
        for name in _PARAM_REF.findall(text):
            if name not in params:
                raise HttpError(400, "invalid", f"compilation failed: error @1:1-1:1: undefined identifier {name}")
            want = PARAM_TYPES.get(name)
            if want is not None and params[name][0] != want:
                raise HttpError(400, "invalid", f"type error: {name}: expected {want} but found {params[name][0]}")
        hook = self.before_query
        if hook is not None:  # outside the lock: the hook may write to this server meanwhile
            hook(next((n for n, t in TEMPLATES.items() if t == text), ""))
        with self._lock:
            bucket = None
            for b in self.buckets.values():
                if b.name == bucket_name and b.org_id == org_id:
                    bucket = b
            if bucket is None:
                raise HttpError(404, "not found",
                                f'failed to initialize execute state: could not find bucket "{bucket_name}"')
            template = next((n for n, t in TEMPLATES.items() if t == text), None)
            values = {k: v for k, (_, v) in params.items()}
            self.queries.append(QueryLog(text, values))
            if template is None:
                raise HttpError(400, "invalid", "fake influxdb: this query is not one of service/store/flux.py's "
                                "templates, and the fake evaluates only those")
            if values["_start"] >= values["_stop"]:
                raise HttpError(400, "invalid", "error in building plan while starting program: "
                                "cannot query an empty range")
            rows = list(self._rows(bucket, values["_start"], values["_stop"]))
            log = self.queries[-1]
            log.template, log.bucket = template, bucket.name
            for r in rows:
                log.scanned[r.measurement] = log.scanned.get(r.measurement, 0) + 1
            log.points_read = storage_points(text, values, rows, self._window_of(values))
            body = encode_results(self._evaluate(template, values, rows, org_id))
            self.queries[-1].csv = body
        return Response(body, 200, content_type="text/csv; charset=utf-8",
                        headers=VERSION_HEADERS)

    @staticmethod
    def _window_of(values: dict[str, Any]) -> Callable[[int, str], int]:
        """aggregateWindow's window start for a row time, ``every`` as the template writes it."""
        tz = ZoneInfo(values["_tz"]) if isinstance(values.get("_tz"), str) and values["_tz"] else ZoneInfo("UTC")

        def start(t: int, every: str) -> int:
            span = values[every] if every in values else _duration_ns(every)
            return _window(t, span, tz, values["_start"], values["_stop"])[0]

        return start

    @staticmethod
    def _from_bucket(text: str, params: dict[str, tuple[str, Any]]) -> str:
        m = re.search(r'from\(\s*bucket\s*:\s*(?:"((?:[^"\\]|\\.)*)"|(\w+))\s*\)', text)
        if not m:
            raise HttpError(400, "invalid", "fake influxdb: query has no from(bucket: ...)")
        if m.group(1) is not None:
            return m.group(1)
        name = m.group(2)
        if name not in params:
            raise HttpError(400, "invalid", f"compilation failed: error @1:1-1:1: undefined identifier {name}")
        return str(params[name][1])

    @staticmethod
    def _rows(bucket: Bucket, start: int = -(2**63), stop: int = 2**63) -> Iterator[Row]:
        """Stored rows with ``start <= time < stop`` (``range()``), series by series."""
        for (measurement, tags), times in bucket.series.items():
            tag_map = dict(tags)
            for t, fields in times.items():
                if start <= t < stop:
                    for k, (typ, value) in fields.items():
                        yield Row(measurement, tag_map, k, typ, value, t)

    # -- the templates, computed in plain Python ----------------------------------------------

    def _evaluate(self, name: str, p: dict[str, Any], rows: list[Row],
                  org_id: str) -> list[tuple[str, list[Table]]]:
        template, _, tier = name.partition("@")

        def in_region(r: Row) -> bool:  # r.<tier> == _region: the tier tag every point carries
            return r.tags.get(tier, "") == p["_region"]

        def per_series(chosen: list[Row], agg: str, with_field: bool = False) -> list[Table]:
            """aggregateWindow runs on each series (and field) of the stream on its own."""
            tables: list[Table] = []
            for _, series_rows in sorted(_series_fields(chosen).items(), key=lambda kv: _key_sort(kv[0])):
                tables += _aggregate_window(series_rows, p, agg, with_field)
            return tables

        if template.startswith("rollup_readings_"):
            fields, fn = ROLLUP_READS[template.rsplit("_", 1)[1]]
            chosen = [r for r in rows if r.measurement == "telemetry" and r.tags.get("metric") == p["_metric"]
                      and r.field in fields and in_region(r)]
            return [("_result", per_series(chosen, fn, with_field=True))]
        if template == "rollup_hours":
            return [("_result", self._rollup_to(p, rows, org_id))]
        if template == "rollup_state":
            return [("_result", _state_table([r for r in rows if r.measurement == "rollup_state"], p["_pendingOnly"]))]
        if template == "rollup_ready":
            chosen = [r for r in rows if r.measurement == "rollup_meta" and r.field == "backfilled"]
            return [("_result", _last_tables(chosen, []))]
        if template == "rollup_backfill":  # per series and hour, then group(): one row each
            cells = sorted({(max(r.time // HOUR_NS * HOUR_NS, p["_start"]), r.measurement,
                             tuple(sorted(r.tags.items())), r.field) for r in rows if r.measurement == "telemetry"})
            table = Table([("_time", "dateTime:RFC3339", False)], [[cell[0]] for cell in cells])
            return [("_result", [table] if cells else [])]
        if template in ("alerts", "alerts_key", "alerts_undelivered"):
            return [("_result", _alerts_table(template, [r for r in rows if r.measurement == "alert"], p))]
        if template.startswith("readings_"):
            part = template.split("_", 1)[1]
            chosen = [r for r in rows if r.measurement == "telemetry" and r.field == p["_metric"] and in_region(r)]
            return [("_result", per_series(chosen, part))]
        approved = template.endswith("_approved")
        template = template.removesuffix("_approved")

        def status_ok(r: Row) -> bool:  # r.status != "void", or == "approved" (a missing tag reads as "")
            return r.tags.get("status", "") == "approved" if approved else r.tags.get("status", "") != "void"

        if template in ("yield_sums", "yield_sums_crop"):
            chosen = [r for r in rows if r.measurement == "yield" and r.field in ("yield_kg", "area_ha")
                      and in_region(r) and status_ok(r)
                      and (template == "yield_sums" or r.tags.get("crop") == p["_crop"])]
            return [("sum", _group_reduce(chosen, [p["_by"], "_field"], "sum")),
                    ("count", _group_reduce([r for r in chosen if r.field == "yield_kg"], [p["_by"], "_field"],
                                            "count"))]
        if template in ("yield_source_count", "yield_source_count_crop"):
            chosen = [r for r in rows if r.measurement == "yield" and r.field == "source" and in_region(r)
                      and r.value == p["_source"] and status_ok(r)
                      and (template == "yield_source_count" or r.tags.get("crop") == p["_crop"])]
            return [("_result", _group_reduce(chosen, [], "count"))]
        if template in ("yield_first", "yield_last"):
            chosen = [r for r in rows if r.measurement == "yield" and r.field == "yield_kg" and in_region(r)]
            pick = min if template == "yield_first" else max
            times = [pick(g, key=lambda r: r.time).time for g in _series_fields(chosen).values()]
            return [("_result", [Table([("_time", "dateTime:RFC3339", False)], [[t]]) for t in sorted(times)])]
        if template == "yield_records":
            chosen = [r for r in rows if r.measurement == "yield" and in_region(r) and status_ok(r)]
            return [("_result", _pivot_table(chosen, RECORD_KEEP, p["_limit"]))]
        if template in ("records_page", "record_by_id"):
            chosen = [r for r in rows if r.measurement == "yield"
                      and (in_region(r) if template == "records_page" else r.tags.get("entry") == p["_entry"])]
            return [("_result", _records_table(chosen, p, template == "records_page"))]
        if template == "record_revisions":
            chosen = [r for r in rows if r.measurement == "yield_revision" and r.tags.get("entry") == p["_entry"]]
            return [("_result", _revisions_table(chosen))]
        if template in ("latest_telemetry", "latest_yield"):
            chosen = [r for r in rows if in_region(r) and (r.measurement == "telemetry" if template ==
                                                           "latest_telemetry" else
                                                           r.measurement == "yield" and r.field == "yield_kg")]
            return [("_result", _last_tables(chosen, ["_measurement", "_field", "device"]))]
        if template == "latest_status":
            last = [max(group, key=lambda r: r.time) for group in _series_fields(
                [r for r in rows if r.measurement == "device_status"]).values()]
            return [("_result", _status_tables(last, p))]
        if template.startswith("rejections_"):
            variant = template.removeprefix("rejections_")
            chosen = [r for r in rows if r.measurement == "rejection"
                      and ("reason" not in variant or r.tags.get("reason", "") == p["_reason"])
                      and ("device" not in variant or r.tags.get("device", "") == p["_device"])]
            keep = ["_time", "reason", "device", "topic", "detail", "payload"]
            return [("_result", _pivot_table(chosen, keep, p["_limit"]))]
        if template in ("counters", "counters_worker"):
            chosen = [r for r in rows if r.measurement == "ingest_counter"
                      and (template == "counters" or r.tags.get("worker") == p["_worker"])]
            return [("_result", _last_tables(chosen, ["worker", "reason", "_field"]))]
        raise HttpError(400, "invalid", f"fake influxdb: no evaluator for template {name}")

    def _rollup_to(self, p: dict[str, Any], rows: list[Row], org_id: str) -> list[Table]:
        """``aggregateWindow(every: 1h)`` count/sum/min/max of every telemetry series and field,
        ``duplicate(_field → metric) |> set(_field: <agg>) |> toFloat() |> to(bucket, tagColumns)``,
        then ``group() |> count()``: the number of rows written."""
        target = next((b for b in self.buckets.values() if b.name == p["_rollupBucket"] and b.org_id == org_id), None)
        if target is None:
            raise HttpError(404, "not found", f'failed to initialize execute state: could not find bucket '
                            f'"{p["_rollupBucket"]}"')
        groups: dict[tuple[tuple[tuple[str, str], ...], str, int], list[float]] = {}
        for r in rows:
            if r.measurement != "telemetry":
                continue
            if r.type not in ("float", "integer", "unsigned"):
                raise HttpError(400, "invalid", f"runtime error: sum: unsupported input type {r.type}")
            hour, _ = _window(r.time, HOUR_NS, ZoneInfo("UTC"), p["_start"], p["_stop"])
            groups.setdefault((tuple(sorted(r.tags.items())), r.field, hour), []).append(float(r.value))
        tag_columns = ("device", "district", "metric", "township", "village")
        written = 0
        for (tags, metric, hour), values in sorted(groups.items()):
            out_tags = {k: v for k, v in (*tags, ("metric", metric)) if k in tag_columns}
            fields = {"count": ("float", float(len(values))), "sum": ("float", float(sum(values))),
                      "min": ("float", min(values)), "max": ("float", max(values))}
            for k, (t, _) in fields.items():
                known = target.types.get(("telemetry", k), t)
                if known != t:
                    raise HttpError(500, "internal error", f"runtime error: to: field type conflict: input field "
                                    f'"{k}" on measurement "telemetry" is type {t}, already exists as type {known}')
                target.types[("telemetry", k)] = t
            key = ("telemetry", tuple(sorted(out_tags.items())))
            target.series.setdefault(key, {}).setdefault(hour, {}).update(fields)
            written += len(fields)
        return [Table([("_value", "long", False)], [[written]])] if written else []


# ---------------------------------------------------------------------------------------------
# Flux operations the templates use, over stored rows
# ---------------------------------------------------------------------------------------------

HOUR_NS = 3_600_000_000_000
# Rollup fields each ``rollup_readings_<agg>`` template reads, and the function merging them.
ROLLUP_READS: dict[str, tuple[tuple[str, ...], str]] = {
    "mean": (("count", "sum"), "sum"), "sum": (("sum",), "sum"), "count": (("count",), "sum"),
    "min": (("min",), "min"), "max": (("max",), "max")}
AGGREGATES: dict[str, Callable[[list[float]], float]] = {
    "mean": lambda v: sum(v) / len(v), "sum": lambda v: float(sum(v)), "min": min, "max": max,
    "count": lambda v: len(v)}
_CSV_TYPE = {"float": "double", "integer": "long", "unsigned": "unsignedLong", "string": "string",
             "boolean": "boolean"}


def _series_fields(rows: Iterable[Row]) -> dict[tuple[Any, ...], list[Row]]:
    """The tables ``from()`` yields: one per series and field."""
    tables: dict[tuple[Any, ...], list[Row]] = {}
    for r in rows:
        tables.setdefault((r.measurement, tuple(sorted(r.tags.items())), r.field), []).append(r)
    return tables


def _key_sort(key: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple((v is not None, v or "") for v in key)


# Windows in a location, as Flux computes them (flux interval/window.go, internal/zoneinfo/
# zoneinfo_clock.go; aggregateWindow's stdlib/universe/aggregate_window.go), ported rather than
# shared with service/times.py so the backend is checked against Flux, not against itself:
# - ``GetLatestBounds(t)``: t becomes wall-clock time (``FromLocalClock``: t + the offset at t), the
#   window index is that divided by ``every`` (zero = the epoch; timezone.location has offset 0),
#   and both bounds go back through ``ToLocalClock``: a clock time that does not exist becomes the
#   transition, one that exists twice its earliest instant;
# - ``scanWindows`` keeps the window of a point only when those bounds hold the point; then
#   ``aggregateWindows`` fills each kept window with every point between its bounds (clipped to the
#   range). A window whose points all read, on the clock, a time of another window is never kept.
SEC_NS = 1_000_000_000


def _offset_s(sec: int, tz: ZoneInfo) -> int:
    return int((datetime.fromtimestamp(sec, tz).utcoffset() or timedelta(0)).total_seconds())


@lru_cache(maxsize=65536)
def _zone_period(sec: int, tz: ZoneInfo) -> tuple[int, int, int]:
    """Go's ``Location.lookup(sec)``: the offset in force at UTC second ``sec`` and the [start, end)
    of seconds it stays in force, looked for two days either way (ToLocalClock compares times at
    most 14 hours away, so a farther edge answers the same)."""
    off = _offset_s(sec, tz)
    edges = []
    for step in (-6 * 3600, 6 * 3600):
        t, far = sec, sec + 8 * step
        edge = far
        while t != far:
            n = t + step
            if _offset_s(n, tz) != off:
                lo, hi = t, n  # offset ``off`` at lo, another at hi
                while abs(hi - lo) > 1:
                    mid = (lo + hi) // 2
                    if _offset_s(mid, tz) == off:
                        lo = mid
                    else:
                        hi = mid
                edge = hi if step > 0 else lo
                break
            t = n
        edges.append(edge)
    return off, edges[0], edges[1]


def _to_local_clock(clock: int, tz: ZoneInfo) -> int:
    """``Location.ToLocalClock``: a wall-clock time (ns) → the UTC instant, line by line."""
    sec = clock // SEC_NS
    offset, start, end = _zone_period(sec, tz)
    if offset != 0:
        local = sec - offset
        if local < start:
            offset, start, end = _zone_period(start - 1, tz)
            if not start <= sec - offset < end:
                return end * SEC_NS  # the time does not exist: truncate to the transition
        elif local >= end:
            offset, start, end = _zone_period(end, tz)
            if not start <= sec - offset < end:
                return start * SEC_NS
    prev_offset, prev_start, prev_end = _zone_period(start - 1, tz)
    if prev_start <= sec - prev_offset < prev_end:  # the earliest of two valid instants
        offset = prev_offset
    return clock - offset * SEC_NS


@lru_cache(maxsize=65536)
def _bounds_of_index(clock_start: int, every: int, tz: ZoneInfo) -> tuple[int, int]:
    return _to_local_clock(clock_start, tz), _to_local_clock(clock_start + every, tz)


def _latest_bounds(t: int, every: int, tz: ZoneInfo) -> tuple[int, int]:
    """``Window.GetLatestBounds(t)`` of a window with period = every and no offset, in ``tz``."""
    clock = t + _offset_s(t // SEC_NS, tz) * SEC_NS  # FromLocalClock
    return _bounds_of_index(clock // every * every, every, tz)


def _window(t: int, every: int, tz: ZoneInfo, start: int, stop: int) -> tuple[int, int]:
    """The [start, stop) of the window Flux files t under, clipped to the range (it may not hold t:
    see above)."""
    lo, hi = _latest_bounds(t, every, tz)
    return max(lo, start), min(hi, stop)


def _aggregate_window(rows: list[Row], p: dict[str, Any], agg: str, with_field: bool = False) -> list[Table]:
    """``group(columns: [_by] (+ "_field")) |> aggregateWindow(...) |> keep(...)``."""
    try:
        tz = ZoneInfo(p["_tz"])
    except (ZoneInfoNotFoundError, ValueError):
        raise HttpError(400, "invalid", f"runtime error: timezone.location: unknown time zone {p['_tz']}") from None
    by = p["_by"]
    if any(r.type not in ("float", "integer") for r in rows) and agg not in ("count",):
        raise HttpError(400, "invalid", f"runtime error: {agg}: unsupported input type")
    tables_in: dict[tuple[Any, ...], list[Row]] = {}
    for r in rows:
        tables_in.setdefault((r.field, r.col(by)) if with_field else (r.col(by),), []).append(r)
    groups: dict[tuple[Any, ...], dict[int, list[float]]] = {}
    for key, table_rows in tables_in.items():
        table_rows.sort(key=lambda r: r.time)
        times = [r.time for r in table_rows]
        # scanWindows: the windows some point's own bounds hold; then every point between each
        # kept window's (clipped) bounds, whatever its clock reads.
        kept = set()
        for t in times:
            lo, hi = _latest_bounds(t, p["_every"], tz)
            if lo <= t < hi:
                kept.add((max(lo, p["_start"]), min(hi, p["_stop"])))
        for lo, hi in kept:
            i, j = bisect_left(times, lo), bisect_left(times, hi)
            if i < j:
                groups.setdefault(key, {})[lo] = [r.value for r in table_rows[i:j]]
    tables = []
    value_type = "long" if agg == "count" else "double"
    key_cols = [("_field", "string", True)] if with_field else []
    key_cols.append((by, "string", True))
    for key in sorted(groups, key=_key_sort):
        rows_out = []
        for w in sorted(groups[key]):
            vals = groups[key][w]
            value = AGGREGATES[agg](vals)
            rows_out.append([w, *key, value])
        tables.append(Table([("_time", "dateTime:RFC3339", False), *key_cols, ("_value", value_type, False)],
                            rows_out))
    return tables


def _group_reduce(rows: list[Row], columns: list[str], agg: str) -> list[Table]:
    """``group(columns:) |> sum()`` or ``count()``: one row per group, key columns in schema order."""
    order = ["_field", "_measurement", *sorted({k for r in rows for k in r.tags})]
    key_cols = [c for c in order if c in columns]
    groups: dict[tuple[Any, ...], list[Row]] = {}
    for r in rows:
        groups.setdefault(tuple(r.col(c) for c in key_cols), []).append(r)
    tables = []
    for key in sorted(groups, key=_key_sort):
        vals = [r.value for r in groups[key]]
        if agg == "sum":
            value_type = _CSV_TYPE[groups[key][0].type]
            value: Any = sum(vals)
        else:
            value_type, value = "long", len(vals)
        cols = [(c, "string", True) for c in key_cols] + [("_value", value_type, False)]
        tables.append(Table(cols, [[*key, value]]))
    return tables


def _pivot_rows(rows: list[Row]) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """``pivot(rowKey: ["_time"], columnKey: ["_field"])`` per series; returns records and column types."""
    records: dict[tuple[Any, ...], dict[str, Any]] = {}
    types: dict[str, str] = {}
    for r in rows:
        rec = records.setdefault((r.measurement, tuple(sorted(r.tags.items())), r.time),
                                 {"_time": r.time, "_measurement": r.measurement, **r.tags})
        rec[r.field] = r.value
        types[r.field] = _CSV_TYPE[r.type]
        for k in r.tags:
            types[k] = "string"
    return list(records.values()), types


def _pivot_table(rows: list[Row], keep: list[str], limit: int) -> list[Table]:
    """``pivot |> group() |> sort(_time, desc) |> limit(n) |> keep(columns)``: one table, or none."""
    records, types = _pivot_rows(rows)
    if not records:
        return []
    if limit < 0:
        raise HttpError(400, "invalid", "runtime error: limit: n must be non-negative")
    records.sort(key=lambda rec: rec["_time"], reverse=True)
    records = records[:limit]
    # keep() keeps the table's own column order: _time, tags (sorted), then the pivoted fields (sorted).
    tags = sorted({k for r in rows for k in r.tags})
    fields = sorted({r.field for r in rows})
    cols = [c for c in ["_time", *tags, *fields] if c in keep]
    table = Table([(c, "dateTime:RFC3339" if c == "_time" else types[c], False) for c in cols],
                  [[rec.get(c) for c in cols] for rec in records])
    return [table]


def _last_tables(rows: list[Row], keep: list[str]) -> list[Table]:
    """``last() |> keep(columns)``: the newest row of each series and field; tables whose kept group
    keys coincide become one table."""
    merged: dict[tuple[Any, ...], tuple[list[tuple[str, str, bool]], list[list[Any]]]] = {}
    for table_rows in _series_fields(rows).values():
        last = max(table_rows, key=lambda r: r.time)
        key_cols = [c for c in ["_field", "_measurement", *sorted(last.tags)] if c in keep]
        cols = [("_time", "dateTime:RFC3339", False), ("_value", _CSV_TYPE[last.type], False)]
        cols += [(c, "string", True) for c in key_cols]
        key = tuple((c, last.col(c)) for c in key_cols)
        slot = merged.setdefault(key, (cols, []))
        slot[1].append([last.time, last.value, *(last.col(c) for c in key_cols)])
    return [Table(*merged[k]) for k in sorted(merged, key=lambda k: [(c, v or "") for c, v in k])]


def _status_tables(last_rows: list[Row], p: dict[str, Any]) -> list[Table]:
    """``last() |> pivot(...) |> filter(strings.hasPrefix(v: r.village, prefix: _region)) |> keep(...)``."""
    records, types = _pivot_rows(last_rows)
    tables = []
    for rec in sorted(records, key=lambda r: r.get("device") or ""):
        village = rec.get("village")
        if not isinstance(village, str) or not village.startswith(p["_region"]):
            continue
        cols = [("_time", "dateTime:RFC3339", False), ("device", "string", True)]
        cols += [(c, types[c], False) for c in ("online", "village") if c in rec]
        tables.append(Table(cols, [[rec["_time"], rec.get("device"), *(rec[c] for c, _, _ in cols[2:])]]))
    return tables


def _state_table(rows: list[Row], pending_only: bool) -> list[Table]:
    """``pivot(_time × _field) |> filter(pending) |> group() |> keep(_time, dirty, rolled) |> sort(_time)``."""
    records, types = _pivot_rows(rows)
    if pending_only:
        records = [rec for rec in records if rec.get("rolled") is None or rec.get("rolled") != rec.get("dirty")]
    if not records:
        return []
    present = {r.field for r in rows}  # pivot makes a column of every field of the range
    cols = [("_time", "dateTime:RFC3339", False)] + [(c, types[c], False) for c in ("dirty", "rolled") if c in present]
    records.sort(key=lambda rec: rec["_time"])
    return [Table(cols, [[rec.get(c) for c, _, _ in cols] for rec in records])]


RECORD_KEEP = ["_time", "village", "device", "crop", "plot", "area_ha", "yield_kg", "moisture_pct", "source", "entry",
               "status", "entered_by", "revision", "updated"]


def _keep_table(rows: list[Row], records: list[dict[str, Any]], types: dict[str, str], keep: list[str]) -> list[Table]:
    """``keep(columns)`` after ``pivot |> group()``: the table's own column order (_time, tags sorted,
    then the pivoted fields sorted), one table, or none when no record is left."""
    if not records:
        return []
    tags = sorted({k for r in rows for k in r.tags})
    fields = sorted({r.field for r in rows})
    cols = [c for c in ["_time", *tags, *fields] if c in keep]
    return [Table([(c, "dateTime:RFC3339" if c == "_time" else types[c], False) for c in cols],
                  [[rec.get(c) for c in cols] for rec in records])]


def _records_table(rows: list[Row], p: dict[str, Any], page: bool) -> list[Table]:
    """records_page: pivot, the optional filters (a missing column is null, and null == x is false),
    the keyset cursor, sort by (_time, entry) descending, limit; record_by_id: pivot, sort by _time."""
    records, types = _pivot_rows(rows)
    if page:
        def keep(rec: dict[str, Any]) -> bool:
            after = (rec["_time"] < p["_afterTime"]
                     or (rec["_time"] == p["_afterTime"] and (rec.get("entry") or "") < p["_afterEntry"]))
            return ((not p["_byCrop"] or rec.get("crop") == p["_crop"])
                    and (not p["_byStatus"] or rec.get("status") == p["_status"])
                    and (not p["_byPlot"] or rec.get("plot") == p["_plot"])
                    and (not p["_bySource"] or rec.get("source") in (p["_source1"], p["_source2"]))
                    and (not p["_byAfter"] or after))

        if p["_limit"] < 0:
            raise HttpError(400, "invalid", "runtime error: limit: n must be non-negative")
        records = sorted(filter(keep, records), key=lambda rec: (rec["_time"], rec.get("entry") or ""),
                         reverse=True)[:p["_limit"]]
    else:
        records.sort(key=lambda rec: rec["_time"], reverse=True)
    return _keep_table(rows, records, types, RECORD_KEEP)


def _revisions_table(rows: list[Row]) -> list[Table]:
    records, types = _pivot_rows(rows)
    records.sort(key=lambda rec: rec.get("revision") or 0)
    return _keep_table(rows, records, types, ["_time", "entry", "revision", "at", "by", "reason", "changes", "status"])


ALERT_KEEP = ["_time", "key", "kind", "village", "severity", "device", "message", "value", "threshold",
              "raised_at", "cleared_at", "acked_at", "acked_by", "mqtt_version", "webhook_version"]


def _alerts_table(template: str, rows: list[Row], p: dict[str, Any]) -> list[Table]:
    """The two alert templates: filters, pivot, the active or undelivered filter, order and limit."""
    if template in ("alerts", "alerts_key"):
        rows = [r for r in rows if r.tags.get("village") and (r.tags.get("village") or "").startswith(p["_region"])
                and (template == "alerts" or r.tags.get("key") == p["_key"])]
    records, types = _pivot_rows(rows)
    if template != "alerts_undelivered":
        if p["_byActive"]:
            records = [rec for rec in records if ("cleared_at" in rec) != p["_active"]]
        # sort(columns: ["raised_at", "_time"], desc: true): nulls sort first in Flux, then descending
        records.sort(key=lambda rec: (rec.get("raised_at") is not None, rec.get("raised_at") or 0, rec["_time"]),
                     reverse=True)
    else:
        channel_field = "mqtt_version" if p["_channel"] == "mqtt" else "webhook_version"
        records = [rec for rec in records
                   if rec.get(channel_field, 0) < 1 + ("acked_at" in rec) + ("cleared_at" in rec)]
        records.sort(key=lambda rec: rec["_time"])
    if p["_limit"] < 0:
        raise HttpError(400, "invalid", "runtime error: limit: n must be non-negative")
    records = records[:p["_limit"]]
    if not records:
        return []
    tags = sorted({k for r in rows for k in r.tags})
    fields = sorted({r.field for r in rows})
    cols = [c for c in ["_time", *tags, *fields] if c in ALERT_KEEP]
    return [Table([(c, "dateTime:RFC3339" if c == "_time" else types[c], False) for c in cols],
                  [[rec.get(c) for c in cols] for rec in records])]


@pytest.fixture
def fake() -> Iterator[FakeInflux]:
    """A running fake InfluxDB for one test (a plugin fixture: tests/conftest.py registers it)."""
    f = FakeInflux().start()
    yield f
    f.stop()
