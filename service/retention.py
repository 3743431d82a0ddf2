"""Retention: what the embedded store forgets, and when (settings ``retention.*``; 0 keeps forever).

Why per kind: raw readings are most of the file and matter for a season and its 同比 a year on;
rollups are small and are the long history (kept forever by default); rejection samples are for
debugging this week's devices; counters are totals, only a retired worker's are worth dropping.
InfluxDB enforces the same settings as bucket retention (``store.influx``); this module is the
embedded store's job. Raw points are never removed from an hour whose rollup is still to be
computed, so the rollups always hold what the raw points said.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .settings import Settings
    from .store.sqlite import SqliteStore

DAY_MS = 86_400_000


@dataclass(frozen=True)
class Retention:
    raw_days: int = 400
    rollup_days: int = 0
    rejection_days: int = 30
    counter_days: int = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> Retention:
        v = settings.values
        return cls(v.retention_raw_days, v.retention_rollup_days, v.retention_rejection_days,
                   v.retention_counter_days)

    def cutoffs(self, now: int) -> dict[str, int | None]:
        """Per kind, the time before which it is deleted (None: kept forever)."""
        def before(days: int) -> int | None:
            return now - days * DAY_MS if days > 0 else None
        return {"raw": before(self.raw_days), "rollups": before(self.rollup_days),
                "rejections": before(self.rejection_days), "counters": before(self.counter_days)}


def enforce(store: SqliteStore, retention: Retention, now: int) -> str:
    """The retention job: delete what is older than its setting; a summary for the job log."""
    deleted = store.apply_retention(**retention.cutoffs(now))
    return "deleted " + ", ".join(f"{n:,} {kind}" for kind, n in deleted.items()) if deleted else "nothing to delete"
