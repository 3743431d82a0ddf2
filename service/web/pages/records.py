"""The harvest-record pages: the township review queue (待审核) and the ledger import page.

Both are shells like the dashboards: the browser reads and changes records only through
``/api/v1/yields/records`` and ``/api/v1/yields/import``, so the rules (who may approve, what a valid
row is) live in one place and the page can never approve what the API would refuse. Their wording
travels in the page data beside the dashboards' strings, Chinese by default.
"""

from __future__ import annotations

from flask import Response, abort, request

from ..auth import principal, require_page
from ..state import state
from .views import _lang, _name, _render, bp

TEXT: dict[str, tuple[str, str]] = {
    "review_title": ("产量记录审核", "Harvest record review"),
    "review_note": ("村里填报的记录在此审核：通过后计入“已审核”数字，退回时请写明原因。自己录入的记录由他人审核。",
                    "Records entered by villages are reviewed here: approved ones count as reviewed figures; say "
                    "why when you return one. Records you entered yourself are reviewed by someone else."),
    "import_title": ("导入产量台账", "Import harvest ledgers"),
    "import_note": ("上传 Excel（.xlsx）或 CSV 文件，列与导出文件相同（可先导出、修改后再导入）。先检查，无误后再导入；"
                    "同一文件重复导入不会重复计数。",
                    "Upload an Excel (.xlsx) or CSV file with the export's columns (export, edit, import). Check "
                    "first, then import; importing the same file again stores nothing twice."),
    "pending": ("待审核", "Pending"), "entered_by": ("录入人", "Entered by"), "status": ("状态", "Status"),
    "comment": ("意见", "Comment"), "approve": ("通过", "Approve"), "return": ("退回", "Return"),
    "approved_msg": ("已通过", "Approved"), "returned_msg": ("已退回", "Returned"),
    "more": ("更多", "More"), "none_pending": ("没有待审核的记录", "No records waiting for review"),
    "comment_needed": ("退回时请填写意见", "Say why you return it"),
    "own_record": ("本人录入，需他人审核", "Entered by you: someone else reviews it"),
    "file": ("文件", "File"), "check": ("检查", "Check"), "do_import": ("导入", "Import"),
    "partial": ("只导入无误的行", "Import only the valid rows"),
    "rows": ("行数", "Rows"), "accepted": ("可导入", "Valid"), "rejected": ("有误", "With errors"),
    "row": ("行", "Row"), "field": ("列", "Column"), "code": ("错误", "Error"), "message": ("说明", "Detail"),
    "checked_ok": ("检查通过：{n} 行均可导入", "Checked: all {n} rows are valid"),
    "checked_bad": ("{n} 行有误，未写入任何数据", "{n} rows have errors; nothing was written"),
    "imported": ("已导入 {n} 行", "Imported {n} rows"),
    "pick_file": ("请先选择文件", "Choose a file first"),
}


def texts(lang: str) -> dict[str, str]:
    """The record pages' wording in ``lang`` (the village page's records table uses it too)."""
    i = 1 if lang == "en" else 0
    return {k: v[i] for k, v in TEXT.items()}


def _scope_page(template: str, tier: str, key: str) -> Response:
    ctx = state().ctx
    who = principal()
    code = request.args.get("region") or who.scope
    node = ctx.tree.find(code)
    if node is None or not code.isdigit():
        abort(404)
    if not node.code.startswith(who.scope):
        abort(403)
    lang = _lang()
    t = texts(lang)
    crops = [{"id": c.id, "name": c.name_en if lang == "en" else c.name_zh} for c in ctx.catalogue.crops.values()]
    return _render(template, tier, t[key], node, lang, rt=t, crops=crops, subtitle=_name(node, lang),
                   page={"rt": t, "me": who.username or ""})


@bp.get("/review")
def review_page() -> Response:
    """Township-or-above editors and admins only: a village editor never approves."""
    who = require_page("editor")
    if len(who.scope) > 9:
        abort(403)
    return _scope_page("pages/review.html", "review", "review_title")


@bp.get("/import")
def import_page() -> Response:
    require_page("editor")
    return _scope_page("pages/import.html", "import", "import_title")
