"""``POST /api/v1/yields/import`` through the Flask app: the upload, dry run by default, all-or-nothing,
idempotent on a second import, the ledger size limit instead of the app's 64 KiB one, clear 400s."""

# ruff: noqa: F811  (pytest fixtures imported from tests/test_api_support.py are parameters here)
from __future__ import annotations

import csv
import io
from typing import Any

from flask.testing import FlaskClient
from werkzeug.test import EnvironBuilder

from service.ledger_files import MAX_FILE_BYTES
from service.store.base import InRegion
from service.store.sqlite import SqliteStore
from tests.access_support import page_csrf
from tests.test_api_support import api_ctx, api_settings, app, client, store  # noqa: F401 (fixtures)

HEADER = ["收获时间", "乡镇（街道）", "村（社区）", "作物", "地块", "面积（亩）", "产量（斤）"]
ZX, DMT = "张相镇", "大孟屯村"


def ledger(rows: list[list[object]]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(HEADER)
    w.writerows(rows)
    return buf.getvalue().encode("utf-8-sig")


def good_rows(n: int) -> list[list[object]]:
    return [[f"2025-10-{1 + i // 24:02d} {i % 24:02d}:00", ZX, DMT, "玉米", "", 10, 11_000 + i] for i in range(n)]


def post(client: FlaskClient, content: bytes, name: str = "ledger.csv", **query: str) -> Any:
    """As the import page sends it: multipart, with the page's CSRF token (not JSON, so it needs one
    even with web.auth off: a cross-site form could post a file)."""
    return client.post("/api/v1/yields/import", query_string=query, content_type="multipart/form-data",
                       data={"file": (io.BytesIO(content), name)},
                       headers={"X-CSRFToken": page_csrf(client, "/import")})


def stored(store: SqliteStore) -> int:
    return len(store.yield_records(InRegion.of_code("211204"), 0, 2**62, limit=1_000_000))


def test_a_dry_run_is_the_default_and_names_the_bad_row_writing_nothing(client: FlaskClient,
                                                                       store: SqliteStore) -> None:
    rows = good_rows(5)
    rows[2][6] = "很多"  # row 4 of the sheet (header = row 1)
    resp = post(client, ledger(rows))
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert (body["rows"], body["accepted"], body["rejected"]) == (5, 4, 1)
    assert (body["dry_run"], body["written"]) == (True, False)
    [err] = body["errors"]
    assert (err["row"], err["field"], err["code"]) == (4, "产量（斤）", "bad_value")
    assert err["message"] and err["message_en"]
    assert post(client, ledger(rows), dry_run="false").get_json()["written"] is False  # all or nothing
    assert stored(store) == 0
    partial = post(client, ledger(rows), dry_run="false", partial="true").get_json()
    assert (partial["written"], partial["added"]) == (True, 4) and stored(store) == 4


def test_the_same_file_imported_twice_stores_each_row_once(client: FlaskClient, store: SqliteStore) -> None:
    content = ledger(good_rows(60))
    first = post(client, content, dry_run="false").get_json()
    assert (first["added"], first["written"]) == (60, True)
    again = post(client, content, dry_run="false").get_json()
    assert (again["added"], again["corrected"], again["unchanged"]) == (0, 0, 60)
    assert stored(store) == 60
    listed = client.get("/api/v1/yields/records", query_string={"region": "211204101200", "limit": 100}).get_json()
    assert len(listed["records"]) == 60 and {r["source"] for r in listed["records"]} == {"import"}


def test_bad_uploads_answer_a_clear_error(client: FlaskClient) -> None:
    no_file = client.post("/api/v1/yields/import", content_type="multipart/form-data", data={},
                          headers={"X-CSRFToken": page_csrf(client, "/import")})
    assert no_file.status_code == 400 and no_file.get_json()["error"]["field"] == "file"
    assert post(client, ledger(good_rows(1)), dry_run="maybe").status_code == 400
    assert post(client, ledger(good_rows(1)), sheet="1").status_code == 400  # unknown parameter
    not_a_workbook = post(client, b"PK\x03\x04 not really a zip", "ledger.xlsx").get_json()
    assert not_a_workbook["errors"][0]["row"] is None and not_a_workbook["errors"][0]["code"] == "bad_file"
    # over the ledger limit: 413 before the body is parsed. The test client spools so large a body to
    # a temporary file of its own (the environ's input), closed here (else a ResourceWarning later).
    builder = EnvironBuilder(path="/api/v1/yields/import", method="POST", content_type="multipart/form-data",
                             data={"file": (io.BytesIO(b"x" * (MAX_FILE_BYTES + 100_000)), "big.csv")},
                             headers={"X-CSRFToken": page_csrf(client, "/import")})
    environ = builder.get_environ()
    try:
        big = client.open(environ)
    finally:
        environ["wsgi.input"].close()
        builder.close()
    assert big.status_code == 413 and big.get_json()["error"]["code"]
    # over the app's 64 KiB limit but inside the ledger's: taken (about 2,000 rows)
    mid = post(client, ledger(good_rows(2000)))
    assert mid.status_code == 200 and mid.get_json()["rows"] == 2000


def test_the_openapi_document_shows_the_upload(client: FlaskClient) -> None:
    op = client.get("/api/v1/openapi.json").get_json()["paths"]["/api/v1/yields/import"]["post"]
    assert "multipart/form-data" in op["requestBody"]["content"]
    assert {p["name"] for p in op["parameters"]} == {"dry_run", "partial"}
