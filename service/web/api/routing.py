"""The API's blueprint, its route table (which the OpenAPI document is built from) and answer helpers."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request
from pydantic import BaseModel

from ...regions import Region
from ..state import state
from .openapi import Routes
from .schemas import RegionRef

PREFIX = "/api/v1"
# Every data route answers 401 to anonymous callers and 403 outside their scope or role.
AUTH = (401, 403)
bp = Blueprint("api_v1", __name__, url_prefix=PREFIX)
routes = Routes(bp)


def query_args() -> dict[str, list[str]]:
    return request.args.to_dict(flat=False)


def validation_context() -> dict[str, Any]:
    return {"catalogue": state().ctx.catalogue}


def scoped_answer(model: BaseModel, status: int = 200) -> Response:
    """The answer without the ``scope`` key when nothing was narrowed, so open answers stay as they were."""
    narrowed = getattr(model, "scope", None) is not None
    resp = jsonify(model.model_dump(mode="json", by_alias=True, exclude=None if narrowed else {"scope"}))
    resp.status_code = status
    return resp


def region_ref(r: Region) -> RegionRef:
    return RegionRef(code=r.code, name=r.name, level=r.level)
