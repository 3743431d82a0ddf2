"""The device side of the MQTT contract (DESIGN.md "MQTT contract (v1)"): topics and payload packing.

Shared by the device client (a backlog after an outage) and the simulator (a backfilled season), so
both send exactly what a field device sends: one JSON record, or a JSON array of records no larger
than the 64 KiB that ingest accepts.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import orjson

MAX_PAYLOAD_BYTES = 64 * 1024


def topic(device: str, kind: str) -> str:
    """``kind`` is telemetry, yield or status."""
    return f"nongyun/v1/{device}/{kind}"


def telemetry_record(ts: int, readings: dict[str, float]) -> bytes:
    return orjson.dumps({"ts": ts, "readings": readings})


def yield_record(record: dict[str, Any]) -> bytes:
    return orjson.dumps(record)


def pack(records: Iterable[bytes], limit: int = MAX_PAYLOAD_BYTES) -> Iterator[bytes]:
    """Encoded records → payloads: a lone record as itself, several as arrays of at most ``limit``
    bytes, in order. A single record over the limit is passed through for ingest to reject."""
    group: list[bytes] = []
    size = 2  # the brackets
    for rec in records:
        if group and size + len(rec) + 1 > limit:
            yield _join(group)
            group, size = [], 2
        group.append(rec)
        size += len(rec) + 1
    if group:
        yield _join(group)


def _join(group: list[bytes]) -> bytes:
    return group[0] if len(group) == 1 else b"[" + b",".join(group) + b"]"
