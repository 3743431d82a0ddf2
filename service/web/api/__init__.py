"""The REST API v1 (DESIGN.md "REST contract (v1)"): thin views over params → queries → answer models.

Every view is registered through ``routes.add`` with its parameter, body and answer models, which
is also what the OpenAPI document is built from. The view modules are imported here in the order
the document lists them.
"""

from __future__ import annotations

from . import agromet, alerts, devices, imports, land, moisture, operators, readings, records, regions, reports, yields
from .routing import PREFIX, bp, routes

__all__ = ["PREFIX", "agromet", "alerts", "bp", "devices", "imports", "land", "moisture", "operators", "readings",
           "records", "regions", "reports", "routes", "yields"]
