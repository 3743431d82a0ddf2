"""What a web worker holds: the context, the store and the broker probe, on ``app.extensions``.

Views reach it through ``state()`` rather than module globals, so several apps (tests, gunicorn
workers) never share one by accident.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flask import Response, current_app, jsonify
from pydantic import BaseModel

from ..context import Context
from ..payloads import PayloadDecoder
from ..queries.health import BrokerProbe
from ..store import Store

EXTENSION = "nongyun"


@dataclass
class WebState:
    ctx: Context
    store: Store
    broker_probe: BrokerProbe
    decoder: PayloadDecoder = field(init=False)
    openapi: dict[str, Any] | None = None  # built on first request, then reused

    def __post_init__(self) -> None:
        self.decoder = PayloadDecoder(self.ctx.registry, self.ctx.catalogue, self.ctx.land, self.ctx.tree)

    def __getitem__(self, key: str) -> Any:
        """``app.extensions["nongyun"]["store"]`` works as well as ``.store``."""
        if key not in ("ctx", "store", "broker_probe"):
            raise KeyError(key)
        return getattr(self, key)


def state() -> WebState:
    found = current_app.extensions[EXTENSION]
    assert isinstance(found, WebState)
    return found


def answer(model: BaseModel, status: int = 200, *, exclude_unset: bool = False) -> Response:
    """A pydantic answer as JSON, with the wire names (``yield``) of its fields."""
    resp = jsonify(model.model_dump(mode="json", by_alias=True, exclude_unset=exclude_unset))
    resp.status_code = status
    return resp
