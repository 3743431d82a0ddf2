"""Topic + payload bytes → accepted records, or a rejection with its reason. Pure: no I/O, no clock.

This is the contract of DESIGN.md ("MQTT contract (v1)") in code. A record is accepted or rejected
whole; in an array each record stands on its own, so one bad record of a device's backlog does not
cost the good ones. The device id comes from the topic only.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from .catalogue import Catalogue
from .land import Land
from .records import SOURCE_DEVICE, SOURCE_UNATTRIBUTED, Reading, Rejection, StatusChange, YieldRecord
from .regions import RegionTree
from .registry import Registry
from .times import MAX_EPOCH_MS, MIN_EPOCH_MS, TimeFormatError, parse_rfc3339, parse_ts
from .units import ha_to_mu, jin_to_kg, kg_to_jin, mu_to_ha

MAX_PAYLOAD_BYTES = 64 * 1024
FUTURE_TOLERANCE_MS = 5 * 60_000
PAST_LIMIT_MS = 365 * 86_400_000
TOPIC_PREFIX = "nongyun/v1/"
KINDS_FOR_TOPIC = {
    "telemetry": ("station",),
    "yield": ("yield_monitor", "grain_scale"),
    "status": ("station", "yield_monitor", "grain_scale"),
}
MAX_AREA_HA = 10_000.0  # one record above 150,000 亩 is a typo, not a field
MAX_YIELD_KG = 50_000_000.0
MAX_PLOT_LEN = 64
PLAUSIBLE_SLACK = 1e-9  # relative: float rounding of unit conversions, far below any real 单产 difference
EXCERPT_BYTES = 256


class Rejected(Exception):
    """Internal: carries a reason code and detail out of the record validators."""

    def __init__(self, reason: str, detail: str, field: str | None = None) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.field = field  # the record key at fault, for forms that show errors next to fields


@dataclass(slots=True)
class Decoded:
    readings: list[Reading] = field(default_factory=list)
    yields: list[YieldRecord] = field(default_factory=list)
    statuses: list[StatusChange] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)

    @property
    def accepted(self) -> int:
        return len(self.readings) + len(self.yields) + len(self.statuses)


# A device id is 1–64 of ASCII letters, digits, "_" and "-". One compiled full match instead of a
# per-character check: the topic is split once per message (bench/README.md, "What each change bought").
_TOPIC = re.compile(r"nongyun/v1/([A-Za-z0-9_-]{1,64})/(telemetry|yield|status)")


def split_topic(topic: str) -> tuple[str, str] | None:
    """``nongyun/v1/{device}/{kind}`` → (device, kind), or None when it is not a contract topic."""
    m = _TOPIC.fullmatch(topic)
    return None if m is None else (m[1], m[2])


# RFC 3339 as devices send it, in ASCII digits: (date and minute, seconds, fraction, offset). The
# minute and offset decide everything that can be invalid (day of month, hour, offset range), so
# ``_TimeCache`` parses each (minute, offset) once with ``parse_rfc3339`` and adds the seconds.
_FAST_RFC3339 = re.compile(
    r"([0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}):([0-5][0-9])(?:\.([0-9]{1,9}))?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)
_CACHE_MAX = 4096  # distinct topics / minutes kept; past that the cache starts over (bounded memory)


def parse_ts_cached(value: object, minutes: dict[tuple[str, str], int]) -> int:
    """``times.parse_ts`` with the epoch ms of each (minute, offset) remembered in ``minutes``.

    Same answers and errors as ``parse_ts`` (tests/test_payloads.py compares them on random input):
    anything but integers and plain RFC 3339 goes to ``parse_ts`` itself, and so does a minute that
    does not parse, for its exact error message.
    """
    if type(value) is int:
        if MIN_EPOCH_MS <= value < MAX_EPOCH_MS:
            return value
        return parse_ts(value)
    if type(value) is not str:
        return parse_ts(value)
    m = _FAST_RFC3339.fullmatch(value)
    if m is None:
        return parse_ts(value)
    minute, sec, frac, offset = m.groups()
    key = (minute, offset)
    base = minutes.get(key)
    if base is None:
        try:
            base = parse_rfc3339(f"{minute}:00{offset}")
        except Exception:  # the same text with its own seconds fails too: let parse_ts say how
            return parse_ts(value)
        if len(minutes) >= _CACHE_MAX:
            minutes.clear()
        minutes[key] = base
    ms = base + int(sec) * 1000
    return ms + int((frac + "000")[:3]) if frac else ms


def excerpt(payload: bytes) -> str:
    text = payload[:EXCERPT_BYTES].decode("utf-8", errors="replace")
    return text + ("…" if len(payload) > EXCERPT_BYTES else "")


class RetainedMemory:
    """Which retained messages this worker has already counted.

    The ingest resubscribes on every (re)connect, and the broker then hands over every retained
    message again: counted each time, one retained flood message would add a rejection per
    reconnect. A message whose exact bytes were seen on the same topic (retained, or live on a topic
    that has a retained message) carries nothing new — the same bytes decode to the same points,
    and a retained status is stored at time 0 anyway — so the pipeline acknowledges it uncounted.
    Bounded: ``max_topics`` topics (least recently seen dropped), ``per_topic`` digests each.
    """

    def __init__(self, max_topics: int = 20_000, per_topic: int = 4) -> None:
        self.max_topics = max_topics
        self.per_topic = per_topic
        self._seen: OrderedDict[str, list[bytes]] = OrderedDict()

    def repeat(self, topic: str, payload: bytes, retained: bool) -> bool:
        """True for a retained copy of bytes already seen on ``topic``; remembers them either way."""
        seen = self._seen.get(topic)
        if seen is None and not retained:
            return False  # the hot path: a live message on a topic without a retained message
        digest = hashlib.blake2b(payload, digest_size=16).digest()
        if seen is None:
            seen = self._seen[topic] = []
            if len(self._seen) > self.max_topics:
                self._seen.popitem(last=False)
        else:
            self._seen.move_to_end(topic)
        if digest in seen:
            return retained
        seen.append(digest)
        if len(seen) > self.per_topic:
            del seen[0]
        return False


class PayloadDecoder:
    """Holds the registry and catalogue; ``decode`` is called once per MQTT message.

    Per-message cost matters (it is most of the ingest writer's time, bench/README.md): topics
    repeat (one per device), so their split is remembered; RFC 3339 minutes are parsed once; and a
    readings object of in-range floats is taken as it is. Each shortcut answers exactly as the
    general code does, which takes over at the first value it does not cover.
    """

    def __init__(self, registry: Registry, catalogue: Catalogue, land: Land | None = None,
                 tree: RegionTree | None = None) -> None:
        """``tree``: the villages a record may name (without it, any 12-digit code)."""
        self.registry = registry
        self.catalogue = catalogue
        self._villages = None if tree is None else {n.code for n in tree if n.level == "village"}
        # plots for attribution; a value object, so a run-time registry may assign a new one
        self.land = land if land is not None else Land.empty()
        self._ranges = {m.id: (m.min, m.max) for m in catalogue.metrics.values()}
        # metrics whose range is finite: a float inside it is finite, so one comparison checks both
        self._float_ranges = {k: b for k, b in self._ranges.items() if math.isfinite(b[0]) and math.isfinite(b[1])}
        self._topics: dict[str, tuple[str, str] | None] = {}
        self._minutes: dict[tuple[str, str], int] = {}

    def _split(self, topic: str) -> tuple[str, str] | None:
        try:
            return self._topics[topic]
        except KeyError:
            pass
        parsed = split_topic(topic)
        if len(self._topics) >= _CACHE_MAX:
            self._topics.clear()
        self._topics[topic] = parsed
        return parsed

    def decode(self, topic: str, payload: bytes, received_ms: int, retained: bool = False) -> Decoded:
        """``retained``: the broker handed over a stored retained message on (re)subscribing. Its
        publish time is unknown, so a retained status is kept at time 0: it tells the state when
        nothing newer is known, and never makes a device look "seen now" after an ingest restart."""
        out = Decoded()
        parsed = self._split(topic)
        if parsed is None:
            return _reject(out, received_ms, topic, "", payload, "bad_topic",
                           f"topic {topic[:200]!r} is not nongyun/v1/{{device}}/telemetry|yield|status")
        device_id, kind = parsed
        if len(payload) > MAX_PAYLOAD_BYTES:
            return _reject(out, received_ms, topic, device_id, payload, "payload_too_large",
                           f"{len(payload)} bytes > {MAX_PAYLOAD_BYTES}")
        device = self.registry.find(device_id)
        if device is None:
            return _reject(out, received_ms, topic, device_id, payload, "unknown_device",
                           f"device {device_id!r} is not registered")
        if device.kind not in KINDS_FOR_TOPIC[kind]:
            return _reject(out, received_ms, topic, device_id, payload, "wrong_kind",
                           f"a {device.kind} does not publish {kind}")
        if kind == "status":
            text = payload.strip().decode("utf-8", errors="replace").strip('"').lower()
            if text not in ("online", "offline"):
                return _reject(out, received_ms, topic, device_id, payload, "bad_record",
                               f"status must be online or offline, not {text[:40]!r}")
            out.statuses.append(StatusChange(device_id, 0 if retained else received_ms, text == "online",
                                             device.village))
            return out
        try:
            doc = orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            return _reject(out, received_ms, topic, device_id, payload, "bad_json", str(exc)[:200])
        is_list = isinstance(doc, list)
        records = doc if is_list else [doc]
        if not records:
            return _reject(out, received_ms, topic, device_id, payload, "bad_record", "empty array")
        telemetry = kind == "telemetry"
        village = device.village
        for index, record in enumerate(records):
            try:
                if not isinstance(record, dict):
                    raise Rejected("bad_record", f"a record is a JSON object, not {type(record).__name__}")
                claimed = record.get("device")
                if claimed is not None and claimed != device_id:
                    raise Rejected("device_mismatch", f"payload says device {str(claimed)[:64]!r}, topic {device_id!r}")
                ts = self._ts(record, received_ms)
                if telemetry:
                    out.readings.append(Reading(device_id, village, ts, self._readings(record)))
                else:
                    out.yields.append(self._yield(record, device_id, village, ts))
            except Rejected as r:
                where = f"record {index}: " if is_list else ""
                rec_bytes = orjson.dumps(record)[:EXCERPT_BYTES] if is_list else payload
                out.rejections.append(
                    Rejection(received_ms, topic, device_id, r.reason, where + r.detail, excerpt(rec_bytes))
                )
        return out

    def yield_record(self, record: dict[str, Any], device_id: str, village: str, received_ms: int) -> YieldRecord:
        """One yield record by the device rules, for records that do not come over MQTT (staff
        entries through the API); raises ``Rejected`` with ``field`` set to the key at fault."""
        return self._yield(record, device_id, village, self._ts(record, received_ms))

    def _ts(self, record: dict[str, Any], received_ms: int) -> int:
        if "ts" not in record:
            raise Rejected("bad_record", "missing ts", "ts")
        try:
            ts = parse_ts_cached(record["ts"], self._minutes)
        except TimeFormatError as exc:
            raise Rejected("bad_timestamp", str(exc), "ts") from None
        if ts > received_ms + FUTURE_TOLERANCE_MS:
            ahead = (ts - received_ms) / 1000
            raise Rejected("time_in_future", f"ts is {ahead:.0f} s ahead of the receiving clock", "ts")
        if ts < received_ms - PAST_LIMIT_MS and ts < _a_year_before(received_ms):
            raise Rejected("time_too_old", f"ts is {(received_ms - ts) / 86_400_000:.0f} days old (limit 365)", "ts")
        return ts

    def _readings(self, record: dict[str, Any]) -> dict[str, float]:
        readings = record.get("readings")
        if type(readings) is dict and readings:
            # The common record: every value a float in its metric's (finite) range. Then the
            # parsed object is the values as they are; anything else takes the general path below.
            ranges = self._float_ranges
            for metric, value in readings.items():
                bounds = ranges.get(metric)
                if bounds is None or type(value) is not float or not bounds[0] <= value <= bounds[1]:
                    break
            else:
                return readings
        return self._readings_checked(readings)

    def _readings_checked(self, readings: object) -> dict[str, float]:
        if not isinstance(readings, dict) or not readings:
            raise Rejected("bad_record", "readings must be a non-empty object of metric: value")
        values: dict[str, float] = {}
        for metric, value in readings.items():
            bounds = self._ranges.get(metric)
            if bounds is None:
                raise Rejected("unknown_metric", f"metric {str(metric)[:64]!r} is not in the catalogue")
            values[metric] = _number(metric, value, bounds[0], bounds[1])
        return values

    def _yield(self, record: dict[str, Any], device_id: str, village: str, ts: int) -> YieldRecord:
        """Attribution (DESIGN.md "Land"): a registered plot's village, else the ``village`` the record
        names (a grain scale's village of origin), else ``village`` (the device's) as unattributed."""
        crop = record.get("crop")
        if not isinstance(crop, str):
            raise Rejected("bad_record", "missing crop", "crop")
        if crop not in self.catalogue.crops:
            raise Rejected("unknown_crop", f"crop {crop[:64]!r} is not in the catalogue", "crop")
        plot = record.get("plot", "")
        if plot is None:
            plot = ""
        if not isinstance(plot, str) or len(plot) > MAX_PLOT_LEN or any(c in plot for c in "\n\r\t"):
            raise Rejected("bad_record", f"plot must be a string of at most {MAX_PLOT_LEN} characters", "plot")
        named = self._named_village(record)
        land = self.land
        registered = land.plot(plot) if plot else None
        # A district that registers no plots keeps ``plot`` a free label, as before plots existed.
        if plot and registered is None and len(land):
            raise Rejected("unknown_plot", f"plot {plot[:64]!r} is not registered", "plot")
        if registered is not None and named is not None and named != registered.village:
            raise Rejected("plot_mismatch", f"plot {plot!r} lies in village {registered.village}, "
                           f"the record names {named}", "plot")
        if registered is not None and "area_mu" not in record and "area_ha" not in record:
            area_ha = registered.area_ha
        else:
            area_ha = _one_of(record, "area_mu", "area_ha", mu_to_ha, 0.0, MAX_AREA_HA, positive=True)
        yield_kg = _one_of(record, "yield_jin", "yield_kg", jin_to_kg, 0.0, MAX_YIELD_KG)
        moisture = record.get("moisture_pct")
        if moisture is not None:
            moisture = _number("moisture_pct", moisture, 0.0, 100.0)
        self._plausible(record, crop, area_ha, yield_kg, registered is not None and "area_mu" not in record
                        and "area_ha" not in record)
        if registered is not None:
            where, source = registered.village, SOURCE_DEVICE
        elif named is not None:
            where, source = named, SOURCE_DEVICE
        else:
            where, source = village, SOURCE_UNATTRIBUTED
        return YieldRecord(device_id, where, ts, crop, area_ha, yield_kg, plot, moisture, source)

    def _plausible(self, record: dict[str, Any], crop: str, area_ha: float, yield_kg: float, plot_area: bool) -> None:
        """The 单产 against the crop's record_jin_per_mu, checked last: a key that is wrong by itself
        is named first. Bounds are inclusive, and a value the 斤↔kg, 亩↔ha conversions moved by a few
        ulps off a bound still counts as on it (``PLAUSIBLE_SLACK``)."""
        lo, hi = self.catalogue.crops[crop].record_jin_per_mu
        jin = float(record["yield_jin"]) if "yield_jin" in record else kg_to_jin(yield_kg)
        mu = float(record["area_mu"]) if "area_mu" in record else ha_to_mu(area_ha)
        per_mu = jin / mu
        if lo * (1 - PLAUSIBLE_SLACK) <= per_mu <= hi * (1 + PLAUSIBLE_SLACK):
            return
        key = "yield_jin" if "yield_jin" in record else "yield_kg"
        area = "the plot's " if plot_area else ""
        raise Rejected("implausible_yield",
                       f"{key} = {record[key]:g} on {area}{mu:.4g} 亩 is a 单产 of {per_mu:,.1f} 斤/亩, outside the "
                       f"plausible {lo:,g}–{hi:,g} 斤/亩 for {crop}", key)

    def _named_village(self, record: dict[str, Any]) -> str | None:
        named = record.get("village")
        if named is None:
            return None
        if (not isinstance(named, str) or len(named) != 12 or not named.isdigit()
                or (self._villages is not None and named not in self._villages)):
            raise Rejected("bad_record", f"village {str(named)[:20]!r} is not a village in the region tree", "village")
        return named


def _reject(out: Decoded, received_ms: int, topic: str, device_id: str, payload: bytes, reason: str,
            detail: str) -> Decoded:
    out.rejections.append(Rejection(received_ms, topic, device_id, reason, detail, excerpt(payload)))
    return out


def _a_year_before(ms: int) -> int:
    """The same calendar instant a year earlier (29 February → 28 February): 366 days across a leap day."""
    dt = datetime.fromtimestamp(ms / 1000, UTC)
    try:
        earlier = dt.replace(year=dt.year - 1)
    except ValueError:
        earlier = dt.replace(year=dt.year - 1, day=28)
    return int(earlier.timestamp() * 1000)


def _number(name: str, value: Any, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Rejected("not_finite", f"{name} = {str(value)[:40]!r} is not a number", name)
    v = float(value)
    if not math.isfinite(v):
        raise Rejected("not_finite", f"{name} = {value!r} is not finite", name)
    if not lo <= v <= hi:
        raise Rejected("out_of_range", f"{name} = {v:g} is outside {lo:g}..{hi:g}", name)
    return v


def _one_of(record: dict[str, Any], cn_key: str, si_key: str, to_si: Any, lo: float, hi: float,
            positive: bool = False) -> float:
    """Exactly one of the 斤/亩 key and the SI key; the value converted to SI and range-checked."""
    has_cn, has_si = cn_key in record, si_key in record
    if has_cn == has_si:
        raise Rejected("bad_record", f"give exactly one of {cn_key} and {si_key}", cn_key)
    key = cn_key if has_cn else si_key
    raw = record[key]
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(float(raw)):
        raise Rejected("not_finite", f"{key} = {str(raw)[:40]!r} is not a finite number", key)
    value = float(to_si(float(raw))) if has_cn else float(raw)
    if value < lo or value > hi or (positive and value <= 0):
        raise Rejected("out_of_range", f"{key} = {raw:g} is outside the valid range", key)
    return value
