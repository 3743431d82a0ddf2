"""``nongyun import yields FILE``: a harvest ledger (.xlsx or .csv) from the command line, with a
progress bar, by the same rules and answer as ``POST /api/v1/yields/import`` (``yield_import``).

Exit status 0 when the file was valid (written, or would be with ``--dry-run``), 1 when a row or the
file was refused (nothing written, unless ``--partial`` wrote the valid rows), as scripts expect.
"""

from __future__ import annotations

import getpass
import sys
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import click
import orjson

from . import process

SHOWN_ERRORS = 50  # on the terminal; --json gives them all


@click.group("import")
def import_group() -> None:
    """Bring records in from files (harvest ledgers kept in Excel)."""


def _bar(stack: ExitStack, label: str) -> Callable[[int, int], None]:
    """A progress callback (done, total) that opens click's bar on stderr once the total is known."""
    state: dict[str, Any] = {}

    def progress(done: int, total: int) -> None:
        bar = state.get("bar")
        if bar is None:
            bar = state["bar"] = stack.enter_context(click.progressbar(length=total, label=label, file=sys.stderr))
            state["at"] = 0
        bar.update(done - state["at"])
        state["at"] = done

    return progress


def _line(e: dict[str, Any], lang: str) -> str:
    where = "文件" if e["row"] is None else f"第 {e['row']} 行"
    if lang == "en":
        where = "file" if e["row"] is None else f"row {e['row']}"
    text = e["message_en"] if lang == "en" else e["message"]
    return f"{where}  {e['field'] or '-'}  {e['code']}  {text}"


@import_group.command("yields")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="validate and report only; nothing is written")
@click.option("--partial", is_flag=True, help="write the valid rows even when others are refused")
@click.option("--by", "by", default=None, help="who imports (recorded with each record; default cli:USER)")
@click.option("--lang", type=click.Choice(["zh", "en"]), default="zh", show_default=True, help="language of messages")
@click.option("--json", "as_json", is_flag=True, help="print the whole answer as JSON on stdout")
def import_yields(file: Path, dry_run: bool, partial: bool, by: str | None, lang: str, as_json: bool) -> None:
    """Import harvest records from FILE (.xlsx or .csv, the columns of the yields export).

    Nothing is written unless every row is valid (or --partial); importing the same file again stores
    nothing twice: a row already stored is left as it is, one whose figures changed corrects it."""
    from .ledger_files import MAX_FILE_BYTES
    from .payloads import PayloadDecoder
    from .store.base import InRegion, as_records_store
    from .times import now_ms
    from .yield_import import RecordsSink, Sink, StoreSink, import_file

    if file.stat().st_size > MAX_FILE_BYTES:
        raise click.ClickException(f"{file}: over {MAX_FILE_BYTES // 2**20} MiB / 文件过大")
    content = file.read_bytes()
    ctx = process.context()
    store = process.open_store(ctx)
    try:
        decoder = PayloadDecoder(ctx.registry, ctx.catalogue, ctx.land, ctx.tree)
        district = InRegion.of(ctx.tree.district)
        records = as_records_store(store)
        sink: Sink = RecordsSink(records, district, now_ms()) if records is not None else StoreSink(store, district)
        with ExitStack() as bars:
            report = import_file(ctx, decoder, sink, content, file.name, dry_run=dry_run, partial=partial,
                                 by=by or f"cli:{getpass.getuser()}",
                                 progress=_bar(bars, "导入 importing") if not as_json else None)
    finally:
        store.close()
    answer = report.as_json()
    if as_json:
        click.echo(orjson.dumps(answer, option=orjson.OPT_INDENT_2).decode())
    else:
        for e in answer["errors"][:SHOWN_ERRORS]:
            click.echo(_line(e, lang), err=True)
        if len(answer["errors"]) > SHOWN_ERRORS:
            click.echo(f"… {len(answer['errors']) - SHOWN_ERRORS} more (--json lists every one)", err=True)
        state = ("dry run, nothing written" if dry_run else "written" if report.written else "nothing written")
        state_zh = ("试导入，未写入" if dry_run else "已写入" if report.written else "未写入")
        click.echo(f"{file.name}: {report.rows} rows, {report.accepted} valid, {report.rejected} refused; "
                   f"{report.added} new, {report.corrected} corrected, {report.unchanged} already stored — "
                   + (state if lang == "en" else f"{state_zh} / {state}"))
    if report.errors:
        sys.exit(1)
