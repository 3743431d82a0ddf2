"""``/devices``: registered devices with their state."""

from __future__ import annotations

import re

from flask import Response

from ...errors import BadInput
from ...queries.devices import device_states
from ...times import now_ms
from ..auth import inside, scoped
from ..state import answer, state
from .openapi import Route
from .params import DEVICE_ID, DevicesParams, NoParams, parse
from .present import device_out
from .routing import AUTH, query_args, routes, scoped_answer
from .schemas import DeviceOut, DevicesAnswer


@routes.add(Route("/devices", "GET", "registered devices of a region with their state", DevicesAnswer,
                  params=DevicesParams, errors=(400, *AUTH, 404)))
def devices_list() -> Response:
    st = state()
    p = parse(DevicesParams, query_args())
    part = scoped(p.region)
    found = device_states(st.ctx, st.store, part.within.code, now_ms())
    tz = st.ctx.settings.tz
    return scoped_answer(DevicesAnswer(scope=part.narrowed, devices=[device_out(s, tz) for s in found]))


@routes.add(Route("/devices/<device_id>", "GET", "one device with its state", DeviceOut,
                  params=NoParams, errors=(400, *AUTH, 404), path_params={"device_id": "registered device id"}))
def device_one(device_id: str) -> Response:
    parse(NoParams, query_args())
    if not re.fullmatch(DEVICE_ID, device_id):
        raise BadInput(f"device_id: {device_id[:70]!r} is not a device id ([A-Za-z0-9_-]{{1,64}})", "device_id")
    st = state()
    dev = st.ctx.registry.get(device_id)
    inside(dev.village)
    found = [s for s in device_states(st.ctx, st.store, dev.village, now_ms()) if s.device.id == dev.id]
    return answer(device_out(found[0], st.ctx.settings.tz))
