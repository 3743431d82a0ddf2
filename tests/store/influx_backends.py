"""The two InfluxDB backends of the store contract suite: the fake server, and a real InfluxDB 2."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from influxdb_client.client.influxdb_client import InfluxDBClient

from service.store.influx import DOWNSAMPLED_SUFFIX, InfluxStore
from tests.fake_influx import FakeInflux

FAKE_BUCKET = "nongyun"


def fake_influx_store(fake: FakeInflux, **kwargs: object) -> InfluxStore:
    """An InfluxStore against ``fake`` with short retry delays (tests wait on retries, not minutes)."""
    options: dict[str, object] = {"retry_interval_ms": 50, "max_retries": 3, "max_retry_time_ms": 10_000,
                                  "timeout_ms": 5_000, **kwargs}
    return InfluxStore(fake.url, fake.token, next(iter(fake.orgs)), FAKE_BUCKET, **options)  # type: ignore[arg-type]


@contextmanager
def fake_store(tmp_path: Path, tz: str = "Asia/Shanghai") -> Iterator[InfluxStore]:
    """The fake starts without the bucket: the store's bootstrap creates it, as on a fresh server."""
    fake = FakeInflux().start()
    store = fake_influx_store(fake)
    try:
        yield store
    finally:
        try:
            store.close()
        finally:
            fake.stop()


@contextmanager
def real_store(tmp_path: Path, tz: str = "Asia/Shanghai") -> Iterator[InfluxStore]:
    """A fresh bucket per test on the server of INFLUXDB_V2_URL/TOKEN/ORG, deleted afterwards."""
    url, token, org = (os.environ.get(k, "") for k in ("INFLUXDB_V2_URL", "INFLUXDB_V2_TOKEN", "INFLUXDB_V2_ORG"))
    bucket = f"nongyun_test_{uuid.uuid4().hex[:12]}"
    store = InfluxStore(url, token, org, bucket, retry_interval_ms=200, max_retries=3, max_retry_time_ms=10_000)
    try:
        yield store
    finally:
        store.close()
        with InfluxDBClient(url=url, token=token, org=org) as client:
            api = client.buckets_api()
            for name in (bucket, bucket + DOWNSAMPLED_SUFFIX):
                with suppress(Exception):
                    found = api.find_bucket_by_name(name)
                    if found is not None:
                        api.delete_bucket(found)
