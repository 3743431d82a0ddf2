"""SqliteStore writes a batch's readings as one JSON document (two statements) instead of a row per
value; both ways must leave the same file: same rows, same ids, same latest values, same dirty
windows, and the same refusals."""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.errors import StoreRejected
from service.records import Batch, Reading
from service.store.sqlite import SqliteStore

TABLES = ("readings", "latest", "rollup_dirty", "metric_ids", "device_ids", "counters")
HOUR = 3_600_000

finite = st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.floats(-50, 50), st.integers(-10**6, 10**6))
odd = st.one_of(st.just(math.inf), st.just(-math.inf), st.just(math.nan), st.none(), st.booleans(), st.just("7.5"))
readings = st.builds(
    Reading,
    device=st.sampled_from(["st-1", "st-2", "gs-3"]),
    village=st.sampled_from(["211204101203", "211204001001"]),
    ts=st.sampled_from([1_790_000_000_000 + k * HOUR // 2 for k in range(4)]),  # repeats: same point twice
    values=st.dictionaries(st.sampled_from(["air_temp", "soil_moisture", "rainfall", "新指标"]),
                           st.one_of(finite, finite, finite, odd), max_size=4),
)
batches = st.lists(st.lists(readings, max_size=12), min_size=1, max_size=3)


def dump(path: Path) -> dict[str, list[tuple[object, ...]]]:
    conn = sqlite3.connect(path)
    try:
        out = {}
        for t in TABLES:
            where = " WHERE name != 'last_commit'" if t == "counters" else ""
            out[t] = [tuple((v, type(v).__name__) for v in row)
                      for row in conn.execute(f"SELECT * FROM {t}{where} ORDER BY 1, 2")]
        return out
    finally:
        conn.close()


def write_all(store: SqliteStore, batches: list[list[Reading]]) -> list[str]:
    outcomes = []
    for readings_ in batches:
        try:
            store.write(Batch(readings=list(readings_), messages=len(readings_), worker="w"))
            outcomes.append("ok")
        except StoreRejected as exc:
            outcomes.append(f"rejected: {exc}")
    return outcomes


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=batches)
def test_bulk_and_row_by_row_leave_the_same_file(tmp_path_factory: pytest.TempPathFactory,
                                                 batches: list[list[Reading]]) -> None:
    tmp = tmp_path_factory.mktemp("bulk")
    bulk, rows = SqliteStore(tmp / "bulk.sqlite3"), SqliteStore(tmp / "rows.sqlite3")
    rows.bulk_readings = False
    try:
        assert write_all(bulk, batches) == write_all(rows, batches)
        assert dump(tmp / "bulk.sqlite3") == dump(tmp / "rows.sqlite3")
    finally:
        bulk.close()
        rows.close()


def test_a_point_given_twice_in_a_batch_keeps_its_last_copy_and_latest_its_newest(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.sqlite3")
    t0 = 1_790_000_000_000
    store.write(Batch(readings=[
        Reading("st-1", "211204101203", t0 + 1000, {"air_temp": 3.0}),
        Reading("st-1", "211204101203", t0, {"air_temp": 1.0, "rainfall": 0.5}),
        Reading("st-1", "211204101203", t0 + 1000, {"air_temp": 4.0}),  # replaces 3.0
    ]))
    conn = sqlite3.connect(tmp_path / "s.sqlite3")
    got = conn.execute("SELECT m.name, r.ts, r.value FROM readings r JOIN metric_ids m ON m.id = r.metric "
                       "ORDER BY 1, 2").fetchall()
    latest = conn.execute("SELECT m.name, l.ts, l.value FROM latest l JOIN metric_ids m ON m.id = l.metric "
                          "ORDER BY 1").fetchall()
    conn.close()
    store.close()
    assert got == [("air_temp", t0, 1.0), ("air_temp", t0 + 1000, 4.0), ("rainfall", t0, 0.5)]
    assert latest == [("air_temp", t0 + 1000, 4.0), ("rainfall", t0, 0.5)]


def test_a_nan_is_refused_whole_and_an_infinity_stored_as_before(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.sqlite3")
    good = Reading("st-1", "211204101203", 1_790_000_000_000, {"air_temp": 1.0})
    with pytest.raises(StoreRejected, match="NOT NULL"):
        store.write(Batch(readings=[good, Reading("st-1", "211204101203", 1_790_000_001_000, {"x": math.nan})]))
    store.write(Batch(readings=[Reading("st-2", "211204101203", 1_790_000_000_000, {"x": math.inf})]))
    conn = sqlite3.connect(tmp_path / "s.sqlite3")
    assert conn.execute("SELECT value FROM readings").fetchall() == [(math.inf,)]  # the refused batch left nothing
    conn.close()
    store.close()
