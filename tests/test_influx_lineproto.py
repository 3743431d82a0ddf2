"""Line protocol both ways: our encoder against the fake's strict parser, and that parser against the
client's own ``Point`` encoder (an independent reference), with property tests over arbitrary text."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from influxdb_client.client.write.point import Point as _Point
from influxdb_client.domain.write_precision import WritePrecision

from service.records import Reading, Rejection, StatusChange, YieldRecord
from service.store import lineproto
from tests.fake_influx import LineError, ParsedPoint, parse_line

NS = 1
Point: Any = _Point  # the client's encoder is untyped
texts = st.text(max_size=40)
nonempty = st.text(min_size=1, max_size=40)
finite = st.floats(allow_nan=False, allow_infinity=False)
villages = st.from_regex(r"\A2112041\d{5}\Z")
ms = st.integers(min_value=946_684_800_000, max_value=4_102_444_799_999)


def parse(line: str) -> ParsedPoint:
    return parse_line(line, NS, 0)


def decoded_tags(p: ParsedPoint) -> dict[str, str]:
    return {lineproto.dec(k): lineproto.dec(v) for k, v in p.tags}


@settings(max_examples=200, deadline=None)
@given(device=nonempty, village=villages, ts=ms,
       values=st.dictionaries(nonempty, finite, min_size=1, max_size=4))
def test_readings_round_trip_through_the_server_parser(device: str, village: str, ts: int,
                                                       values: dict[str, float]) -> None:
    p = parse(lineproto.reading_line(Reading(device, village, ts, values)))
    assert p.measurement == "telemetry"
    assert decoded_tags(p) == {"device": device, "district": village[:6], "township": village[:9], "village": village}
    assert {lineproto.dec(k): v for k, v in p.fields.items()} == {k: ("float", v) for k, v in values.items()}
    assert p.time_ns == ts * 1_000_000


@settings(max_examples=200, deadline=None)
@given(device=texts, village=villages, ts=ms, crop=nonempty, plot=texts, area=finite, kg=finite,
       moisture=st.none() | finite, source=texts)
def test_yields_round_trip(device: str, village: str, ts: int, crop: str, plot: str, area: float, kg: float,
                           moisture: float | None, source: str) -> None:
    p = parse(lineproto.yield_line(YieldRecord(device, village, ts, crop, area, kg, plot, moisture, source)))
    tags = decoded_tags(p)
    assert tags.get("device", "") == device and tags.get("plot", "") == plot and tags["crop"] == crop
    fields = {k: v for k, (_, v) in p.fields.items()}
    assert fields["area_ha"] == area and fields["yield_kg"] == kg and fields.get("moisture_pct") == moisture
    assert lineproto.dec(fields["source"]) == source
    rec = YieldRecord(device, village, ts, crop, area, kg, plot, moisture, source)
    assert (tags["entry"], tags["status"]) == (rec.record_id, "submitted")  # a correction deletes by entry
    # every field keeps one type forever (revision and updated are floats, as every number written)
    types = {k: t for k, (t, _) in p.fields.items()}
    assert types.pop("moisture_pct", "float") == "float"
    assert types == {"area_ha": "float", "yield_kg": "float", "source": "string", "entered_by": "string",
                     "revision": "float", "updated": "float"}


@settings(max_examples=200, deadline=None)
@given(ts=ms, topic=texts, device=texts, reason=nonempty, detail=texts, payload=texts, seq=st.integers(0, 999_999))
def test_rejections_round_trip(ts: int, topic: str, device: str, reason: str, detail: str, payload: str,
                               seq: int) -> None:
    p = parse(lineproto.rejection_line(Rejection(ts, topic, device, reason, detail, payload), seq))
    tags = decoded_tags(p)
    assert tags.get("device", "") == device and tags["reason"] == reason
    assert {k: lineproto.dec(v) for k, (_, v) in p.fields.items()} == {"topic": topic, "detail": detail,
                                                                        "payload": payload}
    assert p.time_ns // 1_000_000 == ts


@given(device=nonempty, village=villages, ts=ms, online=st.booleans())
def test_status_round_trips_with_a_float_field(device: str, village: str, ts: int, online: bool) -> None:
    p = parse(lineproto.status_line(StatusChange(device, ts, online, village)))
    assert p.fields == {"online": ("float", 1.0 if online else 0.0), "village": ("string", village)}


@given(st.text())
def test_enc_is_reversible_and_leaves_no_newline_or_backslash(text: str) -> None:
    e = lineproto.enc(text)
    assert lineproto.dec(e) == text
    assert not set(e) & {"\n", "\r", "\\"}


# The fake's parser against the client's own encoder. The client escapes but does not make
# newlines or a trailing backslash safe, so those are left out of this alphabet.
safe = st.text(st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\\"), min_size=1, max_size=20)
keys = safe.filter(lambda k: not k.startswith("_"))


@settings(max_examples=200, deadline=None)
@given(measurement=keys.filter(lambda m: not m.startswith("#")),  # a '#' line is a comment to the server
       tags=st.dictionaries(keys, safe, max_size=3),
       fields=st.dictionaries(keys, finite | st.integers(-(2**63), 2**63 - 1) | st.booleans() | safe,
                              min_size=1, max_size=4),
       ts=st.integers(0, 2**62))
def test_the_fake_parses_what_the_client_writes(measurement: str, tags: dict[str, str], fields: dict[str, object],
                                                 ts: int) -> None:
    point: Any = Point(measurement)
    for k, v in tags.items():
        point.tag(k, v)
    for k, fv in fields.items():
        point.field(k, fv)
    point.time(ts, WritePrecision.NS)
    p = parse(point.to_line_protocol())
    assert p.measurement == measurement and dict(p.tags) == tags and p.time_ns == ts
    expected = {k: ("boolean" if isinstance(v, bool) else "integer" if isinstance(v, int) else
                    "float" if isinstance(v, float) else "string", v) for k, v in fields.items()}
    assert p.fields == expected


@pytest.mark.parametrize(("line", "reason"), [
    ("invalid", "missing fields"),
    ("m v=", "missing field value"),
    ("m v=tru", "invalid boolean"),
    ("m v=1x", "invalid number"),
    ("m v=NaN", "invalid field format"),
    ("m,t v=1", "missing tag value"),
    ("m,t= v=1", "missing tag value"),
    ('m s="abc', "unbalanced quotes"),
    ("m v=1 12a", "bad timestamp"),
    (",t=a v=1", "missing measurement"),
    ("m v", "invalid field format"),
    ("m v=1,", "missing fields"),
])
def test_the_fake_refuses_malformed_lines_with_the_servers_reason(line: str, reason: str) -> None:
    with pytest.raises(LineError, match=f"^{reason}$"):
        parse(line)


def test_precision_and_missing_timestamp() -> None:
    assert parse_line("m v=1 5", 1_000_000, 0).time_ns == 5_000_000
    assert parse_line("m v=1", 1_000_000_000, 7_300_000_000).time_ns == 7_000_000_000
    assert parse("m v=1i,u=2u,b=T,s=\"a\\\"b\\\\\"").fields == {
        "v": ("integer", 1), "u": ("unsigned", 2), "b": ("boolean", True), "s": ("string", 'a"b\\')}
