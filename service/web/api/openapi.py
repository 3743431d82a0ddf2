"""The OpenAPI 3.1 document, generated from the route table and the pydantic models.

Each view is registered through ``Routes.add`` with its parameter, body and answer models; the
document is built from that table, so an endpoint cannot exist undocumented (tests/test_openapi.py
also compares the table with Flask's URL map). Config-dependent enums (metric, crop) are filled
in from the catalogue of the running app. Which operations need a login follows ``auth.PUBLIC``,
the same set the request guard uses, so the document cannot promise an open door the app keeps shut.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from flask import Blueprint
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from ...catalogue import Catalogue
from ..auth import PUBLIC, SESSION_COOKIE
from ..errors import CODES
from .schemas import ErrorAnswer

REF = "#/components/schemas/{model}"
F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Route:
    rule: str  # Flask rule under the blueprint prefix, e.g. /regions/<code>
    method: str
    summary: str
    answer: type[BaseModel] | None  # None: the answer is a file of one of ``files``
    params: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    upload: bool = False  # a multipart/form-data body with one binary part `file`
    status: int = 200
    errors: tuple[int, ...] = (400,)
    path_params: dict[str, str] = field(default_factory=dict)  # name → description
    description: str = ""
    endpoint: str = ""  # Flask endpoint name, filled in by Routes.add
    files: tuple[str, ...] = ()  # media types of a file answer (a report): binary, no JSON schema

    @property
    def path(self) -> str:
        """The OpenAPI spelling of the Flask rule: ``<code>`` → ``{code}``."""
        return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", self.rule)


class Routes:
    """A blueprint whose views are registered together with their documentation."""

    def __init__(self, bp: Blueprint) -> None:
        self.bp = bp
        self.table: list[Route] = []

    def add(self, route: Route) -> Callable[[F], F]:
        def decorate(view: F) -> F:
            self.bp.add_url_rule(route.rule, view_func=view, methods=[route.method])
            self.table.append(replace(route, endpoint=f"{self.bp.name}.{view.__name__}"))
            return view

        return decorate


def _parameters(route: Route, schemas: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "description": desc, "schema": {"type": "string"}}
        for name, desc in route.path_params.items()
    ]
    if route.params is None:
        return out
    schema = route.params.model_json_schema(ref_template=REF)
    required = set(schema.get("required", []))
    for name, raw in schema.get("properties", {}).items():
        prop = _without_null(raw)
        description = prop.pop("description", "")
        prop.pop("title", None)
        param: dict[str, Any] = {"name": name, "in": "query", "required": name in required, "schema": prop}
        if description:
            param["description"] = description
        out.append(param)
    schemas.update(schema.get("$defs", {}))
    return out


def _without_null(prop: dict[str, Any]) -> dict[str, Any]:
    """A query parameter is absent or a string: ``anyOf [X, null]`` with default null becomes X."""
    out = dict(prop)
    branches = out.pop("anyOf", None)
    if branches is not None:
        rest = [b for b in branches if b != {"type": "null"}]
        if len(rest) == 1:
            out = {**rest[0], **out}
        else:
            out["anyOf"] = rest
    if out.get("default", 0) is None:
        del out["default"]
    return out


def _fill_enums(params: list[dict[str, Any]], catalogue: Catalogue) -> None:
    enums = {"metric": sorted(catalogue.metrics), "crop": sorted(catalogue.crops)}
    for p in params:
        if p["name"] in enums and p["in"] == "query":
            p["schema"] = {"type": "string", "enum": enums[p["name"]]}


def _error_responses(codes: tuple[int, ...]) -> dict[str, Any]:
    ref = {"$ref": REF.format(model="ErrorAnswer")}
    return {str(c): {"description": CODES.get(c, "error"), "content": {"application/json": {"schema": ref}}}
            for c in (*codes, 500)}


def _answer_content(r: Route) -> dict[str, Any]:
    if r.answer is None:
        return {media: {"schema": {"type": "string", "contentMediaType": media}} for media in r.files}
    return {"application/json": {"schema": {"$ref": REF.format(model=r.answer.__name__)}}}


# Either one is enough: scripts send a token, the dashboards ride on the login cookie.
SECURITY: list[dict[str, list[str]]] = [{"bearerToken": []}, {"sessionCookie": []}]
SECURITY_SCHEMES: dict[str, Any] = {
    "bearerToken": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "nyt_{16 hex}_{43 base64url}",
        "description": "An API token from `nongyun token create NAME`: `Authorization: Bearer nyt_...`. "
                       "It acts as its account (role and scope); no CSRF token is needed.",
    },
    "sessionCookie": {
        "type": "apiKey",
        "in": "cookie",
        "name": SESSION_COOKIE,
        "description": "The signed session cookie set by the login page (`/login`). Requests that change "
                       "something (POST) must also send the page's CSRF token as `X-CSRFToken`.",
    },
}


def _operation_id(r: Route) -> str:
    return f"{r.method.lower()}_{re.sub(r'[^a-z0-9]+', '_', r.path.lower()).strip('_')}"


def document(routes: list[Route], catalogue: Catalogue, prefix: str, title: str, version: str,
             public: Collection[str] = PUBLIC) -> dict[str, Any]:
    """``public``: endpoints reachable without a login; every other operation declares ``SECURITY``
    and a 401 answer."""
    modes: dict[type[BaseModel], JsonSchemaMode] = {ErrorAnswer: "serialization"}
    for r in routes:
        if r.answer is not None:
            modes[r.answer] = "serialization"  # answers are documented as dumped, bodies as validated
        if r.body is not None:
            modes[r.body] = "validation"
    ordered = sorted(modes.items(), key=lambda item: item[0].__name__)
    _, defs = models_json_schema(ordered, ref_template=REF)
    schemas: dict[str, Any] = dict(defs.get("$defs", {}))
    paths: dict[str, dict[str, Any]] = {}
    for r in routes:
        params = _parameters(r, schemas)
        _fill_enums(params, catalogue)
        secured = r.endpoint not in public
        errors = r.errors if not secured or 401 in r.errors else (*r.errors, 401)
        op: dict[str, Any] = {
            "operationId": _operation_id(r),
            "summary": r.summary,
            "security": SECURITY if secured else [],  # [] overrides the document's default: no login
            "parameters": params,
            "responses": {
                str(r.status): {"description": r.summary, "content": _answer_content(r)},
                **_error_responses(errors),
            },
        }
        if r.description:
            op["description"] = r.description
        if r.body is not None:
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": REF.format(model=r.body.__name__)}}},
            }
        if r.upload:
            op["requestBody"] = {"required": True, "content": {"multipart/form-data": {"schema": {
                "type": "object", "required": ["file"],
                "properties": {"file": {"type": "string", "contentMediaType": "application/octet-stream"}}}}}}
        paths.setdefault(prefix + r.path, {})[r.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": version,
            "description": "Areas and yields are rounded to 2 decimals, reading values to 3; times are RFC 3339 "
                           "in the configured zone. Every error answers {\"error\": {\"code\", \"message\", "
                           "\"field\"?}}.",
        },
        "security": SECURITY,
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": SECURITY_SCHEMES},
    }
