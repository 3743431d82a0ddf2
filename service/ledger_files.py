"""A harvest ledger file → its header and rows of raw cells, and a cell → a number, a time or text.

Reading is apart from validating (``yield_import``) because it is where hostile files are met: the
format is decided by the content, not the name (an old .xls or a CSV renamed .xlsx gets a plain
message); an .xlsx whose declared content is too large is refused before openpyxl opens it (zipfile
never inflates a member past its declared size, so the sizes bound a zip bomb; the parts openpyxl
holds in memory whole, shared strings and styles, have a lower bound than the streamed sheets); openpyxl reads
read-only and ``data_only`` (a formula's saved value, never evaluated); rows stop at ``MAX_ROWS`` and,
counting empty ones, at Excel's own limit; CSV is UTF-8 (with or without a BOM), UTF-16 with a BOM,
else GB18030 (what Excel in China saves), with the delimiter the header line uses most.

Cell rules (tests/test_yield_import.py checks them on random input):
- numbers: ints or floats from Excel; text with thousands separators (``12,500.5``), full-width digits,
  the column's own unit (``12.5亩`` in 面积（亩）, ``1,000斤``) and ``万`` (×10,000). Another unit
  (``12.5公顷`` in 面积（亩）) is refused, never converted behind the clerk's back; ``1,5`` too
  (a decimal comma or a typo: either way not a number to guess at).
- times: Excel dates and serial numbers (local time of the configured zone), epoch milliseconds,
  RFC 3339, ``2025-10-08 09:00``, ``2025/10/8``, ``2025年10月8日 9时30分``; a date alone is local
  midnight; between 2000 and 2100.
"""

from __future__ import annotations

import csv
import io
import math
import re
import unicodedata
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from .times import MAX_EPOCH_MS, MIN_EPOCH_MS

MAX_ROWS = 100_000  # data rows of one file
MAX_FILE_BYTES = 16 * 1024 * 1024  # what an upload may carry (10,000 rows of xlsx are ~0.4 MiB)
MAX_UNZIPPED_BYTES = 512 * 1024 * 1024  # declared content of an .xlsx; zipfile never inflates past it
MAX_PART_BYTES = 64 * 1024 * 1024  # a part openpyxl reads whole (shared strings, styles): sheets alone stream
MAX_SCANNED_ROWS = 1_048_576  # Excel's own sheet limit: empty rows (a <row r="1e9"> trick) stop here
HEADER_SCAN_ROWS, MAX_COLUMNS = 10, 64

# canonical key → headers it is read from (compared after NFKC, spaces removed, case folded)
COLUMNS: dict[str, tuple[str, ...]] = {
    "id": ("编号", "记录编号", "记录ID", "id"),
    "ts": ("收获时间", "时间", "ts"),
    "township": ("乡镇（街道）", "乡镇", "township"),
    "village": ("村（社区）", "村", "村代码", "village"),
    "crop": ("作物", "crop"),
    "plot": ("地块", "地块编号", "plot"),
    "area_mu": ("面积（亩）", "收获面积（亩）", "area_mu"),
    "area_ha": ("面积（公顷）", "area_ha"),
    "yield_jin": ("产量（斤）", "yield_jin"),
    "yield_kg": ("产量（公斤）", "产量（千克）", "yield_kg"),
    "moisture_pct": ("水分（%）", "含水量（%）", "moisture_pct"),
}
OUTPUT_ONLY = ("亩产（斤/亩）", "来源", "地块名称", "片区", "状态", "yield_per_area", "source", "status")
UNITS = {"area_mu": ("亩",), "area_ha": ("公顷", "ha"), "yield_jin": ("斤",), "yield_kg": ("公斤", "千克", "kg"),
         "moisture_pct": ("%",)}


class FileError(Exception):
    """The file as a whole cannot be read: ``code`` as in row errors, a message in English and Chinese."""

    def __init__(self, code: str, message_en: str, message_zh: str = "") -> None:
        super().__init__(message_en)
        self.code = code
        self.message_en = message_en
        self.message_zh = message_zh


# -- reading: bytes → header + rows of raw cells ----------------------------------------------------------


@dataclass(frozen=True)
class Table:
    header_row: int
    columns: dict[str, tuple[int, str]]  # canonical key → (index, the header as written)
    ignored: list[str]
    rows: Iterator[tuple[int, tuple[object, ...]]]  # (row number, cells)


def _norm_header(text: object) -> str:
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", str(text))).casefold() if text is not None else ""


_HEADERS = {_norm_header(h): key for key, names in COLUMNS.items() for h in names}
_OUTPUT_ONLY = {_norm_header(h) for h in OUTPUT_ONLY}


def _header(cells: Sequence[object]) -> tuple[dict[str, tuple[int, str]], list[str]] | None:
    found: dict[str, tuple[int, str]] = {}
    ignored: list[str] = []
    for i, cell in enumerate(cells):
        key = _HEADERS.get(_norm_header(cell))
        if key is not None and key not in found:
            found[key] = (i, str(cell).strip())
        elif cell not in (None, "") and _norm_header(cell) not in _OUTPUT_ONLY:
            ignored.append(str(cell).strip()[:64])
    return (found, ignored) if "ts" in found and "crop" in found else None


def _find_table(rows: Iterator[tuple[object, ...]]) -> Table | None:
    for number, cells in enumerate(rows, start=1):
        if number > HEADER_SCAN_ROWS:
            return None
        head = _header(cells)
        if head is not None:
            return Table(number, head[0], head[1], _numbered(rows, number + 1))
    return None


def _numbered(rows: Iterator[tuple[object, ...]], first: int) -> Iterator[tuple[int, tuple[object, ...]]]:
    data = 0
    for number, cells in enumerate(rows, start=first):
        if number > MAX_SCANNED_ROWS:  # past Excel's own limit: a crafted sheet, never one Excel saved
            raise FileError("too_many_rows", f"rows beyond row {MAX_SCANNED_ROWS:,}", f"超过 {MAX_SCANNED_ROWS:,} 行")
        if all(c is None or (isinstance(c, str) and not c.strip()) for c in cells):
            continue
        data += 1
        if data > MAX_ROWS:
            raise FileError("too_many_rows", f"more than {MAX_ROWS:,} rows: split the file",
                            f"超过 {MAX_ROWS:,} 行，请拆分文件")
        yield number, cells


def read_table(content: bytes, filename: str = "") -> Table:
    """The harvest records table of an .xlsx (by its content, whatever its name says) or a CSV."""
    if len(content) > MAX_FILE_BYTES:
        raise FileError("too_large", f"{len(content):,} bytes > {MAX_FILE_BYTES:,}",
                        f"文件超过 {MAX_FILE_BYTES // 2**20} MiB")
    if content.startswith(b"PK\x03\x04"):
        return _xlsx(content)
    if content.startswith(b"\xd0\xcf\x11\xe0"):
        raise FileError("bad_file", "an Excel 97-2003 .xls file: save it as .xlsx (Excel workbook) or .csv",
                        "这是旧版 Excel（.xls）文件，请另存为 .xlsx 或 .csv")
    if filename.lower().endswith((".xlsx", ".xlsm")):
        raise FileError("bad_file", "the file is named .xlsx but is not an Excel workbook",
                        "文件名为 .xlsx，但内容不是 Excel 工作簿")
    return _csv(content)


def _xlsx(content: bytes) -> Table:
    from openpyxl import load_workbook

    try:
        with zipfile.ZipFile(io.BytesIO(content)) as z:
            parts = z.infolist()
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise FileError("bad_file", f"not a readable .xlsx: {exc}"[:200], "不是可读取的 .xlsx 文件") from None
    declared = sum(i.file_size for i in parts)
    whole = max((i.file_size for i in parts if not i.filename.startswith("xl/worksheets/")), default=0)
    if declared > MAX_UNZIPPED_BYTES or whole > MAX_PART_BYTES:
        raise FileError("too_large", f"the workbook unpacks to {declared:,} bytes (limit {MAX_UNZIPPED_BYTES:,}), "
                        f"its largest part read whole to {whole:,} (limit {MAX_PART_BYTES:,})", "工作簿解压后过大")
    try:  # data_only: a formula's saved value, never the formula; nothing is evaluated
        wb = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
        for ws in wb.worksheets:
            if hasattr(ws, "reset_dimensions"):  # read every row, whatever the file's <dimension> claims
                ws.reset_dimensions()
            table = _find_table(_guarded(ws.iter_rows(max_col=MAX_COLUMNS, values_only=True)))
            if table is not None:
                return table
    except FileError:
        raise
    except Exception as exc:  # openpyxl raises anything from KeyError to XML errors on a broken file
        raise FileError("bad_file", f"not a readable .xlsx: {type(exc).__name__}: {exc}"[:200],
                        "不是可读取的 .xlsx 文件") from None
    raise _no_header()


def _guarded(rows: Iterator[tuple[object, ...]]) -> Iterator[tuple[object, ...]]:
    """Rows are read lazily, after ``_xlsx`` returned: a sheet broken half-way is a file error then too."""
    try:
        yield from rows
    except FileError:
        raise
    except Exception as exc:
        raise FileError("bad_file", f"the sheet cannot be read: {type(exc).__name__}: {exc}"[:200],
                        "工作表内容无法读取") from None


def _no_header() -> FileError:
    return FileError("missing_column", f"no header row with 收获时间 and 作物 in the first {HEADER_SCAN_ROWS} rows",
                     f"前 {HEADER_SCAN_ROWS} 行中没有含“收获时间”和“作物”的表头")


def decode_csv(content: bytes) -> str:
    """Excel in China saves CSV as GBK (GB18030 is its superset), elsewhere UTF-8 (with a BOM) or UTF-16."""
    if content.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return content.decode("utf-16")
        except UnicodeDecodeError:
            pass
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return content.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise FileError("bad_file", "the CSV is neither UTF-8 nor GB18030 text", "CSV 文件既不是 UTF-8 也不是 GBK 编码")


def _csv(content: bytes) -> Table:
    text = decode_csv(content)
    if "\x00" in text:
        raise FileError("bad_file", "the file holds NUL bytes: not a CSV text file", "文件含有 NUL 字节，不是 CSV 文本")
    first = text.split("\n", 1)[0]
    delimiter = max(",\t;", key=first.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)

    def rows() -> Iterator[tuple[object, ...]]:
        try:
            for r in reader:
                yield tuple(r[:MAX_COLUMNS])
        except csv.Error as exc:
            raise FileError("bad_file", f"CSV line {reader.line_num}: {exc}"[:200],
                            f"CSV 第 {reader.line_num} 行无法读取") from None

    table = _find_table(rows())
    if table is None:
        raise _no_header()
    return table


# -- cells → values ------------------------------------------------------------------------------------

_NUMBER = re.compile(r"[+-]?(?:\d{1,3}(?:,\d{3})+|\d+)?(?:\.\d+)?")


class CellError(ValueError):
    def __init__(self, en: str, zh: str) -> None:
        super().__init__(en)
        self.zh = zh


def parse_number(value: object, units: Sequence[str] = ()) -> float | None:
    """A cell → a finite float, or None when empty; ``units``: suffixes this column may carry."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise CellError(f"{value!r} is not a number", "不是数字")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise CellError(f"{value!r} is not a finite number", "不是有效数字")
        return float(value)
    text = re.sub(r"\s+", "", unicodedata.normalize("NFKC", str(value)))
    if not text:
        return None
    factor = 1.0
    for unit in sorted(units, key=len, reverse=True):
        if text.casefold().endswith(unit.casefold()):
            text = text[: -len(unit)]
            break
    if text.endswith("万"):
        text, factor = text[:-1], 10_000.0
    if not text or not _NUMBER.fullmatch(text) or not any(c.isdigit() for c in text):
        shown = str(value)[:40]
        unit_hint = f" (unit: {'/'.join(units)})" if units else ""
        raise CellError(f"{shown!r} is not a number{unit_hint}",
                        f"“{shown}”不是数字" + (f"（单位：{'/'.join(units)}）" if units else ""))
    return float(text.replace(",", "")) * factor


_TIME = re.compile(
    r"(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?"
    r"(?:[T ]*(\d{1,2})(?:[:时点](\d{1,2})?分?(?::(\d{1,2})(?:\.(\d{1,6}))?秒?)?)?)?"
    r"(Z|[+-]\d{2}:?\d{2})?"
)
_EXCEL_EPOCH = datetime(1899, 12, 30)


def parse_time(value: object, tz: ZoneInfo) -> int:
    """A cell → UTC epoch ms; a time without an offset is local time of ``tz``."""
    if isinstance(value, datetime):
        dt = value if value.tzinfo is not None else value.replace(tzinfo=tz)
    elif isinstance(value, date):
        dt = datetime.combine(value, time(0), tz)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        if MIN_EPOCH_MS <= value < MAX_EPOCH_MS and value == int(value):
            return int(value)
        if not 36_526 <= value < 73_051:  # Excel serial days of 2000-01-01 .. 2100-01-01
            raise CellError(f"{value!r} is neither an Excel date nor epoch milliseconds", "不是日期")
        dt = (_EXCEL_EPOCH + timedelta(milliseconds=round(value * 86_400_000))).replace(tzinfo=tz)
    elif isinstance(value, str):
        text = re.sub(r"\s+", " ", unicodedata.normalize("NFKC", value)).strip()
        m = _TIME.fullmatch(text)
        if m is None:
            shown = value[:40]
            raise CellError(f"{shown!r} is not a time like 2025-10-08 09:00 or 2025-10-08T09:00:00+08:00",
                            f"“{shown}”不是时间（例：2025-10-08 09:00）")
        y, mo, d, h, mi, s, frac, off = m.groups()
        try:
            micro = int((frac or "0").ljust(6, "0"))
            dt = datetime(int(y), int(mo), int(d), int(h or 0), int(mi or 0), int(s or 0), micro)
            if off:
                dt = datetime.fromisoformat(dt.isoformat() + ("+00:00" if off == "Z" else _colon(off)))
            else:
                dt = dt.replace(tzinfo=tz)
        except ValueError as exc:
            raise CellError(f"{value[:40]!r}: {exc}", f"“{value[:40]}”不是有效日期") from None
    else:
        raise CellError(f"{type(value).__name__} is not a time", "不是时间")
    ms = int(dt.timestamp() * 1000)
    if not MIN_EPOCH_MS <= ms < MAX_EPOCH_MS:
        raise CellError(f"{dt.isoformat()} is not between 2000 and 2100", "时间须在 2000 年至 2100 年之间")
    return ms


def _colon(offset: str) -> str:
    return offset if ":" in offset else f"{offset[:3]}:{offset[3:]}"


def cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # a plot id or code Excel turned into a number
    return unicodedata.normalize("NFKC", str(value)).strip()


# -- rows → records ------------------------------------------------------------------------------------
