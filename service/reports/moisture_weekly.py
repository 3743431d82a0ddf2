"""The weekly 墒情简报's content: one row per monitored village, this week against last, drought
villages and advice — everything the PDF and the workbook print, so the two never disagree.

A county 农技中心 sends this brief up the national–provincial–county 墒情 network every week. The
grades come from ``queries.moisture.moisture_report`` (the read model behind ``GET /api/v1/moisture``)
averaged over the seven local days Monday–Sunday of an ISO week, so the brief and the API grade
the same days the same way. Villages without a soil station are counted, not listed: a community
with no farmland would otherwise fill the table with dashes.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any, Literal, Protocol

from ..context import Context
from ..errors import BadInput, SettingsError
from ..moisture import DROUGHT, DROUGHT_EN, GRADES, GRADES_EN
from ..queries.moisture import moisture_report
from ..regions import Region, RegionTree
from ..store import Store
from ..times import now_ms as time_now_ms

WEEK_DAYS = 7
NO_DROUGHT = DROUGHT[0]  # 无旱
CONFIG_FILE = "moisture_advice.toml"
WEEK_PATTERN = re.compile(r"[0-9]{4}-W[0-9]{2}")
Lang = Literal["zh", "en"]
# Every word the PDF and the workbook print, in Chinese (the brief's own language) and English.
WORDS: dict[str, tuple[str, str]] = {
    "title": ("{region}墒情简报", "{region} soil moisture brief"),
    "period": ("{year}年第{week}周（{m1}月{d1}日—{m2}月{d2}日）", "ISO week {week} of {year} ({start} to {end})"),
    "generated": ("生成时间 {at}（nongyun 农云）", "Made {at} by nongyun"),
    "scope": ("仅含权限范围 {scope} 内的村", "only the villages of your scope, {scope}"),
    "township": ("乡镇（街道）", "Township"),
    "village": ("村（社区）", "Village"),
    "code": ("村代码", "Village code"),
    "relative": ("相对含水量（%）", "Relative moisture (%)"),
    "grade": ("墒情", "Grade"),
    "drought": ("旱情", "Drought"),
    "last_relative": ("上周相对含水量（%）", "Last week (%)"),
    "last_week": ("上周（%）", "Last week (%)"),
    "last_grade": ("上周墒情", "Last week's grade"),
    "change": ("较上周（百分点）", "Change (points)"),
    "change_short": ("较上周", "Change"),
    "graded": ("评定站点", "Graded stations"),
    "stations": ("站点", "Stations"),
    "frozen": ("冻土", "frozen"),
    "anomalous": ("异常", "anomalous"),
    "missing": ("缺报", "missing"),
    "note": ("备注", "Note"),
    "total": ("合计", "Total"),
    "level": ("等级", "Grade"),
    "advice": ("建议", "Advice"),
    "h_overall": ("一、总体墒情", "1. Overview"),
    "h_villages": ("二、各村墒情", "2. Villages"),
    "h_drought": ("三、旱情村", "3. Villages in drought"),
    "h_advice": ("四、农事建议", "4. Advice"),
    "method": ("墒情按土壤相对含水量（体积含水量 ÷ 田间持水量）评定，等级依 NY/T 1782，旱情依 GB/T 32136-2015；"
               "本周为周一至周日 7 日平均，冻土及异常读数不参与评定。",
               "Grades are taken on relative moisture (volumetric moisture ÷ field capacity): NY/T 1782 for "
               "the moisture grade, GB/T 32136-2015 for drought; the mean of the 7 days Monday to Sunday; "
               "frozen soil and anomalous readings are not graded."),
    "unmonitored": ("另有 {n} 个村（社区）无土壤墒情站，未列入。",
                    "{n} more villages have no soil station and are not listed."),
    "no_drought": ("本周无旱情村。", "No village is in drought this week."),
    "no_advice": ("本周无可评定的村，暂无建议。", "No village could be graded this week: no advice."),
    "sheet_villages": ("各村墒情", "Villages"),
    "sheet_drought": ("旱情村", "Drought"),
    "sheet_advice": ("农事建议", "Advice"),
    "page": ("第 {page} 页 共 {pages} 页", "page {page} of {pages}"),
}


# -- the ISO week --------------------------------------------------------------------------------

@dataclass(frozen=True, order=True)
class IsoWeek:
    """An ISO 8601 week (Monday first), the unit the 墒情 network reports in."""

    year: int
    week: int

    @property
    def monday(self) -> date:
        return date.fromisocalendar(self.year, self.week, 1)

    @property
    def sunday(self) -> date:
        return self.monday + timedelta(days=WEEK_DAYS - 1)

    @property
    def label(self) -> str:
        return f"{self.year}-W{self.week:02d}"

    def previous(self) -> IsoWeek:
        return IsoWeek.of(self.monday - timedelta(days=WEEK_DAYS))

    @classmethod
    def of(cls, day: date) -> IsoWeek:
        iso = day.isocalendar()
        return cls(iso.year, iso.week)

    @classmethod
    def last_full(cls, today: date) -> IsoWeek:
        """The latest week whose Sunday has passed: on a Sunday the week is not over yet."""
        return cls.of(today - timedelta(days=today.isoweekday()))

    @classmethod
    def parse(cls, text: str, today: date) -> IsoWeek:
        """``2026-W45`` → the week; BadInput (field ``week``) for anything else, week 53 of a year
        that has none, or a week that has not begun."""
        if WEEK_PATTERN.fullmatch(text) is None:
            raise BadInput(f"week: {text[:40]!r} is not an ISO week like 2026-W45", "week")
        year, week = int(text[:4]), int(text[6:])
        if not 2000 <= year <= 2100:
            raise BadInput("week: the year must lie between 2000 and 2100", "week")
        try:
            found = cls(year, week)
            monday = found.monday
        except ValueError:
            raise BadInput(f"week: {year} has no week {week} (ISO weeks run 1–52 or 53)", "week") from None
        if monday > today:
            raise BadInput(f"week: {found.label} has not begun (today is {today.isoformat()})", "week")
        return found


# -- the config: advice per grade, the PDF's font ---------------------------------------------

@dataclass(frozen=True)
class Text:
    zh: str
    en: str

    def get(self, lang: str) -> str:
        return self.en if lang == "en" and self.en else self.zh


@dataclass(frozen=True)
class BriefConfig:
    grades: Mapping[str, Text] = field(default_factory=dict)  # 墒情 grade → advice
    drought: Mapping[str, Text] = field(default_factory=dict)  # drought grade → advice
    font: str = ""  # a font file; "" asks fontconfig
    font_index: int = 0  # the face in a .ttc collection

    @classmethod
    def load(cls, folder: Path) -> BriefConfig:
        """Missing file → no advice, fontconfig's font; a malformed one is a SettingsError (at start)."""
        path = folder / CONFIG_FILE
        if not path.exists():
            return cls()
        try:
            doc = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise SettingsError(f"{path}: cannot read the brief's advice: {exc}") from None
        try:
            return _config(doc)
        except (TypeError, ValueError) as exc:
            raise SettingsError(f"{path}: {exc}") from None


def _texts(doc: Mapping[str, Any], section: str, allowed: Sequence[str]) -> dict[str, Text]:
    table = doc.get(section, {})
    if not isinstance(table, dict):
        raise TypeError(f"[{section}] must be a table")
    out: dict[str, Text] = {}
    for name, entry in table.items():
        if name not in allowed:
            raise ValueError(f"[{section}.\"{name}\"] is not a grade (one of {', '.join(allowed)})")
        if not isinstance(entry, dict) or not isinstance(entry.get("zh"), str) or not entry["zh"].strip():
            raise ValueError(f"[{section}.\"{name}\"] needs a non-empty zh = \"...\"")
        en = entry.get("en", "")
        if not isinstance(en, str):
            raise TypeError(f"[{section}.\"{name}\"] en must be text")
        unknown = set(entry) - {"zh", "en"}
        if unknown:
            raise ValueError(f"[{section}.\"{name}\"] has unknown keys {sorted(unknown)} (zh, en)")
        out[name] = Text(entry["zh"].strip(), en.strip())
    return out


def _config(doc: Mapping[str, Any]) -> BriefConfig:
    unknown = set(doc) - {"grades", "drought", "pdf"}
    if unknown:
        raise ValueError(f"unknown sections {sorted(unknown)} (grades, drought, pdf)")
    pdf = doc.get("pdf", {})
    if not isinstance(pdf, dict) or set(pdf) - {"font", "font_index"}:
        raise ValueError("[pdf] takes font and font_index only")
    font, index = pdf.get("font", ""), pdf.get("font_index", 0)
    if not isinstance(font, str) or not isinstance(index, int) or isinstance(index, bool) or index < 0:
        raise TypeError("[pdf] font must be a path (text) and font_index a whole number ≥ 0")
    return BriefConfig(_texts(doc, "grades", GRADES), _texts(doc, "drought", DROUGHT[1:]), font, index)


# -- what the brief reads of a moisture report (queries.moisture's MoistureGroup / MoistureReport) ---

class GroupLike(Protocol):
    @property
    def key(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def relative_pct(self) -> float | None: ...
    @property
    def grade(self) -> str | None: ...
    @property
    def drought(self) -> str | None: ...
    @property
    def stations(self) -> Mapping[str, int]: ...
    @property
    def frozen(self) -> int: ...
    @property
    def anomalous(self) -> int: ...
    @property
    def missing(self) -> int: ...


class ReportLike(Protocol):
    @property
    def groups(self) -> Sequence[GroupLike]: ...
    @property
    def total(self) -> GroupLike: ...


# -- the brief ----------------------------------------------------------------------------------

def half_up(value: float | None, places: int = 1) -> float | None:
    """四舍五入, as every figure nongyun shows (the web layer's rule, kept here without importing it)."""
    if value is None:
        return None
    return float(Decimal(repr(value)).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP))


@dataclass(frozen=True)
class Row:
    """One village (or the region's total): this week, last week, the change."""

    code: str
    township: str
    name: str
    relative_pct: float | None  # rounded to 0.1
    grade: str | None
    drought: str | None
    last_pct: float | None
    last_grade: str | None
    change_pct: float | None  # percentage points vs last week; None unless both weeks were graded
    graded: int  # stations graded this week
    stations: int  # stations registered with soil_moisture (graded + frozen + anomalous + missing)
    frozen: int
    anomalous: int
    missing: int

    @property
    def in_drought(self) -> bool:
        return self.drought is not None and self.drought != NO_DROUGHT

    def note(self, lang: Lang = "zh") -> str:
        """Why some stations are not graded: 冻土 2、异常 1、缺报 1."""
        i = 1 if lang == "en" else 0
        parts = [f"{WORDS[key][i]} {n}" for key, n in (("frozen", self.frozen), ("anomalous", self.anomalous),
                                                        ("missing", self.missing)) if n]
        return ("; " if lang == "en" else "、").join(parts)


@dataclass(frozen=True)
class WeeklyBrief:
    region: Region
    week: IsoWeek
    generated: datetime  # local time
    rows: list[Row]  # monitored villages, in region-code order
    total: Row
    unmonitored: int  # villages of the region (scope) without a soil station
    advice: list[tuple[str, str]]  # (grade, text) for every grade some village has, wettest first
    drought_advice: list[tuple[str, str]]
    scope: str | None = None  # the caller's scope, named "张相镇（211204101）", when the region asked for lies above it
    lang: Lang = "zh"
    names_en: Mapping[str, str] = field(default_factory=dict)  # region code → English name

    def t(self, key: str, **values: object) -> str:
        """A word of the brief in its language, with ``{placeholders}`` filled in."""
        return WORDS[key][1 if self.lang == "en" else 0].format(**values)

    def name(self, code: str, zh: str) -> str:
        """A region's name in the brief's language (English falls back to Chinese)."""
        return self.names_en.get(code, zh) if self.lang == "en" else zh

    def grade_name(self, grade: str | None) -> str:
        """A 墒情 or drought grade in the brief's language; — when ungraded."""
        if grade is None:
            return "—"
        return GRADES_EN.get(grade) or DROUGHT_EN.get(grade, grade) if self.lang == "en" else grade

    @property
    def title(self) -> str:
        return self.t("title", region=self.name(self.region.code, self.region.name_zh))

    @property
    def period(self) -> str:
        m, s = self.week.monday, self.week.sunday
        return self.t("period", year=self.week.year, week=self.week.week, m1=m.month, d1=m.day, m2=s.month,
                      d2=s.day, start=m.isoformat(), end=s.isoformat())

    @property
    def drought_rows(self) -> list[Row]:
        """Drought villages, the driest first."""
        return sorted((r for r in self.rows if r.in_drought),
                      key=lambda r: (-DROUGHT.index(r.drought or NO_DROUGHT), r.relative_pct or 0.0, r.code))

    def grade_counts(self) -> dict[str, int]:
        """Villages per 墒情 grade this week (every grade, wettest first, zeros included)."""
        return {g: sum(1 for r in self.rows if r.grade == g) for g in GRADES}

    def summary(self) -> str:
        """The paragraph a reader takes away: how many villages in which grade, the mean and its change."""
        if self.lang == "en":
            return self._summary_en()
        counts = "、".join(f"{g} {n} 个" for g, n in self.grade_counts().items() if n) or "无可评定的村"
        t = self.total
        text = f"监测村 {len(self.rows)} 个（{counts}）"
        if t.relative_pct is not None:
            text += f"；平均土壤相对含水量 {t.relative_pct:.1f}%，墒情{t.grade}，旱情{t.drought}"
            if t.change_pct is not None:
                text += f"，较上周{'增加' if t.change_pct >= 0 else '减少'} {abs(t.change_pct):.1f} 个百分点"
        drought = self.drought_rows
        text += f"；旱情村 {len(drought)} 个。" if drought else "；无旱情村。"
        return text

    def _summary_en(self) -> str:
        counts = ", ".join(f"{n} {GRADES_EN[g]}" for g, n in self.grade_counts().items() if n) or "none graded"
        t = self.total
        text = f"{len(self.rows)} monitored villages ({counts})"
        if t.relative_pct is not None:
            drought = "no drought" if t.drought == NO_DROUGHT else f"{self.grade_name(t.drought)} drought"
            text += f"; mean relative moisture {t.relative_pct:.1f} %, {self.grade_name(t.grade)}, {drought}"
            if t.change_pct is not None:
                text += f", {t.change_pct:+.1f} points on last week"
        n = len(self.drought_rows)
        return text + f"; {n} {'village' if n == 1 else 'villages'} in drought."


def _row(this: GroupLike, last: GroupLike | None, township: str) -> Row:
    pct = half_up(this.relative_pct)
    last_pct = half_up(last.relative_pct) if last is not None else None
    change = None
    if this.relative_pct is not None and last is not None and last.relative_pct is not None:
        change = half_up(this.relative_pct - last.relative_pct)
    graded = sum(this.stations.values())
    return Row(this.key, township, this.name, pct, this.grade, this.drought, last_pct,
               last.grade if last is not None else None, change, graded,
               graded + this.frozen + this.anomalous + this.missing, this.frozen, this.anomalous, this.missing)


def compose(tree: RegionTree, region: Region, week: IsoWeek, this: ReportLike, last: ReportLike,
            config: BriefConfig, generated: datetime, scope: str | None = None, lang: Lang = "zh") -> WeeklyBrief:
    """The brief from this week's and last week's reports grouped by village (pure: no store)."""
    previous = {g.key: g for g in last.groups}
    rows: list[Row] = []
    unmonitored = 0
    for g in sorted(this.groups, key=lambda g: g.key):
        row = _row(g, previous.get(g.key), _township_name(tree, g.key))
        if row.stations == 0 and row.last_pct is None:
            unmonitored += 1
            continue
        rows.append(row)
    total = _row(this.total, last.total, "")
    present = [g for g in GRADES if any(r.grade == g for r in rows)]
    dry = [d for d in DROUGHT[1:] if any(r.drought == d for r in rows)]
    advice = [(g, config.grades[g].get(lang)) for g in present if g in config.grades]
    drought_advice = [(d, config.drought[d].get(lang)) for d in dry if d in config.drought]
    scoped = tree.find(scope) if scope else None
    names_en = {r.code: r.name_en for r in tree if r.name_en} if lang == "en" else {}
    label = scope
    if scoped is not None:
        label = f"{names_en.get(scoped.code, scoped.name_zh) if lang == 'en' else scoped.name_zh}（{scoped.code}）"
    return WeeklyBrief(region, week, generated, rows, total, unmonitored, advice, drought_advice, label, lang,
                       names_en)


def _township_name(tree: RegionTree, village: str) -> str:
    town = tree.find(village[:9]) if len(village) == 12 else None
    return town.name_zh if town is not None else ""


def weekly_brief(ctx: Context, store: Store, region: Region, week: IsoWeek, config: BriefConfig,
                 within: Region | None = None, now_ms: int | None = None, lang: Lang = "zh") -> WeeklyBrief:
    """This week's and last week's 7-day reports per village, composed. ``within``: the caller's
    scope when ``region`` lies above it (only its villages are listed and counted)."""
    tz = ctx.settings.tz
    scope = within.code if within is not None else None
    this = moisture_report(ctx, store, region.code, week.monday, WEEK_DAYS, "village", scope)
    last = moisture_report(ctx, store, region.code, week.previous().monday, WEEK_DAYS, "village", scope)
    generated = datetime.fromtimestamp((now_ms if now_ms is not None else time_now_ms()) / 1000, tz)
    return compose(ctx.tree, region, week, this, last, config, generated, scope, lang)
