"""Helpers shared by the jobs, alerts and rollup tests: a controlled clock, an MQTT edge that only
records, a refresh that runs until nothing is dirty, and readings whose means are exact."""

from __future__ import annotations

import random
from typing import Any

import orjson

from service.records import Batch, Reading
from service.store.base import JobsStore

MIN10 = 600_000
V1, V2, V3 = "211204101203", "211204101204", "211204102200"  # two villages of 张相镇, one of 杨木林子镇


class Clock:
    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


class Recorder:
    """The MQTT edge as a test double: records what would be published, acknowledges everything."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

    @property
    def topics(self) -> list[str]:
        return [topic for topic, _ in self.sent]

    def publish(self, topic: str, payload: bytes) -> bool:
        self.sent.append((topic, orjson.loads(payload)))
        return True

    def close(self) -> None:
        pass


def refresh_all(store: JobsStore, per_call: int = 50) -> int:
    """Roll up until nothing is dirty; the windows recomputed in all."""
    done = 0
    for _ in range(1000):
        p = store.refresh_rollups(per_call)
        done += p.windows
        if p.remaining == 0:
            return done
    raise AssertionError("refresh_rollups never finished")


def dyadic_batch(rng: random.Random, start: int, end: int, step: int = MIN10) -> Batch:
    """Values that are multiples of 1/8: every sum is exact in binary floating point, so a mean from
    rollups must equal the mean from raw points bit for bit."""
    stations = [("st-a", V1), ("st-b", V1), ("st-c", V2), ("st-d", V3)]
    return Batch(readings=[Reading(dev, village, ts, {"soil_moisture": rng.randrange(0, 800) / 8,
                                                      "air_temp": rng.randrange(-160, 320) / 8})
                           for ts in range(start, end, step) for dev, village in stations])
