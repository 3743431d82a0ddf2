"""MQTT ingest: the paho edge (``mqtt``) feeding a decode → batch → commit → acknowledge pipeline.

``connect`` wires the two for ``nongyun ingest`` and ``nongyun serve``; tests build them the same way.
"""

from __future__ import annotations

from collections.abc import Callable

from ..payloads import PayloadDecoder
from ..settings import Settings
from ..store.base import Store
from .mqtt import MqttIngest, subscriptions
from .pipeline import IngestPipeline, IngestStats, wall_ms

__all__ = ["IngestPipeline", "IngestStats", "MqttIngest", "connect", "subscriptions"]


def connect(settings: Settings, decoder: PayloadDecoder, store: Store, *, worker: str | None = None,
            clock: Callable[[], int] = wall_ms) -> MqttIngest:
    """An ingest worker built from settings; call ``start()`` or ``run_forever()`` on it.

    The worker name (for the store's per-worker counters) defaults to the MQTT client id.
    """
    ingest: MqttIngest | None = None

    def ack(tokens: list[int]) -> None:
        assert ingest is not None  # the pipeline acknowledges only after start(), so it is set
        ingest.ack(tokens)

    v = settings.values
    pipeline = IngestPipeline(
        decoder, store,
        worker=worker or v.mqtt_client_id,
        batch_size=v.ingest_batch_size,
        flush_ms=v.ingest_flush_ms,
        queue_max=v.ingest_queue_max,
        clock=clock,
        ack=ack,
    )
    ingest = MqttIngest(settings, pipeline)
    return ingest
