"""The decoder's shortcuts (topic cache, RFC 3339 minute cache, in-range float readings) answer
exactly as the general code: same records, same rejections with the same reasons and details.

The reference below is the decoder as it was before the shortcuts (each step in full, per message).
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.context import build
from service.payloads import (
    FUTURE_TOLERANCE_MS,
    KINDS_FOR_TOPIC,
    MAX_PAYLOAD_BYTES,
    PAST_LIMIT_MS,
    Decoded,
    PayloadDecoder,
    Rejected,
    _a_year_before,
    _number,
    excerpt,
    parse_ts_cached,
    split_topic,
)
from service.records import Reading, Rejection, StatusChange
from service.settings import load
from service.times import MAX_EPOCH_MS, MIN_EPOCH_MS, TimeFormatError, parse_ts

NOW = 1_790_000_000_000
CHECK = settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None, max_examples=300)
SHARED_MINUTES: dict[tuple[str, str], int] = {}  # one cache across examples, as in a long-running decoder


def reference_split_topic(topic: str) -> tuple[str, str] | None:
    if not topic.startswith("nongyun/v1/"):
        return None
    parts = topic[len("nongyun/v1/"):].split("/")
    if len(parts) != 2 or parts[1] not in KINDS_FOR_TOPIC:
        return None
    device = parts[0]
    if not 0 < len(device) <= 64 or not all(c.isascii() and (c.isalnum() or c in "_-") for c in device):
        return None
    return device, parts[1]


def outcome(fn: Any, *args: Any) -> tuple[str, Any]:
    try:
        return "ok", fn(*args)
    except Exception as exc:  # the comparison includes the error's type and message
        return type(exc).__name__, str(exc)


# -- timestamps ----------------------------------------------------------------------------------------

digits = st.sampled_from("0123456789")
unicode_digit = st.sampled_from("0123456789٣５")  # Arabic-Indic and full-width digits: \d matches them


def field(n: int, alphabet: st.SearchStrategy[str] = digits) -> st.SearchStrategy[str]:
    return st.lists(alphabet, min_size=n, max_size=n).map("".join)


two = st.one_of(st.integers(0, 99).map(lambda i: f"{i:02d}"), field(2, unicode_digit))
rfc3339ish = st.builds(
    lambda y, mo, d, sep, h, mi, s, frac, off: f"{y}-{mo}-{d}{sep}{h}:{mi}:{s}{frac}{off}",
    st.one_of(st.integers(0, 9999).map(lambda i: f"{i:04d}"), field(4, unicode_digit)),
    st.one_of(st.integers(1, 12).map(lambda i: f"{i:02d}"), two),
    st.one_of(st.integers(1, 31).map(lambda i: f"{i:02d}"), two),
    st.sampled_from(["T", "t", " ", "_"]),
    st.one_of(st.integers(0, 24).map(lambda i: f"{i:02d}"), two),
    st.one_of(st.integers(0, 59).map(lambda i: f"{i:02d}"), two),
    st.one_of(st.integers(0, 61).map(lambda i: f"{i:02d}"), two),
    st.one_of(st.just(""), st.integers(1, 12).flatmap(lambda n: field(n)).map(lambda f: "." + f), st.just(".")),
    st.one_of(st.sampled_from(["Z", "z", "", "+00:00", "-00:00", "+24:00", "+08:00\n", "+0800"]),
              st.builds(lambda sign, h, m: f"{sign}{h:02d}:{m:02d}", st.sampled_from("+-"),
                        st.integers(0, 25), st.integers(0, 61))),
)
timestamps = st.one_of(
    rfc3339ish,
    st.integers(MIN_EPOCH_MS - 10, MIN_EPOCH_MS + 10), st.integers(MAX_EPOCH_MS - 10, MAX_EPOCH_MS + 10),
    st.integers(), st.booleans(), st.floats(), st.none(), st.text(max_size=40), st.lists(st.integers(), max_size=2),
)


@settings(max_examples=2000, deadline=None)
@given(value=timestamps)
def test_cached_timestamps_parse_exactly_as_parse_ts(value: object) -> None:
    assert outcome(parse_ts_cached, value, SHARED_MINUTES) == outcome(parse_ts, value)
    assert outcome(parse_ts_cached, value, {}) == outcome(parse_ts, value)


def test_a_minute_cache_is_bounded() -> None:
    minutes: dict[tuple[str, str], int] = {}
    for i in range(5000):
        parse_ts_cached(f"2026-05-01T{i // 60 % 24:02d}:{i % 60:02d}:00+{i // 1440:02d}:00", minutes)
    assert 0 < len(minutes) <= 4096


def test_a_bad_minute_is_not_cached_and_says_what_parse_ts_says() -> None:
    minutes: dict[tuple[str, str], int] = {}
    with pytest.raises(TimeFormatError) as exc:
        parse_ts_cached("2026-02-30T08:00:17+08:00", minutes)
    assert "'2026-02-30T08:00:17+08:00'" in str(exc.value)
    assert minutes == {}


# -- topics --------------------------------------------------------------------------------------------

topic_texts = st.one_of(
    st.text(max_size=90),
    st.builds(lambda d, k: f"nongyun/v1/{d}/{k}", st.text(max_size=70),
              st.sampled_from(["telemetry", "yield", "status", "Telemetry", "telemetry/", "telemetry\n", ""])),
    st.builds(lambda d, k: f"nongyun/v1/{d}/{k}", st.from_regex(r"[A-Za-z0-9_-]{0,66}", fullmatch=True),
              st.sampled_from(["telemetry", "yield", "status", "status\n"])),
)


@settings(max_examples=1000, deadline=None)
@given(topic=topic_texts)
def test_topics_split_exactly_as_the_per_character_check(topic: str) -> None:
    assert split_topic(topic) == reference_split_topic(topic)


# -- whole messages --------------------------------------------------------------------------------------


def reference_decode(dec: PayloadDecoder, topic: str, payload: bytes, received_ms: int,
                     retained: bool = False) -> Decoded:
    """The decoder before the shortcuts: every step in full for every message."""
    out = Decoded()
    parsed = reference_split_topic(topic)
    device_id = parsed[0] if parsed else ""

    def reject(reason: str, detail: str) -> Decoded:
        out.rejections.append(Rejection(received_ms, topic, device_id, reason, detail, excerpt(payload)))
        return out

    if parsed is None:
        return reject("bad_topic", f"topic {topic[:200]!r} is not nongyun/v1/{{device}}/telemetry|yield|status")
    _, kind = parsed
    if len(payload) > MAX_PAYLOAD_BYTES:
        return reject("payload_too_large", f"{len(payload)} bytes > {MAX_PAYLOAD_BYTES}")
    device = dec.registry.find(device_id)
    if device is None:
        return reject("unknown_device", f"device {device_id!r} is not registered")
    if device.kind not in KINDS_FOR_TOPIC[kind]:
        return reject("wrong_kind", f"a {device.kind} does not publish {kind}")
    if kind == "status":
        text = payload.strip().decode("utf-8", errors="replace").strip('"').lower()
        if text not in ("online", "offline"):
            return reject("bad_record", f"status must be online or offline, not {text[:40]!r}")
        out.statuses.append(StatusChange(device_id, 0 if retained else received_ms, text == "online", device.village))
        return out
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        return reject("bad_json", str(exc)[:200])
    records = doc if isinstance(doc, list) else [doc]
    if not records:
        return reject("bad_record", "empty array")
    for index, record in enumerate(records):
        where = f"record {index}: " if isinstance(doc, list) else ""
        try:
            if not isinstance(record, dict):
                raise Rejected("bad_record", f"a record is a JSON object, not {type(record).__name__}")
            claimed = record.get("device")
            if claimed is not None and claimed != device_id:
                raise Rejected("device_mismatch", f"payload says device {str(claimed)[:64]!r}, topic {device_id!r}")
            if "ts" not in record:
                raise Rejected("bad_record", "missing ts", "ts")
            try:
                ts = parse_ts(record["ts"])
            except TimeFormatError as exc:
                raise Rejected("bad_timestamp", str(exc), "ts") from None
            if ts > received_ms + FUTURE_TOLERANCE_MS:
                ahead = (ts - received_ms) / 1000
                raise Rejected("time_in_future", f"ts is {ahead:.0f} s ahead of the receiving clock")
            if ts < received_ms - PAST_LIMIT_MS and ts < _a_year_before(received_ms):
                raise Rejected("time_too_old", f"ts is {(received_ms - ts) / 86_400_000:.0f} days old (limit 365)")
            if kind == "telemetry":
                readings = record.get("readings")
                if not isinstance(readings, dict) or not readings:
                    raise Rejected("bad_record", "readings must be a non-empty object of metric: value")
                values: dict[str, float] = {}
                for metric, value in readings.items():
                    bounds = dec._ranges.get(metric)
                    if bounds is None:
                        raise Rejected("unknown_metric", f"metric {str(metric)[:64]!r} is not in the catalogue")
                    values[metric] = _number(metric, value, bounds[0], bounds[1])
                out.readings.append(Reading(device_id, device.village, ts, values))
            else:
                out.yields.append(dec._yield(record, device_id, device.village, ts))
        except Rejected as r:
            rec_bytes = orjson.dumps(record)[:EXCERPT] if isinstance(doc, list) else payload
            out.rejections.append(Rejection(received_ms, topic, device_id, r.reason, where + r.detail,
                                            excerpt(rec_bytes)))
    return out


EXCERPT = 256
STATION, SCALE = "qh-st-101203-1", "qh-gs-101"
TELEMETRY = f"nongyun/v1/{STATION}/telemetry"
metric_names = st.sampled_from(["soil_moisture", "air_temp", "soil_temp", "rainfall", "wind_speed", "nope", ""])
values = st.one_of(
    st.floats(-100, 200), st.floats(), st.integers(-10**20, 10**20), st.booleans(), st.none(), st.text(max_size=5),
    st.just(math.nan), st.just(-0.0),
)
readings = st.one_of(st.dictionaries(metric_names, values, max_size=6), st.just([]), st.just("x"), st.none())
in_window = st.integers(NOW - 400 * 86_400_000, NOW + 10 * 60_000)
record_ts = st.one_of(
    in_window,
    in_window.map(lambda ms: f"{json.dumps(ms)}"),
    st.builds(lambda ms, sep, frac: _rfc3339(ms, sep, frac), in_window, st.sampled_from("Tt "), st.booleans()),
    timestamps,
)


def _rfc3339(ms: int, sep: str, frac: bool) -> str:
    dt = datetime.fromtimestamp(ms / 1000, timezone(timedelta(hours=8)))
    return dt.isoformat(sep=sep, timespec="milliseconds" if frac else "seconds")


records = st.fixed_dictionaries(
    {},
    optional={"ts": record_ts, "readings": readings, "device": st.sampled_from([STATION, "other", 3]),
              "crop": st.sampled_from(["corn", "rice", "x"]), "area_mu": st.floats(0, 20), "yield_jin": values},
)
message_docs = st.one_of(records, st.lists(st.one_of(records, st.integers()), max_size=4))  # mostly rejected
message_topics = st.sampled_from([f"nongyun/v1/{STATION}/telemetry", f"nongyun/v1/{SCALE}/yield",
                                  f"nongyun/v1/{STATION}/yield", "nongyun/v1/nobody/telemetry", "nongyun/v2/x/y"])


def _catalogue_ranges() -> dict[str, tuple[float, float]]:
    config = Path(__file__).resolve().parent.parent / "config"
    ctx = build(load(config, env={}, overrides={"store.data_dir": "/nonexistent"}))
    return {m.id: (m.min, m.max) for m in ctx.catalogue.metrics.values()}


RANGES = _catalogue_ranges()


def metric_value(metric: str) -> st.SearchStrategy[object]:
    lo, hi = RANGES[metric]
    return st.one_of(st.floats(lo, hi), st.floats(lo, hi), st.floats(lo, hi), st.sampled_from([lo, hi, -0.0]),
                     st.integers(int(lo), int(hi)), st.floats(lo - 10, hi + 10), values)


metric_sets = st.lists(st.sampled_from(sorted(RANGES)), min_size=1, max_size=8, unique=True)
plausible_readings = st.one_of(
    metric_sets.flatmap(lambda ms: st.fixed_dictionaries({m: st.floats(*RANGES[m]) for m in ms})),  # the usual
    metric_sets.flatmap(lambda ms: st.fixed_dictionaries({m: metric_value(m) for m in ms})),  # and its edges
)
plausible = st.fixed_dictionaries(
    {"ts": st.one_of(in_window, st.builds(_rfc3339, in_window, st.sampled_from("Tt "), st.booleans())),
     "readings": plausible_readings},
    optional={"device": st.just(STATION)},
)


@pytest.fixture(scope="module")
def warm(tmp_path_factory: pytest.TempPathFactory) -> PayloadDecoder:
    """One decoder for every example, as ingest keeps one: its caches are warm from earlier examples."""
    config = Path(__file__).resolve().parent.parent / "config"
    data = tmp_path_factory.mktemp("data")
    ctx = build(load(config, env={}, overrides={"store.data_dir": str(data)}))
    return PayloadDecoder(ctx.registry, ctx.catalogue)


@CHECK
@given(topic=message_topics, doc=message_docs, compact=st.booleans())
def test_decoding_is_exactly_the_general_decoders(warm: PayloadDecoder, topic: str, doc: object,
                                                  compact: bool) -> None:
    # the standard library also writes what orjson would not (NaN, integers beyond 64 bits)
    payload = json.dumps(doc, separators=(",", ":") if compact else None).encode()
    got = warm.decode(topic, payload, NOW)
    want = reference_decode(warm, topic, payload, NOW)
    assert got == want
    for g, w in zip(got.readings, want.readings, strict=True):  # 1 == 1.0: the stored types must agree too
        assert [type(v) for v in g.values.values()] == [type(v) for v in w.values.values()]


@CHECK
@given(doc=st.one_of(plausible, st.lists(plausible, min_size=1, max_size=4)))
def test_plausible_telemetry_decodes_exactly_as_the_general_decoder(warm: PayloadDecoder, doc: object) -> None:
    payload = json.dumps(doc).encode()
    got = warm.decode(TELEMETRY, payload, NOW)
    assert got == reference_decode(warm, TELEMETRY, payload, NOW)
    want = reference_decode(warm, TELEMETRY, payload, NOW)
    for g, w in zip(got.readings, want.readings, strict=True):
        assert [type(v) for v in g.values.values()] == [type(v) for v in w.values.values()]


def test_plausible_telemetry_is_mostly_accepted(warm: PayloadDecoder) -> None:
    """The property above is about the shortcut only if its examples are mostly accepted."""
    seen = []

    @settings(max_examples=200, deadline=None, database=None)
    @given(doc=plausible)
    def collect(doc: object) -> None:
        seen.append(bool(warm.decode(TELEMETRY, json.dumps(doc).encode(), NOW).readings))

    collect()
    assert sum(seen) >= len(seen) // 3
