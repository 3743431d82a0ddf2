"""``POST /yields/import``: a harvest ledger (xlsx or csv, the export's columns) checked or stored.

The rules are ``service.yield_import``'s (the same the ``nongyun import yields`` command applies);
this view only takes the upload and answers the report. The app's 64 KiB body limit is lifted to the
ledger limit for this one route (``LARGE_BODIES`` in web/__init__.py; 10,000 rows of xlsx are ~0.4 MiB).
"""

from __future__ import annotations

from typing import Literal

from flask import Response, request
from pydantic import BaseModel, Field
from werkzeug.exceptions import RequestEntityTooLarge

from ...errors import BadInput
from ...harvest_records import records_store
from ...ledger_files import MAX_FILE_BYTES
from ...store.base import InRegion
from ...times import now_ms
from ...yield_import import RecordsSink, import_file
from ..auth import require
from ..state import answer, state
from .openapi import Route
from .params import _Params, parse
from .routing import AUTH, query_args, routes


class ImportParams(_Params):
    dry_run: Literal["true", "false"] = Field("true", description="true (the default): check only, write nothing")
    partial: Literal["true", "false"] = Field("false", description="true: store the valid rows even if others "
                                                                   "are refused")


class ImportError_(BaseModel):
    row: int | None = Field(description="the row as the spreadsheet numbers it; null: the whole file")
    field: str | None = Field(description="the column's header as the file has it")
    code: str = Field(description="stable: missing_column, bad_value, unknown_crop, unknown_village, unknown_plot, "
                                  "plot_mismatch, implausible_yield, duplicate_row, unknown_id, out_of_scope, "
                                  "void, bad_file, too_large, too_many_rows, or an entry rule's code")
    message: str = Field(description="Chinese")
    message_en: str


class ImportAnswer(BaseModel):
    rows: int
    accepted: int = Field(description="valid rows")
    rejected: int = Field(description="rows with an error")
    added: int
    corrected: int
    unchanged: int = Field(description="rows equal to their stored record (a second import of the same file)")
    written: bool
    dry_run: bool
    ignored_columns: list[str] = Field(description="output-only columns of the export (亩产, 来源, ...)")
    errors: list[ImportError_]


@routes.add(Route("/yields/import", "POST", "import a harvest ledger (xlsx or csv, the export's columns)",
                  ImportAnswer, params=ImportParams, upload=True, errors=(400, *AUTH, 413),
                  description="A multipart upload with one part `file`. Checked only (`dry_run=true`, the default) "
                              "or stored: nothing is written unless every row is valid, or with `partial=true` "
                              "only the valid rows. A row is identified by its 编号/id column, else by village + "
                              "plot + time + crop, so importing the same file twice stores each row once; a row "
                              "that differs from its record corrects it (a revision naming the file and row). "
                              "Each error names its row (as the spreadsheet numbers it), column and a stable "
                              "code; `message` is Chinese, `message_en` English. Editors and admins, inside "
                              f"their scope; at most {MAX_FILE_BYTES // 2**20} MiB."))
def yields_import() -> Response:
    who = require("editor")
    p = parse(ImportParams, query_args())
    upload = request.files.get("file")  # over the limit: 413 from Werkzeug, as for every body
    if upload is None:
        raise BadInput("file: send the ledger as the multipart part `file`", "file")
    content = upload.read(MAX_FILE_BYTES + 1)
    if len(content) > MAX_FILE_BYTES:
        raise RequestEntityTooLarge(f"the file is over {MAX_FILE_BYTES // 2**20} MiB")
    st = state()
    now = now_ms()
    sink = RecordsSink(records_store(st.store), InRegion.of(st.ctx.tree.district), now)
    report = import_file(st.ctx, st.decoder, sink, content, upload.filename or "", dry_run=p.dry_run == "true",
                         partial=p.partial == "true", scope=who.scope, by=who.username, now=now)
    return answer(ImportAnswer.model_validate(report.as_json()))
