"""Harvest records in the InfluxDB backend: a record is its ``yield`` point, tagged with its id
(``entry``) and ``status``; its revisions are points of ``yield_revision`` keyed by the same id.

Why a correction deletes: a point is (measurement, tags, time), so a record whose time, village,
crop, plot or status changes becomes a point of another series, and the old one must go or it
keeps counting. The new point is written first, then the old one deleted through
``POST /api/v2/delete`` with a predicate naming its id — and, where the new point shares its time,
a tag whose old value differs (status, village, crop, plot) so the new point is left alone. The
delete predicate language has only ``=`` and ``AND`` (no OR, no !=, no regex, no _field), which
is all this needs. When nothing of the series key changes, writing the point again replaces it and
no delete is sent. A record whose only change is a plot added at the same time (no tag value to
tell the two points apart) is deleted first, then written.

Known limit: a device's redelivery of a message whose record was since corrected to another time
or tags writes its original point again beside the correction (InfluxDB cannot refuse a write);
``get`` then answers the highest revision. The embedded store refuses such a resend.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from ..errors import Conflict
from ..records import Revision, YieldRecord
from . import flux, lineproto
from .base import RecordsQuery

Row = dict[str, Any]
Query = Callable[[str, dict[str, object]], list[Row]]
Post = Callable[[list[str]], None]
Delete = Callable[[int, int, str], None]  # start ms, stop ms (both inclusive), predicate


def _text(rec: Row, name: str) -> str:
    value = rec.get(name)
    return lineproto.dec(value) if isinstance(value, str) else ""


def record_of(rec: Row) -> YieldRecord:
    moisture = rec.get("moisture_pct")
    ts = flux.time_ms(rec["_time"])
    return YieldRecord(
        device=_text(rec, "device"), village=_text(rec, "village"), ts=ts, crop=_text(rec, "crop"),
        area_ha=float(rec.get("area_ha") or 0.0), yield_kg=float(rec.get("yield_kg") or 0.0),
        plot=_text(rec, "plot"), moisture_pct=None if moisture is None else float(moisture),
        source=_text(rec, "source") or "mqtt", id=_text(rec, "entry"), status=_text(rec, "status") or "submitted",
        entered_by=_text(rec, "entered_by"), revision=int(rec.get("revision") or 1),
        updated=int(rec.get("updated") or ts))


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def delete_plan(old: YieldRecord, new: YieldRecord) -> tuple[str | None, bool]:
    """(predicate deleting ``old``'s point or None when the write replaces it, delete first?)."""
    base = f'_measurement="yield" AND entry={_quoted(old.record_id)}'
    if old.ts != new.ts:
        return base, False  # a 1 ms range at old.ts holds no new point
    same_key = (old.status, old.village, old.crop, old.plot, old.device) == (
        new.status, new.village, new.crop, new.plot, new.device)
    if same_key:
        return None, False
    for name, before, after in (("status", old.status, new.status), ("village", old.village, new.village),
                                ("crop", old.crop, new.crop), ("plot", old.plot, new.plot)):
        if before and before != after:
            return f"{base} AND {name}={_quoted(lineproto.enc(before))}", False
    return base, True


class InfluxRecords:
    def __init__(self, query: Query, post: Post, delete: Delete) -> None:
        self._query, self._post, self._delete = query, post, delete

    def listing(self, q: RecordsQuery) -> list[YieldRecord]:
        if q.start >= q.end or q.limit <= 0:
            return []
        sources = [*q.sources, "", ""][:2]
        after_ts, after_id = q.after if q.after is not None else (0, "")
        params: dict[str, object] = {
            "_start": flux.ms_time(q.start), "_stop": flux.ms_time(q.end), "_limit": int(q.limit),
            **flux.region_params(q.region),
            "_byCrop": q.crop is not None, "_crop": lineproto.enc(q.crop or ""),
            "_byStatus": q.status is not None, "_status": q.status or "",
            "_byPlot": q.plot is not None, "_plot": lineproto.enc(q.plot or ""),
            "_bySource": bool(q.sources), "_source1": sources[0], "_source2": sources[1] or sources[0],
            "_byAfter": q.after is not None, "_afterTime": flux.ms_time(after_ts), "_afterEntry": after_id,
        }
        return [record_of(r) for r in self._query(f"records_page@{q.region.tier}", params)]

    def get(self, record_id: str) -> YieldRecord | None:
        rows = self._query("record_by_id", {"_start": flux.EPOCH, "_stop": flux.FAR_FUTURE, "_entry": record_id})
        found = [record_of(r) for r in rows]
        return max(found, key=lambda r: (r.revision, r.updated)) if found else None

    def history(self, record_id: str) -> list[Revision]:
        rows = self._query("record_revisions", {"_start": flux.EPOCH, "_stop": flux.FAR_FUTURE,
                                                "_entry": record_id})
        return [Revision(record_id, int(r["revision"]), int(r["at"]), _text(r, "by"), _text(r, "reason"),
                         orjson.loads(_text(r, "changes") or "{}"), _text(r, "status")) for r in rows]

    def save(self, items: list[tuple[YieldRecord, Revision, YieldRecord | None]]) -> None:
        """New entries in one write (their ids are fresh random ones: no read to check them, so an import
        of 10,000 rows is one request); each change of a stored record on its own (check, write, delete)."""
        fresh = [(rec, rev) for rec, rev, replaces in items if replaces is None]
        if fresh:
            self._post([line for rec, rev in fresh
                        for line in (lineproto.yield_line(rec), lineproto.revision_line(rev))])
        for rec, rev, replaces in items:
            if replaces is not None:
                self._change(rec, rev, replaces)

    def _change(self, rec: YieldRecord, rev: Revision, old: YieldRecord) -> None:
        stored = self.get(old.record_id)
        if stored is None or stored.revision != old.revision:
            raise Conflict(f"record {old.record_id} was changed meanwhile; reload it / 记录已被他人修改，请刷新",
                           "changed", old.record_id)
        predicate, first = delete_plan(stored, rec)
        if predicate is not None and first:
            self._delete(stored.ts, stored.ts, predicate)
        self._post([lineproto.yield_line(rec), lineproto.revision_line(rev)])
        if predicate is not None and not first:
            self._delete(stored.ts, stored.ts, predicate)
