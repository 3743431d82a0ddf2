"""Harvest ledgers from Excel or CSV → validated yield records, written all or nothing through a ``Sink``.

Townships keep years of ledgers in Excel, and 同比 has nothing to compare with until they are in. The
columns are the export's own (``web/pages/export.py``, sheet 收获记录), so export → edit → import
round-trips (reading and cell rules: ``ledger_files``). Each row is validated by the rules of REST
entry (``harvest_entry.record_from_body``: catalogue, land, 单产 range, time window), and nothing is
written unless every row is valid (or, with ``partial``, its valid rows are). A row's identity is its
id column when present, else village + plot + ts + crop: a row equal to a stored record (at the
export's two decimals) changes nothing and one that differs corrects it, so importing a file twice
stores it once. Two differences from entry, both for old ledgers: times back to 2000 are accepted
(entry refuses over a year old; more than 5 minutes ahead is still refused), and a village may be
named as the export names it (乡镇 + 村 names) or by its code. 亩产（斤/亩）, 来源, 地块名称 and 片区 are
output-only and ignored (亩产 follows from the others).

The store is behind ``Sink`` (look up by identity or id, write new records and corrections in one
call): ``RecordsSink`` over the record store (ids, revisions naming the file and row, statuses),
``StoreSink`` over a plain ``Store.write`` for backends that keep no revisions.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from .context import Context
from .errors import BadInput
from .harvest_entry import record_from_body
from .harvest_records import diff
from .ledger_files import COLUMNS, UNITS, CellError, FileError, Table, cell_text, parse_number, parse_time, read_table
from .payloads import PayloadDecoder, Rejected
from .records import SOURCE_IMPORT, Batch, Revision, YieldRecord, new_record_id
from .store import Store
from .store.base import InRegion, RecordsQuery, RecordsStore
from .times import MAX_EPOCH_MS, MIN_EPOCH_MS, now_ms
from .units import ha_to_mu, kg_to_jin

Identity = tuple[str, str, int, str]  # village, plot, ts (UTC ms), crop
MESSAGES_ZH = {
    "missing_column": "缺少必需的列", "bad_value": "无法识别的值", "unknown_crop": "作物不在目录中",
    "unknown_village": "找不到该村", "unknown_plot": "地块未登记", "plot_mismatch": "地块不属于该村",
    "implausible_yield": "亩产超出该作物的合理范围", "duplicate_row": "与本文件中另一行是同一条记录",
    "unknown_id": "没有该编号的记录", "out_of_scope": "该村不在您的管辖范围内", "bad_record": "缺少必填项或格式不对",
    "not_finite": "不是有效数字", "out_of_range": "数值超出有效范围", "bad_timestamp": "时间格式无法识别",
    "time_in_future": "时间晚于当前时间", "time_too_old": "时间过早", "bad_file": "无法读取该文件",
    "too_large": "文件过大", "too_many_rows": "行数过多", "void": "该记录已作废",
}


@dataclass(frozen=True)
class RowError:
    """One problem of one row (its first: a row is refused whole), or of the whole file."""

    row: int | None  # as the spreadsheet shows it (header = the row of the headers); None: the whole file
    field: str | None  # the column's header as the file has it
    code: str
    message_en: str
    message: str = ""  # Chinese; from MESSAGES_ZH when not given

    def as_json(self) -> dict[str, Any]:
        zh = self.message or MESSAGES_ZH.get(self.code, "无效")
        return {"row": self.row, "field": self.field, "code": self.code, "message": zh, "message_en": self.message_en}


@dataclass(frozen=True)
class Existing:
    """A stored record a row may match: its id and what it holds."""

    id: str
    record: YieldRecord


@dataclass(frozen=True)
class Correction:
    id: str
    before: YieldRecord
    after: YieldRecord
    reason: str


class Sink(Protocol):
    """Where an import lands: the one seam between this module and the harvest record store."""

    def existing(self, identities: Collection[Identity]) -> Mapping[Identity, Sequence[Existing]]:
        """Stored records by (village, plot, ts, crop), for rows without an id; void ones too."""

    def by_id(self, ids: Collection[str]) -> Mapping[str, Existing]:
        """Stored records by id; an unknown id is simply absent."""

    def write(self, added: Sequence[YieldRecord], corrected: Sequence[Correction], by: str) -> None:
        """Store new records and corrections together (atomically where the store can)."""


@dataclass
class ImportReport:
    rows: int = 0
    accepted: int = 0
    rejected: int = 0
    added: int = 0
    corrected: int = 0
    unchanged: int = 0
    written: bool = False
    dry_run: bool = True
    errors: list[RowError] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"rows": self.rows, "accepted": self.accepted, "rejected": self.rejected, "added": self.added,
                "corrected": self.corrected, "unchanged": self.unchanged, "written": self.written,
                "dry_run": self.dry_run, "ignored_columns": self.ignored_columns,
                "errors": [e.as_json() for e in self.errors]}


RECORD_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")  # as the REST paths take them
_VILLAGE_CODE, _TOWN_CODE = re.compile(r"[0-9]{12}"), re.compile(r"[0-9]{9}")


class _Names:
    """Villages by code or name (within the row's township when names repeat), crops by id or name."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.towns: dict[str, list[str]] = {}
        self.villages: dict[str, list[str]] = {}
        for n in ctx.tree:
            if n.level == "township":
                self.towns.setdefault(n.name_zh, []).append(n.code)
            elif n.level == "village":
                self.villages.setdefault(n.name_zh, []).append(n.code)
        self.crops = {k: c.id for c in ctx.catalogue.crops.values() for k in (c.id, c.name_zh, c.name_en.casefold())}

    def crop(self, text: str) -> str | None:
        return self.crops.get(text) or self.crops.get(text.casefold())

    def village(self, text: str, town: str) -> str:
        """The village's code; raises CellError with why not."""
        if _VILLAGE_CODE.fullmatch(text):
            codes = [text] if (n := self.ctx.tree.find(text)) is not None and n.level == "village" else []
        else:
            codes = self.villages.get(text, [])
        if town:
            towns = [town] if _TOWN_CODE.fullmatch(town) else self.towns.get(town, [])
            if not towns:
                raise CellError(f"township {town[:40]!r} is not in the region tree", f"找不到乡镇“{town[:40]}”")
            codes = [c for c in codes if c[:9] in towns]
        if len(codes) == 1:
            return codes[0]
        if not codes:
            where = f" in {town[:40]}" if town else ""
            zh_where = f"（{town[:40]}）" if town else ""
            raise CellError(f"no village {text[:40]!r}{where}", f"找不到村“{text[:40]}”{zh_where}")
        raise CellError(f"{len(codes)} villages are called {text[:40]!r}: fill in 乡镇（街道） or give the code",
                        f"有 {len(codes)} 个村叫“{text[:40]}”，请填写乡镇或村代码")


@dataclass(frozen=True)
class _Valid:
    row: int
    record: YieldRecord
    given: dict[str, float]  # the file's figures in its own units, for comparing at its precision
    id: str


def _cell(cells: tuple[object, ...], columns: Mapping[str, tuple[int, str]], key: str) -> object:
    at = columns.get(key)
    return cells[at[0]] if at is not None and at[0] < len(cells) else None


def _row_body(cells: tuple[object, ...], table: Table, names: _Names, tz: ZoneInfo,
              number: int) -> tuple[dict[str, Any], dict[str, float], str] | RowError:
    cols = table.columns

    def err(key: str, code: str, exc: CellError | str) -> RowError:
        header = cols[key][1] if key in cols else COLUMNS[key][0]
        if isinstance(exc, CellError):
            return RowError(number, header, code, f"{header}: {exc}", f"{header}：{exc.zh}")
        return RowError(number, header, code, f"{header}: {exc}")

    body: dict[str, Any] = {}
    given: dict[str, float] = {}
    raw_ts = _cell(cells, cols, "ts")
    if raw_ts in (None, ""):
        return err("ts", "bad_value", CellError("empty", "未填写"))
    try:
        body["ts"] = parse_time(raw_ts, tz)
    except CellError as exc:
        return err("ts", "bad_value", exc)
    crop_text = cell_text(_cell(cells, cols, "crop"))
    crop = names.crop(crop_text)
    if crop is None:
        return err("crop", "unknown_crop" if crop_text else "bad_value",
                   CellError(f"{crop_text[:40]!r} is not a crop of the catalogue" if crop_text else "empty",
                             f"“{crop_text[:40]}”不在作物目录中" if crop_text else "未填写"))
    body["crop"] = crop
    village_text = cell_text(_cell(cells, cols, "village"))
    if not village_text:
        return err("village", "bad_value", CellError("empty", "未填写"))
    try:
        body["village"] = names.village(village_text, cell_text(_cell(cells, cols, "township")))
    except CellError as exc:
        return err("village", "unknown_village", exc)
    plot = cell_text(_cell(cells, cols, "plot"))
    if plot:
        body["plot"] = plot
    for key in ("area_mu", "area_ha", "yield_jin", "yield_kg", "moisture_pct"):
        if key not in cols:
            continue
        try:
            value = parse_number(_cell(cells, cols, key), UNITS[key])
        except CellError as exc:
            return err(key, "bad_value", exc)
        if value is not None:
            body[key] = given[key] = value
    record_id = cell_text(_cell(cells, cols, "id"))
    if record_id and not RECORD_ID.fullmatch(record_id):
        return err("id", "bad_value", "an id is 1 to 64 letters, digits, '-' or '_'")
    return body, given, record_id


def _entry_code(exc: BadInput) -> str:
    """The entry rule's own code (``unknown_plot``, ``implausible_yield``, ``out_of_range``...): BadInput's
    ``code``, else the decoder's Rejected it was raised from (``from None`` hides the context, keeps it)."""
    if exc.code:
        return exc.code
    return exc.__context__.reason if isinstance(exc.__context__, Rejected) else "bad_value"


def _header_of(table: Table, entry_field: str | None) -> str | None:
    if entry_field is None:
        return None
    at = table.columns.get(entry_field)
    return at[1] if at is not None else COLUMNS.get(entry_field, (entry_field,))[0]


def _validate(ctx: Context, decoder: PayloadDecoder, table: Table, names: _Names, scope: str, now: int,
              number: int, cells: tuple[object, ...]) -> _Valid | RowError:
    parsed = _row_body(cells, table, names, ctx.settings.tz, number)
    if isinstance(parsed, RowError):
        return parsed
    body, given, rec_id = parsed
    ts = body["ts"]
    received = now if ts > now else ts  # a ledger's old rows are fine; the future is checked as on entry
    try:
        rec = record_from_body(ctx, decoder, body, received)
    except BadInput as exc:
        code = _entry_code(exc)
        header = _header_of(table, exc.field)
        zh = MESSAGES_ZH.get(code, "无效")
        return RowError(number, header, code, str(exc), f"{header}：{zh}" if header else zh)
    if not rec.village.startswith(scope):
        return RowError(number, _header_of(table, "village"), "out_of_scope",
                        f"village {rec.village} lies outside your scope {scope}",
                        f"村 {rec.village} 不在您的管辖范围 {scope} 内")
    return _Valid(number, replace(rec, source=SOURCE_IMPORT), given, rec_id)


def _same(existing: YieldRecord, v: _Valid) -> tuple[bool, YieldRecord]:
    """Whether the row holds what is stored, at the file's two decimals, and the record it asks for:
    the stored one with every figure the row changed (unchanged figures keep their exact values)."""
    r = v.record
    out = replace(existing, ts=r.ts, crop=r.crop, plot=r.plot, village=r.village)
    same = (existing.ts, existing.crop, existing.plot, existing.village) == (r.ts, r.crop, r.plot, r.village)
    for key, stored, to_unit in (("area_mu", existing.area_ha, ha_to_mu), ("area_ha", existing.area_ha, float),
                                 ("yield_jin", existing.yield_kg, kg_to_jin), ("yield_kg", existing.yield_kg, float)):
        if key in v.given and round(to_unit(stored), 2) != round(v.given[key], 2):
            same = False
            out = replace(out, area_ha=r.area_ha) if key.startswith("area") else replace(out, yield_kg=r.yield_kg)
    if "moisture_pct" in v.given and (existing.moisture_pct is None
                                      or round(existing.moisture_pct, 2) != round(v.given["moisture_pct"], 2)):
        same = False
        out = replace(out, moisture_pct=r.moisture_pct)
    return same, out


def import_file(ctx: Context, decoder: PayloadDecoder, sink: Sink, content: bytes, filename: str = "", *,
                dry_run: bool = True, partial: bool = False, scope: str = "", by: str = "",
                now: int | None = None, progress: Callable[[int, int], None] | None = None) -> ImportReport:
    """Read, validate and (unless ``dry_run`` or a row is bad without ``partial``) write one file.

    Never raises for anything in the file: every problem is an error of the report. ``progress``
    is called with (rows done, rows of the file) while validating and once more at the end."""
    report = ImportReport(dry_run=dry_run)
    now = now_ms() if now is None else now
    valid: list[_Valid] = []
    try:
        table = read_table(content, filename)
        report.ignored_columns = table.ignored
        missing = [k for k in ("village", "crop") if k not in table.columns]
        if "yield_jin" not in table.columns and "yield_kg" not in table.columns:
            missing.append("yield_jin")
        if missing:
            report.errors = [RowError(table.header_row, COLUMNS[k][0], "missing_column",
                                      f"no column {COLUMNS[k][0]} ({k})", f"缺少“{COLUMNS[k][0]}”列") for k in missing]
            return report
        rows = list(table.rows)  # read whole first (at most MAX_ROWS), so progress knows the total
        names = _Names(ctx)
        seen: dict[object, int] = {}
        for number, cells in rows:
            report.rows += 1
            v = _validate(ctx, decoder, table, names, scope, now, number, cells)
            if isinstance(v, _Valid):
                rec = v.record
                key: object = ("id", v.id) if v.id else (rec.village, rec.plot, rec.ts, rec.crop)
                if key in seen:
                    field_name = _header_of(table, "id" if v.id else "ts")
                    v = RowError(number, field_name, "duplicate_row", f"the same record as row {seen[key]}",
                                 f"与第 {seen[key]} 行是同一条记录")
                else:
                    seen[key] = number
            if isinstance(v, RowError):
                report.errors.append(v)
            else:
                valid.append(v)
            if progress is not None and report.rows % 250 == 0:
                progress(report.rows, len(rows))
    except FileError as exc:
        report.errors.append(RowError(None, "file", exc.code, exc.message_en, exc.message_zh))
        return report
    added, corrected = _plan(sink, valid, report, filename, scope)
    bad_rows = {e.row for e in report.errors}
    report.rejected = len(bad_rows)
    report.accepted = report.rows - report.rejected
    if report.errors and not partial:
        report.added = report.corrected = report.unchanged = 0
        return report
    if not dry_run and (added or corrected):
        sink.write(added, corrected, by)
        report.written = True
    if progress is not None:
        progress(report.rows, report.rows)
    return report


def _plan(sink: Sink, valid: list[_Valid], report: ImportReport, filename: str,
          scope: str) -> tuple[list[YieldRecord], list[Correction]]:
    """Each valid row → a new record, a correction of the stored one it names, or nothing (already stored)."""
    by_id = sink.by_id({v.id for v in valid if v.id}) if any(v.id for v in valid) else {}
    stored = sink.existing({(v.record.village, v.record.plot, v.record.ts, v.record.crop) for v in valid if not v.id})
    added: list[YieldRecord] = []
    corrected: list[Correction] = []
    for v in valid:
        rec = v.record
        if v.id:
            hit = by_id.get(v.id)
            if hit is None:  # another deployment's export, or a backup: the record comes in under its own id
                added.append(replace(rec, id=v.id))
                report.added += 1
                continue
            if not hit.record.village.startswith(scope):
                report.errors.append(RowError(v.row, "id", "out_of_scope", f"record {v.id[:64]} lies outside "
                                              "your scope", f"编号为 {v.id[:64]} 的记录不在您的管辖范围内"))
                continue
            if hit.record.status == "void":
                report.errors.append(RowError(v.row, "id", "void", f"record {v.id[:64]} is void: it cannot be "
                                              "corrected", f"编号为 {v.id[:64]} 的记录已作废，不能修改"))
                continue
            matches: Sequence[Existing] = [hit]
        else:
            matches = stored.get((rec.village, rec.plot, rec.ts, rec.crop), ())
        compared = [(m, *_same(m.record, v)) for m in matches]
        if any(same for _, same, _ in compared):  # a void record too: a withdrawn row never comes back
            report.unchanged += 1
            continue
        live = [c for c in compared if c[0].record.status != "void"]
        if not live:
            added.append(rec)
            report.added += 1
            continue
        m, _, after = live[0]
        reason = f"导入 {filename or '文件'} 第 {v.row} 行 / import of {filename or 'a file'}, row {v.row}"
        corrected.append(Correction(m.id, m.record, after, reason))
        report.corrected += 1
    return added, corrected


# -- the first sink: today's store, where a record's identity is its point -----------------------------------


class StoreSink:
    """``Sink`` over ``Store.write``: ids are the records' own (``YieldRecord.record_id``); a correction
    rewrites the stored point, so it may change figures but not the identity fields (village, plot,
    ts, crop) — the record store of issue 18 corrects by id and takes over from this one."""

    def __init__(self, store: Store, region: InRegion, worker: str = "import") -> None:
        """``region``: where stored records are looked up (the district, or the importer's scope)."""
        self.store = store
        self.region = region
        self.worker = worker

    def _records(self, start: int, end: int) -> list[YieldRecord]:
        return self.store.yield_records(self.region, start, end, limit=10_000_000)

    def existing(self, identities: Collection[Identity]) -> dict[Identity, list[Existing]]:
        if not identities:
            return {}
        times = [i[2] for i in identities]
        out: dict[Identity, list[Existing]] = {}
        for r in self._records(min(times), max(times) + 1):
            key = (r.village, r.plot, r.ts, r.crop)
            if key in identities:
                out.setdefault(key, []).append(Existing(r.record_id, r))
        return out

    def by_id(self, ids: Collection[str]) -> dict[str, Existing]:
        return {r.record_id: Existing(r.record_id, r) for r in self._records(MIN_EPOCH_MS, MAX_EPOCH_MS)
                if r.record_id in ids}

    def write(self, added: Sequence[YieldRecord], corrected: Sequence[Correction], by: str) -> None:
        self.store.write(Batch(yields=[*added, *(c.after for c in corrected)], worker=self.worker))


# -- the record store of issue 18: ids, revisions, statuses ---------------------------------------------------


class RecordsSink:
    """``Sink`` over a ``RecordsStore``: a new row is an entry with a fresh id (source ``import``,
    entered by the importer), a changed row a correction with a revision that names the file and row
    (back to ``submitted``, as every correction), all in one ``save_records`` transaction."""

    def __init__(self, store: RecordsStore, region: InRegion, now: int) -> None:
        self.store = store
        self.region = region
        self.now = now

    def existing(self, identities: Collection[Identity]) -> dict[Identity, list[Existing]]:
        if not identities:
            return {}
        times = [i[2] for i in identities]
        out: dict[Identity, list[Existing]] = {}
        for r in self.store.list_records(RecordsQuery(self.region, min(times), max(times) + 1, limit=10_000_000)):
            key = (r.village, r.plot, r.ts, r.crop)
            if key in identities:
                out.setdefault(key, []).append(Existing(r.record_id, r))
        return out

    def by_id(self, ids: Collection[str]) -> dict[str, Existing]:
        found = {i: self.store.get_record(i) for i in ids}
        return {i: Existing(i, r) for i, r in found.items() if r is not None}

    def write(self, added: Sequence[YieldRecord], corrected: Sequence[Correction], by: str) -> None:
        now = self.now
        items: list[tuple[YieldRecord, Revision, YieldRecord | None]] = []
        for rec in added:
            new = replace(rec, id=rec.id or new_record_id(), entered_by=by, status="submitted", revision=1, updated=now)
            items.append((new, Revision(new.id, 1, now, by, "", diff(None, new), new.status), None))
        for c in corrected:
            new = replace(c.after, id=c.id, status="submitted", revision=c.before.revision + 1, updated=now)
            changes = diff(c.before, new)
            if c.before.status != "submitted":
                changes["status"] = [c.before.status, "submitted"]
            items.append((new, Revision(c.id, new.revision, now, by, c.reason, changes, new.status), c.before))
        self.store.save_records(items)
