"""The influxdb backend's write path against the fake server's faults: nothing lost, nothing retried forever."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Iterator

import pytest

from service.errors import StoreRejected, StoreUnavailable
from service.records import Batch, Reading, Rejection
from service.store.influx import InfluxStore
from tests.fake_influx import FakeInflux
from tests.store.influx_backends import FAKE_BUCKET, fake_influx_store

V1 = "211204101203"
T0 = 1_777_593_600_000  # 2026-05-01T00:00:00Z


@pytest.fixture
def store(fake: FakeInflux) -> Iterator[InfluxStore]:
    s = fake_influx_store(fake)
    s.counters()  # first use bootstraps the bucket, so tests start from a ready store
    yield s
    s.close()


def batch(n: int = 1, value: float = 20.0, **kw: object) -> Batch:
    readings = [Reading("st-a", V1, T0 + i * 1000, {"soil_moisture": value + i}) for i in range(n)]
    return Batch(readings=readings, **kw)  # type: ignore[arg-type]


def stored(fake: FakeInflux) -> list[float]:
    return sorted(r.value for r in fake.points(FAKE_BUCKET, "telemetry"))


def post_lines(fake: FakeInflux, body: str) -> int:
    req = urllib.request.Request(f"{fake.url}/api/v2/write?org=nongyun-org&bucket={FAKE_BUCKET}&precision=ns",
                                 data=body.encode(), headers={"Authorization": f"Token {fake.token}"})
    try:
        with urllib.request.urlopen(req) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_bootstrap_creates_the_bucket_and_its_hourly_sibling(fake: FakeInflux, store: InfluxStore) -> None:
    assert set(fake.buckets) == {"nongyun", "nongyun_1h"}
    again = fake_influx_store(fake)  # a second worker finds them and creates nothing
    again.counters()
    again.close()
    assert set(fake.buckets) == {"nongyun", "nongyun_1h"}


def test_503_with_retry_after_then_204_loses_nothing_and_counts_a_retry(fake: FakeInflux, store: InfluxStore) -> None:
    fake.fail_writes(503, retry_after="1")
    attempts = fake.write_attempts
    started = time.monotonic()
    store.write(batch(3, messages=1, worker="w1"))
    elapsed = time.monotonic() - started
    assert fake.write_attempts - attempts == 2
    assert store.stats.retries == 1
    assert elapsed >= 0.9, "Retry-After: 1 was not honoured (the store's own retry interval is 50 ms)"
    assert stored(fake) == [20.0, 21.0, 22.0]
    assert store.counters().received == 1


def test_429_with_retry_after_is_retried_too(fake: FakeInflux, store: InfluxStore) -> None:
    fake.fail_writes(429, retry_after="0")  # Retry-After is whole seconds
    store.write(batch())
    assert store.stats.retries == 1
    assert stored(fake) == [20.0]


def test_a_real_field_type_conflict_is_rejected_with_its_reason_and_not_retried(
        fake: FakeInflux, store: InfluxStore) -> None:
    # Someone else wrote soil_moisture as an integer: every float write of it now conflicts.
    assert post_lines(fake, f"telemetry,device=x,district=211204,township=211204101,village={V1} "
                            "soil_moisture=1i 1") == 204
    attempts = fake.write_attempts
    with pytest.raises(StoreRejected) as info:
        store.write(batch())
    assert info.value.reason == "store_rejected"
    assert ('field type conflict: input field "soil_moisture" on measurement "telemetry" is type float, '
            'already exists as type integer') in str(info.value)
    assert fake.write_attempts - attempts == 1
    assert store.stats.retries == 0


@pytest.mark.parametrize("status", [400, 422])
def test_content_errors_are_rejected_at_once(fake: FakeInflux, store: InfluxStore, status: int) -> None:
    fake.fail_writes(status, times=5)
    attempts = fake.write_attempts
    with pytest.raises(StoreRejected):
        store.write(batch())
    assert fake.write_attempts - attempts == 1


def test_unavailable_after_every_retry_keeps_the_batch_for_the_caller(fake: FakeInflux, store: InfluxStore) -> None:
    fake.fail_writes(503, times=4, retry_after="0")
    attempts = fake.write_attempts
    b = batch(2, messages=2, worker="w1")
    with pytest.raises(StoreUnavailable) as info:
        store.write(b)
    assert fake.write_attempts - attempts == 4  # one attempt and max_retries=3 retries
    assert store.stats.retries == 3
    assert stored(fake) == []
    store.write(b)  # the caller retries the same batch later: stored once, counted once
    assert stored(fake) == [20.0, 21.0]
    counters = store.counters()
    assert (counters.received, counters.accepted) == (2, 2)
    assert "503" in str(info.value)


def test_unauthorized_is_unavailable_not_retried_and_not_dropped(fake: FakeInflux, store: InfluxStore) -> None:
    fake.fail_writes(401)
    attempts = fake.write_attempts
    with pytest.raises(StoreUnavailable, match="401"):
        store.write(batch())
    assert fake.write_attempts - attempts == 1


def test_a_wrong_token_fails_bootstrap_as_unavailable(fake: FakeInflux) -> None:
    s = InfluxStore(fake.url, "wrong", "nongyun-org", FAKE_BUCKET, max_retries=0)
    try:
        with pytest.raises(StoreUnavailable, match="unauthorized access"):
            s.write(batch())
        with pytest.raises(StoreUnavailable):
            s.counters()
    finally:
        s.close()


def test_413_splits_the_request_until_it_fits(fake: FakeInflux, store: InfluxStore) -> None:
    fake.max_body_bytes = 400  # each line is ~120 bytes
    store.write(batch(8, messages=1))
    assert stored(fake) == [20.0 + i for i in range(8)]
    assert store.stats.splits >= 3


def test_a_single_line_over_the_limit_is_rejected(fake: FakeInflux, store: InfluxStore) -> None:
    fake.max_body_bytes = 400
    with pytest.raises(StoreRejected, match="413"):
        store.write(Batch(rejections=[Rejection(T0, "t", "d", "bad_json", "detail", "x" * 1000)]))


def test_requests_hold_at_most_batch_size_lines(fake: FakeInflux) -> None:
    s = fake_influx_store(fake, batch_size=3)
    try:
        s.write(batch(7))
    finally:
        s.close()
    assert fake.writes_ok == 3  # 7 readings + 1 counter line = 8 lines → 3 + 3 + 2
    assert len(stored(fake)) == 7


def test_non_finite_values_are_rejected_before_sending(fake: FakeInflux, store: InfluxStore) -> None:
    attempts = fake.write_attempts
    with pytest.raises(StoreRejected):
        store.write(Batch(readings=[Reading("st-a", V1, T0, {"soil_moisture": float("nan")})]))
    assert fake.write_attempts == attempts


def test_server_gone_is_unavailable_and_ping_reports_without_raising(fake: FakeInflux) -> None:
    s = fake_influx_store(fake, max_retries=1, retry_interval_ms=10)
    s.counters()
    assert s.ping()["ok"] is True
    fake.healthy = False
    assert s.ping()["ok"] is False
    fake.stop()
    try:
        with pytest.raises(StoreUnavailable):
            s.write(batch())
        with pytest.raises(StoreUnavailable):
            s.counters()
        health = s.ping()
        assert health["ok"] is False and health["error"]
    finally:
        s.close()
