"""Time on the wire and on the calendar.

Points are stored as UTC epoch milliseconds. Devices send RFC 3339 with an explicit offset or epoch
milliseconds; a time without an offset is ambiguous and refused. Calendar boundaries (days, years,
daily windows) are local to the configured zone: a harvest weighed at 00:30 on 1 January in
Beijing belongs to the new year even though it is still 31 December in UTC.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
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
    off = datetime.fromtimestamp(ms / 1000, tz).utcoffset() or timedelta(0)
    return int(off.total_seconds() * 1000)


def window_start(ms: int, every_ms: int, tz: ZoneInfo) -> int:
    """Start of the window that holds ``ms``: windows are aligned in local time, as Flux's
    ``aggregateWindow(location: ...)`` does, so daily windows start at local midnight."""
    off = utc_offset_ms(ms, tz)
    return (ms + off) // every_ms * every_ms - off


def now_ms() -> int:
    return int(datetime.now(UTC).timestamp() * 1000)
