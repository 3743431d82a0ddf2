"""The third-party browser files the pages load, and what to say when an installation lacks them.

Every build puts ECharts into ``static/vendor/`` from package-lock.json (setup.py); nothing
third-party is committed. A copy installed some other way may still lack it, and then a dashboard
of blank panels would look like a district without data: the pages and the start-up log say
instead that the charts cannot be drawn and how to get them.
"""

from __future__ import annotations

from pathlib import Path

VENDOR = Path(__file__).resolve().parent / "static" / "vendor"
ECHARTS = VENDOR / "echarts.min.js"
REINSTALL = "pip install -e . (a checkout) or pip install nongyun: the build puts it there from package-lock.json"


def echarts_path() -> Path | None:
    return ECHARTS if ECHARTS.is_file() else None


def missing_warning() -> str | None:
    """One line for ``nongyun demo|web|serve`` to print at start, or None when the charts can draw."""
    if echarts_path() is not None:
        return None
    return f"warning: {ECHARTS} is missing, so the dashboards cannot draw their charts; reinstall with {REINSTALL}"
