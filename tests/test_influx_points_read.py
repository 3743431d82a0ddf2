"""What the InfluxDB backend costs a real server: points storage hands over, on the fake's planner model.

Latest values (every ``/devices``, ``/regions/{code}`` and ``/alerts`` call, and the station-health
job every minute) and the ingest counters (every ``/metrics`` scrape, ``/health``) must read one
point per series, however long the history: O(devices × metrics), not O(history).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from service.records import Batch, Reading
from service.store.base import InRegion
from service.store.influx import InfluxStore
from tests.fake_influx import FakeInflux
from tests.store.influx_backends import fake_influx_store

T0 = 1_780_000_000_000 // 3_600_000 * 3_600_000
MIN10 = 600_000
STATIONS = [(f"st-{i}", f"211204101{200 + i:03d}") for i in range(6)]
METRICS = ("soil_moisture", "air_temp", "battery")
DISTRICT = InRegion("district", "211204")


@pytest.fixture
def fake() -> Iterator[FakeInflux]:
    server = FakeInflux().start()
    yield server
    server.stop()


@pytest.fixture
def store(fake: FakeInflux) -> Iterator[InfluxStore]:
    s = fake_influx_store(fake)
    yield s
    s.close()


def _write_days(store: InfluxStore, days: int, start: int, worker: str = "ingest-1") -> None:
    ts = range(start, start + days * 86_400_000, MIN10)
    readings = [Reading(dev, village, t, {m: 1.0 + i for i, m in enumerate(METRICS)})
                for t in ts for dev, village in STATIONS]
    for i in range(0, len(readings), 5000):
        store.write(Batch(readings=readings[i:i + 5000], messages=len(readings[i:i + 5000]), worker=worker))


def _read(fake: FakeInflux, call: object) -> int:
    fake.queries.clear()
    assert callable(call)
    call()
    return sum(q.points_read for q in fake.queries)


def test_latest_values_and_counters_read_one_point_per_series_whatever_the_history(
        fake: FakeInflux, store: InfluxStore) -> None:
    _write_days(store, 2, T0)
    now = T0 + 2 * 86_400_000
    short = _read(fake, lambda: store.latest(DISTRICT, now - 366 * 86_400_000))
    counters_short = _read(fake, store.counters)
    _write_days(store, 18, T0 - 18 * 86_400_000, worker="ingest-2")  # ten times the history
    long = _read(fake, lambda: store.latest(DISTRICT, now - 366 * 86_400_000))
    counters_long = _read(fake, store.counters)
    series = len(STATIONS) * len(METRICS)
    assert short == long == series  # last() per series, in storage
    assert counters_short == 2  # received, accepted of one worker
    assert counters_long == 4  # and of the second: still one point each, after 300 commits


def test_a_township_filter_reads_only_that_townships_series(fake: FakeInflux, store: InfluxStore) -> None:
    _write_days(store, 1, T0)
    other = [Reading("st-x", "211204102201", T0 + i * MIN10, {"air_temp": 2.0}) for i in range(144)]
    store.write(Batch(readings=other))
    assert _read(fake, lambda: store.latest(InRegion("township", "211204102"), T0)) == 1
    assert _read(fake, lambda: store.latest(InRegion("township", "211204101"), T0)) == len(STATIONS) * len(METRICS)
