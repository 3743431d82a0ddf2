"""The MQTT contract in code (service/payloads.py) and its pure helpers (times, units): examples and properties."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import orjson
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from service.context import Context
from service.payloads import MAX_PAYLOAD_BYTES, PayloadDecoder, split_topic
from service.records import REASONS
from service.times import (
    MAX_EPOCH_MS,
    MIN_EPOCH_MS,
    TimeFormatError,
    format_local,
    local_year,
    parse_duration,
    parse_rfc3339,
    parse_ts,
    window_start,
    year_bounds,
)
from service.units import (
    ha_to_mu,
    jin_to_kg,
    kg_per_ha_to_jin_per_mu,
    kg_to_jin,
    mu_to_ha,
    per_area,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = 1_790_000_000_000  # the receiving clock of the decoder tests
STATION = "qh-st-101203-1"
SCALE = "qh-gs-101"
TELEMETRY = f"nongyun/v1/{STATION}/telemetry"
YIELD = f"nongyun/v1/{SCALE}/yield"
NO_FIXTURE_CHECK = settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)

# -- times -----------------------------------------------------------------------------------------------

offsets = st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
instants = st.integers(MIN_EPOCH_MS, MAX_EPOCH_MS - 1)


@given(ms=instants, tz=offsets, sep=st.sampled_from("Tt "))
def test_rfc3339_with_any_offset_round_trips_to_the_millisecond(ms: int, tz: timezone, sep: str) -> None:
    dt = datetime.fromtimestamp(ms / 1000, UTC).replace(microsecond=(ms % 1000) * 1000).astimezone(tz)
    text = dt.isoformat(sep=sep, timespec="milliseconds")
    assert parse_rfc3339(text) == ms
    if dt.utcoffset() == timedelta(0):
        assert parse_rfc3339(text.replace("+00:00", "Z")) == ms
        assert parse_rfc3339(text.replace("+00:00", "z")) == ms


@given(ms=instants, extra=st.integers(0, 999_999), digits=st.integers(4, 9))
def test_sub_millisecond_digits_are_truncated_not_rounded(ms: int, extra: int, digits: int) -> None:
    base = datetime.fromtimestamp(ms // 1000, UTC)
    frac = f"{ms % 1000:03d}{extra:06d}"[:digits]
    assert parse_rfc3339(base.strftime("%Y-%m-%dT%H:%M:%S") + "." + frac + "+00:00") == ms


@given(ms=instants)
def test_format_local_reads_back_as_the_same_instant(ms: int) -> None:
    text = format_local(ms, SHANGHAI)
    assert text.endswith("+08:00")
    assert parse_rfc3339(text) == ms


@given(ms=instants)
def test_integer_epoch_milliseconds_pass_through(ms: int) -> None:
    assert parse_ts(ms) == ms


@given(value=st.one_of(st.integers(max_value=MIN_EPOCH_MS - 1), st.integers(min_value=MAX_EPOCH_MS),
                       st.booleans(), st.floats(), st.none(), st.lists(st.integers(), max_size=2)))
def test_other_timestamps_are_refused(value: object) -> None:
    with pytest.raises(TimeFormatError):
        parse_ts(value)


@given(text=st.text(max_size=40))
def test_arbitrary_text_is_either_a_time_or_a_time_format_error(text: str) -> None:
    try:
        ms = parse_rfc3339(text)
    except TimeFormatError:
        return
    assert isinstance(ms, int)


@pytest.mark.parametrize("text", [
    "2026-05-01T08:00:00",  # no offset: ambiguous
    "2026-05-01",
    "2026-05-01T08:00+08:00",  # no seconds
    "2026-13-01T08:00:00+08:00",
    "2026-02-30T08:00:00+08:00",
    "2026-05-01T08:00:00+0800",
    "1714521600000",
    "",
])
def test_not_rfc3339(text: str) -> None:
    with pytest.raises(TimeFormatError):
        parse_rfc3339(text)


def test_half_past_midnight_on_new_years_day_in_beijing_is_the_new_year() -> None:
    ms = parse_rfc3339("2026-01-01T00:30:00+08:00")
    assert datetime.fromtimestamp(ms / 1000, UTC).year == 2025  # still 2025 in UTC ...
    assert local_year(ms, SHANGHAI) == 2026  # ... but the local year counts
    start, end = year_bounds(2026, SHANGHAI)
    assert start <= ms < end
    assert start == parse_rfc3339("2026-01-01T00:00:00+08:00")


@given(n=st.integers(1, 999_999), unit=st.sampled_from("smhdw"))
def test_durations(n: int, unit: str) -> None:
    factor = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}[unit]
    assert parse_duration(f"{n}{unit}") == n * factor * 1000


@pytest.mark.parametrize("text", ["0m", "10", "m", "1y", "-1h", "1.5h", "01h", "1 h"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(TimeFormatError):
        parse_duration(text)


@given(ms=instants, every=st.sampled_from(["10m", "1h", "3h", "1d"]))
def test_windows_hold_their_instant_and_days_start_at_local_midnight(ms: int, every: str) -> None:
    step = parse_duration(every)
    w = window_start(ms, step, SHANGHAI)
    assert w <= ms < w + step
    if every == "1d":
        assert format_local(w, SHANGHAI)[11:19] == "00:00:00"


# -- units ---------------------------------------------------------------------------------------------

amounts = st.floats(0, 1e9, allow_nan=False)


@given(x=amounts)
def test_unit_conversions_round_trip(x: float) -> None:
    assert jin_to_kg(kg_to_jin(x)) == pytest.approx(x, rel=1e-12)
    assert mu_to_ha(ha_to_mu(x)) == pytest.approx(x, rel=1e-12)
    assert kg_to_jin(x) == 2 * x
    assert ha_to_mu(x) == pytest.approx(15 * x, rel=1e-12)


@given(kg=amounts, ha=st.floats(1e-6, 1e6))
def test_per_area_answers_agree_by_the_two_fifteenths_ratio(kg: float, ha: float) -> None:
    si = per_area(kg, ha, "si")
    cn = per_area(kg, ha, "cn")
    assert si is not None and cn is not None
    assert si == pytest.approx(kg / ha, rel=1e-12)
    assert cn == pytest.approx(kg_per_ha_to_jin_per_mu(si), rel=1e-12, abs=1e-300)
    assert cn == pytest.approx(si * 2 / 15, rel=1e-12, abs=1e-300)


def test_per_area_examples() -> None:
    # 1,150 斤/亩 of corn is 8,625 kg/ha
    assert per_area(jin_to_kg(11_500), mu_to_ha(10), "cn") == pytest.approx(1150)
    assert per_area(jin_to_kg(11_500), mu_to_ha(10), "si") == pytest.approx(8625)
    assert per_area(100, 0, "si") is None


# -- the payload decoder ---------------------------------------------------------------------------------


@pytest.fixture
def decoder(ctx: Context) -> PayloadDecoder:
    return PayloadDecoder(ctx.registry, ctx.catalogue)


def test_a_telemetry_record(decoder: PayloadDecoder) -> None:
    body = {"ts": "2026-09-20T08:00:00+08:00", "readings": {"soil_moisture": 23.4, "air_temp": 8}}
    d = decoder.decode(TELEMETRY, orjson.dumps(body), parse_rfc3339("2026-09-20T08:01:00+08:00"))
    assert d.rejections == []
    [r] = d.readings
    assert (r.device, r.village, r.ts) == (STATION, "211204101203", parse_rfc3339("2026-09-20T00:00:00Z"))
    assert r.values == {"soil_moisture": 23.4, "air_temp": 8.0}


def test_a_yield_record_is_stored_in_si(decoder: PayloadDecoder) -> None:
    body = {"ts": NOW - 1000, "crop": "corn", "area_mu": 12.5, "yield_jin": 15000, "plot": "p1", "moisture_pct": 28.5}
    [y] = decoder.decode(YIELD, orjson.dumps(body), NOW).yields
    # no land registered: the device's village, counted as unattributed
    assert (y.crop, y.plot, y.moisture_pct, y.source) == ("corn", "p1", 28.5, "mqtt_unattributed")
    assert y.area_ha == pytest.approx(12.5 / 15)
    assert y.yield_kg == 7500
    si = {"ts": NOW - 1000, "crop": "rice", "area_ha": 2.0, "yield_kg": 16000}
    [y2] = decoder.decode(YIELD, orjson.dumps(si), NOW).yields
    assert (y2.area_ha, y2.yield_kg, y2.plot) == (2.0, 16000, "")


@pytest.mark.parametrize("body", ["online", "offline", '"online"', " OFFLINE\n"])
def test_status(decoder: PayloadDecoder, body: str) -> None:
    [s] = decoder.decode(f"nongyun/v1/{STATION}/status", body.encode(), NOW).statuses
    assert (s.device, s.ts, s.online) == (STATION, NOW, "online" in body.lower())


def _t(ts: object = NOW - 1000, **readings: object) -> dict[str, object]:
    return {"ts": ts, "readings": readings or {"air_temp": 1.0}}


# reason → (topic, payload): the pure counterpart of tests/test_ingest_rejections.py
REJECTED: dict[str, list[tuple[str, bytes]]] = {
    "bad_topic": [("nongyun/v1/a.b/telemetry", b"{}"), ("nongyun/v2/x/telemetry", b"{}"),
                  (f"nongyun/v1/{STATION}/readings", b"{}"), (f"nongyun/v1/{STATION}/telemetry/x", b"{}"),
                  ("nongyun/v1/" + "a" * 65 + "/telemetry", b"{}")],
    "payload_too_large": [(TELEMETRY, b" " * (MAX_PAYLOAD_BYTES + 1))],
    "bad_json": [(TELEMETRY, b"{"), (TELEMETRY, b"\xff"), (TELEMETRY, b""), (TELEMETRY, b"NaN"),
                 (TELEMETRY, b'{"ts": %d, "readings": {"air_temp": 1e999}}' % NOW)],  # orjson: no infinities
    "bad_record": [(TELEMETRY, b"[]"), (TELEMETRY, b"3"), (TELEMETRY, orjson.dumps({"readings": {"air_temp": 1}})),
                   (TELEMETRY, orjson.dumps({"ts": NOW, "readings": {}})),
                   (YIELD, orjson.dumps({"ts": NOW, "crop": "corn", "area_mu": 1})),
                   (YIELD, orjson.dumps({"ts": NOW, "crop": "corn", "area_mu": 1, "area_ha": 1, "yield_kg": 1})),
                   (YIELD, orjson.dumps({"ts": NOW, "crop": "corn", "area_mu": 1, "yield_kg": 1, "plot": 7})),
                   (f"nongyun/v1/{STATION}/status", b"maybe")],
    "bad_timestamp": [(TELEMETRY, orjson.dumps(_t("2026-05-01 08:00"))), (TELEMETRY, orjson.dumps(_t(1.5e12))),
                      (TELEMETRY, orjson.dumps(_t(1_700_000_000)))],  # seconds, not milliseconds
    "unknown_device": [("nongyun/v1/nobody/telemetry", orjson.dumps(_t()))],
    "device_mismatch": [(TELEMETRY, orjson.dumps({**_t(), "device": "qh-st-101203-2"}))],
    "wrong_kind": [(f"nongyun/v1/{SCALE}/telemetry", orjson.dumps(_t())), (f"nongyun/v1/{STATION}/yield", b"{}")],
    "unknown_metric": [(TELEMETRY, orjson.dumps(_t(air_temp=1, leaf_wetness=2)))],
    "unknown_crop": [(YIELD, orjson.dumps({"ts": NOW, "crop": "durian", "area_mu": 1, "yield_jin": 1}))],
    "not_finite": [(TELEMETRY, orjson.dumps(_t(air_temp="1"))), (TELEMETRY, orjson.dumps(_t(air_temp=None))),
                   (TELEMETRY, orjson.dumps(_t(air_temp=True))),
                   (YIELD, orjson.dumps({"ts": NOW, "crop": "corn", "area_mu": "1", "yield_jin": 1}))],
    "out_of_range": [(TELEMETRY, orjson.dumps(_t(soil_ph=14.01))), (TELEMETRY, orjson.dumps(_t(air_temp=-50.5))),
                     (YIELD, orjson.dumps({"ts": NOW, "crop": "corn", "area_mu": 0, "yield_jin": 1})),
                     (YIELD, orjson.dumps({"ts": NOW, "crop": "corn", "area_ha": 1, "yield_kg": -1})),
                     (YIELD, orjson.dumps({"ts": NOW, "crop": "corn", "area_ha": 1, "yield_kg": 1,
                                           "moisture_pct": 101}))],
    "implausible_yield": [(YIELD, orjson.dumps({"ts": NOW, "crop": "corn", "area_mu": 1, "yield_jin": 900_000})),
                          (YIELD, orjson.dumps({"ts": NOW, "crop": "corn", "area_ha": 1, "yield_kg": 1})),
                          (YIELD, orjson.dumps({"ts": NOW, "crop": "potato", "area_mu": 1, "yield_jin": 900}))],
    "time_in_future": [(TELEMETRY, orjson.dumps(_t(NOW + 5 * 60_000 + 1)))],
    "time_too_old": [(TELEMETRY, orjson.dumps(_t(NOW - 365 * 86_400_000 - 1)))],
}


LAND_REASONS = ("unknown_plot", "plot_mismatch")  # need plots: tests/test_attribution.py


def test_every_decoder_reason_has_examples() -> None:
    assert set(REJECTED) == set(REASONS) - {"store_rejected", *LAND_REASONS}


@pytest.mark.parametrize(("reason", "topic", "payload"),
                         [(r, t, p) for r, cases in REJECTED.items() for t, p in cases])
def test_rejection_reasons(decoder: PayloadDecoder, reason: str, topic: str, payload: bytes) -> None:
    d = decoder.decode(topic, payload, NOW)
    assert d.accepted == 0
    [rejection] = d.rejections
    assert (rejection.reason, rejection.topic, rejection.ts) == (reason, topic, NOW)
    assert rejection.detail
    assert len(rejection.payload) <= 257


def test_the_limits_themselves_are_accepted(decoder: PayloadDecoder) -> None:
    body = [_t(NOW + 5 * 60_000), _t(NOW - 365 * 86_400_000), _t(soil_ph=14, air_temp=-50)]
    d = decoder.decode(TELEMETRY, orjson.dumps(body), NOW)
    assert (len(d.readings), d.rejections) == (3, [])


def test_in_an_array_each_record_stands_alone(decoder: PayloadDecoder) -> None:
    body = [_t(NOW - 3000), _t(NOW - 2000, soil_moisture=101), "x", _t(NOW - 1000)]
    d = decoder.decode(TELEMETRY, orjson.dumps(body), NOW)
    assert [r.ts for r in d.readings] == [NOW - 3000, NOW - 1000]
    assert [(j.reason, j.detail[:9]) for j in d.rejections] == [("out_of_range", "record 1:"),
                                                                 ("bad_record", "record 2:")]


metric_values = st.sampled_from([
    ("soil_moisture", 0, 100), ("soil_temp", -40, 80), ("air_temp", -50, 60), ("rainfall", 0, 500),
    ("light", 0, 200_000), ("battery", 0, 15),
]).flatmap(lambda m: st.tuples(st.just(m[0]), st.floats(m[1], m[2])))


@NO_FIXTURE_CHECK
@given(values=st.lists(metric_values, min_size=1, max_size=6, unique_by=lambda mv: mv[0]),
       age=st.integers(0, 365 * 86_400_000), as_text=st.booleans())
def test_valid_telemetry_is_accepted_exactly(decoder: PayloadDecoder, values: list[tuple[str, float]],
                                             age: int, as_text: bool) -> None:
    ts = NOW - age
    wire: object = format_local(ts, SHANGHAI) if as_text else ts
    d = decoder.decode(TELEMETRY, orjson.dumps({"ts": wire, "readings": dict(values)}), NOW)
    assert d.rejections == []
    [r] = d.readings
    assert r.ts == ts
    assert r.values == dict(values)


@NO_FIXTURE_CHECK
@given(mu=st.floats(0.01, 10_000), per_mu=st.floats(0, 1), crop=st.sampled_from(["corn", "rice", "soybean"]))
def test_valid_yields_are_converted_to_si(decoder: PayloadDecoder, mu: float, per_mu: float, crop: str) -> None:
    lo, hi = decoder.catalogue.crops[crop].record_jin_per_mu  # a plausible 单产 (tests/test_plausible_yield.py)
    jin = mu * (lo + (hi - lo) * per_mu)
    body = {"ts": NOW, "crop": crop, "area_mu": mu, "yield_jin": jin}
    [y] = decoder.decode(YIELD, orjson.dumps(body), NOW).yields
    assert y.area_ha == pytest.approx(mu / 15)
    assert y.yield_kg == pytest.approx(jin / 2)
    assert per_area(y.yield_kg, y.area_ha, "cn") == pytest.approx(jin / mu)


topics = st.one_of(
    st.text(max_size=60),
    st.tuples(st.sampled_from([STATION, SCALE, "nobody", "", "a/b", "+"]),
              st.sampled_from(["telemetry", "yield", "status", "x"])).map(lambda t: f"nongyun/v1/{t[0]}/{t[1]}"),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.integers(NOW - 400 * 86_400_000, NOW + 3_600_000)
    | st.floats() | st.text(max_size=10) | st.sampled_from(["corn", "durian", "2026-05-01T08:00:00+08:00"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(
        ["ts", "readings", "crop", "area_mu", "area_ha", "yield_jin", "yield_kg", "plot", "device", "air_temp"]),
        inner, max_size=5),
    max_leaves=20,
)
# the standard library writes what orjson would not (huge integers, NaN, Infinity): devices might too
payloads = st.one_of(st.binary(max_size=200), json_values.map(lambda v: json.dumps(v).encode()))


@NO_FIXTURE_CHECK
@given(topic=topics, payload=payloads)
def test_the_decoder_never_raises_and_accounts_for_everything(decoder: PayloadDecoder, topic: str,
                                                              payload: bytes) -> None:
    d = decoder.decode(topic, payload, NOW)
    assert d.accepted + len(d.rejections) >= 1
    assert all(j.reason in REASONS and j.reason != "store_rejected" for j in d.rejections)
    if split_topic(topic) is None:
        assert [j.reason for j in d.rejections] == ["bad_topic"]
    for r in d.readings:
        assert all(math.isfinite(v) for v in r.values.values())
        assert NOW - 365 * 86_400_000 <= r.ts <= NOW + 5 * 60_000


@given(device=st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True),
       kind=st.sampled_from(["telemetry", "yield", "status"]))
def test_contract_topics_split(device: str, kind: str) -> None:
    assert split_topic(f"nongyun/v1/{device}/{kind}") == (device, kind)


@given(device=st.text(min_size=1, max_size=70))
def test_device_ids_outside_the_contract_do_not_split(device: str) -> None:
    assume(not (len(device) <= 64 and all(c.isascii() and (c.isalnum() or c in "_-") for c in device)))
    assert split_topic(f"nongyun/v1/{device}/telemetry") is None


def test_a_year_behind_is_a_calendar_year_across_a_leap_day(decoder: PayloadDecoder) -> None:
    received = int(datetime(2028, 3, 1, tzinfo=UTC).timestamp() * 1000)  # 2027-03-01 → here is 366 days
    half_past = int(datetime(2027, 3, 1, 12, tzinfo=UTC).timestamp() * 1000)  # 365.5 days old
    too_old = int(datetime(2027, 2, 28, 12, tzinfo=UTC).timestamp() * 1000)
    topic = "nongyun/v1/qh-st-101203-1/telemetry"
    ok = decoder.decode(topic, orjson.dumps({"ts": half_past, "readings": {"air_temp": 1.0}}), received)
    assert len(ok.readings) == 1 and not ok.rejections
    old = decoder.decode(topic, orjson.dumps({"ts": too_old, "readings": {"air_temp": 1.0}}), received)
    assert [r.reason for r in old.rejections] == ["time_too_old"]
