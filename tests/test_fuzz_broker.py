"""Bad input through the real broker never stops ingestion, and every message not taken leaves a reason.

Hypothesis builds topics (contract topics with a fuzzed device segment) and payloads (raw bytes, any
JSON, record-shaped JSON with bad fields, arrays mixing good and bad records, oversized bodies); each
goes through the session's Mosquitto to a running ingest and a real SQLite store, one at a time, so
what the store records can be tied to the message that caused it.
"""

# ruff: noqa: F811  (the store fixture imported from tests/test_ingest.py is a parameter here)

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.context import Context
from service.records import REASONS
from service.store.sqlite import SqliteStore
from service.times import now_ms
from tests.brokers import Mosquitto
from tests.test_ingest import ALL_VILLAGES, Publisher, publisher, running_ingest, store, wait_for  # noqa: F401

KINDS = ("telemetry", "yield", "status")
METRICS = ("soil_moisture", "soil_temp", "air_temp", "air_humidity", "rainfall", "light", "battery")
STATION = "qh-st-101203-1"
DEVICES = (STATION, "qh-st-101200-2", "qh-gs-101", "qh-ym-101202", "qh-st-999999-9")


def _broker_safe(c: str) -> bool:
    """Characters Mosquitto accepts in a topic level: no wildcards or separators (paho refuses those),
    no control characters or Unicode non-characters (Mosquitto drops a client that sends them)."""
    cp = ord(c)
    return c not in "/+#" and not (0xFDD0 <= cp <= 0xFDEF or (cp & 0xFFFE) == 0xFFFE)


odd_segments = st.one_of(
    st.text(st.characters(blacklist_categories=("Cs", "Cc")).filter(_broker_safe), max_size=80),
    st.from_regex(r"[A-Za-z0-9_-]{60,70}", fullmatch=True),
    st.sampled_from(DEVICES),
)
numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**20, 10**20),
    st.floats(-100, 300), st.text(max_size=8), st.none(), st.booleans(),
)
timestamps = st.one_of(
    st.integers(-2**63, 2**63), st.just(now_ms() - 60_000), st.integers(now_ms() - 10**11, now_ms() + 10**9),
    st.text(max_size=30), st.sampled_from(["2026-11-28T08:00:00+08:00", "2026-11-28T08:00:00", "yesterday"]),
    st.floats(allow_nan=True), st.none(),
)
plausible_ts = st.integers(now_ms() - 86_400_000, now_ms())
plausible = st.one_of(st.floats(-60, 110), st.integers(0, 100), st.sampled_from([float("nan"), 1e6, -41.0]))
good_ish = st.fixed_dictionaries(  # valid more often than not: reaches the range and time checks
    {"ts": st.one_of(plausible_ts, plausible_ts.map(lambda t: t + 400_000), plausible_ts.map(lambda t: t - 4 * 10**10)),
     "readings": st.dictionaries(st.sampled_from(METRICS), plausible, min_size=1, max_size=4)},
)
good_harvest = st.fixed_dictionaries(
    {"ts": plausible_ts, "crop": st.sampled_from(["corn", "rice", "soybean", "tea"]),
     "area_mu": st.floats(-1, 500), "yield_jin": st.floats(-1, 10**6)},
)
readings = st.dictionaries(st.one_of(st.sampled_from(METRICS), st.text(max_size=12)), numbers, max_size=5)
telemetry = st.fixed_dictionaries({"ts": timestamps, "readings": st.one_of(readings, numbers)},
                                  optional={"device": st.sampled_from([STATION, "other"])})
harvest = st.fixed_dictionaries(
    {"ts": timestamps, "crop": st.one_of(st.sampled_from(["corn", "rice", "tea", ""]), numbers)},
    optional={"area_mu": numbers, "area_ha": numbers, "yield_jin": numbers, "yield_kg": numbers,
              "plot": st.one_of(st.text(max_size=10), numbers), "moisture_pct": numbers},
)
json_values = st.recursive(st.one_of(st.none(), st.booleans(), st.floats(allow_nan=False), st.integers(),
                                     st.text(max_size=10)),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner,
                                                                                     max_size=4),
                           max_leaves=12)


def _dump(doc: Any) -> bytes:
    """JSON as a careless device writes it: NaN and Infinity tokens left in (not JSON)."""
    return json.dumps(doc, allow_nan=True, default=str).encode()


any_payload = st.one_of(
    st.binary(max_size=200),
    json_values.map(_dump),
    telemetry.map(_dump),
    harvest.map(_dump),
    st.lists(st.one_of(telemetry, harvest, json_values), min_size=0, max_size=6).map(_dump),
    st.sampled_from([b"online", b"offline", b'"online"', b"OFFLINE ", b"", b"[]", b"{}", b"null",
                     b"\xff\xfe", b'{"ts": 1, "readings": {}}', b"x" * (64 * 1024 + 1),
                     b"[" + b",".join([b'{"ts":%d,"readings":{"air_temp":1}}' % now_ms()] * 3000) + b"]"]),
)


@st.composite
def messages(draw: st.DrawFn) -> tuple[str, bytes]:
    """Mostly a registered device on its own topic with a plausible or nearly plausible body, so the
    fuzz reaches the record checks; the rest anything at all (hypothesis draws branches evenly, so
    the weights are explicit)."""
    roll = draw(st.integers(0, 99))
    if roll < 35:
        body = draw(st.one_of(good_ish, st.lists(good_ish, min_size=1, max_size=5)))
        return f"nongyun/v1/{draw(st.sampled_from(DEVICES[:2]))}/telemetry", _dump(body)
    if roll < 50:
        body = draw(st.one_of(good_harvest, st.lists(good_harvest, min_size=1, max_size=3)))
        return f"nongyun/v1/{draw(st.sampled_from(DEVICES[2:4]))}/yield", _dump(body)
    if roll < 70:
        return f"nongyun/v1/{draw(st.sampled_from(DEVICES))}/{draw(st.sampled_from(KINDS))}", draw(any_payload)
    return f"nongyun/v1/{draw(odd_segments)}/{draw(st.sampled_from(KINDS))}", draw(any_payload)


def test_fuzzed_topics_and_payloads_never_stop_ingestion_and_every_refusal_has_a_reason(
        ctx: Context, mosquitto: Mosquitto, store: SqliteStore, publisher: Publisher) -> None:
    outcomes: Counter[str] = Counter()  # accepted / rejected / partly, per message
    reasons: Counter[str] = Counter()  # of the stored samples (rate-limited per device)
    counted: Counter[str] = Counter()  # of the exact counters
    sent = 0
    with running_ingest(ctx, mosquitto, store) as ingest:

        @settings(max_examples=400, deadline=None, database=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
        @given(message=messages())
        def one_message(message: tuple[str, bytes]) -> None:
            nonlocal sent
            topic, payload = message
            before = ingest.pipeline.stats()
            stored_before = store.counters()
            samples_before = set(store.rejections(limit=50))
            publisher.send(topic, payload)
            publisher.flush()
            sent += 1
            wait_for(lambda: (s := ingest.pipeline.stats()).received > before.received and s.pending == 0,
                     timeout=15, what=f"message {sent} on {topic!r} settled")
            after = ingest.pipeline.stats()
            assert after.received == before.received + 1
            assert after.state == "running" and ingest.connected
            accepted = after.accepted - before.accepted
            rejected = sum(after.rejected.values()) - sum(before.rejected.values())
            assert accepted + rejected >= 1, "a message left neither a record nor a rejection"
            stored_after = store.counters()
            assert sum(stored_after.rejected.values()) - sum(stored_before.rejected.values()) == rejected
            counted.update({k: v - before.rejected.get(k, 0) for k, v in after.rejected.items()})
            if rejected:
                # Counts are exact; stored samples are rate-limited per device (rejection_limits), so
                # a message may leave fewer samples than rejections, but each new one is about it.
                fresh = [r for r in store.rejections(limit=rejected) if r not in samples_before]
                assert len(fresh) <= rejected
                for r in fresh:
                    assert r.topic == topic and r.reason in REASONS and r.detail, r
                    reasons[r.reason] += 1
            outcomes["accepted" if not rejected else "rejected" if not accepted else "partly"] += 1

        one_message()

        # ingestion goes on: a good reading after the fuzz is stored
        ts = now_ms() - 1000
        publisher.send(f"nongyun/v1/{STATION}/telemetry", {"ts": ts, "readings": {"soil_ph": 6.5}})
        publisher.flush()
        wait_for(lambda: store.latest(ALL_VILLAGES, 0).get(STATION) is not None
                 and store.latest(ALL_VILLAGES, 0)[STATION].values.get("soil_ph") == (ts, 6.5),
                 what="the reading after the fuzz stored")
        # the store shows the commit a moment before the pipeline's own bookkeeping does
        wait_for(lambda: ingest.pipeline.stats().pending == 0, what="the pipeline settled")
        final = ingest.pipeline.stats()
    not_accepted = outcomes["rejected"]
    recorded = sum(store.counters().rejected.values())
    print(f"\nfuzz: {sent} messages, {outcomes['accepted']} accepted whole, {outcomes['partly']} partly, "
          f"{not_accepted} not accepted; {recorded} rejections recorded: {dict(counted.most_common())}")
    assert final.received == sent + 1 and final.dropped == 0
    assert recorded == sum(counted.values()) == sum(final.rejected.values())
    assert 0 < sum(reasons.values()) <= recorded and set(reasons) <= set(counted)  # samples: a bounded subset
    assert not_accepted + outcomes["partly"] <= recorded  # each refused message left at least one reason
    assert final.lag_ms == 0 and final.state == "running"
