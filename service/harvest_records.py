"""The rules of harvest records, in one place for REST, pages and the import (DESIGN.md "Harvest records").

Why one module: entering, correcting, voiding and reviewing must mean the same whether a clerk
types a record, a township reviews it or a ledger is imported, so none of them re-implements the
duplicate check, the scope test or who may review. Values are decoded by the MQTT contract's rules
(``harvest_entry.record_from_body``), so a correction is held to exactly what an entry is.

Status: ``submitted`` → ``approved`` | ``returned`` (a reviewer) → ``void`` (withdrawn, final). A
correction of an approved or returned record sends it back to ``submitted``. Every change appends
a ``Revision``; nothing is deleted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from .auth.model import Role, role_at_least
from .context import Context
from .errors import BadInput, Conflict, Forbidden, NongyunError, NotFound
from .harvest_entry import record_from_body
from .payloads import PayloadDecoder
from .records import SOURCE_DEVICE, SOURCE_STAFF, SOURCE_UNATTRIBUTED, Revision, YieldRecord, new_record_id
from .store import Store
from .store.base import InRegion, RecordsQuery, RecordsStore, as_records_store

# The fields a correction may change (the body's unit keys map onto the stored SI ones).
FIELDS = ("village", "ts", "crop", "plot", "area_ha", "yield_kg", "moisture_pct")
PATCH_KEYS = ("ts", "crop", "area_mu", "area_ha", "yield_jin", "yield_kg", "plot", "village", "moisture_pct")
Decision = Literal["approve", "return"]
REVIEWER_DIGITS = 9  # a township (9 digits) or the district (6) may review; a village (12) never


@dataclass(frozen=True)
class Actor:
    """Who acts: the account name ("" when ``web.auth = off``), its role and its scope (a region code)."""

    name: str
    role: Role
    scope: str


@dataclass(frozen=True)
class EntryResult:
    """One body of ``enter_many``: the stored (or, in a dry run, the would-be) record, or the error."""

    index: int
    record: YieldRecord | None = None
    error: NongyunError | None = None


def records_store(store: Store) -> RecordsStore:
    found = as_records_store(store)
    if found is None:
        raise BadInput(f"the {store.name} store keeps no harvest record revisions")
    return found


def _values(rec: YieldRecord) -> dict[str, object]:
    return {f: getattr(rec, f) for f in FIELDS}


def diff(old: YieldRecord | None, new: YieldRecord) -> dict[str, list[object]]:
    """Field → [old, new] for every field that changed (an entry: every field, from None)."""
    before = _values(old) if old is not None else dict.fromkeys(FIELDS)
    after = _values(new)
    return {f: [before[f], after[f]] for f in FIELDS if before[f] != after[f]}


def _inside(actor: Actor, village: str) -> None:
    if not village.startswith(actor.scope):
        raise Forbidden(f"village {village} lies outside your scope {actor.scope} / 该村不在您的管辖范围内")


def _editor(actor: Actor) -> None:
    if not role_at_least(actor.role, "editor"):
        raise Forbidden(f"this needs the editor role; {actor.name or 'you'} are {actor.role} / 需要录入员权限")


def find_duplicate(store: RecordsStore, rec: YieldRecord) -> YieldRecord | None:
    """A non-void record with the same village, plot, ts, crop, area and yield (another id)."""
    same = store.list_records(RecordsQuery(InRegion("village", rec.village), rec.ts, rec.ts + 1, limit=1000,
                                           crop=rec.crop, plot=rec.plot))
    for other in same:
        if (other.status != "void" and other.record_id != rec.record_id
                and abs(other.area_ha - rec.area_ha) < 1e-9 and abs(other.yield_kg - rec.yield_kg) < 1e-9):
            return other
    return None


def _refuse_duplicate(store: RecordsStore, rec: YieldRecord) -> None:
    found = find_duplicate(store, rec)
    if found is not None:
        raise Conflict(f"an identical record exists already: {found.record_id} / 已有相同的记录", "duplicate",
                       found.record_id)


def prepare_entry(ctx: Context, store: RecordsStore, decoder: PayloadDecoder, body: Mapping[str, Any], now: int,
                  actor: Actor, source: str = SOURCE_STAFF) -> tuple[YieldRecord, Revision]:
    """A new record (fresh id, revision 1) and its first revision, checked but not stored."""
    _editor(actor)
    rec = record_from_body(ctx, decoder, body, now)
    _inside(actor, rec.village)
    rec = replace(rec, source=source, id=new_record_id(), entered_by=actor.name, status="submitted", revision=1,
                  updated=now)
    _refuse_duplicate(store, rec)
    return rec, Revision(rec.id, 1, now, actor.name, "", diff(None, rec), rec.status)


def enter(ctx: Context, store: Store, decoder: PayloadDecoder, body: Mapping[str, Any], now: int, actor: Actor,
          source: str = SOURCE_STAFF) -> YieldRecord:
    """Store one staff entry as a new record. BadInput (with the payload's reason as ``code``),
    Forbidden outside the scope, Conflict ``duplicate`` (with the existing id)."""
    rs = records_store(store)
    rec, rev = prepare_entry(ctx, rs, decoder, body, now, actor, source)
    rs.save_record(rec, rev)
    return rec


def enter_many(ctx: Context, store: Store, decoder: PayloadDecoder, bodies: Iterable[Mapping[str, Any]],
               actor: Actor, now: int, *, source: str = "import", write: bool = True,
               partial: bool = False) -> list[EntryResult]:
    """Check every body as ``enter`` would, then store them: all of them only when none failed, or
    with ``partial`` the valid ones; ``write=False`` is a dry run. Results are in the bodies' order,
    each with its record or its error (BadInput / Forbidden / Conflict). Two identical bodies in
    one call: the second is a ``duplicate`` of the first. One transaction on SQLite."""
    rs = records_store(store)
    results: list[EntryResult] = []
    pending: list[tuple[YieldRecord, Revision]] = []
    seen: dict[tuple[object, ...], str] = {}
    for i, body in enumerate(bodies):
        try:
            rec, rev = prepare_entry(ctx, rs, decoder, body, now, actor, source)
            key = (rec.village, rec.plot, rec.ts, rec.crop, round(rec.area_ha, 9), round(rec.yield_kg, 9))
            if key in seen:
                raise Conflict(f"the same record is given twice: {seen[key]} / 重复的记录", "duplicate", seen[key])
            seen[key] = rec.id
            results.append(EntryResult(i, rec))
            pending.append((rec, rev))
        except (BadInput, Forbidden, Conflict) as exc:
            results.append(EntryResult(i, error=exc))
    if write and pending and (partial or all(r.error is None for r in results)):
        rs.save_records([(rec, rev, None) for rec, rev in pending])
    return results


def get(store: Store, record_id: str, actor: Actor) -> YieldRecord:
    """One record inside the caller's scope; NotFound / Forbidden."""
    rec = records_store(store).get_record(record_id)
    if rec is None:
        raise NotFound(f"no yield record with id {record_id[:40]!r}")
    _inside(actor, rec.village)
    return rec


def _changeable(rec: YieldRecord, what: str) -> None:
    if rec.status == "void":
        raise Conflict(f"record {rec.record_id} is void and cannot be {what} / 已作废的记录不能再修改", "void",
                       rec.record_id)


def _body_of(ctx: Context, rec: YieldRecord, patch: Mapping[str, Any]) -> dict[str, Any]:
    """The record as an entry body (SI keys) with the patch's keys over it. A stored plot that is not
    (or no longer) registered — a free label from before plots existed, a retired plot — is left out
    of the check when the patch does not touch it, so its yield can still be corrected; the caller
    puts the label back."""
    body: dict[str, Any] = {"village": rec.village, "ts": rec.ts, "crop": rec.crop, "area_ha": rec.area_ha,
                            "yield_kg": rec.yield_kg}
    if rec.plot and ("plot" in patch or ctx.land.plot(rec.plot) is not None):
        body["plot"] = rec.plot
    if rec.moisture_pct is not None:
        body["moisture_pct"] = rec.moisture_pct
    if "area_mu" in patch:
        body.pop("area_ha")
    if "yield_jin" in patch:
        body.pop("yield_kg")
    for key in PATCH_KEYS:
        if key in patch:
            if patch[key] is None or patch[key] == "":
                body.pop(key, None)
            else:
                body[key] = patch[key]
    return body


def correct(ctx: Context, store: Store, decoder: PayloadDecoder, record_id: str, patch: Mapping[str, Any],
            reason: str, actor: Actor, now: int, *, unchanged_ok: bool = False) -> YieldRecord:
    """Apply ``patch`` (any of ``PATCH_KEYS``) to the record, validated like an entry; the new
    revision. An approved or returned record goes back to ``submitted``. ``unchanged_ok`` (the
    import re-reading a row with the record's id): a patch that changes nothing returns the record
    as it is instead of a 400 — this is how an import row corrects a record by id."""
    _editor(actor)
    rs = records_store(store)
    old = get(store, record_id, actor)
    _changeable(old, "corrected")
    if not reason.strip():
        raise BadInput("reason: say why the record is corrected / 请填写修改原因", "reason")
    # a record's time window is judged from its own time unless the correction moves it
    received = now if "ts" in patch else min(now, old.ts)
    decoded = record_from_body(ctx, decoder, _body_of(ctx, old, patch), received)
    if "plot" not in patch and old.plot and not decoded.plot:
        decoded = replace(decoded, plot=old.plot)  # an unregistered label the correction did not touch
    _inside(actor, decoded.village)
    source = old.source
    if source == SOURCE_UNATTRIBUTED and ({"village", "plot"} & set(patch)):
        source = SOURCE_DEVICE  # staff named where it grew: no longer attributed by fallback
    new = replace(old, village=decoded.village, ts=decoded.ts, crop=decoded.crop, plot=decoded.plot,
                  area_ha=decoded.area_ha, yield_kg=decoded.yield_kg, moisture_pct=decoded.moisture_pct,
                  source=source, id=old.record_id, status="submitted", revision=old.revision + 1, updated=now)
    changes = diff(old, new)
    if not changes:
        if unchanged_ok:
            return old
        raise BadInput("the correction changes nothing / 没有需要修改的内容", None, "unchanged")
    if old.status != "submitted":
        changes["status"] = [old.status, "submitted"]
    _refuse_duplicate(rs, new)
    rs.save_record(new, Revision(new.id, new.revision, now, actor.name, reason.strip(), changes, new.status), old)
    return new


def void(store: Store, record_id: str, reason: str, actor: Actor, now: int) -> YieldRecord:
    """Withdraw the record: it stays, with its history, but no total counts it any more."""
    _editor(actor)
    old = get(store, record_id, actor)
    _changeable(old, "voided")
    if not reason.strip():
        raise BadInput("reason: say why the record is voided / 请填写作废原因", "reason")
    new = replace(old, id=old.record_id, status="void", revision=old.revision + 1, updated=now)
    rev = Revision(new.id, new.revision, now, actor.name, reason.strip(), {"status": [old.status, "void"]}, "void")
    records_store(store).save_record(new, rev, old)
    return new


def may_review(actor: Actor, rec: YieldRecord) -> str | None:
    """Why ``actor`` may not review ``rec`` (a message in both languages), or None when they may."""
    if not role_at_least(actor.role, "editor"):
        return f"reviewing needs the editor or admin role; {actor.name or 'you'} are {actor.role} / 需要审核权限"
    if len(actor.scope) > REVIEWER_DIGITS:
        return "a village-scope account never reviews records; the township does / 村级账号不能审核记录，请由乡镇审核"
    if not rec.village.startswith(actor.scope):
        return f"village {rec.village} lies outside your scope {actor.scope} / 该村不在您的管辖范围内"
    if rec.entered_by and rec.entered_by == actor.name:
        return "you entered this record: another reviewer must review it / 不能审核自己录入的记录"
    return None


def review(store: Store, record_id: str, decision: Decision, comment: str, actor: Actor, now: int) -> YieldRecord:
    """Approve or return the record (who may: ``may_review``); Conflict for a void one."""
    old = get(store, record_id, actor)
    refused = may_review(actor, old)
    if refused is not None:
        raise Forbidden(refused)
    _changeable(old, "reviewed")
    status = "approved" if decision == "approve" else "returned"
    new = replace(old, id=old.record_id, status=status, revision=old.revision + 1, updated=now)
    rev = Revision(new.id, new.revision, now, actor.name, comment.strip(), {"status": [old.status, status]}, status)
    records_store(store).save_record(new, rev, old)
    return new


def history(store: Store, record_id: str, actor: Actor) -> list[Revision]:
    """Every revision, oldest first. A device record's entry is not stored as a revision (ingest
    writes points, not audits), so its revision 1 is told from the record's own first values."""
    rec = get(store, record_id, actor)
    revs = records_store(store).record_history(rec.record_id)
    if not revs or revs[0].revision != 1:
        first = _first_values(rec, revs)
        at = rec.ts if revs else (rec.updated or rec.ts)
        revs.insert(0, Revision(rec.record_id, 1, at, first.device or first.entered_by, "", diff(None, first),
                                "submitted"))
    return revs


def _first_values(rec: YieldRecord, revs: list[Revision]) -> YieldRecord:
    """The record as it was at revision 1: the current values with each change undone."""
    values: dict[str, Any] = _values(rec)
    for r in reversed(revs):
        for f, (old, _new) in r.changes.items():
            if f in values:
                values[f] = old
    return replace(rec, **values)
