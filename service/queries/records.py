"""Pages of harvest records, newest first, with an opaque cursor (keyset pagination, never OFFSET).

Why keyset: a village has hundreds of records a season and a district tens of thousands; the
cursor is the last row's (ts, id), so the next page starts where the last one ended in the index
and costs the same however deep it lies, and a record entered meanwhile never shifts a page.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from ..context import Context
from ..errors import BadInput
from ..harvest_records import records_store
from ..records import API_SOURCE, YieldRecord
from ..regions import Region
from ..store import Store
from ..store.base import InRegion, RecordsQuery
from ..times import year_bounds
from .yields import FIRST_YEAR, LAST_YEAR

# The API's source → the stored values it stands for.
SOURCES: dict[str, tuple[str, ...]] = {}
for _stored, _api in API_SOURCE.items():
    SOURCES[_api] = (*SOURCES.get(_api, ()), _stored)


@dataclass(frozen=True)
class RecordsPage:
    region: Region
    within: Region | None  # the caller's scope when the region asked for lies above it
    records: list[YieldRecord]
    next: str | None


def encode_cursor(rec: YieldRecord) -> str:
    return base64.urlsafe_b64encode(f"{rec.ts}.{rec.record_id}".encode()).decode().rstrip("=")


def decode_cursor(text: str) -> tuple[int, str]:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode("ascii")
        ts, _, rid = raw.partition(".")
        if not rid or not ts.lstrip("-").isdigit() or len(ts) > 19:
            raise ValueError(raw)
        return int(ts), rid
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise BadInput("cursor: not a cursor of this API; pass the `next` of the previous page", "cursor") from None


def records_page(ctx: Context, store: Store, *, region: str | None, within: Region | None = None,
                 year: int | None = None, crop: str | None = None, status: str | None = None,
                 source: str | None = None, plot: str | None = None, limit: int = 100,
                 cursor: str | None = None) -> RecordsPage:
    """One page; ``within`` narrows to the caller's scope as ``yield_totals`` does."""
    tz = ctx.settings.tz
    node = ctx.tree.get(region or ctx.tree.district.code)
    start, end = (year_bounds(year, tz) if year is not None
                  else (year_bounds(FIRST_YEAR, tz)[0], year_bounds(LAST_YEAR, tz)[1]))
    q = RecordsQuery(InRegion.of(within or node), start, end, limit + 1, crop, status,
                     SOURCES[source] if source is not None else (), plot,
                     decode_cursor(cursor) if cursor is not None else None)
    found = records_store(store).list_records(q)
    more = len(found) > limit
    found = found[:limit]
    return RecordsPage(node, within, found, encode_cursor(found[-1]) if more and found else None)
