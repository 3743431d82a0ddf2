"""Time on the wire and on the calendar.

Points are stored as UTC epoch milliseconds. Devices send RFC 3339 with an explicit offset or epoch
milliseconds; a time without an offset is ambiguous and refused. Calendar boundaries (days, years,
daily windows) are local to the configured zone: a harvest weighed at 00:30 on 1 January in
Beijing belongs to the new year even though it is still 31 December in UTC.

Windows (``every``) follow the rule of Flux's ``aggregateWindow(location: timezone.location(...))``
(flux interval/window.go ``NewWindowInLocation``, internal/zoneinfo ``ToLocalClock``, and the cases
of its ``TestWindow_GetLatestBounds_InLocation``), so the embedded store and InfluxDB answer alike
in every IANA zone, daylight saving time included:

1. Windows are cut on the zone's wall clock, counted from 1970-01-01T00:00 wall-clock time: the
   wall-clock starts are the multiples of ``every``. Whole-day windows therefore start at a local
   midnight, ``1w`` (= ``7d``) at midnight on a Thursday (the epoch's weekday, as Flux documents for
   weeks), ``6h`` windows at 00:00, 06:00, 12:00 and 18:00.
2. A wall-clock start becomes an instant as the first instant the clock reaches it: a start the
   clock skips (spring forward) is the instant of the jump, one it shows twice (fall back) its first
   occurrence.
3. A window is [its start, the next window's start) in absolute time, and a sample belongs to the
   window that holds it: windows never overlap and leave no gap; one the clock skips whole is empty
   and never reported.

So a local day lasts 23, 24 or 25 hours (23.5 or 24.5 at Australia/Lord_Howe) and starts at 01:00
where midnight itself is skipped (America/Santiago in September). Windows shorter than a day keep
their wall-clock length, not their absolute one: on 25 October 2026 in Europe/Berlin the hourly
window of 02:00 lasts two hours (02:00 CEST to 03:00 CET) and the 00:00 6h window seven; on
29 March there is no 02:00 window and the 00:00 6h window lasts five hours.

Where Flux alone would differ: it keeps a window only when some point of the series reads, on the
clock, a time inside it (``scanWindows`` in stdlib/universe/aggregate_window.go), then fills it by its
bounds. When a boundary falls inside a repeated stretch of wall clock (10-minute windows at a
one-hour fall back), a point of the second pass reads the time of a window that ended in the first
pass, so if nothing else names the window that holds it, Flux drops it. Rule 3 keeps it; the
InfluxDB backend asks Flux for finer UTC windows there (``influx_rollups.flux_windowing``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from itertools import pairwise
from zoneinfo import ZoneInfo

# RFC 3339 date-time: full date, 'T' (or space, as the RFC's note allows), time with optional
# fraction, and a mandatory offset. fromisoformat alone would accept dates without times and
# times without offsets.
_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$"
)
_DURATION = re.compile(r"^([1-9]\d{0,5})(s|m|h|d|w)$")
_UNIT_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 7 * 86_400_000}
DAY_MS = 86_400_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NAIVE_EPOCH = datetime(1970, 1, 1)
_SAMPLE_MS = DAY_MS // 4

# Epoch milliseconds accepted from devices: 2000-01-01 .. 2100-01-01. Anything else is a unit mistake
# (seconds or microseconds) rather than a real time.
MIN_EPOCH_MS = 946_684_800_000
MAX_EPOCH_MS = 4_102_444_800_000


class TimeFormatError(ValueError):
    """A timestamp or duration that cannot be read."""


def parse_rfc3339(text: str) -> int:
    """RFC 3339 with offset → UTC epoch milliseconds (sub-millisecond digits truncated)."""
    if not _RFC3339.match(text):
        raise TimeFormatError(f"{text!r} is not RFC 3339 with an offset (e.g. 2026-05-01T08:00:00+08:00)")
    main, frac = text, ""
    m = re.search(r"\.(\d+)", text)
    if m:
        frac = m.group(1)
        main = text[: m.start()] + text[m.end():]
    try:
        dt = datetime.fromisoformat(main.replace("z", "Z").replace("t", "T"))
    except ValueError as exc:
        raise TimeFormatError(f"{text!r}: {exc}") from None
    ms = int(dt.timestamp()) * 1000 + int((frac + "000")[:3]) if frac else int(dt.timestamp()) * 1000
    return ms


def parse_ts(value: object) -> int:
    """A device timestamp: RFC 3339 string with offset, or integer epoch milliseconds."""
    if isinstance(value, bool):
        raise TimeFormatError("a boolean is not a time")
    if isinstance(value, int):
        if not MIN_EPOCH_MS <= value < MAX_EPOCH_MS:
            raise TimeFormatError(f"{value} is not epoch milliseconds between 2000 and 2100")
        return value
    if isinstance(value, str):
        return parse_rfc3339(value)
    raise TimeFormatError(f"ts must be an RFC 3339 string or integer epoch milliseconds, not {type(value).__name__}")


def format_local(ms: int, tz: ZoneInfo) -> str:
    """RFC 3339 in the configured zone, second precision unless the time has milliseconds."""
    dt = datetime.fromtimestamp(ms / 1000, tz)
    return dt.isoformat(timespec="milliseconds" if ms % 1000 else "seconds")


def parse_duration(text: str) -> int:
    """``10m``, ``1h``, ``1d``, ``1w`` → milliseconds."""
    m = _DURATION.match(text)
    if not m:
        raise TimeFormatError(f"{text!r} is not a duration like 10m, 1h or 1d")
    return int(m.group(1)) * _UNIT_MS[m.group(2)]


def year_bounds(year: int, tz: ZoneInfo) -> tuple[int, int]:
    """[start, end) of a local calendar year in UTC epoch milliseconds."""
    start = datetime(year, 1, 1, tzinfo=tz)
    end = datetime(year + 1, 1, 1, tzinfo=tz)
    return int(start.timestamp() * 1000), int(end.timestamp() * 1000)


def local_year(ms: int, tz: ZoneInfo) -> int:
    return datetime.fromtimestamp(ms / 1000, tz).year


def local_date(ms: int, tz: ZoneInfo) -> date:
    return datetime.fromtimestamp(ms / 1000, tz).date()


def utc_offset_ms(ms: int, tz: ZoneInfo) -> int:
    off = (_EPOCH + timedelta(milliseconds=ms)).astimezone(tz).utcoffset() or timedelta(0)
    return off // timedelta(milliseconds=1)


def local_clock(ms: int, tz: ZoneInfo) -> int:
    """The wall-clock reading at ``ms`` as milliseconds since 1970-01-01T00:00 wall-clock time
    (Flux's ``FromLocalClock``): the space in which windows are cut."""
    return ms + utc_offset_ms(ms, tz)


def first_instant(wall: int, tz: ZoneInfo) -> int:
    """The first instant at which the wall clock reads ``wall`` or later (rule 2)."""
    naive = _NAIVE_EPOCH + timedelta(milliseconds=wall)
    # fold=0 picks the earlier reading of a repeated wall-clock time (PEP 495).
    early = wall - ((naive.replace(tzinfo=tz).utcoffset() or timedelta(0)) // timedelta(milliseconds=1))
    if local_clock(early, tz) == wall:
        return early
    # A skipped reading: the jump lies between the reading under the later offset (fold=1, before
    # the jump) and under the earlier one (fold=0, after it). Find it to the millisecond.
    lo = wall - ((naive.replace(tzinfo=tz, fold=1).utcoffset() or timedelta(0)) // timedelta(milliseconds=1))
    hi = early
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if local_clock(mid, tz) >= wall:
            hi = mid
        else:
            lo = mid
    return hi


def _window_wall(ms: int, every: int, tz: ZoneInfo) -> int:
    """Wall-clock start of the window that holds ``ms``: the latest start reached by ``ms``."""
    wall = local_clock(ms, tz) // every * every
    # After a fall back the clock reads less than it did: a later start may already have passed.
    while first_instant(wall + every, tz) <= ms:
        wall += every
    return wall


def window_start(ms: int, every_ms: int, tz: ZoneInfo) -> int:
    """Start of the window that holds ``ms`` (the module's rule): a window's key in every answer."""
    return first_instant(_window_wall(ms, every_ms, tz), tz)


def window_bounds(ms: int, every_ms: int, tz: ZoneInfo) -> tuple[int, int]:
    """[start, end) of the window that holds ``ms``."""
    wall = _window_wall(ms, every_ms, tz)
    return first_instant(wall, tz), first_instant(wall + every_ms, tz)  # the end is past ms: see above


def window_starts(start: int, end: int, every_ms: int, tz: ZoneInfo) -> list[int]:
    """Starts of the windows that meet [start, end), in order; the first may lie before ``start``."""
    if start >= end:
        return []
    wall = _window_wall(start, every_ms, tz)
    out = [first_instant(wall, tz)]
    while True:
        wall += every_ms
        s = first_instant(wall, tz)
        if s >= end:
            return out
        if s > out[-1]:
            out.append(s)


def offset_changes(start: int, end: int, tz: ZoneInfo) -> list[int]:
    """The instants in (start, end) at which the zone's UTC offset changes.

    Sampled every 6 hours and bisected to the millisecond: no zone changes its offset twice within
    six hours (tzdata's closest pairs are months apart). Remembered per range: one answer that asks
    the store for many groups over the same days (/agromet) would otherwise sample the same years
    again for every query."""
    return list(_offset_changes(start, end, tz))


@lru_cache(maxsize=256)
def _offset_changes(start: int, end: int, tz: ZoneInfo) -> tuple[int, ...]:
    out: list[int] = []
    if start >= end:
        return ()
    t, off = start, utc_offset_ms(start, tz)
    while t < end - 1:
        n = min(t + _SAMPLE_MS, end - 1)
        o = utc_offset_ms(n, tz)
        if o != off:
            lo, hi = t, n  # offset ``off`` at lo, another at hi
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if utc_offset_ms(mid, tz) == off:
                    lo = mid
                else:
                    hi = mid
            out.append(hi)
        t, off = n, o
    return tuple(out)


@dataclass(frozen=True)
class WindowPiece:
    """Part [lo, hi) of a range over which window starts follow one closed form, so a database can
    compute them for millions of rows: the constant ``start`` when set, else
    ``(t + offset) // every * every - offset`` (the zone's constant ``offset`` over the piece)."""

    lo: int
    hi: int
    offset: int
    start: int | None = None

    def window_start(self, t: int, every_ms: int) -> int:
        return self.start if self.start is not None else (t + self.offset) // every_ms * every_ms - self.offset


def window_pieces(start: int, end: int, every_ms: int, tz: ZoneInfo) -> list[WindowPiece]:
    """Cover [start, end) with pieces (usually one) whose closed form equals ``window_start``.

    Why: per-sample zone arithmetic is far too slow for a database scan, but between two offset
    changes the rule above is plain arithmetic, except for the window already open when the piece
    begins (it may have started under another offset, or after a fall back hold readings that
    arithmetic would file under an earlier start): that stretch, up to the piece's first own
    boundary, gets the window's start as a constant."""
    if start >= end:
        return []
    edges = [start, *offset_changes(start, end, tz), end]
    out: list[WindowPiece] = []
    for a, b in pairwise(edges):
        off = utc_offset_ms(a, tz)
        s_a = window_start(a, every_ms, tz)
        wall = (a + off) // every_ms * every_ms  # the naive window of a
        first = b  # the first boundary of a window starting in (a, b)
        while wall + every_ms - off < b:
            wall += every_ms
            u = first_instant(wall, tz)
            if u > a:  # inside the piece the clock reads wall - off exactly once
                first = u
                break
        naive_a = (a + off) // every_ms * every_ms - off
        if s_a == naive_a and first == min(naive_a + every_ms, b):  # arithmetic holds from a on
            out.append(WindowPiece(a, b, off))
            continue
        out.append(WindowPiece(a, min(first, b), off, s_a))
        if first < b:
            out.append(WindowPiece(first, b, off))
    return out


def boundary_gcd(start: int, pieces: list[WindowPiece], every_ms: int) -> int:
    """The greatest common divisor of ``every`` and of every window boundary strictly inside the
    range ``pieces`` cover: a unit of time (hour, day) of which whole units never straddle a window
    boundary exactly when it divides this."""
    g = every_ms
    for p in pieces:
        if p.lo > start and p.window_start(p.lo, every_ms) == p.lo:
            g = math.gcd(g, p.lo)
        if p.start is None:
            inner = (p.lo + p.offset) // every_ms * every_ms + every_ms - p.offset
            if inner < p.hi:
                g = math.gcd(g, inner)
    return g


def now_ms() -> int:
    return int(datetime.now(UTC).timestamp() * 1000)
