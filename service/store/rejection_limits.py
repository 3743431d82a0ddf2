"""How many rejection samples a store keeps: the bounds both backends share (counts are exact).

Why: one message can hold thousands of bad records and one device can send thousands of bad
messages; operators need a few examples of each (device, reason) and exact totals, not every copy.
"""

from __future__ import annotations

from ..records import Rejection

PER_BATCH = 3  # samples per (device, reason) from one batch (one commit of ingest)
PER_MINUTE = 10  # samples per (device, reason) per minute of receive time (embedded store)
PER_DEVICE = 200  # samples kept per device, its oldest removed first (embedded store)
ANONYMOUS = "*"  # the one allowance shared by ids that are not registered devices
ANONYMOUS_REASONS = frozenset({"unknown_device", "bad_topic"})


def owner(j: Rejection) -> str:
    """Whose allowance a rejection uses: a flooder can vary unregistered ids freely."""
    return ANONYMOUS if j.reason in ANONYMOUS_REASONS else j.device


def first_per_key(rejections: list[Rejection], n: int = PER_BATCH) -> list[Rejection]:
    """The first ``n`` rejections of each (owner, reason), in order."""
    seen: dict[tuple[str, str], int] = {}
    out: list[Rejection] = []
    for j in rejections:
        key = (owner(j), j.reason)
        if seen.get(key, 0) < n:
            seen[key] = seen.get(key, 0) + 1
            out.append(j)
    return out
