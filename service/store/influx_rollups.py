"""Hourly rollups of the InfluxDB backend: which hours are dirty, how a query is split, exact merging.

Why: "hourly, one township, last 90 days" reads ~700,000 raw points per metric; the ``_1h`` bucket
holds one point per (device, metric, hour) with count, sum, min and max, so every aggregate of a
group and a window of whole hours follows exactly (mean = Σsum / Σcount, never a mean of means).

Dirty hours live in InfluxDB, not in a process: ingest workers, the jobs runner and the web workers
are different processes. ``write`` adds, in the same request as the raw points and after them, a
``rollup_state`` point per UTC hour of the batch whose ``dirty`` field is a fresh random token;
``refresh`` copies the token it saw into ``rolled`` after rewriting the hour. An hour is rolled up
when the two match, so a write that lands while its hour is being rolled up leaves the tokens
different and the hour is simply done again (no lost update, no clock comparison between hosts).
A restart loses nothing: the state is data.

``readings`` then reads the ``_1h`` bucket for hours whose state matches (or that have no state:
nothing was ever written to them) and raw points for the rest: the range's partial hours at both
edges and the dirty hours. Until the first refresh has marked the hours of data stored before
rollups existed (``rollup_meta``), every query is answered from raw points as before.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from ..times import boundary_gcd, first_instant, local_clock, window_bounds, window_pieces

HOUR_MS = 3_600_000
MAX_RAW_PARTS = 4  # raw queries per readings call at most: near dirty runs merge into one
MAX_HOURS_PER_REFRESH_QUERY = 48  # hours of raw points one downsampling query reads at most


def runs(hours: Iterable[int], max_len: int | None = None) -> list[tuple[int, int]]:
    """Sorted hour starts → [start, end) ranges of contiguous hours, each at most ``max_len`` hours."""
    out: list[tuple[int, int]] = []
    for h in hours:
        if out and out[-1][1] == h and (max_len is None or h - out[-1][0] < max_len * HOUR_MS):
            out[-1] = (out[-1][0], h + HOUR_MS)
        else:
            out.append((h, h + HOUR_MS))
    return out


def whole_hour_windows(tz: ZoneInfo, start: int, end: int, every: int) -> bool:
    """True when every ``every`` window of [start, end) in ``tz`` is a union of whole UTC hours, so
    the hour rollups can fill it: no window boundary inside the range cuts a UTC hour (a zone
    offset of half an hour, or a sub-hour ``every``, does)."""
    if every % HOUR_MS:
        return False
    return boundary_gcd(start, window_pieces(start, end, every, tz), every) % HOUR_MS == 0


def flux_windowing(tz: ZoneInfo, start: int, end: int, every: int) -> tuple[int, str]:
    """The ``every`` and zone to give ``aggregateWindow`` so its windows, keyed back through
    ``times.window_start``, are ours: usually ours as they are.

    Why not always: Flux keeps a window only when some point's wall-clock reading names it
    (``scanWindows``), so a window boundary inside a repeated stretch of wall clock (10-minute
    windows at a fall back) can leave the points of the second pass in no window at all. There,
    finer UTC windows that no boundary cuts (their length divides every boundary) are asked for
    instead, and ``Partials`` merges them into ours."""
    pieces = window_pieces(start, end, every, tz)
    for p in pieces:
        if p.start is None:
            continue  # plain arithmetic: Flux's reading of the clock names the window that holds t
        # A window open before the piece: Flux's wall-clock window of each point must be that one
        # (the offset is constant over the piece, so checking its ends checks it all).
        bounds = window_bounds(p.start, every, tz)
        for t in (p.lo, p.hi - 1):
            wall = local_clock(t, tz) // every * every
            if (first_instant(wall, tz), first_instant(wall + every, tz)) != bounds:
                return boundary_gcd(start, pieces, every), "UTC"
    return every, tz.key


def plan(start: int, end: int, dirty: list[int]) -> list[tuple[str, int, int]]:
    """Cover [start, end) with (source, lo, hi) parts, source ``1h`` or ``raw``: the partial hours
    at both ends and the ``dirty`` hours (sorted) raw, every other whole hour from rollups. At most
    ``MAX_RAW_PARTS`` raw parts: the closest raw runs merge, reading a few clean hours raw."""
    hs, he = -(-start // HOUR_MS) * HOUR_MS, end // HOUR_MS * HOUR_MS
    if hs >= he:
        return [("raw", start, end)]
    raw = [(a, b) for a, b in runs(h for h in dirty if hs <= h < he)]
    if start < hs:
        raw.insert(0, (start, hs))
    if he < end:
        raw.append((he, end))
    merged: list[tuple[int, int]] = []
    for a, b in raw:  # adjacent parts (an edge and a dirty hour next to it) are one range
        if merged and merged[-1][1] == a:
            merged[-1] = (merged[-1][0], b)
        else:
            merged.append((a, b))
    while len(merged) > MAX_RAW_PARTS:
        i = min(range(len(merged) - 1), key=lambda j: merged[j + 1][0] - merged[j][1])
        merged[i:i + 2] = [(merged[i][0], merged[i + 1][1])]
    parts = [("raw", a, b) for a, b in merged]
    at = start
    for a, b in merged:
        if at < a:
            parts.append(("1h", at, a))
        at = b
    if at < end:
        parts.append(("1h", at, end))
    return sorted(parts, key=lambda p: p[1])


# The partial aggregates a raw query of each aggregate is read as (one query each), merged by Partials.
PARTS_OF: dict[str, tuple[str, ...]] = {"mean": ("sum", "count"), "sum": ("sum",), "count": ("count",),
                                        "min": ("min",), "max": ("max",)}


@dataclass
class Partials:
    """Per (group key, window): count, sum, min and max merged across parts, as each query gives them."""

    agg: str
    slots: dict[tuple[str, int], list[float]] = field(default_factory=dict)

    def add(self, key: str, window: int, part: str, value: float) -> None:
        """``part`` is the aggregate ``value`` is: count, sum, min or max (mean arrives as sum + count)."""
        slot = self.slots.setdefault((key, window), [0.0, 0.0, float("inf"), float("-inf")])
        if part == "count":
            slot[0] += value
        elif part == "sum":
            slot[1] += value
        elif part == "min":
            slot[2] = min(slot[2], value)
        elif part == "max":
            slot[3] = max(slot[3], value)
        else:
            raise ValueError(f"unknown partial {part!r}")

    def series(self) -> dict[str, list[tuple[int, float]]]:
        out: dict[str, list[tuple[int, float]]] = {}
        for (key, window), (n, total, lo, hi) in sorted(self.slots.items()):
            if self.agg == "mean":
                if not n:
                    continue
                value = total / n
            else:
                value = {"count": n, "sum": total, "min": lo, "max": hi}[self.agg]
            out.setdefault(key, []).append((window, value))
        return out
