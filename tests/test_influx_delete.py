"""``POST /api/v2/delete`` in the fake as InfluxDB OSS 2.7 answers it (http/delete_handler.go and the
delete predicate docs: ``=`` and AND only), and what the InfluxDB backend sends when a harvest record is
corrected, voided or reviewed (issue 18): the new point written, the old one deleted by its id."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from influxdb_client.client.influxdb_client import InfluxDBClient
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.rest import ApiException

from service import harvest_records as hr
from service.records import SOURCE_STAFF, Revision, YieldRecord, new_record_id
from service.store.influx_records import delete_plan
from service.times import now_ms
from tests.fake_influx import FakeInflux
from tests.store.influx_backends import FAKE_BUCKET, fake_influx_store

ORG = "nongyun-org"
V1, V2 = "211204101203", "211204101204"
TOWN = hr.Actor("town", "editor", "211204101")


@pytest.fixture
def fake() -> Iterator[FakeInflux]:
    f = FakeInflux().start()
    f.create_bucket("farm")
    yield f
    f.stop()


def post_delete(fake: FakeInflux, body: Any, query: str = f"?org={ORG}&bucket=farm",
                token: str | None = None) -> tuple[int, dict[str, Any] | None]:
    req = urllib.request.Request(f"{fake.url}/api/v2/delete{query}", data=json.dumps(body).encode(), method="POST",
                                 headers={"Authorization": f"Token {token or fake.token}",
                                          "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req) as resp:
            return resp.status, None
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def write(fake: FakeInflux, *lines: str) -> None:
    with InfluxDBClient(url=fake.url, token=fake.token, org=ORG) as c:
        c.write_api(write_options=SYNCHRONOUS).write("farm", ORG, "\n".join(lines), "ns")


SPAN = {"start": "1970-01-01T00:00:00Z", "stop": "2100-01-01T00:00:00Z"}


def test_a_delete_removes_only_the_series_its_predicate_names_in_the_range(fake: FakeInflux) -> None:
    write(fake, "yield,entry=a,status=submitted yield_kg=1 1000", "yield,entry=a,status=void yield_kg=1 1000",
          "yield,entry=b,status=submitted yield_kg=2 1000", "yield,entry=a,status=submitted yield_kg=3 5000",
          "other,entry=a v=1 1000")
    status, _ = post_delete(fake, {"start": "1970-01-01T00:00:00.000000001Z", "stop": "1970-01-01T00:00:00.000001Z",
                                   "predicate": '_measurement="yield" AND entry="a" AND "status"="submitted"'})
    assert status == 204
    left = sorted((r.measurement, r.tags.get("entry"), r.tags.get("status"), r.time) for r in fake.points("farm"))
    assert left == [("other", "a", None, 1000), ("yield", "a", "submitted", 5000), ("yield", "a", "void", 1000),
                    ("yield", "b", "submitted", 1000)]
    # no predicate: everything in the range goes
    assert post_delete(fake, SPAN)[0] == 204 and fake.points("farm") == []


@pytest.mark.parametrize(("predicate", "says"), [
    ('entry="a" OR entry="b"', "the logical operator OR is not supported yet at position 10"),
    ('entry!="a"', "not supported"),
    ('entry=~/a/', "invalid predicate"),
    ('_field="yield_kg"', "_field is not supported"),
    ('entry="a" AND', "without an operand"),
])
def test_predicates_outside_the_delete_language_are_400_as_the_server_says(fake: FakeInflux, predicate: str,
                                                                             says: str) -> None:
    status, body = post_delete(fake, {**SPAN, "predicate": predicate})
    assert status == 400 and body is not None and body["code"] == "invalid"
    assert body["message"].startswith("invalid request; error parsing request json: ") and says in body["message"]


def test_the_delete_request_is_checked_like_the_server_does(fake: FakeInflux) -> None:
    assert post_delete(fake, SPAN, token="wrong")[0] == 401
    status, body = post_delete(fake, {})
    assert status == 400 and body is not None and "invalid RFC3339Nano for field start" in body["message"]
    status, body = post_delete(fake, {"start": SPAN["start"]})
    assert status == 400 and body is not None and "field stop" in body["message"]
    assert post_delete(fake, SPAN, query="?bucket=farm")[1] == {"code": "invalid",
                                                                "message": "Please provide either orgID or org"}
    assert post_delete(fake, SPAN, query=f"?org={ORG}")[1] == {"code": "invalid",
                                                               "message": "Please provide either bucketID or bucket"}
    assert post_delete(fake, SPAN, query=f"?org={ORG}&bucket=nope")[0] == 404


def test_the_client_library_deletes_through_the_fake(fake: FakeInflux) -> None:
    write(fake, "yield,entry=a v=1 1000000", "yield,entry=b v=1 1000000")
    with InfluxDBClient(url=fake.url, token=fake.token, org=ORG) as c:
        c.delete_api().delete("1970-01-01T00:00:00Z", "1970-01-01T00:00:01Z", '_measurement="yield" AND entry="a"',
                              bucket="farm", org=ORG)
        with pytest.raises(ApiException) as caught:
            c.delete_api().delete("1970-01-01T00:00:00Z", "1970-01-01T00:00:01Z", 'entry="a" or entry="b"',
                                  bucket="farm", org=ORG)
    assert caught.value.status == 400
    assert [r.tags["entry"] for r in fake.points("farm")] == ["b"]


def _record(ts: int, **kw: Any) -> YieldRecord:
    return YieldRecord("", V1, ts, "corn", 0.2, 1000.0, source=SOURCE_STAFF, id=new_record_id(), entered_by="c",
                       updated=ts, **kw)


def test_the_backend_deletes_the_old_point_by_id_only_when_its_series_changes(fake: FakeInflux) -> None:
    fake.create_bucket(FAKE_BUCKET)
    store = fake_influx_store(fake)
    try:
        now = now_ms()
        rec = _record(now - 60_000)
        store.save_record(rec, Revision(rec.record_id, 1, now, "c", "", {}, "submitted"))
        assert fake.deletes == []
        hr.void(store, rec.record_id, "重复", TOWN, now)  # status is a tag: a new series, the old point deleted
        [(start, stop, predicate)] = fake.deletes
        assert predicate == f'_measurement="yield" AND entry="{rec.record_id}" AND status="submitted"'
        assert start == rec.ts * 1_000_000 and stop == rec.ts * 1_000_000 + 999_000
        [point] = {(r.tags["status"], r.time) for r in fake.points(FAKE_BUCKET, "yield")}
        assert point == ("void", rec.ts * 1_000_000)
        assert len({r.time for r in fake.points(FAKE_BUCKET, "yield_revision")}) == 2
    finally:
        store.close()


def test_the_delete_plan_tells_the_old_point_from_the_new() -> None:
    old = _record(1_000_000)
    base = f'_measurement="yield" AND entry="{old.record_id}"'
    assert delete_plan(old, replace(old, yield_kg=5.0)) == (None, False)  # same series and time: replaced
    assert delete_plan(old, replace(old, ts=2_000_000)) == (base, False)
    assert delete_plan(old, replace(old, village=V2)) == (f'{base} AND village="{V1}"', False)
    assert delete_plan(old, replace(old, plot="P-1")) == (base, True)  # nothing tells them apart: delete first
