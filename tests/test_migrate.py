"""`nongyun migrate`: the embedded store's points copied into InfluxDB (the fake), twice, same answer."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

from click.testing import CliRunner

from service.cli import main
from service.records import Batch, Reading, StatusChange, YieldRecord
from service.store.base import InRegion, ReadingsQuery, YieldsQuery
from service.store.sqlite import SqliteStore
from service.times import parse_rfc3339, year_bounds
from tests.store.influx_backends import fake_store

TZ = ZoneInfo("Asia/Shanghai")
T0 = parse_rfc3339("2026-05-01T08:00:00+08:00")
ALL = InRegion("district", "211204")


def test_export_then_write_twice_copies_every_point_once(tmp_path: Path) -> None:
    source = SqliteStore(tmp_path / "src.sqlite3")
    source.write(Batch(readings=[Reading("st-a", "211204101203", T0 + i * 600_000, {"soil_moisture": float(i),
                                                                                  "air_temp": 1.0})
                                 for i in range(50)],
                       yields=[YieldRecord("gs-1", "211204101200", T0, "corn", 2.0, 17_000.0, "p1")],
                       statuses=[StatusChange("st-a", T0, True, "211204101203")]))
    parts = list(source.export_batches(size=7))
    assert parts[-1][1] == parts[-1][2] == 51  # 50 readings + 1 yield, counted for the progress bar
    count = ReadingsQuery("soil_moisture", T0 - 1, T0 + 86_400_000, 86_400_000, "count", ALL, "district", TZ)
    with fake_store(tmp_path) as target:
        for _ in range(2):  # idempotent: running it again changes nothing
            for part, _, _ in source.export_batches(size=7):
                target.write(part)
        assert target.readings(count) == source.readings(count)
        start, end = year_bounds(2026, TZ)
        q = YieldsQuery(ALL, start, end, "district", TZ)
        assert target.yields(q) == source.yields(q)
    source.close()


def test_migrate_refuses_without_an_influxdb_target(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["migrate"], env={"NONGYUN_DATA_DIR": str(tmp_path), "NONGYUN_STORE": "sqlite"})
    assert result.exit_code != 0
    assert "NONGYUN_STORE=influxdb" in result.output


def test_migrate_reads_its_source_read_only_in_the_configured_zone_and_copies_alerts(tmp_path: Path) -> None:
    import hashlib
    import sqlite3

    from service.store.base import Alert
    from tests.fake_influx import FakeInflux
    from tests.store.influx_backends import FAKE_BUCKET, fake_influx_store

    data = tmp_path / "data"
    source = SqliteStore(data / "nongyun.sqlite3", "Asia/Shanghai")
    source.write(Batch(readings=[Reading("st-a", "211204101203", T0 + i * 600_000, {"air_temp": 1.0})
                                 for i in range(10)]))
    source.refresh_rollups(10_000)
    opened = source.open_alert(Alert("drought:211204101203", "drought", "warning", "211204101203", None, "dry", T0))
    assert opened is not None
    source.ack_alert(opened.id, "admin", T0 + 1)
    source.open_alert(Alert("frost:211204101203", "frost", "critical", "211204101203", None, "cold", T0 + 5))
    source.clear_alert("frost:211204101203", T0 + 9)
    with sqlite3.connect(data / "nongyun.sqlite3") as conn:  # no -wal: the file alone says what is stored
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    source.close()
    digest = hashlib.sha256((data / "nongyun.sqlite3").read_bytes()).hexdigest()
    (data / "nongyun.sqlite3").chmod(0o444)  # read-only: opening it for writing would fail
    fake = FakeInflux().start()
    try:
        env = {"NONGYUN_DATA_DIR": str(data), "NONGYUN_STORE": "influxdb", "NONGYUN_TZ": "UTC",
               "INFLUXDB_V2_URL": fake.url, "INFLUXDB_V2_TOKEN": fake.token, "INFLUXDB_V2_ORG": next(iter(fake.orgs)),
               "NONGYUN_INFLUXDB_BUCKET": FAKE_BUCKET}
        first = CliRunner().invoke(main, ["migrate"], env=env)
        assert first.exit_code == 0, first.output
        assert "copied 10 records and 2 alerts" in first.output
        again = CliRunner().invoke(main, ["migrate"], env=env)
        assert again.exit_code == 0 and "and 0 alerts" in again.output, again.output
        target = fake_influx_store(fake)
        alerts = {a.key: a for a in target.list_alerts(ALL, None, 100)}
        target.close()
    finally:
        fake.stop()
    assert hashlib.sha256((data / "nongyun.sqlite3").read_bytes()).hexdigest() == digest  # daily rollups untouched
    assert set(alerts) == {"drought:211204101203", "frost:211204101203"}
    assert alerts["drought:211204101203"].acked_by == "admin" and alerts["drought:211204101203"].cleared_at is None
    assert alerts["frost:211204101203"].cleared_at == T0 + 9
