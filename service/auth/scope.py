"""Where a region lies relative to a caller's scope: inside it, above it (an ancestor), or outside.

Pure functions over codes, so the web layer, the exports and the tests share one rule:
inside → answer as asked; above → answer only the part inside the scope and say so; outside → 403.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..errors import Forbidden
from ..regions import Region, RegionTree

Relation = Literal["inside", "above", "outside"]


def relation(scope: str, code: str) -> Relation:
    if code.startswith(scope):
        return "inside"
    if scope.startswith(code):
        return "above"
    return "outside"


def visible(scope: str, code: str) -> bool:
    """Whether a node may appear at all: inside the scope, or one of its ancestors (the path to it)."""
    return relation(scope, code) != "outside"


@dataclass(frozen=True)
class Scoped:
    """A requested region and the part of it the caller may see.

    ``within`` is the region whose villages an answer may include: the requested one when it lies
    inside the scope, the scope's own region when the request asked for an ancestor of it.
    ``narrowed`` is the scope code to report in the answer, or None when nothing was cut away."""

    region: Region
    within: Region
    narrowed: str | None


def narrow(tree: RegionTree, scope: str, region: Region) -> Scoped:
    """The visible part of ``region`` for ``scope``; Forbidden when none of it is visible."""
    rel = relation(scope, region.code)
    if rel == "inside":
        return Scoped(region, region, None)
    if rel == "above":
        return Scoped(region, tree.get(scope), scope)
    raise Forbidden(f"region {region.code} lies outside your scope {scope}")
