"""The weekly 墒情简报 as a PDF that prints and files the way a county office's brief does.

fpdf2 because it embeds (and subsets) OpenType fonts with CFF outlines, which Debian's Noto Sans CJK
is; reportlab embeds TrueType outlines only. The font is found on this machine — fontconfig's
Chinese sans-serif, or the file named in config/moisture_advice.toml — and checked for Chinese
glyphs before use: a PDF in a Latin font would print every village as empty boxes, so without a
Chinese font the brief is refused with the package to install rather than rendered wrong. Nothing
is ever downloaded.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from fpdf import FPDF
from fpdf.enums import Align, XPos, YPos
from fpdf.fonts import FontFace

from ..errors import NongyunError
from .moisture_weekly import Row, WeeklyBrief

MEDIA_TYPE = "application/pdf"
FONT_PACKAGE = "fonts-noto-cjk"  # Debian's; any font with Chinese glyphs will do
FONT_QUERY = "sans-serif:lang=zh-cn"
PROBE = "墒情简报适宜轻度不足严重过多旱村镇乡"  # a font lacking any of these cannot print a brief
FAMILY = "cjk"
# Light fills per grade, wet (blue) to dry (red), as 墒情 maps colour them.
GRADE_FILL = {"过多": (189, 215, 238), "适宜": (198, 239, 206), "轻度不足": (255, 242, 204),
              "不足": (252, 213, 180), "严重不足": (244, 176, 172)}
DROUGHT_FILL = {"轻旱": (255, 242, 204), "中旱": (252, 213, 180), "重旱": (244, 176, 172), "特旱": (230, 140, 140)}
HEAD_FILL = (226, 239, 218)
NO_LINE_START = "，。、；：？！）」』》〉】”’%,.;:?!)"
HEADERS = ("township", "village", "relative", "grade", "drought", "last_week", "last_grade", "change_short",
           "stations", "note")  # keys of moisture_weekly.WORDS
WIDTHS = (22, 26, 20, 16, 12, 16, 16, 14, 12, 26)  # mm, 180 in all: A4 less 15 mm margins
WIDTHS_EN = (20, 26, 18, 17, 16, 14, 17, 14, 15, 23)  # English words are longer than 旱情 or 站点


class FontMissing(NongyunError):
    """No font with Chinese glyphs: the PDF cannot be made (the .xlsx still can)."""


@dataclass(frozen=True)
class FontFile:
    path: Path
    index: int  # the face in a .ttc collection


def _fc_match() -> FontFile | None:
    exe = shutil.which("fc-match")
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, "-f", "%{file}\n%{index}", FONT_QUERY], capture_output=True, text=True,
                             timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    path, _, index = out.partition("\n")
    if not path:
        return None
    return FontFile(Path(path), int(index) if index.strip().isdigit() else 0)


@lru_cache(maxsize=8)
def _covers(path: Path, index: int, mtime_ns: int) -> bool:
    """Whether the face has every PROBE glyph (cached per file version: reading a .ttc's cmap is slow)."""
    from fontTools.ttLib import TTFont  # fpdf2's own dependency

    try:
        with path.open("rb") as fh, TTFont(fh, fontNumber=index, lazy=True) as font:
            cmap = font.getBestCmap() or {}
    except Exception:  # fontTools raises anything from TTLibError to struct.error on a broken file
        return False
    return all(ord(ch) in cmap for ch in PROBE)


def find_font(configured: str = "", index: int = 0) -> FontFile:
    """The configured file, else fontconfig's Chinese sans-serif; FontMissing says what to install."""
    hint = (f"install Debian's {FONT_PACKAGE} (apt-get install {FONT_PACKAGE}) or name a font with Chinese "
            "glyphs as [pdf] font in config/moisture_advice.toml")
    if configured:
        found = FontFile(Path(configured), index)
        where = f"the font {configured!r} of config/moisture_advice.toml"
        if not found.path.is_file():
            raise FontMissing(f"{where} does not exist; {hint}")
    else:
        match = _fc_match()
        if match is None or not match.path.is_file():
            raise FontMissing(f"fontconfig (fc-match) finds no font; {hint}")
        found, where = match, f"fontconfig's best match {match.path.name}"
    if not _covers(found.path, found.index, found.path.stat().st_mtime_ns):
        raise FontMissing(f"{where} has no Chinese glyphs; {hint}")
    return found


class _Brief(FPDF):
    def __init__(self, brief: WeeklyBrief) -> None:
        super().__init__(orientation="portrait", unit="mm", format="A4")
        self.brief = brief
        self.set_margins(15, 15, 15)
        self.set_auto_page_break(auto=True, margin=15)
        self.set_title(f"{brief.title} {brief.week.label}")
        self.set_author("nongyun 农云")
        self.set_creator("nongyun")

    def footer(self) -> None:
        self.set_y(-11)
        self.set_font(FAMILY, size=8)
        self.set_text_color(110)
        page = self.brief.t("page", page=self.page_no(), pages="{nb}")
        self.cell(0, 5, f"{self.brief.title} · {self.brief.week.label} · {page}", align=Align.C)
        self.set_text_color(0)


def _fmt(v: float | None) -> str:
    return "—" if v is None else f"{v:.1f}"


def _change(v: float | None) -> str:
    """Signed percentage points; no change is plain 0.0."""
    return "—" if v is None else "0.0" if v == 0 else f"{v:+.1f}"


def _cells(b: WeeklyBrief, r: Row) -> list[str]:
    return [b.name(r.code[:9], r.township), b.name(r.code, r.name), _fmt(r.relative_pct), b.grade_name(r.grade),
            b.grade_name(r.drought), _fmt(r.last_pct), b.grade_name(r.last_grade), _change(r.change_pct),
            f"{r.graded}/{r.stations}", r.note(b.lang)]


def _fill(brief: WeeklyBrief, grade: str | None) -> FontFace:
    """The grade's colour behind its cell, whatever language names it."""
    colour = GRADE_FILL.get(grade or "") or DROUGHT_FILL.get(grade or "")
    return FontFace(emphasis="", fill_color=colour) if colour else FontFace(emphasis="")


def _heading(pdf: _Brief, text: str) -> None:
    pdf.ln(3)
    pdf.set_font(FAMILY, size=12.5)
    pdf.cell(0, 8, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(FAMILY, size=9.5)


def _lines(pdf: _Brief, text: str, width: float) -> list[str]:
    """Chinese wrapped at any character, but no line starting with closing punctuation (避头): the
    character before it moves down with it, as Chinese typesetting does."""
    width -= 2 * pdf.c_margin  # a cell's padding
    lines: list[str] = []
    line, used = "", 0.0
    for ch in text:
        w = pdf.get_string_width(ch)
        if line and used + w > width:
            if ch in NO_LINE_START and len(line) > 1:
                lines.append(line[:-1])
                line = line[-1]
            else:
                lines.append(line)
                line = ""
            used = pdf.get_string_width(line)
        line += ch
        used += w
    return [*lines, line] if line else lines


def _paragraph(pdf: _Brief, text: str, size: float = 9.5) -> None:
    pdf.set_font(FAMILY, size=size)
    if pdf.brief.lang == "en":  # English wraps between words
        pdf.multi_cell(0, 5.5, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        return
    for line in _lines(pdf, text, pdf.epw):
        pdf.cell(0, 5.5, line, new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _village_table(pdf: _Brief, brief: WeeklyBrief) -> None:
    pdf.set_font(FAMILY, size=8)
    head = FontFace(emphasis="", fill_color=HEAD_FILL)
    plain = FontFace(emphasis="")
    widths = WIDTHS_EN if brief.lang == "en" else WIDTHS
    with pdf.table(col_widths=widths, width=sum(widths), line_height=5, text_align="CENTER",
                   headings_style=head, repeat_headings=1, first_row_as_headings=True) as table:
        heading = table.row()
        for h in HEADERS:
            heading.cell(brief.t(h).replace("（%）", "\n（%）"))  # the unit on a line of its own
        for r in [*brief.rows, brief.total]:
            row = table.row()
            cells = _cells(brief, r)
            if r is brief.total:
                cells[0], cells[1] = brief.t("total"), brief.name(r.code, r.name)
            grades = {3: r.grade, 4: r.drought, 6: r.last_grade}
            for i, text in enumerate(cells):
                row.cell(text, style=_fill(brief, grades[i]) if i in grades else plain)


def _drought_table(pdf: _Brief, brief: WeeklyBrief) -> None:
    rows = brief.drought_rows
    if not rows:
        _paragraph(pdf, brief.t("no_drought"))
        return
    pdf.set_font(FAMILY, size=8.5)
    with pdf.table(col_widths=(40, 50, 30, 30, 30), width=180, line_height=5.5, text_align="CENTER",
                   headings_style=FontFace(emphasis="", fill_color=HEAD_FILL)) as table:
        heading = table.row()
        for h in ("township", "village", "drought", "relative", "change_short"):
            heading.cell(brief.t(h))
        for r in rows:
            row = table.row()
            row.cell(brief.name(r.code[:9], r.township))
            row.cell(brief.name(r.code, r.name))
            row.cell(brief.grade_name(r.drought), style=_fill(brief, r.drought))
            row.cell(_fmt(r.relative_pct))
            row.cell(_change(r.change_pct))


def render(brief: WeeklyBrief, font: FontFile) -> bytes:
    pdf = _Brief(brief)
    pdf.add_font(FAMILY, "", str(font.path), collection_font_number=font.index)
    pdf.add_page()
    pdf.set_font(FAMILY, size=18)
    pdf.cell(0, 11, brief.title, align=Align.C, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(FAMILY, size=10)
    pdf.cell(0, 6, brief.period, align=Align.C, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(FAMILY, size=8)
    pdf.set_text_color(90)
    made = brief.t("generated", at=f"{brief.generated:%Y-%m-%d %H:%M}")
    if brief.scope is not None:
        made += " · " + brief.t("scope", scope=brief.scope)
    pdf.cell(0, 5, made, align=Align.C, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_text_color(0)
    _heading(pdf, brief.t("h_overall"))
    _paragraph(pdf, brief.summary())
    method = brief.t("method")
    if brief.unmonitored:
        method += (" " if brief.lang == "en" else "") + brief.t("unmonitored", n=brief.unmonitored)
    _paragraph(pdf, method, size=8.5)
    _heading(pdf, brief.t("h_villages"))
    _village_table(pdf, brief)
    _heading(pdf, brief.t("h_drought"))
    _drought_table(pdf, brief)
    _heading(pdf, brief.t("h_advice"))
    if not brief.advice and not brief.drought_advice:
        _paragraph(pdf, brief.t("no_advice"))
    for grade, text in [*brief.advice, *brief.drought_advice]:
        _paragraph(pdf, f"[{brief.grade_name(grade)}] {text}" if brief.lang == "en" else f"【{grade}】{text}")
    return bytes(pdf.output())
