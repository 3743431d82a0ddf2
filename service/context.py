"""What every process is built from: settings, region tree, device registry and catalogue.

One factory (``build``) so web workers, ingest workers, the jobs runner and the tests all read
config/ the same way and fail at start-up, not at the first message, when something is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .catalogue import Catalogue
from .errors import SettingsError
from .jobs.config import AlertsConfig
from .regions import RegionTree
from .registry import Registry
from .settings import Settings, load
from .targets import Targets


@dataclass(frozen=True)
class Context:
    settings: Settings
    tree: RegionTree
    registry: Registry
    catalogue: Catalogue
    # Read here, at start, like the files above: a bad file stops the process, never a request.
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    targets: Targets = field(default_factory=lambda: Targets.empty())


def build(settings: Settings | None = None) -> Context:
    settings = settings or load()
    cfg = Path(settings.config_dir)
    try:
        tree = RegionTree.load(cfg / "regions.yaml")
        catalogue = Catalogue.load(cfg / "catalogue.toml")
        registry = Registry.load(cfg / "devices.yaml", tree, set(catalogue.metrics))
        alerts = AlertsConfig.load(cfg / "alerts.toml", catalogue)
        targets = Targets.load(cfg / "targets.toml", tree)
    except SettingsError as exc:
        raise SettingsError(f"{exc}\n  (config folder {cfg}, from {settings.config_source}; "
                            "NONGYUN_CONFIG names another)") from None
    return Context(settings, tree, registry, catalogue, alerts, targets)
