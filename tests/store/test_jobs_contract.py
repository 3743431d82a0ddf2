"""The JobsStore contract (issue 5): rollups and alerts, the same test functions for every backend.

Written against the embedded store's behaviour (service/store/sqlite_rollups.py, sqlite_alerts.py);
every backend of the ``store`` fixture must pass them. Values are multiples of 1/8 where means are
compared, so a mean merged from hourly partials equals the one computed from raw points bit for bit.
"""

from __future__ import annotations

import random
from zoneinfo import ZoneInfo

import pytest

from service.context import Context
from service.errors import NotFound
from service.jobs import health
from service.records import Batch, Reading
from service.store.base import Alert, InRegion, JobsStore, ReadingsQuery, Store, as_jobs_store
from service.times import parse_rfc3339
from tests.jobs_support import dyadic_batch, refresh_all

TZ = ZoneInfo("Asia/Shanghai")
HOUR = 3_600_000
DAY = 24 * HOUR
MIN10 = 600_000
DISTRICT = InRegion("district", "211204")
ZHANGXIANG = InRegion("township", "211204101")
V1, V2, V3 = "211204101203", "211204101204", "211204102200"
DAY0 = parse_rfc3339("2026-06-01T00:00:00+08:00")  # a local midnight
T0 = parse_rfc3339("2026-06-10T08:00:00+08:00")


def jobs(store: Store) -> JobsStore:
    found = as_jobs_store(store)
    assert found is not None, f"the {store.name} store does not implement JobsStore"
    return found


def q(start: int, end: int, every: int = HOUR, agg: str = "mean", group_by: str = "township",
      villages: InRegion = DISTRICT, metric: str = "soil_moisture") -> ReadingsQuery:
    return ReadingsQuery(metric, start, end, every, agg, villages, group_by, TZ)  # type: ignore[arg-type]


def alert(key: str = f"drought:{V1}", village: str = V1, raised_at: int = T0, **kw: object) -> Alert:
    fields: dict[str, object] = {"kind": key.split(":")[0], "severity": "warning", "device": None,
                                 "message": "旱情：土壤墒情 \"低\"\n持续", **kw}
    return Alert(key=key, village=village, raised_at=raised_at, **fields)  # type: ignore[arg-type]


# -- rollups ---------------------------------------------------------------------------------------

def test_refresh_with_nothing_written_does_nothing(store: Store) -> None:
    s = jobs(store)
    p = s.refresh_rollups(10)
    assert (p.windows, p.remaining) == (0, 0)


def test_refresh_takes_the_oldest_windows_first_and_at_most_the_limit(store: Store) -> None:
    s = jobs(store)
    s.write(Batch(readings=[Reading("st-a", V1, DAY0 + h * HOUR + 60_000, {"soil_moisture": 8.0}) for h in range(5)]))
    first = s.refresh_rollups(2)
    assert (first.windows, first.remaining) == (2, 3)
    assert (s.refresh_rollups(2).windows, s.refresh_rollups(2).remaining) == (2, 0)
    again = s.refresh_rollups(2)
    assert (again.windows, again.remaining) == (0, 0)  # idempotent: nothing is dirty any more


def test_answers_from_rollups_equal_answers_from_raw_points(store: Store) -> None:
    s = jobs(store)
    s.write(dyadic_batch(random.Random(5), DAY0 - DAY, DAY0 + 2 * DAY))
    cases = [(DAY0 - DAY, DAY0 + 2 * DAY, HOUR), (DAY0 - DAY, DAY0 + 2 * DAY, DAY),
             (DAY0 - DAY + 17 * MIN10, DAY0 + 2 * DAY - 7 * MIN10, DAY),  # unaligned edges
             (DAY0 - DAY + 5 * MIN10, DAY0 + DAY + 50_000, 3 * HOUR)]
    queries = [q(start, end, every, agg, group_by)
               for start, end, every in cases for agg in ("mean", "min", "max", "sum", "count")
               for group_by in ("township", "device")]
    before = [s.readings(x) for x in queries]
    assert all(before), "every query has data"
    assert refresh_all(s) > 0
    for x, expected in zip(queries, before, strict=True):
        assert s.readings(x) == expected, x


def test_mean_is_total_over_count_not_a_mean_of_hourly_means(store: Store) -> None:
    s = jobs(store)
    # hour 1: one sample of 10; hour 2: three samples of 2. A mean of means would say 6, the day 4.
    s.write(Batch(readings=[Reading("st-a", V1, DAY0 + HOUR, {"soil_moisture": 10.0})] +
                  [Reading("st-a", V1, DAY0 + 2 * HOUR + i * MIN10, {"soil_moisture": 2.0}) for i in range(3)]))
    refresh_all(s)
    assert s.readings(q(DAY0, DAY0 + DAY, DAY)) == {"211204101": [(DAY0, 4.0)]}
    assert s.readings(q(DAY0, DAY0 + DAY, DAY, agg="count")) == {"211204101": [(DAY0, 4.0)]}


def test_late_data_fixes_the_rollup_it_touches(store: Store) -> None:
    s = jobs(store)
    s.write(Batch(readings=[Reading("st-a", V1, DAY0 + h * HOUR, {"soil_moisture": 20.0}) for h in range(72)]))
    refresh_all(s)
    query = q(DAY0, DAY0 + 3 * DAY, DAY, group_by="village")
    assert s.readings(query) == {V1: [(DAY0, 20.0), (DAY0 + DAY, 20.0), (DAY0 + 2 * DAY, 20.0)]}
    # a backlog arrives two days late for one hour of the first day: a second station, value 45
    s.write(Batch(readings=[Reading("st-b", V1, DAY0 + 5 * HOUR + 60_000, {"soil_moisture": 45.0})]))
    expected = {V1: [(DAY0, 21.0), (DAY0 + DAY, 20.0), (DAY0 + 2 * DAY, 20.0)]}  # (24·20 + 45) / 25
    assert s.readings(query) == expected  # right at once, before any refresh
    assert refresh_all(s) >= 1
    assert s.readings(query) == expected
    assert s.readings(q(DAY0 + 5 * HOUR, DAY0 + 6 * HOUR, HOUR, agg="max", group_by="village")) == \
        {V1: [(DAY0 + 5 * HOUR, 45.0)]}
    # rewriting a point after its hour was rolled up replaces it there too
    s.write(Batch(readings=[Reading("st-b", V1, DAY0 + 5 * HOUR + 60_000, {"soil_moisture": 20.0})]))
    refresh_all(s)
    assert s.readings(query) == {V1: [(DAY0, 20.0), (DAY0 + DAY, 20.0), (DAY0 + 2 * DAY, 20.0)]}


def test_late_data_scattered_over_many_hours(store: Store) -> None:
    s = jobs(store)
    s.write(Batch(readings=[Reading("st-a", V1, DAY0 + h * HOUR, {"soil_moisture": 20.0}) for h in range(72)]))
    refresh_all(s)
    late = [1, 7, 13, 30, 45, 60, 70]  # more separate dirty hours than a backend may query one by one
    s.write(Batch(readings=[Reading("st-b", V1, DAY0 + h * HOUR + 60_000, {"soil_moisture": 44.0}) for h in late]))
    expected = {V1: [(DAY0, (24 * 20 + 3 * 44) / 27), (DAY0 + DAY, (24 * 20 + 2 * 44) / 26),
                     (DAY0 + 2 * DAY, (24 * 20 + 2 * 44) / 26)]}
    query = q(DAY0, DAY0 + 3 * DAY, DAY, group_by="village")
    assert s.readings(query) == expected
    hourly = s.readings(q(DAY0, DAY0 + 3 * DAY, HOUR, agg="max", group_by="village"))
    assert [t for t, v in hourly[V1] if v == 44.0] == [DAY0 + h * HOUR for h in late]
    refresh_all(s)
    assert s.readings(query) == expected


def test_daily_rollups_follow_local_days(store: Store) -> None:
    s = jobs(store)
    late = parse_rfc3339("2026-06-01T23:30:00+08:00")  # 15:30 UTC, the same UTC day as the next sample
    early = parse_rfc3339("2026-06-02T00:30:00+08:00")
    s.write(Batch(readings=[Reading("st-a", V1, late, {"air_temp": 10.0}),
                            Reading("st-a", V1, early, {"air_temp": 20.0})]))
    refresh_all(s)
    got = s.readings(q(DAY0 - DAY, DAY0 + 3 * DAY, DAY, metric="air_temp"))
    assert got == {"211204101": [(DAY0, 10.0), (DAY0 + DAY, 20.0)]}


def test_region_filter_and_other_metrics_stay_apart_in_rollups(store: Store) -> None:
    s = jobs(store)
    s.write(Batch(readings=[Reading("st-a", V1, DAY0 + 60_000, {"soil_moisture": 10.0, "air_temp": 1.0}),
                            Reading("st-c", V3, DAY0 + 60_000, {"soil_moisture": 30.0})]))
    refresh_all(s)
    assert s.readings(q(DAY0, DAY0 + DAY, HOUR, villages=ZHANGXIANG, group_by="village")) == \
        {V1: [(DAY0, 10.0)]}
    assert s.readings(q(DAY0, DAY0 + DAY, HOUR, group_by="district", metric="air_temp")) == \
        {"211204": [(DAY0, 1.0)]}
    assert s.readings(q(DAY0, DAY0 + DAY, HOUR, metric="co2")) == {}


# -- alerts ----------------------------------------------------------------------------------------

def test_at_most_one_active_alert_per_key(store: Store) -> None:
    s = jobs(store)
    first = s.open_alert(alert(value=10.5, threshold=15.0))
    assert first is not None and first.id > 0 and first.active and first.version == 1
    assert (first.value, first.threshold, first.device) == (10.5, 15.0, None)
    assert s.open_alert(alert(raised_at=T0 + HOUR)) is None  # already active: nothing stored
    other = s.open_alert(alert(f"frost:{V1}"))
    assert other is not None and other.id != first.id
    # the same raised_at: the later alert first
    assert [a.key for a in s.list_alerts(DISTRICT, active=True)] == [f"frost:{V1}", f"drought:{V1}"]
    [stored] = [a for a in s.list_alerts(DISTRICT) if a.key == f"drought:{V1}"]
    assert stored == first


def test_clearing_ends_an_alert_and_the_key_may_be_raised_again(store: Store) -> None:
    s = jobs(store)
    first = s.open_alert(alert())
    assert first is not None
    cleared = s.clear_alert(first.key, T0 + 5 * HOUR)
    assert cleared is not None and cleared.id == first.id
    assert (cleared.active, cleared.cleared_at, cleared.version) == (False, T0 + 5 * HOUR, 2)
    assert s.clear_alert(first.key, T0 + 6 * HOUR) is None  # nothing active any more
    assert s.clear_alert("heat:nowhere", T0) is None
    second = s.open_alert(alert(raised_at=T0 + 9 * HOUR))
    assert second is not None and second.id != first.id and second.version == 1
    assert [a.id for a in s.list_alerts(DISTRICT, active=True)] == [second.id]
    assert [a.id for a in s.list_alerts(DISTRICT, active=False)] == [first.id]
    assert [a.id for a in s.list_alerts(DISTRICT)] == [second.id, first.id]  # newest raised first
    assert s.get_alert(first.id) == s.list_alerts(DISTRICT, active=False)[0]  # one by id, cleared too
    assert s.get_alert(second.id) == s.list_alerts(DISTRICT, active=True)[0]
    assert s.get_alert(second.id + first.id + 1) is None


def test_the_first_acknowledgement_stands(store: Store) -> None:
    s = jobs(store)
    raised = s.open_alert(alert())
    assert raised is not None
    acked = s.ack_alert(raised.id, "王会计", T0 + HOUR)
    assert (acked.acked_by, acked.acked_at, acked.version, acked.active) == ("王会计", T0 + HOUR, 2, True)
    again = s.ack_alert(raised.id, "李主任", T0 + 2 * HOUR)
    assert (again.acked_by, again.acked_at, again.version) == ("王会计", T0 + HOUR, 2)
    cleared = s.clear_alert(raised.key, T0 + 3 * HOUR)
    assert cleared is not None and cleared.version == 3 and cleared.acked_by == "王会计"
    with pytest.raises(NotFound):
        s.ack_alert(raised.id + 987_654_321, "王会计", T0)


def test_list_by_village_range_active_state_and_limit(store: Store) -> None:
    s = jobs(store)
    for i, (village, kind) in enumerate([(V1, "drought"), (V2, "frost"), (V3, "heat"), (V1, "heat")]):
        s.open_alert(alert(f"{kind}:{village}", village, T0 + i * HOUR))
    s.clear_alert(f"frost:{V2}", T0 + 9 * HOUR)
    assert [a.key for a in s.list_alerts(DISTRICT)] == [f"heat:{V1}", f"heat:{V3}", f"frost:{V2}", f"drought:{V1}"]
    assert [a.key for a in s.list_alerts(ZHANGXIANG)] == [f"heat:{V1}", f"frost:{V2}", f"drought:{V1}"]
    assert [a.key for a in s.list_alerts(InRegion("village", V1), active=True)] == [f"heat:{V1}", f"drought:{V1}"]
    assert [a.key for a in s.list_alerts(ZHANGXIANG, active=False)] == [f"frost:{V2}"]
    assert [a.key for a in s.list_alerts(DISTRICT, limit=2)] == [f"heat:{V1}", f"heat:{V3}"]
    assert s.list_alerts(InRegion("township", "211204999")) == []


def test_alert_fields_round_trip(store: Store) -> None:
    s = jobs(store)
    device_alert = alert("battery_low:qh-st-101203-1", V1, T0, device="qh-st-101203-1", severity="critical",
                         kind="battery_low", value=3.25, threshold=3.4, message='电池 "3.25 V", 100%\\ 低\n')
    stored = s.open_alert(device_alert)
    assert stored is not None
    [listed] = s.list_alerts(DISTRICT)
    assert listed == stored
    assert (listed.key, listed.kind, listed.severity, listed.village, listed.device, listed.message,
            listed.raised_at, listed.value, listed.threshold, listed.cleared_at, listed.acked_at) == \
        (device_alert.key, "battery_low", "critical", V1, "qh-st-101203-1", device_alert.message, T0, 3.25, 3.4,
         None, None)


def test_notifiers_see_each_version_once_per_channel(store: Store) -> None:
    s = jobs(store)
    a = s.open_alert(alert())
    b = s.open_alert(alert(f"frost:{V2}", V2))
    assert a is not None and b is not None
    assert [x.id for x in s.undelivered_alerts("mqtt")] == [a.id, b.id]  # oldest first
    s.mark_delivered(a.id, "mqtt", 1)
    assert [x.id for x in s.undelivered_alerts("mqtt")] == [b.id]
    assert [x.id for x in s.undelivered_alerts("webhook")] == [a.id, b.id]  # channels are independent
    s.ack_alert(a.id, "王会计", T0 + HOUR)  # version 2: undelivered again
    [pending] = [x for x in s.undelivered_alerts("mqtt") if x.id == a.id]
    assert pending.version == 2 and pending.acked_by == "王会计"
    s.mark_delivered(a.id, "mqtt", 2)
    s.mark_delivered(a.id, "mqtt", 1)  # a late, older delivery never moves it backwards
    s.mark_delivered(b.id, "mqtt", 1)
    assert s.undelivered_alerts("mqtt") == []
    s.mark_delivered(987_654_321, "mqtt", 1)  # unknown id: nothing happens
    s.clear_alert(b.key, T0 + 2 * HOUR)
    assert [(x.id, x.version) for x in s.undelivered_alerts("mqtt")] == [(b.id, 2)]
    assert [x.id for x in s.undelivered_alerts("webhook", limit=1)] == [a.id]


# -- alerts as the dashboards' panel uses them (issue 19) -------------------------------------------

def test_an_acknowledgement_stays_and_since_never_moves(store: Store) -> None:
    s = jobs(store)
    raised = s.open_alert(alert(raised_at=T0, value=12.0))
    assert raised is not None
    s.ack_alert(raised.id, "王会计", T0 + 2 * HOUR)
    for later in (T0 + HOUR, T0 + 3 * HOUR):  # the rule sees the condition again: nothing changes
        assert s.open_alert(alert(raised_at=later, value=9.0)) is None
    for listed in (s.list_alerts(DISTRICT, active=True)[0], s.list_alerts(InRegion("village", V1))[0],
                   s.get_alert(raised.id)):
        assert listed is not None
        assert (listed.id, listed.raised_at, listed.value) == (raised.id, T0, 12.0)
        assert (listed.acked_by, listed.acked_at, listed.active) == ("王会计", T0 + 2 * HOUR, True)


def test_every_listed_alert_device_ones_too_is_acknowledged_by_its_listed_id(store: Store) -> None:
    s = jobs(store)
    s.open_alert(alert("battery_low:qh-st-101203-1", V1, T0, device="qh-st-101203-1", kind="battery_low",
                       value=3.2, threshold=3.4))
    s.open_alert(alert("device_offline:qh-st-101204-1", V2, T0 + HOUR, device="qh-st-101204-1",
                       kind="device_offline"))
    s.open_alert(alert(f"drought:{V3}", V3, T0 + 2 * HOUR))
    listed = s.list_alerts(DISTRICT, active=True)
    assert len(listed) == 3 and len({a.id for a in listed}) == 3
    for i, a in enumerate(listed):
        acked = s.ack_alert(a.id, f"staff-{i}", T0 + 5 * HOUR)
        assert (acked.id, acked.key, acked.acked_by) == (a.id, a.key, f"staff-{i}")
    assert [(a.key, a.acked_by) for a in s.list_alerts(DISTRICT, active=True)] == [
        (a.key, f"staff-{i}") for i, a in enumerate(listed)]


def test_a_low_battery_keeps_its_since_while_newer_readings_arrive(store: Store, ctx: Context) -> None:
    s = jobs(store)
    station = "qh-st-101203-1"
    cfg = ctx.alerts.station_health
    for k, volts in enumerate((3.30, 3.25, 3.20, 3.45)):  # low, lower, lower, still under the clear level
        ts = T0 + k * 10 * 60_000
        s.write(Batch(readings=[Reading(station, V1, ts, {"battery": volts, "soil_moisture": 20.0})]))
        health.check(ctx, s, cfg, ts + 60_000)
        [low] = [a for a in s.list_alerts(DISTRICT, active=True) if a.kind == "battery_low"]
        assert (low.key, low.raised_at, low.value) == (f"battery_low:{station}", T0, 3.30)
    assert s.ack_alert(low.id, "王会计", T0 + HOUR).acked_by == "王会计"
    s.write(Batch(readings=[Reading(station, V1, T0 + HOUR, {"battery": 3.6})]))  # at or above battery_clear_v
    health.check(ctx, s, cfg, T0 + HOUR + 60_000)
    assert [a.kind for a in s.list_alerts(DISTRICT, active=True)] == []
    [ended] = s.list_alerts(DISTRICT, active=False)
    assert (ended.id, ended.raised_at, ended.acked_by) == (low.id, T0, "王会计")
