"""What every process is built from: settings, region tree, device registry and catalogue.

One factory (``build``) so web workers, ingest workers, the jobs runner and the tests all read
config/ the same way and fail at start-up, not at the first message, when something is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .catalogue import Catalogue
from .errors import SettingsError
from .regions import RegionTree
from .registry import Registry
from .settings import Settings, load


@dataclass(frozen=True)
class Context:
    settings: Settings
    tree: RegionTree
    registry: Registry
    catalogue: Catalogue


def build(settings: Settings | None = None) -> Context:
    settings = settings or load()
    cfg = Path(settings.config_dir)
    try:
        tree = RegionTree.load(cfg / "regions.yaml")
        catalogue = Catalogue.load(cfg / "catalogue.toml")
        registry = Registry.load(cfg / "devices.yaml", tree, set(catalogue.metrics))
    except SettingsError as exc:
        raise SettingsError(f"{exc}\n  (config folder {cfg}, from {settings.config_source}; "
                            "NONGYUN_CONFIG names another)") from None
    return Context(settings, tree, registry, catalogue)
