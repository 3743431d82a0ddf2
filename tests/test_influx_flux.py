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
from service.store.base import AGGS, ReadingsQuery, YieldsQuery
from service.store.influx import InfluxStore
from tests.fake_influx import FakeInflux
from tests.store.influx_backends import fake_influx_store

TZ = ZoneInfo("Asia/Shanghai")
DISTRICT = (211204000000, 211204999999)
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
    for agg in AGGS:
        store.readings(ReadingsQuery("air_temp", T0, T0 + 1, 60_000, agg, DISTRICT, "township", TZ))
        assert fake.queries[-1].text == flux.TEMPLATES[f"readings_{agg}"]
    calls: dict[str, Callable[[], object]] = {
        "yield_sums": lambda: store.yields(YieldsQuery(DISTRICT, T0, T0 + 1, "village", TZ)),
        "yield_records": lambda: store.yield_records(DISTRICT, T0, T0 + 1),
        "latest_status": lambda: store.latest(DISTRICT, T0),
        "rejections": lambda: store.rejections(),
        "counters": lambda: store.counters(),
    }
    for name, call in calls.items():
        call()
        assert fake.queries[-1].text == flux.TEMPLATES[name], name


def test_templates_take_no_format_fields_except_the_aggregate() -> None:
    # Only readings' aggregate function name is chosen in code, from a closed set.
    for name, text in flux.TEMPLATES.items():
        assert "{" not in text.replace("{fn}", ""), name
        assert "range(start: _start, stop: _stop)" in text, name
        assert "from(bucket: _bucket)" in text, name
    assert set(flux.READINGS) == set(AGGS)
    assert set(flux.ROLLUP_READINGS) == set(AGGS)
    # the downsampling writes only into the hourly bucket, named by a parameter
    assert flux.ROLLUP_HOURS.count("to(bucket: _rollupBucket,") == 1
    assert sum("to(" in text for text in flux.TEMPLATES.values()) == 1


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
