"""The fake InfluxDB answers as the real server does: checked against the recorded samples in
../shared/fixtures/influxdb/ (skipped where that folder is absent) and against the client's parser.
A test that passes only because the fake is lax is worthless, so the refusals are tested too."""

from __future__ import annotations

import gzip
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from influxdb_client.client.influxdb_client import InfluxDBClient
from influxdb_client.rest import ApiException

from service.store import flux
from tests.fake_influx import FAULT_BODIES, HEALTH_BODY, FakeInflux, Table, encode_results, go_float, rfc3339nano

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "influxdb"
ORG = "nongyun-org"


def fixture(name: str) -> Any:
    """A sample by file name, from whichever folder (write/, query/, misc/) holds it."""
    path = next(FIXTURES.glob(f"*/{name}"), FIXTURES / name)
    if not path.exists():
        pytest.skip(f"fixture {path} not available")
    return json.loads(path.read_text()) if name.endswith(".json") else path.read_bytes().decode()


@pytest.fixture
def fake() -> Iterator[FakeInflux]:
    f = FakeInflux().start()
    f.create_bucket("farm")
    yield f
    f.stop()


@pytest.fixture
def client(fake: FakeInflux) -> Iterator[Any]:
    with InfluxDBClient(url=fake.url, token=fake.token, org=ORG) as c:
        yield c


def http(fake: FakeInflux, method: str, path: str, body: bytes | None = None, token: str | None = "default",
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    h = dict(headers or {})
    if token is not None:
        h["Authorization"] = f"Token {fake.token if token == 'default' else token}"
    req = urllib.request.Request(fake.url + path, data=body, method=method, headers=h)
    try:
        with urllib.request.urlopen(req) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def write(fake: FakeInflux, body: str | bytes, bucket: str = "farm", precision: str = "ns",
          **kw: Any) -> tuple[int, dict[str, str], bytes]:
    data = body.encode() if isinstance(body, str) else body
    return http(fake, "POST", f"/api/v2/write?org={ORG}&bucket={bucket}&precision={precision}", data, **kw)


def error(body: bytes) -> tuple[str, str]:
    doc = json.loads(body)
    return doc["code"], doc["message"]


def fixture_error(name: str) -> tuple[int, tuple[str, str]]:
    doc = fixture(name)
    return doc["status"], error(doc["body"].encode())


# -- writes ------------------------------------------------------------------------------------

def test_a_malformed_body_is_refused_whole(fake: FakeInflux) -> None:
    status, headers, body = write(fake, "m,t=a v=1 1\nbad line\nm v=2 2")
    assert status == 400
    assert error(body) == ("invalid", "unable to parse 'bad line': invalid field format")
    assert headers["X-Platform-Error-Code"] == "invalid"
    assert fake.points("farm") == []  # the good lines were not stored either


def test_write_errors_match_the_server_samples(fake: FakeInflux) -> None:
    cases = {
        "write-400-unable-to-parse.json": write(fake, "invalid"),
        "write-400-empty-body.json": write(fake, ""),
        "write-400-invalid-precision.json": write(fake, "m v=1", precision="xs"),
        "write-401-unauthorized.json": write(fake, "m v=1", token="nope"),
        "write-404-missing-bucket-param.json": http(fake, "POST", f"/api/v2/write?org={ORG}", b"m v=1"),
    }
    for name, (status, _, body) in cases.items():
        assert (status, error(body)) == fixture_error(name), name
    status, _, body = write(fake, "m v=1", bucket="farm-data")
    assert (status, error(body)) == fixture_error("write-404-bucket-not-found-by-name.json")
    assert write(fake, "m v=1", token=None)[0] == 401


def test_field_type_conflict_is_a_partial_write(fake: FakeInflux) -> None:
    assert write(fake, "query_types NS=1.5 1")[0] == 204
    status, _, body = write(fake, "query_types NS=2i 2\nquery_types other=1 3")
    assert (status, error(body)) == fixture_error("write-422-field-type-conflict.json")
    assert [(r.field, r.value) for r in fake.points("farm")] == [("NS", 1.5), ("other", 1.0)]


def test_size_limit_is_measured_after_gzip(fake: FakeInflux) -> None:
    fake.max_body_bytes = 1000
    big = "\n".join(f"m v={i} {i}" for i in range(200))
    packed = gzip.compress(big.encode())
    assert len(packed) < 1000 < len(big)
    status, _, body = write(fake, packed, headers={"Content-Encoding": "gzip"})
    assert (status, error(body)) == fixture_error("write-413-too-large.json")
    assert write(fake, gzip.compress(b"m v=1 1"), headers={"Content-Encoding": "gzip"})[0] == 204


def test_same_series_and_time_merge_field_by_field(fake: FakeInflux) -> None:
    assert write(fake, "m,t=a x=1,y=2 5\nm,t=a y=3 5")[0] == 204
    assert sorted((r.field, r.value) for r in fake.points("farm")) == [("x", 1.0), ("y", 3.0)]


@pytest.mark.parametrize("status", sorted(FAULT_BODIES))
def test_fault_switch_bodies_are_the_recorded_ones(fake: FakeInflux, status: int) -> None:
    names = {400: "write-400-unable-to-parse.json", 401: "write-401-unauthorized.json",
             413: "write-413-too-large.json", 422: "write-422-field-type-conflict.json",
             429: "write-429-too-many-requests-cloud.json", 500: "write-500-internal.json",
             503: "write-503-unavailable.json"}
    doc = fixture(names[status])
    fake.fail_writes(status, retry_after=doc["headers"].get("Retry-After"))
    got_status, headers, body = write(fake, "m v=1 1")
    assert (got_status, error(body)) == (doc["status"], error(doc["body"].encode()))
    assert headers.get("Retry-After") == doc["headers"].get("Retry-After")
    assert write(fake, "m v=1 1")[0] == 204  # one fault, then the server is back


# -- queries -----------------------------------------------------------------------------------

def test_a_query_without_range_is_refused(fake: FakeInflux, client: Any) -> None:
    doc = fixture("query-400-unbounded-read-no-range.json")
    with pytest.raises(ApiException) as info:
        client.query_api().query(doc["request_flux"])
    assert info.value.status == 400
    assert json.loads(info.value.body) == json.loads(doc["body"])


def test_query_refusals(fake: FakeInflux, client: Any) -> None:
    api = client.query_api()
    with pytest.raises(ApiException) as info:
        api.query('from(bucket: "nope") |> range(start: -1h)')
    assert info.value.status == 404
    assert error(info.value.body)[1] == 'failed to initialize execute state: could not find bucket "nope"'
    with pytest.raises(ApiException) as info:  # a template with a parameter missing
        api.query(flux.TEMPLATES["counters"], params={"_bucket": "farm"})
    assert info.value.status == 400 and "undefined identifier" in error(info.value.body)[1]
    with pytest.raises(ApiException) as info:  # a template with a parameter of the wrong type
        api.query(flux.TEMPLATES["counters"], params={"_bucket": "farm", "_start": "-1h", "_stop": "now",
                                                      "_byWorker": False, "_worker": ""})
    assert info.value.status == 400 and "expected time" in error(info.value.body)[1]
    with pytest.raises(ApiException) as info:  # any query the fake cannot evaluate faithfully
        api.query('from(bucket: "farm") |> range(start: -1h) |> count()')
    assert info.value.status == 400 and "not one of" in error(info.value.body)[1]
    with InfluxDBClient(url=fake.url, token="wrong", org=ORG) as bad, pytest.raises(ApiException) as info:
        bad.query_api().query('from(bucket: "farm") |> range(start: -1h)')
    assert (info.value.status, error(info.value.body)) == (401, ("unauthorized", "unauthorized access"))


def test_csv_matches_the_recorded_layout() -> None:
    mean = encode_results([("mean", [
        Table([("_start", "dateTime:RFC3339", True), ("_stop", "dateTime:RFC3339", True),
               ("_time", "dateTime:RFC3339", False), ("_value", "double", False), ("_field", "string", True),
               ("_measurement", "string", True), ("village", "string", True)],
              [[1717200000 * 10**9, 1717210800 * 10**9, 1717203600 * 10**9, 31.5, "moisture", "soil", "Nam Hong"],
               [1717200000 * 10**9, 1717210800 * 10**9, 1717210800 * 10**9, 29.75, "moisture", "soil", "Nam Hong"]]),
        Table([("_start", "dateTime:RFC3339", True), ("_stop", "dateTime:RFC3339", True),
               ("_time", "dateTime:RFC3339", False), ("_value", "double", False), ("_field", "string", True),
               ("_measurement", "string", True), ("village", "string", True)],
              [[1717200000 * 10**9, 1717210800 * 10**9, 1717203600 * 10**9, 40.125, "moisture", "soil", "Xuan Canh"]]),
    ])])
    assert mean == fixture("synthetic-aggregateWindow-hourly-mean-createEmpty-false-crlf.csv")
    sums = encode_results([("_result", [Table([("township", "string", True), ("_value", "double", False)], [[t, v]])
                                        for t, v in (("Dong Anh", 1532.5), ("Gia Lam", 987.25), ("Soc Son", 2210.0))])])
    assert sums == fixture("synthetic-grouped-sum-by-township-crlf.csv")
    assert encode_results([("_result", [])]) == fixture("derived-empty-result-crlf.csv")


def test_values_are_written_as_flux_writes_them() -> None:
    assert rfc3339nano(1675143684001000000) == "2023-01-31T05:41:24.001Z"
    assert rfc3339nano(1582064048135814545) == "2020-02-18T22:14:08.135814545Z"
    assert rfc3339nano(0) == "1970-01-01T00:00:00Z"
    assert [go_float(v) for v in (2.0, 5713765717.333333, 1e21, 1e-7, -0.5, 64466.666666666664)] == [
        "2", "5713765717.333333", "1000000000000000000000", "0.0000001", "-0.5", "64466.666666666664"]


def test_the_client_parses_what_the_fake_answers(fake: FakeInflux, client: Any) -> None:
    lines = "\n".join(f'ingest_counter,worker=w{i % 2}{",reason=bad_json" if i > 1 else ""} '
                      f"received={i}.5 {i}" for i in range(4))
    assert write(fake, lines)[0] == 204
    tables = client.query_api().query(flux.TEMPLATES["counters"], params={
        "_bucket": "farm", "_start": flux.EPOCH, "_stop": flux.FAR_FUTURE, "_byWorker": False, "_worker": ""})
    rows = sorted((r.values.get("worker"), r.values.get("reason") or "-", r.get_value())
                  for t in tables for r in t.records)
    assert rows == [("w0", "-", 0.5), ("w0", "bad_json", 2.5), ("w1", "-", 1.5), ("w1", "bad_json", 3.5)]
    csv = fake.queries[-1].csv
    assert "\r\n\r\n#datatype" in csv  # the schema changes between the tables with and without reason


# -- health and buckets ------------------------------------------------------------------------

def test_health_ping_and_bucket_bootstrap_calls(fake: FakeInflux, client: Any) -> None:
    assert http(fake, "GET", "/health", token=None)[2].decode() == HEALTH_BODY == fixture("health-200.json")["body"]
    status, headers, _ = http(fake, "GET", "/ping", token=None)
    assert status == 204 and headers["X-Influxdb-Version"] == "v2.7.10"
    assert client.ping() is True and client.version() == "v2.7.10"
    api = client.buckets_api()
    assert api.find_bucket_by_name("new") is None
    created = api.create_bucket(bucket_name="new", org=ORG)
    assert created.name == "new" and "new" in fake.buckets
    with pytest.raises(ApiException) as info:
        api.create_bucket(bucket_name="new", org=ORG)
    assert (info.value.status, error(info.value.body)) == (422, ("conflict", "bucket with name new already exists"))
    api.delete_bucket(created)
    assert "new" not in fake.buckets
