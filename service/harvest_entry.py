"""Harvest records entered by staff, stored by the very rules the MQTT contract applies to scales.

A record the API accepts is exactly one a grain scale could have sent (``service.payloads``), so
both paths store the same things and the dashboards cannot tell them apart except by ``source``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from .context import Context
from .errors import BadInput, Forbidden
from .payloads import PayloadDecoder, Rejected
from .records import SOURCE_STAFF, Batch, YieldRecord, new_record_id
from .store import Store


def record_from_body(ctx: Context, decoder: PayloadDecoder, body: Mapping[str, Any], now: int) -> YieldRecord:
    """A staff record → the stored record, by the MQTT contract's rules; BadInput names the field
    and carries the decoder's rejection reason as its ``code`` (``unknown_plot``, ``plot_mismatch``,
    ``implausible_yield``, ``out_of_range``...), unchanged, so clients switch on it."""
    village = body.get("village")
    if not isinstance(village, str):
        raise BadInput("village: a 12-digit village code is required", "village")
    node = ctx.tree.find(village)
    if node is None or node.level != "village":
        raise BadInput(f"village: {village[:20]!r} is not a village in the region tree", "village")
    try:  # the named village is the record's unless its plot lies elsewhere (plot_mismatch)
        stored = decoder.yield_record(dict(body), "", village, now)
    except Rejected as r:
        prefix = f"{r.field}: " if r.field and not r.detail.startswith(r.field) else ""
        reason = f" ({r.reason})" if r.reason in ("unknown_plot", "plot_mismatch") else ""
        raise BadInput(prefix + r.detail + reason, r.field, r.reason) from None
    return replace(stored, source=SOURCE_STAFF)


def enter(ctx: Context, store: Store, decoder: PayloadDecoder, body: Mapping[str, Any], now: int, scope: str,
          worker: str) -> YieldRecord:
    """Store a staff record as a batch, without id rules or revisions: for stores that keep no
    record revisions. Everything else enters through ``harvest_records.enter``."""
    rec = record_from_body(ctx, decoder, body, now)
    if not rec.village.startswith(scope):
        raise Forbidden(f"village {rec.village} lies outside your scope {scope}")
    rec = replace(rec, id=new_record_id(), updated=now)
    store.write(Batch(yields=[rec], worker=worker))
    return rec
