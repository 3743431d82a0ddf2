"""Every Flux query is a fixed template; caller values travel only as ``params``.

A metric, crop, device or reason holding a quote, a parenthesis, ``|>``, a newline or Flux keywords
must leave the query text byte-for-byte the template, appear among the params, and still match the
stored data exactly (the value is data, never code).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from service.records import Batch, Reading, Rejection, YieldRecord
from service.store import flux, lineproto
from service.store.base import AGGS, InRegion, ReadingsQuery, YieldsQuery
from service.store.influx import InfluxStore
from tests.fake_influx import FakeInflux
from tests.flux_pushdown import chains as pushdown_chains
from tests.flux_pushdown import pushdown
from tests.store.influx_backends import fake_influx_store

TZ = ZoneInfo("Asia/Shanghai")
DISTRICT = InRegion("district", "211204")
ZHANGXIANG = InRegion("township", "211204101")
V1 = "211204101203"
T0 = 1_777_593_600_000
EVIL = [
    'corn") |> drop(columns: ["_value"]) //',
    'x" or r._measurement != "',
    "a)b",
    "|> yield(name: \"pwn\")",
    "line\nbreak",
    'import "sql"',
    "if exists r.x then true else false",
    "option now = () => 2000-01-01T00:00:00Z",
    "100%, =sure \\",
]


@pytest.fixture
def store(fake: FakeInflux) -> Iterator[InfluxStore]:
    s = fake_influx_store(fake)
    yield s
    s.close()


def assert_parameterized(fake: FakeInflux, value: str) -> None:
    assert fake.queries, "no query reached the server"
    templates = set(flux.TEMPLATES.values())
    for q in fake.queries:
        assert q.text in templates, f"query text is not a template:\n{q.text}"
        assert value not in q.text
    sent: list[Any] = [v for q in fake.queries for v in q.params.values()]
    assert value in sent or lineproto.enc(value) in sent


@pytest.mark.parametrize("evil", EVIL)
def test_caller_values_never_change_the_query_text(fake: FakeInflux, store: InfluxStore, evil: str) -> None:
    harvest = T0 + 3_600_000
    store.write(Batch(
        readings=[Reading("st-a", V1, T0, {evil: 1.5})],
        yields=[YieldRecord(evil, V1, harvest, evil, 2.0, 1500.0, plot=evil, source=evil)],
        rejections=[Rejection(T0, evil, evil, evil, evil, evil)],
        messages=1, worker=evil))
    fake.queries.clear()

    # The value works as data: each query finds exactly what was written with it.
    series = store.readings(ReadingsQuery(evil, T0, T0 + 60_000, 60_000, "mean", DISTRICT, "device", TZ))
    assert series == {"st-a": [(T0, 1.5)]}
    totals = store.yields(YieldsQuery(DISTRICT, T0, T0 + 86_400_000, "crop", TZ, crop=evil))
    assert [(t.key, t.records, t.yield_kg) for t in totals] == [(evil, 1, 1500.0)]
    by_device = store.yields(YieldsQuery(DISTRICT, T0, T0 + 86_400_000, "device", TZ))
    assert [t.key for t in by_device] == [evil]
    [record] = store.yield_records(DISTRICT, T0, T0 + 86_400_000)
    assert (record.device, record.crop, record.plot, record.source) == (evil, evil, evil, evil)
    [rejection] = store.rejections(reason=evil, device=evil)
    assert rejection == Rejection(T0, evil, evil, evil, evil, evil)
    assert store.rejections(reason=evil + "x") == []
    assert store.counters().rejected == {evil: 1}
    assert set(store.latest(DISTRICT, T0 - 1)) == {"st-a", evil}
    assert_parameterized(fake, evil)


def test_each_query_sends_its_template_verbatim(fake: FakeInflux, store: InfluxStore) -> None:
    parts = {"mean": ["sum", "count"], "sum": ["sum"], "count": ["count"], "min": ["min"], "max": ["max"]}
    for agg in AGGS:
        fake.queries.clear()
        store.readings(ReadingsQuery("air_temp", T0, T0 + 1, 60_000, agg, ZHANGXIANG, "village", TZ))
        assert [q.text for q in fake.queries] == [flux.TEMPLATES[f"readings_{p}@township"] for p in parts[agg]]
    calls: dict[str, Callable[[], object]] = {
        "yield_sums@district": lambda: store.yields(YieldsQuery(DISTRICT, T0, T0 + 1, "village", TZ)),
        "yield_sums_crop@township": lambda: store.yields(YieldsQuery(ZHANGXIANG, T0, T0 + 1, "village", TZ, "corn")),
        "yield_records@village": lambda: store.yield_records(InRegion("village", V1), T0, T0 + 1),
        "latest_status": lambda: store.latest(DISTRICT, T0),
        "rejections_all": lambda: store.rejections(),
        "rejections_reason_device": lambda: store.rejections(reason="bad_json", device="st-a"),
        "counters": lambda: store.counters(),
    }
    for name, call in calls.items():
        call()
        assert fake.queries[-1].text == flux.TEMPLATES[name], name


def test_templates_take_no_format_fields() -> None:
    for name, text in flux.TEMPLATES.items():
        assert "{" not in text, name
        assert "range(start: _start, stop: _stop)" in text, name
        assert "from(bucket: _bucket)" in text, name
    assert set(flux.ROLLUP_READINGS) == set(AGGS)
    # the downsampling writes only into the hourly bucket, named by a parameter
    assert flux.ROLLUP_HOURS.count("to(bucket: _rollupBucket,") == 1
    assert sum("to(" in text for text in flux.TEMPLATES.values()) == 1


@pytest.mark.parametrize("name", sorted(flux.TEMPLATES))
def test_every_template_starts_with_what_storage_can_do_itself(name: str) -> None:
    """InfluxDB pushes ``range |> filter(tag comparisons) |> last()/aggregateWindow`` into storage;
    after anything else (a region range, ``not _byX or``, a group, a pivot) it reads raw points."""
    text = flux.TEMPLATES[name]
    chains = pushdown_chains(text)
    assert chains, "no from() chain found"
    for calls in chains:
        assert [c.name for c in calls[:3]] == ["from", "range", "filter"], [c.name for c in calls]
        pd = pushdown(calls)
        assert pd.complete, f"a filter before any other call is not pushable whole:\n{text}"
        assert not any(c[0] == "cmp" and c[2] in (">=", "<=", "<", ">") and c[1] != "_value"
                       for c in pd.conjuncts)
        if "telemetry" in text and "pivot" not in text:  # raw telemetry is never handed over point by point
            assert pd.then in ("last", "window"), f"{name}: telemetry read without a pushed aggregate"
        if "@" in name:  # a region template filters on exactly its tier's tag
            tier = name.rsplit("@", 1)[1]
            assert ["cmp", tier, "==", "_region"] in pd.conjuncts, name


def test_old_shapes_are_recognised_as_unpushable() -> None:
    """The model behind the test above: the shapes the templates had are caught."""
    ranged = ("from(bucket: _bucket)\n  |> range(start: _start, stop: _stop)\n"
              "  |> filter(fn: (r) => r._measurement == \"telemetry\")\n"
              "  |> filter(fn: (r) => r.village >= _vlo and r.village <= _vhi)\n  |> last()\n")
    optional = ("from(bucket: _bucket)\n  |> range(start: _start, stop: _stop)\n"
                "  |> filter(fn: (r) => r._measurement == \"ingest_counter\")\n"
                "  |> filter(fn: (r) => not _byWorker or r.worker == _worker)\n  |> last()\n")
    grouped = ("from(bucket: _bucket)\n  |> range(start: _start, stop: _stop)\n"
               "  |> filter(fn: (r) => r._measurement == \"telemetry\" and r.township == _region)\n"
               "  |> group(columns: [_by])\n  |> aggregateWindow(every: _every, fn: mean)\n")
    for text in (ranged, optional):
        [calls] = pushdown_chains(text)
        assert not pushdown(calls).complete and pushdown(calls).then == ""
    [calls] = pushdown_chains(grouped)
    assert pushdown(calls).then == ""


def test_tier_keys_are_the_tag_strings(fake: FakeInflux, store: InfluxStore) -> None:
    store.write(Batch(readings=[Reading("st-a", V1, T0, {"air_temp": 3.0})]))
    for tier, key in (("district", "211204"), ("township", "211204101"), ("village", V1)):
        q = ReadingsQuery("air_temp", T0, T0 + 60_000, 60_000, "max", DISTRICT, tier, TZ)  # type: ignore[arg-type]
        assert store.readings(q) == {key: [(T0, 3.0)]}
        assert fake.queries[-1].params["_by"] == tier


@pytest.mark.parametrize("evil", EVIL)
def test_alert_keys_and_texts_are_data_too(fake: FakeInflux, store: InfluxStore, evil: str) -> None:
    from service.store.base import Alert

    store.write(Batch(readings=[Reading("st-a", V1, T0, {"air_temp": 1.0})]))
    fake.queries.clear()
    raised = store.open_alert(Alert(evil, evil, "warning", V1, evil, evil, T0, value=1.0, threshold=2.0))
    assert raised is not None
    assert store.open_alert(Alert(evil, "other", "warning", V1, None, "x", T0)) is None
    acked = store.ack_alert(raised.id, evil, T0 + 1)
    assert (acked.key, acked.kind, acked.device, acked.message, acked.acked_by) == (evil, evil, evil, evil, evil)
    assert store.list_alerts(DISTRICT, active=True) == [acked]
    assert [a.id for a in store.undelivered_alerts("mqtt")] == [raised.id]
    cleared = store.clear_alert(evil, T0 + 2)
    assert cleared is not None and cleared.version == 3
    assert store.clear_alert(evil + "x", T0 + 3) is None
    assert_parameterized(fake, evil)
