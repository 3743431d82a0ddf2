"""``/regions``: the tree, and one node with its device counts and latest summary."""

from __future__ import annotations

import re

from flask import Response

from ...auth import visible
from ...errors import BadInput
from ...queries.devices import device_states, latest_summary
from ...regions import Region
from ...times import now_ms
from ..auth import principal, scoped
from ..state import state
from .openapi import Route
from .params import REGION_CODE, NoParams, parse
from .present import latest_out
from .routing import AUTH, query_args, region_ref, routes, scoped_answer
from .schemas import DeviceCounts, RegionNode, RegionTree, RegionTreeNode


def _tree(r: Region, scope: str) -> RegionTreeNode:
    return RegionTreeNode(code=r.code, name=r.name, level=r.level,
                          children=[_tree(c, scope) for c in r.children if visible(scope, c.code)])


@routes.add(Route("/regions", "GET", "the region tree: district → townships → villages (the caller's part)",
                  RegionTree, params=NoParams, errors=(400, 401)))
def regions_tree() -> Response:
    parse(NoParams, query_args())
    root = state().ctx.tree.district
    scope = principal().scope
    node = _tree(root, scope)
    return scoped_answer(RegionTree(scope=scope if scope != root.code else None, code=node.code, name=node.name,
                                    level=node.level, children=node.children))


@routes.add(Route("/regions/<code>", "GET", "one region: children, device counts, latest summary", RegionNode,
                  params=NoParams, errors=(400, *AUTH, 404), path_params={"code": "region code at any tier"}))
def region_node(code: str) -> Response:
    parse(NoParams, query_args())
    if not re.fullmatch(REGION_CODE, code):
        raise BadInput(f"code: {code[:20]!r} is not a 6-, 9- or 12-digit region code", "code")
    st, now = state(), now_ms()
    part = scoped(code)
    node = part.region
    found = device_states(st.ctx, st.store, part.within.code, now)
    scope = principal().scope
    return scoped_answer(RegionNode(
        scope=part.narrowed,
        code=node.code, name=node.name, level=node.level,
        parent=region_ref(node.parent) if node.parent else None,
        children=[region_ref(c) for c in node.children if visible(scope, c.code)],
        devices=DeviceCounts(total=len(found), online=sum(s.online for s in found)),
        latest=latest_out(latest_summary(st.ctx, found, now), st.ctx.settings.tz),
    ))
