"""``/yields/records``: list, read, correct, void and review harvest records, and their history.

Thin views: the rules (scope, who may review, duplicates, status) are ``service.harvest_records``'s,
the same the import uses; these only parse, call and present.
"""

from __future__ import annotations

import re

from flask import Response, request

from ... import harvest_records as hr
from ...auth.model import Principal
from ...errors import NotFound
from ...queries.records import records_page
from ...times import now_ms
from ..auth import principal, require, scoped
from ..state import answer, state
from .openapi import Route
from .params import RECORD_ID, NoParams, RecordPatch, RecordsParams, ReviewIn, UnitParams, VoidIn, parse, parse_body
from .present import record_out, records_answer, revision_out
from .routing import AUTH, query_args, routes, scoped_answer, validation_context
from .schemas import HistoryAnswer, RecordOut, RecordsAnswer

ID_PARAM = {"record_id": "the record's id (URL-safe ASCII)"}


def _actor(who: Principal) -> hr.Actor:
    return hr.Actor(who.username, who.role, who.scope)


def _checked(record_id: str) -> str:
    """Ids are URL-safe ASCII of at most 64 characters: anything else names no record."""
    if not re.fullmatch(RECORD_ID, record_id):
        raise NotFound(f"no yield record with id {record_id[:40]!r}")
    return record_id


@routes.add(Route("/yields/records", "GET", "harvest records of a region, newest first, a page at a time",
                  RecordsAnswer, params=RecordsParams, errors=(400, *AUTH, 404),
                  description="Keyset pagination: pass the answer's `next` as `cursor` for the next page; "
                              "`next` is null on the last one. Void records are listed too (status=void)."))
def records_get() -> Response:
    st = state()
    p = parse(RecordsParams, query_args(), validation_context())
    part = scoped(p.region)
    page = records_page(st.ctx, st.store, region=p.region, within=part.within if part.narrowed else None,
                        year=p.year, crop=p.crop, status=p.status, source=p.source, plot=p.plot, limit=p.limit,
                        cursor=p.cursor)
    return scoped_answer(records_answer(page, p.unit, st.ctx.settings.tz))


@routes.add(Route("/yields/records/<record_id>", "GET", "one harvest record", RecordOut, params=UnitParams,
                  errors=(400, *AUTH, 404), path_params=ID_PARAM))
def record_get(record_id: str) -> Response:
    st = state()
    p = parse(UnitParams, query_args())
    rec = hr.get(st.store, _checked(record_id), _actor(principal()))
    return answer(record_out(rec, p.unit, st.ctx.settings.tz))


@routes.add(Route("/yields/records/<record_id>", "PATCH", "correct a harvest record (editors, inside their scope)",
                  RecordOut, params=UnitParams, body=RecordPatch, errors=(400, *AUTH, 404, 409, 413),
                  path_params=ID_PARAM,
                  description="Validated by the same rules as an entry; answers the new revision. An approved "
                              "or returned record goes back to submitted. 409 for a void record (code void) or "
                              "when the result equals another record (code duplicate, with its id)."))
def record_patch(record_id: str) -> Response:
    who = require("editor")
    st = state()
    p = parse(UnitParams, query_args())
    patch = parse_body(RecordPatch, request.get_data(cache=False)).model_dump(exclude_unset=True)
    reason = str(patch.pop("reason"))
    rec = hr.correct(st.ctx, st.store, st.decoder, _checked(record_id), patch, reason, _actor(who), now_ms())
    return answer(record_out(rec, p.unit, st.ctx.settings.tz))


@routes.add(Route("/yields/records/<record_id>/void", "POST", "void a harvest record (editors, inside their scope)",
                  RecordOut, params=UnitParams, body=VoidIn, errors=(400, *AUTH, 404, 409, 413),
                  path_params=ID_PARAM,
                  description="The record stays, with its history, but no total counts it any more."))
def record_void(record_id: str) -> Response:
    who = require("editor")
    st = state()
    p = parse(UnitParams, query_args())
    body = parse_body(VoidIn, request.get_data(cache=False))
    rec = hr.void(st.store, _checked(record_id), body.reason, _actor(who), now_ms())
    return answer(record_out(rec, p.unit, st.ctx.settings.tz))


@routes.add(Route("/yields/records/<record_id>/review", "POST", "approve or return a harvest record (reviewers)",
                  RecordOut, params=UnitParams, body=ReviewIn, errors=(400, *AUTH, 404, 409, 413),
                  path_params=ID_PARAM,
                  description="Reviewers are editors or admins whose scope is a township or the district and "
                              "who did not enter the record; a village-scope account never reviews (403)."))
def record_review(record_id: str) -> Response:
    who = require("editor")
    st = state()
    p = parse(UnitParams, query_args())
    body = parse_body(ReviewIn, request.get_data(cache=False))
    rec = hr.review(st.store, _checked(record_id), body.decision, body.comment, _actor(who), now_ms())
    return answer(record_out(rec, p.unit, st.ctx.settings.tz))


@routes.add(Route("/yields/records/<record_id>/history", "GET", "every revision of a harvest record, oldest first",
                  HistoryAnswer, params=NoParams, errors=(400, *AUTH, 404), path_params=ID_PARAM))
def record_history(record_id: str) -> Response:
    st = state()
    parse(NoParams, query_args())
    revs = hr.history(st.store, _checked(record_id), _actor(principal()))
    tz = st.ctx.settings.tz
    return answer(HistoryAnswer(id=record_id, revisions=[revision_out(r, tz) for r in revs]))
